"""Which parameters are the study's: the one table of the settings *DL Project 1 report* states
(with its values), and the origin of each effective value of a run: study, project, profile, -p
or run. The dry-run (`python -m helpers run --dry-run`), run.json and the report's run table
all read their origins from here."""

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
# Where and on what a run goes (--out, --profile, --dataset): not a setting of the science.
RUN_KEYS = ("run_dir", "profile", "dataset")
ORIGINS = ("study", "project", "profile", "-p", "run")


def study_settings(stem: str) -> dict:
    """The study's values for notebook stem's parameters (only those the study states)."""
    return {**STUDY_COMMON, **STUDY.get(stem, {})}


def is_study(stem: str, name: str) -> bool:
    """Whether the study states parameter name of notebook stem (else it is the project's)."""
    return name in study_settings(stem)


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
    return "study" if _same(value, study[name]) else "profile"


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1)
    return a == b


def origins(stem: str, params: dict, sources: dict | None = None) -> dict[str, str]:
    """{name: origin} for one notebook's effective parameters (sources: name -> '-p' etc.)."""
    sources = sources or {}
    return {k: origin(stem, k, v, sources.get(k, "profile")) for k, v in params.items()}
