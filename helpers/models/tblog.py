"""TensorBoard logs of every fit: epoch metrics and the learning rate as scalars, in the layout
and tags keras.callbacks.TensorBoard writes (<logdir>/train/, <logdir>/validation/;
epoch_loss, epoch_accuracy, epoch_learning_rate), by tensorboardX on every backend. Not Keras'
callback: it needs TensorFlow (kept out of the JAX backend), writes tensor summaries rather
than scalars (the two backends' files would differ) and traces the graph.

CINIC10_TENSORBOARD names a notebook's folder (the runner sets <run>/tensorboard/<notebook>);
each fit logs to <that>/<arm>_s<seed>/, the arm being a trial's folder name inside run_trials
and the notebook's short name otherwise; a second fit of the same arm and seed gets _2.
Without the variable nothing is written."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import keras
from tensorboardX import SummaryWriter

from helpers.models.mlflowlog import TENSORBOARD as ENV
from helpers.models.mlflowlog import fresh

_ARM: list[str] = []
_USED: set[str] = set()  # the folders this process has logged to


@contextlib.contextmanager
def arm(name: str):
    """Fits inside the block log under name (a trial's id)."""
    _ARM.append(name)
    try:
        yield
    finally:
        _ARM.pop()


def arm_name(trial_id: str, config: dict) -> str:
    """A trial's folder name: its config but the seed, then its id's first 8 hex (unique),
    e.g. 'augmentation=flip-03f8ab52' or 'n_blocks=1,kernel_size=2-52a5505c'."""
    words = ",".join(f"{k}={v}" for k, v in config.items() if k != "seed")
    words = re.sub(r"[^A-Za-z0-9.,=+-]+", "_", words)[:60]
    short = trial_id.rsplit("-", 1)[-1][:8]
    return f"{words}-{short}" if words else trial_id


def folder(seed: int) -> Path | None:
    """This fit's log folder (None when logging is off), emptied of an earlier process's logs."""
    root = os.environ.get(ENV)
    if not root:
        return None
    root = Path(root)
    name = _ARM[-1] if _ARM else root.name.split("_", 1)[-1]
    path = Path(fresh(str(root / f"{name}_s{seed}"), _USED))
    shutil.rmtree(path, ignore_errors=True)  # a rerun's logs replace the last run's
    return path


class EpochLog(keras.callbacks.Callback):
    """Each epoch's logs (train/ and validation/) and learning rate as TensorBoard scalars."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self._writers: dict[str, SummaryWriter] = {}

    def _writer(self, split: str) -> SummaryWriter:
        if split not in self._writers:
            self._writers[split] = SummaryWriter(str(self.path / split))
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if "learning_rate" not in logs:
            lr = self.model.optimizer.learning_rate  # a Keras variable (.numpy(): no warning)
            logs["learning_rate"] = lr.numpy() if hasattr(lr, "numpy") else lr
        for key, value in logs.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(split).add_scalar(f"epoch_{tag}", float(value), epoch)
        for writer in self._writers.values():
            writer.flush()  # each epoch on disk as it ends (a killed run's too)

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers.clear()


def callbacks(seed: int) -> list:
    """[EpochLog] for this fit when CINIC10_TENSORBOARD is set, else []."""
    path = folder(seed)
    return [] if path is None else [EpochLog(path)]
