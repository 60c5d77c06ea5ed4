"""Evaluation: accuracy and loss, confusion matrix, per class and per image source."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from helpers import artifacts
from helpers.data.dataset import Split
from helpers.data.pipeline import make_input


def evaluate(model: keras.Model, split: Split, classes: list[str], batch_size: int = 512,
             name: str = "test") -> dict:
    """<name>_accuracy, <name>_loss, n_<name>, accuracy per class and source, confusion matrix."""
    with artifacts.timed("evaluation"):  # (n, 10) class probabilities
        probs = model.predict(make_input(split, batch_size, shuffle=False), verbose=0)
    pred = probs.argmax(axis=1)
    y, correct = split.y, pred == split.y
    cm = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(cm, (y, pred), 1)
    out = {f"{name}_accuracy": float(correct.mean()),
           f"{name}_loss": float(np.mean(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1)))),
           f"n_{name}": int(len(y)),
           "per_class": {c: float(correct[y == i].mean())
                         for i, c in enumerate(classes) if (y == i).any()},
           "confusion_matrix": cm.tolist()}
    sources = np.unique(split.sources)
    if len(sources) > 1:
        out["per_source"] = {s: float(correct[split.sources == s].mean()) for s in sources}
        out["per_source_count"] = {s: int((split.sources == s).sum()) for s in sources}
    return out


class Snapshot(keras.callbacks.Callback):
    """At the end of epoch `epoch` (from 1): the weights and evaluate() of each named split."""

    def __init__(self, epoch: int, splits: dict[str, Split], classes: list[str]):
        super().__init__()
        self.epoch, self.splits, self.classes = epoch, splits, classes
        self.weights, self.metrics = None, {}  # the weights' list, {split: evaluate()}

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.weights = self.model.get_weights()
            self.metrics = {name: evaluate(self.model, split, self.classes, name=name)
                            for name, split in self.splits.items()}


def per_class_table(metrics: dict) -> pd.DataFrame:
    """per_class accuracies as a sorted table."""
    return (pd.Series(metrics["per_class"], name="accuracy").rename_axis("class")
            .sort_values(ascending=False).to_frame())
