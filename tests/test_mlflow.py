"""MLflow tracking (the optional extra), against a real SQLite store under the test's folder:
one run per trial named by its id, with its config, seed, backend and code revision, a metric
per epoch, its final metrics and its record as an artifact; a rerun adds no run. The store is
checked before any notebook runs: a relative path is the project root's, and a store that
cannot be used (an unknown scheme, a closed port, a server that never answers, a read-only
folder) is one line, exit 2, within seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
from conftest import cli

from helpers.base import ROOT

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional extra: pip install -e '.[mlflow]'")

from helpers.data.dataset import Split  # noqa: E402
from helpers.experiments import trialstore  # noqa: E402
from helpers.models import fitlog, nets, training  # noqa: E402


def tiny_trial(config: dict, context: dict) -> dict:
    """Two epochs of a tiny ResNet on 32 generated images."""
    rng = np.random.default_rng(0)
    s = Split(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), np.arange(32) % 10,
              np.array([str(i) for i in range(32)]), np.full(32, "s"))
    training.setup(config["seed"])
    model = training.compile_model(nets.create_resnet_model(1, 2, base_filters=4))
    with training.quiet():
        result = training.fit(model, s, s, epochs=2, batch_size=16, seed=config["seed"])
    return {"valid_accuracy": float(result.history.query("split == 'valid' and metric == "
                                                          "'accuracy'").value.iloc[-1])}


@pytest.mark.parametrize("folder", ["run", "it's a \"run\""])  # quotes: MLflow filters can't
def test_one_run_per_trial_and_a_rerun_adds_none(tmp_path, monkeypatch, folder):
    monkeypatch.setenv(fitlog.MLFLOW, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / folder / "tensorboard" / "03_grid"))
    trials = trialstore.make_trials("tiny", [{"width": 4}], {"epochs": 2}, repeats=2)
    for _ in range(2):  # the second call finds both trials done
        trialstore.run_trials(trials, tiny_trial, {}, run_dir=tmp_path / folder,
                              metric="valid_accuracy")
    store = trialstore.TrialStore(tmp_path / folder)
    store.path(trials[0]).unlink()  # redone (as a stale record would be): its run reopened
    trialstore.run_trials(trials, tiny_trial, {}, run_dir=tmp_path / folder,
                          metric="valid_accuracy")
    runs = mlflow.search_runs(experiment_names=["cinic10 03_grid"])
    assert sorted(runs["tags.mlflow.runName"]) == sorted(t.id for t in trials)
    assert set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["params.seed"]) == ["0", "1"]
    assert set(runs["params.config.width"]) == {"4"} and set(runs["params.backend"]) == {
        "tensorflow"}
    assert runs["params.code_revision"].notna().all()
    client = mlflow.MlflowClient()
    for run_id, name in zip(runs["run_id"], runs["tags.mlflow.runName"]):
        history = client.get_metric_history(run_id, "val_loss")
        assert [m.step for m in history] == [0, 1]  # one per epoch, through MlflowCallback
        assert client.get_run(run_id).data.metrics["valid_accuracy"] >= 0  # the final metric
        assert [a.path for a in client.list_artifacts(run_id)].count(f"{name}.json") == 1
    assert (tmp_path / "mlartifacts").is_dir()  # next to the store, not in the cwd
    table = tmp_path / "03_grid_history.csv"
    table.write_text("epoch,value\n1,0.5\n")
    fitlog.attach_notebook([table])  # (the runner, once the notebook completed)
    for run_id in runs["run_id"]:
        assert [a.path for a in client.list_artifacts(run_id, "notebook")] == [
            "notebook/03_grid_history.csv"]
    # the same trials in another run folder are runs of their own
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / "other" / "tensorboard" / "03_grid"))
    trialstore.run_trials(trials[:1], tiny_trial, {}, run_dir=tmp_path / "other",
                          metric="valid_accuracy")
    assert len(mlflow.search_runs(experiment_names=["cinic10 03_grid"])) == 3


def test_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(fitlog.MLFLOW, raising=False)
    assert fitlog.callbacks(0) == []


def test_a_fit_outside_a_trial_has_a_run_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv(fitlog.MLFLOW, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / "run" / "tensorboard" / "02_resnet"))
    tiny_trial({"seed": 5}, {})
    runs = mlflow.search_runs(experiment_names=["cinic10 02_resnet"])
    assert list(runs["tags.mlflow.runName"]) == ["02_resnet_s5"]
    assert list(runs["params.seed"]) == ["5"] and list(runs["status"]) == ["FINISHED"]
    assert len(mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "loss")) == 2


def test_a_relative_path_in_the_uri_is_the_project_roots():
    assert fitlog.absolute("sqlite:///mlflow.db") == f"sqlite:///{ROOT / 'mlflow.db'}"
    assert fitlog.absolute("sqlite:///a/m.db?timeout=9") == f"sqlite:///{ROOT}/a/m.db?timeout=9"
    assert fitlog.absolute("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert fitlog.absolute("mlruns") == fitlog.absolute("file:./mlruns") == (
        ROOT / "mlruns").as_uri()
    assert fitlog.absolute("http://host:5000") == "http://host:5000"


@pytest.mark.slow
def test_the_readmes_relative_store_gets_the_trials_and_the_notebook(tmp_path):
    """`MLFLOW_TRACKING_URI=sqlite:///<relative>.db python -m helpers run ...` as the README
    has it: the runner and 03's kernel (cwd notebooks/) log into the one store the path names
    from the project root, and every trial's run gets the executed notebook and the tables."""
    db = tmp_path / "mlflow.db"
    relative = os.path.relpath(db, ROOT)  # ../../tmp/...: relative, yet outside the checkout
    out = tmp_path / "run"
    proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--only", "03",
               "--out", str(out), "--no-report",
               env=os.environ | {fitlog.MLFLOW: f"sqlite:///{relative}"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"mlflow: logging to sqlite:///{db}" in proc.stdout
    assert not (ROOT / "notebooks" / relative).exists()  # nothing in the kernel's cwd
    runs = mlflow.MlflowClient(f"sqlite:///{db}").search_runs(
        [mlflow.MlflowClient(f"sqlite:///{db}").get_experiment_by_name(
            "cinic10 03_hyperparams").experiment_id])
    assert len(runs) == 4  # the smoke grid's 2 + 2 trials
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    for found in runs:
        attached = {a.path for a in client.list_artifacts(found.info.run_id, "notebook")}
        assert "notebook/03_hyperparams.ipynb" in attached, attached
        assert any(p.endswith(".csv") for p in attached), attached


def _refused(tmp_path, uri: str, bound: float) -> str:
    """A run with MLFLOW_TRACKING_URI=uri: exit 2 and one line, within bound seconds, before
    any notebook starts (no run folder made)."""
    t0 = time.monotonic()
    proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--only", "01", "--out",
               str(tmp_path / "run"), "--no-report", timeout=bound + 60,
               env=os.environ | {fitlog.MLFLOW: uri})
    seconds = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.startswith("error: MLFLOW_TRACKING_URI=") and proc.stderr.strip().count(
        "\n") == 0, proc.stderr
    assert seconds < bound, f"{seconds:.0f} s: {proc.stderr}"
    assert not (tmp_path / "run" / "executed").exists()
    return proc.stderr


def test_an_unknown_scheme_is_one_line(tmp_path):
    assert "no store for the scheme 'bogus'" in _refused(tmp_path, "bogus://x", 60)


def test_a_closed_port_is_one_line_in_seconds(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "Connection refused" in _refused(tmp_path, f"http://127.0.0.1:{port}", 60)


def test_a_server_that_never_answers_is_one_line_within_a_minute(tmp_path):
    """A real TCP server on loopback that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:  # closed: the test is over
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        err = _refused(tmp_path, f"http://127.0.0.1:{server.getsockname()[1]}", 90)
    finally:
        server.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
    assert "no answer in 2 tries of 15 s" in err and held, err


@pytest.fixture
def read_only(tmp_path):
    """A folder made read-only by a real read-only bind mount onto itself (root can write
    through chmod), undone at the end; skipped where mounting is not allowed."""
    folder = tmp_path / "ro"
    folder.mkdir()
    for args in (["--bind", str(folder), str(folder)], ["-o", "remount,bind,ro", str(folder)]):
        done = subprocess.run(["mount", *args], capture_output=True, text=True)
        if done.returncode:
            if args[0] != "--bind":
                subprocess.run(["umount", str(folder)])
            pytest.skip(f"cannot bind-mount read-only here: {done.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_sqlite_store_in_a_read_only_folder_is_one_line(tmp_path, read_only):
    err = _refused(tmp_path, f"sqlite:///{read_only / 'mlflow.db'}", 60)
    assert f"cannot write the MLflow store in {read_only}" in err and "Read-only" in err, err
