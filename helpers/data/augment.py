"""The study's five augmentations as batched, seeded functions for pipeline.make_input(augment=):
Keras' own preprocessing layers, driven by the batch's seed pair so a run is reproducible.
On TensorFlow they run inside tf.data; on another backend, on NumPy batches (arrays.py)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from helpers import backend
from helpers.data import AUGMENTATIONS

AugmentFn = Callable  # (images, seed_pair) -> images: tf tensors on TensorFlow, else NumPy
NAMES = AUGMENTATIONS  # the study's five, named in helpers.data (profiles check them there)
# their strengths are 04's parameters (the study's where it gives them: experiments/protocol.py)


class _BatchSeeds(keras.random.SeedGenerator):
    """Stateless seeds for one batch: the batch's seed pair folded with a draw counter, so each
    random draw of a layer differs while the whole call stays a pure function of the pair.
    (Keras' layers accept only a SeedGenerator; its own one is a variable, whose order of
    updates under a parallel tf.data map is not reproducible.)"""

    def __init__(self, seed_pair):  # no variable: deliberately not super().__init__
        import tensorflow as tf

        self._pair = tf.cast(seed_pair, tf.int64)
        self._draws = 0

    def next(self, ordered: bool = True):
        import tensorflow as tf

        self._draws += 1  # a trace-time count: the same for every batch of a traced map
        return tf.random.experimental.stateless_fold_in(self._pair, self._draws)


def study_layer(name: str, strength) -> layers.Layer:
    """One of the study's augmentations as a Keras layer on [0, 1] images. strength: brightness
    shift as a share of the range; flip mode; rotation as a share of a full turn (< 0.25, i.e.
    under 90 degrees); zoom-in share (0.5 = up to 50%); cut-out's largest share of the area."""
    if name == "brightness":
        return layers.RandomBrightness(float(strength), value_range=(0.0, 1.0))
    if name == "flip":
        return layers.RandomFlip(str(strength))
    if name == "rotation":
        if not 0 < float(strength) < 0.25:
            raise ValueError(f"rotation strength {strength}: a share of a full turn in (0, 0.25)")
        return layers.RandomRotation(float(strength), fill_mode="reflect")
    if name == "zoom":
        if not 0 < float(strength) < 1:
            raise ValueError(f"zoom strength {strength}: the largest zoom-in share, in (0, 1)")
        return layers.RandomZoom(height_factor=(-float(strength), 0.0), fill_mode="reflect")
    if name == "cutout":
        # factor (1, 1): erase in every image; a black patch of 2%..strength of the area
        return layers.RandomErasing(
            factor=(1.0, 1.0),
            scale=(0.02, float(strength)),
            fill_value=0.0,
            value_range=(0.0, 1.0),
        )
    raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(NAMES)}")


def from_layers(*chain: layers.Layer) -> AugmentFn:
    """fn(images (b, 32, 32, 3) float32 in [0, 1], seed_pair (2,) int) -> images, same shape,
    dtype and range: the layers applied in order, each drawing from the seed pair only. On a
    backend other than TensorFlow: the same on NumPy batches (arrays.from_layers)."""
    if not backend.is_tensorflow():
        from . import arrays

        return arrays.from_layers(*chain)
    import tensorflow as tf

    def augment(images, seed_pair):
        seeds = _BatchSeeds(seed_pair)
        out = images
        for layer in chain:
            transform = layer.get_random_transformation(out, training=True, seed=seeds)
            out = layer.transform_images(out, transform, training=True)
        return tf.clip_by_value(tf.cast(out, tf.float32), 0.0, 1.0)

    return augment


def make_augment(name: str, strength) -> AugmentFn:
    """The augmentation `name` at `strength` (see study_layer) as a make_input augment function."""
    return from_layers(study_layer(name, strength))


def study_augmentations(names, strengths: dict) -> dict[str, AugmentFn]:
    """The named augmentations (of NAMES) at their strengths (see study_layer; notebook 04's
    parameters), as make_input augment functions by name."""
    check_names(names, strengths)
    return {name: make_augment(name, strengths[name]) for name in names}


def check_names(names, strengths: dict) -> None:
    """ValueError unless every name is one of NAMES and has a strength."""
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"augmentations {unknown}: unknown; known: {', '.join(NAMES)}")
    missing = [n for n in names if n not in strengths]
    if missing:
        raise ValueError(f"augmentations {missing}: no strength given (04's parameters name one "
                         "for each)")


def doubled_split(split, fn: AugmentFn, seed: int = 0, batch_size: int = 256):
    """The study's doubled training set: split's images followed by one augmented copy of each,
    drawn once here (seeded per batch), so every epoch sees the very same 2n images. The copy is
    rounded back to uint8 like the originals (n, 32, 32, 3) -> Split of 2n rows."""
    from helpers.data.dataset import Split

    if getattr(fn, "portable", False):  # another backend: NumPy batches, no TensorFlow
        from .arrays import doubled_copy

        copies = [doubled_copy(split.x, fn, seed, batch_size)]
    else:
        copies = _tf_copies(split.x, fn, seed, batch_size)
    x = np.concatenate([split.x, *copies]) if len(split) else split.x
    return Split(
        x,
        np.concatenate([split.y, split.y]),
        np.concatenate([split.names, np.char.add(split.names.astype(str), "#augmented")]),
        np.concatenate([split.sources, split.sources]),
    )


def _tf_copies(x_all: np.ndarray, fn: AugmentFn, seed: int, batch_size: int) -> list:
    """doubled_split's augmented copy on TensorFlow, batch by batch (uint8 arrays)."""
    import tensorflow as tf

    copies = []
    for start in range(0, len(x_all), batch_size):
        chunk = x_all[start : start + batch_size]
        out = fn(tf.cast(chunk, tf.float32) / 255.0, tf.constant([seed, start], tf.int64))
        copies.append(np.rint(out.numpy() * 255.0).astype(np.uint8))
    return copies


def apply(fn: AugmentFn, images, seed: int = 0):
    """fn on a NumPy batch (uint8 0..255 or float in [0, 1]) -> float32 (b, 32, 32, 3) in [0, 1],
    for figures."""
    if getattr(fn, "portable", False):
        x = np.asarray(images)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        return fn(x, (seed, 0))
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    x = tf.cast(x, tf.float32) / 255.0 if x.dtype == tf.uint8 else tf.cast(x, tf.float32)
    return fn(x, tf.constant([seed, 0], tf.int64)).numpy()
