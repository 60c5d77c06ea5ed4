"""The study's protocol: the settings *DL Project 1 report* states (with its values), and the
regime a notebook ran in against them (CINIC-10 or not, the study's budget or a reduced one),
and where each effective value of a run comes from (study, project, profile, -p or run): the
dry run (`python -m helpers run --dry-run`), run.json and the report's run table read it here."""

from __future__ import annotations

# Settings the study states, by parameter name, as this project's parameters spell them. Every
# other parameter (patience values, 03's and 04's epochs, the optimiser's learning rate, the
# head's learning rate and epochs, VGG19's input size, brightness and cut-out sizes, seeds ...)
# is the project's choice.
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
        "n_blocks": 3,  # the study's first network: three residual blocks (its kernel size is
        # not stated: 3 is the project's choice)
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
        # the names of 04's augmentations dict: a run may add one (an extension, its rows the
        # project's), while one without any of these five departs from the study (EXTENSIBLE)
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
# Study settings that change how the optimisation runs, not how much data and training it gets:
# a run that departs from the study only in these is still at the study's budget (the gpu
# profile), and the departures are named on its findings.
OPTIMISATION = ("batch_size", "lr_scaling", "mixed_precision")
# Study settings a run may add to: every one of the study's items kept, more of the project's
EXTENSIBLE = ("augmentations",)

# the conclusions' sentence for a run on other data than CINIC-10 (02-05)
NOT_CINIC10 = "These numbers are not CINIC-10's: compare them with the study only in shape."


def study_settings(stem: str) -> dict:
    """The study's values for notebook stem's parameters (only those the study states)."""
    return {**STUDY_COMMON, **STUDY.get(stem, {})}


def same(a, b) -> bool:
    """Whether a parameter's value is the study's (numbers to 1e-12, booleans by identity)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1)
    return a == b


def departures(stem: str, params: dict) -> dict[str, tuple]:
    """{name: (this run's value, the study's)} for every study-stated setting of notebook stem
    that params (e.g. the notebook's globals()) sets to another value; an EXTENSIBLE one (a
    dict reads as its keys) departs only where it lacks one of the study's items."""
    found = {}
    for k, v in study_settings(stem).items():
        value = list(params[k]) if k in EXTENSIBLE and k in params else params.get(k)
        if k in params and not same(value, v) and not (k in EXTENSIBLE and set(v) <= set(value)):
            found[k] = (value, v)
    return found


def data_label(ds) -> str:
    """The dataset as a reader should know it: CINIC-10, CIFAR-10 (a named copy) or other."""
    if ds.is_cinic10:
        return "CINIC-10"
    if ds.kind == "synthetic":
        return "generated synthetic data"
    return f"CIFAR-10 ({ds.name})" if "cifar" in ds.name.lower() else ds.name


def regime(stem: str, ds, params: dict):
    """The notebook's regime: its data against CINIC-10, its budget against the study's (every
    study-stated setting at the study's value, the optimisation settings aside), and its
    departures in words. params: the notebook's parameters (its globals() will do)."""
    from helpers.experiments.findings import Regime  # deferred: scipy, for the dry run too

    found = departures(stem, params)
    words = tuple(f"{k} {_short(v)} (the study: {_short(s)})" for k, (v, s) in found.items())
    states = any(k in params for k in study_settings(stem))  # 01 sets none of them
    budget = all(k in OPTIMISATION for k in found) if states else None
    return Regime(data_label(ds), ds.is_cinic10, budget, str(params.get("profile", "")), words)


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"[{', '.join(map(str, value[:3]))}, ...]"
    return str(value)


# Where and on what a run goes (--out, --profile, --dataset): not a setting of the science.
RUN_KEYS = ("run_dir", "profile", "dataset")


def origin(stem: str, name: str, value, source: str = "profile") -> str:
    """Where a value comes from: '-p' (source '-p'), 'run' (RUN_KEYS), 'study' (the study's own
    value), 'profile' (a setting the study states, changed here: quick's subsets, gpu's batch)
    or 'project' (a setting the study does not state)."""
    if source == "-p":
        return "-p"
    if name in RUN_KEYS:
        return "run"
    study = study_settings(stem)
    if name not in study:
        return "project"
    return "study" if same(value, study[name]) else "profile"


def origins(stem: str, params: dict, sources: dict | None = None) -> dict[str, str]:
    """{name: origin} for one notebook's effective parameters (sources: name -> '-p' etc.)."""
    sources = sources or {}
    return {k: origin(stem, k, v, sources.get(k, "profile")) for k, v in params.items()}
