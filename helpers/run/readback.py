"""What the report reads back from a run folder (run.json, each results/NN_name.json; findings.json
is helpers.experiments.findings' to check), checked for the shape it needs before a line of the
report is built: a file truncated, hand-edited or from another version is one line naming the
file, the field and what was expected, never a KeyError from deep inside the report."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.checks import NUMBER, OPTIONAL_TEXT, TEXT, Checker, short

STEM = re.compile(r"\d\d_[A-Za-z0-9_]+")  # a notebook's name (notebooks/NN_name.ipynb)
STATUSES = ("running", "completed", "failed")


def check_record(record, path: Path) -> dict:
    """run.json as the report reads it (see runner.run and runrecord)."""
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
