"""TensorBoard logs of every fit: epoch metrics and the learning rate as scalars, in the layout
and tags keras.callbacks.TensorBoard writes (<logdir>/train/, <logdir>/validation/; epoch_loss,
epoch_accuracy, epoch_learning_rate), by tensorboardX on every backend. Not Keras' callback: it
needs TensorFlow (kept out of the JAX backend) and writes tensor summaries, not scalars.

CINIC10_TENSORBOARD names a notebook's folder (the runner sets <run>/tensorboard/<notebook>);
each fit logs to <that>/<arm>_s<seed>/ (_2 for a second fit of both), the arm being a trial's
folder name inside run_trials and the notebook's short name otherwise. Unset: nothing written."""

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


class EpochLog(keras.callbacks.Callback):
    """Each epoch's logs (train/ and validation/) and learning rate as TensorBoard scalars."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        self.writers = {s: SummaryWriter(str(self.path / s)) for s in ("train", "validation")}

    def on_epoch_end(self, epoch, logs=None):
        lr = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        for key, value in {"learning_rate": lr, **(logs or {})}.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self.writers[split].add_scalar(f"epoch_{tag}", float(value), epoch)
        for writer in self.writers.values():
            writer.flush()  # each epoch on disk as it ends (a killed run's too)

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()


def callbacks(seed: int) -> list:
    """[EpochLog] into this fit's folder (emptied of an earlier process's logs) when
    CINIC10_TENSORBOARD is set, else []."""
    root = os.environ.get(ENV)
    if not root:
        return []
    name = _ARM[-1] if _ARM else Path(root).name.split("_", 1)[-1]
    path = Path(fresh(str(Path(root) / f"{name}_s{seed}"), _USED))
    shutil.rmtree(path, ignore_errors=True)  # a rerun's logs replace the last run's
    return [EpochLog(path)]
