"""Every figure treats names from the data as text: a class folder or a title with dollar signs is
drawn as typed, never parsed as matplotlib mathtext (which raises on a bad formula)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import notebook_code
from matplotlib.text import Text

from helpers import plots

BAD = r"$\frac{$"  # not a formula: mathtext raises on it
NAMES = [BAD, "a$x_1$b", "plain"]  # (the second would be typeset as a formula)
# 03's grid figures, as its notebook's cell defines them
distribution = notebook_code("03_hyperparams", "distribution")
heatmap = notebook_code("03_hyperparams", "heatmap")
mean_iqr = notebook_code("03_hyperparams", "mean_iqr")
facet_heatmaps = notebook_code("03_hyperparams", "facet_heatmaps")


def _drawn(fig) -> list[str]:
    """Render fig to PNG (where mathtext would raise) and return every text it shows."""
    fig.savefig(io.BytesIO(), format="png")
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _history(names=("baseline", BAD)) -> pd.DataFrame:
    rows = [{"augmentation": n, "seed": s, "epoch": e, "split": sp, "metric": m, "value": 0.5}
            for n, s, e, sp, m in itertools.product(names, [0, 1], [1, 2], ["train", "valid"],
                                                    ["accuracy", "loss"])]
    return pd.DataFrame(rows)


def test_class_names_in_the_examples_and_the_confusion_matrix_are_text():
    x = np.zeros((3, 32, 32, 3), np.uint8)
    texts = _drawn(plots.examples_per_class(x, np.array([0, 1, 2]), NAMES))
    assert BAD in texts and "a$x_1$b" in texts
    texts = _drawn(plots.confusion([[1, 0, 0], [0, 1, 0], [0, 0, 1]], NAMES, f"title {BAD}"))
    assert BAD in texts and f"title {BAD}" in texts


def test_titles_and_run_names_in_the_curves_are_text():
    assert f"t {BAD}" in _drawn(plots.curves(_history(), "accuracy", f"t {BAD}"))
    assert BAD in _drawn(plots.augmentation_curves(_history()))
    texts = _drawn(plots.stage_curves(_history(["x"]).query("seed == 0"), BAD, 0.5, 1))
    assert f"{BAD}: accuracy" in texts
    shown = {"flip": np.zeros((2, 32, 32, 3)), BAD: np.zeros((2, 32, 32, 3))}
    assert BAD in _drawn(plots.augmentation_grid(np.zeros((2, 32, 32, 3)), shown))


@pytest.mark.parametrize("figure", ["distribution", "heatmap", "mean_iqr", "facet_heatmaps"])
def test_grid_figures_treat_levels_and_titles_as_text(figure):
    table = pd.DataFrame([{"a": a, "b": b, "c": c, "best_val_accuracy": 0.1 * i}
                          for i, (a, b, c) in enumerate(itertools.product(NAMES, [1, 2], [3, 4]))])
    fig = {
        "distribution": lambda: distribution(table, "a", BAD, hue="b"),
        "heatmap": lambda: heatmap(table, "a", "b", BAD),
        "mean_iqr": lambda: mean_iqr(table, ["a", "b"], BAD),
        "facet_heatmaps": lambda: facet_heatmaps(table, "b", "a", "c", BAD),
    }[figure]()
    texts = _drawn(fig)
    assert BAD in texts


def test_the_compare_figure_gives_every_run_its_own_marker_past_eight():
    from helpers.plots import across

    row = {"id": "C1", "claim": "a claim", "role": "claim", "direction": "abs",
           "estimate": 0.3, "ci_low": 0.2, "ci_high": 0.4, "verdict": "reproduced"}
    fig = across([(f"run{k}", [row]) for k in range(12)])
    shown = [h.get_marker() for h in fig.legends[0].legend_handles if h.get_marker() != "None"]
    assert len(shown) == 12 and len(set(shown)) == 12
