"""run.json and the report under failure: statuses, the failure box, mixed folders refused,
concurrent writers, whole-run wall time, kernel noise filtered. The CLI ones are slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from conftest import cli, kill_once_running

from helpers.artifacts import check_compatible, completed, read_record, update_record
from helpers.base import ROOT, StudyError


def _executed(path, status="completed"):
    """A tiny executed notebook: a title, one code cell with papermill's status."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem} title"),
        nbformat.v4.new_code_cell("x = 1", metadata={"papermill": {"status": status}}),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _record(tmp_path, entries: dict) -> None:
    books = {}
    for stem, status in entries.items():
        _executed(tmp_path / "executed" / f"{stem}.ipynb", "completed")
        books[stem] = {
            "parameters": {"seed": 0, "epochs": 2},
            "profile": "smoke",
            "dataset": {"dataset": "synthetic", "kind": "synthetic", "fingerprint": "fp1"},
            "executed": f"executed/{stem}.ipynb",
            "status": status,
            "seconds": 3.0,
            "error": "cell 4: ValueError: boom <b>" if status == "failed" else None,
            "rerun": f"python -m helpers run --profile smoke --only {stem[:2]}",
        }
    record = {
        "profile": "smoke",
        "dataset": {"dataset": "synthetic", "kind": "synthetic", "fingerprint": "fp1"},
        "notebooks": books,
        "commands": [{"started": "t", "seconds": 10.0}, {"started": "t", "seconds": 5.0}],
    }
    (tmp_path / "run.json").write_text(json.dumps(record))


def test_report_shows_failed_and_unfinished_notebooks_as_boxes_never_as_results(tmp_path):
    from helpers.run.report import combined_notebook, to_html

    _record(tmp_path, {"01_data": "completed", "02_resnet": "running", "03_x": "failed"})
    html = to_html(combined_notebook(tmp_path))
    assert "01_data title" in html  # the finished one is shown
    assert "02_resnet title" not in html and "03_x title" not in html  # never as results
    assert "02_resnet: no result, it did not complete" in html
    assert "ValueError: boom &lt;b&gt;" in html  # the error, escaped
    assert str(tmp_path / "executed" / "03_x.ipynb") in html
    assert "--only 03" in html
    assert "whole run (2 command(s))" in html and "15 s" in html  # reruns add up


def test_unfinished_cells_make_a_notebook_incomplete_even_without_a_status(tmp_path):
    _executed(tmp_path / "executed" / "01_data.ipynb", "pending")
    ok, why = completed(tmp_path, {"executed": "executed/01_data.ipynb"})
    assert not ok and "did not run to the end" in why
    _executed(tmp_path / "executed" / "01_data.ipynb", "completed")
    assert completed(tmp_path, {"executed": "executed/01_data.ipynb"}) == (True, "")
    assert not completed(tmp_path, {"executed": "executed/nothing.ipynb"})[0]


def test_mixing_profiles_or_datasets_in_one_folder_is_refused():
    record = {
        "profile": "smoke",
        "notebooks": {"01_data": {"profile": "smoke", "dataset": {"fingerprint": "a"}}},
    }
    check_compatible(record, ["02_resnet"], "smoke", "a")  # same: fine
    check_compatible(record, ["01_data"], "quick", "b")  # it redoes 01 itself: fine
    with pytest.raises(StudyError, match="holds 01_data from profile 'smoke'"):
        check_compatible(record, ["02_resnet"], "quick")
    with pytest.raises(StudyError, match="fingerprint b"):
        check_compatible(record, ["02_resnet"], "smoke", "b")


def test_a_garbled_run_json_is_a_one_line_error(tmp_path):
    (tmp_path / "run.json").write_text('{"profile": "smo')
    with pytest.raises(StudyError, match="run.json: unreadable"):
        read_record(tmp_path)


WRITER = """
import sys
from pathlib import Path
from helpers.artifacts import update_record
run, me = Path(sys.argv[1]), sys.argv[2]
for i in range(25):
    update_record(run, lambda r, i=i: r["notebooks"].update({f"{me}-{i}": {"n": i}}))
"""


def test_concurrent_writers_keep_each_others_entries(tmp_path):
    update_record(tmp_path, lambda r: r.update(profile="smoke"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), f"w{k}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for k in range(4)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    books = read_record(tmp_path)["notebooks"]
    assert len(books) == 4 * 25 and read_record(tmp_path)["profile"] == "smoke"


NOISY = r"""
import sys
for line in [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "E0000 00:00:1795790083.440428    5736 cuda_platform.cc:52] failed call to cuInit: x",
    "I0000 00:00:1795790082.374228    5736 cudart_stub.cc:31] Could not find cuda drivers",
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.",
    "a real error line",
]:
    print(line, file=sys.stderr)
print("progress 50%\r", end="", file=sys.stderr)
"""


def test_kernel_noise_is_filtered_and_real_lines_pass(tmp_path):
    from helpers.run.terminal import quiet_kernel_noise

    sink = open(tmp_path / "stderr.txt", "wb")
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        with quiet_kernel_noise():
            subprocess.run([sys.executable, "-c", NOISY], check=True)  # inherits fd 2
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sink.close()
    text = (tmp_path / "stderr.txt").read_text()
    assert "a real error line" in text and "progress 50%" in text
    for noise in ("absl", "cuInit", "cudart_stub", "KeyboardInterrupt"):
        assert noise not in text


RAY_DRIVER = r"""
import sys, time
import ray
ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
nap = ray.remote(lambda: time.sleep(120))
print("a real line before", file=sys.stderr, flush=True)
print("ready", flush=True)
ray.get(nap.remote())
"""
FILTERED = r"""
import subprocess, sys
from helpers.run.terminal import quiet_kernel_noise
with quiet_kernel_noise():
    driver = subprocess.Popen([sys.executable, "-c", sys.argv[1]])  # inherits fd 2, filtered
    print(driver.pid, flush=True)
    driver.wait()
"""


@pytest.mark.ray
def test_a_ray_driver_stopped_with_sigterm_dumps_no_stack_through_the_runner():
    """A kernel running a grid on Ray, stopped by the runner: Ray's absl handler would print a
    stack dump for the SIGTERM (about 170 lines from a real kernel); the runner drops it."""
    import signal
    import time

    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", FILTERED, RAY_DRIVER], cwd=ROOT, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        driver = int(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2)  # waiting in ray.get
        os.kill(driver, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "a real line before" in err
    assert "SIGTERM received" not in err and "@     0x" not in err, err[-3000:]


# --- through the CLI (slow) ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_whose_last_notebook_fails_still_writes_its_report(tmp_path):
    proc = cli(  # 05 fails when it looks for its weights file
        *("run", "--profile", "smoke", "--dataset", "synthetic", "--only", "01,05"),
        *("--out", str(tmp_path), "-p", "05_transfer.weights=missing.h5"),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    # the failing cell is named, with the notebook's own message and where the executed copy is
    assert "05_transfer failed in cell" in proc.stderr
    assert "weights='missing.h5': no such file" in proc.stderr
    assert str(tmp_path / "executed" / "05_transfer.ipynb") in proc.stderr
    assert "rerun just it: python -m helpers run --profile smoke" in proc.stderr
    html = (tmp_path / "report.html").read_text()
    assert "Dataset" in html or "01_data" in html
    assert "05_transfer: no result, it failed" in html and "no such file" in html
    assert str(tmp_path / "executed" / "05_transfer.ipynb") in html
    assert "--only 05 -p 05_transfer.weights=missing.h5" in html
    assert "Traceback" not in proc.stderr and "cuInit" not in proc.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["notebooks"]["01_data"]["status"] == "completed"
    assert record["notebooks"]["05_transfer"]["status"] == "failed"
    # 13.4: a rerun killed while it works, then `report`: shown as failed, not as a result
    kill_once_running(tmp_path, "01_data", "01")
    proc = cli("report", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "report.html").read_text()
    assert "01_data: no result, it did not complete" in html
    # a folder of smoke runs refuses another profile's notebook
    proc = cli("run", "--profile", "quick", "--only", "03", "--out", str(tmp_path))
    assert proc.returncode == 2 and "from profile 'smoke'" in proc.stderr


def test_kernel_connection_files_live_in_the_run_folder_and_leftovers_go(tmp_path):
    from helpers.run.runner import kernel_dir

    folder = kernel_dir(tmp_path)
    (folder / "kernel-dead.json").write_text("{}")  # what a run killed with -9 leaves
    assert kernel_dir(tmp_path) == tmp_path / ".kernels" and not list(folder.iterdir())


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(notebooks=[]), "notebooks is list"),
    (lambda d: d["notebooks"].update({"01_data": "done"}), "notebooks.01_data is str"),
    (lambda d: d.update(dataset="synthetic"), "dataset is str"),
    (lambda d: d.update(commands={"seconds": 1}), "commands is dict"),
])
def test_run_into_a_hand_edited_run_json_is_the_line_report_gives(change, expected, tmp_path,
                                                                  capsys):
    from conftest import executed_notebook, one_line_error

    run = tmp_path / "run"
    executed_notebook(run / "executed" / "01_data.ipynb")
    record = {"profile": "smoke", "commands": [{"seconds": 1.0}],
              "dataset": {"dataset": "synthetic", "kind": "synthetic", "fingerprint": "fp"},
              "notebooks": {"01_data": {"executed": "executed/01_data.ipynb",
                                        "status": "completed", "profile": "smoke"}}}
    change(record)
    (run / "run.json").write_text(json.dumps(record))
    reported = one_line_error(capsys, ["report", str(run)])
    ran = one_line_error(capsys, ["run", "--profile", "smoke", "--only", "02", "--out", str(run)])
    assert expected in ran and ran == reported
