"""03_hyperparams' summaries, claims (C2-C6) and conclusion, from its grids' trial tables. The
trial itself (one ResNet training run) is the notebook's resnet_trial, run through
helpers.experiments.trialstore, so the trials resume after a kill and can fan out on Ray."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from helpers.experiments.protocol import NOT_CINIC10
from helpers.experiments.trialstore import METRIC


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

TRAINING_FACTORS = ["n_blocks", "kernel_size"]
REGULARISERS = ["alpha", "lam", "dropout"]


def _named(rows: list[dict], table: pd.DataFrame, metric: str) -> list[dict]:
    """rows, each naming the grid's trials that sit at chance accuracy (or none). In a grid such
    a trial stays in: a configuration that fails to learn (too much regularisation) is that
    configuration's effect, which the contrasts measure; the reader is told it is there."""
    from helpers.experiments import findings as f

    bad = table[f.diverged(table[metric].to_numpy())]
    if bad.empty:
        return rows
    cols = [c for c in (*TRAINING_FACTORS, *REGULARISERS, "seed") if c in bad]
    which = "; ".join(", ".join(f"{c} {r[c]:g}" for c in cols) for _, r in bad.iterrows())
    note = (f" ({len(bad)} trial{'s' if len(bad) > 1 else ''} at chance accuracy, kept in: "
            f"{which})")
    return [{**r, "replication": r["replication"] + note} for r in rows]


def training_claims(table: pd.DataFrame, regime, metric: str = METRIC) -> list[dict]:
    """C2-C4 from the training grid (blocks x kernel size, every configuration once per seed)."""
    from helpers.experiments import findings as f

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
    from helpers.experiments import findings as f

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
    """C2-C6 from the two grids, in the study's order (see training_claims and
    regularisation_claims). Each contrast reads every configuration of a grid once per seed;
    with two or more seeds per configuration the noise is the pure error between seeds, with
    one it is the additive model's residual (which then holds the interactions too). A claim
    whose levels are not in the grid is left out (conclusion names it)."""
    from helpers.experiments import findings as f

    regime = regime or f.UNNAMED
    return training_claims(train_table, regime, metric) + regularisation_claims(
        reg_table, regime, metric)


def conclusion(rows: list[dict], trials: pd.DataFrame, epochs: int, dataset_name: str,
               is_cinic10: bool) -> str:
    """03's conclusion, worded from the claims' verdicts (never from one configuration's score)."""
    from helpers.base import escape
    from helpers.experiments import findings

    tested = {r["id"] for r in rows}
    missing = [c for c in ("C2", "C3", "C4", "C5", "C6") if c not in tested]
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
        + " No single configuration's score is read on its own.\n\n"
        + findings.conclusion(rows)
    )
    if missing:
        text += (f"\n\nNot tested by this run's grids (their levels are missing): "
                 f"{', '.join(missing)}.")
    if not is_cinic10:
        text += "\n\n" + NOT_CINIC10
    return text


def describe(ds, settings: dict, epochs: int, repeats: int, executor: str, setup: dict) -> str:
    """03's opening lines: data, subsets, epochs, seeds per configuration, executor, setup."""
    text = (
        f"{ds.name} ({ds.fingerprint}): {settings['train_per_class'] or 'all'} training and "
        f"{settings['valid_per_class'] or 'all'} validation images per class, up to "
        f"{epochs} epochs per trial, {repeats} seed(s) per configuration; "
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
