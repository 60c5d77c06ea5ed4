"""The run folder and what each notebook leaves there, all with provenance (versions, hardware,
code revision, time): <run>/figures/, <run>/results/NN_name.json (+ CSVs),
<run>/models/NN_name.keras."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers import timing
from helpers.atomic import write_atomic, write_json
from helpers.base import ROOT, resolve


def run_paths(run_dir: str | os.PathLike) -> dict[str, Path]:
    """The run folder's sub-folders, created on first use."""
    root = resolve(run_dir)
    out = {"root": root}
    for sub in ("figures", "results", "models", "executed"):
        out[sub] = root / sub
        out[sub].mkdir(parents=True, exist_ok=True)
    return out


def save_metrics(run_dir, name: str, metrics: dict, **context) -> Path:
    """results/<name>.json: the metrics plus provenance (profile, dataset, seed … in context, and
    this process's seconds per phase so far: helpers.timing). A "banner" entry, {"title",
    "text"} in plain text, opens the report in an orange box."""
    return write_json(
        run_paths(run_dir)["results"] / f"{name}.json",
        {**metrics, "provenance": provenance(**context, seconds_by_phase=timing.spent())},
    )


def save_table(run_dir, name: str, table: pd.DataFrame) -> Path:
    """results/<name>.csv, atomically."""
    return write_atomic(
        run_paths(run_dir)["results"] / f"{name}.csv", lambda p: table.to_csv(p, index=False)
    )


def save_model(run_dir, name: str, model) -> Path:
    """models/<name>.keras, atomically (Keras insists on the suffix)."""
    path = run_paths(run_dir)["models"] / f"{name}.keras"
    return write_atomic(path, model.save, suffix=".keras")


# --- provenance ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def git_revision() -> str:
    """HEAD's commit, '+dirty' when the tree has uncommitted changes; 'unknown' outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            text=True,
            capture_output=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or platform's guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    """Python and the libraries whose versions change numbers (the backend's own: tensorflow,
    or jax and jaxlib; TensorFlow is not imported when it is not the backend)."""
    from helpers import backend

    out = {"python": platform.python_version(), **backend.versions()}
    for mod in ("keras", "numpy", "papermill", "nbconvert"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = getattr(m, "__version__", "?")
    return out


def hardware() -> dict:
    """CPU, cores, and the GPUs the backend sees (if its library is imported already)."""
    from helpers import backend

    out = {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine()}
    if {"tensorflow": "tensorflow", "jax": "jax"}.get(backend.name()) in sys.modules:
        out["gpus"] = backend.gpus()
    return out


def provenance(**extra) -> dict:
    """The record attached to every result file, with the Keras backend that produced it."""
    from helpers import backend

    return {
        "git": git_revision(),
        "backend": backend.name(),
        "versions": versions(),
        "hardware": hardware(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
