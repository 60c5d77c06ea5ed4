"""The study's networks (Functional API). All take (32, 32, 3) images scaled to [0, 1];
`deployable` wraps any of them to take raw 0-255 pixels, as every saved model does."""

from __future__ import annotations

import keras
from keras import layers

N_CLASSES = 10


def residual_block(
    x, filters: int, kernel_size: int = 3, name: str = "block", bn_momentum: float = 0.9
):
    """Two convolutions, each followed by batch norm and ReLU; the block input (through a 1x1
    projection where the channel count differs) is added to the second one's output.
    (b, h, w, c) -> (b, h, w, filters). bn_momentum: the notebooks' parameter; 0.99 (Keras'
    default) is the study's, 0.9 suits short runs, which otherwise evaluate with unsettled
    running statistics."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
    for i in (1, 2):
        x = layers.Conv2D(
            filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv{i}"
        )(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def create_resnet_model(
    n_blocks: int = 3,
    kernel_size: int = 3,
    dropout: float = 0.2,
    base_filters: int = 32,
    output_regularizer: keras.regularizers.Regularizer | None = None,
    name: str | None = None,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """The study's ResNet: n_blocks residual blocks, each followed by 2x2 max pooling and dropout,
    then a softmax classifier (regularised if asked). Filters double per block (capped at 256);
    valid for n_blocks 1..5 (32x32 -> 1x1) and any kernel_size >= 1. Output (b, 10) probabilities.
    bn_momentum: see residual_block (0.99 is Keras' default, which the study used)."""
    if not 1 <= n_blocks <= 5:
        raise ValueError(
            f"create_resnet_model: n_blocks must be in 1..5 on 32x32 input, got {n_blocks}"
        )
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for b in range(n_blocks):
        filters = min(base_filters * 2**b, 256)
        x = residual_block(x, filters, kernel_size, f"block{b + 1}", bn_momentum)
        x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
        x = layers.Dropout(dropout, name=f"block{b + 1}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(
        N_CLASSES,
        activation="softmax",
        dtype="float32",
        kernel_regularizer=output_regularizer,
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=name or f"resnet_b{n_blocks}_k{kernel_size}")


def create_simple_cnn(name: str = "simple_cnn") -> keras.Model:
    """The study's simple model for the augmentation comparison: three convolutions with max
    pooling, then three dense layers. (b, 32, 32, 3) -> (b, 10)."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for i, filters in enumerate((32, 64, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="dense1")(x)
    x = layers.Dense(128, activation="relu", name="dense2")(x)
    outputs = layers.Dense(N_CLASSES, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def deployable(model: keras.Model) -> keras.Model:
    """model behind a Rescaling(1/255) layer: takes raw (b, 32, 32, 3) pixels in 0..255 and
    returns class probabilities in CINIC-10's class order."""
    inputs = keras.Input((32, 32, 3), name="raw_image")
    x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_raw")
