"""The study on another Keras backend: the input without tf.data (pipeline.ArrayBatches) and the
augmentations on NumPy batches, seeded and reproducible; the backend in provenance, trial ids
and run folders; KERAS_BACKEND=torch refused in one line; and (slow) the smoke profile through
the runner on JAX, with TensorFlow never imported in the kernels."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import AUGMENTATION_NAMES, augmentation_layers, cli

from helpers import backend
from helpers.artifacts import check_compatible
from helpers.base import ROOT, StudyError
from helpers.data import augment, pipeline
from helpers.data.dataset import Split
from helpers.experiments import trialstore


def _split(n: int = 50, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    return Split(x, y, np.array([f"i{i}" for i in range(n)]), np.array(["cifar10"] * n))


def _epoch(batches: pipeline.ArrayBatches) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*(batches[i] for i in range(len(batches))))
    return np.concatenate(xs), np.concatenate(ys)


def test_array_batches_cover_every_image_once_per_epoch_scaled():
    split = _split()
    batches = pipeline.ArrayBatches(split, 16, seed=3)
    assert len(batches) == 4  # 50 images: three batches of 16 and one of 2
    x, y = _epoch(batches)
    assert x.shape == (50, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # every image once: match each batch image to its source row by its pixels
    scaled = split.x.astype(np.float32) / 255.0
    rows = [int(np.flatnonzero((scaled == xi).all(axis=(1, 2, 3)))[0]) for xi in x]
    assert sorted(rows) == list(range(50))
    assert (y == split.y[rows]).all()  # each image keeps its label


def test_array_batches_are_reproducible_and_reshuffled_each_epoch():
    split = _split()
    a, b = pipeline.ArrayBatches(split, 16, seed=1), pipeline.ArrayBatches(split, 16, seed=1)
    first_a, first_b = _epoch(a), _epoch(b)
    assert all((u == v).all() for u, v in zip(first_a, first_b))
    a.on_epoch_end()
    second = _epoch(a)
    assert not (second[1] == first_a[1]).all()  # a new order in epoch 2
    other = _epoch(pipeline.ArrayBatches(split, 16, seed=2))
    assert not (other[1] == first_a[1]).all()
    unshuffled = _epoch(pipeline.ArrayBatches(split, 16, shuffle=False))
    assert (unshuffled[1] == split.y).all()


def test_doubled_set_every_epoch_augments_only_the_copy():
    split = _split(20)
    flip = augment.from_layers(augmentation_layers()["flip"], portable=True)
    batches = pipeline.ArrayBatches(split, 8, seed=0, augment=flip, repeat_augmented=True)
    x, y = _epoch(batches)
    assert len(x) == 40 and np.bincount(y).tolist() == (np.bincount(split.y) * 2).tolist()
    originals = split.x / 255.0
    exact = [bool((np.abs(originals - xi) < 1e-6).all(axis=(1, 2, 3)).any()) for xi in x]
    assert sum(exact) >= 20  # the 20 originals, plus copies whose draw left them unflipped
    assert sum(exact) < 40  # some copies flipped
    again = _epoch(pipeline.ArrayBatches(split, 8, seed=0, augment=flip, repeat_augmented=True))
    assert np.array_equal(x, again[0])


@pytest.mark.parametrize("name", AUGMENTATION_NAMES)
def test_portable_augmentations_are_seeded(name):
    fn = augment.from_layers(augmentation_layers()[name], portable=True)
    images = _split(16).x.astype(np.float32) / 255.0
    a, b, c = fn(images, (0, 0)), fn(images, (0, 0)), fn(images, (1, 0))
    assert a.shape == images.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_doubled_split_once_with_portable_augmentation_is_reproducible():
    split = _split(30)
    fn = augment.from_layers(augmentation_layers(rotation=0.24)["rotation"], portable=True)
    once, again = augment.doubled_split(split, fn, seed=4), augment.doubled_split(split, fn, seed=4)
    assert len(once) == 60 and once.x.dtype == np.uint8
    assert np.array_equal(once.x[:30], split.x) and not np.array_equal(once.x[30:], split.x)
    assert np.array_equal(once.x, again.x)
    assert (once.names[30:] == np.char.add(split.names.astype(str), "#augmented")).all()


def test_torch_and_unknown_backends_are_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(StudyError) as err:
        backend.check()
    assert "\n" not in str(err.value) and "KERAS_BACKEND=torch" in str(err.value)
    assert "jax" in str(err.value)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backend.check() == "jax"


def test_runner_refuses_torch_before_anything_runs(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--out", str(out),
               env=env, timeout=120)
    assert proc.returncode != 0
    assert "KERAS_BACKEND=torch: not supported" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_run_folder_keeps_one_backend():
    record = {"notebooks": {"01_data": {"profile": "smoke", "backend": "tensorflow"}}}
    check_compatible(record, ["02_resnet"], "smoke", backend="tensorflow")
    with pytest.raises(StudyError, match="tensorflow backend, this run is on jax"):
        check_compatible(record, ["02_resnet"], "smoke", backend="jax")
    old = {"notebooks": {"01_data": {"profile": "smoke"}}}  # before backends were recorded
    with pytest.raises(StudyError):
        check_compatible(old, ["02_resnet"], "smoke", backend="jax")


def test_trial_ids_name_the_backend_off_tensorflow_only(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    tf_trial = trialstore.make_trials("resnet", [{"n_blocks": 1}], {"epochs": 1})[0]
    assert tf_trial.id == trialstore.trial_id("resnet", {"n_blocks": 1, "seed": 0}, {"epochs": 1})
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    jax_trial = trialstore.make_trials("resnet", [{"n_blocks": 1}], {"epochs": 1})[0]
    assert jax_trial.id != tf_trial.id and jax_trial.settings["backend"] == "jax"


def test_provenance_records_the_backend():
    from helpers.artifacts import provenance

    record = provenance()
    assert record["backend"] == backend.name()
    # the backend's own packages, by name: tensorflow's, or jax's and jaxlib's
    wanted = {"tensorflow": {"tensorflow"}, "jax": {"jax", "jaxlib"}}[backend.name()]
    assert wanted <= set(record["versions"]), record["versions"]


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


needs_jax = pytest.mark.skipif(not _jax_available(), reason="jax not installed (the jax extra)")


@pytest.mark.slow
@needs_jax
def test_smoke_profile_on_jax_writes_the_same_results_without_tensorflow(tmp_path):
    """The smoke profile's 02 and 04 on KERAS_BACKEND=jax (CPU), through the runner: the two
    training paths (02's inline compile/fit and seeds, 04's seeded augmentations). 01 trains
    nothing; 03 trains 02's model over a grid, and its reuse on JAX is test_reuse's; 05 runs on
    jax too, but VGG19's compilation takes it to about 4 minutes, past the test budget. A
    stand-in `tensorflow` package first on the path records any import of it in a kernel."""
    stub = tmp_path / "stub" / "tensorflow"
    stub.mkdir(parents=True)
    marker = tmp_path / "tensorflow-imported"
    (stub / "__init__.py").write_text(
        "import os, traceback\n"
        f"open({str(marker)!r}, 'a').write(''.join(traceback.format_stack()))\n"
        "raise ImportError('tensorflow imported on the jax backend')\n"
    )
    out = tmp_path / "run"
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join([str(stub.parent), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = cli("run", "--profile", "smoke", "--dataset", "synthetic", "--out", str(out),
               "--only", "02,04", env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not marker.exists(), marker.read_text()[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["backend"] == "jax"
    assert {e["backend"] for e in record["notebooks"].values()} == {"jax"}
    for stem in record["notebooks"]:
        result = json.loads((out / "results" / f"{stem}.json").read_text())
        assert result["provenance"]["backend"] == "jax", stem
        assert "jax" in result["provenance"]["versions"]
    resnet = json.loads((out / "results" / "02_resnet.json").read_text())["provenance"]
    assert resnet["backend"] == "jax" and resnet["precision"] == "float32"
    found = json.loads((out / "results" / "findings.json").read_text())
    assert found["profile"] == "smoke"
    assert {"C1", "C7", "C8"} <= {row["id"] for row in found["claims"]}
    assert found["backend"] == "jax"
    html = (out / "report.html").read_text()
    assert re.search(r"<td>Keras backend</td>\s*<td>jax</td>", html)


DATA_PARALLEL = """
import numpy as np, keras
from helpers.data.dataset import Split
from helpers.models import nets, training
setup = training.setup(0)
rng = np.random.default_rng(0); n = 128
split = Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10,
              np.array([str(i) for i in range(n)]), np.array(["c"] * n))
model = training.compile_model(nets.create_simple_cnn())
training.fit(model, split, split, epochs=1, batch_size=32)
mesh = model.trainable_weights[0].value.sharding.mesh
print(setup["replicas"], dict(mesh.shape))
"""


@pytest.mark.slow
@needs_jax
def test_data_parallel_on_two_forced_cpu_devices(tmp_path):
    """On jax, several devices train one model as DataParallel (CPU devices stand in for GPUs:
    XLA_FLAGS=--xla_force_host_platform_device_count=2, and setup picks them as it would GPUs)."""
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    script = "from helpers import backend\nbackend.DEVICE_KIND = 'cpu'\n" + DATA_PARALLEL
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "2 {'batch': 2}"


@pytest.mark.parametrize("portable", [False, True], ids=["tf.data", "NumPy"])
def test_one_augmented_copy_serves_both_kinds_of_augmentation(portable):
    """augment.from_layers makes both kinds (a tf.data map's, a NumPy batch's): the doubled set's
    copy is the function applied batch by batch at (seed, start), rounded back to uint8."""
    import keras

    split = _split(21)
    fn = augment.from_layers(augmentation_layers(zoom=0.5)["zoom"], portable=portable)
    assert fn.portable is portable
    copy = augment.augmented_copy(split.x, fn, seed=2, batch_size=8)
    by_hand = [np.rint(keras.ops.convert_to_numpy(fn(split.x[s:s + 8] / np.float32(255), (2, s)))
                       * 255.0).astype(np.uint8) for s in range(0, 21, 8)]
    np.testing.assert_array_equal(copy, np.concatenate(by_hand))
    np.testing.assert_array_equal(augment.doubled_split(split, fn, seed=2, batch_size=8).x[21:],
                                  copy)
