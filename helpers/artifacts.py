"""The run folder: its files with their provenance, run.json, which notebooks stand, and the checks
of every file read back (a damaged one is one line naming the file, the field, what was wanted)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from helpers import backend
from helpers.atomic import read_json, write_atomic, write_json
from helpers.base import ROOT, StudyError, resolve

# a process's seconds per phase, over all its models. build: made ready and compiled; trace: the
# first training step's and validation batch's excess over a typical one (tracing, compiling);
# steps: the other steps; validation: the rest of fit's validation; evaluation: predictions
PHASES = ("build", "trace", "steps", "validation", "evaluation")
_SPENT: dict[str, float] = {}
NUMBER = (int, float)
TEXT = (str,)
OPTIONAL_TEXT = (str, type(None))
OPTIONAL_NUMBER = (int, float, type(None))
STEM = re.compile(r"\d\d_[A-Za-z0-9_]+")  # a notebook's name (notebooks/NN_name.ipynb)
STATUSES = ("running", "completed", "failed")
# run.json's fields as (required, optional) {key: types}: what the report reads
RECORD = ({"profile": TEXT, "dataset": (dict,), "notebooks": (dict,)},
          {"git": TEXT, "backend": TEXT, "time": TEXT, "seconds": NUMBER, "versions": (dict,),
           "hardware": (dict,), "commands": (list,)})
DATASET = {"dataset": TEXT, "kind": TEXT, "fingerprint": TEXT}
HARDWARE = {"cpu": TEXT, "cores": (int, type(None)), "gpus": (list,)}
ENTRY = {"status": TEXT, "seconds": NUMBER, "parameters": (dict,), "origins": (dict,),
         "error": OPTIONAL_TEXT, "rerun": OPTIONAL_TEXT, "profile": TEXT, "dataset": (dict,),
         "backend": TEXT}


def run_paths(run_dir: str | os.PathLike) -> dict[str, Path]:
    """The run folder's sub-folders, created on first use."""
    root = resolve(run_dir)
    subs = {sub: root / sub for sub in ("figures", "results", "models", "executed")}
    for folder in subs.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {"root": root, **subs}


def save_metrics(run_dir, name: str, metrics: dict, **context) -> Path:
    """results/<name>.json: metrics with provenance (context, this process's seconds per phase);
    a "banner" entry {"title", "text"} opens the report in an orange box."""
    extra = {**context, "seconds_by_phase": seconds_by_phase()}
    return write_json(run_paths(run_dir)["results"] / f"{name}.json",
                      {**metrics, "provenance": provenance(**extra)})


def save_table(run_dir, name: str, table: pd.DataFrame) -> Path:
    """results/<name>.csv, atomically."""
    path = run_paths(run_dir)["results"] / f"{name}.csv"
    return write_atomic(path, lambda p: table.to_csv(p, index=False))


def save_model(run_dir, name: str, model) -> Path:
    """models/<name>.keras, atomically (Keras insists on the suffix)."""
    return write_atomic(run_paths(run_dir)["models"] / f"{name}.keras", model.save, suffix=".keras")


def add_seconds(phase: str, seconds: float) -> None:
    """Count seconds (>= 0) against phase (one of PHASES)."""
    if phase not in PHASES:
        raise ValueError(f"timing phase {phase!r}: one of {', '.join(PHASES)}")
    _SPENT[phase] = _SPENT.get(phase, 0.0) + max(0.0, float(seconds))


@contextlib.contextmanager
def timed(phase: str):
    """Count the block's wall seconds against phase."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add_seconds(phase, time.perf_counter() - t0)


def seconds_by_phase() -> dict[str, float]:
    """Seconds per phase so far in this process, rounded to 0.01 s (phases not met left out)."""
    return {p: round(_SPENT[p], 2) for p in PHASES if p in _SPENT}


@lru_cache(maxsize=1)
def git_revision() -> str:
    """HEAD's commit (12 hex), '+dirty' when tracked files changed; 'unknown' outside git."""
    try:  # (--exclude='*': the commit, never a tag's name)
        return subprocess.run(["git", "describe", "--always", "--exclude=*", "--abbrev=12",
                               "--dirty=+dirty"], cwd=ROOT, text=True, capture_output=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(**extra) -> dict:
    """Every result's record: code, backend, the versions of the libraries that change numbers,
    hardware (the CPU as /proc/cpuinfo names it; GPUs if the backend is loaded), time."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        if found := re.search(r"^model name\s*:(.*)", Path("/proc/cpuinfo").read_text(), re.M):
            cpu = found[1].strip()
    hardware = {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine()}
    if backend.name() in sys.modules.keys() & {"tensorflow", "jax"}:
        hardware["gpus"] = backend.gpus()
    versions = backend.versions("keras", "numpy", "papermill", "nbconvert")
    return {"git": git_revision(), "backend": backend.name(), "hardware": hardware,
            "versions": {"python": platform.python_version(), **versions},
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}


def completed(run_dir: Path, entry: dict) -> tuple[bool, str]:
    """(finished?, why not) for a notebook's entry: completed, every executed code cell ran out."""
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
                  for c in read_json(path).get("cells", []) if c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError, TypeError):
        return False, f"its executed notebook {path} is unreadable"
    unfinished = sum(s not in (None, "completed") for s in states)
    if unfinished:
        return False, f"{unfinished} of its cells did not run to the end"
    return True, ""


def completed_notebooks(run_dir, also: str | None = None) -> set[str] | None:
    """The notebooks completed per run.json (a failed or killed rerun takes one out), plus `also`
    (one reading its own results as it runs); None without run.json (run by hand: all count)."""
    path = resolve(run_dir) / "run.json"
    try:
        books = read_json(path)["notebooks"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        books = {}  # unreadable: nothing can be shown to stand (the report says why, in a line)
    done = {s for s, e in books.items()
            if isinstance(e, dict) and isinstance(e.get("executed", ""), str)
            and completed(path.parent, e)[0]}
    return done | ({also} if also else set())


def short(value) -> str:
    """repr(value), cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checker:
    """Type checks for one file, each failure a StudyError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise StudyError(f"{self.path}: {where} {what}; this file is damaged or from another "
                         "version: delete it and rerun the notebooks (`python -m helpers run ... "
                         "--out` this folder)")

    def need(self, value, types: tuple, where: str):
        """Fail unless value is one of types (a finite number; bool only where named)."""
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types) or (
                isinstance(value, float) and not math.isfinite(value)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            self.fail(where, f"is {type(value).__name__} {short(value)}, expected {names}")

    def fields(self, obj: dict, where: str, required: dict, optional: dict | None = None):
        """Each required key present with its types; each optional key, if present, too."""
        for key, types in {**required, **(optional or {})}.items():
            if key in obj:
                self.need(obj[key], types, f"{where}{key}")
            elif key in required:
                self.fail(f"{where}{key}", "is missing")


def check_record(record, path: Path) -> dict:
    """run.json as the report reads it (what runner.run writes)."""
    c = Checker(path)
    c.need(record, (dict,), "the file")
    c.fields(record, "", *RECORD)
    c.fields(record["dataset"], "dataset.", DATASET, {"note": OPTIONAL_TEXT})
    for key, value in record.get("versions", {}).items():
        c.need(value, TEXT, f"versions.{key}")
    c.fields(record.get("hardware", {}), "hardware.", {}, HARDWARE)
    for i, command in enumerate(record.get("commands", [])):
        c.need(command, (dict,), f"commands[{i}]")
        c.fields(command, f"commands[{i}].", {"seconds": NUMBER})
    for stem, entry in record["notebooks"].items():
        if not STEM.fullmatch(stem):
            c.fail(f"notebooks.{short(stem)}", "is not a notebook's name (NN_name)")
        where = f"notebooks.{stem}."
        c.need(entry, (dict,), f"notebooks.{stem}")
        c.fields(entry, where, {"executed": TEXT}, ENTRY)
        if entry.get("status", "completed") not in STATUSES:
            c.fail(f"{where}status", f"is {short(entry['status'])}, expected one of {STATUSES}")
        for key, origin in entry.get("origins", {}).items():
            c.need(origin, TEXT, f"{where}origins.{key}")
        c.fields(entry.get("dataset", {}), f"{where}dataset.", {}, DATASET)
    return record


def check_result(result, path: Path) -> dict:
    """A notebook's results/NN_name.json, as far as the report reads it (its banner)."""
    c = Checker(path)
    c.need(result, (dict,), "the file")
    c.fields(result, "", {}, {"banner": (dict,)})
    if "banner" in result:
        c.fields(result["banner"], "banner.", {"title": TEXT, "text": TEXT})
    return result


def one_at_a_time(run_dir: Path):
    """<run>/.runner.lock for a whole `run` (freed when the process dies): a second run would mix
    its record and numbers with this one's, so it is refused at once, naming the holder's pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / ".runner.pid"
    try:
        held = FileLock(run_dir / ".runner.lock").acquire(timeout=0)
    except Timeout:
        try:
            holder = f"pid {int(pid_file.read_text())}"
        except (OSError, ValueError):  # (between its lock and its pid file)
            holder = "a process that is starting"
        raise StudyError(f"{run_dir}: another run ({holder}) is writing into this folder; wait "
                         "for it to end or stop it, or give this run another --out") from None
    pid_file.write_text(f"{os.getpid()}\n")
    return held  # a `with` block releases it


def read_record(run_dir: Path, checked: bool = False) -> dict:
    """run.json as a dict ({} when there is none); a garbled one is a one-line error. checked:
    checked as `report` checks it (check_record), before a run writes into the folder."""
    path = run_dir / "run.json"
    if not path.exists():
        return {}
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({err}); delete it and rerun the notebooks") from None
    if not isinstance(record, dict):
        raise StudyError(f"{path}: not a run record (expected a JSON object)")
    if checked:
        check_record(record, path)
    record.setdefault("notebooks", {})
    return record


def update_record(run_dir: Path, change: Callable[[dict], None]) -> dict:
    """Under <run>/.run.lock: re-read run.json, change(record) in place, write it atomically."""
    with FileLock(run_dir / ".run.lock"):  # (filelock makes the folder)
        record = read_record(run_dir)
        change(record)
        write_json(run_dir / "run.json", record)
    return record


def check_compatible(record: dict, stems: list[str], profile: str, fingerprint=None,
                     backend: str | None = None) -> None:
    """Refuse a run into a folder whose other notebooks (those this run does not redo) came from
    another profile, dataset or Keras backend: one report would mix them under one heading."""
    for stem, entry in record.get("notebooks", {}).items():
        if stem in stems:
            continue
        theirs = entry.get("profile", record.get("profile"))
        dataset = entry.get("dataset") or record.get("dataset") or {}
        fp = dataset.get("fingerprint")
        on = entry.get("backend", record.get("backend", "tensorflow"))  # unrecorded: TensorFlow
        if theirs != profile:
            why = f"from profile {theirs!r}, this run is {profile!r}", "with this profile"
        elif backend and on != backend:
            why = (f"run on the {on} backend, this run is on {backend} (KERAS_BACKEND)",
                   f"on {backend}")
        elif fingerprint and fp and fp != fingerprint:
            why = (f"run on dataset {dataset.get('dataset', '?')} ({fp}), this run's dataset has "
                   f"fingerprint {fingerprint}", "on this dataset")
        else:
            continue
        raise StudyError(f"the run folder holds {stem} {why[0]}: use another --out, or rerun "
                         f"every notebook {why[1]}")
