"""The study's five augmentations as batched, seeded functions for pipeline.make_input(augment=):
Keras' own preprocessing layers, driven by the batch's seed pair so a run is reproducible."""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf
from keras import layers

from .markup import escape

AugmentFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
NAMES = ("brightness", "flip", "rotation", "zoom", "cutout")
DEFAULT_STRENGTHS = {
    "brightness": 0.2,
    "flip": "horizontal_and_vertical",
    "rotation": 0.15,
    "zoom": 0.5,
    "cutout": 0.25,
}


class _BatchSeeds(keras.random.SeedGenerator):
    """Stateless seeds for one batch: the batch's seed pair folded with a draw counter, so each
    random draw of a layer differs while the whole call stays a pure function of the pair.
    (Keras' layers accept only a SeedGenerator; its own one is a variable, whose order of
    updates under a parallel tf.data map is not reproducible.)"""

    def __init__(self, seed_pair: tf.Tensor):  # no variable: deliberately not super().__init__
        self._pair = tf.cast(seed_pair, tf.int64)
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
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
    dtype and range: the layers applied in order, each drawing from the seed pair only."""

    def augment(images: tf.Tensor, seed_pair: tf.Tensor) -> tf.Tensor:
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


def study_augmentations(names=NAMES, strengths: dict | None = None) -> dict[str, AugmentFn]:
    """The named augmentations (of NAMES) at their strengths (see study_layer; missing ones
    take DEFAULT_STRENGTHS), as make_input augment functions by name."""
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"augmentations {unknown}: unknown; known: {', '.join(NAMES)}")
    strengths = {**DEFAULT_STRENGTHS, **(strengths or {})}
    return {name: make_augment(name, strengths[name]) for name in names}


def apply(fn: AugmentFn, images, seed: int = 0):
    """fn on a NumPy batch (uint8 0..255 or float in [0, 1]) -> float32 (b, 32, 32, 3) in [0, 1],
    for figures."""
    x = tf.convert_to_tensor(images)
    x = tf.cast(x, tf.float32) / 255.0 if x.dtype == tf.uint8 else tf.cast(x, tf.float32)
    return fn(x, tf.constant([seed, 0], tf.int64)).numpy()


# --- the comparison: one trial per augmentation, all from the same initial weights -------------


def save_initial_weights(model: keras.Model, run_dir) -> str:
    """models/04_initial.weights.h5, atomically: the one start every trial loads."""
    from .artifacts import run_paths

    folder = run_paths(run_dir)["models"]
    tmp, final = folder / ".04_initial.partial.weights.h5", folder / "04_initial.weights.h5"
    model.save_weights(tmp)
    tmp.replace(final)
    return str(final)


def comparison_trials(names, strengths: dict, settings: dict, seed: int = 0) -> list:
    """experiments.Trial list: the baseline, then one per augmentation name. settings hold what
    every trial shares and what changes its result (epochs, batch size, learning rate, dataset
    fingerprint, subset sizes ...); they are part of each trial's id."""
    from .experiments import make_trials

    strengths = {**DEFAULT_STRENGTHS, **strengths}
    configs = [{"name": "baseline", "strength": None}]
    configs += [{"name": name, "strength": strengths[name]} for name in names]
    return make_trials("04aug", configs, settings, seed=seed)


SETTINGS = set(
    "fingerprint train_per_class valid_per_class test_per_class subset_seed epochs batch_size "
    "learning_rate lr_scaling patience mixed_precision".split()
)


def augmentation_trial(config: dict, context: dict) -> dict:
    """Train the simple CNN from the shared initial weights on the train subset (doubled with
    one augmented copy unless the baseline), test it, save it deployable. Loads the cached
    dataset itself (once per process), so it runs in this kernel or in a Ray worker alike.
    context: settings (see SETTINGS), dataset (spec), run_dir, initial_weights [, threads].
    Returns history rows (epoch, split, metric, value), test accuracy, final train/valid
    accuracy and their gap."""
    from . import artifacts, data, evaluation, models, training
    from .experiments import cached_dataset

    s = context["settings"]
    missing = SETTINGS - set(s)
    if missing:
        raise ValueError(f"augmentation_trial: settings lack {sorted(missing)}")
    keras.backend.clear_session()
    # the same dropout/shuffle streams in every trial; threads: a Ray worker's share of the cores
    training.setup(config["seed"], s["mixed_precision"], context.get("threads"))
    ds = cached_dataset(context["dataset"], s["fingerprint"])
    train, valid, test = (
        data.stratified_subset(ds[split], s[f"{split}_per_class"], s["subset_seed"])
        for split in ("train", "valid", "test")
    )
    model = models.create_simple_cnn()
    model.load_weights(context["initial_weights"])
    lr = training.scaled_learning_rate(s["learning_rate"], s["batch_size"], s["lr_scaling"])
    training.compile_model(model, lr)
    baseline = config["name"] == "baseline"
    with training.quiet():
        result = training.fit(
            model,
            train,
            valid,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            seed=config["seed"],
            patience=s["patience"],
            augment=None if baseline else make_augment(config["name"], config["strength"]),
            repeat_augmented=not baseline,
        )
        metrics = evaluation.evaluate(model, test, ds.classes)
    artifacts.save_model(context["run_dir"], f"04_{config['name']}", models.deployable(model))
    h = result.history
    last = h[(h.metric == "accuracy") & (h.epoch == h.epoch.max())].set_index("split").value
    return {
        "name": config["name"],
        "history": h.to_dict(orient="records"),
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "train_accuracy": float(last["train"]),
        "valid_accuracy": float(last["valid"]),
        "gap": float(last["train"] - last["valid"]),
        "n_train_images": len(train) * (1 if baseline else 2),
        **result.summary(),
    }


def run_comparison(
    trials: list,
    *,
    dataset: str,
    run_dir,
    initial_weights: str,
    executor: str = "local",
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
) -> dict[str, dict]:
    """experiments.run_trials of augmentation_trial (finished trials are kept, each result
    saved as it arrives; executor local or ray), then every trial's full result, histories
    included, by augmentation name. With Ray on a cluster, run_dir and the data dir must be
    on a disk the workers share (they read the initial weights and write the models)."""
    from .experiments import TrialStore, run_trials

    context = {
        "settings": trials[0].settings,
        "dataset": dataset,
        "run_dir": str(run_dir),
        "initial_weights": str(initial_weights),
    }
    run_trials(
        trials,
        augmentation_trial,
        context,
        run_dir=run_dir,
        executor=executor,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        desc="04 augmentations",
        metric="valid_accuracy",
    )
    store = TrialStore(run_dir)
    return {t.config["name"]: store.load(t)["result"] for t in trials}


def summary_table(results: dict[str, dict]):
    """Per trial: test accuracy, final train/valid accuracy, overfitting gap, images, seconds."""
    import pandas as pd

    cols = ["test_accuracy", "train_accuracy", "valid_accuracy", "gap", "n_train_images"]
    rows = {
        r["name"]: {c: r[c] for c in cols} | {"seconds": r["train_seconds"]}
        for r in results.values()
    }
    return pd.DataFrame(rows).T.rename_axis("augmentation")


def histories(results: dict[str, dict]):
    """All trials' history rows in one tidy table with a column `augmentation`."""
    import pandas as pd

    return pd.concat(
        [pd.DataFrame(r["history"]).assign(augmentation=r["name"]) for r in results.values()],
        ignore_index=True,
    )


def conclusion(table, dataset_name: str, is_cinic10: bool) -> str:
    """Markdown reading the summary table: what each augmentation did to accuracy and the gap."""
    base, others = table.loc["baseline"], table.drop("baseline")
    better = others.index[others.test_accuracy > base.test_accuracy].tolist()
    less_gap = others.index[others.gap < base.gap].tolist()
    best = others.test_accuracy.idxmax()
    text = (
        f"On <code>{escape(dataset_name)}</code> the simple CNN without augmentation reached "
        "a test accuracy of "
        f"**{base.test_accuracy:.4f}**, with a final train-validation gap of {base.gap:.3f}. "
        f"The best augmentation was *{best}* ({others.test_accuracy.max():.4f}, "
        f"{others.test_accuracy.max() - base.test_accuracy:+.4f}). "
        f"{len(better)} of {len(others)} augmentations raised test accuracy "
        f"({', '.join(better) or 'none'}); {len(less_gap)} of {len(others)} narrowed the gap "
        f"({', '.join(less_gap) or 'none'}). "
    )
    text += (
        "(Each augmented run sees twice the images, so twice the steps, per epoch: the study's "
        "protocol.) "
    )
    if len(less_gap) >= len(others) / 2:
        text += "As in the study, augmentation mostly reduced overfitting. "
    else:
        text += "Unlike the study, augmentation did not mostly reduce overfitting here. "
    if not is_cinic10:
        text += "These numbers are not CINIC-10's: compare them with the study only in shape."
    return text
