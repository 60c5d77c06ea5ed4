"""Records that match what computed them, through the runner users call: two real `run`
processes into one folder, a kernel killed on its own (a real kill -9), 01's carve. Slow: each
starts real kernels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import notebook_status, pids_naming, wait_until

from helpers.base import ROOT

pytestmark = pytest.mark.slow


def _run(out: Path, *args: str) -> subprocess.Popen:
    """`python -m helpers run --profile smoke ARGS --out out`, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--out", str(out), *args],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )



def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = _run(out, "--only", "02", "-p", "02_resnet.epochs=4", "--no-report")
    second = None
    try:
        wait_until(lambda: notebook_status(out, "02_resnet") == "running", 240, 0.2)
        second = _run(out, "--only", "02", "-p", "02_resnet.epochs=1", "--no-report")
        _, err = second.communicate(timeout=180)
        assert second.returncode == 2, err[-3000:]
        assert err.count("\n") == 1 and err.startswith("error: "), err[-3000:]
        assert str(out) in err and f"pid {first.pid}" in err, err
        assert first.poll() is None  # the first goes on, its record its own
        record = json.loads((out / "run.json").read_text())
        assert record["notebooks"]["02_resnet"]["parameters"]["epochs"] == 4
    finally:
        _stop(first, *([second] if second else []))


def test_01_loads_the_carve_every_notebook_loads_whatever_the_seed(tmp_path):
    from conftest import write_layout

    dataset = write_layout(tmp_path / "ds", splits=("train", "test"), per_class=20)  # no valid/
    out = tmp_path / "run"
    proc = _run(out, "--dataset", str(dataset), "--only", "01", "-p", "seed=3", "--no-report")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    recorded = json.loads((out / "run.json").read_text())["dataset"]["fingerprint"]
    result = json.loads((out / "results" / "01_data.json").read_text())
    assert result["provenance"]["fingerprint"] == recorded  # 02-05 load this one (the default carve)


KILLED = "its kernel, which died: killed from outside (the out-of-memory killer, or kill -9)"


def test_a_kernel_killed_on_its_own_is_a_failure_on_record_and_the_report_is_built(tmp_path):
    out = tmp_path / "run"
    proc = _run(out, "--only", "02")
    try:
        marker = f"kernel-02_resnet-{proc.pid}.json"
        wait_until(lambda: notebook_status(out, "02_resnet") == "running"
                   and pids_naming(marker), 240, 0.2)
        time.sleep(3)  # (it runs cells now)
        for pid in pids_naming(marker):
            os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does
        _, err = proc.communicate(timeout=300)
    finally:
        _stop(proc)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: 02_resnet failed in {KILLED}"], err[-3000:]
    assert "Kernel died" not in err, err[-3000:]  # (nbclient's own line: the error says it)
    entry = json.loads((out / "run.json").read_text())["notebooks"]["02_resnet"]
    assert entry["status"] == "failed" and "kernel" in entry["error"]
    assert (out / "report.html").exists()
