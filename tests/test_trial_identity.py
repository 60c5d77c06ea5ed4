"""A trial's record is reused only when it is current and possible: computed by the same code
(the helpers modules that compute results) and library versions, with values that can be true.
Real processes on a real copy of the package: its code is edited between two runs."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.base import ROOT
from helpers.experiments import trialstore

GRID = """
import json, sys
from helpers.experiments import trialstore

def toy_trial(config, context):
    with open(context["log"], "a") as f:
        f.write(json.dumps(config) + "\\n")
    return {"best_val_accuracy": config["x"] / 10}

if __name__ == "__main__":
    trials = trialstore.make_trials("toy", trialstore.expand_grid(x=[1, 2, 3]), {"f": 1})
    trialstore.run_trials(trials, toy_trial, {"log": sys.argv[2]}, run_dir=sys.argv[1], desc="grid")
"""


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of this checkout's helpers package and a grid script beside it."""
    shutil.copytree(ROOT / "helpers", tmp_path / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "grid.py").write_text(GRID)
    return tmp_path


def _grid(package: Path) -> tuple[str, int]:
    """Run the grid with the copied package; (its output, how many trials it ran)."""
    log = package / "calls.log"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    done = subprocess.run(
        [sys.executable, str(package / "grid.py"), str(package / "run"), str(log)],
        cwd=package, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package),
                          "CINIC10_DATA": str(package / "data"), "CINIC10_BATCH": "1"},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr, len(log.read_text().splitlines()) - before


def test_trials_computed_by_other_code_are_redone_saying_what_changed(package):
    out, ran = _grid(package)
    assert ran == 3
    out, ran = _grid(package)  # nothing changed: everything reused
    assert ran == 0 and "redone" not in out
    nets = package / "helpers" / "models" / "nets.py"  # the simple CNN's first dense layer
    text = nets.read_text()
    assert "layers.Dense(256" in text
    nets.write_text(text.replace("layers.Dense(256", "layers.Dense(16"))
    out, ran = _grid(package)
    assert ran == 3
    assert "grid: 3 trial(s) computed by other code (helpers/models/nets.py changed) are redone" in out
    rec = json.loads(next((package / "run" / "results" / "trials").glob("*.json")).read_text())
    assert set(rec["code"]) >= {"helpers/models/nets.py", "helpers/data/cache.py",
                                "helpers/experiments/protocol.py"}
    assert "keras" in rec["versions"] and "tensorflow" in rec["versions"]


@pytest.mark.parametrize("rel", ["models/fitlog.py", "artifacts.py",
                                 "experiments/trialstore.py", "experiments/findings/stats.py"])
def test_an_edit_to_any_module_a_trial_imports_redoes_its_trials(package, rel):
    path = package / "helpers" / rel
    if not path.exists():
        pytest.skip(f"helpers/{rel} is gone")
    _grid(package)  # e.g. a TensorBoard callback that sets the learning rate to 0 changes numbers
    path.write_text(path.read_text() + "\n# an edit: keyed, so the trials are redone\n")
    out, ran = _grid(package)
    assert ran == 3 and f"(helpers/{rel} changed) are redone" in out, out


def test_the_modules_left_out_of_the_key_are_never_imported_by_keyed_ones():
    """plots/ and run/ may stay out of the trial code key only if no keyed module imports
    them: every import statement, at the top or inside a function, of every keyed module."""
    import ast

    from helpers.experiments.trialstore import HELPERS, NOT_COMPUTING, keyed_modules

    out_of_key = tuple(f"helpers.{rel.removesuffix('.py')}" for rel in NOT_COMPUTING)
    found = []
    for path in keyed_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # `from .x import y` read as absolute
                package = path.relative_to(HELPERS.parent).parent.parts
                base = ".".join(package[:len(package) - node.level + 1] + (node.module or "",))
                module = base.rstrip(".") if node.level else node.module
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            found += [f"{path.relative_to(HELPERS)} imports {n}" for n in names
                      if any(n == m or n.startswith(m + ".") for m in out_of_key)]
    assert keyed_modules() and not found, found


def test_plotting_and_report_code_do_not_make_trials_stale(package):
    _grid(package)
    for rel in ("plots/__init__.py", "run/report.py"):
        path = package / "helpers" / rel
        path.write_text(path.read_text() + "\n# an edit that computes nothing\n")
    out, ran = _grid(package)
    assert ran == 0 and "redone" not in out


def count_trial(config: dict, context: dict) -> dict:
    with open(context["log"], "a") as f:
        f.write(json.dumps(config) + "\n")
    return {"best_val_accuracy": config["x"] / 10, **context.get("extra", {})}


def _run(tmp_path, capsys, **extra):
    trials = trialstore.make_trials("toy", trialstore.expand_grid(x=[1, 2]), {"f": 1})
    log = tmp_path / "calls.log"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    trialstore.run_trials(trials, count_trial, {"log": str(log), **extra}, run_dir=tmp_path,
                          desc="grid")
    return trials, len(log.read_text().splitlines()) - before, capsys.readouterr().out


def _tamper(store: trialstore.TrialStore, trial, change) -> None:
    path = store.path(trial)
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))


def test_records_from_other_library_versions_are_redone(tmp_path, capsys):
    trials, ran, _ = _run(tmp_path, capsys)
    store = trialstore.TrialStore(tmp_path)
    keras = importlib.metadata.version("keras")
    _tamper(store, trials[0], lambda r: r.setdefault("versions", {}).update(keras="2.0.0"))
    _, ran, out = _run(tmp_path, capsys)
    assert ran == 1
    assert (f"grid: 1 trial(s) computed with other library versions (keras 2.0.0 -> {keras}) "
            "are redone") in out


def test_records_without_a_code_fingerprint_are_redone(tmp_path, capsys):
    trials, _, _ = _run(tmp_path, capsys)
    store = trialstore.TrialStore(tmp_path)
    for t in trials:  # as written before records carried their code
        _tamper(store, t, lambda r: r.pop("code"))
    _, ran, out = _run(tmp_path, capsys)
    assert ran == 2 and "2 trial(s) computed by other code (no record of its code" in out


@pytest.mark.parametrize("damage, why", [
    (lambda r: r["result"].update(best_val_accuracy=7.5), "best_val_accuracy 7.5 is not an accuracy"),
    (lambda r: r.update(result={}), "the result is empty"),
    (lambda r: r["result"].update(best_val_accuracy="0.5"), "best_val_accuracy '0.5' is not"),
    (lambda r: r["result"].update(val_accuracy=[0.2, float("nan")]), "val_accuracy nan is not"),
    (lambda r: r.update(settings={"f": 2}), "unreadable, half-written or another trial's"),
])
def test_impossible_records_are_not_trusted_and_say_so(tmp_path, capsys, damage, why):
    trials, _, _ = _run(tmp_path, capsys)
    store = trialstore.TrialStore(tmp_path)
    _tamper(store, trials[1], damage)
    _, ran, out = _run(tmp_path, capsys)
    assert ran == 1 and why in out and "1 trial(s)" in out, out
    assert store.check(trials[1])[0]["result"]["best_val_accuracy"] == 0.2  # redone, whole


def test_a_trial_function_returning_an_impossible_result_fails_naming_it(tmp_path, capsys):
    with pytest.raises(trialstore.TrialFailed, match=r"x=1.*cannot be true: best_val_accuracy 7.5"):
        _run(tmp_path, capsys, extra={"best_val_accuracy": 7.5})
    assert not list((tmp_path / "results" / "trials").glob("*.json"))  # nothing saved


# --- a trial function defined outside helpers (a notebook's cell) keys itself ------------------

LR = 0.5
OPTIONS = {"momentum": 0.9, "nesterov": True}
THING = object()


def _helper(config: dict) -> float:
    return config.get("x", 0) / 10


class _Scaled:  # a class of the trial's own module (a notebook's custom layer, say)
    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, value: float) -> float:
        return value * self.factor * LR


def _reads_plain(config: dict, context: dict) -> dict:
    return {"best_val_accuracy": _Scaled(OPTIONS["momentum"])(_helper(config))}


def _reads_an_object(config: dict, context: dict) -> dict:
    return {"best_val_accuracy": 0.5, "thing": repr(THING)}


def test_a_trial_function_is_keyed_by_its_source_and_the_plain_values_it_reads():
    """function_key: the source of the function and of the functions of its module it calls;
    the plain globals it reads (not modules, not attributes, not helpers' or libraries'
    functions); an object it reads is refused in one line naming it."""
    from helpers.base import StudyError
    from helpers.experiments import protocol

    code, reads = trialstore.function_key(_reads_plain)
    assert reads == {"LR": 0.5, "OPTIONS": {"momentum": 0.9, "nesterov": True}}
    assert set(code) == {f"{name} in {__name__}" for name in (
        "_reads_plain", "_helper", "_Scaled", "_Scaled.__init__", "_Scaled.__call__")}
    assert all(len(v) == 16 for v in code.values())
    with pytest.raises(StudyError, match=r"trial function _reads_an_object reads THING \(a object\)"):
        trialstore.function_key(_reads_an_object)
    assert trialstore.function_key(protocol.regime) == ({}, {})  # helpers: keyed as files


def test_an_edit_to_03s_conclusion_leaves_its_trials_keys_as_they_were(tmp_path):
    """03's tables, claims and conclusion are a cell of its notebook that no trial uses: rewording
    the conclusion changes neither its trial function's key nor the helpers files every trial
    is keyed on (as a helpers module, the same edit redid 03's and 04's trials)."""
    import nbformat

    path = ROOT / "notebooks" / "03_hyperparams.ipynb"
    nb = nbformat.read(path, 4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "def conclusion(" in c.source]
    said = "No single configuration's score is read on its own."
    assert len(cells) == 1 and said in cells[0].source
    cells[0].source = cells[0].source.replace(said, "No configuration's score is read alone.")
    edited = tmp_path / path.name
    nbformat.write(nb, edited)
    assert "read alone" in inspect.getsource(trialstore.from_notebook(edited, "conclusion"))
    key = trialstore.function_key(trialstore.from_notebook(path, "resnet_trial"))
    assert trialstore.function_key(trialstore.from_notebook(edited, "resnet_trial")) == key
    assert not [f for f in trialstore.code_fingerprint() if "hyperparams" in f]


def test_an_edited_trial_function_redoes_its_trials_and_a_value_it_reads_makes_new_ones(package):
    """The grid's function is its script's (a notebook's cell alike): an edit to its body
    redoes the trials, saying so; a plain value it reads gives the trials new ids."""
    script = package / "grid.py"
    reading = GRID.replace("def toy_trial", "SCALE = 10\n\n\ndef toy_trial").replace(
        'config["x"] / 10', 'config["x"] / SCALE')
    script.write_text(reading)
    _, ran = _grid(package)
    out, ran_again = _grid(package)
    assert ran == 3 and ran_again == 0 and "redone" not in out
    script.write_text(reading.replace('f.write(json.dumps(config) + "\\n")',
                                      'f.write(json.dumps(config) + "\\n")  # edited'))
    out, ran = _grid(package)
    assert ran == 3 and "grid: 3 trial(s) computed by other code (toy_trial in the notebook " \
        "changed) are redone" in out, out
    script.write_text(reading.replace("SCALE = 10", "SCALE = 20"))
    out, ran = _grid(package)
    assert ran == 3 and "3 to run" in out  # new ids: other trials, not stale ones
    rec = json.loads(next((package / "run" / "results" / "trials").glob("*.json")).read_text())
    assert rec["settings"]["reads"] in ({"SCALE": 10}, {"SCALE": 20})


# --- 03's trial cell is part of its trials' key (issue 27, done-when (c)) ----------------------


def copy_project(dest: Path) -> Path:
    """The project's code, notebooks and profiles copied to dest, to edit a notebook there and
    run it through the runner as a student would, leaving the checkout as it was."""
    for part in ("helpers", "notebooks", "configs"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _rerun_03(project: Path, run: Path, data: Path) -> tuple[dict, str]:
    """`run --only 03` (smoke, synthetic) from project into run; ({03's trial id: record}, the
    executed notebook's printed output)."""
    import os

    import nbformat

    env = {**os.environ, "PYTHONPATH": str(project), "CINIC10_DATA": str(data)}
    env.pop("CINIC10_FRESH_BUILDS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--dataset", "synthetic",
         "--only", "03", "--out", str(run), "--no-report"],
        cwd=project, env=env, text=True, capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = nbformat.read(run / "executed" / "03_hyperparams.ipynb", 4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    records = {p.stem: json.loads(p.read_text())  # 03's (04's are there too)
               for p in (run / "results" / "trials").glob("resnet-*.json")}
    return records, printed


@pytest.mark.slow
def test_03_rerun_with_its_trial_cell_edited_redoes_its_trials(smoke_run, tmp_path):
    """A copy of 03 rerun into a copy of the smoke run's folder reuses every trial while its
    trial cell is unchanged; with the cell's optimiser edited (Adam -> SGD with momentum) every
    trial is redone, the run saying why, and the new records carry the edited cell's code."""
    import nbformat
    from conftest import copy_run

    project = copy_project(tmp_path / "project")
    run = copy_run(smoke_run[0], tmp_path / "run")
    before, printed = _rerun_03(project, run, tmp_path / "data")
    assert before and "to run" in printed and "redone" not in printed
    for grid in ("training grid", "regularisation grid"):
        assert f"{grid}: " in printed and ", 0 to run (local)" in printed.split(f"{grid}: ")[1]

    path = project / "notebooks" / "03_hyperparams.ipynb"
    nb = nbformat.read(path, 4)
    cells = [c for c in nb.cells if "def resnet_trial(" in c.source]
    assert len(cells) == 1 and "keras.optimizers.Adam(lr)" in cells[0].source
    cells[0].source = cells[0].source.replace("keras.optimizers.Adam(lr)",
                                              "keras.optimizers.SGD(lr, momentum=0.9)")
    nbformat.write(nb, path)
    after, printed = _rerun_03(project, run, tmp_path / "data")
    assert set(after) == set(before)  # the same trials (ids), every one computed again
    key = "resnet_trial in the notebook"
    for trial_id, rec in after.items():
        assert rec["code"][key] != before[trial_id]["code"][key]
        assert rec["finished"] != before[trial_id]["finished"]
    n = len(after)
    assert f"trial(s) computed by other code ({key} changed) are redone" in printed, printed
    assert sum(int(line.split(" trial(s) computed by other code")[0].rsplit(": ", 1)[1])
               for line in printed.splitlines() if f"({key} changed)" in line) == n
