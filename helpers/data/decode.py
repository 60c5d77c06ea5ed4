"""Decode images in parallel for the cache: chunks of (name, bytes-or-path) read once from a
folder or an archive, decoded by worker processes (threads once TensorFlow is loaded) that
Ctrl-C or any error stops within seconds."""

from __future__ import annotations

import io
import multiprocessing as mp
import signal
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from multiprocessing.connection import wait as wait_conns

import numpy as np

from helpers.base import StudyError
from helpers.data.sources import Source, member_name

CHUNK = 1000


def decode_chunk(chunk: tuple[list[int], list[tuple[str, bytes | str]]]):
    """(indices, [(name, bytes-or-path)]) -> (indices, (n, 32, 32, 3) uint8, greyscale count);
    greyscale is widened to RGB."""
    from PIL import Image

    idx, items = chunk
    out = np.empty((len(items), 32, 32, 3), np.uint8)
    grey = 0
    for i, (name, data) in enumerate(items):
        try:
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                im.load()
                if im.size != (32, 32) or im.mode not in ("RGB", "L"):
                    raise StudyError(
                        f"{name}: image is {im.size[0]}x{im.size[1]} {im.mode}, expected 32x32 RGB"
                    )
                if im.mode == "L":
                    grey += 1
                    im = im.convert("RGB")
                out[i] = np.asarray(im)
        except StudyError:
            raise
        except Exception as err:  # PIL raises many types for corrupt or truncated files
            raise StudyError(f"{name}: corrupt or truncated image ({err})") from None
    return idx, out, grey


def chunks(source: Source, rels: list[str]):
    """(indices, [(name, bytes-or-path)]) chunks; archives are streamed once, never extracted,
    in their own member order (the indices put each image back in its place)."""
    if not source.is_archive:
        root = source.location / source.prefix
        for i in range(0, len(rels), CHUNK):
            idx = list(range(i, min(i + CHUNK, len(rels))))
            yield idx, [(str(root / rels[j]), str(root / rels[j])) for j in idx]
        return
    # (check_archive refuses duplicated members, so each name has exactly one position)
    want = {source.prefix + r: i for i, r in enumerate(rels)}
    idx, items = [], []
    with tarfile.open(source.location) as tar:
        for m in tar:
            i = want.get(member_name(m))
            if i is None or not m.isfile():
                continue
            idx.append(i)
            items.append((f"{source.location}:{m.name}", tar.extractfile(m).read()))
            if len(idx) == CHUNK:
                yield idx, items
                idx, items = [], []
    if idx:
        yield idx, items


def _worker(func: Callable, conn, inherited: list) -> None:
    """A forked decoder: answer each chunk from conn until the parent closes it or dies."""
    # Ctrl-C reaches the whole process group; the parent alone decides, and kills us. A worker
    # dying of its own KeyboardInterrupt mid-message is what left multiprocessing.Pool hung.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (cli): just end
    for c in inherited:  # the other workers' parent ends: else a killed parent is never seen
        c.close()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", func(task))
        except StudyError as err:
            reply = ("study", str(err))
        except Exception as err:  # noqa: BLE001 - carried to the parent, which raises it
            reply = ("error", f"{type(err).__name__}: {err}")
        try:
            conn.send(reply)
        except OSError:  # the parent is gone (killed): no one to tell, nothing to print
            return


def imap_unordered(func: Callable, tasks: Iterable, workers: int) -> Iterator:
    """func(task) for every task, in completion order, at most `workers` in flight, in forked
    processes (threads when TensorFlow is loaded: forking its threads can deadlock, and spawn
    would re-run an unguarded __main__). Tasks are read here, in the calling thread. Closing
    the iterator (contextlib.closing: on Ctrl-C too) kills the processes at once, so nothing
    waits on a dead worker; threads finish their chunk (under a second)."""
    tasks = iter(tasks)
    if workers <= 1:
        yield from map(func, tasks)
    elif "tensorflow" in sys.modules:
        threads = ThreadPoolExecutor(workers)
        try:
            pending = set()
            for task in tasks:
                pending.add(threads.submit(func, task))
                while len(pending) >= workers:
                    done, pending = wait_futures(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            yield from (f.result() for f in pending)
        finally:
            threads.shutdown(wait=False, cancel_futures=True)
    else:
        yield from _forked(func, tasks, workers)


def _forked(func: Callable, tasks: Iterator, workers: int) -> Iterator:
    ctx = mp.get_context("fork")
    ends, procs = [], []
    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            ends.append(mine)
            procs.append(ctx.Process(target=_worker, args=(func, theirs, list(ends)), daemon=True))
            procs[-1].start()
            theirs.close()
        idle, busy, more = list(ends), set(), True
        while True:
            while idle and more:
                task = next(tasks, None)
                if task is None:
                    more = False
                    break
                conn = idle.pop()
                conn.send(task)
                busy.add(conn)
            if not busy:
                return
            for conn in wait_conns(list(busy)):
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError):
                    raise RuntimeError("a decoding worker died (out of memory?)") from None
                busy.discard(conn)
                idle.append(conn)
                if status == "study":
                    raise StudyError(payload)
                if status == "error":
                    raise RuntimeError(f"decoding worker: {payload}")
                yield payload
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=5)
        for c in ends:
            c.close()
