"""Transfer learning's plumbing: a keras.applications base, its weights and its preprocessing."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import keras
from keras import layers

from helpers.base import StudyError, escape, resolve

# caffe: BGR 0..255 minus ImageNet means; tf: [-1, 1]; torch: ImageNet mean/std; raw255: 0..255
# (models that normalise inside themselves)
_RAW255 = ("EfficientNet", "ConvNeXt", "MobileNetV3", "RegNet", "ResNetRS")


def preprocessing_mode(base_model: str) -> str:
    """The input convention of a keras.applications model: caffe | tf | torch | raw255."""
    if base_model.startswith(_RAW255):
        return "raw255"
    if base_model.startswith("DenseNet"):
        return "torch"
    if base_model.startswith("VGG") or (base_model.startswith("ResNet") and "V2" not in base_model):
        return "caffe"
    return "tf"


@keras.saving.register_keras_serializable(package="helpers")
class BasePreprocess(layers.Layer):
    """(b, h, w, 3) RGB in [0, 1] -> the input a pretrained base expects (preprocessing_mode);
    not a Lambda, so saved models reload after `import helpers.models.pretrained`."""

    MODES = ("caffe", "tf", "torch", "raw255")

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"BasePreprocess: mode {mode!r} not in {self.MODES}")
        self.mode = mode

    def call(self, x):
        if self.mode == "raw255":
            return x * 255.0
        return keras.applications.imagenet_utils.preprocess_input(
            x * 255.0, data_format="channels_last", mode=self.mode)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclass
class BaseChoice:
    """A built base network and whether its weights are really pretrained (with why not)."""

    model: keras.Model
    pretrained: bool
    weights: str  # imagenet | a file path | none
    reason: str


def build_base(base_model: str = "VGG19", input_size: int = 32, weights: str = "imagenet",
               alpha: float = 1.0, allow_random_fallback: bool = False) -> BaseChoice:
    """The base without its top, (b, s, s, 3) -> feature maps; weights "imagenet", a file or "none"
    (ImageNet's out of reach: random ones only if allowed, for synthetic data, else StudyError)."""
    build = getattr(keras.applications, base_model, None)
    if not callable(build):
        raise StudyError(
            f"base_model {base_model!r}: not a keras.applications model (e.g. VGG19, MobileNet)")
    kwargs = {"include_top": False, "input_shape": (input_size, input_size, 3)}
    if "alpha" in inspect.signature(build).parameters:
        kwargs["alpha"] = alpha
    if weights in ("none", "", None):
        return BaseChoice(build(weights=None, **kwargs), False, "none",
                          "weights='none' asked for random initial weights")
    if weights != "imagenet":
        path = resolve(weights)
        if not path.is_file():
            raise StudyError(f"weights={weights!r}: no such file ({path}); give a weights file for "
                             f"{base_model} without its top, 'imagenet' or 'none'")
        try:
            model = build(weights=str(path), **kwargs)
        except (OSError, ValueError) as err:  # not HDF5, or another network's weights
            raise StudyError(f"weights={weights!r}: not {base_model}'s weights without its top "
                             f"(alpha={alpha}) ({str(err).splitlines()[0][:120]})") from None
        return BaseChoice(model, True, str(path), f"ImageNet weights loaded from {path.name}")
    try:
        return BaseChoice(build(weights="imagenet", **kwargs), True, "imagenet",
                          "ImageNet weights (Keras' release)")
    except Exception as err:  # Keras raises a bare Exception for a failed download
        detail = str(err).split(" -- ")[-1][:120]  # Keras: "URL fetch failure on URL: None -- why"
        why = f"ImageNet weights for {base_model} could not be downloaded ({detail})"
        if not allow_random_fallback:
            raise StudyError(f"weights='imagenet': {why}; connect to the internet once (Keras "
                             "caches them in ~/.keras/models), or pass a local file with -p "
                             "weights=PATH") from None
    return BaseChoice(build(weights=None, **kwargs), False, "none",
                      f"{why}; random initial weights instead")


def base_note(choice: BaseChoice, base_model: str) -> str:
    """Markdown: where the base's weights came from, or that this is not transfer learning."""
    if choice.pretrained:
        return f"Base `{base_model}`: {escape(choice.reason)}."
    return (f"**This run is not transfer learning.** {escape(choice.reason)}. The base starts from "
            "random weights; its numbers say nothing about pretrained features.")
