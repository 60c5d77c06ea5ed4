"""Trace once per architecture (helpers.models.reuse): a kept, reset model must compute exactly
what a fresh build computes for the same seed. Each test trains the same sequence of trials twice,
once with a fresh build per trial (clear_session, seed, build, compile: the code before reuse)
and once through reuse, and compares the weights after training bit for bit, the histories and
the trial functions' results. Fast: tiny models, 1-2 epochs; the JAX variant is slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import augmentation_layers, initial_weights, notebook_code

from helpers.base import ROOT
from helpers.data.dataset import Split
from helpers.models import nets, reuse, training
from helpers.models.nets import ElasticNetRegularization

SETTINGS = {"learning_rate": 1e-3, "batch_size": 16, "epochs": 2, "patience": 1}
A = {"n_blocks": 1, "kernel_size": 3, "dropout": 0.3}
B1 = {"n_blocks": 2, "kernel_size": 2, "dropout": 0.1, "alpha": 0.5, "lam": 0.01}
B2 = {**B1, "alpha": 0.2, "lam": 0.1}  # the same traced model: its Elastic Net's α, λ are weights
# A twice (another seed), another architecture, then back to A: a kept model is reset from any
# state, also after another one was used, and its optimiser state and learning rate too
SEQUENCE = [(A, 0), (A, 1), (B1, 0), (A, 0), (B2, 1)]
HELD = ("lam", "alpha", "one_minus_alpha")  # TunableElasticNetDense's settings, not parameters


def _split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return Split(x, np.arange(n) % 10, np.array([f"i{i}" for i in range(n)]), np.full(n, "s"))


TRAIN, VALID = _split(96, 0), _split(40, 1)


@pytest.fixture(autouse=True)
def forget_kept_models(monkeypatch):
    monkeypatch.delenv("CINIC10_FRESH_BUILDS", raising=False)
    reuse.clear()
    yield
    reuse.clear()


def _assert_same(fresh, reused):
    for (_, f_weights, f_result), (_, r_weights, r_result) in zip(fresh, reused):
        assert list(f_weights) == list(r_weights)
        for path in f_weights:
            np.testing.assert_array_equal(f_weights[path], r_weights[path], err_msg=path)
        assert f_result.history.equals(r_result.history)
        assert f_result.best_epoch == r_result.best_epoch


def test_the_learning_rate_and_optimiser_state_are_the_trials_own():
    """A kept model after a trial at another learning rate (and with Adam's moments and step
    count of that trial) trains like a fresh build at this trial's learning rate."""
    with training.quiet():
        fresh = _compiled_trial(A, 0, False, lambda: keras.optimizers.Adam(3e-3))
        _compiled_trial(A, 1, True, lambda: keras.optimizers.Adam(1e-4))
        reused = _compiled_trial(A, 0, True, lambda: keras.optimizers.Adam(3e-3))
    _assert_same([fresh], [reused])


def test_the_traced_functions_serve_every_trial_of_an_architecture(monkeypatch):
    """The point of reuse: the second trial of an architecture runs the functions the first one
    traced. Python code in the model (here the Elastic Net's __call__) runs only while a step
    is traced, so its calls count the traces: none more for a kept model, more for a fresh one."""
    calls = []
    original = ElasticNetRegularization.__call__
    monkeypatch.setattr(ElasticNetRegularization, "__call__",
                        lambda self, w: calls.append(1) or original(self, w))  # tunable's too
    with training.quiet():
        _compiled_trial(B1, 0, reused=True)
        traced = len(calls)
        _compiled_trial(B1, 1, reused=True)
        _compiled_trial(B2, 0, reused=True)  # other α and λ: read from the weights, not traced in
        assert traced > 0 and len(calls) == traced  # nothing traced again
        _compiled_trial(B1, 1, reused=False)
    assert len(calls) > traced  # a fresh build traces anew


def test_fresh_builds_switch_keeps_nothing(monkeypatch):
    monkeypatch.setenv("CINIC10_FRESH_BUILDS", "1")
    with training.quiet():
        one, two = _compiled_trial(A, 0, True)[0], _compiled_trial(A, 1, True)[0]
    assert one is not two


def test_a_key_that_misses_part_of_the_architecture_is_refused():
    training.setup(0)
    one, two = (nets.create_resnet_model(b, 3, base_filters=4) for b in (1, 2))
    with pytest.raises(RuntimeError, match="architecture key misses"):
        reuse.copy_state(one, two)


TIMES = ("timing", "train_seconds", "images_per_second")  # the only fields reuse may change


def test_resnet_trials_give_the_same_results_reused_as_fresh(tmp_path, monkeypatch):
    """03's trial function as its notebook's trial cell defines it, through run_trials as the
    notebook runs it: every result field but the timings identical through traced_once and with
    a fresh build per trial; two trials at other α and λ share one kept model."""
    from helpers import data
    from helpers.data.sources import make_synthetic
    from helpers.experiments import trialstore

    monkeypatch.setenv("CINIC10_DATA", str(tmp_path / "data"))
    spec = str(make_synthetic(per_class=6).location)
    settings = {"fingerprint": data.load_dataset(spec, say=lambda *_: None).fingerprint,
                "train_per_class": 5, "valid_per_class": 3, "subset_seed": 0}
    trial_fn = notebook_code("03_hyperparams", "resnet_trial", epochs=2, batch_size=16, patience=1)
    grid = [{"n_blocks": 1, "kernel_size": 2, "dropout": 0.1, "base_filters": 4}]
    grid += [{**grid[0], "alpha": a, "lam": lam} for a, lam in ((0.5, 0.01), (0.2, 0.1))]
    trials = trialstore.make_trials("resnet", grid, settings)  # B1, B2: one kept model
    records = {}
    for mode in ("1", "0"):  # fresh builds, then reuse
        monkeypatch.setenv("CINIC10_FRESH_BUILDS", mode)
        reuse.clear()
        run_dir = tmp_path / f"fresh{mode}"
        table = trialstore.run_trials(trials, trial_fn, {"settings": settings, "dataset": spec},
                                      run_dir=run_dir)
        folder = trialstore.TrialStore(run_dir).folder
        records[mode] = [json.loads((folder / f"{i}.json").read_text())["result"]
                         for i in table.trial_id]
    assert len(reuse._KEPT) == 2  # no regulariser; α and λ (one model for both)
    for fresh, reused in zip(records["1"], records["0"]):
        assert {k: v for k, v in fresh.items() if k not in TIMES} == \
            {k: v for k, v in reused.items() if k not in TIMES}


def _compiled_trial(config: dict, seed: int, reused: bool, optimizer=None):
    """One trial as 03's notebook cell runs it (build, compile, reuse.traced_once, fit) or, not
    reused, as it would without the device (clear_session, constant α and λ); the model, its
    weights after training (without the tunable α, λ) and the TrainResult."""
    if not reused:
        keras.backend.clear_session()
    training.setup(seed)
    reg = ElasticNetRegularization(config["alpha"], config["lam"]) if "alpha" in config else None
    model = nets.create_resnet_model(config["n_blocks"], config["kernel_size"], config["dropout"],
                                     base_filters=4, output_regularizer=reg, tunable=reused)
    model.compile(optimizer=optimizer() if optimizer else keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if reused:
        model = reuse.traced_once(model)
    result = training.fit(model, TRAIN, VALID, epochs=SETTINGS["epochs"],
                          batch_size=SETTINGS["batch_size"], seed=seed,
                          patience=SETTINGS["patience"])
    weights = {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights
               if w.path.rsplit("/", 1)[-1] not in HELD}
    return model, weights, result


def test_traced_once_trains_bit_for_bit_like_a_fresh_compile_and_fit():
    """The sequence of trials (an architecture again after another one, other seeds, other α
    and λ on one kept model), compiled in the trial and fitted: weights after training, the
    histories and best epochs identical to a fresh build, compile and fit per trial."""
    with training.quiet():
        fresh = [_compiled_trial(c, s, reused=False) for c, s in SEQUENCE]
        reused = [_compiled_trial(c, s, reused=True) for c, s in SEQUENCE]
    _assert_same(fresh, reused)
    models = [m for m, _, _ in reused]
    assert models[0] is models[1] is models[3] and models[2] is models[4]
    assert models[0] is not models[2]
    assert isinstance(models[2].get_layer("classifier"), nets.TunableElasticNetDense)
    assert nets.count_params(models[2]) == fresh[2][0].count_params()


def test_traced_once_is_keyed_on_the_optimisers_whole_config():
    """Another optimiser, or the same one with another argument, is another kept model: each
    trial trains as a fresh compile with its own optimiser would, whatever ran before it."""
    optimizers = [lambda: keras.optimizers.Adam(1e-3),
                  lambda: keras.optimizers.SGD(1e-2, momentum=0.9),
                  lambda: keras.optimizers.Adam(1e-3, beta_1=0.5),
                  lambda: keras.optimizers.Adam(1e-3)]
    with training.quiet():
        fresh = [_compiled_trial(A, 0, False, opt) for opt in optimizers]
        reused = [_compiled_trial(A, 0, True, opt) for opt in optimizers]
    _assert_same(fresh, reused)
    models = [m for m, _, _ in reused]
    assert len({id(m) for m in models[:3]}) == 3 and models[3] is models[0]
    assert type(models[1].optimizer).__name__ == "SGD"
    assert not np.array_equal(fresh[0][1]["classifier/kernel"], fresh[2][1]["classifier/kernel"])


def test_augmentation_trials_give_the_same_results_reused_as_fresh(tmp_path, monkeypatch):
    """04's trial function (its notebook's trial cell) end to end (initial weights, doubled set,
    test and train evaluation): the same results with reuse as with a fresh build per trial."""
    from helpers.data.sources import make_synthetic
    from helpers.experiments import trialstore

    monkeypatch.setenv("CINIC10_DATA", str(tmp_path / "data"))
    spec = str(make_synthetic(per_class=4).location)
    from helpers import data

    ds = data.load_dataset(spec, say=lambda *_: None)
    fn = notebook_code("04_augmentation", "augmentation_trial", epochs=2, batch_size=8,
                       patience=10)
    settings = {"fingerprint": ds.fingerprint, "train_per_class": 2, "valid_per_class": 2,
                "test_per_class": 2, "subset_seed": 0}
    make_arms = notebook_code("04_augmentation", "make_arms")
    arms, layers = make_arms({"flip": augmentation_layers()["flip"]})
    trials = trialstore.make_trials("04aug", arms, settings, seed=0, repeats=2)
    results = {}
    for mode in ("1", "0"):  # fresh builds, then reuse
        monkeypatch.setenv("CINIC10_FRESH_BUILDS", mode)
        run_dir = tmp_path / f"fresh{mode}"
        context = {"settings": settings, "dataset": spec, "run_dir": str(run_dir),
                   "initial_weights": initial_weights(run_dir, [0, 1]), "layers": layers}
        with training.quiet():
            results[mode] = [fn(t.config, context) for t in trials]
    for fresh, reused in zip(results["1"], results["0"]):
        assert {k: v for k, v in fresh.items() if k not in TIMES} == \
            {k: v for k, v in reused.items() if k not in TIMES}


JAX_CHECK = """
import json, keras
from tests import test_reuse as t
from helpers.models import training
with training.quiet():  # 03's cell: compiled in the trial, then reuse.traced_once
    fresh = [t._compiled_trial(c, s, reused=False) for c, s in t.SEQUENCE]
    reused = [t._compiled_trial(c, s, reused=True) for c, s in t.SEQUENCE]
t._assert_same(fresh, reused)
print(json.dumps({"backend": keras.backend.backend(), "same": True,
                  "kept": reused[0][0] is reused[1][0]}))
"""


@pytest.mark.slow
def test_reuse_is_bitwise_on_jax_too(tmp_path):
    # tests/ too: test_reuse imports conftest, as pytest's rootdir-relative import makes it
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache")}
    env.pop("CINIC10_FRESH_BUILDS", None)
    out = subprocess.run([sys.executable, "-c", JAX_CHECK], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"backend": "jax", "same": True,
                                                                "kept": True}

