"""Input without tf.data, for every Keras backend: batches gathered from the in-memory uint8
cache by a keras.utils.PyDataset, augmented (augment.from_layers, portable) with seeds derived
from (seed, epoch, batch), so a run is reproducible on its backend."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from helpers.data.dataset import Split

# fn(images (b, 32, 32, 3) float32 in [0, 1] as NumPy, seed (int, int)) -> NumPy, same shape:
# augment.from_layers(..., portable=True), the one implementation of the seeded augmentations
PortableAugment = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


class ArrayBatches(keras.utils.PyDataset):
    """(images (b, 32, 32, 3) float32 in [0, 1], labels (b,) int32) from a Split's uint8 arrays.

    Each epoch shuffles indices with a generator seeded by (seed, epoch); with repeat_augmented
    the epoch holds the originals (indices < n) plus one augmented copy of each (>= n), drawn
    anew each epoch (04's every_epoch; the study's set, drawn once, is augment.doubled_split); otherwise augment (if given) applies to every
    image. Batch i of epoch e is a pure function of (seed, e, i): reproducible. (e counts Keras'
    calls of on_epoch_end: fit makes one more than the epochs it runs, the same in every run.)"""

    def __init__(
        self,
        split: Split,
        batch_size: int = 32,
        *,
        shuffle: bool = True,
        seed: int = 0,
        augment: PortableAugment | None = None,
        scale: bool = True,
        repeat_augmented: bool = False,
        with_labels: bool = True,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = split.x, split.y.astype(np.int32)  # (n, 32, 32, 3) uint8, (n,)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.augment, self.scale = augment, scale
        self.repeat_augmented, self.with_labels = repeat_augmented, with_labels
        self.size = len(split) * (2 if repeat_augmented else 1)
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.size)

    @property
    def num_batches(self) -> int:
        return -(-self.size // self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        n = len(self.x)
        real = idx % n
        images = self.x[real].astype(np.float32)
        if self.scale:
            images /= 255.0
        if self.augment is not None:
            flags = idx >= n if self.repeat_augmented else np.ones(len(idx), bool)
            if flags.any():
                # the batch's seed: the run's, the epoch and the batch's first index
                pair = (self.seed, self.epoch * 2 * self.size + int(idx.min()))
                augmented = self.augment(images[flags], pair)
                images[flags] = augmented
        if not self.with_labels:
            return (images,)
        return images, self.y[real]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._make_order()
