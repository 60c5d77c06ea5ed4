"""Nothing left behind, nothing printed after the end: real processes killed with real signals
(SIGTERM, SIGKILL) in the middle of a cache build or a PDF print, and two first runs of the
synthetic generator racing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import pids_naming, wait_until, write_layout
from test_cache_safety import _slow_cli

from helpers.base import ROOT
from helpers.data import load_dataset


def _decoding(marks: Path) -> bool:
    return len(list(marks.iterdir())) >= 2


def _partials(data_home: Path) -> list[Path]:
    return list((data_home / "cache").glob(".*.partial")) if (data_home / "cache").exists() else []


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_layout(tmp_path / "ds", splits=("train", "valid", "test"), per_class=20)


def test_sigterm_during_a_first_build_removes_it_and_prints_nothing_after(
    tmp_path, data_home, dataset
):
    proc = _slow_cli(tmp_path / "marks", dataset, data_home)
    try:
        wait_until(lambda: _decoding(tmp_path / "marks"), 60, 0.05)
        os.kill(proc.pid, signal.SIGTERM)  # the parent only, as `kill PID` does
        # (communicate reads to the end: every worker holding stderr has exited too)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143 and err.strip().endswith("terminated"), err[-2000:]
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-2000:]
    assert not _partials(data_home) and not list(data_home.glob("cache/*/meta.json"))


def test_a_parent_killed_with_sigkill_leaves_quiet_workers_and_a_partial_the_next_build_removes(
    tmp_path, data_home, dataset
):
    proc = _slow_cli(tmp_path / "marks", dataset, data_home)
    try:
        wait_until(lambda: _decoding(tmp_path / "marks"), 60, 0.05)
        os.kill(proc.pid, signal.SIGKILL)  # nothing can clean up in the parent
        _, err = proc.communicate(timeout=30)  # the workers notice and end, silently
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-2000:]
    assert len(_partials(data_home)) == 1  # the killed build's
    load_dataset(str(dataset), say=lambda *_: None)  # the next build of the same cache
    assert not _partials(data_home)
    assert len(list(data_home.glob("cache/*/meta.json"))) == 1


def _run_folder(run: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Data\n\n" + "x " * 5000)])
    (run / "executed").mkdir(parents=True)
    nbformat.write(nb, run / "executed" / "01_data.ipynb")
    record = {"profile": "smoke", "notebooks": {"01_data": {"executed": "executed/01_data.ipynb"}},
              "dataset": {"dataset": "d", "kind": "folder", "fingerprint": "f"}}
    (run / "run.json").write_text(json.dumps(record))
    return run


CHROMIUM = any(Path(d, "chromium").exists() for d in os.environ["PATH"].split(os.pathsep))


@pytest.mark.skipif(not CHROMIUM, reason="no Chromium")
def test_a_report_killed_while_chromium_prints_leaves_nothing(
    tmp_path, request
):
    run = _run_folder(tmp_path / "run")
    # the report's temporary directory, watched (short: Chromium's socket path must be)
    temp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(temp, ignore_errors=True))
    env = {**os.environ, "TMPDIR": str(temp)}
    cmd = [sys.executable, "-m", "helpers", "report", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: pids_naming(f"--user-data-dir={temp}"), 60, 0.05)  # it prints now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_until(lambda: not pids_naming(f"--user-data-dir={temp}"), 15, 0.05)  # died with it
    wait_until(lambda: not list(temp.iterdir()), 15, 0.05)  # and its scratch, with no later build
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(run.glob(".report.*.part")), list(run.iterdir())
    assert not list(temp.iterdir()), list(temp.iterdir())  # no profile, no socket folder


# Two first runs of the synthetic generator (as two `helpers data --dataset synthetic` would), its
# images slowed (5 ms each) and marked per process, so the second starts mid-generation.
SLOW_SYNTHETIC = """
import os, sys, time
from pathlib import Path
import helpers.data.sources as s
marks = Path(sys.argv[1])
real = s.synthetic_image
def slow(c, rng):
    (marks / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    time.sleep(0.005)
    return real(c, rng)
s.synthetic_image = slow
print(s.make_synthetic(per_class=20).location, flush=True)
"""


def test_two_first_synthetic_runs_at_once_generate_it_once(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "CINIC10_DATA": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", SLOW_SYNTHETIC, str(marks)]
    run = dict(cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = subprocess.Popen(cmd, **run)
    wait_until(lambda: any(marks.iterdir()), 60, 0.05)  # generating: the second comes mid-way
    second = subprocess.Popen(cmd, **run)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    for p, (_, err) in zip((first, second), outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    assert "another process is building this dataset; waiting" in outs[1][0]
    makers = {m.name.split("-")[0] for m in marks.iterdir()}
    assert makers == {str(first.pid)} and len(list(marks.iterdir())) == 20 * 10 * 3  # once
    assert outs[0][0].splitlines()[-1] == outs[1][0].splitlines()[-1]  # the same folder
    assert not list((tmp_path / "data" / "synthetic").glob(".*.partial"))
