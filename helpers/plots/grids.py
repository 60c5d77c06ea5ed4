"""Figures 4-8 of 03's grids, from its trials table (one row per trial: parameters and METRIC);
a parameter's values are categories, in numeric order (seaborn's)."""

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


def distribution(table: pd.DataFrame, by: str, title: str, hue: str) -> Figure:
    """Box plot of the accuracy per value of `by`, every trial a point coloured by `hue`."""
    ax = Figure(figsize=(6.5, 4)).subplots()
    sns.boxplot(table, x=by, y=METRIC, showfliers=False, fill=False, color="0.3", width=0.5, ax=ax)
    # hue as text, so the colours are one per level (a number would be a continuous scale)
    levels = [str(v) for v in sorted(table[hue].unique())]
    sns.stripplot(table.assign(**{hue: table[hue].astype(str)}), x=by, y=METRIC, hue=hue,
                  hue_order=levels, palette="viridis", jitter=0.12, size=6, alpha=0.85, ax=ax)
    ax.legend(title=_label(hue), fontsize=8)
    ax.set(xlabel=_label(by), ylabel=_label(METRIC), title=title)
    return ax.figure


def _heatmap(ax, table: pd.DataFrame, rows: str, cols: str, **kwargs) -> None:
    grid = table.pivot_table(index=rows, columns=cols, values=METRIC, aggfunc="mean")
    sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", ax=ax,
                cbar_kws={"label": f"mean {_label(METRIC)}"}, **kwargs)
    ax.set(xlabel=_label(cols), ylabel=_label(rows))


def heatmap(table: pd.DataFrame, rows: str, cols: str, title: str) -> Figure:
    """Mean accuracy per (rows, cols) cell over seeds, every cell annotated."""
    ax = Figure(figsize=(6.5, 4.2)).subplots()
    _heatmap(ax, table, rows, cols)
    ax.set_title(title)
    return ax.figure


def mean_iqr(table: pd.DataFrame, params: list[str], title: str) -> Figure:
    """A panel per parameter: mean accuracy per value, bars the trials' interquartile range."""
    fig = Figure(figsize=(4 * len(params), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True))
    for ax, param in zip(axes, params):
        # ("pi", 50): the 25th to 75th percentile; with skewed trials the mean can lie outside
        sns.pointplot(table, x=param, y=METRIC, estimator="mean", errorbar=("pi", 50),
                      capsize=0.15, ax=ax)
        ax.set(xlabel=_label(param), ylabel="")
    axes[0].set_ylabel(f"{_label(METRIC)}\n(mean; bars: interquartile range)")
    fig.suptitle(title)
    return fig


def facet_heatmaps(table: pd.DataFrame, rows: str, cols: str, facet: str, title: str) -> Figure:
    """Three parameters at once: a heatmap (rows x cols) per value of facet, one colour scale."""
    levels = sorted(table[facet].unique())
    means = table.groupby([facet, rows, cols])[METRIC].mean()
    fig = Figure(figsize=(4.2 * len(levels) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(levels) + 1, width_ratios=[1] * len(levels) + [0.06])
    for i, (ax, v) in enumerate(zip(axes, levels)):
        _heatmap(ax, table[table[facet] == v], rows, cols, vmin=means.min(),
                 vmax=means.max(), cbar=v == levels[-1], cbar_ax=axes[-1], yticklabels=i == 0)
        ax.set_title(f"{_label(facet)} {v}")
        if i:
            ax.set_ylabel("")
    fig.suptitle(title)
    return fig
