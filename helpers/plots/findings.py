"""The findings as figures, turned so that right of zero is the study's way, in the verdicts'
colours: forest (one run, the report's Figure F) and across (runs side by side, for compare)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers.experiments.findings import COLOURS, claim_of


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
