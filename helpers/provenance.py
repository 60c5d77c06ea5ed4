"""What every result carries: versions, hardware, code revision, time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from functools import lru_cache

from .paths import ROOT


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
    """Python and the libraries whose versions change numbers."""
    out = {"python": platform.python_version()}
    for mod in ("tensorflow", "keras", "numpy", "papermill", "nbconvert"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = getattr(m, "__version__", "?")
    return out


def hardware() -> dict:
    """CPU, cores, and the GPUs TensorFlow sees (if it is imported)."""
    out = {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine()}
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        out["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    return out


def provenance(**extra) -> dict:
    """The record attached to every result file."""
    return {
        "git": git_revision(),
        "versions": versions(),
        "hardware": hardware(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
