"""report.pdf: headless Chromium prints report.html, scripts forbidden, with a timeout. It runs
in a short-pathed scratch folder (its socket) under a shell (GUARD) that, when this process dies,
even by kill -9, kills Chromium and removes the folder: nothing is left behind."""

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
# Chromium ("$@") runs while it and this process live; if this process died first, Chromium is
# killed and the scratch folder ($0) removed. (PATH: sleep, where PATH names only Chromium's.)
GUARD = ('PATH="$PATH:/usr/bin:/bin"; "$@" & c=$!; '
         'while kill -0 $c 2>/dev/null && kill -0 $PPID 2>/dev/null; do sleep 1; done; '
         'kill -0 $PPID 2>/dev/null && { wait $c; exit $?; }; '
         'kill -9 $c 2>/dev/null; sleep 1; rm -rf "$0"; exit 143')


def no_scripts(html: str) -> str:
    """html with NO_SCRIPTS first in <head>: a name slipping through unescaped runs no script."""
    if NO_SCRIPTS in html:
        return html
    at = html.find("<head>") + len("<head>") if "<head>" in html else 0
    return f"{html[:at]}\n{NO_SCRIPTS}\n{html[at:]}"


def to_pdf(html_path: Path, pdf_path: Path, timeout: int = 180) -> bool:
    """Print html_path to pdf_path with headless Chromium; False (with a hint) without it or
    when it fails. The previous pdf_path is removed first, so none stands beside a new HTML."""
    pdf_path.unlink(missing_ok=True)
    for part in pdf_path.parent.glob(f".{pdf_path.name}.*.part"):  # a killed copy's
        with contextlib.suppress(OSError):
            if time.time() - part.stat().st_mtime > 60:  # a live copy takes milliseconds
                part.unlink()
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    if browser is None:
        print("report.pdf skipped: no Chromium found. Install it (Debian/Ubuntu: `sudo apt-get "
              f"install chromium`), then run `python -m helpers report {html_path.parent}`.")
        return False
    with tempfile.TemporaryDirectory(prefix=f"cinic10-pdf-{os.getuid()}-",
                                     ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp).resolve()
        # scripts forbidden in the page (an alert() would hold Chromium until the timeout):
        # --blink-settings=scriptEnabled=false prints nothing, --disable-javascript is ignored
        (scratch / "print.html").write_text(no_scripts(html_path.read_text()))
        printed = scratch / "print.pdf"
        proc = subprocess.Popen(
            ["/bin/sh", "-c", GUARD, str(scratch), browser, "--headless",
             *(["--no-sandbox"] if os.geteuid() == 0 else []),  # Chromium refuses root's sandbox
             "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={scratch}/profile",
             "--no-pdf-header-footer", f"--print-to-pdf={printed}",
             (scratch / "print.html").as_uri()],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TMPDIR": str(scratch)},  # its socket too: a short path
            start_new_session=True)  # its own group: a timeout ends Chromium and its helpers
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except BaseException as err:  # a timeout, Ctrl-C, SIGTERM: stop it and its helpers now
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if isinstance(err, subprocess.TimeoutExpired):
                raise StudyError(
                    f"{pdf_path}: {browser} did not print within {timeout} s and was stopped "
                    f"({html_path} is written; open it in a browser, or retry with "
                    f"`python -m helpers report {html_path.parent}`)") from None
            raise
        if proc.returncode or not printed.exists() or printed.stat().st_size == 0:
            failed = f"exited {proc.returncode}: {stderr[-500:]}" if proc.returncode else ""
            print(f"report.pdf failed: {browser} {failed or 'printed nothing'}")
            return False
        write_atomic(pdf_path, lambda part: shutil.copyfile(printed, part))
    return True


def publish(page: str, html_path: Path, who: str) -> Path:
    """Write html_path, then print it to the .pdf beside it; each named on the terminal."""
    write_atomic(html_path, lambda p: p.write_text(page))
    print(f"{who}: {html_path}")
    if to_pdf(html_path, html_path.with_suffix(".pdf")):
        print(f"{who}: {html_path.with_suffix('.pdf')}")
    return html_path
