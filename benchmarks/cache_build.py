"""Decode once: seconds to cache the 60,000-image cifar10-jpeg archive from scratch (a fresh
data folder each time), and what that projects to for CINIC-10's 270,000 images.

    python benchmarks/cache_build.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import CIFAR10_JPEG, header, median


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from helpers.data import load_dataset

    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CINIC10_DATA"] = tmp
            t0 = time.perf_counter()
            ds = load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            load_dataset(str(CIFAR10_JPEG), say=lambda *_: None)
            warm.append(time.perf_counter() - t0)
    # the header imports TensorFlow (for its version): only after timing, since a process that
    # holds TensorFlow decodes with threads instead of forked workers
    header(f"cache build from {CIFAR10_JPEG.name}, median of {args.repeats} cold builds")
    n = sum(len(s) for s in ds.splits.values())
    rate = n / median(cold)
    print(
        f"{n} images: cold {median(cold):.1f} s ({rate:.0f} images/s, runs "
        f"{', '.join(f'{c:.1f}' for c in cold)}), cached load {median(warm):.1f} s"
    )
    print(f"projected for CINIC-10 (270,000 PNGs, 3 splits): {270_000 / rate:.0f} s at this rate")


if __name__ == "__main__":
    main()
