"""Which Keras backend runs (KERAS_BACKEND, else tensorflow), what differs on it; no TF off TF."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import sys
from pathlib import Path

from helpers.base import StudyError, data_dir

SUPPORTED = ("tensorflow", "jax")
# Keras' private API, used only here (no public one does the job): keras is capped at the minor
# version tested and tests/test_private_api.py imports each, so a move fails there, by name
PRIVATE_KERAS = (
    "keras.src.utils.module_utils.tensorflow",  # keep_tensorflow_out
    "keras.src.random.seed_generator.draw_seed",  # draw_seed: an int -> the backend's seed pair
)
UNSUPPORTED = {
    "torch": "the study's seeded input and augmentations, DataParallel training and the "
    "findings are tested on tensorflow and jax only",
    "numpy": "Keras' numpy backend cannot train (no fit)",
    "openvino": "Keras' openvino backend cannot train (inference only)",
}


def name() -> str:
    """KERAS_BACKEND, else ~/.keras/keras.json's, else tensorflow, read without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def is_tensorflow() -> bool:
    """True when TensorFlow is the backend (then tf.data feeds training)."""
    return name() == "tensorflow"


def check() -> str:
    """The backend's name if the study runs on it; else a one-line StudyError saying why not."""
    backend = name()
    if backend not in SUPPORTED:
        why = UNSUPPORTED.get(backend, "not a Keras backend the study knows")
        raise StudyError(f"KERAS_BACKEND={backend}: not supported ({why}); use "
                         + " or ".join(f"KERAS_BACKEND={b}" for b in SUPPORTED))
    return backend


def gpus() -> list[str]:
    """The GPUs the backend sees (names), without starting TensorFlow's runtime on jax."""
    if is_tensorflow():
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if name() == "jax":
        import jax

        with contextlib.suppress(RuntimeError):  # no GPU platform in this jaxlib (CPU wheels)
            return [str(d) for d in jax.devices("gpu")]
    return []


def versions(*others: str) -> dict:
    """{package: version} of the backend's (tensorflow | jax, jaxlib) and others', if installed."""
    packages = {"jax": ["jax", "jaxlib"]}.get(name(), [name()])
    out = {}
    for package in [*packages, *others]:
        with contextlib.suppress(md.PackageNotFoundError):
            out[package] = md.version(package)
    return out


_DATA_PARALLEL: dict = {}
DEVICE_KIND = "gpu"  # what data_parallel spreads over; tests set "cpu" with forced CPU devices


def data_parallel(devices: list[str] | None = None) -> int:
    """On jax, DataParallel over several GPUs (or devices given) process-wide; returns replicas."""
    import keras

    if devices is None:
        devices = (keras.distribution.list_devices(DEVICE_KIND)
                   if DEVICE_KIND == "cpu" or gpus() else [])
    if len(devices) < 2:
        current = keras.distribution.distribution()
        return len(current.device_mesh.devices.flatten()) if current is not None else 1
    if tuple(devices) not in _DATA_PARALLEL:
        _DATA_PARALLEL[tuple(devices)] = keras.distribution.DataParallel(devices=list(devices))
    keras.distribution.set_distribution(_DATA_PARALLEL[tuple(devices)])
    return len(devices)


def set_random_seed(seed: int) -> None:
    """keras.utils.set_random_seed (Python, NumPy, Keras), without importing TensorFlow off it."""
    import keras

    keep_tensorflow_out()
    keras.utils.set_random_seed(seed)


def draw_seed(seed: int):
    """Keras' (seed, 0) pair for an int seed in the backend's dtype, as a SeedGenerator's next()."""
    from keras.src.random.seed_generator import draw_seed as keras_draw_seed

    return keras_draw_seed(int(seed))


def compilation_cache() -> str | None:
    """On jax, XLA's persistent cache in JAX_COMPILATION_CACHE_DIR or <data>/cache/jax-compilation
    (a new model loads its program: 2 s, against 10 s to compile 04's CNN on 2 cores), else None."""
    if name() != "jax":
        return None
    import jax

    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or f"{data_dir()}/cache/jax-compilation"
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return folder


def keep_tensorflow_out() -> None:
    """Off TensorFlow, stop Keras' probes for it (seeding, saving) from importing it: seconds, and
    on a GPU TensorFlow would claim JAX's memory. Keras then treats it as absent."""
    if is_tensorflow() or "tensorflow" in sys.modules:
        return
    from keras.src.utils import module_utils

    module_utils.tensorflow._available = False
