"""Decode images in parallel for the cache: chunks of (name, bytes-or-path) read once from a
folder or an archive, decoded by a process pool (threads once TensorFlow is loaded) that
Ctrl-C or any error stops within a second."""

from __future__ import annotations

import concurrent.futures as cf
import io
import multiprocessing as mp
import os
import signal
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator

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


def _worker_init(parent: int) -> None:
    """A forked decoder: Ctrl-C reaches the whole process group, and the parent alone decides
    (a worker dying of its own KeyboardInterrupt mid-message hangs the pool); SIGTERM just ends
    it (not the cli's handler); a parent killed outright is noticed within a second, silently."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def exit_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, daemon=True).start()


def imap_unordered(func: Callable, tasks: Iterable, workers: int) -> Iterator:
    """func(task) for every task, in completion order, at most 2 * workers read ahead, in forked
    processes (threads when TensorFlow is loaded: forking its threads can deadlock, and spawn
    would re-run an unguarded __main__). Closing the iterator (contextlib.closing: on Ctrl-C
    too) cancels every task not started; the running ones end with their chunk (under a second)."""
    if workers <= 1:
        yield from map(func, tasks)
        return
    if "tensorflow" in sys.modules:
        pool: cf.Executor = cf.ThreadPoolExecutor(workers)
    else:
        pool = cf.ProcessPoolExecutor(workers, mp.get_context("fork"), _worker_init, (os.getpid(),))
    try:
        pending: set[cf.Future] = set()
        for task in tasks:
            pending.add(pool.submit(func, task))
            if len(pending) >= 2 * workers:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                yield from (f.result() for f in done)
        yield from (f.result() for f in cf.as_completed(pending))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
