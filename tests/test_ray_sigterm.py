"""SIGTERM to a run whose grid runs on its own local Ray (executor=ray): one word, exit 143,
and the Ray it started gone within seconds. Slow: real kernels, a real local Ray, a real
SIGTERM to the runner (as `kill PID` sends)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.base import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.ray]
RAY = ("ray::", "raylet", "gcs_server", "default_worker")


def _ray_processes(tag: str) -> dict[int, str]:
    """{pid: command line} of Ray's processes whose environment carries tag (inherited)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
                if any(r in cmd for r in RAY) and tag.encode() in (proc / "environ").read_bytes():
                    found[int(proc.name)] = cmd
            except OSError:
                continue
    return found


def test_sigterm_during_ray_trials_is_one_word_and_leaves_no_ray(tmp_path):
    pytest.importorskip("ray")
    tag = f"CINIC10_TEST_TAG={tmp_path.name}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["CINIC10_TEST_TAG"] = tmp_path.name
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--only", "03", "-p",
         "executor=ray", "--out", str(tmp_path / "run"), "--no-report"],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        end = time.monotonic() + 400
        while not any("_ray_task" in cmd for cmd in _ray_processes(tag).values()):
            assert time.monotonic() < end and proc.poll() is None, "no trial started"
            time.sleep(0.5)
        time.sleep(3)
        os.kill(proc.pid, signal.SIGTERM)  # the runner only
        _, err = proc.communicate(timeout=120)
        end = time.monotonic() + 30
        while _ray_processes(tag) and time.monotonic() < end:
            time.sleep(0.5)
        left = _ray_processes(tag)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _ray_processes(tag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 143, err[-3000:]
    assert err.rstrip().endswith("terminated") and "Traceback" not in err, err[-3000:]
    assert "Task exception" not in err and "SystemExit" not in err, err[-3000:]
    assert not left, f"Ray processes 30 s after SIGTERM: {list(left.values())}"
