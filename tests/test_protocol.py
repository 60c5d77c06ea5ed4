"""The study's protocol and its labels (issue 11): the dry run and its origins, project choices
marked in the parameters cells and configs/full.yaml, full refusing generated data, 04's
doubled set and rotation; and the run record (run.json) that reports are built from."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import augmentation_layers, cli, write_layout

from helpers.base import CONFIGS, StudyError
from helpers.experiments import protocol as study
from helpers.run.profiles import explain, notebook_parameters, notebooks

# --- the dry run --------------------------------------------------------------------------------


def test_dry_run_json_for_full_shows_the_studys_settings(tmp_path, data_home):
    proc = cli("run", "--profile", "full", "--dry-run", "--json", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["profile"] == "full"
    books = found["notebooks"]
    assert list(books) == [p.stem for p in notebooks()]
    for stem in ("02_resnet", "03_hyperparams", "04_augmentation", "05_transfer"):
        assert books[stem]["mixed_precision"] == {"value": False, "origin": "study"}  # float32
    for stem in ("02_resnet", "03_hyperparams"):
        assert books[stem]["bn_momentum"] == {"value": 0.99, "origin": "study"}
    assert books["05_transfer"]["finetune_learning_rate"] == {"value": 1e-05, "origin": "study"}
    assert books["05_transfer"]["head_learning_rate"]["origin"] == "project"
    assert books["04_augmentation"]["doubled_set"] == {"value": "once", "origin": "study"}
    assert books["03_hyperparams"]["epochs"] == {"value": 20, "origin": "project"}
    assert books["02_resnet"]["patience"]["origin"] == "project"
    # nothing ran, nothing was loaded or written
    assert not data_home.exists() and not any(tmp_path.iterdir())


def test_dry_run_origins_follow_profile_and_overrides(tmp_path):
    gpu = explain("gpu", dataset=None, out=str(tmp_path))["notebooks"]
    assert gpu["02_resnet"]["mixed_precision"] == {"value": True, "origin": "profile"}
    assert gpu["02_resnet"]["batch_size"] == {"value": 256, "origin": "profile"}
    quick = explain("quick", dataset=None, out=str(tmp_path), overrides=["02_resnet.dropout=0.3"])
    books = quick["notebooks"]
    assert books["02_resnet"]["bn_momentum"] == {"value": 0.9, "origin": "profile"}
    assert books["02_resnet"]["dropout"] == {"value": 0.3, "origin": "-p"}
    assert books["03_hyperparams"]["dropout"] == {"value": 0.2, "origin": "study"}
    assert books["02_resnet"]["epochs"] == {"value": 4, "origin": "profile"}


def test_dry_run_text_lists_every_parameter(tmp_path):
    proc = cli("run", "--profile", "smoke", "--dry-run", "--only", "05", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for key in notebook_parameters(notebooks(["05"])[0]):
        assert f"  {key} " in proc.stdout
    assert "finetune_learning_rate" in proc.stdout and "study" in proc.stdout


# --- the project's choices are labelled as such, from one source of truth -----------------------


def _cell_lines(nb: Path) -> dict[str, str]:
    cell = next(c for c in nbformat.read(nb, 4).cells if "parameters" in c.metadata.get("tags", []))
    return {ln.split("=")[0].strip(): ln for ln in cell.source.splitlines() if " = " in ln}


def test_parameters_cells_mark_exactly_the_projects_choices():
    for nb in notebooks():
        for key, line in _cell_lines(nb).items():
            if key in study.RUN_KEYS:
                continue
            mine = "project's choice" in line
            assert mine != (key in study.study_settings(nb.stem)), f"{nb.stem}: {line!r}"


def test_full_yaml_marks_the_projects_choices():
    lines = (CONFIGS / "full.yaml").read_text().splitlines()
    stem = None
    for line in lines:
        if line.startswith("  ") and not line.startswith("    ") and line.strip().endswith(":"):
            stem = line.strip()[:-1]
        if not line.startswith("    ") or ":" not in line:
            continue
        key = line.split(":")[0].strip()
        if stem and key not in study.study_settings(stem):
            assert "project's choice" in line or key == "repeats", line


# --- full never quietly runs on generated data --------------------------------------------------


def test_full_with_auto_and_no_cinic10_stops_within_seconds(tmp_path):
    t0 = time.perf_counter()
    proc = cli("run", "--profile", "full", "--dataset", "auto", "--out", str(tmp_path / "r"))
    assert time.perf_counter() - t0 < 60  # seconds, not the hours of training on synthetic
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "CINIC10_DIR" in err and "--dataset" in err
    assert not (tmp_path / "r" / "executed").exists()


def test_full_still_runs_on_a_dataset_named_explicitly(tmp_path):
    from helpers.run.runner import _load

    with pytest.raises(StudyError, match="runs on CINIC-10 only"):
        _load("auto", "full", {"synthetic_fallback": False})
    path = write_layout(tmp_path / "mine", classes=("a", "b"), per_class=6)
    assert _load(str(path), "full", {"synthetic_fallback": False}).kind == "folder"


# --- 04: the doubled set, rotation --------------------------------------------------------------


def _epoch_images(ds) -> list[bytes]:
    return sorted(img.tobytes() for x, _ in ds for img in x.numpy())


def test_doubled_set_is_the_same_on_every_epoch():
    from helpers.data import augment
    from helpers.data.dataset import Split
    from helpers.data.pipeline import make_input

    rng = np.random.default_rng(0)
    n = 24
    split = Split(
        rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
        np.arange(n) % 10,
        np.array([f"i{i}" for i in range(n)]),
        np.full(n, "s"),
    )
    fn = augment.from_layers(augmentation_layers(rotation=0.24)["rotation"])
    doubled = augment.doubled_split(split, fn, seed=0)
    assert len(doubled) == 2 * n
    np.testing.assert_array_equal(doubled.x[:n], split.x)  # the originals, then the copy
    assert not np.array_equal(doubled.x[n:], split.x)
    ds = make_input(doubled, 5, seed=1)  # reshuffled every epoch, same images
    first, second = _epoch_images(ds), _epoch_images(ds)
    assert first == second
    np.testing.assert_array_equal(augment.doubled_split(split, fn, seed=0).x, doubled.x)
    # negative control: the every_epoch regime draws another copy each epoch
    redraw = make_input(split, 5, seed=1, augment=fn, repeat_augmented=True)
    assert _epoch_images(redraw) != _epoch_images(redraw)


def test_rotation_reaches_past_54_degrees_and_stays_under_90():
    import tensorflow as tf

    from helpers.data import augment

    full = explain("full", dataset=None, out="x")["notebooks"]["04_augmentation"]["rotation"]
    layer = augmentation_layers(rotation=full["value"])["rotation"]  # 04's, at full's value
    seeds = augment._BatchSeeds(tf.constant([0, 0]))
    angles = np.abs(
        layer.get_random_transformation(np.zeros((512, 32, 32, 3), np.float32), seed=seeds)[
            "angle"
        ].numpy()
    )
    assert 54 < angles.max() < 90
    assert (angles > 54).mean() > 0.2  # not a rare tail: a third of the range lies past 54
