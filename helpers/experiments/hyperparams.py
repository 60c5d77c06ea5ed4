"""03_hyperparams' claims (C2-C6), conclusion and results file, from the trial tables of its
grids (the notebook's resnet_trial, run through trialstore)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.base import escape
from helpers.experiments import findings as f
from helpers.experiments.protocol import NOT_CINIC10
from helpers.experiments.trialstore import METRIC

TRAINING_FACTORS = ["n_blocks", "kernel_size"]
REGULARISERS = ["alpha", "lam", "dropout"]


def summarise(table: pd.DataFrame, params: list[str], metric: str = METRIC) -> pd.DataFrame:
    """Mean, std and number of trials of metric per config (params' values), best first."""
    g = table.groupby(params)[metric].agg(["mean", "std", "count"])
    return g.sort_values("mean", ascending=False).reset_index()


def _named(rows: list[dict], table: pd.DataFrame, metric: str) -> list[dict]:
    """rows naming the trials at chance accuracy, kept in: failing to learn is an effect too."""
    bad = table[f.diverged(table[metric].to_numpy())]
    if bad.empty:
        return rows
    cols = [c for c in (*TRAINING_FACTORS, *REGULARISERS, "seed") if c in bad]
    which = "; ".join(", ".join(f"{c} {r[c]:g}" for c in cols) for _, r in bad.iterrows())
    note = f" ({len(bad)} trial{'s' if len(bad) > 1 else ''} at chance accuracy, kept in: {which})"
    return [{**r, "replication": r["replication"] + note} for r in rows]


def training_claims(table: pd.DataFrame, regime, metric: str = METRIC) -> list[dict]:
    """C2-C4 from the training grid (blocks x kernel size, every configuration once per seed)."""
    grid = f.Grid.from_table(table, TRAINING_FACTORS, metric)
    blocks, kernels = grid.levels
    rows = []
    if {1, 3, 5} <= set(blocks):
        parts = [grid.level_contrast("n_blocks", [int(b == few) - int(b == 5) for b in blocks],
                                     f"{few} blocks minus 5") for few in (1, 3)]
        rows.append(f.finding("C2", f.either(
            parts, "the better of two Welch t contrasts of marginal means (1 − 5 and 3 − 5), "
            "each at one-sided 2.5% / 2 (Bonferroni): one of them above zero"), regime))
    if len(kernels) > 1:
        rows.append(f.finding("C3", grid.trend("kernel_size", method=(
            f"linear trend contrast over kernel sizes {', '.join(map(str, kernels))}, t "
            "Welch interval")), regime))
    if {1, 3} <= set(blocks) and {4, 5} <= set(kernels) and len(blocks) > 2 and len(kernels) > 2:
        region = {(i, j) for i, b in enumerate(blocks) for j, k in enumerate(kernels)
                  if b in (1, 3) and k in (4, 5)}
        est = f.best_cell(grid, region, "best cell of the region minus the best elsewhere; "
                          "simultaneous bounds (Bonferroni over the region's 4 cells below, "
                          "the other cells above), pure error")
        rows.append(f.finding("C4", est, regime, testable=grid.r >= 2, why=(
            "one seed per configuration: which cell is best cannot be told from noise "
            "(no pure error); run at least 2 seeds per configuration")))
    return _named(rows, table, metric)


def regularisation_claims(table: pd.DataFrame, regime, metric: str = METRIC) -> list[dict]:
    """C5-C6 from the regularisation grid (alpha x lambda x dropout), the factors it varies."""
    varied = [p for p in REGULARISERS if table[p].nunique() > 1]
    if not varied:
        return []
    grid = f.Grid.from_table(table, varied, metric)
    rows = []
    if "dropout" in varied and len(varied) > 1:
        rows.append(f.finding("C5", f.spread_lead(
            grid, "dropout", "simultaneous bounds from every pair of levels' Welch t "
            "interval (Bonferroni over the pairs each bound rests on)"), regime))
    if "lam" in varied:
        lams = grid.levels[varied.index("lam")]
        rows.append(f.finding("C6", grid.trend("lam", np.log10(lams), method=(
            "linear trend contrast over log10 λ, Welch t")), regime))
    return _named(rows, table, metric)


def claims(train_table: pd.DataFrame, reg_table: pd.DataFrame, regime=None,
           metric: str = METRIC) -> list[dict]:
    """C2-C6 whose levels are in the grids. Noise: the pure error between a configuration's
    seeds; with one seed the additive model's residual (the interactions with it)."""
    regime = regime or f.UNNAMED
    return (training_claims(train_table, regime, metric)
            + regularisation_claims(reg_table, regime, metric))


def conclusion(rows: list[dict], trials: pd.DataFrame, epochs: int, dataset_name: str,
               is_cinic10: bool) -> str:
    """03's conclusion, worded from the claims' verdicts (never from one configuration's score)."""
    missing = [c for c in ("C2", "C3", "C4", "C5", "C6") if c not in {r["id"] for r in rows}]
    seeds = trials.seed.nunique() if "seed" in trials else 1
    text = (
        f"On *{escape(dataset_name)}*: {len(trials)} trials of up to {epochs} epochs on "
        f"{int(trials.n_train.max()):,} training images each, {seeds} seed(s) per "
        "configuration. Each claim is a contrast across a whole grid, every configuration "
        "counting once per seed; "
        + ("its interval rests on the scatter between a configuration's seeds (pure error)."
           if seeds > 1 else
           "with one seed per configuration its interval rests on what the grid's main "
           "effects leave unexplained (noise and interactions together), and on one seed and "
           "one training subset.")
        + " No single configuration's score is read on its own.\n\n" + f.conclusion(rows)
    )
    if missing:
        text += f"\n\nNot tested by this run's grids (their levels are missing): {', '.join(missing)}."
    return text + ("" if is_cinic10 else "\n\n" + NOT_CINIC10)


def summary(train_table: pd.DataFrame, reg_table: pd.DataFrame, grid_claims: list[dict]) -> dict:
    """results/03_hyperparams.json's numbers: summarise() per grid, the main effects (each
    parameter's best and worst level mean, largest spread first), claims, trials, seconds."""
    def records(table: pd.DataFrame) -> list[dict]:  # NaN -> None, NumPy scalars -> Python's
        return json.loads(table.to_json(orient="records"))

    effects = []
    for table, params in ((train_table, TRAINING_FACTORS), (reg_table, REGULARISERS)):
        means = [table.groupby(p)[METRIC].mean() for p in params]
        effects.append(pd.DataFrame(
            [(p, m.idxmax(), m.max(), m.idxmin(), m.min(), m.max() - m.min())
             for p, m in zip(params, means)],
            columns=["parameter", "best", "best_mean", "worst", "worst_mean", "spread"],
        ).sort_values("spread", ascending=False))
    trials = pd.concat([train_table, reg_table], ignore_index=True)
    return {
        "training_grid": records(summarise(train_table, TRAINING_FACTORS)),
        "regularisation_grid": records(summarise(reg_table, REGULARISERS)),
        "effects": records(pd.concat(effects)),
        "claims": grid_claims,
        "n_trials": len(trials),
        "trial_seconds": round(float(trials.wall_seconds.sum()), 1),
        "images_per_second_median": float(trials.images_per_second.median()),
    }
