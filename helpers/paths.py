"""Where things live: the project root, data/ and reports/, resolved once."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CONFIGS = ROOT / "configs"


def data_dir() -> Path:
    """data/ (downloads and caches); CINIC10_DATA overrides it, e.g. for a shared scratch disk."""
    env = os.environ.get("CINIC10_DATA")
    return resolve(env).resolve() if env else ROOT / "data"  # relative: from the root, as --dataset


def resolve(path: str | os.PathLike) -> Path:
    """A user path: absolute as given, relative ones against the project root (not the cwd),
    so the notebooks (cwd notebooks/) and the CLI (cwd anywhere) agree."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()
