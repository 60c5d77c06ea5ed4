"""`python -m helpers compare`: the findings matrix from each run's findings.json, what differs
between the runs, the verdicts that changed, and the refusal of a folder with no findings.
Fast tests on hand-made run folders; one slow test on two smoke runs that differ in a seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli, executed_notebook, one_line_error

from helpers.base import StudyError
from helpers.experiments import findings
from helpers.run import compare


def _run_folder(root: Path, seed: int = 0, shift: float = 0.0, name: str = "run") -> Path:
    """A run folder as `run --only 02` leaves it: run.json (02 completed, its parameters and
    origins), the executed notebook and findings.json with C1 from two seeds."""
    run = root / name
    executed_notebook(run / "executed" / "02_resnet.ipynb")
    row = findings.finding("C1", findings.mean_of_runs([0.30 + shift, 0.34 + shift]),
                           findings.UNNAMED)
    (run / "results").mkdir(parents=True)
    (run / "results" / "findings.json").write_text(json.dumps(
        {"dataset": "synthetic", "profile": "smoke", "backend": "tensorflow", "claims": [row]}))
    record = {
        "profile": "smoke", "backend": "tensorflow", "git": "abc123",
        "dataset": {"dataset": "synthetic-v2", "kind": "synthetic", "fingerprint": "f00d"},
        "hardware": {"cpu": "cpu", "cores": 2},
        "notebooks": {"02_resnet": {
            "executed": "executed/02_resnet.ipynb", "status": "completed", "seconds": 1.0,
            "parameters": {"seed": seed, "epochs": 2, "run_dir": str(run)},
            "origins": {"seed": "-p" if seed else "project", "epochs": "profile",
                        "run_dir": "run"}}},
    }
    (run / "run.json").write_text(json.dumps(record))
    return run


def test_the_matrix_holds_each_runs_numbers_and_names_the_changed_parameter(tmp_path, capsys):
    a = _run_folder(tmp_path / "a", seed=0)
    b = _run_folder(tmp_path / "b", seed=1, shift=0.1)
    compare.compare([a, b], out=tmp_path / "cmp")
    text = capsys.readouterr().out
    for run in (a, b):
        row = json.loads((run / "results" / "findings.json").read_text())["claims"][0]
        assert findings.interval_text(row) in text  # the matrix cell, from that file
    assert "02_resnet.seed: 0 (project) | 1 (-p)" in text
    assert "epochs" not in text and "run_dir" not in text  # the same, or only where it ran
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "02_resnet.seed" in page.replace("&#46;", ".").replace("&#95;", "_")
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert set(saved["matrix"]["C1"]) == {"a/run", "b/run"}  # same names: parents named too


def test_a_planted_change_of_verdict_is_named_with_how_far_the_estimate_moved(tmp_path):
    a = _run_folder(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    path = b / "results" / "findings.json"
    data = json.loads(path.read_text())
    before = data["claims"][0]["verdict"]
    row = data["claims"][0]
    row |= {"verdict": "reproduced", **{k: row[k] + 0.5 for k in ("estimate", "ci_low", "ci_high")}}
    path.write_text(json.dumps(data))
    runs = [compare.load_run(a, "A"), compare.load_run(b, "B")]
    (line,) = compare.changes(runs)
    assert line.startswith(f"C1: {before} in A -> reproduced in B; the estimate moved +0.500")
    assert "outside the baseline's interval" in line


def test_findings_of_a_notebook_that_does_not_stand_are_left_out(tmp_path):
    a = _run_folder(tmp_path / "a")
    record = json.loads((a / "run.json").read_text())
    record["notebooks"]["02_resnet"]["status"] = "failed"
    (a / "run.json").write_text(json.dumps(record))
    with pytest.raises(StudyError, match="no findings to compare"):
        compare.load_run(a)


def test_a_folder_without_findings_is_refused_in_one_line(tmp_path, capsys):
    a = _run_folder(tmp_path / "a")
    empty = tmp_path / "empty"
    empty.mkdir()
    err = one_line_error(capsys, ["compare", str(a), str(empty), "--out", str(tmp_path / "c")])
    assert str(empty) in err and "no findings" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_two_smoke_runs_differing_in_a_seed(smoke_run, tmp_path):
    """The shared smoke run (every notebook, seed 0) against `--only 02` with seed 1."""
    other = tmp_path / "s1"
    proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--only", "02",
               "--no-report", "--out", str(other), "-p", "02_resnet.seed=1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = [smoke_run[0], other]
    proc = cli("compare", *map(str, runs), "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for run in runs:
        for row in json.loads((run / "results" / "findings.json").read_text())["claims"]:
            assert findings.interval_text(row) in proc.stdout
    (line,) = [x for x in proc.stdout.splitlines() if "02_resnet.seed:" in x]
    assert line.strip().startswith("02_resnet.seed: 0 (") and line.endswith("| 1 (-p)"), line
    assert (tmp_path / "cmp" / "compare.html").is_file()
