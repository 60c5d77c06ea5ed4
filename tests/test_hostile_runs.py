"""Runs under a hostile machine, through the runner users call: the disk fills up mid-run (a
real, small tmpfs), Ctrl-C arrives mid-cell (a real SIGINT to the runner's process group). The
user sees lines that say what happened, never a traceback. Slow: each starts real kernels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import notebook_status, wait_until, write_layout

from helpers.base import ROOT

pytestmark = pytest.mark.slow


def _runner(out: Path, data_home: Path, dataset: Path, only: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--dataset", str(dataset),
         "--only", only, "--out", str(out)],
        cwd=ROOT, env={**os.environ, "CINIC10_DATA": str(data_home)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )



def _cell_running(executed: Path, index: int) -> bool:
    """Whether papermill has started code cell `index` of the executed copy."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError):
        return False
    meta = cells[index].get("metadata", {}).get("papermill", {})
    return meta.get("status") in ("running", "completed")


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MiB tmpfs at tmp_path/disk (root only), unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> None:
    """Write zeros until the disk is full."""
    try:
        with open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
    except OSError:  # full (also when the run filled it first)
        pass


def test_a_disk_that_fills_up_mid_run_is_a_few_lines_not_tracebacks(tmp_path, small_disk):
    dataset = write_layout(tmp_path / "ds", splits=("train", "valid", "test"), per_class=30)
    out = small_disk / "run"
    proc = _runner(out, tmp_path / "data", dataset, "01")
    try:
        wait_until(lambda: notebook_status(out, "01_data") == "running", 120)
        _fill(small_disk)  # the notebook is starting: everything it writes from now on fails
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "No space left on device" in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and "decoding" not in line]
    assert len(lines) <= 8, lines
    assert notebook_status(out, "01_data") in ("running", "failed")  # never "completed"
    json.loads((out / "run.json").read_text())  # whole: written atomically or not at all


def test_ctrl_c_mid_cell_is_one_word_not_a_kernel_traceback(tmp_path):
    dataset = write_layout(tmp_path / "ds", splits=("train", "valid", "test"), per_class=30)
    out = tmp_path / "run"
    proc = _runner(out, tmp_path / "data", dataset, "02")
    try:  # cell 6 trains the seeds: Ctrl-C then reaches a kernel busy in a cell
        wait_until(lambda: _cell_running(out / "executed" / "02_resnet.ipynb", 6), 240)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "ZMQError" not in err, err[-3000:]
    assert err.strip().endswith("interrupted")
