"""Decode once: every split's images into a uint8 array cache, keyed by a fingerprint of the
source, loaded later without pickle and without touching an image file again."""

from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import os
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import read_json, write_json
from .errors import StudyError
from .paths import data_dir
from .progress import progress_bar
from .sources import (
    CINIC10_PER_SPLIT_CLASS,
    SPLITS,
    Source,
    cinic10_shortfalls,
    layout_tree,
    member_name,
)

CACHE_VERSION = 1
CHUNK = 1000


@dataclass
class Split:
    """One split in memory: x (n, 32, 32, 3) uint8, y (n,) int64, names and sources (n,) str."""

    x: np.ndarray
    y: np.ndarray
    names: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> Split:
        """The rows idx, as a new Split."""
        return Split(self.x[idx], self.y[idx], self.names[idx], self.sources[idx])


def scan_layout(source: Source) -> tuple[list[str], dict[str, list[tuple[str, int, int]]]]:
    """Classes and, per split, (relative path, class index, size) of every image, sorted.
    Refuses a missing train/ or test/, class folders that differ between splits, empty splits,
    and (for CINIC-10) anything but 3 splits x 10 classes x 9,000 images."""
    where = source.location / source.prefix
    tree = layout_tree(source)
    for required in ("train", "test"):
        if required not in tree:
            raise StudyError(
                f"{where / required}: split missing or empty (need train/ and test/ "
                "with <class>/*.png|jpg inside; valid/ optional)"
            )
    classes = sorted(tree["train"])
    files: dict[str, list[tuple[str, int, int]]] = {}
    for split in (s for s in SPLITS if s in tree):
        found = sorted(tree[split])
        if found != classes:
            extra, missing = set(found) - set(classes), set(classes) - set(found)
            raise StudyError(
                f"{where / split}: class folders differ from train/'s "
                f"(extra {sorted(extra)}, missing {sorted(missing)})"
            )
        files[split] = [
            (rel, c, size) for c, cls in enumerate(classes) for rel, size in tree[split][cls]
        ]
    if source.kind == "cinic10":
        bad = cinic10_shortfalls(tree)
        if bad:
            raise StudyError(
                f"{where}: not a complete CINIC-10 (expected 3 splits x 10 classes x "
                f"{CINIC10_PER_SPLIT_CLASS} images; got {', '.join(bad[:3])}...)"
            )
    return classes, files


def fingerprint(source: Source, files: dict, valid_fraction: float, seed: int) -> str:
    """sha256 of the cache format, the file list with sizes, and (if valid/ is carved) how."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{source.kind}".encode())
    if "valid" not in files:
        h.update(f"|carve {valid_fraction} seed {seed}".encode())
    for split in sorted(files):
        for rel, c, size in files[split]:
            h.update(f"{rel}\0{c}\0{size}\n".encode())
    return h.hexdigest()[:16]


def image_source(name: str) -> str:
    """CINIC-10 file names say where an image came from: cifar10-… or an ImageNet synset n…_…."""
    if name.startswith("cifar10-"):
        return "cifar10"
    if name[:1] == "n" and "_" in name and name[1 : name.index("_")].isdigit():
        return "imagenet"
    return "synthetic" if name.startswith("synthetic-") else "other"


def _decode_chunk(chunk: list[tuple[str, bytes | str]]) -> tuple[np.ndarray, int]:
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


def _chunks(source: Source, rels: list[str]):
    """(indices, [(name, bytes-or-path)]) chunks; archives are streamed once, never extracted,
    in their own member order (the indices put each image back in its place)."""
    if not source.is_archive:
        root = source.location / source.prefix
        for i in range(0, len(rels), CHUNK):
            idx = list(range(i, min(i + CHUNK, len(rels))))
            yield idx, [(str(root / rels[j]), str(root / rels[j])) for j in idx]
        return
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


def _decode_indexed(chunk):
    idx, items = chunk
    arr, grey = _decode_chunk(items)
    return idx, arr, grey


def _decode_all(source: Source, rels: list[str], workers: int, progress) -> tuple[np.ndarray, int]:
    """All images rels of source as (n, 32, 32, 3) uint8, decoded by `workers` processes."""
    out = np.empty((len(rels), 32, 32, 3), np.uint8)
    grey = 0
    if workers <= 1:
        results, pool = map(_decode_indexed, _chunks(source, rels)), None
    else:
        # Forking a process that holds TensorFlow's threads can deadlock, and spawn re-runs an
        # unguarded __main__ script: threads there (Pillow releases the GIL while decoding).
        from multiprocessing.pool import ThreadPool

        threaded = "tensorflow" in sys.modules
        pool = ThreadPool(workers) if threaded else mp.get_context("fork").Pool(workers)
        results = pool.imap_unordered(_decode_indexed, _chunks(source, rels))
    try:
        for idx, arr, g in results:
            out[idx] = arr
            grey += g
            progress(len(idx))
    finally:
        if pool is not None:
            pool.terminate()
    return out, grey


def carve_valid(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of train indices into (train, valid): `fraction` of every class."""
    rng = np.random.default_rng(seed)
    train_idx, valid_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * len(idx)))
        valid_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(valid_idx))


def build_cache(
    source: Source,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    workers: int | None = None,
    say=print,
) -> Path:
    """Decode source into data/cache/<name>-<fingerprint>/ (once) and return that folder."""
    classes, files = scan_layout(source)
    fp = fingerprint(source, files, valid_fraction, seed)
    dest = data_dir() / "cache" / f"{source.name}-{fp}"
    if (dest / "meta.json").exists():
        return dest
    t0 = time.perf_counter()
    workers = workers or min(os.cpu_count() or 1, 8)
    total = sum(len(v) for v in files.values())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        rows = [r for split in files for r in files[split]]  # one pass over an archive
        with progress_bar(total=total, desc=f"decoding {source.name}", unit="img") as bar:
            x_all, greys = _decode_all(source, [r[0] for r in rows], workers, bar.update)
        arrays, start = {}, 0
        for split, split_rows in files.items():
            end = start + len(split_rows)
            names = np.array([Path(r[0]).name for r in split_rows])
            y = np.array([r[1] for r in split_rows], np.int64)
            arrays[split] = (x_all[start:end], y, names)
            start = end
        if "valid" not in arrays:
            x, y, n = arrays["train"]
            tr, va = carve_valid(y, valid_fraction, seed)
            arrays["train"], arrays["valid"] = (x[tr], y[tr], n[tr]), (x[va], y[va], n[va])
            say(
                f"{source.location}: no valid/ split; carved {valid_fraction:.0%} of train/ per class "
                f"as valid (stratified, seed {seed})"
            )
        counts = {}
        for split, (x, y, n) in arrays.items():
            src = np.array([image_source(s) for s in n])
            np.savez(tmp / f"{split}.npz", x=x, y=y, names=n, sources=src)
            counts[split] = np.bincount(y, minlength=len(classes)).tolist()
        meta = {
            "name": source.name,
            "kind": source.kind,
            "location": str(source.location),
            "prefix": source.prefix,
            "fingerprint": fp,
            "classes": classes,
            "counts": counts,
            "valid_carved": "valid" not in files,
            "valid_fraction": valid_fraction,
            "seed": seed,
            "greyscale_widened": greys,
            "cache_version": CACHE_VERSION,
            "decode_seconds": round(time.perf_counter() - t0, 2),
            "workers": workers,
        }
        write_json(tmp / "meta.json", meta)  # written last: its presence marks a whole cache
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if greys:
        say(f"{source.location}: {greys} greyscale images widened to RGB")
    return dest


def load_split(cache: Path, split: str) -> Split:
    """One split from a cache folder, without pickle."""
    with np.load(cache / f"{split}.npz", allow_pickle=False) as z:
        return Split(z["x"], z["y"], z["names"], z["sources"])


def load_meta(cache: Path) -> dict:
    """The cache's meta.json."""
    return read_json(cache / "meta.json")
