"""Figures, numbered and captioned as in the study, saved under <run>/figures/ and shown; the
findings as figures: forest (one run, the report's Figure F) and across (runs, for compare)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # figures are saved and displayed as PNGs; no GUI backend needed
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from helpers.artifacts import run_paths  # noqa: E402
from helpers.atomic import write_atomic  # noqa: E402
from helpers.experiments.findings import COLOURS, claim_of  # noqa: E402

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


def _turned(row: dict, key: str) -> float | None:
    value = row.get(key)
    return None if value is None else (-value if row["direction"] == "-" else value)


def _label(row: dict) -> str:
    text = f"{row['id']} {row['claim']}"
    return text if len(text) <= 52 else text[:49] + "..."


def _shown(rows: list[dict]) -> list[dict]:
    """Claims and sensitivity rows with an estimate (sub-claims and facts stay in notebooks)."""
    return [r for r in rows if r["role"] != "sub-claim" and r["direction"] != "fact"
            and r.get("estimate") is not None]


def _figure(size: tuple[float, float], heights: list[int], verdicts, more: list[Line2D],
            ncols: int, fontsize: int) -> tuple[Figure, np.ndarray]:
    """Panels stacked (one per height) above a legend: the verdicts' colours, then more."""
    fig = Figure(figsize=size, layout="constrained")
    handles = [Line2D([], [], color=COLOURS[v], lw=3, label=v)
               for v in sorted(set(verdicts), key=list(COLOURS).index)] + more
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), ncols),
               fontsize=fontsize, frameon=False)
    return fig, fig.subplots(len(heights), 1, squeeze=False,
                             gridspec_kw={"height_ratios": heights})[:, 0]


def forest(rows: list[dict]) -> Figure | None:
    """±Δ shaded, the study's number ticked, thin: one new run; None without an estimate."""
    shown = _shown(rows)
    relative = [r for r in shown if r["direction"] in ("+", "-")]
    absolute = [r for r in shown if r["direction"] == "abs"]
    if not shown:
        return None
    heights = [max(len(relative), 1), max(len(absolute), 1)] if absolute else [len(relative)]
    # sized to share page 1 with the compact table: a fifth of an inch per row
    fig, axes = _figure((8, 0.2 * sum(heights) + 1.2), heights, [r["verdict"] for r in shown],
                        [Line2D([], [], color="black", marker="|", ls="", ms=12,
                                label="the study's number")], 6, 7)
    if relative:
        _panel(axes[0], relative, absolute=False)
    if absolute:
        _panel(axes[-1], absolute, absolute=True)
    return fig


def _panel(ax, rows: list[dict], absolute: bool) -> None:
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        colour = COLOURS[r["verdict"]]
        target = claim_of(r["id"]).target
        centre = target if target is not None else (None if absolute else 0.0)
        if centre is not None:  # ±Δ around no effect, or around the study's number
            ax.fill_betweenx([yi - 0.4, yi + 0.4], centre - r["delta"], centre + r["delta"],
                             color="0.88", lw=0)
        if target is not None:
            ax.plot([target], [yi], marker="|", ms=10, color="black", ls="")
        est, lo, hi, pi_lo, pi_hi = (_turned(r, k) for k in
                                     ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"))
        if r["direction"] == "-":  # turned: the bounds swap
            lo, hi, pi_lo, pi_hi = hi, lo, pi_hi, pi_lo
        if pi_lo is not None and (absolute or target is not None):
            ax.plot([pi_lo, pi_hi], [yi, yi], color=colour, lw=1, alpha=0.7)
        if lo is not None:
            ax.plot([lo, hi], [yi, yi], color=colour, lw=3.5, solid_capstyle="butt")
        ax.plot([est], [yi], marker="o", color=colour, ms=5,
                mfc="white" if r["role"] == "sensitivity" else colour)
    ax.set_yticks(y, [_label(r) for r in rows], fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if absolute:
        ax.set_xlabel("test accuracy (thick: 95% interval of the mean; thin: one new run)",
                      fontsize=8)
    else:
        ax.axvline(0, color="0.4", lw=1)
        ax.set_xlabel("effect in accuracy, turned so that right of 0 is the study's way "
                      "(grey: ±Δ; open dot: sensitivity row)", fontsize=8)
    ax.grid(axis="y", visible=False)


MARKERS = "os^DvP*X"


def marker(k: int) -> str:
    """Run k's marker: a shape for the first eight, then its number (never one twice)."""
    return MARKERS[k] if k < len(MARKERS) else f"${k + 1}$"


def across(runs: list[tuple[str, list[dict]]]) -> Figure | None:
    """runs: (label, findings rows) each, a marker per run; None without an estimate."""
    per_run = [{r["id"]: r for r in _shown(rows)} for _, rows in runs]
    ids = list(dict.fromkeys(i for rows in per_run for i in rows))
    if not ids:
        return None
    first = {i: next(rows[i] for rows in per_run if i in rows) for i in ids}
    panels = [p for p in ([i for i in ids if first[i]["direction"] in "+-"],
                          [i for i in ids if first[i]["direction"] == "abs"]) if p]
    heights = [len(p) for p in panels]
    fig, axes = _figure((9, 0.28 * len(runs) * sum(heights) + 2.0), heights,
                        [r["verdict"] for rows in per_run for r in rows.values()],
                        [Line2D([], [], color="black", marker=marker(k), ls="", label=label)
                         for k, (label, _) in enumerate(runs)], 4, 8)
    step = 0.8 / max(len(runs), 1)
    for ax, claims in zip(axes, panels):
        for yi, cid in enumerate(reversed(claims)):
            for k, rows in enumerate(per_run):
                if (r := rows.get(cid)) is None:
                    continue
                y = yi + 0.4 - step * (k + 0.5)
                colour = COLOURS[r["verdict"]]
                est, lo, hi = (_turned(r, key) for key in ("estimate", "ci_low", "ci_high"))
                if lo is not None:
                    ax.plot(sorted([lo, hi]), [y, y], color=colour, lw=3, solid_capstyle="butt")
                ax.plot([est], [y], marker=marker(k), color=colour, ms=6, ls="")
        ax.set_yticks(range(len(claims)), [_label(first[c]) for c in reversed(claims)],
                      fontsize=8)
        ax.set_ylim(-0.6, len(claims) - 0.4)
        ax.grid(axis="y", visible=False)
        if first[claims[0]]["direction"] == "abs":
            ax.set_xlabel("test accuracy (95% interval of the mean)")
        else:
            ax.axvline(0, color="0.4", lw=1)
            ax.set_xlabel("effect in accuracy, turned so that right of 0 is the study's way")
    return fig
