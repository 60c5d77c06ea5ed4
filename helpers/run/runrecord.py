"""<run>/run.json: what each notebook of a run folder is (profile, dataset fingerprint,
parameters with their origins, status running | completed | failed, seconds) and every command
that wrote into the folder. Read-modify-write under a file lock, so two runs into one folder
(`--only 01` and `--only 02` at once) keep each other's entries; written atomically."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import nbformat
from filelock import FileLock

from helpers.artifacts import completed  # noqa: F401  (whether an entry is a result: artifacts)
from helpers.atomic import read_json, write_json
from helpers.base import StudyError


@contextlib.contextmanager
def locked(run_dir: Path):
    """An exclusive lock on <run>/.run.lock for the block (released when the process dies)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / ".run.lock"):
        yield


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
