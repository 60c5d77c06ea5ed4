"""Stitch a run's executed notebooks into one self-contained report.html (code hidden, title,
contents, run metadata) and render report.pdf with headless Chromium when it is installed."""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import nbformat

from helpers.atomic import read_json, write_atomic
from helpers.base import StudyError, escape
from helpers.experiments import findings
from helpers.plots import findings as plots_findings
from helpers.run.runrecord import completed, read_executed
from helpers.run.study import origins

SKIP_TAGS = {"parameters", "injected-parameters", "remove-cell"}
CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_SCRIPTS = '<meta http-equiv="Content-Security-Policy" content="script-src \'none\'">'


def _anchor(title: str) -> str:
    """The id nbconvert's lab template gives a heading (spaces become '-')."""
    return title.strip().replace(" ", "-")


def _metadata_md(record: dict) -> str:
    ds = record["dataset"]
    v = record.get("versions", {})
    hw = record.get("hardware", {})
    rows = [
        ("profile", escape(record["profile"])),
        ("dataset", f"{escape(ds['dataset'])} ({escape(ds['kind'])})"),
        ("dataset fingerprint", f"`{ds['fingerprint']}`"),
        ("Keras backend", escape(record.get("backend", "tensorflow"))),
        ("code revision", f"`{record.get('git', '?')}`"),
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
        (f"wall time {escape(k)}", f"{n['seconds']:.0f} s" + ("" if _ok(n) else f" ({n['status']})"))
        for k, n in books.items()
        if "seconds" in n
    ]
    commands = record.get("commands", [])
    if commands:  # every command into this folder, reruns with --only included
        total = sum(c["seconds"] for c in commands)
        rows.append((f"wall time, whole run ({len(commands)} command(s))", f"{total:.0f} s"))
    elif "seconds" in record:
        rows.append(("wall time, whole run", f"{record['seconds']:.0f} s"))
    table = "| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    return table + "\n\n" + _parameters_md(books)


def _ok(entry: dict) -> bool:
    return entry.get("status", "completed") == "completed"


def _parameters_md(books: dict) -> str:
    """Every notebook's parameters with their origin (helpers.study): one row per parameter and
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
    for (key, value, origin), stems in rows.items():
        cell = html.escape(value).replace("|", "\\|")
        lines.append(f"| {key} | `{cell}` | {origin} | {', '.join(stems)} |")
    return "\n".join(lines)


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


def _findings_cells(found: dict, run_dir: Path) -> list:
    """The report's opening: the regime, one table of the study's claims (sub-claims such as
    C7.flip stay in their notebook) with this run's estimate, interval, replication and verdict,
    the same as a figure, what the run can say (with its family-wise error) and what each
    verdict means."""
    rows = found["claims"]
    top = [r for r in rows if r["role"] != "sub-claim"]
    labels = sorted({r["regime"] for r in top if r["direction"] != "fact"}) or sorted(
        {r["regime"] for r in top})
    cells = [nbformat.v4.new_markdown_cell(
        "## Findings\n\nDo the study's findings hold? Each row is one claim of the study in its "
        "own words, the quantity that tests it, the smallest effect of interest Δ, this run's "
        "estimate with its 95% interval (for a number the study reports from one run: also the "
        "interval one new run would fall in) and what was replicated, and the verdict that "
        "its direction, size and Δ add up to (defined below the figure).\n\n"
        f"**The study's claims on {escape('; '.join(labels))}.**")]
    cells.append(nbformat.v4.new_markdown_cell(findings.table_html(top)))
    figure = plots_findings.forest(top)
    if figure is not None:
        png = _png(figure)
        write_atomic(run_dir / "figures" / "findings.png", lambda p: p.write_bytes(png))
        cells.append(nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(png).decode(),
                                  "text/plain": "the findings figure"})]))
        cells.append(nbformat.v4.new_markdown_cell(
            "*Figure F: every claim's estimate and 95% interval (thick), in accuracy, turned so "
            "that right of zero is the study's way; grey: ±Δ around no effect or around the "
            "study's number (black tick); thin: the interval for one new run; colour: the "
            "verdict.*"))
    cells.append(nbformat.v4.new_markdown_cell("**Conclusion.** " + findings.summary(rows)))
    cells.append(nbformat.v4.new_markdown_cell(
        "**What the verdicts mean** (Δ: 0.01 for a difference, 0.02 for an absolute accuracy, "
        "±0.05 around the study's +0.15 for C9; comparable: CINIC-10 at the study's budget, and "
        "for 72.48% a pretrained VGG19):\n\n" + findings.definitions_markdown()))
    return cells


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
    record = _read(run_dir / "run.json", read_json)
    body, toc = [], []
    fingerprint = record["dataset"]["fingerprint"]
    for stem, entry in record["notebooks"].items():
        ok, why = completed(run_dir, entry)
        if not ok:  # never shown as a result: a red box in its place
            box = failure_box(run_dir, stem, entry, why)
            print(f"report: {stem}: no result, {why}; a red box stands in its place")
            toc.append(f"- [{stem} did not complete](#{_anchor(f'{stem} did not complete')})")
            body.append(nbformat.v4.new_markdown_cell(box))
            continue
        nb = read_executed(run_dir, entry)
        theirs = entry.get("dataset", {}).get("fingerprint", fingerprint)
        if entry.get("profile", record["profile"]) != record["profile"] or theirs != fingerprint:
            name = entry.get("dataset", {}).get("dataset", "?")
            note = (
                f"**Note:** the next section ran with profile `{entry.get('profile')}` on "
                f"`{name}` ({theirs}), not as the run table says."
            )
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(html.escape(note)))
        for cell in nb.cells:
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                continue
            if cell.cell_type == "code":
                cell.outputs = [
                    o
                    for o in cell.get("outputs", [])
                    if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                ]
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
        banner = read_json(res).get("banner")  # {"title", "text"}: a result's warning, as text
        if banner:  # e.g. 05 without ImageNet weights
            head.append(
                f"<div style='border:2px solid #c60;background:#fff4e5;padding:0.8em'>"
                f"<b>{escape(res.stem)}: {escape(banner['title'])}</b> "
                f"{escape(banner['text'])}</div>"
            )
    found = findings.load(run_dir)
    opening = _findings_cells(found, run_dir) if found and found["claims"] else []
    if opening:
        toc.insert(0, "- [Findings](#Findings)")
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
    return no_scripts(html)


def no_scripts(html: str) -> str:
    """html with NO_SCRIPTS first in <head>: the report needs no script, and should a name
    from the data ever slip through unescaped, a browser (or Chromium printing it) runs none
    of it, inline handlers included."""
    if NO_SCRIPTS in html:
        return html
    head = html.find("<head>")
    at = head + len("<head>") if head >= 0 else 0
    return f"{html[:at]}\n{NO_SCRIPTS}\n{html[at:]}"


def find_chromium() -> str | None:
    """A headless-capable Chromium/Chrome on PATH."""
    return next((p for p in map(shutil.which, CHROMIUM) if p), None)


def to_pdf(html_path: Path, pdf_path: Path, timeout: int = 180) -> bool:
    """Print html_path to pdf_path with headless Chromium; False (with a hint) without it."""
    browser = find_chromium()
    if browser is None:
        print(
            "report.pdf skipped: no Chromium found. Install it (Debian/Ubuntu: "
            "`sudo apt-get install chromium`), then run `python -m helpers report "
            f"{html_path.parent}`."
        )
        return False
    with tempfile.TemporaryDirectory() as profile:
        page = Path(profile) / "print.html"
        # Chromium prints a copy that forbids scripts (see no_scripts): a script that blocks,
        # an alert(), would hold it until the timeout. Its flags cannot do this: with
        # --blink-settings=scriptEnabled=false Chromium 156 prints nothing (and exits 0), and
        # --disable-javascript is ignored.
        page.write_text(no_scripts(html_path.read_text()))
        try:
            write_atomic(pdf_path, lambda tmp: _print(browser, page, tmp, profile, timeout))
        except subprocess.TimeoutExpired:
            raise StudyError(
                f"{pdf_path}: {browser} did not print within {timeout} s and was stopped "
                f"({html_path} is written; open it in a browser, or retry with "
                f"`python -m helpers report {html_path.parent}`)"
            ) from None
        except _PrintFailed as err:
            print(f"report.pdf failed: {browser} {err}")
            return False
    return True


class _PrintFailed(RuntimeError):
    """Chromium exited with an error or printed nothing."""


def _print(browser: str, page: Path, tmp: Path, profile: str, timeout: int) -> None:
    """Chromium prints page to tmp (an empty file), or raises (it is stopped on a timeout)."""
    cmd = [
        browser,
        "--headless",
        # Chromium refuses to start as root with its sandbox on; anyone else keeps it
        *(["--no-sandbox"] if os.geteuid() == 0 else []),
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={tmp.resolve()}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: a timeout ends its helper processes too
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        raise _PrintFailed(f"exited {proc.returncode}: {stderr[-500:]}")


def build_report(run_dir: Path) -> Path:
    """<run>/report.html and, where Chromium exists, <run>/report.pdf."""
    run_dir = Path(run_dir)
    html = to_html(combined_notebook(run_dir))
    html_path = write_atomic(run_dir / "report.html", lambda p: p.write_text(html))
    print(f"report: {html_path}")
    if to_pdf(html_path, run_dir / "report.pdf"):
        print(f"report: {run_dir / 'report.pdf'}")
    return html_path
