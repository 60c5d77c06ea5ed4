"""03_hyperparams' trial (one ResNet training run, optionally with Elastic Net on the output
layer) and the summaries its notebook draws conclusions from. Trials run through
helpers.experiments, so they resume after a kill and can fan out on Ray."""

from __future__ import annotations

import json

import pandas as pd

from .experiments import METRIC, cached_dataset

RESNET_KEYS = {"n_blocks", "kernel_size", "dropout", "seed", "alpha", "lam", "base_filters"}


def resnet_trial(config: dict, context: dict) -> dict:
    """Train create_resnet_model(n_blocks, kernel_size, dropout), with Elastic Net (alpha, lam)
    on the output layer when given, on context's subsets; best validation accuracy etc."""
    import keras

    from . import data, models, training
    from .regularizers import ElasticNetRegularization

    unknown = set(config) - RESNET_KEYS
    if unknown:
        raise ValueError(f"resnet_trial: unknown config key(s) {sorted(unknown)}")
    keras.backend.clear_session()  # a long grid in one kernel must not pile up graphs
    # threads: a Ray worker's share of the cores
    training.setup(config["seed"], context.get("mixed_precision", False), context.get("threads"))
    ds = cached_dataset(context["dataset"], context.get("fingerprint"))
    train = data.stratified_subset(ds["train"], context["train_per_class"], context["subset_seed"])
    valid = data.stratified_subset(ds["valid"], context["valid_per_class"], context["subset_seed"])
    reg = ElasticNetRegularization(config["alpha"], config["lam"]) if "alpha" in config else None
    model = models.create_resnet_model(
        config["n_blocks"],
        config["kernel_size"],
        config["dropout"],
        base_filters=config.get("base_filters", 32),
        output_regularizer=reg,
        bn_momentum=context.get("bn_momentum", 0.9),  # in the settings, so in the trial id
    )
    lr = training.scaled_learning_rate(
        context["learning_rate"], context["batch_size"], context.get("lr_scaling", "none")
    )
    training.compile_model(model, lr)
    with training.quiet():
        r = training.fit(
            model,
            train,
            valid,
            epochs=context["epochs"],
            batch_size=context["batch_size"],
            seed=config["seed"],
            patience=context["patience"],
        )
    h = r.history
    val = h[(h.split == "valid") & (h.metric == "accuracy")].sort_values("epoch")["value"]
    return {
        "best_val_accuracy": float(val.max()),
        "final_val_accuracy": float(val.iloc[-1]),
        "epochs_run": r.epochs_run,
        "train_seconds": round(r.seconds, 2),
        "images_per_second": round(r.images_per_second, 1),
        "params": int(model.count_params()),
        "n_train": len(train),
        "val_accuracy": [round(float(v), 5) for v in val],
    }


def summarise(table: pd.DataFrame, params: list[str], metric: str = METRIC) -> pd.DataFrame:
    """Mean, std and number of trials of metric per config (params' values), best first."""
    g = table.groupby(params)[metric].agg(["mean", "std", "count"])
    return g.sort_values("mean", ascending=False).reset_index()


def effects(table: pd.DataFrame, params: list[str], metric: str = METRIC) -> pd.DataFrame:
    """Per parameter: the value with the best and the worst mean metric, and the spread
    (best minus worst mean, in accuracy points 0-1), largest spread first."""
    rows = []
    for p in params:
        m = table.groupby(p)[metric].mean()
        rows.append((p, m.idxmax(), m.max(), m.idxmin(), m.min(), m.max() - m.min()))
    cols = ["parameter", "best", "best_mean", "worst", "worst_mean", "spread"]
    return pd.DataFrame(rows, columns=cols).sort_values("spread", ascending=False)


def as_records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON-ready dicts (NaN -> None, NumPy scalars -> Python ones)."""
    return json.loads(table.to_json(orient="records"))
