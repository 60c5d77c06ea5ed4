"""Figures, numbered and captioned as in the study, saved under <run>/figures/ and shown."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # figures are saved and displayed as PNGs; no GUI backend needed
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .artifacts import run_paths  # noqa: E402
from .atomic import write_atomic  # noqa: E402


def show(fig: Figure, run_dir, number: int | str, slug: str, caption: str) -> None:
    """Save fig as figures/figNN_slug.png and display it with its caption 'Figure N: …'."""
    from IPython.display import Image, Markdown, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    png = buf.getvalue()
    tag = f"{int(number):02d}" if str(number).isdigit() else str(number)
    write_atomic(
        run_paths(run_dir)["figures"] / f"fig{tag}_{slug}.png", lambda p: p.write_bytes(png)
    )
    display(Image(png))
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


def curves(
    history: pd.DataFrame, metric: str, title: str, reference: float | None = None
) -> Figure:
    """Train vs validation `metric` per epoch from a tidy history (epoch, split, metric, value)."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for split, style in (("train", "-o"), ("valid", "-s")):
        part = history[(history.metric == metric) & (history.split == split)]
        ax.plot(part.epoch, part.value, style, label={"valid": "validation"}.get(split, split))
    if reference is not None:
        ax.axhline(
            reference, color="grey", ls="--", lw=1, label=f"study's test result {reference:.4f}"
        )
    ax.set(xlabel="epoch", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def confusion(cm: list[list[int]], classes: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix (true class per row), shares annotated."""
    m = np.asarray(cm, float)
    m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{m[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > 0.5 else "black",
            )
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig
