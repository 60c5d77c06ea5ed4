"""report.pdf: headless Chromium prints report.html, with scripts forbidden, stopped after a
timeout, and leaving nothing behind. Its profile and temporary files (its socket) live in one
scratch folder of the system's temporary directory (not the run folder: the socket's path must
stay short). Chromium runs under a small shell that watches the process that started it: when
that dies (even by kill -9), the shell kills Chromium and removes the scratch folder, so a
killed build leaves neither a process nor a file. Chromium prints into the scratch folder and
the PDF is copied into place atomically; a previous PDF is removed before anything is tried."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from helpers.atomic import write_atomic
from helpers.base import StudyError

CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_SCRIPTS = '<meta http-equiv="Content-Security-Policy" content="script-src \'none\'">'
SCRATCH_PREFIX = f"cinic10-pdf-{os.getuid()}-"  # one print's profile and temporary files
# the guard: runs Chromium ("$@") in the background and checks every second that it and the
# shell's parent (this process) live. When the parent has died (even by kill -9; Chromium may die
# first, of its closed pipes) it kills Chromium, waits for its helpers to let go and removes the
# scratch folder ($0); else its exit status is Chromium's. (PATH: sleep, where PATH names only
# Chromium's folder.)
GUARD = ('PATH="$PATH:/usr/bin:/bin"; "$@" & c=$!; '
         'while kill -0 $c 2>/dev/null && kill -0 $PPID 2>/dev/null; do sleep 1; done; '
         'kill -0 $PPID 2>/dev/null && { wait $c; exit $?; }; '
         'kill -9 $c 2>/dev/null; sleep 1; rm -rf "$0"; exit 143')


def no_scripts(html: str) -> str:
    """html with NO_SCRIPTS first in <head>: the report needs no script, and should a name
    from the data ever slip through unescaped, a browser (or Chromium printing it) runs none
    of it, inline handlers included."""
    if NO_SCRIPTS in html:
        return html
    head = html.find("<head>")
    at = head + len("<head>") if head >= 0 else 0
    return f"{html[:at]}\n{NO_SCRIPTS}\n{html[at:]}"


def find_chromium() -> str | None:
    """A headless-capable Chromium/Chrome on PATH."""
    return next((p for p in map(shutil.which, CHROMIUM) if p), None)


def remove_leftovers(folder: Path) -> None:
    """The .report.*.part files a killed report build left in folder (write_atomic's). Call it
    holding the folder's report lock (build_report): no live build owns one then."""
    for part in folder.glob(".report.*.part"):
        part.unlink(missing_ok=True)


def to_pdf(html_path: Path, pdf_path: Path, timeout: int = 180) -> bool:
    """Print html_path to pdf_path with headless Chromium; False (with a hint) without it.
    The previous pdf_path is removed first: without Chromium, or when it fails or is killed,
    no PDF of an earlier run stands beside the new HTML. Chromium prints into the scratch
    folder; only the copy into place is beside pdf_path, for milliseconds."""
    pdf_path.unlink(missing_ok=True)
    for part in pdf_path.parent.glob(f".{pdf_path.name}.*.part"):  # a copy killed (or older code)
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > 60:  # a live copy takes milliseconds
                part.unlink()
    browser = find_chromium()
    if browser is None:
        print(
            "report.pdf skipped: no Chromium found. Install it (Debian/Ubuntu: "
            "`sudo apt-get install chromium`), then run `python -m helpers report "
            f"{html_path.parent}`."
        )
        return False
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)
        # Chromium prints a copy that forbids scripts (see no_scripts): a script that blocks,
        # an alert(), would hold it until the timeout. Its flags cannot do this: with
        # --blink-settings=scriptEnabled=false Chromium 156 prints nothing (and exits 0), and
        # --disable-javascript is ignored.
        (scratch / "print.html").write_text(no_scripts(html_path.read_text()))
        printed = scratch / "print.pdf"
        try:
            failed = _print(browser, scratch, timeout)
        except subprocess.TimeoutExpired:
            raise StudyError(
                f"{pdf_path}: {browser} did not print within {timeout} s and was stopped "
                f"({html_path} is written; open it in a browser, or retry with "
                f"`python -m helpers report {html_path.parent}`)"
            ) from None
        if failed or not printed.exists() or printed.stat().st_size == 0:
            print(f"report.pdf failed: {browser} {failed or 'printed nothing'}")
            return False
        write_atomic(pdf_path, lambda part: shutil.copyfile(printed, part))
    return True


def _print(browser: str, scratch: Path, timeout: int) -> str:
    """Chromium prints scratch/print.html to scratch/print.pdf: '' or what went wrong. A
    timeout, an interrupt or any error stops it and its helpers first (then raises)."""
    cmd = [
        "/bin/sh", "-c", GUARD, str(scratch),
        browser,
        "--headless",
        # Chromium refuses to start as root with its sandbox on; anyone else keeps it
        *(["--no-sandbox"] if os.geteuid() == 0 else []),
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={scratch / 'profile'}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={(scratch / 'print.pdf').resolve()}",
        (scratch / "print.html").resolve().as_uri(),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},  # its socket too: the path must stay short
        start_new_session=True,  # its own group: a timeout ends the shell, Chromium and its helpers
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except BaseException:  # a timeout, Ctrl-C, SIGTERM: stop it and its helpers now
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return f"exited {proc.returncode}: {stderr[-500:]}" if proc.returncode else ""
