"""<run>/run.json: what each notebook of a run folder is (profile, dataset fingerprint,
parameters with their origins, status running | completed | failed, seconds) and every command
that wrote into the folder. One `run` command at a time holds the folder (one_at_a_time);
run.json itself is read-modify-written under a file lock of its own and written atomically."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import nbformat
from filelock import FileLock, Timeout

from helpers.artifacts import completed  # noqa: F401  (whether an entry is a result: artifacts)
from helpers.atomic import read_json, write_json
from helpers.base import StudyError
from helpers.run.readback import check_record


@contextlib.contextmanager
def locked(run_dir: Path):
    """An exclusive lock on <run>/.run.lock for the block (released when the process dies)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / ".run.lock"):
        yield


@contextlib.contextmanager
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


def read_record(run_dir: Path) -> dict:
    """run.json as a dict ({} when there is none); a garbled one is a one-line error."""
    path = run_dir / "run.json"
    if not path.exists():
        return {}
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({err}); delete it and rerun the notebooks") from None
    if not isinstance(record, dict):
        raise StudyError(f"{path}: not a run record (expected a JSON object)")
    record.setdefault("notebooks", {})
    return record


def read_checked(run_dir: Path) -> dict:
    """read_record, its shape checked as `report` checks it (readback.check_record) where
    run.json exists: a hand-edited file is the line `report` gives for it, before a run
    writes into the folder, never an AttributeError from halfway through."""
    record = read_record(run_dir)
    if (run_dir / "run.json").exists():
        check_record(read_json(run_dir / "run.json"), run_dir / "run.json")
    return record


def update_record(run_dir: Path, change: Callable[[dict], None]) -> dict:
    """Lock, re-read run.json, apply change(record) in place, write it back atomically."""
    with locked(run_dir):
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
        fp = (entry.get("dataset") or record.get("dataset") or {}).get("fingerprint")
        if fingerprint and fp and fp != fingerprint:
            name = (entry.get("dataset") or record.get("dataset") or {}).get("dataset", "?")
            raise StudyError(
                f"the run folder holds {stem} run on dataset {name} ({fp}), this run's dataset "
                f"has fingerprint {fingerprint}: use another --out, or rerun every notebook "
                "on this dataset"
            )


def read_executed(run_dir: Path, entry: dict) -> nbformat.NotebookNode:
    return nbformat.read(run_dir / entry["executed"], as_version=4)
