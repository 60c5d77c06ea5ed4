"""Stitch a run's executed notebooks into one self-contained report.html (code hidden, title,
contents, run metadata) and render report.pdf with headless Chromium when it is installed
(pdf.py). Only notebooks that completed in the folder's current state are shown as results."""

from __future__ import annotations

import ast
import base64
import html
import re
from pathlib import Path

import nbformat

from helpers.artifacts import completed
from helpers.atomic import hold_lock, read_json, write_atomic
from helpers.base import StudyError, escape, writing
from helpers.experiments import findings
from helpers.experiments.protocol import origins
from helpers.plots import findings as plots_findings
from helpers.record import check_record, check_result
from helpers.run.pdf import NO_SCRIPTS, find_chromium, no_scripts, remove_leftovers, to_pdf  # noqa: F401

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


def _anchor(title: str) -> str:
    """The id nbconvert's lab template gives a heading (spaces become '-')."""
    return title.strip().replace(" ", "-")


def _code(text) -> str:
    """text from a file as inline code, escaped once (a Markdown code span would escape an
    escaped text again, and a backtick in the text would end it)."""
    return f"<code>{escape(text)}</code>"


def _metadata_md(record: dict) -> str:
    ds = record["dataset"]
    v = record.get("versions", {})
    hw = record.get("hardware", {})
    rows = [
        ("profile", escape(record["profile"])),
        ("dataset", f"{escape(ds['dataset'])} ({escape(ds['kind'])})"),
        ("dataset fingerprint", _code(ds["fingerprint"])),
        ("Keras backend", escape(record.get("backend", "tensorflow"))),
        ("code revision", _code(record.get("git", "?"))),
        ("packages", escape(", ".join(f"{k} {val}" for k, val in v.items()))),
        (
            "hardware",
            escape(
                f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores"
                + (f", GPUs: {', '.join(hw['gpus'])}" if hw.get("gpus") else "")
            ),
        ),
        ("started", escape(record.get("time", "?"))),
    ]
    books = record["notebooks"]
    rows += [
        (f"wall time {escape(k)}",
         f"{n['seconds']:.0f} s" + ("" if _ok(n) else f" ({escape(n['status'])})"))
        for k, n in books.items()
        if "seconds" in n
    ]
    commands = record.get("commands", [])
    if commands:  # every command into this folder, reruns with --only included
        total = sum(c["seconds"] for c in commands)
        rows.append((f"wall time, whole run ({len(commands)} command(s))", f"{total:.0f} s"))
    elif "seconds" in record:
        rows.append(("wall time, whole run", f"{record['seconds']:.0f} s"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + (
        "\n\nEvery notebook's parameters, with where each value comes from, are in the "
        "[appendix](#Appendix:-parameters)." if books else "")


def _ok(entry: dict) -> bool:
    return entry.get("status", "completed") == "completed"


def _parameters_md(books: dict) -> str:
    """Every notebook's parameters with their origin (helpers.experiments.protocol): one row per parameter and
    value, naming the notebooks that used it."""
    rows: dict[tuple, list[str]] = {}
    for stem, entry in books.items():
        params = {k: v for k, v in entry.get("parameters", {}).items() if k != "run_dir"}
        found = {**origins(stem, params), **entry.get("origins", {})}
        for key, value in params.items():
            rows.setdefault((key, repr(value), found[key]), []).append(stem[:2])
    lines = [
        "**Parameters.** Origin: *study*, the study's own setting; *project*, the project's "
        "choice (the study does not state it); *profile*, a setting of the study that this "
        "profile changes; *-p*, given on the command line; *run*, where and on what it ran.",
        "",
        "| parameter | value | origin | notebooks |",
        "|---|---|---|---|",
    ]
    for (key, value, origin), stems in rows.items():  # escape(): "|" cannot split the row
        lines.append(f"| {escape(key)} | {_code(value)} | {escape(origin)} | "
                     f"{escape(', '.join(stems))} |")
    return "\n".join(lines)


EPOCH_LINE = re.compile(r"^epoch \d+/\d+ .*\n?", flags=re.M)  # training.Throughput's lines
DICT = re.compile(r"\{'[^{}\n]*\}")  # a printed dict of plain values: {'precision': ...}


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


CLAIMS_TABLE = "<table class='findings'>"  # words.table_html's: the report shows it once


def readable(output):
    """An output as the report shows it: stderr dropped, per-epoch lines out (the executed
    notebook keeps them; the curves are the figures and TensorBoard's), printed dicts as
    words, a notebook's claims table dropped (the report's opening and its appendix hold every
    claim once); None when nothing is left."""
    kind = output.get("output_type")
    if CLAIMS_TABLE in "".join((output.get("data") or {}).get("text/html", "")):
        return None
    if kind == "stream":
        if output.get("name") == "stderr":
            return None
        text = DICT.sub(_dict_words, EPOCH_LINE.sub("", "".join(output.get("text", ""))))
        return nbformat.v4.new_output("stream", name="stdout", text=text) if text.strip() \
            else None
    data = output.get("data") or {}
    if kind in ("execute_result", "display_data") and set(data) == {"text/plain"}:
        text = "".join(data["text/plain"])
        output = nbformat.from_dict({**output, "data": {"text/plain": DICT.sub(_dict_words, text)}})
    return output


def failure_box(run_dir: Path, stem: str, entry: dict, why: str) -> str:
    """A red box in a failed (or unfinished) notebook's place: its error, the partly executed
    copy and the command that reruns just it."""
    error = entry.get("error")
    parts = [f"<b>{html.escape(stem)}: no result, {html.escape(why)}.</b>"]
    if error:
        parts.append(f"Error: <code>{html.escape(error)}</code>")
    parts.append(
        f"Partly executed notebook: <code>{html.escape(str(run_dir / entry.get('executed', '')))}</code>"
    )
    if entry.get("rerun"):
        parts.append(f"Rerun just this notebook: <code>{html.escape(entry['rerun'])}</code>")
    return (
        f"# {stem} did not complete\n\n<div style='border:2px solid #c00;background:#fee;padding:0.8em'>"
        + "<br>".join(parts)
        + "</div>"
    )


def _findings_cells(found: dict, run_dir: Path) -> tuple[list, list]:
    """(the report's opening, its appendix). The opening, meant for page 1: the regime, Figure
    F (every claim's estimate and interval in its verdict's colour) and one compact table
    (claim in a few words, estimate [95% interval], verdict, n). The appendix "Findings in
    detail": the full rows (the study's words, quantity, Δ, prediction, replication, evidence,
    method), what the run can say with its family-wise error, and what each verdict means.
    Sub-claims such as C7.flip stay in their notebook."""
    rows = found["claims"]
    top = [r for r in rows if r["role"] != "sub-claim"]
    labels = sorted({r["regime"] for r in top if r["direction"] != "fact"}) or sorted(
        {r["regime"] for r in top})
    cells = [nbformat.v4.new_markdown_cell(
        f"## Findings\n\nDo the study's claims hold on {escape('; '.join(labels))}? Each claim's "
        "estimate with its 95% interval, and its verdict (defined, with every row in full, in "
        "[Findings in detail](#Findings-in-detail)).")]
    figure = plots_findings.forest(top)
    if figure is not None:  # (build_report also saves it as figures/findings.png)
        png = base64.b64encode(_png(figure)).decode()
        cells.append(nbformat.v4.new_code_cell(metadata={"tags": [FIGURE_TAG]}, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": png,
                                                         "text/plain": "the findings figure"})]))
        cells.append(nbformat.v4.new_markdown_cell(
            "<p style='font-size:11px'><i>Figure F: estimate and 95% interval (thick), turned "
            "so that right of zero is the study's way; grey: ±Δ around no effect or the study's "
            "number (black tick); thin: one new run; colour: the verdict.</i></p>"))
    cells.append(nbformat.v4.new_markdown_cell(
        findings.compact_html([r for r in top if r["role"] == "claim"])))
    appendix = [nbformat.v4.new_markdown_cell(
        "# Findings in detail\n\nEach row: one claim of the study in its own words, the "
        "quantity that tests it, the smallest effect of interest Δ, this run's estimate with its "
        "95% interval (for a number the study reports from one run: also the interval one new "
        "run would fall in, which less the study's number is the interval for the gap), what "
        "was replicated, the evidence and the verdict, and the method.")]
    appendix.append(nbformat.v4.new_markdown_cell(findings.table_html(top)))
    appendix.append(nbformat.v4.new_markdown_cell("**Conclusion.** " + findings.summary(rows)))
    appendix.append(nbformat.v4.new_markdown_cell(
        "**What the verdicts mean** (Δ: 0.01 for a difference, 0.02 for an absolute accuracy, "
        "±0.05 around the study's +0.15 for C9; comparable: CINIC-10 at the study's budget, and "
        "for 72.48% a pretrained VGG19; the methods and their calibration: docs/findings.md):"
        "\n\n" + findings.definitions_markdown()))
    return cells, appendix


def _png(figure) -> bytes:
    import io

    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


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
    """One notebook: title, banner, contents, metadata, then every executed notebook's cells
    (parameters cells and stderr noise left out)."""
    path = run_dir / "run.json"
    record = check_record(_read(path, read_json), path)
    body, toc, standing = [], [], set()
    fingerprint = record["dataset"]["fingerprint"]
    for stem, entry in record["notebooks"].items():
        ok, why = completed(run_dir, entry)
        if not ok:  # never shown as a result: a red box in its place
            box = failure_box(run_dir, stem, entry, why)
            print(f"report: {stem}: no result, {why}; a red box stands in its place")
            toc.append(f"- [{stem} did not complete](#{_anchor(f'{stem} did not complete')})")
            body.append(nbformat.v4.new_markdown_cell(box))
            continue
        standing.add(stem)  # only these notebooks' results and findings are shown
        nb = _read(run_dir / entry["executed"], lambda p: nbformat.read(p, as_version=4))
        theirs = entry.get("dataset", {}).get("fingerprint", fingerprint)
        if entry.get("profile", record["profile"]) != record["profile"] or theirs != fingerprint:
            name = entry.get("dataset", {}).get("dataset", "?")
            note = (
                f"**Note:** the next section ran with profile "
                f"{_code(entry.get('profile', record['profile']))} on "
                f"{_code(name)} ({escape(theirs)}), not as the run table says."
            )
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
        for cell in nb.cells:
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                continue
            if cell.cell_type == "code":
                cell.outputs = [r for r in map(readable, cell.get("outputs", [])) if r is not None]
            elif cell.cell_type == "markdown":
                for title in re.findall(r"^# (.+)$", cell.source, flags=re.M):
                    toc.append(f"- [{title}](#{_anchor(title)})")
            body.append(cell)
    ds = record["dataset"]
    head = [
        "# CINIC-10 image classification: a reproduction\n\n"
        "A reproduction and extension of *DL Project 1 report* (Ruciński and Czerwoński, "
        "2024): a residual network, two hyperparameter grids, data augmentation and "
        "transfer learning on CINIC-10."
    ]
    if ds["kind"] != "cinic10":
        note = escape(ds.get("note") or "")  # it quotes paths and error messages
        head.append(
            f"<div style='border:2px solid #c00;background:#fee;padding:0.8em'>"
            f"<b>These numbers are not CINIC-10's.</b> This run used the dataset "
            f"<code>{escape(ds['dataset'])}</code> ({escape(ds['kind'])}). {note} "
            "For the real study run "
            "<code>make report DATASET=cinic10 PROFILE=full</code> on a machine that can "
            "download CINIC-10 (or set <code>CINIC10_DIR</code> to a local copy).</div>"
        )
    for res in sorted((run_dir / "results").glob("[0-9][0-9]_*.json")):
        if res.stem not in standing:  # a failed or killed notebook's results do not stand
            continue
        # {"title", "text"}: a result's warning, as text
        banner = check_result(_read(res, read_json), res).get("banner")
        if banner:  # e.g. 05 without ImageNet weights
            head.append(
                f"<div style='border:2px solid #c60;background:#fff4e5;padding:0.8em'>"
                f"<b>{escape(res.stem)}: {escape(banner['title'])}</b> "
                f"{escape(banner['text'])}</div>"
            )
    found = findings.load(run_dir, standing)  # checked; only the notebooks that stand
    opening, detail = _findings_cells(found, run_dir) if found and found["claims"] else ([], [])
    if opening:
        toc.insert(0, "- [Findings](#Findings)")
        toc.append("- [Findings in detail](#Findings-in-detail)")
        body += detail
    if record["notebooks"]:
        toc.append("- [Appendix: parameters](#Appendix:-parameters)")
        body.append(nbformat.v4.new_markdown_cell(
            "# Appendix: parameters\n\n" + _parameters_md(record["notebooks"])))
    head.append("## Contents\n\n" + "\n".join(toc))
    head.append("## Run\n\n" + _metadata_md(record))
    title, rest = head[:-2], head[-2:]
    cells = ([nbformat.v4.new_markdown_cell(t) for t in title] + opening
             + [nbformat.v4.new_markdown_cell(t) for t in rest] + body)
    return nbformat.v4.new_notebook(cells=cells, metadata={"title": "CINIC-10 study report"})


def to_html(nb: nbformat.NotebookNode) -> str:
    """Self-contained HTML: code and prompts hidden, images inline, no external scripts."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    html, _ = exporter.from_notebook_node(nb)
    # No network is needed to read the report: drop CDN scripts (MathJax, require.js).
    html = re.sub(r"<script[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>", "", html)
    html = html.replace("</head>", f"{PRINT_STYLE}\n</head>", 1)
    return no_scripts(html)


def build_report(run_dir: Path) -> Path:
    """<run>/report.html and, where Chromium exists, <run>/report.pdf. Builders of one folder's
    report take turns under <run>/.report.lock; each first removes what a killed one left
    (its .part files, its Chromium profile). A folder that cannot be written is one line."""
    run_dir = Path(run_dir)
    nb = combined_notebook(run_dir)
    html = to_html(nb)
    with writing(run_dir, "the report"), hold_lock(run_dir / ".report.lock", "its report"):
        remove_leftovers(run_dir)
        for cell in nb.cells:  # Figure F as a file too (the README and compare show it)
            if FIGURE_TAG in cell.metadata.get("tags", []):
                png = base64.b64decode(cell.outputs[0]["data"]["image/png"])
                write_atomic(run_dir / "figures" / "findings.png",
                             lambda p, png=png: p.write_bytes(png))
        html_path = write_atomic(run_dir / "report.html", lambda p: p.write_text(html))
        print(f"report: {html_path}")
        if to_pdf(html_path, run_dir / "report.pdf"):
            print(f"report: {run_dir / 'report.pdf'}")
    return html_path
