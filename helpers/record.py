"""<run>/run.json, the run's record (each notebook's profile, dataset, parameters and their
origins, status, seconds; every command), read-modify-written under its lock, one `run` at a
time per folder; and the checks of every file read back (run.json, a result, findings.json):
a damaged one is one StudyError naming the file, the field and what was expected."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from helpers.atomic import read_json, write_json
from helpers.base import StudyError

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
        """value, if it is one of types (a finite number; bool only where named), else fail."""
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types) or (
                isinstance(value, float) and not math.isfinite(value)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            self.fail(where, f"is {type(value).__name__} {short(value)}, expected {names}")
        return value

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


@contextmanager
def one_at_a_time(run_dir: Path):
    """<run>/.runner.lock held for a whole `run` command (released when the process dies, even by
    kill -9): a second run into the folder would mix its record and numbers with this one's, so
    it is refused at once, in one line naming the folder and the holder's pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock, pid_file = FileLock(run_dir / ".runner.lock", timeout=0), run_dir / ".runner.pid"
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = f"pid {int(pid_file.read_text())}"
        except (OSError, ValueError):  # (between its lock and its pid file)
            holder = "a process that is starting"
        raise StudyError(f"{run_dir}: another run ({holder}) is writing into this folder; wait "
                         "for it to end or stop it, or give this run another --out") from None
    try:
        pid_file.write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


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
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / ".run.lock"):
        record = read_record(run_dir)
        change(record)
        write_json(run_dir / "run.json", record)
    return record


def check_compatible(
    record: dict, stems: list[str], profile: str, fingerprint=None, backend: str | None = None
) -> None:
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
