"""Training the study's way: seeded, with the callbacks every fit uses, images/s measured."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import statistics
import time
from dataclasses import dataclass, field

import keras
import pandas as pd

from helpers import artifacts, backend
from helpers.base import under_runner
from helpers.data.dataset import Split
from helpers.data.pipeline import make_input, set_threads
from helpers.models import LR_SCALING, fitlog

_SEED = 0  # the seed of the last setup() (names the next fits' TensorBoard folders)
_MIRRORED: dict = {}


def setup(seed: int = 0, mixed_precision: bool = False, threads: int | None = None) -> dict:
    """Seed, CPU threads (all unless given), precision (mixed only on GPU), every GPU: the choices."""
    global _SEED
    _SEED = seed
    backend.set_random_seed(seed)  # keras.utils.set_random_seed would import TensorFlow on jax
    set_threads(threads)
    backend.compilation_cache()  # jax: a model compiled once loads from disk in later trials
    gpus = backend.gpus()
    policy = "mixed_float16" if (mixed_precision and gpus) else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return {"precision": policy, "gpus": len(gpus), "replicas": distribute(),
            "backend": backend.name()}


def distribute(devices: list[str] | None = None) -> int:
    """Models built afterwards train on every GPU (or device given): the replicas."""
    if not backend.is_tensorflow():
        return backend.data_parallel(devices)
    import tensorflow as tf

    if devices is None:  # physical first: listing logical devices starts TensorFlow's runtime
        several = len(tf.config.list_physical_devices("GPU")) > 1
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] if several else []
    if len(devices) < 2:
        return tf.distribute.get_strategy().num_replicas_in_sync
    strategy = _MIRRORED.get(tuple(devices)) or tf.distribute.MirroredStrategy(list(devices))
    _MIRRORED[tuple(devices)] = strategy
    if tf.distribute.get_strategy() is not strategy:
        tf.distribute.experimental_set_strategy(None)
        tf.distribute.experimental_set_strategy(strategy)
    return strategy.num_replicas_in_sync


def scaled_learning_rate(learning_rate: float, batch_size: int, rule: str = "none") -> float:
    """learning_rate for batch_size: "linear" (Goyal et al., SGD) or "sqrt" (Adam) in batch/32."""
    if rule not in LR_SCALING:
        raise ValueError(f"lr_scaling {rule!r}: one of {', '.join(LR_SCALING)}")
    ratio = batch_size / 32  # the study's batch, for which its learning rates were chosen
    return learning_rate * {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[rule]


@contextlib.contextmanager
def quiet():
    """For a loop of fits: no per-epoch lines and no TensorFlow retracing warnings."""
    tf_logger = logging.getLogger("tensorflow")
    with contextlib.ExitStack() as restore, contextlib.redirect_stdout(io.StringIO()):
        restore.callback(tf_logger.setLevel, tf_logger.level)
        tf_logger.setLevel(logging.ERROR)
        yield


class Throughput(keras.callbacks.Callback):
    """Where a fit's seconds go, a line per epoch, the optimiser it started with. Batch *begin*
    hooks only: Keras dispatches batch ends asynchronously."""

    def __init__(self, n_images: int, log: bool):
        super().__init__()
        self.n_images, self.log, self._first_step = n_images, log, None
        self.train, self.valid, self.steps = [], [], []  # per epoch: training s, validation s, batches
        self.optimizer: dict = {}  # class_name, config

    def on_train_begin(self, logs=None):
        opt = self.model.optimizer
        config = json.dumps(opt.get_config(),  # a NumPy scalar as its number, else its repr
                            default=lambda v: v.item() if hasattr(v, "item") else repr(v))
        self.optimizer = {"class_name": type(opt).__name__, "config": json.loads(config)}

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._train_end = time.perf_counter(), None
        self.steps.append(0)

    def on_train_batch_begin(self, batch, logs=None):
        self.steps[-1] += 1
        if self._first_step is None and self.steps[-1] == 2:  # the first step has returned
            self._first_step = time.perf_counter() - self._t0

    def on_test_begin(self, logs=None):
        self._train_end = self._train_end or time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        end = self._train_end or now
        self.train.append(end - self._t0)
        self.valid.append(now - end)
        if self.log:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            parts = [f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate"]
            print(f"epoch {epoch + 1}/{self.params['epochs']}  {'  '.join(parts)}  lr {lr:.2e}  "
                  f"{self.n_images / max(self.train[-1], 1e-9):.0f} img/s  "
                  f"{now - self._t0:.1f}s", flush=True)

    def timing(self) -> dict:
        """Seconds: trace (first step's and validation's excess over a typical one: the median
        later epoch's, else the first epoch's others), steps, validation, first_step, step."""
        if not self.train:
            return {}
        per_step = [t / n for t, n in zip(self.train[1:], self.steps[1:]) if n]
        first = self._first_step if self._first_step is not None else self.train[0]
        if not per_step and self.steps[0] > 1:
            per_step = [(self.train[0] - first) / (self.steps[0] - 1)]
        step = statistics.median(per_step) if per_step else first
        trace_train = max(0.0, first - step)
        trace_valid = max(0.0, self.valid[0] - statistics.median(self.valid[1:])) \
            if len(self.valid) > 1 else 0.0
        out = {"trace": trace_train + trace_valid, "steps": sum(self.train) - trace_train,
               "validation": sum(self.valid) - trace_valid, "first_step": first, "step": step}
        return {k: round(v, 3) for k, v in out.items()}


@dataclass
class TrainResult:
    """What a training run leaves: tidy history, throughput, timing."""

    history: pd.DataFrame  # epoch, split (train|valid), metric, value
    images_per_second: float  # median over epochs
    seconds: float
    epochs_run: int
    best_epoch: int
    timing: dict = field(default_factory=dict)  # Throughput.timing(): trace, steps, validation
    optimizer: dict = field(default_factory=dict)  # as fit started: class_name, config

    def summary(self) -> dict:
        return {"images_per_second": round(self.images_per_second, 1),
                "train_seconds": round(self.seconds, 1), "epochs_run": self.epochs_run,
                "best_epoch": self.best_epoch, "timing": self.timing}


def compile_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Adam, sparse categorical cross-entropy and accuracy, as the study (tests, benchmarks)."""
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fit_callbacks(n_images: int, *, patience: int = 4, restore_best: bool = True,
                  seed: int | None = None) -> tuple[Throughput, list]:
    """(meter, callbacks) of every fit: EarlyStopping, ReduceLROnPlateau, fitlog's logs."""
    meter = Throughput(n_images, log=under_runner())
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=restore_best)
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6)
    return meter, [meter, stop, plateau, *fitlog.callbacks(_SEED if seed is None else seed)]


def fit(model: keras.Model, train: Split, valid: Split, *, epochs: int, batch_size: int = 32,
        seed: int = 0, patience: int = 4) -> TrainResult:
    """model.fit (compiled) with validation and fit_callbacks, as the notebooks fit (tests)."""
    meter, callbacks = fit_callbacks(len(train), patience=patience, seed=seed)
    t0 = time.perf_counter()
    hist = model.fit(make_input(train, batch_size, seed=seed),
                     validation_data=make_input(valid, 512, shuffle=False), epochs=epochs,
                     callbacks=callbacks, verbose=verbosity(), shuffle=False)  # make_input shuffles
    return train_result(hist, meter, time.perf_counter() - t0)


def verbosity():
    """model.fit's verbose: 0 under the runner (the meter prints a line per epoch), else a bar."""
    return 0 if under_runner() else "auto"


def train_result(hist: keras.callbacks.History, meter: Throughput, seconds: float) -> TrainResult:
    """model.fit's History (with fit_callbacks') as a TrainResult; its seconds join the ledger."""
    spent = meter.timing()
    for phase in ("trace", "steps", "validation"):
        artifacts.add_seconds(phase, spent.get(phase, 0.0))
    rows = [(e + 1, "valid" if key.startswith("val_") else "train", key.removeprefix("val_"),
             float(v)) for key, values in hist.history.items() for e, v in enumerate(values)]
    return TrainResult(pd.DataFrame(rows, columns=["epoch", "split", "metric", "value"]),
                       statistics.median(meter.n_images / max(t, 1e-9) for t in meter.train),
                       seconds, len(meter.train),
                       int(pd.Series(hist.history["val_loss"]).idxmin()) + 1, spent,
                       meter.optimizer)
