"""Transfer learning: a keras.applications base (VGG19 by default) with its own preprocessing
inside the model, the study's dense head, and the frozen-then-unfrozen training stages."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import keras
from keras import layers

from .errors import StudyError
from .models import N_CLASSES
from .paths import resolve
from .training import TrainResult, compile_model, fit

# What each family expects: caffe = BGR 0..255 minus ImageNet means (VGG, ResNet v1);
# tf = [-1, 1] (MobileNet v1/v2, Inception, Xception, ResNet v2); torch = ImageNet mean/std;
# raw255 = plain 0..255 (models that normalise inside themselves: EfficientNet, ConvNeXt, ...).
_RAW255 = ("EfficientNet", "ConvNeXt", "MobileNetV3", "RegNet", "ResNetRS")
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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
    """(b, h, w, 3) RGB in [0, 1] -> the input a pretrained base expects (see preprocessing_mode).
    A real layer, not a Lambda, so saved models reload after `import helpers.transfer`."""

    MODES = ("caffe", "tf", "torch", "raw255")

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"BasePreprocess: mode {mode!r} not in {self.MODES}")
        self.mode = mode

    def call(self, x):
        ops = keras.ops
        if self.mode == "caffe":
            return ops.flip(x * 255.0, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, x.dtype)
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, x.dtype)
            return (x - mean) / ops.convert_to_tensor(_TORCH_STD, x.dtype)
        return x * 255.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclass
class BaseChoice:
    """A built base network and whether its weights are really pretrained (with why not)."""

    model: keras.Model
    pretrained: bool
    weights: str  # imagenet | a file path | none
    reason: str


def _constructor(base_model: str):
    fn = getattr(keras.applications, base_model, None)
    if fn is None or not callable(fn):
        raise StudyError(
            f"base_model {base_model!r}: not a keras.applications model (e.g. VGG19, MobileNet)"
        )
    return fn


def _build(base_model: str, input_size: int, weights, alpha: float) -> keras.Model:
    fn = _constructor(base_model)
    kwargs = {"include_top": False, "weights": weights, "input_shape": (input_size, input_size, 3)}
    if "alpha" in inspect.signature(fn).parameters:
        kwargs["alpha"] = alpha
    return fn(**kwargs)


def build_base(
    base_model: str = "VGG19",
    input_size: int = 32,
    weights: str = "imagenet",
    alpha: float = 1.0,
    allow_random_fallback: bool = False,
) -> BaseChoice:
    """The base without its top, (b, s, s, 3) -> feature maps. weights: "imagenet" (Keras
    downloads once and caches), a local weights file, or "none". When ImageNet weights cannot
    be had, fall back to random weights only if allowed (synthetic data); else StudyError."""
    if weights in ("none", "", None):
        model = _build(base_model, input_size, None, alpha)
        return BaseChoice(model, False, "none", "weights='none' asked for random initial weights")
    if weights != "imagenet":
        path = resolve(weights)
        if not path.is_file():
            raise StudyError(
                f"weights={weights!r}: no such file ({path}); give a weights file for "
                f"{base_model} without its top, 'imagenet' or 'none'"
            )
        model = _build(base_model, input_size, str(path), alpha)
        return BaseChoice(model, True, str(path), f"ImageNet weights loaded from {path.name}")
    try:
        model = _build(base_model, input_size, "imagenet", alpha)
        return BaseChoice(model, True, "imagenet", "ImageNet weights (Keras' release)")
    except Exception as err:  # Keras raises a bare Exception for a failed download
        detail = str(err).split(" -- ")[-1][:120]  # Keras: "URL fetch failure on URL: None -- why"
        why = f"ImageNet weights for {base_model} could not be downloaded ({detail})"
        if not allow_random_fallback:
            raise StudyError(
                f"weights='imagenet': {why}; connect to the internet once (Keras caches them in "
                "~/.keras/models), or pass a local file with -p weights=PATH"
            ) from None
    model = _build(base_model, input_size, None, alpha)
    return BaseChoice(model, False, "none", f"{why}; random initial weights instead")


def build_transfer_model(
    base: keras.Model,
    base_model: str = "VGG19",
    units: int = 512,
    n_dense: int = 3,
    dropout: float = 0.4,
) -> keras.Model:
    """(b, 32, 32, 3) in [0, 1] -> resize to the base's input size -> the base's preprocessing
    -> base (inference mode) -> global average pooling -> n_dense x Dense(units, relu)
    -> Dropout -> (b, 10) softmax, the study's head."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    size = base.input_shape[1]
    if size != 32:
        x = layers.Resizing(size, size, interpolation="bilinear", name="upscale")(x)
    x = BasePreprocess(preprocessing_mode(base_model), name="base_preprocess")(x)
    x = base(x, training=False)  # batch norm (if any) stays in inference mode, even unfrozen
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    for i in range(n_dense):
        x = layers.Dense(units, activation="relu", name=f"head_dense{i + 1}")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(N_CLASSES, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"transfer_{base.name}")


def base_of(model: keras.Model) -> keras.Model:
    """The pretrained base inside a transfer model (its only nested model)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"{model.name}: expected one nested base model, found {len(nested)}")
    return nested[0]


def train_stage(
    model: keras.Model,
    *,
    base_trainable: bool,
    learning_rate: float,
    train,
    valid,
    **fit_kwargs,
) -> TrainResult:
    """Set the base (un)frozen, recompile (needed after changing `trainable`), fit."""
    base_of(model).trainable = base_trainable
    compile_model(model, learning_rate)
    return fit(model, train, valid, **fit_kwargs)


def joined_history(frozen: TrainResult, unfrozen: TrainResult):
    """Both stages' tidy histories as one, epochs numbered on, with a column `stage`."""
    import pandas as pd

    second = unfrozen.history.assign(epoch=unfrozen.history.epoch + frozen.epochs_run)
    return pd.concat(
        [frozen.history.assign(stage="frozen"), second.assign(stage="unfrozen")],
        ignore_index=True,
    )


# --- 05's experiment: both stages once per seed, and the study's claims C9-C11 --------------------


@dataclass
class SeedRun:
    """One seed's transfer model after both stages, with what each stage left."""

    seed: int
    choice: BaseChoice
    model: keras.Model
    frozen: TrainResult
    unfrozen: TrainResult
    frozen_valid_accuracy: float  # after stage 1, best weights restored
    frozen_test: dict
    metrics: dict  # after stage 2

    @property
    def first_unfrozen_valid_accuracy(self) -> float:
        h = self.unfrozen.history
        return float(h[(h.split == "valid") & (h.metric == "accuracy") & (h.epoch == 1)].value.iloc[0])


def train_seeds(
    train, valid, test, classes: list[str], seeds: list[int], *, base: dict, head: dict,
    head_learning_rate: float, finetune_learning_rate: float, head_epochs: int,
    finetune_epochs: int, fit_args: dict, mixed_precision: bool = False,
) -> list[SeedRun]:
    """For each seed: a fresh base (build_base(**base); pretrained weights are the same for
    every seed, the head's initialisation is not) and head (build_transfer_model(**head)),
    stage 1 on the frozen base, stage 2 unfrozen; test accuracy after each."""
    from . import evaluation, training
    from .progress import progress_bar

    runs = []
    for seed in progress_bar(iterable=seeds, desc="05 seeds"):
        keras.backend.clear_session()
        training.setup(seed, mixed_precision)
        choice = build_base(**base)
        model = build_transfer_model(choice.model, **head)
        args = {**fit_args, "train": train, "valid": valid, "seed": seed}
        frozen = train_stage(model, base_trainable=False, learning_rate=head_learning_rate,
                             epochs=head_epochs, **args)
        frozen_valid = evaluation.evaluate(model, valid, classes)["test_accuracy"]
        frozen_test = evaluation.evaluate(model, test, classes)
        unfrozen = train_stage(model, base_trainable=True, learning_rate=finetune_learning_rate,
                               epochs=finetune_epochs, **args)
        metrics = evaluation.evaluate(model, test, classes)
        runs.append(SeedRun(seed, choice, model, frozen, unfrozen, frozen_valid, frozen_test,
                            metrics))
        print(f"seed {seed}: frozen {frozen.epochs_run} epochs ({frozen.images_per_second:.0f} "
              f"images/s), test {frozen_test['test_accuracy']:.4f}; unfrozen "
              f"{unfrozen.epochs_run} epochs ({unfrozen.images_per_second:.0f} images/s), test "
              f"{metrics['test_accuracy']:.4f}", flush=True)
    return runs


def history(runs: list[SeedRun]):
    """Every seed's joined two-stage history, with columns `stage` and `seed`."""
    import pandas as pd

    return pd.concat([joined_history(r.frozen, r.unfrozen).assign(seed=r.seed) for r in runs],
                     ignore_index=True)


def seed_table(runs: list[SeedRun]):
    """Per seed: validation accuracy after stage 1 and after the first unfrozen epoch, test
    accuracy after each stage."""
    import pandas as pd

    return pd.DataFrame([{
        "seed": r.seed,
        "valid, frozen": r.frozen_valid_accuracy,
        "valid, 1st unfrozen epoch": r.first_unfrozen_valid_accuracy,
        "test, frozen": r.frozen_test["test_accuracy"],
        "test, fine-tuned": r.metrics["test_accuracy"],
    } for r in runs]).set_index("seed")


def claims(runs: list[SeedRun], resnet_accuracies: list[float] | None, *, comparable: bool,
           base_model: str) -> list[dict]:
    """C9 (paired over seeds), C10 (against 02's seeds, Welch; absent without 02's results),
    C11 (comparable only for a pretrained VGG19 on CINIC-10)."""
    from . import findings as f

    n = len(runs)
    first = [r.first_unfrozen_valid_accuracy for r in runs]
    frozen = [r.frozen_valid_accuracy for r in runs]
    tests = [r.metrics["test_accuracy"] for r in runs]
    rows = [f.finding("C9", f.paired_interval(first, frozen),
                      f"paired t over {n} seeds (validation accuracy; the study: +0.15)")]
    if resnet_accuracies:
        rows.append(f.finding("C10", f.welch_interval(tests, resnet_accuracies),
                              f"Welch t: {n} seeds of 05 ({base_model}) vs "
                              f"{len(resnet_accuracies)} of 02"))
    pretrained = all(r.choice.pretrained for r in runs)
    rows.append(f.finding("C11", f.mean_interval(tests), f"t interval over {n} seeds, "
                          f"{base_model}", comparable=comparable and pretrained
                          and base_model == "VGG19"))
    return rows


def conclusion(runs: list[SeedRun], rows: list[dict], finetune_lr: float, dataset_name: str,
               is_cinic10: bool) -> str:
    """05's conclusion, worded from the claims' verdicts; the learning rate is the one used."""
    from . import findings as f
    from .markup import escape

    table = seed_table(runs)
    frozen = f.mean_interval(table["test, frozen"])
    tuned = f.mean_interval(table["test, fine-tuned"])
    text = (f"On *{escape(dataset_name)}*, over {len(runs)} seed(s): test accuracy "
            f"{frozen[0]:.4f} with the base frozen, {tuned[0]:.4f} after fine-tuning the whole "
            f"network at a learning rate of {finetune_lr:.2g} (the study: "
            f"{f.STUDY_TRANSFER:.4f} with VGG19 on full CINIC-10).\n\n" + f.conclusion(rows))
    if not all(r.choice.pretrained for r in runs):
        text += ("\n\n**The base started from random weights**, so this is not transfer "
                 "learning and says nothing about the study's result.")
    if not is_cinic10:
        text += "\n\nThese numbers are not CINIC-10's: compare them with the study only in shape."
    return text


def resnet_accuracies(run_dir, fingerprint: str) -> list[float] | None:
    """02's per-seed test accuracies from this run folder, if 02 ran on the same data."""
    from .artifacts import run_paths
    from .atomic import read_json

    path = run_paths(run_dir)["results"] / "02_resnet.json"
    if not path.exists():
        return None
    result = read_json(path)
    if result.get("provenance", {}).get("fingerprint") != fingerprint:
        return None
    return [s["test_accuracy"] for s in result.get("seeds", [])] or None


def base_note(choice: BaseChoice, base_model: str) -> str:
    """Markdown: where the base's weights came from, or that this is not transfer learning
    (the reason may quote a path: escaped)."""
    from .markup import escape

    if choice.pretrained:
        return f"Base `{base_model}`: {escape(choice.reason)}."
    return (f"**This run is not transfer learning.** {escape(choice.reason)}. The base starts from "
            "random weights; its numbers say nothing about pretrained features.")
