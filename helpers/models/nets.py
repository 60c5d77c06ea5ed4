"""The study's networks on (32, 32, 3) images in [0, 1] and its Elastic Net regulariser."""

from __future__ import annotations

import math
import re

import keras
import pandas as pd
from keras import layers, ops

N_CLASSES = 10


@keras.saving.register_keras_serializable(package="helpers")
class ElasticNetRegularization(keras.regularizers.Regularizer):
    """lam * (alpha * sum|w| + (1 - alpha) * sum w^2)."""

    def __init__(self, alpha: float = 0.5, lam: float = 0.01):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"ElasticNetRegularization: alpha must be in [0, 1], got {alpha}")
        if lam < 0:
            raise ValueError(f"ElasticNetRegularization: lam must be >= 0, got {lam}")
        self.alpha, self.lam, self.beta = float(alpha), float(lam), 1.0 - float(alpha)

    def __call__(self, w):
        return self.lam * (self.alpha * ops.sum(ops.abs(w)) + self.beta * ops.sum(ops.square(w)))

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "lam": self.lam}


@keras.saving.register_keras_serializable(package="helpers")
class TunableElasticNetDense(layers.Dense):
    """Dense(kernel_regularizer=ElasticNetRegularization(alpha, lam)) with λ, α and 1 − α held as
    non-trainable weights: one trace serves every α and λ (reuse), bitwise the same numbers."""

    def __init__(self, units: int, alpha: float = 0.5, lam: float = 0.01, **kwargs):
        ElasticNetRegularization(alpha, lam)  # the same checks of alpha and lam
        super().__init__(units, **kwargs)
        self.alpha_value, self.lam_value = float(alpha), float(lam)

    def build(self, input_shape):
        def weight(name: str, value: float):  # float32(value), as a constant would be
            return self.add_weight(name=name, shape=(), trainable=False,
                                   initializer=keras.initializers.Constant(value))

        self.lam = weight("lam", self.lam_value)
        self.alpha = weight("alpha", self.alpha_value)
        self.beta = weight("one_minus_alpha", 1.0 - self.alpha_value)  # in double, as the constant
        self.kernel_regularizer = _ElasticNetOf(self)
        super().build(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("kernel_regularizer", None)
        return {**config, "alpha": self.alpha_value, "lam": self.lam_value}


def count_params(model: keras.Model) -> int:
    """model.count_params() without TunableElasticNetDense's α, λ and 1 − α (settings)."""
    tunable = sum(isinstance(layer, TunableElasticNetDense) for layer in model.layers)
    return int(model.count_params()) - 3 * tunable


class _ElasticNetOf(ElasticNetRegularization):
    """ElasticNetRegularization's formula on a TunableElasticNetDense's λ, α and 1 − α weights."""

    def __init__(self, layer: TunableElasticNetDense):
        self.lam, self.alpha, self.beta = layer.lam, layer.alpha, layer.beta

    def get_config(self) -> dict:  # the layer's config holds α and λ (reuse's key drops them)
        return {}


def residual_block(x, filters: int, kernel_size: int = 3, name: str = "block",
                   bn_momentum: float = 0.9):
    """Two convolutions, each followed by batch norm and ReLU, plus the block input (through a
    1x1 projection where the channel count differs): (b, h, w, c) -> (b, h, w, filters).
    bn_momentum: 0.99 (Keras' default) is the study's; 0.9 settles in short runs."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
    for i in (1, 2):
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                          name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def create_resnet_model(n_blocks: int = 3, kernel_size: int = 3, dropout: float = 0.2,
                        base_filters: int = 32,
                        output_regularizer: keras.regularizers.Regularizer | None = None,
                        name: str | None = None, bn_momentum: float = 0.9,
                        tunable: bool = False) -> keras.Model:
    """The study's ResNet: n_blocks (1..5) residual blocks, each with 2x2 max pooling and dropout,
    filters doubling (capped at 256), a softmax classifier: (b, 10). tunable: α, λ as weights."""
    if not 1 <= n_blocks <= 5:
        raise ValueError(
            f"create_resnet_model: n_blocks must be in 1..5 on 32x32 input, got {n_blocks}")
    x = inputs = keras.Input((32, 32, 3), name="image")
    for b in range(n_blocks):
        filters = min(base_filters * 2**b, 256)
        x = residual_block(x, filters, kernel_size, f"block{b + 1}", bn_momentum)
        x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
        x = layers.Dropout(dropout, name=f"block{b + 1}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    head = {"activation": "softmax", "dtype": "float32", "name": "classifier"}
    if tunable and isinstance(output_regularizer, ElasticNetRegularization):
        classifier = TunableElasticNetDense(N_CLASSES, output_regularizer.alpha,
                                            output_regularizer.lam, **head)
    else:
        classifier = layers.Dense(N_CLASSES, kernel_regularizer=output_regularizer, **head)
    return keras.Model(inputs, classifier(x), name=name or f"resnet_b{n_blocks}_k{kernel_size}")


def create_simple_cnn(name: str = "simple_cnn") -> keras.Model:
    """04's simple model: three convolutions with max pooling, three dense layers: (b, 10)."""
    x = inputs = keras.Input((32, 32, 3), name="image")
    for i, filters in enumerate((32, 64, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="dense1")(x)
    x = layers.Dense(128, activation="relu", name="dense2")(x)
    outputs = layers.Dense(N_CLASSES, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def deployable(model: keras.Model) -> keras.Model:
    """model behind Rescaling(1/255): raw (b, 32, 32, 3) pixels in 0..255 -> (b, 10) probabilities."""
    inputs = keras.Input((32, 32, 3), name="raw_image")
    x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_raw")


def layer_table(model: keras.Model) -> pd.DataFrame:
    """The report's model summary: a row per layer, residual block (blockN_*) or nested model."""
    rows = pd.DataFrame([(re.sub(r"^(block\d+)_.*", r"\1", layer.name), type(layer).__name__,
                          str(tuple(layer.output.shape[1:])), layer.count_params())
                         for layer in model.layers],
                        columns=["layer", "layers", "output shape", "parameters"])
    table = rows.groupby("layer", sort=False).agg({"layers": lambda kinds: ", ".join(
        dict.fromkeys(kinds)), "output shape": "last", "parameters": "sum"})
    table.loc["total"] = ["", "", model.count_params()]
    table.loc["trainable"] = ["", "", sum(math.prod(w.shape) for w in model.trainable_weights)]
    return table
