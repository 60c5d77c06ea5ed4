"""The verdict logic on planted data: a clear effect comes out supported, the same effect
reversed contradicted, identical arms inconclusive. Small synthetic tables, no training."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from helpers.experiments import findings, hyperparams

SEEDS = 5


def planted_pairs(effect: float, seed: int = 0):
    """Control and treated arms over shared seeds: treated = control + effect + small noise."""
    rng = np.random.default_rng(seed)
    control = 0.5 + rng.normal(0, 0.03, SEEDS)  # seed-to-seed scatter, shared by both arms
    return control + effect + rng.normal(0, 0.003, SEEDS), control


@pytest.mark.parametrize(
    "claim, effect, expected",
    [
        ("C8", +0.05, "supported"),  # the study: augmentation raises accuracy
        ("C8", -0.05, "contradicted"),
        ("C8", 0.0, "inconclusive"),
        ("C7", -0.05, "supported"),  # the study: augmentation lowers the gap
        ("C7", +0.05, "contradicted"),
        ("C7", 0.0, "inconclusive"),
    ],
)
def test_paired_verdicts_follow_the_planted_effect(claim, effect, expected):
    treated, control = planted_pairs(effect)
    if effect == 0.0:
        treated = control + np.random.default_rng(1).normal(0, 0.003, SEEDS)
    row = findings.finding(claim, findings.paired_interval(treated, control), "paired t")
    assert row["verdict"] == expected
    assert row["n"] == SEEDS and row["ci_low"] <= row["estimate"] <= row["ci_high"]


def test_identical_arms_are_inconclusive():
    arm = [0.4, 0.5, 0.45]
    row = findings.finding("C8", findings.paired_interval(arm, arm), "paired t")
    assert row["verdict"] == "inconclusive" and row["estimate"] == 0.0
    # float32 round-off between two arms that learned nothing is no effect either
    row = findings.finding("C8", findings.paired_interval([0.1 + 1.5e-9] * 2, [0.1] * 2), "t")
    assert row["verdict"] == "inconclusive" and row["estimate"] == 0.0


def test_the_pairing_is_what_makes_a_small_effect_visible():
    treated, control = planted_pairs(0.01)
    paired = findings.finding("C8", findings.paired_interval(treated, control), "paired")
    unpaired = findings.finding("C8", findings.welch_interval(treated, control), "welch")
    assert paired["verdict"] == "supported" and unpaired["verdict"] == "inconclusive"


def test_one_run_gives_no_interval_and_no_verdict():
    row = findings.finding("C8", findings.paired_interval([0.6], [0.5]), "paired t")
    assert row["ci_low"] is None and row["verdict"] == "inconclusive"
    assert "one run cannot separate" in findings.sentence(row)


@pytest.mark.parametrize(
    "accuracies, comparable, expected",
    [
        ([0.70, 0.69, 0.71], True, "supported"),  # the interval reaches 0.6916
        ([0.60, 0.61, 0.605], True, "contradicted"),  # wholly below
        ([0.95, 0.96, 0.955], False, "not comparable"),  # not CINIC-10: never compared
    ],
)
def test_absolute_claims(accuracies, comparable, expected):
    row = findings.finding("C1", findings.mean_interval(accuracies), "t", comparable=comparable)
    assert row["verdict"] == expected and row["direction"] == "abs"


def grid(effect_blocks: float, effect_kernel: float, noise: float = 0.005, seed: int = 0):
    """03's training grid (blocks x kernel) with planted main effects and a little noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for b, k in itertools.product([1, 3, 5], [2, 3, 4, 5]):
        acc = 0.3 + effect_blocks * (b == 5) + effect_kernel * (k - 2) + rng.normal(0, noise)
        rows.append({"n_blocks": b, "kernel_size": k, "best_val_accuracy": acc})
    return pd.DataFrame(rows)


def reg_grid(effect_dropout: float, effect_lam: float, noise: float = 0.005, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for a, lam, d in itertools.product([0.2, 0.5, 0.8], [0.001, 0.01, 0.1], [0.1, 0.3, 0.5]):
        acc = 0.3 + effect_dropout * d + effect_lam * np.log10(lam) + rng.normal(0, noise)
        rows.append({"alpha": a, "lam": lam, "dropout": d, "best_val_accuracy": acc})
    return pd.DataFrame(rows)


def verdicts(train, reg):
    return {r["id"]: r["verdict"] for r in hyperparams.claims(train, reg)}


def test_grid_claims_follow_planted_effects():
    # 5 blocks much worse, larger kernels better, dropout matters most, larger lambda worse
    got = verdicts(grid(-0.1, 0.02), reg_grid(-0.3, -0.02))
    assert got == {"C2": "supported", "C3": "supported", "C4": "supported",
                   "C5": "supported", "C6": "supported"}
    # the same effects reversed
    got = verdicts(grid(+0.1, -0.02), reg_grid(0.0, +0.02))
    assert got["C2"] == "contradicted" and got["C3"] == "contradicted"
    assert got["C4"] == "contradicted" and got["C6"] == "contradicted"
    assert got["C5"] == "contradicted"  # lambda's spread beats an absent dropout effect


def test_grid_claims_without_effects_are_inconclusive():
    got = verdicts(grid(0.0, 0.0, noise=0.02, seed=3), reg_grid(0.0, 0.0, noise=0.02, seed=3))
    assert set(got.values()) == {"inconclusive"}, got


def test_grid_claims_skip_levels_the_grid_lacks():
    small = grid(-0.1, 0.02).query("n_blocks == 1 and kernel_size in (2, 3)")
    ids = {r["id"] for r in hyperparams.claims(small, reg_grid(-0.3, 0.02))}
    assert "C2" not in ids and "C4" not in ids and {"C5", "C6"} <= ids


def test_findings_file_has_the_documented_shape(tmp_path):
    row = findings.finding("C1", findings.mean_interval([0.6, 0.62, 0.61]), "t interval")
    findings.save(tmp_path, "02_resnet", [row], dataset="synthetic", profile="smoke")
    grid_rows = hyperparams.claims(grid(-0.1, 0.02), reg_grid(-0.3, 0.02))
    findings.save(tmp_path, "03_hyperparams", grid_rows, dataset="synthetic", profile="smoke")
    data = json.loads((tmp_path / "results" / "findings.json").read_text())
    assert set(data) == {"dataset", "profile", "backend", "claims"} and data["profile"] == "smoke"
    keys = {"id", "notebook", "claim", "study", "quantity", "direction", "estimate", "ci_low",
            "ci_high", "n", "method", "verdict"}
    assert [r["id"] for r in data["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    for r in data["claims"]:
        assert set(r) == keys and r["direction"] in {"+", "-", "abs"}
        assert r["verdict"] == findings.verdict(
            findings.CLAIMS[r["id"]], r["ci_low"], r["ci_high"], comparable=True
        ) or r["direction"] == "abs"


def test_augmentation_claims_pair_each_arm_with_its_seeds_baseline():
    from helpers.experiments import augmentation

    rng = np.random.default_rng(0)
    results = []
    for seed in range(4):
        start = rng.normal(0, 0.05)  # a seed's luck, shared by its arms (same initial weights)
        for name, gap, acc in (("baseline", 0.30, 0.50), ("flip", 0.10, 0.50),
                               ("zoom", 0.31, 0.50)):
            results.append({"name": name, "seed": seed, "gap": gap + start + rng.normal(0, .005),
                            "test_accuracy": acc + start + rng.normal(0, 0.005),
                            "train_accuracy": 0, "valid_accuracy": 0, "weights_epoch": 1,
                            "n_train_images": 1, "train_seconds": 1})
    got = {r["id"]: r["verdict"] for r in augmentation.claims(results)}
    assert got["C7.flip"] == "supported"  # a large drop of the gap, beyond the seeds' luck
    assert got["C7.zoom"] == "inconclusive" and got["C8.flip"] == "inconclusive"
    assert got["C7"] == "supported" and got["C8"] == "inconclusive"
    text = augmentation.conclusion(augmentation.claims(results), "planted", False)
    assert "beyond the scatter for flip" in text and "raised" not in text
