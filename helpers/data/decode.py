"""Decode images in parallel for the cache: chunks of (name, bytes-or-path) read once from a
folder or an archive, decoded by worker processes (threads once TensorFlow is loaded), and a
pool that Ctrl-C or any error stops within seconds."""

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


def decode_chunk(chunk: list[tuple[str, bytes | str]]) -> tuple[np.ndarray, int]:
    """Decode (name, bytes-or-path) pairs to (n, 32, 32, 3) uint8; greyscale is widened to RGB."""
    from PIL import Image

    out = np.empty((len(chunk), 32, 32, 3), np.uint8)
    grey = 0
    for i, (name, data) in enumerate(chunk):
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
    return out, grey


def decode_indexed(chunk):
    """(indices, items) -> (indices, (n, 32, 32, 3) uint8, greyscale count)."""
    idx, items = chunk
    arr, grey = decode_chunk(items)
    return idx, arr, grey


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


class DecodePool:
    """`workers` forked processes (threads when TensorFlow is loaded: forking its threads can
    deadlock, and spawn would re-run an unguarded __main__). Use as a context manager: leaving
    it, normally or by Ctrl-C, kills the processes at once, so nothing waits on a dead worker."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self.threaded = "tensorflow" in sys.modules
        self._procs: list = []
        self._conns: list = []
        self._threads: ThreadPoolExecutor | None = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill every worker process now; threads finish their chunk (under a second)."""
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(timeout=5)
        for c in self._conns:
            c.close()
        self._procs, self._conns = [], []
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def imap_unordered(self, func: Callable, tasks: Iterable) -> Iterator:
        """func(task) for every task, in completion order, at most `workers` in flight (tasks
        are read from the iterable here, in the calling thread, so nothing else blocks on it)."""
        if self.workers == 1:
            yield from map(func, tasks)
        elif self.threaded:
            yield from self._threaded(func, iter(tasks))
        else:
            yield from self._forked(func, iter(tasks))

    def _threaded(self, func, tasks) -> Iterator:
        self._threads = ThreadPoolExecutor(self.workers)
        pending = set()
        for task in tasks:
            pending.add(self._threads.submit(func, task))
            while len(pending) >= self.workers:
                done, pending = wait_futures(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        for f in pending:
            yield f.result()

    def _forked(self, func, tasks) -> Iterator:
        ctx = mp.get_context("fork")
        ends = []
        for _ in range(self.workers):
            mine, theirs = ctx.Pipe()
            ends.append(mine)
            p = ctx.Process(target=_worker, args=(func, theirs, list(ends)), daemon=True)
            p.start()
            theirs.close()
            self._procs.append(p)
        self._conns = ends
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
