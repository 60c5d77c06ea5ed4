"""The settings *DL Project 1 report* states; a notebook's regime against them (CINIC-10 or not,
the study's budget or not) and each parameter's origin (study, project, profile, -p or run)."""

from __future__ import annotations

# Settings the study states, as this project's parameters spell them; every other parameter
# (patience, 03's and 04's epochs, learning rates, brightness and cut-out sizes ...) is ours.
STUDY_COMMON = {
    "batch_size": 32,
    "lr_scaling": "none",  # the study trained at its batch of 32, nothing to scale
    "mixed_precision": False,  # float32: Keras' default, which the study used
    "train_per_class": 0,  # 0 = all: every image of CINIC-10's splits
    "valid_per_class": 0,
    "test_per_class": 0,
}
STUDY = {
    "02_resnet": {
        "epochs": 20,
        "n_blocks": 3,  # the study's first network (its kernel size is not stated: 3 is ours)
        "dropout": 0.2,
        "bn_momentum": 0.99,
    },
    "03_hyperparams": {
        "n_blocks_grid": [1, 3, 5],
        "kernel_size_grid": [2, 3, 4, 5],
        "dropout": 0.2,
        "alpha_grid": [0.2, 0.5, 0.8],
        "lam_grid": [0.001, 0.01, 0.1],
        "dropout_grid": [0.1, 0.3, 0.5],
        "bn_momentum": 0.99,
    },
    "04_augmentation": {
        # 04's dict's names: one added is an extension (its rows ours), one missing departs
        "augmentations": ["brightness", "flip", "rotation", "zoom", "cutout"],
        "flip": "horizontal_and_vertical",
        "rotation": 0.24,  # a share of a full turn: up to 86 degrees ("less than 90")
        "zoom": 0.5,
        "doubled_set": "once",  # "a new model trained on the augmented dataset, twice as big"
    },
    "05_transfer": {
        "base_model": "VGG19",
        "weights": "imagenet",
        "units": 512,
        "dropout": 0.4,
        "finetune_learning_rate": 1e-05,
    },
}
# How the optimisation runs, not how much data and training it gets: a run departing only in
# these is still at the study's budget (the gpu profile), the departures named on its findings.
OPTIMISATION = ("batch_size", "lr_scaling", "mixed_precision")
EXTENSIBLE = ("augmentations",)  # a run may add items, keeping every one of the study's
RUN_KEYS = ("run_dir", "profile", "dataset")  # where and on what a run goes: not the science
NOT_CINIC10 = "These numbers are not CINIC-10's: compare them with the study only in shape."


def study_settings(stem: str) -> dict:
    """The study's values of notebook stem's parameters (only those the study states)."""
    return {**STUDY_COMMON, **STUDY.get(stem, {})}


def same(a, b) -> bool:
    """Whether a parameter's value is the study's (numbers to 1e-12, booleans by identity)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1)
    return a == b


def departures(stem: str, params: dict) -> dict[str, tuple]:
    """{name: (this run's value, the study's)} where params differ; an EXTENSIBLE one only if
    it lacks one of the study's items."""
    found = {}
    for k, v in study_settings(stem).items():
        value = list(params[k]) if k in EXTENSIBLE and k in params else params.get(k)
        if k in params and not same(value, v) and not (k in EXTENSIBLE and set(v) <= set(value)):
            found[k] = (value, v)
    return found


def regime(stem: str, ds, params: dict):
    """findings.Regime: the data, the study's budget or not (OPTIMISATION aside), departures."""
    from helpers.experiments.findings import Regime  # deferred: scipy, for the dry run too

    def short(value) -> str:
        many = isinstance(value, list) and len(value) > 4
        return f"[{', '.join(map(str, value[:3]))}, ...]" if many else str(value)

    found = departures(stem, params)
    words = tuple(f"{k} {short(v)} (the study: {short(s)})" for k, (v, s) in found.items())
    states = any(k in params for k in study_settings(stem))  # 01 sets none of them
    budget = all(k in OPTIMISATION for k in found) if states else None
    label = ("CINIC-10" if ds.is_cinic10 else "generated synthetic data" if ds.kind == "synthetic"
             else f"CIFAR-10 ({ds.name})" if "cifar" in ds.name.lower() else ds.name)
    return Regime(label, ds.is_cinic10, budget, str(params.get("profile", "")), words)


def origins(stem: str, params: dict, sources: dict | None = None) -> dict[str, str]:
    """{name: '-p' (sources says so), 'run' (RUN_KEYS), 'study', 'profile' (a study setting
    changed: quick's subsets) or 'project' (one the study does not state)}."""
    study, sources = study_settings(stem), sources or {}
    return {k: ("-p" if sources.get(k) == "-p" else "run" if k in RUN_KEYS
                else "project" if k not in study
                else "study" if same(v, study[k]) else "profile") for k, v in params.items()}
