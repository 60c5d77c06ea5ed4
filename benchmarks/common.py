"""Shared bits of the benchmarks: the hardware/software header, medians, the real data."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers.base import CIFAR10_JPEG  # noqa: E402, F401  (for the benchmarks)


def header(title: str) -> None:
    """Print what ran where: every figure travels with its hardware and versions."""
    import keras

    from helpers.artifacts import provenance

    p = provenance()
    print(f"# {title} | Keras backend {keras.backend.backend()}")
    print(
        f"# {p['hardware']['cpu']}, {os.cpu_count()} cores, {platform.machine()} | "
        + ", ".join(f"{k} {x}" for k, x in p["versions"].items())
        + f" | code {p['git']}"
    )


def fit_rate(model, batch: int, steps: int, repeats: int) -> float:
    """Median training images/s of a compiled model over repeats epochs of steps batches of
    random 32x32 images, after a warm-up epoch (tracing, compilation)."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile / warm up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        rates.append(len(x) / (time.perf_counter() - t0))
    return statistics.median(rates)


def extracted(archive: Path) -> Path:
    """The archive's files under data/raw/<name>/, extracted once (the study reads archives in
    place; two benchmarks compare it with image files on disk). tarfile's "data" filter refuses
    links, absolute or '..' paths and devices."""
    import tarfile

    from helpers.atomic import atomic_dir
    from helpers.base import data_dir

    dest = data_dir() / "raw" / archive.name.removesuffix(".gz").removesuffix(".tar")
    if not dest.is_dir():
        with atomic_dir(dest) as tmp, tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
    return dest


def median(xs) -> float:
    """The median of a list of numbers."""
    return statistics.median(xs)


BACKENDS = ("tensorflow", "jax")


def backend_option(argv: list[str] | None = None) -> str:
    """`--backend tensorflow|jax` (default: KERAS_BACKEND, else tensorflow), read from the
    command line before Keras is imported (Keras picks its backend once, at import); sets
    KERAS_BACKEND so the helpers and Keras both use it. Call before `import keras`."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = os.environ.get("KERAS_BACKEND", "tensorflow")
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            chosen = argv[i + 1]
        elif arg.startswith("--backend="):
            chosen = arg.split("=", 1)[1]
    if chosen not in BACKENDS:
        raise SystemExit(f"--backend {chosen}: one of {', '.join(BACKENDS)}")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


def add_backend_argument(parser) -> None:
    """The --backend option in a benchmark's argparse help (backend_option has read it)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default: KERAS_BACKEND, else tensorflow)",
    )
