"""`python -m helpers compare RUN_A RUN_B [...]`: does a finding survive a change of settings?
The findings matrix, its figure, what differs and the verdicts that changed, as text and HTML."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from helpers import plots
from helpers.artifacts import completed_notebooks, read_record
from helpers.atomic import write_atomic, write_json
from helpers.base import StudyError, escape, resolve, writing
from helpers.experiments import findings
from helpers.experiments.findings import words
from helpers.experiments.findings.files import study_order
from helpers.run.pdf import publish
from helpers.run.report import to_html

MISSING = "–"


@dataclass
class Run:
    """A run folder: label, run.json ({} without one), its standing findings, their rows by id."""

    label: str
    path: Path
    record: dict
    found: dict
    rows: dict[str, dict]


def load_run(path, label: str | None = None) -> Run:
    """A run folder's record and standing findings; a folder with none is one StudyError."""
    folder = resolve(path)
    if not folder.is_dir():
        raise StudyError(f"{folder}: not a run folder (no such directory)")
    record = read_record(folder, checked=True)
    found = findings.load(folder, completed_notebooks(folder))
    if not found or not found["claims"]:
        raise StudyError(f"{folder}: no findings to compare (results/findings.json missing, or "
                         "no notebook that wrote findings stands); run its notebooks first")
    return Run(label or folder.name, folder, record, found, {r["id"]: r for r in found["claims"]})


def labels(paths: list[Path]) -> list[str]:
    """Each folder's name; where two share a name, their parent's name too, else a number."""
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in paths]
    if len(set(names)) < len(names):
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    return names


def claim_ids(runs: list[Run]) -> list[str]:
    """Every claim of any run, in the study's order."""
    return sorted({i for run in runs for i in run.rows}, key=study_order)


def facets(run: Run) -> dict[str, str]:
    """The run's settings as flat text {facet: value}, every parameter with its origin."""
    rec, found = run.record, run.found
    ds, hw = rec.get("dataset", {}), rec.get("hardware", {})
    gpus = f", GPUs: {', '.join(map(str, hw['gpus']))}" if hw.get("gpus") else ""
    out = {
        "profile": rec.get("profile", found.get("profile") or "?"),
        "dataset": f"{ds.get('dataset', found.get('dataset') or '?')} ({ds.get('kind', '?')})",
        "dataset fingerprint": ds.get("fingerprint", "?"),
        "backend": rec.get("backend", found.get("backend") or "?"),
        "code revision": rec.get("git", "?"),
        "hardware": f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores{gpus}",
        "notebooks that stand": ", ".join(sorted({r["notebook"] for r in found["claims"]})),
    }
    out |= {f"version {k}": str(v) for k, v in rec.get("versions", {}).items()}
    for stem, entry in rec.get("notebooks", {}).items():
        origins = entry.get("origins", {})
        out |= {f"{stem}.{key}": f"{value!r} ({origins.get(key, '?')})"  # not where it ran:
                for key, value in entry.get("parameters", {}).items() if key != "run_dir"}
    return out


def differences(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """(facet, value per run) for each facet whose value is not the same in every run."""
    each = [facets(r) for r in runs]
    keys = dict.fromkeys(k for f in each for k in f)
    return [(k, values) for k in keys
            if len(set(values := [f.get(k, MISSING) for f in each])) > 1]


def moved(a: dict, b: dict) -> str:
    """How far b's estimate lies from a's, against their intervals."""
    if a.get("estimate") is None or b.get("estimate") is None:
        return "no estimate to compare"
    shift = b["estimate"] - a["estimate"]
    text = f"the estimate moved {shift:+.3f}"
    if any(r.get(k) is None for r in (a, b) for k in ("ci_low", "ci_high")):
        return text + " (a run without an interval: no scale to judge it by)"
    scale = math.hypot(*((r["ci_high"] - r["ci_low"]) / 2 for r in (a, b)))
    times = abs(shift) / scale if scale > 0 else math.inf
    inside = a["ci_low"] <= b["estimate"] <= a["ci_high"]
    return (f"{text}, {times:.1f}x the intervals' combined half-width "
            f"(sqrt(h_a^2 + h_b^2) = {scale:.3f}); it lies {'inside' if inside else 'outside'} "
            "the baseline's interval")


def changes(runs: list[Run]) -> list[str]:
    """One line per claim whose verdict differs from the first run's, or that not all runs have."""
    base, lines = runs[0], []
    for cid in claim_ids(runs):
        a = base.rows.get(cid)
        for run in runs[1:]:
            b = run.rows.get(cid)
            if (a is None) != (b is None):
                has = run.label if a is None else base.label
                lines.append(f"{cid}: only in {has} of {base.label} and {run.label}")
            elif a is not None and a["verdict"] != b["verdict"]:
                lines.append(f"{cid}: {a['verdict']} in {base.label} -> {b['verdict']} in "
                             f"{run.label}; {moved(a, b)}")
    return lines


def text_table(runs: list[Run]) -> str:
    """The matrix, the differences and the changes as plain text for the terminal."""
    rows = [["claim", *[r.label for r in runs]]]
    rows += [[cid, *[MISSING if (row := r.rows.get(cid)) is None
                     else f"{findings.interval_text(row)} {row['verdict']}" for r in runs]]
             for cid in claim_ids(runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    diff, changed = differences(runs), changes(runs)
    out += ["", "what differs:" if diff else "what differs: nothing recorded"]
    out += [f"  {key}: " + " | ".join(values) for key, values in diff]
    out += ["", "verdicts changed:" if changed else "verdicts changed: none"]
    return "\n".join(out + [f"  {line}" for line in changed])


def matrix_html(runs: list[Run]) -> str:
    """claim | one column per run (estimate [interval], n, verdict in its colour)."""
    cells = []
    for cid in claim_ids(runs):
        first = next(r.rows[cid] for r in runs if cid in r.rows)
        cells.append([words.claim_html(first), *[
            MISSING if row is None else
            f"{html.escape(findings.interval_text(row))}<br><small>n = {row['n']}: "
            f"{html.escape(row['replication'])}</small><br>{words.verdict_html(row)}"
            for row in (run.rows.get(cid) for run in runs)]])
    return words.html_table([html.escape(h) for h in ["claim", *[r.label for r in runs]]], cells)


def _table_md(head: list[str], rows: list[list[str]]) -> str:
    lines = [" | ".join(escape(c) for c in row) for row in [head, *rows]]
    return "\n".join([f"| {lines[0]} |", "|" + "---|" * len(head), *(f"| {r} |" for r in lines[1:])])


def notebook(runs: list[Run]) -> tuple[nbformat.NotebookNode, bytes | None]:
    """compare.html's cells, and the figure as PNG (None when no claim has an estimate)."""
    shown = ("profile", "dataset", "backend")
    runs_table = _table_md(["run", "folder", *shown],
                           [[r.label, str(r.path), *map(facets(r).get, shown)] for r in runs])
    cells = [new_markdown_cell(
        "# Comparing runs\n\nThe study's claims in each run, the first run being the baseline: "
        "does a finding survive the change? Only notebooks that stand in each folder (completed "
        f"in its current state) count.\n\n{runs_table}"),
        new_markdown_cell("## Findings\n\nEach cell: the estimate with its 95% interval, what "
                          "was replicated, and the verdict (colour)."),
        new_markdown_cell(matrix_html(runs))]
    figure, png = plots.across([(r.label, r.found["claims"]) for r in runs]), None
    if figure is not None:
        png = plots.png(figure)
        cells.append(new_code_cell(outputs=[new_output("display_data", data={
            "image/png": base64.b64encode(png).decode(), "text/plain": "the comparison figure"})]))
        cells.append(new_markdown_cell(
            "*Figure: each claim's estimate and 95% interval in every run (one line per run, top "
            "to bottom in the table's order), turned so that right of zero is the study's way; "
            "colour: the verdict.*"))
    changed, diff = changes(runs), differences(runs)
    cells.append(new_markdown_cell("## Verdicts that changed\n\n" + (
        "\n".join(f"- {escape(c)}" for c in changed) if changed else "None.")))
    cells.append(new_markdown_cell("## What differs between the runs\n\n" + (
        _table_md(["setting", *[r.label for r in runs]], [[k, *v] for k, v in diff])
        if diff else "Nothing that run.json records.")))
    return nbformat.v4.new_notebook(cells=cells, metadata={"title": "CINIC-10 runs compared"}), png


def compare(paths: list, out=None) -> Path:
    """Compare run folders (at least two) into out (default reports/compare); see the module."""
    if len(paths) < 2:
        raise StudyError("compare needs at least two run folders, e.g. "
                         "`python -m helpers compare reports/quick reports/quick-seeds`")
    folders = [resolve(p) for p in paths]
    runs = [load_run(f, label) for f, label in zip(folders, labels(folders))]
    print(text_table(runs))
    nb, png = notebook(runs)
    page = to_html(nb)
    out = resolve(out or "reports/compare")
    with writing(out, "the comparison"):
        out.mkdir(parents=True, exist_ok=True)
        if png is not None:
            write_atomic(out / "compare.png", lambda p: p.write_bytes(png))
        write_json(out / "compare.json", {
            "runs": [{"label": r.label, "path": str(r.path)} for r in runs],
            "matrix": {cid: {r.label: r.rows.get(cid) for r in runs} for cid in claim_ids(runs)},
            "differences": dict(differences(runs)), "changes": changes(runs)})
        return publish(page, out / "compare.html", "compare")
