"""TensorBoard logs of every fit (helpers.models.fitlog): event files TensorBoard's own reader
reads back, one scalar per epoch for each metric and the learning rate, in the folder named
after the notebook, the trial and the seed; logging changes no weight."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.data.dataset import Split
from helpers.models import fitlog, nets, training

accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="TensorBoard's reader is in the dev extra (pip install -e '.[dev]')")


def _scalars(folder) -> dict[str, list]:
    acc = accumulator.EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _split(n: int = 48) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10,
                 np.array([f"i{i}" for i in range(n)]), np.full(n, "s"))


def _fit(seed: int = 3):
    training.setup(seed)
    model = training.compile_model(nets.create_resnet_model(1, 2, base_filters=4))
    with training.quiet():
        result = training.fit(model, _split(), _split(), epochs=3, batch_size=16, seed=seed)
    return model, result


def test_each_fit_logs_one_scalar_per_epoch_and_changes_no_weight(tmp_path, monkeypatch):
    monkeypatch.delenv(fitlog.TENSORBOARD, raising=False)
    plain, _ = _fit()
    monkeypatch.setenv(fitlog.TENSORBOARD, str(tmp_path / "tensorboard" / "03_hyperparams"))
    with fitlog.trial("grid-0123", {"seed": 3}):
        logged, result = _fit()
        _fit()  # the same arm and seed again (a second stage): a folder of its own
    for a, b in zip(plain.get_weights(), logged.get_weights()):
        np.testing.assert_array_equal(a, b)
    folder = tmp_path / "tensorboard" / "03_hyperparams" / "grid-0123_s3"
    assert (folder.parent / "grid-0123_s3_2" / "train").is_dir()
    train, valid = _scalars(folder / "train"), _scalars(folder / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(train)
    assert {"epoch_loss", "epoch_accuracy"} <= set(valid)
    h = result.history
    for split, read in (("train", train), ("valid", valid)):
        want = h[(h.split == split) & (h.metric == "loss")].value.to_numpy()
        steps, values = zip(*read["epoch_loss"])
        assert steps == (0, 1, 2)  # one per epoch
        np.testing.assert_allclose(values, want, rtol=1e-6)
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx([1e-3] * 3)


def test_a_trials_folder_names_its_config_and_short_id():
    name = fitlog.arm_name("04aug-03f8ab529be4f58f", {"augmentation": "flip/x y", "seed": 1})
    assert name == "augmentation=flip_x_y-03f8ab52"
    assert fitlog.arm_name("grid-0123", {"seed": 0}) == "grid-0123"


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(fitlog.TENSORBOARD, raising=False)
    assert fitlog.callbacks(0) == []


@pytest.mark.slow
@pytest.mark.xdist_group("smoke")
def test_a_smoke_run_writes_event_files_per_notebook_and_seed(smoke_run):
    out, _ = smoke_run
    params = json.loads((out / "run.json").read_text())["notebooks"]["02_resnet"]["parameters"]
    seeds = [params["seed"] + k for k in range(params["repeats"])]
    found = sorted(p.name for p in (out / "tensorboard" / "02_resnet").iterdir())
    assert found == [f"resnet_s{s}" for s in seeds], found
    for s in seeds:
        scalars = _scalars(out / "tensorboard" / "02_resnet" / f"resnet_s{s}" / "validation")
        assert len(scalars["epoch_accuracy"]) == params["epochs"]


def test_on_jax_the_same_logs_come_without_importing_tensorflow(tmp_path):
    pytest.importorskip("jax", reason="the JAX backend is the jax extra")
    import os
    import subprocess
    import sys

    from helpers.base import ROOT

    script = (
        "import sys, numpy as np\n"
        "from helpers.models import training, nets\n"
        "from helpers.data.dataset import Split\n"
        "rng = np.random.default_rng(0)\n"
        "s = Split(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), np.arange(32) % 10,"
        " np.array([str(i) for i in range(32)]), np.full(32, 's'))\n"
        "training.setup(1)\n"
        "m = training.compile_model(nets.create_resnet_model(1, 2, base_filters=4))\n"
        "with training.quiet():\n"
        "    training.fit(m, s, s, epochs=2, batch_size=16, seed=1)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", fitlog.TENSORBOARD: str(tmp_path / "02_resnet")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    read = _scalars(tmp_path / "02_resnet" / "resnet_s1" / "validation")
    assert [step for step, _ in read["epoch_loss"]] == [0, 1]
