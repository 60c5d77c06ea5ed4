"""The comparison as one picture: claims down the side, within each claim one line per run (the
estimate and its 95% interval in the verdict's colour, a marker per run), turned so that right
of zero is the study's way; absolute accuracies on a panel of their own."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers.experiments.findings import COLOURS
from helpers.plots.findings import _figure, _label, _shown, _turned

MARKERS = "os^DvP*X"


def marker(k: int) -> str:
    """Run k's marker: a shape for the first eight, then its number (never one twice)."""
    return MARKERS[k] if k < len(MARKERS) else f"${k + 1}$"


def across(runs: list[tuple[str, list[dict]]]) -> Figure | None:
    """runs: (label, findings rows) each. None when no run has a row with an estimate."""
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
