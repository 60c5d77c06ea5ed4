"""Figures, numbered and captioned as in the study, saved under <run>/figures/ and shown."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # figures are saved and displayed as PNGs; no GUI backend needed
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from helpers.artifacts import run_paths  # noqa: E402
from helpers.atomic import write_atomic  # noqa: E402

# one look for every figure (seaborn's, a light grid), set on import; every text plain: names
# from the data (a class folder `$x$`) are never typeset as mathtext, or raise as a bad formula
sns.set_theme(context="notebook", style="whitegrid", palette="deep", rc={"text.parse_math": False})


def png(fig: Figure) -> bytes:
    """fig as PNG bytes, as every saved figure (110 dpi, cropped)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def show(fig: Figure, run_dir, number: int | str, slug: str, caption: str) -> None:
    """Save fig as figures/figNN_slug.png and display it with its caption 'Figure N: …'."""
    from IPython.display import Image, Markdown, display

    data = png(fig)
    tag = f"{int(number):02d}" if str(number).isdigit() else str(number)
    path = run_paths(run_dir)["figures"] / f"fig{tag}_{slug}.png"
    write_atomic(path, lambda p: p.write_bytes(data))
    display(Image(data))
    display(Markdown(f"*Figure {number}: {caption}*"))


def examples_per_class(x: np.ndarray, y: np.ndarray, classes: list[str], seed: int = 0) -> Figure:
    """Figure 1: one random example of every class, enlarged (nearest neighbour, no blur)."""
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(2 * len(classes), 2.4))
    axes = fig.subplots(1, len(classes))
    for c, (ax, name) in enumerate(zip(axes, classes)):
        ax.imshow(x[rng.choice(np.flatnonzero(y == c))], interpolation="nearest")
        ax.set_title(name, fontsize=11)
        ax.axis("off")
    return fig


def curves(history: pd.DataFrame, metric: str, title: str) -> Figure:
    """Train vs validation `metric` per epoch from a tidy history (epoch, split, metric, value)."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    seeds = history["seed"].nunique() if "seed" in history else 1
    for split, marker in (("train", "o"), ("valid", "s")):
        part = history[(history.metric == metric) & (history.split == split)]
        label = {"valid": "validation"}.get(split, split) + (
            f" (mean of {seeds} seeds; band: lowest to highest)" if seeds > 1 else "")
        # one line per split: the mean over seeds, with the seeds' full range as a band
        sns.lineplot(part, x="epoch", y="value", marker=marker, errorbar=("pi", 100), ax=ax,
                     label=label)
    ax.set(xlabel="epoch", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def confusion(cm: list[list[int]], classes: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix (true class per row), shares annotated."""
    counts = np.asarray(cm, float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (classes, classes)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    sns.heatmap(pd.DataFrame(shares, index=classes, columns=classes), annot=True, fmt=".2f",
                annot_kws={"fontsize": 7}, cmap="Blues", vmin=0, vmax=1, square=True, ax=ax,
                cbar_kws={"fraction": 0.046})
    ax.tick_params(axis="x", labelrotation=45)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return fig


def augmentation_grid(originals: np.ndarray, augmented: dict[str, np.ndarray]) -> Figure:
    """Figure 9: originals (n, 32, 32, 3) in the top row, each augmentation's version below."""
    rows = {"original": originals, **augmented}
    n = len(originals)
    fig = Figure(figsize=(1.5 * n + 1.2, 1.5 * len(rows)))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.imshow(np.clip(images[c], 0, 1), interpolation="nearest")
            ax.set(xticks=[], yticks=[])
        axes[r, 0].set_ylabel(name, fontsize=11, rotation=0, ha="right", va="center")
    return fig


def augmentation_curves(history: pd.DataFrame, baseline: str = "baseline") -> Figure:
    """Figure 10: accuracy per epoch (validation solid, train dotted), a panel per augmentation."""
    acc = history[history.metric == "accuracy"]
    if "seed" in acc:  # several seeds: each run's curve is the mean over them
        acc = acc.groupby(["augmentation", "split", "epoch"], as_index=False, sort=False).value.mean()
    names = [n for n in acc.augmentation.unique() if n != baseline]
    fig = Figure(figsize=(3.2 * len(names), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    for ax, name in zip(axes, names):
        for run, color in ((baseline, "grey"), (name, "C0")):
            part = acc[acc.augmentation == run]
            for split, style, words in (("valid", "-o", "validation"), ("train", ":", "train")):
                line = part[part.split == split]
                who = "baseline" if run == baseline else "augmented"
                ax.plot(line.epoch, line.value, style, color=color, ms=3, label=f"{who}, {words}")
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def stage_curves(history: pd.DataFrame, title: str, reference: float | None = None,
                 boundary: float | None = None) -> Figure:
    """Figures 11-12: accuracy and loss per epoch, train vs validation; dotted: base unfrozen."""
    fig = Figure(figsize=(11, 4))
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss")):
        for split, style in (("train", "-o"), ("valid", "-s")):
            part = history[(history.metric == metric) & (history.split == split)]
            ax.plot(part.epoch, part.value, style, label={"valid": "validation"}.get(split, split))
        if reference is not None and metric == "accuracy":
            ax.axhline(reference, color="grey", ls="--", lw=1,
                       label=f"study's test {reference:.4f}")
        if boundary is not None:
            ax.axvline(boundary + 0.5, color="black", ls=":", lw=1, label="base unfrozen")
        ax.set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
