"""`report` on a run folder whose files were truncated, hand-edited or come from another version,
or that cannot be written: one line naming the file (and the field), exit 2, never a traceback.
Read-only folders are real read-only bind mounts (root), skipped where mounting is not allowed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import executed_notebook

from helpers.experiments import findings
from helpers.run.cli import main

_executed = executed_notebook


@pytest.fixture
def run(tmp_path) -> Path:
    """A whole run folder: two notebooks completed, a result with a banner, findings."""
    run = tmp_path / "run"
    books = {}
    for stem in ("01_data", "05_transfer"):
        _executed(run / "executed" / f"{stem}.ipynb")
        books[stem] = {"executed": f"executed/{stem}.ipynb", "seconds": 2.0, "status": "completed",
                       "parameters": {"seed": 0, "dataset": "synthetic"}, "profile": "smoke"}
    record = {"profile": "smoke", "notebooks": books, "git": "abc", "versions": {"keras": "3"},
              "hardware": {"cpu": "x", "cores": 2}, "commands": [{"seconds": 4.0}],
              "dataset": {"dataset": "synthetic", "kind": "synthetic", "fingerprint": "fp"}}
    (run / "run.json").write_text(json.dumps(record))
    (run / "results").mkdir()
    (run / "results" / "05_transfer.json").write_text(json.dumps(
        {"banner": {"title": "not transfer learning.", "text": "random weights"}}))
    rows = [findings.finding("C9", findings.paired([0.6, 0.7], [0.5, 0.55]), findings.UNNAMED)]
    (run / "results" / "findings.json").write_text(json.dumps(
        {"dataset": "synthetic", "profile": "smoke", "backend": "tensorflow", "claims": rows}))
    return run


def _report(capsys, run: Path) -> tuple[int, str]:
    code = main(["report", str(run)])
    return code, capsys.readouterr().err


def test_the_whole_folder_builds(run, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # (no Chromium: the HTML is enough here)
    code, err = _report(capsys, run)
    assert code == 0, err
    html = (run / "report.html").read_text()
    assert "not transfer learning" in html and "C9" in html


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        node = data
        for k in keys[:-1]:
            node = node[k]
        if value is KeyError:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return data

    return change


DAMAGE = {  # name: (file, change, what the line names)
    "run.json as a list": ("run.json", lambda d: [d], "the file is list"),
    "run.json without dataset": ("run.json", _set("dataset", KeyError), "dataset is missing"),
    "fingerprint a number": ("run.json", _set("dataset", "fingerprint", 7),
                             "dataset.fingerprint is int"),
    "notebooks a list": ("run.json", _set("notebooks", []), "notebooks is list"),
    "an entry a string": ("run.json", _set("notebooks", "01_data", "done"),
                          "notebooks.01_data is str"),
    "seconds a string": ("run.json", _set("notebooks", "01_data", "seconds", "3"),
                         "notebooks.01_data.seconds is str"),
    "an unknown status": ("run.json", _set("notebooks", "01_data", "status", "done"),
                          "notebooks.01_data.status is 'done'"),
    "a command without seconds": ("run.json", _set("commands", [{}]), "commands[0].seconds"),
    "a stem that is no notebook": ("run.json",
                                   lambda d: {**d, "notebooks": {"<b>x": d["notebooks"]["01_data"]}},
                                   "is not a notebook's name"),
    "findings truncated": ("results/findings.json", None, "findings.json: unreadable"),
    "claims a mapping": ("results/findings.json", _set("claims", {}), "claims is dict"),
    "a claim without a verdict": ("results/findings.json", _set("claims", 0, "verdict", KeyError),
                                  "claims[0].verdict is missing"),
    "an unknown verdict": ("results/findings.json", _set("claims", 0, "verdict", "<b>yes</b>"),
                           "claims[0].verdict is '<b>yes</b>'"),
    "an estimate that is text": ("results/findings.json", _set("claims", 0, "estimate", "0.1"),
                                 "claims[0].estimate is str"),
    "a result truncated": ("results/05_transfer.json", None, "05_transfer.json: unreadable"),
    "a result that is a list": ("results/05_transfer.json", lambda d: [d], "the file is list"),
    "a banner that is text": ("results/05_transfer.json", _set("banner", "careful"),
                              "banner is str"),
    "a banner without text": ("results/05_transfer.json", _set("banner", "text", KeyError),
                              "banner.text is missing"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_is_one_line_naming_it(run, capsys, case):
    name, change, expected = DAMAGE[case]
    path = run / name
    if change is None:  # truncated
        text = path.read_text()
        path.write_text(text[: len(text) // 2])
    else:
        _edit(path, change)
    code, err = _report(capsys, run)
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert str(path) in err and expected in err, err


@pytest.fixture
def read_only(tmp_path):
    """read_only(folder): a read-only bind mount of folder onto itself, undone at the end."""
    mounted = []

    def make(folder: Path) -> Path:
        for args in (["--bind", str(folder), str(folder)],
                     ["-o", "remount,bind,ro", str(folder)]):
            done = subprocess.run(["mount", *args], capture_output=True, text=True)
            if done.returncode:
                if mounted:
                    subprocess.run(["umount", str(folder)])
                pytest.skip(f"cannot bind-mount read-only here: {done.stderr.strip()}")
            mounted.append(folder) if args[0] == "--bind" else None
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=True)


def test_report_on_a_read_only_run_folder_is_one_line(run, capsys, read_only):
    read_only(run)
    code, err = _report(capsys, run)
    assert code == 2, err
    assert err.strip().count("\n") == 0, err
    assert f"{run}: cannot write the report there (Read-only file system)" in err


def test_a_read_only_data_folder_serves_its_caches_and_refuses_new_ones(
    tiny, tmp_path, capsys, read_only, data_home
):
    from conftest import write_layout

    from helpers.data import load_dataset

    load_dataset(str(tiny), say=lambda *_: None)  # a finished cache, before the disk went ro
    other = write_layout(tmp_path / "other", splits=("train", "valid", "test"), seed=5)
    read_only(data_home)
    assert len(load_dataset(str(tiny), say=lambda *_: None)["train"]) == 12  # still served
    capsys.readouterr()
    code = main(["data", "--dataset", str(other)])  # other images: a new cache is needed
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0, err
    assert "cannot write the cache there (Read-only file system)" in err
    assert "set CINIC10_DATA to a writable folder" in err
