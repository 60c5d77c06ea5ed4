"""What keying the cache on every image's content costs: seconds to fingerprint cifar10-jpeg
(60,000 JPEGs) as its .tar.gz and as an extracted folder, against listing names and sizes only
(the fingerprint before cache version 2), and a load of the finished cache; projected to
CINIC-10's 270,000 PNGs (about 690 MB). Every load of a dataset pays it once per process.

    python benchmarks/fingerprint.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CIFAR10_JPEG, header, median

CINIC10_IMAGES, CINIC10_BYTES = 270_000, 690e6  # its archive; PNGs barely compress


def _timed(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return median(runs)


def _big_archive(folder: Path, megabytes: int = 64) -> Path:
    """A .tar.gz of a few large incompressible members: its reading cost is all bytes."""
    rng = np.random.default_rng(0)
    path = folder / "big.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for i in range(megabytes // 8):
            data = rng.integers(0, 256, 8 << 20, dtype=np.uint8).tobytes()
            info = tarfile.TarInfo(f"m{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from helpers.data import load_dataset, sources

    def headers(archive):  # names and sizes: the whole gzip stream is read all the same
        with tarfile.open(archive) as tar:
            tar.getmembers()

    def content(archive):
        sources.check_archive(archive)

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(CIFAR10_JPEG) as tar:
            tar.extractall(tmp, filter="data")
        root = next(Path(tmp).iterdir())
        n_bytes = sum(f.stat().st_size for f in root.rglob("*.jpg"))
        big = _big_archive(Path(tmp))

        def folder_sizes():
            for dirpath, _, names in os.walk(root):
                for n in names:
                    os.stat(os.path.join(dirpath, n))

        os.environ["CINIC10_DATA"] = str(Path(tmp) / "data")
        load_dataset(str(root), say=lambda *_: None)  # build the cache once
        load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)
        t = {
            "archive: names and sizes": _timed(lambda: headers(CIFAR10_JPEG), args.repeats),
            "archive: content": _timed(lambda: content(CIFAR10_JPEG), args.repeats),
            "64 MB archive: names and sizes": _timed(lambda: headers(big), args.repeats),
            "64 MB archive: content": _timed(lambda: content(big), args.repeats),
            "folder: names and sizes": _timed(folder_sizes, args.repeats),
            "folder: content": _timed(lambda: sources._walk_images(root), args.repeats),
            "folder: load of the finished cache": _timed(
                lambda: load_dataset(str(root), say=lambda *_: None), args.repeats),
            "archive: load of the finished cache": _timed(
                lambda: load_dataset(str(CIFAR10_JPEG), say=lambda *_: None), args.repeats),
        }
    header(f"fingerprint of {CIFAR10_JPEG.name} (60,000 images, {n_bytes / 1e6:.0f} MB), median "
           f"of {args.repeats}")
    for what, seconds in t.items():
        print(f"{what:<40} {seconds:6.2f} s")
    # a model per way of reading: seconds = per image x images + per byte x bytes, the byte
    # rates from the 64 MB archive of large members, the image rate from cifar10-jpeg
    big_bytes = 64 << 20
    out = {}
    for way in ("names and sizes", "content"):
        per_byte = t[f"64 MB archive: {way}"] / big_bytes
        per_image = (t[f"archive: {way}"] - per_byte * n_bytes) / 60_000
        out[way] = per_image * CINIC10_IMAGES + per_byte * CINIC10_BYTES
    hash_per_byte = (t["64 MB archive: content"] - t["64 MB archive: names and sizes"]) / big_bytes
    per_file = (t["folder: content"] - t["folder: names and sizes"]) / 60_000
    folder_extra = per_file * CINIC10_IMAGES + hash_per_byte * CINIC10_BYTES
    print(f"projected for CINIC-10 (270,000 PNGs, ~690 MB): archive {out['names and sizes']:.0f} s "
          f"names and sizes -> {out['content']:.0f} s content (+{out['content'] - out['names and sizes']:.0f} s); "
          f"folder +{folder_extra:.0f} s over names and sizes")


if __name__ == "__main__":
    main()
