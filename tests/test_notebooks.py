"""Every notebook through the runner users call (`python -m helpers run`, smoke profile),
the report it builds, and the runner's refusals. The runs are marked slow (a minute or two);
the refusal that starts no kernel is not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import cli, copy_run, kill_once_running

from helpers.run.profiles import notebooks

pytestmark = pytest.mark.xdist_group("smoke")  # on the worker that runs conftest.smoke_run


@pytest.mark.slow
def test_every_notebook_ran_and_left_its_results(smoke_run):
    out, proc = smoke_run
    record = json.loads((out / "run.json").read_text())
    stems = [p.stem for p in notebooks()]
    assert list(record["notebooks"]) == stems
    assert record["dataset"]["kind"] == "synthetic" and record["dataset"]["fingerprint"]
    for stem in stems:
        assert (out / "executed" / f"{stem}.ipynb").exists()
        result = json.loads((out / "results" / f"{stem}.json").read_text())
        assert result["provenance"]["versions"]["tensorflow"]
        assert f"{stem} done" in proc.stdout
    assert (out / "models" / "02_resnet.keras").exists()
    figures = {p.name.split("_")[0] for p in (out / "figures").glob("fig*.png")}
    assert {"fig01", "fig02", "fig03"} <= figures


@pytest.mark.slow
def test_smoke_run_writes_findings_of_the_documented_shape(smoke_run):
    from helpers.experiments.findings import CLAIMS, VERDICTS, check

    out, _ = smoke_run
    path = out / "results" / "findings.json"
    found = check(json.loads(path.read_text()), path)
    assert set(found) == {"dataset", "profile", "backend", "regimes", "claims"}
    assert found["profile"] == "smoke" and found["backend"] == "tensorflow"
    assert set(found["regimes"]) == {p.stem for p in notebooks()}
    ids = {row["id"] for row in found["claims"]}
    # the smoke grids are too small for C2 and C4; 02 and 05 draw different subsets, so C10 is
    # there but not comparable
    assert {"C0", "C1", "C3", "C7", "C7.steps", "C8", "C9", "C10", "C11", "C12"} <= ids
    for row in found["claims"]:
        assert row["verdict"] in VERDICTS and row["notebook"] == CLAIMS[row["id"].split(".")[0]].notebook
        # 01 sets none of the study's settings, so its regime names the data alone
        expected = "generated synthetic data" + ("" if row["id"] == "C0" else ", smoke budget")
        assert expected in row["regime"]
        if row["direction"] in ("abs", "fact") or row["id"] == "C10":
            assert row["verdict"] == "not comparable"  # never set against the study's number
    html = (out / "report.html").read_text()
    assert html.index('id="Findings"') < html.index('id="Contents"')
    assert "What this run can say" in html and "What the verdicts mean" in html
    assert (out / "figures" / "findings.png").stat().st_size > 10_000


@pytest.mark.slow
def test_report_html_is_self_contained_with_contents_and_banner(smoke_run):
    out, _ = smoke_run
    html = (out / "report.html").read_text()
    assert not re.search(r"<script[^>]*src=\"https?://", html)
    assert "These numbers are not CINIC-10" in html
    assert "Figure 2: Accuracy over epoch iterations" in html
    assert "data.load_dataset(dataset" not in html  # code hidden
    for target in re.findall(r'<a href="#([^"]+)"', html):
        assert f'id="{target}"' in html, f"contents link #{target} has no heading"
    assert html.count("data:image/png;base64") >= 4


@pytest.mark.slow
@pytest.mark.skipif(
    not shutil.which("chromium") and not shutil.which("google-chrome"),
    reason="no Chromium: the PDF is skipped (the runner prints how to get it)",
)
def test_report_pdf_is_real(smoke_run):
    out, _ = smoke_run
    pdf = out / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert "CINIC-10 image classification" in text and "Residual network" in text


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("pdfimages"),
                    reason="no Chromium or poppler-utils to print and read the PDF")
def test_report_pdf_page_one_holds_figure_f_and_every_claims_verdict(smoke_run):
    """The reader's page 1, as printed: Figure F (the page's one picture) and, for every claim
    of findings.json, its id and its verdict."""
    out, _ = smoke_run
    pdf = str(out / "report.pdf")
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", pdf, "-"],
                           capture_output=True, text=True, check=True).stdout
    images = subprocess.run(["pdfimages", "-list", "-f", "1", "-l", "1", pdf],
                            capture_output=True, text=True, check=True).stdout
    assert len(images.strip().splitlines()) == 3, images  # the header's two lines and Figure F
    assert "Figure F" in page1
    claims = [r for r in json.loads((out / "results" / "findings.json").read_text())["claims"]
              if r["role"] == "claim"]
    lines = {line.split()[0]: line for line in page1.splitlines() if line.strip()}
    for row in claims:
        assert row["id"] in lines, f"{row['id']} is not on page 1"
        assert row["verdict"] in lines[row["id"]], lines[row["id"]]


@pytest.mark.slow
def test_report_rebuilds_without_rerunning(smoke_run, tmp_path):
    out = copy_run(smoke_run[0], tmp_path / "run")
    (out / "report.html").unlink()
    proc = cli("report", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.html").exists()


def test_report_of_a_non_run_folder_is_a_clear_error(tmp_path):
    proc = cli("report", str(tmp_path))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def _finding_ids(html: str) -> set[str]:
    """The claim ids in the report's Findings table (its rows start with <b>C3</b>; a bare
    substring search would also match the embedded figure's base64)."""
    section = html[html.index('id="Findings"'):html.index('id="Contents"')]
    return set(re.findall(r"<b>(C\d+)(?:\.\w+)?</b>", section))


@pytest.mark.slow
def test_a_killed_rerun_takes_its_findings_out_of_the_report(smoke_run, tmp_path):
    """03 is rerun (into a copy of the shared run) and killed mid-run: the report shows a red
    box in its place, and its claims (C3, C6 on the smoke grids) leave the Findings; 02's
    stay."""
    out = copy_run(smoke_run[0], tmp_path / "run")
    before = (out / "report.html").read_text()
    assert {"C1", "C3"} <= _finding_ids(before)
    kill_once_running(out, "03_hyperparams", "03")
    proc = cli("report", str(out))
    assert proc.returncode == 0, proc.stderr
    html = (out / "report.html").read_text()
    assert "03_hyperparams: no result, it did not complete" in html
    ids = _finding_ids(html)
    assert "C1" in ids and "C3" not in ids and "C6" not in ids
