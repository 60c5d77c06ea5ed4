"""<run>/run.json, the run's record, and the checks of every file read back from a run folder.

run.json says what each notebook of the folder is (profile, dataset fingerprint, parameters with
their origins, status running | completed | failed, seconds) and every command that wrote into
it. One `run` command at a time holds the folder (one_at_a_time); run.json itself is
read-modify-written under a file lock of its own and written atomically. A file read back
(run.json, a results/NN_name.json, findings.json through Checker) that is truncated, hand-edited
or from another version is one StudyError naming the file, the field and what was expected,
never a KeyError from deep inside whatever reads it."""

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


def short(value) -> str:
    """repr(value), cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checker:
    """Type checks for one file, each failure a StudyError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise StudyError(
            f"{self.path}: {where} {what}; this file is damaged or from another version: delete "
            "it and rerun the notebooks (`python -m helpers run ... --out` this folder)"
        )

    def need(self, value, types: tuple, where: str):
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            self.fail(where, f"is {type(value).__name__} {short(value)}, expected {names}")
        return value

    def fields(self, obj: dict, where: str, required: dict, optional: dict | None = None):
        """Each required key present with its types; each optional key, if present, too."""
        for key, types in required.items():
            if key not in obj:
                self.fail(f"{where}{key}", "is missing")
            self.need(obj[key], types, f"{where}{key}")
        for key, types in (optional or {}).items():
            if key in obj:
                self.need(obj[key], types, f"{where}{key}")


def check_record(record, path: Path) -> dict:
    """run.json as the report reads it (what runner.run writes)."""
    c = Checker(path)
    c.need(record, (dict,), "the file")
    c.fields(record, "", {"profile": TEXT, "dataset": (dict,), "notebooks": (dict,)},
             {"git": TEXT, "backend": TEXT, "time": TEXT, "seconds": NUMBER,
              "versions": (dict,), "hardware": (dict,), "commands": (list,)})
    c.fields(record["dataset"], "dataset.", {"dataset": TEXT, "kind": TEXT, "fingerprint": TEXT},
             {"note": OPTIONAL_TEXT})
    for key, value in record.get("versions", {}).items():
        c.need(value, TEXT, f"versions.{key}")
    c.fields(record.get("hardware", {}), "hardware.", {},
             {"cpu": TEXT, "cores": (int, type(None)), "gpus": (list,)})
    for i, command in enumerate(record.get("commands", [])):
        c.need(command, (dict,), f"commands[{i}]")
        c.fields(command, f"commands[{i}].", {"seconds": NUMBER})
    for stem, entry in record["notebooks"].items():
        if not STEM.fullmatch(stem):
            c.fail(f"notebooks.{short(stem)}", "is not a notebook's name (NN_name)")
        where = f"notebooks.{stem}."
        c.need(entry, (dict,), f"notebooks.{stem}")
        c.fields(entry, where, {"executed": TEXT},
                 {"status": TEXT, "seconds": NUMBER, "parameters": (dict,), "origins": (dict,),
                  "error": OPTIONAL_TEXT, "rerun": OPTIONAL_TEXT, "profile": TEXT,
                  "dataset": (dict,), "backend": TEXT})
        if entry.get("status", "completed") not in STATUSES:
            c.fail(f"{where}status", f"is {short(entry['status'])}, expected one of {STATUSES}")
        for key, origin in entry.get("origins", {}).items():
            c.need(origin, TEXT, f"{where}origins.{key}")
        c.fields(entry.get("dataset", {}), f"{where}dataset.", {},
                 {"dataset": TEXT, "kind": TEXT, "fingerprint": TEXT})
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
    """<run>/.runner.lock held for a whole `run` command (released when the process dies, even
    by kill -9): two runs into one folder would each write run.json, the results and the
    executed notebooks, and the record would then describe one run beside the other's numbers.
    A second run is refused at once, in one line naming the folder and the holder's pid."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock, pid_file = FileLock(run_dir / ".runner.lock", timeout=0), run_dir / ".runner.pid"
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = f"pid {int(pid_file.read_text())}"
        except (OSError, ValueError):  # (between its lock and its pid file)
            holder = "a process that is starting"
        raise StudyError(
            f"{run_dir}: another run ({holder}) is writing into this folder; wait for it to end "
            "or stop it, or give this run another --out"
        ) from None
    try:
        pid_file.write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def read_record(run_dir: Path, checked: bool = False) -> dict:
    """run.json as a dict ({} when there is none); a garbled one is a one-line error. checked:
    its shape checked as `report` checks it (check_record), so that a hand-edited file is the
    line `report` gives for it before a run writes into the folder."""
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
    """Lock <run>/.run.lock, re-read run.json, apply change(record) in place, write it back
    atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / ".run.lock"):
        record = read_record(run_dir)
        change(record)
        write_json(run_dir / "run.json", record)
    return record


def check_compatible(
    record: dict, stems: list[str], profile: str, fingerprint=None, backend: str | None = None
) -> None:
    """Refuse a run into a folder whose other notebooks (those this run does not redo) came
    from another profile, dataset or Keras backend: one report would otherwise mix them under
    one heading."""
    for stem, entry in record.get("notebooks", {}).items():
        if stem in stems:
            continue
        theirs = entry.get("profile", record.get("profile"))
        if theirs != profile:
            raise StudyError(
                f"the run folder holds {stem} from profile {theirs!r}, this run is {profile!r}: "
                "use another --out, or rerun every notebook with this profile"
            )
        # entries from before backends were recorded ran on TensorFlow
        theirs = entry.get("backend", record.get("backend", "tensorflow"))
        if backend and theirs != backend:
            raise StudyError(
                f"the run folder holds {stem} run on the {theirs} backend, this run is on "
                f"{backend} (KERAS_BACKEND): use another --out, or rerun every notebook on {backend}"
            )
        dataset = entry.get("dataset") or record.get("dataset") or {}
        fp = dataset.get("fingerprint")
        if fingerprint and fp and fp != fingerprint:
            raise StudyError(
                f"the run folder holds {stem} run on dataset {dataset.get('dataset', '?')} ({fp}), "
                f"this run's dataset has fingerprint {fingerprint}: use another --out, or rerun "
                "every notebook on this dataset"
            )
