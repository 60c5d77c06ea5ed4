"""Trials that survive anything (helpers.experiments), the Elastic Net regulariser, and the Ray
executor. Fast: toy trial functions, a tiny generated dataset, 1-epoch tiny models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import notebook_code

from helpers.base import StudyError
from helpers.experiments import raytasks, trialstore

TINY_SETTINGS = {  # 50 training images: every code path, no learning
    "train_per_class": 5,
    "valid_per_class": 3,
    "subset_seed": 0,
}
TINY_TRAINING = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "patience": 1}
TINY_GRID = {"n_blocks": [1], "kernel_size": [2, 3], "dropout": [0.1], "base_filters": [4]}
summarise = notebook_code("03_hyperparams", "summarise")  # 03's, as its cell defines it


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory):
    """Caches and generated datasets of this module go to a temporary CINIC10_DATA."""
    folder = tmp_path_factory.mktemp("cinic10_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CINIC10_DATA", str(folder))
        mp.delenv("RAY_ADDRESS", raising=False)
        yield folder


@pytest.fixture(scope="module")
def tiny_dataset(data_dir) -> str:
    """A 6-images-per-class-and-split generated dataset, as a folder spec for load_dataset."""
    from helpers.data.sources import make_synthetic

    return str(make_synthetic(per_class=6).location)


def count_trial(config: dict, context: dict) -> dict:
    """A toy trial: logs each call (one JSON line), scores its config."""
    with open(context["log"], "a") as f:
        f.write(json.dumps(config, sort_keys=True) + "\n")
    return {"best_val_accuracy": config["x"] / 10, "epochs_run": 1, "curve": [0.1, 0.2]}


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- ids and grids ------------------------------------------------------------------------------


def test_trial_id_is_stable_and_sensitive():
    cfg, settings = (
        {"n_blocks": 3, "kernel_size": 5, "seed": 0},
        {"fingerprint": "abc", "epochs": 6},
    )
    tid = trialstore.trial_id("resnet", cfg, settings)
    # A literal: changing the formula orphans every stored result, so it must be deliberate.
    assert tid == "resnet-d0b539ce1a03ab03"
    assert trialstore.trial_id("resnet", dict(reversed(cfg.items())), settings) == tid
    changed = [
        ("resnet", {**cfg, "seed": 1}, settings),
        ("resnet", {**cfg, "kernel_size": 3}, settings),
        ("resnet", cfg, {**settings, "epochs": 7}),
        ("resnet", cfg, {**settings, "fingerprint": "abd"}),
        ("augment", cfg, settings),
    ]
    assert len({trialstore.trial_id(*c) for c in changed} | {tid}) == len(changed) + 1


def test_grid_and_repeats():
    grid = trialstore.expand_grid(a=[1, 2, 3], b=["x", "y"])
    assert len(grid) == 6 and grid[0] == {"a": 1, "b": "x"} and grid[1] == {"a": 1, "b": "y"}
    trials = trialstore.make_trials("k", grid, {"f": 1}, repeats=2, seed=10)
    assert len(trials) == 12 and len({t.id for t in trials}) == 12
    assert [t.config["seed"] for t in trials[:2]] == [10, 11]
    with pytest.raises(ValueError, match="non-empty list"):
        trialstore.expand_grid(a=[])


# --- the store: skip finished, never trust a broken file -----------------------------------------


def test_store_skips_finished_and_redoes_broken(tmp_path):
    log = tmp_path / "calls.log"
    trials = trialstore.make_trials("toy", trialstore.expand_grid(x=[1, 2, 3]), {"f": "s"})
    run = dict(trial_fn=count_trial, context={"log": str(log)}, run_dir=tmp_path / "run")
    table = trialstore.run_trials(trials, **run)
    assert len(logged(log)) == 3
    assert list(table.trial_id) == [t.id for t in trials]
    assert list(table.best_val_accuracy) == [0.1, 0.2, 0.3] and "curve" not in table
    store = trialstore.TrialStore(tmp_path / "run")
    mtimes = {t.id: store.path(t).stat().st_mtime_ns for t in trials}

    trialstore.run_trials(trials, **run)  # everything done: nothing runs
    assert len(logged(log)) == 3

    half = store.path(trials[0]).read_text()
    store.path(trials[0]).write_text(half[: len(half) // 2])  # a half-written file
    store.path(trials[1]).write_text(store.path(trials[2]).read_text())  # another trial's
    again = trialstore.run_trials(trials, **run)
    assert [c["x"] for c in logged(log)[3:]] == [1, 2]
    assert store.path(trials[2]).stat().st_mtime_ns == mtimes[trials[2].id]
    assert again.best_val_accuracy.tolist() == table.best_val_accuracy.tolist()
    best = summarise(again, ["x"])
    assert best.x.iloc[0] == 3 and best["count"].iloc[0] == 1


def test_bad_executor_and_functions(tmp_path, monkeypatch):
    trials = trialstore.make_trials("toy", [{"x": 1}], {})
    with pytest.raises(ValueError, match="executor"):
        trialstore.run_trials(trials, count_trial, {}, run_dir=tmp_path, executor="dask")
    with pytest.raises(ValueError, match="top-level"):
        trialstore.run_trials(trials, lambda c, x: {}, {}, run_dir=tmp_path)
    with pytest.raises(trialstore.TrialFailed, match="x=1"):
        trialstore.run_trials(trials, count_trial, {}, run_dir=tmp_path)  # no "log": KeyError
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(StudyError, match=r"pip install -e '\.\[ray\]'"):
        trialstore.run_trials(trials, count_trial, {"log": "x"}, run_dir=tmp_path, executor="ray")


KILL_SCRIPT = """
import json, sys, time
from helpers.experiments import trialstore

def slow_trial(config, context):
    with open(context["log"], "a") as f:
        f.write(json.dumps(config, sort_keys=True) + "\\n")
    time.sleep(0.4)
    return {"best_val_accuracy": config["x"] / 10}

if __name__ == "__main__":
    grid = trialstore.expand_grid(x=list(range(8)))
    trials = trialstore.make_trials("toy", grid, {"fingerprint": "kill-test"})
    trialstore.run_trials(trials, slow_trial, {"log": sys.argv[2]}, run_dir=sys.argv[1])
"""


def test_killed_grid_resumes_without_redoing_finished_trials(tmp_path):
    script, log, run_dir = tmp_path / "grid.py", tmp_path / "calls.log", tmp_path / "run"
    script.write_text(KILL_SCRIPT)
    folder = run_dir / "results" / "trials"
    cmd = [sys.executable, str(script), str(run_dir), str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(list(folder.glob("toy-*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = {p.name: p.stat().st_mtime_ns for p in folder.glob("toy-*.json")}
    assert 2 <= len(done) < 8, "the grid must be killed mid-run"
    first_calls = logged(log)

    victim = sorted(done)[0]  # one finished result is damaged: it must be redone
    text = (folder / victim).read_text()
    (folder / victim).write_text(text[: len(text) // 3])
    victim_x = json.loads(text)["config"]["x"]

    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    final = {p.name: p for p in folder.glob("toy-*.json")}
    assert len(final) == 8
    for name, path in final.items():
        rec = json.loads(path.read_text())
        assert rec["result"]["best_val_accuracy"] == rec["config"]["x"] / 10
        if name in done and name != victim:
            assert path.stat().st_mtime_ns == done[name], f"{name} was redone"
    finished_x = {json.loads((folder / n).read_text())["config"]["x"] for n in done}
    rerun_x = [c["x"] for c in logged(log)[len(first_calls) :]]
    assert victim_x in rerun_x
    assert not (finished_x - {victim_x}) & set(rerun_x), "finished trials were run again"
    assert sorted(rerun_x) == sorted(set(range(8)) - finished_x | {victim_x})


# --- the Elastic Net regulariser -----------------------------------------------------------------


def test_elastic_net_value_and_validation():
    from helpers.models.nets import ElasticNetRegularization

    w = np.array([[1.0, -2.0], [3.0, 0.0]], np.float32)  # l1 = 6, l2 = 14
    reg = ElasticNetRegularization(alpha=0.2, lam=0.1)
    assert float(reg(w)) == pytest.approx(0.1 * (0.2 * 6 + 0.8 * 14))
    assert float(ElasticNetRegularization(1.0, 1.0)(w)) == pytest.approx(6.0)  # pure l1
    assert float(ElasticNetRegularization(0.0, 0.5)(w)) == pytest.approx(7.0)  # pure l2
    with pytest.raises(ValueError, match="alpha"):
        ElasticNetRegularization(alpha=1.5)
    with pytest.raises(ValueError, match="lam"):
        ElasticNetRegularization(lam=-1)


def test_model_with_elastic_net_reloads_in_a_fresh_process(tmp_path):
    from helpers.models.nets import ElasticNetRegularization, create_resnet_model

    model = create_resnet_model(
        1, 2, base_filters=4, output_regularizer=ElasticNetRegularization(0.3, 0.05)
    )
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", model.predict(x, verbose=0))
    code = (
        "import sys, numpy as np, keras, helpers.models.nets\n"
        "m = keras.models.load_model(sys.argv[1])\n"
        "r = m.get_layer('classifier').kernel_regularizer\n"
        "assert type(r).__name__ == 'ElasticNetRegularization', r\n"
        "assert (r.alpha, r.lam) == (0.3, 0.05), r.get_config()\n"
        "p = m.predict(np.load(sys.argv[2]), verbose=0)\n"
        "assert np.allclose(p, np.load(sys.argv[3]), atol=1e-6)\n"
    )
    args = [str(path), str(tmp_path / "x.npy"), str(tmp_path / "p.npy")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# --- the ResNet trial, locally and on Ray ----------------------------------------------------------


def tiny_trials(spec: str):
    from helpers.data import load_dataset

    fp = load_dataset(spec, say=lambda *_: None).fingerprint
    settings = {"fingerprint": fp, **TINY_SETTINGS}
    grid = trialstore.expand_grid(**TINY_GRID)
    grid[1] |= {"alpha": 0.5, "lam": 0.01}  # one with Elastic Net on the output layer
    return trialstore.make_trials("resnet", grid, settings), {"settings": settings,
                                                               "dataset": spec}


def notebook_trial(**parameters):
    """03's resnet_trial as its notebook's trial cell defines it, with TINY_TRAINING."""
    return notebook_code("03_hyperparams", "resnet_trial", **{**TINY_TRAINING, **parameters})


def test_resnet_trial_locally(tiny_dataset, tmp_path):
    trials, context = tiny_trials(tiny_dataset)
    table = trialstore.run_trials(trials, notebook_trial(), context, run_dir=tmp_path)
    assert table.best_val_accuracy.between(0, 1).all() and (table.epochs_run == 1).all()
    assert (table.n_train == 50).all() and (table.images_per_second > 0).all()
    rec = json.loads((tmp_path / "results" / "trials" / f"{table.trial_id[1]}.json").read_text())
    assert rec["function"] == "notebook_03_hyperparams:resnet_trial" and rec["config"]["lam"] == 0.01
    assert len(rec["result"]["val_accuracy"]) == 1
    # the parameters the notebook's function reads are in its settings, so in its id
    assert rec["settings"]["reads"]["epochs"] == 1 and rec["settings"]["reads"]["batch_size"] == 16
    assert "resnet_trial in notebook_03_hyperparams" in rec["code"]


@pytest.mark.ray
def test_ray_executor_writes_the_same_trials(tiny_dataset, tmp_path):
    pytest.importorskip("ray")
    trials, context = tiny_trials(tiny_dataset)
    run = dict(trial_fn=notebook_trial(), context=context)
    local = trialstore.run_trials(trials, **run, run_dir=tmp_path / "local")
    remote = trialstore.run_trials(trials, **run, run_dir=tmp_path / "ray", executor="ray")
    files = {
        name: sorted(p.name for p in (tmp_path / name / "results" / "trials").glob("*.json"))
        for name in ("local", "ray")
    }
    assert files["local"] == files["ray"] == sorted(f"{t}.json" for t in local.trial_id)
    assert list(remote.trial_id) == list(local.trial_id)
    assert set(remote.executor) == {"ray"} and remote.best_val_accuracy.between(0, 1).all()
    again = trialstore.run_trials(trials, **run, run_dir=tmp_path / "ray", executor="ray")
    assert set(again.executor) == {"ray"}  # nothing redone (and Ray not even needed)


# what Ray client raised in CI when the head's per-client server died at start (abridged)
START_FAILURES = {
    "died": "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err "
    "for detailed logs.",
    "died between looks": 'File "/x/ray/util/client/server/proxier.py", line 396, in '
    "start_specific_server\n    cmd = psutil_proc.cmdline()\n...\npsutil.ZombieProcess: PID "
    "still exists but it's a zombie (pid=6541)",
    "no channel": "RuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err`",
}


@pytest.mark.parametrize("failure", sorted(START_FAILURES))
def test_a_client_server_that_fails_to_start_is_tried_again_and_nothing_else_is(capsys, failure):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionAbortedError(
                "Initialization failure from server:\nTraceback (most recent call last):\n"
                + START_FAILURES[failure]
            )
        return "connected"

    assert raytasks.connect_retrying(flaky, attempts=3, wait=0) == "connected"
    assert len(calls) == 3 and capsys.readouterr().err.count("trying again") == 2
    calls.clear()
    with pytest.raises(ConnectionAbortedError, match="Initialization failure"):
        raytasks.connect_retrying(flaky, attempts=2, wait=0)  # the last attempt's error stands
    assert len(calls) == 2

    def refused():
        calls.append(1)
        raise ConnectionAbortedError("Initialization failure from server:\nversion mismatch")

    calls.clear()
    with pytest.raises(ConnectionAbortedError, match="version mismatch"):
        raytasks.connect_retrying(refused, attempts=3, wait=0)
    assert len(calls) == 1  # a refusal is not a start-up failure: no second attempt
