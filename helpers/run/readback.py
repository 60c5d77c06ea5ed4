"""What the report reads back from a run folder (run.json, results/findings.json, each
results/NN_name.json), checked for the shape it needs before a line of the report is built: a
file truncated, hand-edited or from another version is one line naming the file, the field and
what was expected, never a KeyError from deep inside the report."""

from __future__ import annotations

import math
import re
from pathlib import Path

from helpers.base import StudyError

STEM = re.compile(r"\d\d_[A-Za-z0-9_]+")  # a notebook's name (notebooks/NN_name.ipynb)
STATUSES = ("running", "completed", "failed")
NUMBER = (int, float)
TEXT = (str,)
OPTIONAL_TEXT = (str, type(None))
OPTIONAL_NUMBER = (int, float, type(None))


class _Checker:
    """Type checks for one file, each failure a StudyError naming the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise StudyError(
            f"{self.path}: {where} {what}; this file is damaged or from another version: rerun "
            "the notebooks (`python -m helpers run ... --out` this folder) to rewrite it"
        )

    def need(self, value, types: tuple, where: str):
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            self.fail(where, f"is {type(value).__name__} {_short(value)}, expected {names}")
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


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_record(record, path: Path) -> dict:
    """run.json as the report reads it (see runner.run and runrecord)."""
    c = _Checker(path)
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
            c.fail(f"notebooks.{_short(stem)}", "is not a notebook's name (NN_name)")
        where = f"notebooks.{stem}."
        c.need(entry, (dict,), f"notebooks.{stem}")
        c.fields(entry, where, {"executed": TEXT},
                 {"status": TEXT, "seconds": NUMBER, "parameters": (dict,), "origins": (dict,),
                  "error": OPTIONAL_TEXT, "rerun": OPTIONAL_TEXT, "profile": TEXT,
                  "dataset": (dict,), "backend": TEXT})
        if entry.get("status", "completed") not in STATUSES:
            c.fail(f"{where}status", f"is {_short(entry['status'])}, expected one of {STATUSES}")
        for key, origin in entry.get("origins", {}).items():
            c.need(origin, TEXT, f"{where}origins.{key}")
        c.fields(entry.get("dataset", {}), f"{where}dataset.", {},
                 {"dataset": TEXT, "kind": TEXT, "fingerprint": TEXT})
    return record


def check_findings(found, path: Path, verdicts: tuple) -> dict:
    """results/findings.json's documented shape (README: Findings); verdicts: the known ones."""
    c = _Checker(path)
    c.need(found, (dict,), "the file")
    c.fields(found, "", {"claims": (list,)},
             {"dataset": OPTIONAL_TEXT, "profile": OPTIONAL_TEXT, "backend": OPTIONAL_TEXT})
    for i, row in enumerate(found["claims"]):
        where = f"claims[{i}]."
        c.need(row, (dict,), f"claims[{i}]")
        c.fields(row, where, {"id": TEXT, "notebook": TEXT, "claim": TEXT, "study": TEXT,
                              "quantity": TEXT, "direction": TEXT, "estimate": NUMBER,
                              "ci_low": OPTIONAL_NUMBER, "ci_high": OPTIONAL_NUMBER,
                              "n": (int,), "method": TEXT, "verdict": TEXT})
        if row["verdict"] not in verdicts:
            c.fail(f"{where}verdict", f"is {_short(row['verdict'])}, expected one of {verdicts}")
        if row["direction"] not in ("+", "-", "abs"):
            c.fail(f"{where}direction", f"is {_short(row['direction'])}, expected +, - or abs")
    return found


def check_result(result, path: Path) -> dict:
    """A notebook's results/NN_name.json, as far as the report reads it (its banner)."""
    c = _Checker(path)
    c.need(result, (dict,), "the file")
    c.fields(result, "", {}, {"banner": (dict,)})
    if "banner" in result:
        c.fields(result["banner"], "banner.", {"title": TEXT, "text": TEXT})
    return result
