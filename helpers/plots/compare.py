"""The comparison as one picture: claims down the side, within each claim one line per run
(the estimate and its 95% interval in the verdict's colour, a marker per run), turned so that
right of zero is the study's way; absolute accuracies on a panel of their own."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from helpers.experiments.findings import COLOURS
from helpers.plots.findings import _label, _turned

MARKERS = "os^DvP*X"


def marker(k: int) -> str:
    """Run k's marker: a shape for the first eight, then its number (never one twice)."""
    return MARKERS[k] if k < len(MARKERS) else f"${k + 1}$"


def across(runs: list[tuple[str, list[dict]]]) -> Figure | None:
    """runs: (label, findings rows) each. None when no run has a row with an estimate."""
    def shown(rows):
        return {r["id"]: r for r in rows if r["role"] != "sub-claim"
                and r["direction"] != "fact" and r.get("estimate") is not None}

    per_run = [(label, shown(rows)) for label, rows in runs]
    ids = list(dict.fromkeys(i for _, rows in per_run for i in rows))
    if not ids:
        return None
    first = {i: next(rows[i] for _, rows in per_run if i in rows) for i in ids}
    panels = [[i for i in ids if first[i]["direction"] in "+-"],
              [i for i in ids if first[i]["direction"] == "abs"]]
    panels = [p for p in panels if p]
    heights = [len(p) for p in panels]
    fig = Figure(figsize=(9, 0.28 * len(runs) * sum(heights) + 2.0), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    step = 0.8 / max(len(runs), 1)
    for ax, claims in zip(axes[:, 0], panels):
        for yi, cid in enumerate(reversed(claims)):
            for k, (_, rows) in enumerate(per_run):
                r = rows.get(cid)
                if r is None:
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
    used = sorted({r["verdict"] for _, rows in per_run for r in rows.values()},
                  key=list(COLOURS).index)
    handles = [Line2D([], [], color=COLOURS[v], lw=3, label=v) for v in used]
    handles += [Line2D([], [], color="black", marker=marker(k), ls="",
                       label=label) for k, (label, _) in enumerate(runs)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize=8, frameon=False)
    return fig
