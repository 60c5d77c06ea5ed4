"""Keras preprocessing layers as make_input's augment: seeded by each batch's seed pair."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from helpers import backend
from helpers.data.dataset import Split


class _BatchSeeds(keras.random.SeedGenerator):
    """One batch's stateless seeds: its seed pair folded with a draw count (Keras' SeedGenerator is
    a variable, not reproducible under a parallel tf.data map); portable: SeedSequence on the
    host, else TensorFlow's fold_in (a trace-time count, the same for every batch)."""

    def __init__(self, seed_pair, portable: bool = False):  # no variable: no super().__init__
        self._pair, self._portable, self._draws = seed_pair, portable, 0

    def next(self, ordered: bool = True):
        self._draws += 1
        if self._portable:
            pair = [int(p) for p in self._pair]
            state = np.random.SeedSequence([*pair, self._draws]).generate_state(1)[0]
            return backend.draw_seed(int(state) & 0x7FFFFFFF)
        import tensorflow as tf

        return tf.random.experimental.stateless_fold_in(tf.cast(self._pair, tf.int64), self._draws)


def from_layers(*chain: keras.layers.Layer, portable: bool | None = None) -> Callable:
    """fn(images (b, 32, 32, 3) float32 in [0, 1], seed_pair (2,) int) -> the same: the layers in
    order; portable (default off TensorFlow): NumPy in and out, else tf tensors for tf.data."""
    portable = not backend.is_tensorflow() if portable is None else portable

    def augment(images, seed_pair):
        seeds = _BatchSeeds(seed_pair, portable)
        out = keras.ops.convert_to_tensor(images, "float32")
        for layer in chain:
            transform = layer.get_random_transformation(out, training=True, seed=seeds)
            out = layer.transform_images(out, transform, training=True)
        out = keras.ops.clip(keras.ops.cast(out, "float32"), 0.0, 1.0)
        return keras.ops.convert_to_numpy(out) if portable else out

    augment.portable = portable
    return augment


def doubled_split(split: Split, fn: Callable, seed: int = 0, batch_size: int = 256) -> Split:
    """The study's doubled set: split followed by one augmented copy drawn once (2n rows)."""
    return Split(np.concatenate([split.x, augmented_copy(split.x, fn, seed, batch_size)]),
                 np.concatenate([split.y, split.y]),
                 np.concatenate([split.names, np.char.add(split.names.astype(str), "#augmented")]),
                 np.concatenate([split.sources, split.sources]))


def augmented_copy(x: np.ndarray, fn: Callable, seed: int = 0, batch_size: int = 256):
    """One augmented copy of uint8 images x (n, 32, 32, 3), batches seeded (seed, start), uint8."""
    copies = [x[:0]]
    for start in range(0, len(x), batch_size):
        out = fn(x[start : start + batch_size].astype(np.float32) / 255.0, (seed, start))
        copies.append(np.rint(keras.ops.convert_to_numpy(out) * 255.0).astype(np.uint8))
    return np.concatenate(copies)


def apply(fn: Callable, images, seed: int = 0):
    """fn on a NumPy batch (uint8, or float in [0, 1]) -> float32 (b, 32, 32, 3) in [0, 1]."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return keras.ops.convert_to_numpy(fn(x, (seed, 0)))
