"""The run folder (figures/, results/ with provenance, models/, executed/) and which of its
notebooks stand: completed in the folder's current state (run.json), the only ones whose
results findings and later notebooks read."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers import backend, timing
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
    """results/<name>.json: metrics with provenance (context, this process's seconds per phase);
    a "banner" entry {"title", "text"} opens the report in an orange box."""
    return write_json(
        run_paths(run_dir)["results"] / f"{name}.json",
        {**metrics, "provenance": provenance(**context, seconds_by_phase=timing.spent())},
    )


def save_table(run_dir, name: str, table: pd.DataFrame) -> Path:
    """results/<name>.csv, atomically."""
    path = run_paths(run_dir)["results"] / f"{name}.csv"
    return write_atomic(path, lambda p: table.to_csv(p, index=False))


def save_model(run_dir, name: str, model) -> Path:
    """models/<name>.keras, atomically (Keras insists on the suffix)."""
    path = run_paths(run_dir)["models"] / f"{name}.keras"
    return write_atomic(path, model.save, suffix=".keras")


def completed(run_dir: Path, entry: dict) -> tuple[bool, str]:
    """(whether a notebook's entry is a finished result, why not): status completed, and its
    executed copy exists with every code cell run to the end by papermill."""
    status = entry.get("status", "completed")  # records before statuses: checked by the file
    if status == "running":
        return False, "it did not complete (the run was stopped or killed, or is still going)"
    if status == "failed":
        return False, "it failed"
    path = run_dir / entry.get("executed", "")
    if not path.is_file():
        return False, f"its executed notebook {path} is missing"
    try:  # (AttributeError, TypeError: JSON that is no notebook)
        states = [((c.get("metadata") or {}).get("papermill") or {}).get("status")
                  for c in json.loads(path.read_text()).get("cells", [])
                  if c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError, TypeError):
        return False, f"its executed notebook {path} is unreadable"
    unfinished = [s for s in states if s is not None and s != "completed"]
    if unfinished:
        return False, f"{len(unfinished)} of its cells did not run to the end"
    return True, ""


def completed_notebooks(run_dir, also: str | None = None) -> set[str] | None:
    """The notebooks of run_dir that are completed per run.json (a failed or killed rerun takes
    its notebook out), plus `also` (one reading its own results while it runs); None without
    run.json (notebooks run by hand): then all count."""
    path = resolve(run_dir) / "run.json"
    try:
        record = json.loads(path.read_text())
        books = record["notebooks"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        books = {}  # unreadable: nothing can be shown to stand (the report says why, in a line)
    root = path.parent
    done = {s for s, e in books.items()
            if isinstance(e, dict) and isinstance(e.get("executed", ""), str)
            and completed(root, e)[0]}
    return done | ({also} if also else set())


@lru_cache(maxsize=1)
def git_revision() -> str:
    """HEAD's commit (12 hex), '+dirty' when tracked files changed; 'unknown' outside git."""
    try:  # (--exclude='*': the commit, never a tag's name)
        return subprocess.run(["git", "describe", "--always", "--exclude=*", "--abbrev=12",
                               "--dirty=+dirty"], cwd=ROOT, text=True, capture_output=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (or platform's guess)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> dict:
    """Python and the libraries whose versions change numbers (the backend's own: tensorflow,
    or jax and jaxlib)."""
    return {"python": platform.python_version(),
            **backend.versions("keras", "numpy", "papermill", "nbconvert")}


def hardware() -> dict:
    """CPU, cores, and the GPUs the backend sees (if its library is imported already)."""
    out = {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine()}
    if {"tensorflow": "tensorflow", "jax": "jax"}.get(backend.name()) in sys.modules:
        out["gpus"] = backend.gpus()
    return out


def provenance(**extra) -> dict:
    """The record attached to every result file, with the Keras backend that produced it."""
    return {"git": git_revision(), "backend": backend.name(), "versions": versions(),
            "hardware": hardware(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
