"""Each notebook's results/findings/<notebook>.json (its claims and regime), merged into
results/findings.json for the report; a damaged file is a one-line error naming it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from helpers.artifacts import (
    NUMBER,
    OPTIONAL_NUMBER,
    OPTIONAL_TEXT,
    TEXT,
    Checker,
    completed_notebooks,
    run_paths,
    short,
)
from helpers.atomic import read_json, write_json
from helpers.backend import name as backend_name
from helpers.base import StudyError
from helpers.experiments.findings.claims import CLAIMS
from helpers.experiments.findings.verdicts import VERDICTS, Regime

__all__ = ["check", "collect", "load", "save"]

# every row's keys, with the types a reader may rely on
ROW = {"id": TEXT, "notebook": TEXT, "claim": TEXT, "quote": TEXT, "study": TEXT,
       "quantity": TEXT, "direction": TEXT, "delta": NUMBER, "verdict": TEXT, "n": (int,),
       "replication": TEXT, "method": TEXT, "regime": TEXT, "role": TEXT,
       **{key: OPTIONAL_NUMBER for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high",
                                           "p", "p_adjusted")}}
DIRECTIONS = ("+", "-", "abs", "fact")


def study_order(claim_id: str) -> tuple[int, str]:
    """A sort key: the study's claims in its order, sub-claims after their claim."""
    return list(CLAIMS).index(claim_id.split(".")[0]), claim_id


def save(run_dir, notebook: str, rows: list[dict], *, dataset: str, profile: str,
         regime: Regime) -> Path:
    """results/findings/<notebook>.json, then results/findings.json of the notebooks that stand."""
    folder = run_paths(run_dir)["results"] / "findings"
    folder.mkdir(exist_ok=True)
    write_json(folder / f"{notebook}.json", {
        "dataset": dataset, "profile": profile, "backend": backend_name(),
        "regime": regime.as_dict(), "claims": rows})
    return collect(run_dir, completed_notebooks(run_dir, also=notebook))


def collect(run_dir, notebooks: Iterable[str] | None = None) -> Path:
    """results/findings.json from the notebooks' parts (only notebooks' where given): dataset,
    profile, backend (the last part's), regimes {notebook: regime}, claims in the study's order."""
    keep = None if notebooks is None else set(notebooks)
    parts = {path.stem: _read(path) for path in
             sorted((Path(run_dir) / "results" / "findings").glob("*.json"))
             if keep is None or path.stem in keep}
    last = list(parts.values())[-1] if parts else {}
    return write_json(run_paths(run_dir)["results"] / "findings.json", {
        **{key: last.get(key) for key in ("dataset", "profile", "backend")},
        "regimes": {stem: part.get("regime") for stem, part in parts.items()},
        "claims": sorted((row for part in parts.values() for row in part["claims"]),
                         key=lambda r: study_order(r["id"]))})


def _read(path: Path) -> dict:
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({type(err).__name__}); rerun the notebook "
                         "that wrote it") from None
    return check(data, path)


def check(data, path: Path) -> dict:
    """data if it has the findings shape (ROW, known verdicts, directions and claims), else a
    one-line StudyError naming path, the field and what was expected."""
    c = Checker(path)
    c.need(data, (dict,), "the file")
    c.fields(data, "", {"claims": (list,)},
             {"dataset": OPTIONAL_TEXT, "profile": OPTIONAL_TEXT, "backend": OPTIONAL_TEXT,
              "regimes": (dict,), "regime": (dict,)})
    for i, row in enumerate(data["claims"]):
        c.need(row, (dict,), f"claims[{i}]")
        c.fields(row, f"claims[{i}].", ROW)
        for key, known, expected in (("verdict", VERDICTS, f"expected one of {VERDICTS}"),
                                     ("direction", DIRECTIONS, f"expected one of {DIRECTIONS}"),
                                     ("id", CLAIMS, "not a claim of the study")):
            if (row[key].split(".")[0] if key == "id" else row[key]) not in known:
                c.fail(f"claims[{i}].{key}", f"is {short(row[key])}, {expected}")
    return data


def load(run_dir, notebooks: Iterable[str] | None = None) -> dict | None:
    """results/findings.json, checked (None if absent); with notebooks, only their rows."""
    path = Path(run_dir) / "results" / "findings.json"
    if not path.exists():
        return None
    found = _read(path)
    if notebooks is not None:
        keep = set(notebooks)
        found = {**found, "claims": [r for r in found["claims"] if r["notebook"] in keep],
                 "regimes": {k: v for k, v in found.get("regimes", {}).items() if k in keep}}
    return found
