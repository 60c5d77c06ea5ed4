"""MLflow tracking (the optional extra), against a real SQLite store under the test's folder:
one run per trial named by its id, with its config, seed, backend and code revision, a metric
per epoch, its final metrics and its record as an artifact; a rerun adds no run."""

from __future__ import annotations

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow", reason="MLflow is the optional extra: pip install -e '.[mlflow]'")

from helpers.data.dataset import Split  # noqa: E402
from helpers.experiments import trialstore  # noqa: E402
from helpers.models import mlflowlog, nets, training  # noqa: E402


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


def test_one_run_per_trial_and_a_rerun_adds_none(tmp_path, monkeypatch):
    monkeypatch.setenv(mlflowlog.ENV, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / "run" / "tensorboard" / "03_grid"))
    trials = trialstore.make_trials("tiny", [{"width": 4}], {"epochs": 2}, repeats=2)
    for _ in range(2):  # the second call finds both trials done
        trialstore.run_trials(trials, tiny_trial, {}, run_dir=tmp_path / "run",
                              metric="valid_accuracy")
    store = trialstore.TrialStore(tmp_path / "run")
    store.path(trials[0]).unlink()  # redone (as a stale record would be): its run reopened
    trialstore.run_trials(trials, tiny_trial, {}, run_dir=tmp_path / "run",
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
    mlflowlog.attach_notebook([table])  # (the runner, once the notebook completed)
    for run_id in runs["run_id"]:
        assert [a.path for a in client.list_artifacts(run_id, "notebook")] == [
            "notebook/03_grid_history.csv"]
    # the same trials in another run folder are runs of their own
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / "other" / "tensorboard" / "03_grid"))
    trialstore.run_trials(trials[:1], tiny_trial, {}, run_dir=tmp_path / "other",
                          metric="valid_accuracy")
    assert len(mlflow.search_runs(experiment_names=["cinic10 03_grid"])) == 3


def test_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(mlflowlog.ENV, raising=False)
    assert not mlflowlog.on() and mlflowlog.callbacks(0) == []


def test_a_fit_outside_a_trial_has_a_run_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv(mlflowlog.ENV, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CINIC10_TENSORBOARD", str(tmp_path / "run" / "tensorboard" / "02_resnet"))
    tiny_trial({"seed": 5}, {})
    runs = mlflow.search_runs(experiment_names=["cinic10 02_resnet"])
    assert list(runs["tags.mlflow.runName"]) == ["02_resnet_s5"]
    assert list(runs["params.seed"]) == ["5"] and list(runs["status"]) == ["FINISHED"]
    assert len(mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "loss")) == 2
