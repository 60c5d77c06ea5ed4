"""The study's ResNet and the saved-model contract (issue 3), on generated data."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.artifacts import save_model
from helpers.data.dataset import Split
from helpers.models import evaluation, nets


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 4, 5])
def test_output_shape_for_every_grid_point(n_blocks):
    for k in (2, 3, 4, 5):
        m = nets.create_resnet_model(n_blocks=n_blocks, kernel_size=k, base_filters=4)  # shape: any width
        out = m(np.zeros((2, 32, 32, 3), np.float32))
        assert out.shape == (2, 10)
        np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)


def test_bad_block_count_is_refused():
    with pytest.raises(ValueError, match="n_blocks must be in 1..5"):
        nets.create_resnet_model(n_blocks=6)


def test_skip_connection_adds_the_block_input():
    inp = keras.Input((8, 8, 16))
    block = keras.Model(inp, nets.residual_block(inp, 16, 3, name="t"))
    for layer in block.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype(np.float32)
    # zero convolutions -> the residual branch is relu(bn(0)) = 0: the output is the input itself
    np.testing.assert_allclose(block(x, training=False), x, atol=1e-5)
    # and with a projection (channels differ) the 1x1 convolution carries it
    inp2 = keras.Input((8, 8, 16))
    assert any(
        "proj" in layer.name
        for layer in keras.Model(inp2, nets.residual_block(inp2, 32, 3, name="p")).layers
    )


def test_saved_model_takes_raw_pixels_and_reloads_identically(tmp_path):
    model = nets.create_resnet_model(n_blocks=1, kernel_size=2)
    raw = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3)).astype(np.uint8)
    path = save_model(tmp_path, "m", nets.deployable(model))
    assert path.name == "m.keras" and not list(path.parent.glob(".*"))
    loaded = keras.models.load_model(path)
    expected = model(raw.astype(np.float32) / 255.0, training=False)
    np.testing.assert_allclose(loaded.predict(raw, verbose=0), expected, atol=1e-5)


def test_evaluate_per_class_and_per_source():
    model = nets.create_resnet_model(n_blocks=1)
    rng = np.random.default_rng(0)
    split = Split(
        rng.integers(0, 256, (20, 32, 32, 3)).astype(np.uint8),
        np.arange(20) % 10,
        np.array([f"x{i}" for i in range(20)]),
        np.array(["cifar10", "imagenet"] * 10),
    )
    m = evaluation.evaluate(model, split, [str(c) for c in range(10)])
    assert m["n_test"] == 20 and set(m["per_source"]) == {"cifar10", "imagenet"}
    confusion = np.array(m["confusion_matrix"])  # (true, predicted) counts
    assert confusion.shape == (10, 10) and confusion.sum(axis=1).tolist() == [2] * 10
    assert m["test_accuracy"] == pytest.approx(np.trace(confusion) / 20)
    per_class = [m["per_class"][str(c)] for c in range(10)]
    assert per_class == pytest.approx(np.diag(confusion) / 2)
    assert np.mean(per_class) == pytest.approx(m["test_accuracy"])  # balanced classes


# --- training settings for larger batches and several devices ----------------------------------


def test_learning_rate_scales_with_the_batch_as_the_profile_says():
    from helpers.models.training import scaled_learning_rate

    assert scaled_learning_rate(1e-3, 256, "none") == 1e-3
    assert scaled_learning_rate(1e-3, 256, "linear") == pytest.approx(8e-3)
    assert scaled_learning_rate(1e-3, 128, "sqrt") == pytest.approx(2e-3)
    assert scaled_learning_rate(1e-3, 32, "sqrt") == 1e-3  # the study's batch: unchanged
    with pytest.raises(ValueError, match="lr_scaling 'square'"):
        scaled_learning_rate(1e-3, 64, "square")


def test_training_mirrors_over_several_devices():
    """MirroredStrategy as set by training.distribute, on two logical CPUs (what several GPUs
    get): the model is built and trained under it, each batch split in two."""
    import subprocess
    import sys

    code = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from helpers.models import nets, training
from helpers.data.dataset import Split
assert training.setup(0)["replicas"] == 1  # no GPU: nothing mirrored by default
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
assert training.distribute(devices) == 2 and training.distribute(devices) == 2
model = training.compile_model(nets.create_resnet_model(1, 2, base_filters=4))
assert model.distribute_strategy.num_replicas_in_sync == 2
n = 64
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
split = Split(x, np.arange(n) % 10, np.array([str(i) for i in range(n)]), np.full(n, "s"))
result = training.fit(model, split, split, epochs=2, batch_size=16)
assert result.epochs_run == 2 and np.isfinite(result.history.value).all()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_layer_table_is_one_row_per_block_and_adds_up():
    model = nets.create_resnet_model(n_blocks=2)
    table = nets.layer_table(model)
    assert list(table.index) == [
        "image", "block1", "block2", "flatten", "classifier", "total", "trainable"
    ]
    assert table.loc["block2", "output shape"] == "(8, 8, 64)"
    assert "BatchNormalization" in table.loc["block1", "layers"]
    per_layer = table["parameters"].iloc[:-2].sum()
    assert table.loc["total", "parameters"] == model.count_params() == per_layer
    assert 0 < table.loc["trainable", "parameters"] < per_layer  # batch norm's moving stats


def test_fit_splits_its_seconds_and_every_result_file_carries_the_ledger(tmp_path):
    """TrainResult.timing: the first step's excess (tracing) apart from the other steps and the
    validation, adding up to about the epochs' time; the process's ledger (helpers.artifacts) counts
    them and the evaluation, and save_metrics writes it into the result's provenance."""
    import json

    from helpers import artifacts
    from helpers.models import training

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), np.arange(64) % 10,
                  np.array([f"i{i}" for i in range(64)]), np.full(64, "s"))
    before = artifacts.seconds_by_phase()
    model = training.compile_model(nets.create_resnet_model(1, 2, base_filters=4))
    with training.quiet():
        result = training.fit(model, split, split, epochs=3, batch_size=16)
    t = result.timing
    assert set(t) == {"trace", "steps", "validation", "first_step", "step"}
    assert t["first_step"] > t["step"] > 0 and t["trace"] > 0  # the first step traces
    assert t["trace"] + t["steps"] + t["validation"] <= result.seconds
    assert result.summary()["timing"] == t
    evaluation.evaluate(model, split, [str(i) for i in range(10)])
    after = artifacts.seconds_by_phase()
    for phase in ("trace", "steps", "validation", "evaluation"):
        assert after[phase] > before.get(phase, 0.0)
    with pytest.raises(ValueError, match="timing phase"):
        artifacts.add_seconds("thinking", 1.0)
    path = artifacts.save_metrics(tmp_path, "00_test", {"x": 1})
    assert json.loads(path.read_text())["provenance"]["seconds_by_phase"] == artifacts.seconds_by_phase()


def test_a_fit_records_the_optimiser_it_was_compiled_with():
    """Each fit's result names its optimiser, class and whole config as compile set them (02
    saves it per seed), before ReduceLROnPlateau changes the learning rate."""
    import json

    from helpers.models import training

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8), np.arange(32) % 10,
                  np.array([f"i{i}" for i in range(32)]), np.full(32, "s"))
    model = nets.create_resnet_model(1, 2, base_filters=4)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with training.quiet():
        result = training.fit(model, split, split, epochs=1, batch_size=16)
    assert result.optimizer["class_name"] == "SGD"
    config = result.optimizer["config"]
    assert config["momentum"] == 0.9 and config["nesterov"] is True
    assert config["learning_rate"] == pytest.approx(0.05)
    assert json.loads(json.dumps(result.optimizer)) == result.optimizer  # a results file's
