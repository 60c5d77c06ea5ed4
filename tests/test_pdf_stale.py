"""No PDF of an earlier build stands beside a new HTML, and a killed print leaves no .part
file in the output folder: Chromium here is a real process (a stand-in script on PATH that
fails, or that prints slowly and is killed with its parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.base import ROOT
from helpers.run import pdf


def _fake_chromium(tmp_path: Path, body: str) -> Path:
    """A folder holding a `chromium` that runs body (a shell snippet); $out is its PDF."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "chromium"
    exe.write_text('#!/bin/sh\nfor a in "$@"; do case $a in --print-to-pdf=*) '
                   f'out="${{a#--print-to-pdf=}}";; esac; done\ntouch {tmp_path}/started\n'
                   f'{body}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.mark.parametrize("chromium", ["fails", "missing", "prints"])
def test_the_previous_pdf_never_stands_beside_a_new_html(chromium, tmp_path, monkeypatch):
    bodies = {"fails": "exit 1", "prints": 'echo "%PDF- new" > "$out"'}
    bin_dir = (_fake_chromium(tmp_path, bodies[chromium]) if chromium in bodies
               else tmp_path / "empty")
    monkeypatch.setenv("PATH", str(bin_dir))
    html, old = tmp_path / "report.html", tmp_path / "report.pdf"
    html.write_text("<html><body>up to 2 epochs per trial</body></html>")
    old.write_text("%PDF- up to 1 epochs per trial")
    printed = pdf.to_pdf(html, old)
    assert printed == (chromium == "prints")
    if printed:
        assert old.read_text() == "%PDF- new\n"
    else:
        assert not old.exists()


def test_a_compare_killed_while_chromium_prints_leaves_no_part_file(tmp_path):
    from test_compare import _run_folder

    runs = [str(_run_folder(tmp_path / name, seed=seed)) for name, seed in (("a", 0), ("b", 1))]
    bin_dir = _fake_chromium(tmp_path, 'echo "%PDF- half" > "$out"; sleep 60')
    out = tmp_path / "cmp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers", "compare", *runs, "--out", str(out)], cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        end = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert time.monotonic() < end and proc.poll() is None, "Chromium never started"
            time.sleep(0.1)
        time.sleep(0.5)  # it has written half a PDF
    finally:
        with contextlib.suppress(ProcessLookupError):  # the command and its Chromium
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (out / "compare.html").exists()
    assert not list(out.glob(".compare.pdf.*.part")), sorted(p.name for p in out.iterdir())
    assert not (out / "compare.pdf").exists()
