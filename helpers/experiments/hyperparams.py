"""03_hyperparams' trial (one ResNet training run, optionally with Elastic Net on the output
layer) and the summaries its notebook draws conclusions from. Trials run through
helpers.experiments, so they resume after a kill and can fan out on Ray."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.data import shared_dataset
from helpers.experiments.trialstore import METRIC

RESNET_KEYS = {"n_blocks", "kernel_size", "dropout", "seed", "alpha", "lam", "base_filters"}


def resnet_trial(config: dict, context: dict) -> dict:
    """Train create_resnet_model(n_blocks, kernel_size, dropout), with Elastic Net (alpha, lam)
    on the output layer when given, on context's subsets; best validation accuracy etc."""
    from helpers import data
    from helpers.models import nets, reuse, training
    from helpers.models.nets import ElasticNetRegularization

    unknown = set(config) - RESNET_KEYS
    if unknown:
        raise ValueError(f"resnet_trial: unknown config key(s) {sorted(unknown)}")
    # threads: a Ray worker's share of the cores
    training.setup(config["seed"], context.get("mixed_precision", False), context.get("threads"))
    ds = shared_dataset(context["dataset"], context.get("fingerprint"), say=lambda *_: None)
    train = data.stratified_subset(ds["train"], context["train_per_class"], context["subset_seed"])
    valid = data.stratified_subset(ds["valid"], context["valid_per_class"], context["subset_seed"])
    reg = ElasticNetRegularization(config["alpha"], config["lam"]) if "alpha" in config else None
    # what shapes the traced model: all but the seed, and α and λ where the graph reads them
    tunable = reuse.enabled()
    shape = {k: v for k, v in config.items() if k not in ("seed", "alpha", "lam") or not tunable}
    bn_momentum = context.get("bn_momentum", 0.9)  # in the settings, so in the trial id
    model = reuse.model(("resnet", *sorted(shape.items()), reg is not None, bn_momentum),
                        lambda: nets.create_resnet_model(
                            config["n_blocks"],
                            config["kernel_size"],
                            config["dropout"],
                            base_filters=config.get("base_filters", 32),
                            output_regularizer=reg,
                            bn_momentum=bn_momentum,
                            tunable=tunable,
                        ))
    result = training.fit_trial(model, train, valid, context, config["seed"])
    history = result.history
    valid = history[(history.split == "valid") & (history.metric == "accuracy")]
    val = valid.sort_values("epoch")["value"]
    return {
        "best_val_accuracy": float(val.max()),
        "final_val_accuracy": float(val.iloc[-1]),
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 2),
        "images_per_second": round(result.images_per_second, 1),
        "params": nets.count_params(model),
        "n_train": len(train),
        "val_accuracy": [round(float(v), 5) for v in val],
        "timing": result.timing,
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


# --- the study's claims about the grids (C2-C6), from the factorial design ----------------------


def _marginal(table: pd.DataFrame, factor: str, metric: str = METRIC) -> pd.Series:
    return table.groupby(factor)[metric].mean()


def _level_weights(table: pd.DataFrame, column: str, plus, minus) -> np.ndarray:
    """Contrast weights: +1/n over trials whose column is in plus, -1/n over those in minus."""
    a, b = table[column].isin(plus).to_numpy(), table[column].isin(minus).to_numpy()
    return a / a.sum() - b / b.sum()


def claims(train_table: pd.DataFrame, reg_table: pd.DataFrame, metric: str = METRIC) -> list:
    """C2-C6 (see helpers.findings) from the two grids. Each main effect is estimated across the
    other factors' levels; its interval comes from the additive model's residual variance (a
    t interval for a difference of means, a residual bootstrap for a spread or a best-of). A
    claim whose levels are not in the grid is left out."""
    from helpers.experiments import findings as f

    rows = []
    tf_ = ["n_blocks", "kernel_size"]
    blocks, kernels = set(train_table.n_blocks), sorted(set(train_table.kernel_size))
    n_tr = f"{len(train_table)} trials"
    if {1, 3, 5} <= blocks:

        def best13_minus5(t):
            m = _marginal(t, "n_blocks", metric)
            return max(m[1], m[3]) - m[5]

        rows.append(f.finding("C2", f.factorial_bootstrap(train_table, tf_, metric,
                                                          best13_minus5),
                              f"grid, {n_tr}: residual bootstrap of the additive model"))
    if len(kernels) > 1:
        w = _level_weights(train_table, "kernel_size", [kernels[-1]], [kernels[0]])
        rows.append(f.finding("C3", f.factorial_contrast(train_table, tf_, metric, w),
                              f"grid, {n_tr}: kernel {kernels[-1]} minus {kernels[0]}, t "
                              "interval from the additive model's residuals"))
    if {1, 3} <= blocks and {4, 5} <= set(kernels) and len(blocks) > 2 and len(kernels) > 2:
        inside = (train_table.n_blocks.isin([1, 3]) & train_table.kernel_size.isin([4, 5]))
        a = inside.to_numpy()
        w = a / a.sum() - ~a / (~a).sum()
        rows.append(f.finding("C4", f.factorial_contrast(train_table, tf_, metric, w),
                              f"grid, {n_tr}: t interval from the additive model's residuals"))
    rf = [p for p in ("alpha", "lam", "dropout") if reg_table[p].nunique() > 1]
    n_reg = f"{len(reg_table)} trials"
    if "dropout" in rf and len(rf) > 1:

        def dropout_spread_lead(t):
            spread = {p: np.ptp(_marginal(t, p, metric).to_numpy()) for p in rf}
            return spread["dropout"] - max(v for p, v in spread.items() if p != "dropout")

        rows.append(f.finding("C5", f.factorial_bootstrap(reg_table, rf, metric,
                                                          dropout_spread_lead),
                              f"grid, {n_reg}: residual bootstrap of the additive model"))
    if "lam" in rf:
        lams = sorted(set(reg_table.lam))
        w = _level_weights(reg_table, "lam", [lams[-1]], [lams[0]])
        rows.append(f.finding("C6", f.factorial_contrast(reg_table, rf, metric, w),
                              f"grid, {n_reg}: λ {lams[-1]:g} minus {lams[0]:g}, t interval "
                              "from the additive model's residuals"))
    return rows


def conclusion(rows: list[dict], trials: pd.DataFrame, epochs: int, dataset_name: str,
               is_cinic10: bool) -> str:
    """03's conclusion, worded from the claims' verdicts (never from one configuration's score)."""
    from helpers.base import escape
    from helpers.experiments import findings

    tested = {r["id"] for r in rows}
    missing = [c for c in ("C2", "C3", "C4", "C5", "C6") if c not in tested]
    text = (
        f"On *{escape(dataset_name)}*: {len(trials)} trials of up to {epochs} epochs on "
        f"{int(trials.n_train.max()):,} training images each. Each claim is estimated across "
        "the grid, every configuration counting once per seed; its 95% interval comes from the "
        "scatter that the grid's main effects leave unexplained (noise between runs plus "
        "interactions). No single configuration's score is read on its own.\n\n"
        + findings.conclusion(rows)
    )
    if missing:
        text += (f"\n\nNot tested by this run's grids (their levels are missing): "
                 f"{', '.join(missing)}.")
    if not is_cinic10:
        text += "\n\nThe data are not CINIC-10: compare these numbers with the study only in shape."
    return text


def describe(ds, settings: dict, repeats: int, executor: str, setup: dict) -> str:
    """03's opening lines: data, subsets, epochs, seeds per configuration, executor, setup."""
    text = (
        f"{ds.name} ({ds.fingerprint}): {settings['train_per_class'] or 'all'} training and "
        f"{settings['valid_per_class'] or 'all'} validation images per class, up to "
        f"{settings['epochs']} epochs per trial, {repeats} seed(s) per configuration; "
        f"executor {executor}; {setup}"
    )
    return text + (f"\n{ds.note}" if ds.note else "")


def summary(train_table, reg_table, grid_claims: list[dict]) -> dict:
    """results/03_hyperparams.json's numbers: each grid's summary, the main effects, the
    claims, the trial count, the trials' summed seconds and median images/s."""
    train_params, reg_params = ["n_blocks", "kernel_size"], ["alpha", "lam", "dropout"]
    main_effects = pd.concat([effects(train_table, train_params), effects(reg_table, reg_params)])
    trials = pd.concat([train_table, reg_table], ignore_index=True)
    return {
        "training_grid": as_records(summarise(train_table, train_params)),
        "regularisation_grid": as_records(summarise(reg_table, reg_params)),
        "effects": as_records(main_effects),
        "claims": grid_claims,
        "n_trials": len(trials),
        "trial_seconds": round(float(trials.wall_seconds.sum()), 1),
        "images_per_second_median": float(trials.images_per_second.median()),
    }
