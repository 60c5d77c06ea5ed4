"""Findings, the report and every read of another notebook's results use only the notebooks
that completed in the run folder's current state: a failed, killed or vanished rerun takes its
notebook's claims and results out (and a notebook writing its own findings counts itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import executed_notebook, notebook_code

from helpers.experiments import findings
from helpers.run import report

_executed = executed_notebook
resnet_seeds = notebook_code("05_transfer", "resnet_seeds")


def _folder(run: Path, statuses: dict[str, str]) -> Path:
    """A run folder whose notebooks have these statuses, each with an executed copy (except
    'vanished': completed, its copy deleted), each having written its findings earlier."""
    books = {}
    for stem, status in statuses.items():
        if status != "vanished":
            _executed(run / "executed" / f"{stem}.ipynb")
        else:
            (run / "executed" / f"{stem}.ipynb").unlink(missing_ok=True)
        books[stem] = {"executed": f"executed/{stem}.ipynb", "seconds": 2.0,
                       "status": "completed" if status == "vanished" else status}
    record = {"profile": "smoke", "notebooks": books,
              "dataset": {"dataset": "synthetic", "kind": "synthetic", "fingerprint": "fp"}}
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps(record))
    return run


ROWS = {
    "02_resnet": [findings.finding("C1", findings.mean_of_runs([0.6, 0.62]), findings.UNNAMED)],
    "03_hyperparams": [findings.finding("C3", findings.paired([0.6, 0.7], [0.5, 0.55]),
                                        findings.UNNAMED),
                       findings.finding("C6", findings.paired([0.5, 0.55], [0.6, 0.7]),
                                        findings.UNNAMED)],
    "05_transfer": [findings.finding("C9", findings.paired([0.6, 0.7], [0.5, 0.55]),
                                     findings.UNNAMED)],
}


def _findings_written(run: Path, stems) -> None:
    """Each notebook's findings as it wrote them when it completed (earlier runs)."""
    for stem in stems:
        findings.save(run, stem, ROWS[stem], dataset="synthetic", profile="smoke",
                      regime=findings.UNNAMED)


def _findings_section(html: str) -> str:
    """The Findings section's text and markup, its figure's PNG data left out."""
    import re

    section = html[html.index('id="Findings"'):html.index('id="Contents"')]
    return re.sub(r'data:image/png;base64,[^"]+', "", section)


@pytest.mark.parametrize("status", ["failed", "running", "vanished"])
def test_the_reports_findings_leave_out_a_notebook_that_did_not_complete(tmp_path, status):
    run = tmp_path / "run"
    _folder(run, {"02_resnet": "completed", "03_hyperparams": "completed"})
    _findings_written(run, ["02_resnet", "03_hyperparams"])
    _folder(run, {"02_resnet": "completed", "03_hyperparams": status})  # 03's rerun: no result
    section = _findings_section(report.to_html(report.combined_notebook(run)))
    assert "C1" in section
    assert "C3" not in section and "C6" not in section


def test_a_notebook_writing_its_findings_counts_itself_and_not_a_failed_one(tmp_path):
    run = tmp_path / "run"
    _folder(run, {"02_resnet": "completed"})
    _findings_written(run, ["02_resnet"])
    _folder(run, {"02_resnet": "failed", "05_transfer": "running"})  # 02 reran and failed
    findings.save(run, "05_transfer", ROWS["05_transfer"], dataset="synthetic", profile="smoke",
                  regime=findings.UNNAMED)
    merged = json.loads((run / "results" / "findings.json").read_text())
    assert [r["id"] for r in merged["claims"]] == ["C9"]


def _resnet_result(run: Path) -> None:
    (run / "results").mkdir(parents=True, exist_ok=True)
    (run / "results" / "02_resnet.json").write_text(json.dumps({
        "seeds": [{"test_accuracy": 0.5}, {"test_accuracy": 0.52}],
        "provenance": {"fingerprint": "fp"}}))


@pytest.mark.parametrize("status, expected", [
    ("completed", [0.5, 0.52]),
    ("failed", None),  # 02 reran and failed: its old results/02_resnet.json no longer stands
    ("running", None),  # killed, or still running
])
def test_transfer_reads_02s_results_only_where_02_completed(tmp_path, status, expected):
    run = _folder(tmp_path / "run", {"02_resnet": status, "05_transfer": "running"})
    _resnet_result(run)
    found = resnet_seeds(run, "fp")
    assert (found and found["test_accuracy"]) == expected


def test_notebooks_run_by_hand_without_a_run_record_still_read_each_other(tmp_path):
    run = tmp_path / "run"  # JupyterLab: no runner, no run.json, nothing to judge by
    _resnet_result(run)
    assert resnet_seeds(run, "fp")["test_accuracy"] == [0.5, 0.52]


def test_a_banner_from_a_notebook_that_did_not_complete_is_not_shown(tmp_path):
    run = _folder(tmp_path / "run", {"02_resnet": "completed", "05_transfer": "failed"})
    (run / "results").mkdir()
    banner = {"banner": {"title": "this is not transfer learning.", "text": "random weights"}}
    (run / "results" / "05_transfer.json").write_text(json.dumps(banner))
    html = report.to_html(report.combined_notebook(run))
    assert "this is not transfer learning" not in html
