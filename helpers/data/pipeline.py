"""Batches for fit from the decoded uint8 arrays: tf.data on TensorFlow, else a PyDataset."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import suppress

import keras
import numpy as np

from helpers import backend
from helpers.data.dataset import Split


def set_threads(n: int | None = None) -> None:
    """TensorFlow: n cores intra-op, two inter-op (measured best on small CPU boxes; XLA: all)."""
    n = n or os.cpu_count() or 1
    if backend.is_tensorflow():
        import tensorflow as tf

        with suppress(RuntimeError):  # already initialised in this process: keep what is set
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, n))


def make_input(split: Split, batch_size: int = 32, *, shuffle: bool = True, seed: int = 0,
               augment: Callable | None = None, repeat_augmented: bool = False):
    """Batches of (images (b, 32, 32, 3) float32 in [0, 1], labels (b,) int32) gathered from the
    uint8 split by seeded per-epoch shuffled indices: a tf.data.Dataset on TensorFlow, else an
    ArrayBatches. augment(images, seed_pair) runs per batch; repeat_augmented: each epoch holds
    the originals plus an augmented copy drawn anew (04's every_epoch)."""
    if not backend.is_tensorflow():
        return ArrayBatches(split, batch_size, shuffle=shuffle, seed=seed, augment=augment,
                            repeat_augmented=repeat_augmented)
    import tensorflow as tf

    x, y, n = tf.constant(split.x), tf.constant(split.y.astype(np.int32)), len(split)
    idx = tf.data.Dataset.range(2 * n if repeat_augmented else n)  # n..2n-1: augmented copies
    if shuffle:
        idx = idx.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)

    def gather(i):
        images = tf.cast(tf.gather(x, i % n), tf.float32) / 255.0
        if augment is not None:
            flags = i >= n if repeat_augmented else tf.ones_like(i, tf.bool)
            # a seed per batch derived from its first index keeps runs reproducible
            augmented = augment(images, tf.stack([tf.constant(seed, tf.int64), tf.reduce_min(i)]))
            images = tf.where(flags[:, None, None, None], augmented, images)
        return images, tf.gather(y, i % n)

    options = tf.data.Options()
    # tf.data tunes itself only with CINIC10_TF_AUTOTUNE=1: on 2 cores its tuning costs 03's short
    # trials a fifth of their time (docs/speed.md); the batches are the same either way.
    options.autotune.enabled = os.environ.get("CINIC10_TF_AUTOTUNE", "") not in ("", "0")
    batches = idx.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


class ArrayBatches(keras.utils.PyDataset):
    """make_input without tf.data (augment: a portable fn); batch i of epoch e is a pure function
    of (seed, e, i), e counting Keras' calls of on_epoch_end (one more than fit's epochs)."""

    def __init__(self, split: Split, batch_size: int = 32, *, shuffle: bool = True,
                 seed: int = 0, augment: Callable | None = None, repeat_augmented: bool = False):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = split.x, split.y.astype(np.int32)  # (n, 32, 32, 3) uint8, (n,)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.augment, self.repeat_augmented = augment, repeat_augmented
        self.size = len(split) * (2 if repeat_augmented else 1)
        self.epoch = -1
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        real = idx % len(self.x)
        images = self.x[real].astype(np.float32) / 255.0
        if self.augment is not None:
            flags = idx >= len(self.x) if self.repeat_augmented else np.ones(len(idx), bool)
            if flags.any():
                pair = (self.seed, self.epoch * 2 * self.size + int(idx.min()))
                images[flags] = self.augment(images[flags], pair)
        return images, self.y[real]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
                       if self.shuffle else np.arange(self.size))
