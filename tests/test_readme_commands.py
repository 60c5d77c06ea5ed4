"""The README's first command as written: `make report` on a machine that cannot reach
CINIC-10 falls back to the generated set and runs the default (quick) profile on it, past every
pre-run check and into 02's training (the whole run is about 20 minutes; the test stops it once
02 trains). `make test`, the README's other command, is what CI runs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers.base import ROOT

pytestmark = pytest.mark.slow


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_report_offline_runs_the_default_profile_on_its_fallback(tmp_path):
    out = tmp_path / "quick"
    env = {k: v for k, v in os.environ.items() if k != "CINIC10_OFFLINE"}
    env |= {"CINIC10_DATA": str(tmp_path / "data"),  # no download, no copy: the fallback
            "CINIC10_URL": f"http://127.0.0.1:{_closed_port()}/CINIC-10.tar.gz"}
    proc = subprocess.Popen(
        ["make", "report", f"OUT={out}"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    lines: list[str] = []
    training = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if re.match(r"\s+02_resnet .*epoch \d+/4", line):
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 900
    while not training.is_set() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(timeout=10)
    text = "".join(lines)
    assert training.is_set(), text[-3000:]
    assert "using the generated `synthetic` dataset instead" in text, text[-3000:]
    assert "run quick" in text and "[2/5] 02_resnet" in text, text[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["profile"] == "quick" and record["dataset"]["kind"] == "synthetic"
    assert record["notebooks"]["01_data"]["status"] == "completed", record["notebooks"]
