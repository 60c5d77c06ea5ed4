"""Decode once: every image in parallel (Ctrl-C or an error stops it at once) into a uint8 cache
keyed by the source's fingerprint, written atomically under a lock, loaded without pickle."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from PIL import Image

from helpers.atomic import atomic_dir, build_once, read_json, write_json
from helpers.base import StudyError, data_dir, progress_bar
from helpers.data.dataset import Split, carve_valid
from helpers.data.sources import Source, member_name

CACHE_VERSION = 2  # 2: keyed on every image's content (1: on names and sizes)
CHUNK = 1000  # images a decoding task


def check_carving(valid_fraction, seed) -> None:
    """Refuse a valid fraction outside (0, 1) (nan included) or a negative seed, in one line."""
    number = isinstance(valid_fraction, int | float) and not isinstance(valid_fraction, bool)
    if not (number and 0 < valid_fraction < 1):  # (False for nan)
        raise StudyError(f"valid fraction {valid_fraction!r}: expected a number between 0 and 1 "
                         "(exclusive), e.g. 0.1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise StudyError(f"seed {seed!r}: expected a whole number >= 0")


def fingerprint(source: Source, valid_fraction: float, seed: int) -> str:
    """sha256 of the cache format, every image's path, class and content digest, and the carving."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{source.kind}".encode())
    if "valid" not in source.files:
        h.update(f"|carve {valid_fraction} seed {seed}".encode())
    for split in sorted(source.files):
        for rel, c, digest in source.files[split]:
            h.update(f"{rel}\0{c}\0{digest}\n".encode())
    return h.hexdigest()[:16]


def image_source(name: str) -> str:
    """CINIC-10 file names say where an image came from: cifar10-… or an ImageNet synset n…_…."""
    if name.startswith("cifar10-"):
        return "cifar10"
    if name[:1] == "n" and "_" in name and name[1 : name.index("_")].isdigit():
        return "imagenet"
    return "synthetic" if name.startswith("synthetic-") else "other"


def build_cache(source: Source, *, valid_fraction: float = 0.1, seed: int = 0, say=print) -> Path:
    """data/cache/<name>-<fingerprint>/, decoded once (build_once); refuses a train/ too small to
    carve a valid split with every class on both sides."""
    if "valid" not in source.files:
        n = np.bincount([c for _, c, _ in source.files["train"]], minlength=len(source.classes))
        k = np.round(valid_fraction * n)  # what carve_valid takes from each class
        bad = [f"{cls} {n[c]}" for c, cls in enumerate(source.classes) if k[c] in (0, n[c])]
        if bad:
            raise StudyError(f"{source.location / source.prefix / 'train'}: too few images to "
                             f"carve {valid_fraction:.0%} of each class as valid (train/ images "
                             f"per class: {', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''});"
                             " add a valid/ folder or more images")
    fp = fingerprint(source, valid_fraction, seed)
    dest = data_dir() / "cache" / f"{source.name}-{fp}"
    build = partial(_build, source, fp, dest, valid_fraction, seed, say)
    return build_once(dest, "meta.json", build, "cache", say)  # meta.json: written last


def _build(source, fp, dest, valid_fraction, seed, say) -> None:
    """Decode and write the cache into a temporary folder, renamed to dest when whole."""
    _clean_stale_partials(dest.parent)
    t0 = time.perf_counter()
    workers = min(os.cpu_count() or 1, 8)
    files, classes = source.files, source.classes
    rows = [r for split in files for r in files[split]]  # one pass over an archive
    with atomic_dir(dest) as tmp:  # no meta.json in dest (checked under the lock): not whole
        with progress_bar(total=len(rows), desc=f"decoding {source.name}", unit="img") as bar:
            x_all, greys = _decode_all(source, [r[0] for r in rows], workers, bar.update)
        cuts = np.cumsum([len(v) for v in files.values()])[:-1]  # rows split by split
        arrays = {split: (x, np.array([r[1] for r in rs], np.int64),
                          np.array([Path(r[0]).name for r in rs]))
                  for (split, rs), x in zip(files.items(), np.split(x_all, cuts))}
        if "valid" not in arrays:
            x, y, n = arrays["train"]
            tr, va = carve_valid(y, valid_fraction, seed)
            arrays["train"], arrays["valid"] = (x[tr], y[tr], n[tr]), (x[va], y[va], n[va])
            say(f"{source.location}: no valid/ split; carved {valid_fraction:.0%} of train/ per "
                f"class as valid (stratified, seed {seed})")
        for split, (x, y, n) in arrays.items():
            src = np.array([image_source(s) for s in n])
            np.savez(tmp / f"{split}.npz", x=x, y=y, names=n, sources=src)
        write_json(tmp / "meta.json", dict(  # written last: its presence marks a whole cache
            name=source.name, kind=source.kind, location=str(source.location),
            prefix=source.prefix, fingerprint=fp, classes=classes, valid_carved="valid" not in files,
            counts={k: np.bincount(y, minlength=len(classes)).tolist()
                    for k, (_, y, _) in arrays.items()},
            valid_fraction=valid_fraction, seed=seed, greyscale_widened=greys, workers=workers,
            cache_version=CACHE_VERSION, decode_seconds=round(time.perf_counter() - t0, 2)))
    if greys:
        say(f"{source.location}: {greys} greyscale images widened to RGB")


def _clean_stale_partials(cache_dir: Path) -> None:
    """Remove other caches' .partial folders whose builder is gone (its lock is free)."""
    for part in cache_dir.glob(".*.partial"):
        key = part.name[1:].rsplit(".", 2)[0]  # .<NAME-FP>.<mkdtemp's 8 chars>.partial
        with suppress(Timeout, OSError), FileLock(cache_dir / f".{key}.lock").acquire(timeout=0):
            shutil.rmtree(part, ignore_errors=True)


@contextmanager
def _readable(path: Path) -> Iterator[Path]:
    """Damage to the cache file read in the block is one line naming it and the folder to delete."""
    try:
        yield path
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        why = (str(err).splitlines() or [""])[0][:100] or "unreadable"
        raise StudyError(f"{path}: damaged cache file ({type(err).__name__}: {why}); delete "
                         f"{path.parent} and rerun to rebuild it") from None


def load_split(cache: Path, split: str) -> Split:
    """One split from a cache folder, without pickle."""
    with _readable(cache / f"{split}.npz") as path, np.load(path, allow_pickle=False) as z:
        return Split(z["x"], z["y"], z["names"], z["sources"])


def load_meta(cache: Path) -> dict:
    """The cache's meta.json."""
    with _readable(cache / "meta.json") as path:
        return read_json(path)


def archive_memo(path: Path, valid_fraction: float, seed: int) -> Path:
    """data/cache/archives/<key>.json naming the cache an archive made, keyed by its path, size,
    mtime, carving and this layer's code (each kernel loads it; reading CINIC-10 takes minutes)."""
    st = path.stat()
    code = b"".join(Path(__file__).with_name(m).read_bytes()
                    for m in ("sources.py", "dataset.py", "cache.py"))
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{valid_fraction}|{seed}|v{CACHE_VERSION}"
    digest = hashlib.sha256(key.encode() + code).hexdigest()[:24]
    return data_dir() / "cache" / "archives" / f"{digest}.json"


def known_archive(path: Path, valid_fraction: float, seed: int) -> Path | None:
    """The cache the archive at path made before (unchanged, same settings and code), or None."""
    try:
        cache = data_dir() / "cache" / read_json(archive_memo(path, valid_fraction, seed))["cache"]
        return cache if path.is_file() and load_meta(cache)["location"] == str(path) else None
    except (OSError, ValueError, KeyError, TypeError, StudyError):
        return None  # not an archive, not met yet, or a damaged memo or cache: not trusted


def decode_chunk(chunk: tuple[list[int], list[tuple[str, bytes | str]]]):
    """(indices, [(name, bytes-or-path)]) -> (indices, (n, 32, 32, 3) uint8, greyscale widened)."""
    idx, items = chunk
    out = np.empty((len(items), 32, 32, 3), np.uint8)
    grey = 0
    for i, (name, data) in enumerate(items):
        try:
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                im.load()
                if im.size != (32, 32) or im.mode not in ("RGB", "L"):
                    raise StudyError(f"{name}: image is {im.size[0]}x{im.size[1]} {im.mode}, "
                                     "expected 32x32 RGB")
                grey += im.mode == "L"
                out[i] = np.asarray(im.convert("RGB") if im.mode == "L" else im)
        except StudyError:
            raise
        except Exception as err:  # PIL raises many types for corrupt or truncated files
            raise StudyError(f"{name}: corrupt or truncated image ({err})") from None
    return idx, out, grey


def chunks(source: Source, rels: list[str]) -> Iterator[tuple[list[int], list]]:
    """(indices, [(name, bytes-or-path)]) chunks of the images rels; an archive streamed once in
    member order (check_archive refused a name twice: each index is met once)."""
    if not source.location.is_file():  # a folder
        root = source.location / source.prefix
        for i in range(0, len(rels), CHUNK):
            paths = [str(root / r) for r in rels[i : i + CHUNK]]
            yield list(range(i, i + len(paths))), list(zip(paths, paths))
        return
    want = {source.prefix + r: i for i, r in enumerate(rels)}
    idx, items = [], []
    with tarfile.open(source.location) as tar:
        for m in (m for m in tar if m.isfile() and member_name(m) in want):
            idx.append(want[member_name(m)])
            items.append((f"{source.location}:{m.name}", tar.extractfile(m).read()))
            if len(idx) == CHUNK:
                yield idx, items
                idx, items = [], []
    if idx:
        yield idx, items


def _worker_init(parent: int) -> None:
    """A forked decoder ignores Ctrl-C (one dying mid-message hangs the pool: the parent decides),
    dies of SIGTERM (not the cli's handler), and exits within a second of its parent's death."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def exit_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_when_orphaned, daemon=True).start()


def _decode_all(source: Source, rels: list[str], workers: int, progress) -> tuple[np.ndarray, int]:
    """rels as (n, 32, 32, 3) uint8 and the greyscale count, decoded by forked workers (threads once
    TensorFlow is loaded: forking its threads can deadlock), two chunks each read ahead."""
    out = np.empty((len(rels), 32, 32, 3), np.uint8)
    written = np.zeros(len(rels), bool)  # a row never written must show, not pass as black
    greys = []

    def take(done: Iterable[cf.Future]) -> None:
        for idx, arr, g in (f.result() for f in done):
            out[idx], written[idx] = arr, True
            greys.append(g)
            progress(len(idx))

    if "tensorflow" in sys.modules:
        pool: cf.Executor = cf.ThreadPoolExecutor(workers)
    else:
        pool = cf.ProcessPoolExecutor(workers, mp.get_context("fork"), _worker_init, (os.getpid(),))
    try:
        pending: set[cf.Future] = set()
        for chunk in chunks(source, rels):
            pending.add(pool.submit(decode_chunk, chunk))
            if len(pending) >= 2 * workers:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                take(done)
        take(cf.as_completed(pending))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not written.all():
        missing = np.flatnonzero(~written)
        raise StudyError(f"{source.location}: {len(missing)} listed images were never read "
                         f"(first {source.prefix}{rels[missing[0]]}); is the archive changing?")
    return out, sum(greys)
