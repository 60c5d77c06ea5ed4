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
    from helpers.artifacts import cpu_name, git_revision, versions

    v = versions()
    print(f"# {title}")
    print(
        f"# {cpu_name()}, {os.cpu_count()} cores, {platform.machine()} | "
        + ", ".join(f"{k} {x}" for k, x in v.items())
        + f" | code {git_revision()}"
    )


def median(xs) -> float:
    """The median of a list of numbers."""
    return statistics.median(xs)
