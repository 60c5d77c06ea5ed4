"""The report under hostile names and broken run folders: nothing from the data becomes markup,
Chromium prints with scripts off and stops cleanly, and broken inputs are one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import executed_notebook, notebook_code

from helpers.base import ROOT, StudyError, escape
from helpers.run import pdf, report

EVIL = "d<img src=x onerror=alert(1)>"
EVIL_CLASS = "<img src=y onerror=alert(2)> *b* | [l](javascript:alert(3))"


def _run_dir(tmp_path: Path, name: str = EVIL) -> Path:
    """A run folder as `run` leaves it: run.json and one executed notebook, whose conclusion
    names a class the way a notebook should (escaped)."""
    run = tmp_path / "run"
    (run / "executed").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Data"),
            nbformat.v4.new_code_cell(
                "display(Markdown(...))",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={"text/markdown": f"Its worst class is *{escape(EVIL_CLASS)}*."},
                    )
                ],
            ),
        ]
    )
    nbformat.write(nb, run / "executed" / "01_data.ipynb")
    record = {
        "profile": "smoke<script>alert(4)</script>",
        "dataset": {
            "dataset": name,
            "kind": "folder",
            "fingerprint": "0123456789abcdef",
            "note": f"from {tmp_path}/{name}",
        },
        "notebooks": {"01_data": {"executed": "executed/01_data.ipynb", "seconds": 1.0}},
    }
    (run / "run.json").write_text(json.dumps(record))
    return run


def _live_markup(html: str) -> list[str]:
    """Injected tags or handlers that a browser would act on (the report's own figures are
    <img src="data:image/png...">, which none of these match)."""
    img = re.search(r'<img(?![^>]*src="data:image/png;base64,)', html)
    return (["<img"] if img else []) + [t for t in ("<script>alert", 'href="javascript')
                                        if t in html]


def test_names_from_data_and_paths_are_text_in_the_report(tmp_path):
    html = report.to_html(report.combined_notebook(_run_dir(tmp_path)))
    assert _live_markup(html) == []
    assert "d&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text, in the banner
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html  # the profile row
    assert pdf.NO_SCRIPTS in html  # and a browser would run no script anyway


def test_negative_control_unescaped_names_would_be_live(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"class {EVIL_CLASS}")])
    assert _live_markup(report.to_html(nb)) == ["<img", 'href="javascript']  # it can see one


@pytest.mark.parametrize("text", [EVIL, EVIL_CLASS, "a_b*c*`d` |e| ü", "&amp; <!-- x"])
def test_escape_reads_back_as_the_same_text_in_markdown_and_html(text):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"| a |\n|---|\n| {escape(text)} |"),
            nbformat.v4.new_markdown_cell(f"<div>{escape(text)}</div>"),
        ]
    )
    html = report.to_html(nb)
    from html.parser import HTMLParser

    class Texts(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.cells = []
            self.where = None

        def handle_starttag(self, tag, attrs):
            self.where = tag if tag in ("td", "div") else self.where
            if tag not in ("td", "div"):
                self.cells.append(f"TAG {tag}")

        def handle_data(self, data):
            if data.strip() and self.where in ("td", "div"):
                self.cells.append(data.strip())

    body = html[html.index("<main>") :]
    parser = Texts()
    parser.feed(body)
    assert parser.cells.count(text.strip()) == 2, parser.cells


def _fake_chromium(tmp_path: Path, monkeypatch, body: str) -> Path:
    """A `chromium` on PATH that logs its arguments, then runs body (a shell snippet)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "chromium"
    exe.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\n{body}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "argv"


def test_pdf_is_printed_with_scripts_forbidden_and_the_sandbox_on_unless_root(
    tmp_path, monkeypatch
):
    argv = _fake_chromium(
        tmp_path,
        monkeypatch,
        'for a in "$@"; do case $a in --print-to-pdf=*) echo pdf > "${a#--print-to-pdf=}";; '
        f'file://*) cat "${{a#file://}}" > {tmp_path}/printed;; esac; done',
    )
    html = tmp_path / "report.html"
    html.write_text("<html><head><title>r</title><script>alert(1)</script></head></html>")
    assert pdf.to_pdf(html, tmp_path / "report.pdf")
    args = argv.read_text().split()
    assert ("--no-sandbox" in args) == (os.geteuid() == 0)
    printed = (tmp_path / "printed").read_text()
    assert printed.index(pdf.NO_SCRIPTS) < printed.index("<script>")


CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")


@pytest.mark.skipif(not CHROMIUM, reason="no Chromium")
def test_real_chromium_prints_a_page_whose_scripts_would_block_or_rewrite_it(tmp_path):
    html = tmp_path / "report.html"
    html.write_text(
        "<html><head></head><body><h1>NOSCRIPT</h1><img src=x onerror=alert(1)>"
        "<script>alert(2); document.body.innerHTML = 'SCRIPTRAN'</script></body></html>"
    )
    assert pdf.to_pdf(html, tmp_path / "report.pdf", timeout=60)  # not held by alert()
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True
        ).stdout
        assert "NOSCRIPT" in text and "SCRIPTRAN" not in text


def test_a_chromium_that_hangs_is_one_line_after_the_timeout(tmp_path, monkeypatch):
    _fake_chromium(tmp_path, monkeypatch, "sleep 60 & sleep 60")  # a helper process too
    html = tmp_path / "report.html"
    html.write_text("<html></html>")
    with pytest.raises(StudyError, match="did not print within 1 s") as err:
        pdf.to_pdf(html, tmp_path / "report.pdf", timeout=1)
    assert "\n" not in str(err.value) and not (tmp_path / "report.pdf").exists()


@pytest.mark.parametrize("damage", ["missing_notebook", "truncated_run_json", "truncated_nb"])
def test_report_on_a_broken_run_folder_is_one_line(tmp_path, damage):
    """A truncated run.json is a one-line error; a missing or truncated executed notebook is no
    result: the report is still built, with a red box in its place, and says so in one line."""
    run = _run_dir(tmp_path, name="plain")
    if damage == "missing_notebook":
        (run / "executed" / "01_data.ipynb").unlink()
    elif damage == "truncated_run_json":
        text = (run / "run.json").read_text()
        (run / "run.json").write_text(text[: len(text) // 2])
    else:
        p = run / "executed" / "01_data.ipynb"
        p.write_text(p.read_text()[:100])
    out = subprocess.run(
        [sys.executable, "-m", "helpers", "report", str(run)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": "/usr/bin:/bin"},  # (no Chromium needed to fail)
    )
    assert "Traceback" not in out.stderr
    if damage == "truncated_run_json":
        assert out.returncode == 2, out.stderr[-2000:]
        assert out.stderr.strip().count("\n") == 0 and "run.json" in out.stderr
        return
    assert out.returncode == 0, out.stderr[-2000:]
    why = "is missing" if damage == "missing_notebook" else "is unreadable"
    note = [line for line in out.stdout.splitlines() if "01_data: no result" in line]
    assert len(note) == 1 and why in note[0]
    assert "01_data did not complete" in (run / "report.html").read_text()


def test_augmentation_conclusion_shows_the_dataset_name_as_text():
    from helpers.experiments import findings

    conclusion = notebook_code("04_augmentation", "conclusion")

    est = findings.paired([0.1, 0.2, 0.15], [0.2, 0.35, 0.25])
    rows = [findings.finding("C7", est, findings.UNNAMED),
            *findings.family("C7", {"flip": est}, findings.UNNAMED)]
    text = conclusion(rows, EVIL + "`", is_cinic10=False)
    html = report.to_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)]))
    assert _live_markup(html) == [] and "d&lt;img src=x onerror=alert(1)&gt;`" in html


def test_a_results_banner_opens_the_report_as_text(tmp_path):
    run = _run_dir(tmp_path)
    record = json.loads((run / "run.json").read_text())
    for stem in ("02_resnet", "05_transfer"):  # completed, so their results stand
        executed_notebook(run / "executed" / f"{stem}.ipynb")
        record["notebooks"][stem] = {"executed": f"executed/{stem}.ipynb", "seconds": 1.0}
    (run / "run.json").write_text(json.dumps(record))
    (run / "results").mkdir()
    banner = {"title": "this is not transfer learning.", "text": f"weights from {EVIL}."}
    (run / "results" / "05_transfer.json").write_text(json.dumps({"banner": banner}))
    (run / "results" / "02_resnet.json").write_text(json.dumps({"test_accuracy": 0.5}))
    html = report.to_html(report.combined_notebook(run))
    assert "05_transfer: this is not transfer learning" in html
    assert "02_resnet:" not in html  # no banner entry, no box
    assert _live_markup(html) == []


class _Texts(HTMLParser):
    """Every text a browser shows (character references read once), in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_data(self, data):
        if data.strip():
            self.texts.append(data.strip())


def _shown(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html[html.index("<main>"):])
    return parser.texts


def test_the_run_table_shows_each_value_escaped_once(tmp_path):
    run = _run_dir(tmp_path, name="plain")
    record = json.loads((run / "run.json").read_text())
    record["notebooks"]["01_data"]["parameters"] = {"dataset": "synthetic", "note": "a<b & 'c'"}
    (run / "run.json").write_text(json.dumps(record))
    shown = _shown(report.to_html(report.combined_notebook(run)))
    assert "'synthetic'" in shown and '"a<b & \'c\'"' in shown, shown
    assert not [t for t in shown if "&#" in t or "&amp;" in t or "&lt;" in t], shown


HOSTILE = "<img src=x onerror=alert(9)>`<b>"


def _hostile_run(tmp_path: Path) -> Path:
    """A run folder whose every field of run.json and findings.json is HOSTILE."""
    run = _run_dir(tmp_path / HOSTILE.replace("/", "_"), name=HOSTILE)
    record = json.loads((run / "run.json").read_text())
    record.update(git=HOSTILE, time=HOSTILE, backend=HOSTILE, versions={HOSTILE: HOSTILE},
                  hardware={"cpu": HOSTILE, "cores": 2})
    record["dataset"].update(fingerprint=HOSTILE, kind=HOSTILE)
    entry = record["notebooks"]["01_data"]
    entry.update(parameters={HOSTILE: HOSTILE}, origins={HOSTILE: HOSTILE}, profile=HOSTILE,
                 dataset={"dataset": HOSTILE, "fingerprint": HOSTILE})
    record["notebooks"]["02_resnet"] = {"executed": "executed/02_resnet.ipynb", "status": "failed",
                                        "error": HOSTILE, "rerun": f"--out {run}", "seconds": 1.0}
    (run / "run.json").write_text(json.dumps(record))
    (run / "results").mkdir()
    from helpers.experiments import findings

    row = findings.finding("C9", findings.paired([0.6, 0.7], [0.5, 0.55]), findings.UNNAMED)
    row |= {"id": f"C9.{HOSTILE}", "notebook": "01_data"}  # (01 completed: its claims stand)
    row |= {k: HOSTILE for k in ("claim", "study", "quantity", "method", "replication", "quote",
                                 "regime", "why")}
    (run / "results" / "findings.json").write_text(json.dumps({"claims": [row]}))
    return run


def test_everything_the_report_reads_from_a_run_folder_is_text(tmp_path):
    """Fields of run.json and findings.json, as a run folder passed between colleagues could
    carry them: each shown as the text it is, none as markup."""
    run = _hostile_run(tmp_path)
    html = report.to_html(report.combined_notebook(run))
    assert _live_markup(html) == [] and "<b>x" not in html
    shown = _shown(html)
    assert not [t for t in shown if "&#" in t or "&lt;" in t], shown  # nothing escaped twice
    joined = " ".join(shown)
    for what in (HOSTILE, f"C9.{HOSTILE}"):
        assert what in joined, what


def test_everything_compare_reads_from_run_folders_is_text(tmp_path):
    """compare.html on two hostile run folders (one with a verdict changed): folder names,
    run.json's fields and findings rows are text, each escaped once."""
    from helpers.run import compare

    run = _hostile_run(tmp_path)
    other = tmp_path / "other" / "run"
    shutil.copytree(run, other)
    path = other / "results" / "findings.json"
    data = json.loads(path.read_text())
    data["claims"][0]["verdict"] = "reproduced"
    path.write_text(json.dumps(data))
    record = json.loads((other / "run.json").read_text())
    record["notebooks"]["01_data"]["parameters"] = {HOSTILE: "other"}
    (other / "run.json").write_text(json.dumps(record))
    compare.compare([run, other], out=tmp_path / "cmp")
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert _live_markup(html) == [] and "<b>x" not in html and pdf.NO_SCRIPTS in html
    shown = _shown(html)
    assert not [t for t in shown if "&#" in t or "&lt;" in t], shown  # nothing escaped twice
    joined = " ".join(shown)
    for what in (HOSTILE, f"C9.{HOSTILE}", f"01_data.{HOSTILE}", f"{run.parent.name}/run",
                 f"C9.{HOSTILE}: inconclusive in {run.parent.name}/run -> reproduced"):
        assert what in joined, what
