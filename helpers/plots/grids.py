"""Figures of hyperparameter grids (03_hyperparams, Figures 4-8), drawn with seaborn from the
trials table (one row per trial: the grid's parameter columns and a metric column such as
best_val_accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from helpers.experiments.trialstore import METRIC  # the grids' score, defined once

LABELS = {
    "n_blocks": "residual blocks",
    "kernel_size": "kernel size",
    "alpha": "alpha (l1 share)",
    "lam": "lambda",
    "dropout": "dropout rate",
    METRIC: "best validation accuracy",
}


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def _levels(values: pd.Series) -> list[str]:
    """A parameter's values as category labels, in numeric order ("3" before "10")."""
    return [str(v) for v in sorted(values.unique())]


def distribution(
    table: pd.DataFrame, by: str, title: str, hue: str | None = None, metric: str = METRIC
) -> Figure:
    """Box plot of metric (accuracy, 0-1) per value of `by`, every trial drawn as a point
    (coloured by `hue` when given, jittered sideways)."""
    cats = table.assign(**{by: table[by].astype(str)}, **({hue: table[hue].astype(str)} if hue else {}))
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    order = _levels(table[by])
    sns.boxplot(cats, x=by, y=metric, order=order, showfliers=False, fill=False, color="0.3",
                width=0.5, ax=ax)
    sns.stripplot(cats, x=by, y=metric, order=order, hue=hue,
                  hue_order=_levels(table[hue]) if hue else None,
                  palette="viridis" if hue else None, jitter=0.12, size=6, alpha=0.85, ax=ax)
    if hue:
        ax.legend(title=_label(hue), fontsize=8)
    ax.set(xlabel=_label(by), ylabel=_label(metric), title=title)
    return fig


def _grid(table: pd.DataFrame, rows: str, cols: str, metric: str) -> pd.DataFrame:
    """Mean metric over seeds per (rows, cols) cell: a (len(rows), len(cols)) DataFrame."""
    return table.pivot_table(index=rows, columns=cols, values=metric, aggfunc="mean")


def heatmap(table: pd.DataFrame, rows: str, cols: str, title: str, metric: str = METRIC) -> Figure:
    """Mean metric per (rows, cols) cell over seeds, every cell annotated."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    sns.heatmap(_grid(table, rows, cols, metric), annot=True, fmt=".3f", cmap="viridis", ax=ax,
                cbar_kws={"label": f"mean {_label(metric)}"})
    ax.set(xlabel=_label(cols), ylabel=_label(rows), title=title)
    return fig


def mean_iqr(table: pd.DataFrame, params: list[str], title: str, metric: str = METRIC) -> Figure:
    """One panel per parameter: mean metric per value (points joined by a line) with the
    interquartile range of all trials at that value (error bars), y axis shared."""
    fig = Figure(figsize=(4 * len(params), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True))
    for ax, param in zip(axes, params):
        # ("pi", 50): the 25th to 75th percentile; with skewed trials the mean can lie outside
        sns.pointplot(table.assign(**{param: table[param].astype(str)}), x=param, y=metric,
                      order=_levels(table[param]), estimator="mean", errorbar=("pi", 50),
                      capsize=0.15, ax=ax)
        ax.set(xlabel=_label(param), ylabel="")
    axes[0].set_ylabel(f"{_label(metric)}\n(mean; bars: interquartile range)")
    fig.suptitle(title)
    return fig


def facet_heatmaps(
    table: pd.DataFrame, rows: str, cols: str, facet: str, title: str, metric: str = METRIC
) -> Figure:
    """The grid's three regularisation parameters at once, as facets rather than a 3-D plot:
    one annotated heatmap (rows x cols, mean metric) per value of facet, one colour scale."""
    levels = sorted(table[facet].unique())
    grids = [_grid(table[table[facet] == v], rows, cols, metric) for v in levels]
    vmin = min(np.nanmin(g.to_numpy()) for g in grids)
    vmax = max(np.nanmax(g.to_numpy()) for g in grids)
    fig = Figure(figsize=(4.2 * len(levels) + 1, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(levels) + 1, sharey=False,
                                      width_ratios=[1] * len(levels) + [0.06]))
    for i, (ax, v, grid) in enumerate(zip(axes, levels, grids)):
        last = i == len(levels) - 1
        sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", vmin=vmin, vmax=vmax, ax=ax,
                    cbar=last, cbar_ax=axes[-1] if last else None,
                    cbar_kws={"label": f"mean {_label(metric)}"}, yticklabels=i == 0)
        ax.set(title=f"{_label(facet)} {v}", xlabel=_label(cols),
               ylabel=_label(rows) if i == 0 else "")
    fig.suptitle(title)
    return fig
