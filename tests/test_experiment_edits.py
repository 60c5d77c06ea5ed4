"""A student's edits to a notebook's experiment cells, made with nbformat on a copy of the
project and run through the runner users call: what the cell says is what runs (issue 27's
Done-when). Slow: each runs a notebook twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers.base import ROOT


def copy_project(dest):
    """The project's code, notebooks and profiles copied to dest, to edit a notebook there and
    run it through the runner as a student would, leaving the checkout as it was."""
    for part in ("helpers", "notebooks", "configs"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_both(tmp_path, project, args: list[str]) -> dict:
    """The checkout as it is, then the edited copy in project, each through the runner (smoke,
    synthetic, args) into its own folder: {"as is": folder, "edited": folder}."""
    env = {**os.environ, "CINIC10_DATA": str(tmp_path / "data")}
    outs = {}
    for name, root in (("as is", None), ("edited", project)):
        out = outs[name] = tmp_path / f"run-{name.replace(' ', '-')}"
        proc = subprocess.run(
            [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--dataset",
             "synthetic", "--out", str(out), *args], cwd=root or ROOT,
            env=env if root is None else {**env, "PYTHONPATH": str(root)},
            text=True, capture_output=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return outs


# 02 at a budget where the ResNet learns the synthetic set: at smoke's own (300 images, 2 epochs)
# every seed stays at chance (accuracy 0.1) with Adam and with SGD alike, which cannot tell them
# apart
LEARNING_02 = ["--only", "02", "--no-report", "-p", "02_resnet.train_per_class=100",
               "-p", "02_resnet.epochs=3"]


@pytest.mark.slow
def test_02_with_sgd_in_its_compile_cell_trains_every_seed_with_sgd(tmp_path):
    """What 02's training cell says is what runs for every seed: a copy of 02 with SGD in
    place of Adam, run through the runner (smoke, synthetic), records SGD for every seed, and
    every seed's test accuracy differs from the same run with Adam."""
    import nbformat

    project = copy_project(tmp_path / "project")
    path = project / "notebooks" / "02_resnet.ipynb"
    nb = nbformat.read(path, 4)
    cells = [c for c in nb.cells if "keras.optimizers.Adam(" in c.source]
    assert len(cells) == 1, "02 should compile with Adam in exactly one cell"
    cells[0].source = cells[0].source.replace("keras.optimizers.Adam(", "keras.optimizers.SGD(")
    nbformat.write(nb, path)
    adam, sgd = (json.loads((out / "results" / "02_resnet.json").read_text())["seeds"]
                 for out in run_both(tmp_path, project, LEARNING_02).values())  # Adam, SGD
    assert [s["seed"] for s in sgd] == [s["seed"] for s in adam] and len(sgd) >= 2
    for a, s in zip(adam, sgd):
        assert a["optimizer"]["class_name"] == "Adam" and s["optimizer"]["class_name"] == "SGD"
        assert s["optimizer"]["config"]["learning_rate"] == a["optimizer"]["config"]["learning_rate"]
        assert "momentum" in s["optimizer"]["config"]  # SGD's whole config, not Adam's
        assert s["test_accuracy"] != a["test_accuracy"], f"seed {s['seed']} as with Adam"


@pytest.mark.slow
def test_05_with_sgd_in_its_fine_tuning_compile_trains_every_seed_with_it(tmp_path):
    """What 05's training cell says is what runs for every seed: a copy of 05 whose fine-tuning
    stage compiles SGD (0.001, momentum 0.9) in place of Adam, run through the runner (smoke,
    synthetic) beside the unchanged notebook, records that SGD as every seed's fine-tuning
    optimiser (and Adam still for its head stage); every seed's head stage is the unchanged
    run's and its fine-tuning differs from it."""
    import nbformat
    import numpy as np
    import pandas as pd

    project = copy_project(tmp_path / "project")
    path = project / "notebooks" / "05_transfer.ipynb"
    nb = nbformat.read(path, 4)
    old = "keras.optimizers.Adam(finetune_lr)"
    cells = [c for c in nb.cells if old in c.source]
    assert len(cells) == 1, "05 should compile its fine-tuning stage in exactly one cell"
    cells[0].source = cells[0].source.replace(old, "keras.optimizers.SGD(0.001, momentum=0.9)")
    nbformat.write(nb, path)
    (adam, adam_history), (sgd, sgd_history) = (  # the notebook as it is (Adam), then SGD
        (json.loads((out / "results" / "05_transfer.json").read_text()),
         pd.read_csv(out / "results" / "05_transfer_history.csv"))
        for out in run_both(tmp_path, project, ["--only", "05", "--no-report"]).values())
    assert [s["seed"] for s in sgd["seeds"]] == [s["seed"] for s in adam["seeds"]]
    assert len(sgd["seeds"]) >= 2
    for a, s in zip(adam["seeds"], sgd["seeds"]):
        assert a["optimizer"]["fine-tuned"]["class_name"] == "Adam"
        tuned = s["optimizer"]["fine-tuned"]
        assert tuned["class_name"] == "SGD", f"seed {s['seed']}: {tuned['class_name']}"
        assert tuned["config"]["learning_rate"] == pytest.approx(0.001)
        assert tuned["config"]["momentum"] == pytest.approx(0.9)
        assert s["optimizer"]["frozen"] == a["optimizer"]["frozen"]  # the head's stage: as it was
        assert s["optimizer"]["frozen"]["class_name"] == "Adam"

    def losses(history, seed, stage):
        rows = history[(history.seed == seed) & (history.stage == stage)
                       & (history.metric == "loss")]
        return rows.sort_values(["split", "epoch"]).value.to_numpy()

    # stage 1 reruns bit for bit (the same seed, code and data), so any difference after it is
    # the edit's; at smoke's size the random VGG19 stays near chance, so it is small but exact
    for seed in (s["seed"] for s in sgd["seeds"]):
        frozen = losses(adam_history, seed, "frozen"), losses(sgd_history, seed, "frozen")
        assert len(frozen[0]) > 0
        np.testing.assert_array_equal(frozen[1], frozen[0])
        tuned = losses(adam_history, seed, "unfrozen"), losses(sgd_history, seed, "unfrozen")
        assert len(tuned[0]) == len(tuned[1]) > 0
        assert not np.array_equal(tuned[1], tuned[0]), f"seed {seed} fine-tuned as with Adam"
def _figure9_size(names: list[str], n_examples: int) -> tuple[int, int]:
    """The pixel size of Figure 9 drawn, as plots.show saves it, with one row per name."""
    import io

    import numpy as np
    from PIL import Image

    from helpers import plots

    blank = np.zeros((n_examples, 32, 32, 3))
    buf = io.BytesIO()
    plots.augmentation_grid(blank, dict.fromkeys(names, blank)).savefig(
        buf, format="png", dpi=110, bbox_inches="tight")
    return Image.open(buf).size


@pytest.mark.slow
def test_04_with_contrast_added_to_its_augmentations_dict_trains_draws_and_tests_it(tmp_path):
    """One more entry in 04's augmentations dict, and nothing else changed: a copy of 04 run
    through the runner (smoke, synthetic) trains contrast for every seed, draws it in Figure 9
    and Figure 10's data, and tests it (C7.contrast, C8.contrast), as an extension: the pooled
    rows still pool the study's five and the run departs from the study in nothing more."""
    import nbformat
    import pandas as pd
    from PIL import Image

    project = copy_project(tmp_path / "project")
    path = project / "notebooks" / "04_augmentation.ipynb"
    nb = nbformat.read(path, 4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "augmentations = {" in c.source]
    assert len(cells) == 1, "04 should build its augmentations dict in exactly one cell"
    lines = cells[0].source.splitlines()
    close = lines.index("}", lines.index("augmentations = {"))
    lines.insert(close, '    "contrast": keras.layers.RandomContrast(0.3),')
    cells[0].source = "\n".join(lines)
    nbformat.write(nb, path)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "--profile", "smoke", "--dataset", "synthetic",
         "--out", str(out), "--only", "04", "--no-report"], cwd=project,
        env={**os.environ, "CINIC10_DATA": str(tmp_path / "data"), "PYTHONPATH": str(project)},
        text=True, capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = out / "results"
    studys = ["brightness", "flip", "rotation", "zoom", "cutout"]
    runs = pd.read_csv(results / "04_augmentation_runs.csv")
    assert sorted(runs[runs.augmentation == "contrast"].seed) == [0, 1]  # every seed trained it
    history = pd.read_csv(results / "04_augmentation_history.csv")  # Figure 10's data
    assert set(history.augmentation) == {"baseline", *studys, "contrast"}
    drawn = Image.open(out / "figures" / "fig09_augmentations.png").size
    assert drawn == _figure9_size([*studys, "contrast"], 4) != _figure9_size(studys, 4)
    found = json.loads((results / "findings.json").read_text())
    rows = {r["id"]: r for r in found["claims"]}
    assert {"C7.contrast", "C8.contrast"} <= set(rows)
    assert rows["C7.contrast"]["role"] == rows["C8.contrast"]["role"] == "sub-claim"
    assert "mean of 5 augmentations" in rows["C7"]["method"]  # the study's five, pooled
    departures = found["regimes"]["04_augmentation"]["departures"]
    assert not [d for d in departures if "augmentations" in d], departures
