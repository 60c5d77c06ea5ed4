"""A run's executed notebooks stitched into one report.html (findings first, code hidden) and
report.pdf; only notebooks that completed in the folder's current state show as results."""

from __future__ import annotations

import ast
import base64
import html
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from helpers.artifacts import check_record, check_result, completed
from helpers.atomic import hold_lock, read_json, write_atomic
from helpers.base import StudyError, escape, writing
from helpers.experiments import findings
from helpers.experiments.protocol import origins
from helpers.plots import forest, png
from helpers.run.pdf import no_scripts, publish

SKIP_TAGS = {"parameters", "injected-parameters", "remove-cell"}
FIGURE_TAG = "findings-figure"  # the report's own cell holding Figure F
# On paper: a smaller title and the findings set tight, so that page 1 holds the banner,
# Figure F and the compact table (nbconvert gives each cell its tags as celltag_ classes)
PRINT_STYLE = f"""<style>
@media print {{
  .jp-RenderedHTMLCommon h1 {{ font-size: 20px !important; margin: 0 0 6px !important; }}
  .jp-RenderedHTMLCommon h2 {{ font-size: 17px !important; margin: 6px 0 4px !important; }}
  .jp-RenderedHTMLCommon p {{ margin-bottom: 6px !important; font-size: 12px; }}
  .jp-Cell {{ padding-top: 0 !important; padding-bottom: 0 !important; }}
  .celltag_{FIGURE_TAG} img {{ max-height: 3.2in; width: auto; }}
  table.findings-compact {{ font-size: 8pt !important; }}
  table.findings-compact td:nth-child(3) b {{ white-space: nowrap; }}
}}
</style>"""
EPOCH_LINE = re.compile(r"^epoch \d+/\d+ .*\n?", flags=re.M)  # training.Throughput's lines
DICT = re.compile(r"\{'[^{}\n]*\}")  # a printed dict of plain values: {'precision': ...}
CLAIMS_TABLE = "<table class='findings'>"  # words.table_html's: the report shows it once


def _anchor(title: str) -> str:
    """The id nbconvert's lab template gives a heading (spaces become '-')."""
    return title.strip().replace(" ", "-")


def _code(text) -> str:
    """Inline code escaped once (a Markdown span would escape it again; a backtick ends it)."""
    return f"<code>{escape(text)}</code>"


def _box(border: str, background: str, inner: str) -> str:
    return f"<div style='border:2px solid {border};background:{background};padding:0.8em'>{inner}</div>"


def _metadata_md(record: dict) -> str:
    ds, hw, books = record["dataset"], record.get("hardware", {}), record["notebooks"]
    gpus = f", GPUs: {', '.join(hw['gpus'])}" if hw.get("gpus") else ""
    rows = [
        ("profile", escape(record["profile"])),
        ("dataset", f"{escape(ds['dataset'])} ({escape(ds['kind'])})"),
        ("dataset fingerprint", _code(ds["fingerprint"])),
        ("Keras backend", escape(record.get("backend", "tensorflow"))),
        ("code revision", _code(record.get("git", "?"))),
        ("packages", escape(", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items()))),
        ("hardware", escape(f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores{gpus}")),
        ("started", escape(record.get("time", "?"))),
    ]
    rows += [(f"wall time {escape(k)}",
              f"{n['seconds']:.0f} s" + ("" if n.get("status", "completed") == "completed"
                                          else f" ({escape(n['status'])})"))
             for k, n in books.items() if "seconds" in n]
    if commands := record.get("commands", []):  # every command into this folder, reruns too
        total = sum(c["seconds"] for c in commands)
        rows.append((f"wall time, whole run ({len(commands)} command(s))", f"{total:.0f} s"))
    elif "seconds" in record:
        rows.append(("wall time, whole run", f"{record['seconds']:.0f} s"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + (
        "\n\nEvery notebook's parameters, with where each value comes from, are in the "
        "[appendix](#Appendix:-parameters)." if books else "")


def _parameters_md(books: dict) -> str:
    """A row per parameter, value and origin, naming the notebooks that used it."""
    rows: dict[tuple, list[str]] = {}
    for stem, entry in books.items():
        params = {k: v for k, v in entry.get("parameters", {}).items() if k != "run_dir"}
        found = {**origins(stem, params), **entry.get("origins", {})}
        for key, value in params.items():
            rows.setdefault((key, repr(value), found[key]), []).append(stem[:2])
    return (
        "**Parameters.** Origin: *study*, the study's own setting; *project*, the project's "
        "choice (the study does not state it); *profile*, a setting of the study that this "
        "profile changes; *-p*, given on the command line; *run*, where and on what it ran.\n\n"
        "| parameter | value | origin | notebooks |\n|---|---|---|---|\n"
        + "\n".join(f"| {escape(key)} | {_code(value)} | {escape(origin)} | "  # "|" is escaped
                    f"{escape(', '.join(stems))} |" for (key, value, origin), stems in rows.items()))


def _dict_words(match: re.Match) -> str:
    """"{'precision': 'float32', 'gpus': 0}" -> 'precision float32, gpus 0' (else unchanged)."""
    try:
        value = ast.literal_eval(match[0])
    except (ValueError, SyntaxError):
        return match[0]
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float | bool | None)
                                              for v in value.values()):
        return match[0]
    return ", ".join(f"{k} {v}" for k, v in value.items())


def readable(output):
    """An output as the report shows it (None if nothing is left): no stderr, no epoch lines,
    dicts as words, no claims table (the report's opening and appendix hold each claim once)."""
    kind, data = output.get("output_type"), output.get("data") or {}
    if CLAIMS_TABLE in "".join(data.get("text/html", "")) or output.get("name") == "stderr":
        return None
    if kind == "stream":
        text = DICT.sub(_dict_words, EPOCH_LINE.sub("", "".join(output.get("text", ""))))
        return new_output("stream", name="stdout", text=text) if text.strip() else None
    if kind in ("execute_result", "display_data") and set(data) == {"text/plain"}:
        text = DICT.sub(_dict_words, "".join(data["text/plain"]))
        output = nbformat.from_dict({**output, "data": {"text/plain": text}})
    return output


def failure_box(run_dir: Path, stem: str, entry: dict, why: str) -> str:
    """A red box in an unfinished notebook's place: its error, its copy, the rerun command."""
    parts = [f"<b>{html.escape(stem)}: no result, {html.escape(why)}.</b>"]
    if entry.get("error"):
        parts.append(f"Error: <code>{html.escape(entry['error'])}</code>")
    where = html.escape(str(run_dir / entry.get("executed", "")))
    parts.append(f"Partly executed notebook: <code>{where}</code>")
    if entry.get("rerun"):
        parts.append(f"Rerun just this notebook: <code>{html.escape(entry['rerun'])}</code>")
    return f"# {stem} did not complete\n\n" + _box("#c00", "#fee", "<br>".join(parts))


def _findings_cells(found: dict) -> tuple[list, list]:
    """(opening, appendix): page 1's regime, Figure F and compact table; the full rows with the
    conclusion and the verdicts' meaning. Sub-claims such as C7.flip stay in their notebook."""
    rows = found["claims"]
    top = [r for r in rows if r["role"] != "sub-claim"]
    labels = sorted({r["regime"] for r in top if r["direction"] != "fact"}) or sorted(
        {r["regime"] for r in top})
    cells = [new_markdown_cell(
        f"## Findings\n\nDo the study's claims hold on {escape('; '.join(labels))}? Each claim's "
        "estimate with its 95% interval, and its verdict (defined, with every row in full, in "
        "[Findings in detail](#Findings-in-detail)).")]
    figure = forest(top)
    if figure is not None:  # (build_report also saves it as figures/findings.png)
        data = base64.b64encode(png(figure)).decode()
        cells.append(new_code_cell(metadata={"tags": [FIGURE_TAG]}, outputs=[new_output(
            "display_data", data={"image/png": data, "text/plain": "the findings figure"})]))
        cells.append(new_markdown_cell(
            "<p style='font-size:11px'><i>Figure F: estimate and 95% interval (thick), turned "
            "so that right of zero is the study's way; grey: ±Δ around no effect or the study's "
            "number (black tick); thin: one new run; colour: the verdict.</i></p>"))
    cells.append(new_markdown_cell(findings.compact_html([r for r in top if r["role"] == "claim"])))
    appendix = [new_markdown_cell(text) for text in (
        "# Findings in detail\n\nEach row: one claim of the study in its own words, the "
        "quantity that tests it, the smallest effect of interest Δ, this run's estimate with its "
        "95% interval (for a number the study reports from one run: also the interval one new "
        "run would fall in, which less the study's number is the interval for the gap), what "
        "was replicated, the evidence and the verdict, and the method.",
        findings.table_html(top),
        "**Conclusion.** " + findings.summary(rows),
        "**What the verdicts mean** (Δ: 0.01 for a difference, 0.02 for an absolute accuracy, "
        "±0.05 around the study's +0.15 for C9; comparable: CINIC-10 at the study's budget, and "
        "for 72.48% a pretrained VGG19; the methods and their calibration: docs/findings.md):"
        "\n\n" + findings.definitions_markdown())]
    return cells, appendix


def _read(path: Path, reader):
    """reader(path), a missing or unreadable (truncated) file being one line naming it."""
    if not path.is_file():
        raise StudyError(f"{path}: missing; rerun the notebook (`python -m helpers run --only NN`)")
    try:
        return reader(path)
    except (ValueError, OSError) as err:  # (JSON and nbformat's read errors are ValueErrors)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StudyError(f"{path}: unreadable, truncated? ({first}); rerun to rewrite it") from None


def combined_notebook(run_dir: Path) -> nbformat.NotebookNode:
    """Title, banners, findings, contents, metadata, the notebooks' cells, the appendices."""
    record = check_record(_read(run_dir / "run.json", read_json), run_dir / "run.json")
    ds, profile = record["dataset"], record["profile"]
    body, toc, standing = [], [], set()
    for stem, entry in record["notebooks"].items():
        ok, why = completed(run_dir, entry)
        if not ok:  # never shown as a result: a red box in its place
            print(f"report: {stem}: no result, {why}; a red box stands in its place")
            toc.append(f"- [{stem} did not complete](#{_anchor(f'{stem} did not complete')})")
            body.append(new_markdown_cell(failure_box(run_dir, stem, entry, why)))
            continue
        standing.add(stem)  # only these notebooks' results and findings are shown
        nb = _read(run_dir / entry["executed"], lambda p: nbformat.read(p, as_version=4))
        theirs = entry.get("dataset", {})
        finger = theirs.get("fingerprint", ds["fingerprint"])
        if entry.get("profile", profile) != profile or finger != ds["fingerprint"]:
            nb.cells.insert(1, new_markdown_cell(
                f"**Note:** the next section ran with profile {_code(entry.get('profile', profile))}"
                f" on {_code(theirs.get('dataset', '?'))} ({escape(finger)}), not as the run "
                "table says."))
        for cell in nb.cells:
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                continue
            if cell.cell_type == "code":
                cell.outputs = [r for r in map(readable, cell.get("outputs", [])) if r is not None]
            elif cell.cell_type == "markdown":
                toc += [f"- [{t}](#{_anchor(t)})" for t in re.findall(r"^# (.+)$", cell.source,
                                                                      flags=re.M)]
            body.append(cell)
    title = [
        "# CINIC-10 image classification: a reproduction\n\n"
        "A reproduction and extension of *DL Project 1 report* (Ruciński and Czerwoński, "
        "2024): a residual network, two hyperparameter grids, data augmentation and "
        "transfer learning on CINIC-10."
    ]
    if ds["kind"] != "cinic10":  # (the note quotes paths and error messages: escaped)
        title.append(_box("#c00", "#fee", (
            f"<b>These numbers are not CINIC-10's.</b> This run used the dataset "
            f"<code>{escape(ds['dataset'])}</code> ({escape(ds['kind'])}). "
            f"{escape(ds.get('note') or '')} For the real study run "
            "<code>make report DATASET=cinic10 PROFILE=full</code> on a machine that can "
            "download CINIC-10 (or set <code>CINIC10_DIR</code> to a local copy).")))
    for res in sorted((run_dir / "results").glob("[0-9][0-9]_*.json")):
        if res.stem not in standing:  # a failed or killed notebook's results do not stand
            continue
        banner = check_result(_read(res, read_json), res).get("banner")  # {"title", "text"}
        if banner:  # e.g. 05 without ImageNet weights
            title.append(_box("#c60", "#fff4e5", f"<b>{escape(res.stem)}: "
                              f"{escape(banner['title'])}</b> {escape(banner['text'])}"))
    found = findings.load(run_dir, standing)  # checked; only the notebooks that stand
    opening, detail = _findings_cells(found) if found and found["claims"] else ([], [])
    if opening:
        toc = ["- [Findings](#Findings)", *toc, "- [Findings in detail](#Findings-in-detail)"]
        body += detail
    if record["notebooks"]:
        toc.append("- [Appendix: parameters](#Appendix:-parameters)")
        body.append(new_markdown_cell(
            "# Appendix: parameters\n\n" + _parameters_md(record["notebooks"])))
    cells = [*map(new_markdown_cell, title), *opening,
             new_markdown_cell("## Contents\n\n" + "\n".join(toc)),
             new_markdown_cell("## Run\n\n" + _metadata_md(record)), *body]
    return nbformat.v4.new_notebook(cells=cells, metadata={"title": "CINIC-10 study report"})


def to_html(nb: nbformat.NotebookNode) -> str:
    """Self-contained HTML: code and prompts hidden, images inline, no script runs."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    page, _ = exporter.from_notebook_node(nb)
    # No network is needed to read the report: drop CDN scripts (MathJax, require.js).
    page = re.sub(r"<script[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", page)
    return no_scripts(page.replace("</head>", f"{PRINT_STYLE}\n</head>", 1))


def build_report(run_dir: Path) -> Path:
    """<run>/report.html (and .pdf). Builders take turns under <run>/.report.lock, each first
    removing what a killed one left; a folder that cannot be written is one line."""
    run_dir = Path(run_dir)
    nb = combined_notebook(run_dir)
    page = to_html(nb)
    with writing(run_dir, "the report"), hold_lock(run_dir / ".report.lock", "its report"):
        for part in run_dir.glob(".report.*.part"):  # a killed build's (none is live now)
            part.unlink(missing_ok=True)
        for cell in nb.cells:  # Figure F as a file too (the README and compare show it)
            if FIGURE_TAG in cell.metadata.get("tags", []):
                png = base64.b64decode(cell.outputs[0]["data"]["image/png"])
                write_atomic(run_dir / "figures" / "findings.png",
                             lambda p, png=png: p.write_bytes(png))
        return publish(page, run_dir / "report.html", "report")
