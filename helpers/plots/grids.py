"""Figures of hyperparameter grids (03_hyperparams, Figures 4-8), drawn from the trials table
(one row per trial: the grid's parameter columns and a metric column such as
best_val_accuracy). Separate from plots.py so each module stays one screenful of jobs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

METRIC = "best_val_accuracy"
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


def distribution(
    table: pd.DataFrame, by: str, title: str, hue: str | None = None, metric: str = METRIC
) -> Figure:
    """Box plot of metric (accuracy, 0-1) per value of `by`, every trial drawn as a point
    (coloured by `hue` when given, jittered sideways)."""
    levels = sorted(table[by].unique())
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    groups = [table.loc[table[by] == v, metric].to_numpy() for v in levels]
    ax.boxplot(groups, positions=range(len(levels)), widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    colours = _colours(table[hue]) if hue else None
    for i, v in enumerate(levels):
        part = table[table[by] == v]
        x = i + rng.uniform(-0.12, 0.12, len(part))
        c = [colours[h] for h in part[hue]] if hue else "tab:blue"
        ax.scatter(x, part[metric], c=c, s=28, alpha=0.85, zorder=3, edgecolors="white")
    if hue:
        for h, col in colours.items():
            ax.scatter([], [], c=[col], s=28, label=f"{_label(hue)} {h}")
        ax.legend(fontsize=8, loc="best")
    ax.set_xticks(range(len(levels)), [str(v) for v in levels])
    ax.set(xlabel=_label(by), ylabel=_label(metric), title=title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _colours(values: pd.Series) -> dict:
    levels = sorted(values.unique())
    cmap = matplotlib.colormaps["viridis"]
    return {v: cmap(i / max(len(levels) - 1, 1)) for i, v in enumerate(levels)}


def _heatmap_axes(ax, grid: pd.DataFrame, vmin: float, vmax: float, fmt: str = ".3f"):
    """Draw grid (rows x columns of mean accuracy) on ax with every cell annotated."""
    im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    mid = (vmin + vmax) / 2
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            if not np.isnan(v):
                colour = "black" if v > mid else "white"
                ax.text(j, i, format(v, fmt), ha="center", va="center", color=colour, fontsize=9)
    ax.set(xlabel=_label(grid.columns.name), ylabel=_label(grid.index.name))
    return im


def heatmap(table: pd.DataFrame, rows: str, cols: str, title: str, metric: str = METRIC) -> Figure:
    """Mean metric per (rows, cols) cell over seeds, annotated: a (len(rows), len(cols)) grid."""
    grid = table.pivot_table(index=rows, columns=cols, values=metric, aggfunc="mean")
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    im = _heatmap_axes(ax, grid, np.nanmin(grid.to_numpy()), np.nanmax(grid.to_numpy()))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=f"mean {_label(metric)}")
    return fig


def mean_iqr(table: pd.DataFrame, params: list[str], title: str, metric: str = METRIC) -> Figure:
    """One panel per parameter: mean metric per value (line) with the interquartile range of
    all trials at that value (error bars), y axis shared."""
    fig = Figure(figsize=(4 * len(params), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True))
    for ax, p in zip(axes, params):
        g = table.groupby(p)[metric]
        mean, q1, q3 = g.mean(), g.quantile(0.25), g.quantile(0.75)
        x = range(len(mean))
        # IQR as a bar from q1 to q3: with skewed trials the mean can lie outside it
        ax.vlines(list(x), q1, q3, lw=8, alpha=0.3, color="C0", label="interquartile range")
        ax.plot(list(x), mean, "-o", color="C0", label="mean")
        ax.set_xticks(list(x), [str(v) for v in mean.index])
        ax.set(xlabel=_label(p))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{_label(metric)}")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def facet_heatmaps(
    table: pd.DataFrame, rows: str, cols: str, facet: str, title: str, metric: str = METRIC
) -> Figure:
    """One heatmap (rows x cols, mean metric) per value of facet, on one shared colour scale."""
    levels = sorted(table[facet].unique())
    grids = [
        table[table[facet] == v].pivot_table(index=rows, columns=cols, values=metric)
        for v in levels
    ]
    vmin = min(np.nanmin(g.to_numpy()) for g in grids)
    vmax = max(np.nanmax(g.to_numpy()) for g in grids)
    fig = Figure(figsize=(4.2 * len(levels) + 1, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(levels), sharey=True))
    for ax, v, grid in zip(axes, levels, grids):
        im = _heatmap_axes(ax, grid, vmin, vmax)
        ax.set_title(f"{_label(facet)} {v}")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(im, ax=list(axes), label=f"mean {_label(metric)}")
    fig.suptitle(title)
    return fig
