"""Augmentations (shape, range, reproducibility, the doubled training set), the trial loop of
04, and transfer learning (frozen vs unfrozen stages, weights options, saved models); on real
data (slow): pretrained MobileNet features beat the same network with random weights."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    AUGMENTATION_NAMES,
    MOBILENET,
    augmentation_layers,
    initial_weights,
    needs_shared,
    notebook_code,
)

from helpers import artifacts, data
from helpers.base import StudyError
from helpers.data import augment
from helpers.data.dataset import Split
from helpers.data.pipeline import make_input
from helpers.experiments import protocol, trialstore
from helpers.models import evaluation, nets, pretrained, training


def _split(n: int = 40, seed: int = 0) -> Split:
    """n random (32, 32, 3) uint8 images with labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return Split(x, np.arange(n) % 10, np.array([f"img{i}" for i in range(n)]), np.full(n, "s"))


# --- augmentations ------------------------------------------------------------------------------

# 04's cells that define them, loaded once
make_arms, load_results, summary_table = (notebook_code("04_augmentation", name) for name in
                                          ("make_arms", "load_results", "summary_table"))


@pytest.mark.parametrize("name", AUGMENTATION_NAMES)
def test_augmentation_keeps_shape_dtype_range_and_repeats_under_a_seed(name):
    x = _split(16).x
    fn = augment.from_layers(augmentation_layers()[name])  # 04's layer at its strength
    a, b, c = augment.apply(fn, x, 3), augment.apply(fn, x, 3), augment.apply(fn, x, 4)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)  # same seed, same images
    assert not np.array_equal(a, c)  # another seed, other draws
    assert not np.allclose(a, x / 255.0)  # it did something


def test_a_dict_that_is_not_names_and_layers_is_refused():
    flip = keras.layers.RandomFlip("horizontal")
    for bad, words in (({}, "give at least one"), ({"baseline": flip}, "other than 'baseline'"),
                       ({"my flip": flip}, "named by a word"), ({"flip": "horizontal"},
                                                                 "not a Keras layer")):
        with pytest.raises(ValueError, match=words):
            make_arms(bad)


def test_each_layers_whole_config_keys_its_trials_and_names_do_not():
    """make_arms: a layer's every argument is in its trial config (a digest, so in its id), its name
    (a label Keras numbers anew each time a cell runs) is not; the trials rebuild it."""
    first = make_arms({"contrast": keras.layers.RandomContrast(0.3)})
    again = make_arms({"contrast": keras.layers.RandomContrast(0.3)})
    other = make_arms({"contrast": keras.layers.RandomContrast(0.4)})
    assert first == again and first[0][0] == {"name": "baseline"}
    assert first[0][1]["layer"] != other[0][1]["layer"]  # another factor: another trial id
    assert first[0][1]["layer"].startswith("RandomContrast-")  # a short label
    layers = first[1]
    assert json.loads(json.dumps(layers)) == layers  # plain JSON, as a context ships it
    assert keras.layers.deserialize(layers["contrast"]).factor == (0, 0.3)


def test_an_added_augmentation_extends_the_study_and_a_missing_one_departs():
    five = ["brightness", "flip", "rotation", "zoom", "cutout"]
    grown = dict.fromkeys([*five, "contrast"], None)
    assert "augmentations" not in protocol.departures("04_augmentation", {"augmentations": grown})
    without_flip = dict.fromkeys([n for n in five if n != "flip"], None)
    assert "augmentations" in protocol.departures("04_augmentation",
                                                  {"augmentations": without_flip})


def test_doubled_training_set_holds_every_image_once_plain_and_once_augmented():
    split = _split(24)
    fn = augment.from_layers(keras.layers.RandomBrightness(0.5, value_range=(0, 1)))
    images, labels = [], []
    for x, y in make_input(split, 5, seed=1, augment=fn, repeat_augmented=True):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert len(images) == 2 * len(split)
    originals = split.x.astype(np.float32) / 255.0
    plain = [any(np.array_equal(img, o) for o in originals) for img in images]
    assert sum(plain) == len(split)  # half are the originals, the other half augmented
    np.testing.assert_array_equal(np.bincount(labels), 2 * np.bincount(split.y))
    again = np.concatenate(
        [x.numpy() for x, _ in make_input(split, 5, seed=1, augment=fn, repeat_augmented=True)]
    )
    np.testing.assert_array_equal(images, again)  # the same epoch again under the same seed


def _comparison(tmp_path, executor: str = "local"):
    """The baseline and flip trials of 04 on a tiny generated dataset, as the notebook runs them:
    its own trial function (its trial cell), its initial weights saved per seed first."""
    from helpers.data.sources import make_synthetic

    spec = str(make_synthetic(per_class=4).location)
    fn = notebook_code("04_augmentation", "augmentation_trial", epochs=1, batch_size=16,
                       patience=10)
    settings = {"fingerprint": data.load_dataset(spec, say=lambda *_: None).fingerprint,
                "train_per_class": 4, "valid_per_class": 2, "test_per_class": 2, "subset_seed": 0}
    arms, layers = make_arms({"flip": augmentation_layers()["flip"]})
    trials = trialstore.make_trials("04aug", arms, settings, seed=0)
    context = {"settings": settings, "dataset": spec, "run_dir": str(tmp_path),
               "initial_weights": initial_weights(tmp_path, [0]), "layers": layers}
    return trials, {"trial_fn": fn, "context": context, "run_dir": tmp_path,
                    "executor": executor, "metric": "valid_accuracy"}


def _run(trials, run) -> list[dict]:
    return load_results(run["run_dir"], trialstore.run_trials(trials, **run))


def test_every_augmentation_trial_starts_from_the_same_weights_and_reruns_skip(tmp_path):
    trials, run = _comparison(tmp_path)
    assert [t.config["name"] for t in trials] == ["baseline", "flip"]
    results = _run(trials, run)
    by_name = {r["name"]: r for r in results}
    assert by_name["baseline"]["n_train_images"] == 40
    assert by_name["flip"]["n_train_images"] == 80
    table = summary_table(results)
    assert list(table.index) == ["baseline", "flip"] and "gap" in table
    assert (table.seeds == 1).all()
    saved = tmp_path / "models" / "04_flip_s0.keras"
    stamp = saved.stat().st_mtime_ns
    assert _run(trials, run) == results  # nothing retrained
    assert saved.stat().st_mtime_ns == stamp
    reloaded = keras.saving.load_model(saved)
    probs = reloaded.predict(np.zeros((4, 32, 32, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # test accuracy and the gap come from the same (saved, last epoch's) weights
    ds = data.load_dataset(run["context"]["dataset"], say=lambda *_: None)
    flip = by_name["flip"]
    valid_curve = [r["value"] for r in flip["history"]
                   if r["split"] == "valid" and r["metric"] == "accuracy"]
    assert flip["weights_epoch"] == len(valid_curve) == 1  # all epochs run
    for split, key in (("valid", "valid_accuracy"), ("test", "test_accuracy")):
        part = data.stratified_subset(ds[split], 2, 0)
        acc = (reloaded.predict(part.x, verbose=0).argmax(1) == part.y).mean()
        assert acc == pytest.approx(flip[key]), split
        if split == "valid":  # the saved weights are the last epoch's, as Keras scored them
            assert acc == pytest.approx(valid_curve[-1])
    assert flip["gap"] == pytest.approx(flip["train_accuracy"] - flip["valid_accuracy"])


@pytest.mark.ray
def test_augmentation_trials_on_ray_match_the_local_ones(tmp_path):
    pytest.importorskip("ray")
    trials, run = _comparison(tmp_path / "local")
    local = {r["name"]: r for r in _run(trials, run)}
    _, remote_run = _comparison(tmp_path / "ray", executor="ray")
    remote = {r["name"]: r for r in _run(trials, remote_run)}
    names = {
        where: sorted(p.name for p in (tmp_path / where / "results" / "trials").glob("*.json"))
        for where in ("local", "ray")
    }
    assert names["local"] == names["ray"] and len(names["local"]) == len(trials)
    assert (tmp_path / "ray" / "models" / "04_flip_s0.keras").exists()  # the worker saved it
    for name in ("baseline", "flip"):  # same data, weights and seeds in another process
        assert remote[name]["n_train_images"] == local[name]["n_train_images"]
        loss = [
            next(r["value"] for r in res[name]["history"] if r["metric"] == "loss")
            for res in (local, remote)
        ]
        assert loss[1] == pytest.approx(loss[0], rel=1e-3)  # thread counts differ: not bitwise


# --- transfer learning --------------------------------------------------------------------------


def build_model(base: keras.Model, base_model: str = "MobileNet", units: int = 32):
    """05's build_model as its notebook's cell defines it: base frozen under the study's head."""
    return notebook_code("05_transfer", "build_model", base_model=base_model, units=units)(base)


def stage(model: keras.Model, base: keras.Model, trainable: bool, lr: float = 1e-3, **fit_args):
    """One of 05's stages as its train_one_seed runs it: base (un)frozen, compiled, fitted."""
    base.trainable = trainable
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return training.fit(model, **fit_args)


def _mobilenet(weights="none") -> keras.Model:
    choice = pretrained.build_base("MobileNet", 32, weights, alpha=0.25)
    return build_model(choice.model)


def _small_base() -> keras.Model:
    """A two-convolution stand-in for a keras.applications base (the two stages only see a
    nested model and its trainable flag): a random VGG19 costs seconds per step on 2 cores, and
    a random MobileNet's features vanish (~1e-18), so nothing would move."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    return keras.Model(inputs, x, name="small_base")


def test_frozen_stage_changes_no_base_weight_and_unfrozen_stage_does():
    training.setup(0)
    base = _small_base()
    model = build_model(base, "VGG19")
    assert not base.trainable  # build_model freezes it
    head = model.get_layer("head_dense1")
    before_base = [w.copy() for w in base.get_weights()]
    before_head = head.get_weights()[0].copy()
    fit_args = {"train": _split(32), "valid": _split(10, 1), "batch_size": 16, "epochs": 1}
    stage(model, base, False, **fit_args)
    for old, new in zip(before_base, base.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(before_head, head.get_weights()[0])
    stage(model, base, True, **fit_args)
    changed = [not np.array_equal(o, n) for o, n in zip(before_base, base.get_weights())]
    assert any(changed)


def test_vgg19_from_random_weights_and_from_a_local_weights_file(tmp_path):
    random = pretrained.build_base("VGG19", 32, "none")
    assert not random.pretrained and random.weights == "none"
    path = tmp_path / "vgg19_notop.weights.h5"
    random.model.save_weights(path)
    loaded = pretrained.build_base("VGG19", 32, str(path))
    assert loaded.pretrained and loaded.weights == str(path)
    for a, b in zip(random.model.get_weights(), loaded.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model = build_model(loaded.model, "VGG19")
    assert model.output_shape == (None, 10)
    with pytest.raises(StudyError, match="no such file"):
        pretrained.build_base("VGG19", 32, str(tmp_path / "missing.weights.h5"))
    (tmp_path / "garbled.h5").write_bytes(b"not HDF5")  # a bad file: one line naming it
    for bad in (tmp_path / "garbled.h5", path):  # the second: VGG19's weights for MobileNet
        with pytest.raises(StudyError, match=r"weights='.*': not MobileNet's weights"):
            pretrained.build_base("MobileNet", 32, str(bad), alpha=0.25)


def test_unreachable_imagenet_weights_fail_clearly_or_fall_back_when_allowed(monkeypatch):
    real_build = keras.applications.MobileNet

    def offline(weights=None, alpha=1.0, **kwargs):  # alpha named: build_base passes it on
        if weights == "imagenet":
            raise Exception("URL fetch failure on https://example/x.h5: None -- no network")
        return real_build(weights=weights, alpha=alpha, **kwargs)

    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    with pytest.raises(StudyError, match="could not be downloaded.*-p weights=PATH"):
        pretrained.build_base("MobileNet", 32, "imagenet", alpha=0.25)
    choice = pretrained.build_base("MobileNet", 32, "imagenet", 0.25, allow_random_fallback=True)
    assert not choice.pretrained and "no network" in choice.reason


def test_base_preprocessing_matches_keras_own_and_reloads_in_a_saved_model(tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    caffe = pretrained.BasePreprocess("caffe")(x)
    want = keras.applications.vgg19.preprocess_input(x * 255.0)
    np.testing.assert_allclose(caffe, want, rtol=1e-5, atol=1e-3)
    tf_mode = pretrained.BasePreprocess("tf")(x)
    want = keras.applications.mobilenet.preprocess_input(x * 255.0)
    np.testing.assert_allclose(tf_mode, want, atol=1e-5)
    assert pretrained.preprocessing_mode("VGG19") == "caffe"
    assert pretrained.preprocessing_mode("MobileNetV2") == "tf"
    assert pretrained.preprocessing_mode("EfficientNetB0") == "raw255"
    model = _mobilenet()
    path = artifacts.save_model(tmp_path, "05_transfer", nets.deployable(model))
    reloaded = keras.saving.load_model(path)
    raw = (x * 255).round()
    np.testing.assert_allclose(
        reloaded.predict(raw, verbose=0), model.predict(raw / 255.0, verbose=0), atol=1e-5
    )


def test_input_size_above_32_upscales_inside_the_model():
    choice = pretrained.build_base("MobileNet", 64, "none", alpha=0.25)
    model = build_model(choice.model, units=16)
    assert model.get_layer("upscale").output.shape[1:3] == (64, 64)
    assert model(tf.zeros((1, 32, 32, 3))).shape == (1, 10)


learning_rate = notebook_code("05_transfer", "learning_rate")  # as 05's cell defines it


@pytest.mark.parametrize("optimizer, text", [
    (lambda: keras.optimizers.Adam(1e-5), "1e-05"),
    (lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.001)), "0.001"),
    (lambda: keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 100)),
     "a CosineDecay schedule"),
], ids=["adam", "mixed precision", "schedule"])
def test_the_fine_tuning_rate_quoted_is_the_one_its_fit_started_with(optimizer, text):
    """Figure 12's caption and the conclusion quote the rate recorded when the fit started."""
    import types

    meter = training.Throughput(0, log=False)  # records the optimiser as a fit starts
    meter.set_model(types.SimpleNamespace(optimizer=optimizer()))
    meter.on_train_begin()
    result = training.TrainResult(None, 0.0, 0.0, 0, 0, optimizer=meter.optimizer)
    assert learning_rate(result) == text


# --- real data ----------------------------------------------------------------------------------

MARGIN = 0.08  # pretrained must beat random by this much (seen: 0.240 vs 0.100, 3 epochs)


def _frozen_accuracy(ds, weights: str) -> float:
    training.setup(0)
    train = data.stratified_subset(ds["train"], 200, seed=0)
    valid = data.stratified_subset(ds["valid"], 50, seed=0)
    test = data.stratified_subset(ds["test"], 100, seed=0)
    choice = pretrained.build_base("MobileNet", 32, weights, alpha=0.25)
    model = build_model(choice.model, units=128)
    stage(model, choice.model, False, train=train, valid=valid, epochs=3)
    return evaluation.evaluate(model, test, ds.classes)["test_accuracy"]


@pytest.mark.slow
@needs_shared
@pytest.mark.xdist_group("cifar")  # with test_real_data: conftest.cifar is decoded once
@pytest.mark.skipif(not MOBILENET.exists(), reason=f"weights not found at {MOBILENET}")
def test_pretrained_frozen_base_beats_the_same_network_with_random_weights(cifar):
    pretrained = _frozen_accuracy(cifar, str(MOBILENET))
    random = _frozen_accuracy(cifar, "none")
    print(f"frozen MobileNet 0.25 on CIFAR-10: pretrained {pretrained:.3f}, random {random:.3f}")
    assert pretrained > random + MARGIN


def test_mixed_precision_path_trains_and_saves_float32_probabilities(tmp_path):
    """What the full and gpu profiles turn on where a GPU is present, forced here on the CPU
    (slow there, but the same code path): loss scaling, float32 softmax, saved models."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        resnet = training.compile_model(nets.create_resnet_model(1, 3, base_filters=8))
        assert type(resnet.optimizer).__name__ == "LossScaleOptimizer"
        result = training.fit(resnet, _split(32), _split(16, 1), epochs=1, batch_size=16)
        assert np.isfinite(result.history.value).all()
        model = _mobilenet()  # the transfer model: base preprocessing and head in float16
        assert model.layers[-1].compute_dtype == "float32"
        base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
        stage(model, base, False, train=_split(32), valid=_split(16, 1), batch_size=16, epochs=1)
        path = artifacts.save_model(tmp_path, "mixed", nets.deployable(model))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    probs = keras.saving.load_model(path).predict(_split(4).x, verbose=0)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-3)
