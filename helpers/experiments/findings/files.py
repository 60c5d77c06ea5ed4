"""findings.json: each notebook writes results/findings/<notebook>.json (its claims and its
regime); collect merges the notebooks that count into results/findings.json, which the report
opens with. A file that is truncated or of the wrong shape is a one-line error naming it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from helpers.atomic import read_json, write_json
from helpers.base import StudyError
from helpers.experiments.findings.claims import CLAIMS
from helpers.experiments.findings.verdicts import VERDICTS, Regime

# every row's keys, with the types a reader may rely on (None allowed where listed)
ROW_KEYS = {
    "id": str, "notebook": str, "claim": str, "quote": str, "study": str, "quantity": str,
    "direction": str, "delta": float, "verdict": str, "n": int, "replication": str,
    "method": str, "regime": str, "regime_short": str, "role": str,
}
NUMBERS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "p", "p_adjusted")


def save(run_dir, notebook: str, rows: list[dict], *, dataset: str, profile: str,
         regime: Regime) -> Path:
    """results/findings/<notebook>.json (this notebook's claims and regime), then the merged
    results/findings.json of every notebook that wrote its part (a notebook that reran since
    replaces its own part)."""
    from helpers.artifacts import run_paths
    from helpers.backend import name as backend_name

    folder = run_paths(run_dir)["results"] / "findings"
    folder.mkdir(exist_ok=True)
    write_json(folder / f"{notebook}.json", {
        "dataset": dataset, "profile": profile, "backend": backend_name(),
        "regime": regime.as_dict(), "claims": rows})
    return collect(run_dir)


def merge(run_dir, notebooks: Iterable[str] | None = None) -> dict:
    """{"dataset", "profile", "backend", "regimes": {notebook: regime}, "claims": [...]} from
    the notebooks' parts (results/findings/*.json), claims in the study's order; with
    notebooks, only their parts (those that completed in the folder's current state). Reads
    only."""
    folder = Path(run_dir) / "results" / "findings"
    keep = None if notebooks is None else set(notebooks)
    parts = {}
    for path in sorted(folder.glob("*.json")):
        if keep is None or path.stem in keep:
            parts[path.stem] = check(read(path), path)
    claims = [row for part in parts.values() for row in part["claims"]]
    order = list(CLAIMS)
    claims.sort(key=lambda r: (order.index(r["id"].split(".")[0]), r["id"]))
    last = list(parts.values())[-1] if parts else {}
    return {
        "dataset": last.get("dataset"),
        "profile": last.get("profile"),
        "backend": last.get("backend"),
        "regimes": {stem: part.get("regime") for stem, part in parts.items()},
        "claims": claims,
    }


def collect(run_dir, notebooks: Iterable[str] | None = None) -> Path:
    """results/findings.json, written from merge(run_dir, notebooks)."""
    from helpers.artifacts import run_paths

    results = run_paths(run_dir)["results"]
    return write_json(results / "findings.json", merge(run_dir, notebooks))


def read(path: Path):
    """A findings file's JSON, or a one-line StudyError naming it."""
    try:
        return read_json(path)
    except (OSError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({type(err).__name__}); rerun the notebook "
                         "that wrote it") from None


def check(data, path: Path) -> dict:
    """data if it has the findings shape (a claims list of rows with the documented keys and
    types, verdicts among VERDICTS); else a one-line StudyError naming path and the fault."""
    def bad(what: str):
        raise StudyError(f"{path}: {what}; rerun the notebook that wrote it")

    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        bad("not a findings file (expected an object with a 'claims' list)")
    for i, row in enumerate(data["claims"]):
        if not isinstance(row, dict):
            bad(f"claims[{i}] is not an object")
        for key, kind in ROW_KEYS.items():
            value = row.get(key)
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if not ok or isinstance(value, bool):
                bad(f"claims[{i}].{key} is {value!r}, expected a {kind.__name__}")
        for key in NUMBERS:
            value = row.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                bad(f"claims[{i}].{key} is {value!r}, expected a number or null")
        if row["verdict"] not in VERDICTS:
            bad(f"claims[{i}].verdict {row['verdict']!r} is not one of {', '.join(VERDICTS)}")
        if row["id"].split(".")[0] not in CLAIMS:
            bad(f"claims[{i}].id {row['id']!r} is not a claim of the study")
    return data


def load(run_dir, notebooks: Iterable[str] | None = None) -> dict | None:
    """The run's findings, checked: with notebooks, merged from those notebooks' parts (in
    memory: a read-only folder reads too); else results/findings.json. None where no notebook
    wrote findings."""
    if notebooks is not None:
        merged = merge(run_dir, notebooks)
        return merged if merged["claims"] or merged["regimes"] else None
    path = Path(run_dir) / "results" / "findings.json"
    if not path.exists():
        return None
    return check(read(path), path)
