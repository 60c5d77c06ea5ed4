"""The verdict logic on planted data: each of direction, size and "no effect" decides what it
should, claim by claim, and findings.json has its documented shape. Small synthetic tables, no
training (the rates by simulation are tests/test_calibration.py's)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import notebook_code

from helpers.base import SHARED, StudyError
from helpers.experiments import findings

SEEDS = 5
QUICK = findings.Regime("CIFAR-10 (cifar10-jpeg)", False, False, "quick")
STUDYS = findings.Regime("CINIC-10", True, True, "full")
# 03's claim functions, as its notebook's cell defines them
claims = notebook_code("03_hyperparams", "claims")
training_claims = notebook_code("03_hyperparams", "training_claims")


def planted_pairs(effect: float, seed: int = 0, noise: float = 0.003):
    """Control and treated arms over shared seeds: treated = control + effect + small noise."""
    rng = np.random.default_rng(seed)
    control = 0.5 + rng.normal(0, 0.03, SEEDS)  # seed-to-seed scatter, shared by both arms
    return control + effect + rng.normal(0, noise, SEEDS), control


def paired_row(claim, effect, noise=0.003, regime=QUICK):
    treated, control = planted_pairs(effect, noise=noise)
    return findings.finding(claim, findings.paired(treated, control), regime)


@pytest.mark.parametrize("claim, effect, expected", [
    ("C7", -0.05, "reproduced"),  # the study: augmentation lowers the gap
    ("C7", +0.05, "contradicted"),
    ("C12", +0.05, "reproduced"),
    ("C12", -0.05, "contradicted"),
    ("C12", 0.0, "negligible"),  # tight around zero: no effect worth the name
])
def test_direction_and_no_effect_follow_the_planted_effect(claim, effect, expected):
    row = paired_row(claim, effect)
    assert row["verdict"] == expected, row
    assert row["n"] == SEEDS and row["ci_low"] <= row["estimate"] <= row["ci_high"]
    assert row["replication"] == "5 seeds"


def test_a_wide_interval_around_zero_is_inconclusive_and_says_how_many_seeds_would_decide():
    row = paired_row("C12", 0.015, noise=0.02)
    assert row["verdict"] == "inconclusive" and row["ci_low"] < 0 < row["ci_high"]
    assert isinstance(row["n_needed"], int) and row["n_needed"] > SEEDS
    assert f"about {row['n_needed']} seeds would decide it" in findings.sentence(row)
    assert "scatter between runs (±" not in findings.sentence(row)


def test_a_real_but_tiny_effect_is_negligible_not_reproduced():
    row = paired_row("C12", 0.004, noise=0.0005)
    assert row["ci_low"] > 0 and row["ci_high"] < findings.CLAIMS["C12"].delta
    assert row["verdict"] == "negligible"


def test_a_little_means_a_little():
    """C8: "a little improvement". A large effect holds the direction, not the size; one near
    the band's edge does not show the size either."""
    small = paired_row("C8", 0.02)
    edge = paired_row("C8", 0.03)
    large = paired_row("C8", 0.12)
    assert small["verdict"] == "reproduced" and small["evidence"]["size"] == "shown"
    assert edge["verdict"] == "direction only" and edge["evidence"]["size"] == "undetermined"
    assert large["verdict"] == "direction only" and large["evidence"]["size"] == "excluded"
    assert large["ci_low"] > findings.CLAIMS["C8"].size.high


@pytest.mark.parametrize("effect, regime, expected", [
    (0.15, STUDYS, "reproduced"),  # the study's +15 points, in its regime
    (0.15, QUICK, "direction only"),  # elsewhere its size is not compared
    (0.04, STUDYS, "direction only"),  # fine-tuning helps, by far less than 15 points
    (-0.01, STUDYS, "contradicted"),  # a gap beyond Δ established, in the study's regime
    (-0.01, QUICK, "inconclusive"),  # elsewhere only an opposite direction contradicts
    (0.30, STUDYS, "direction only"),  # helps, by far more
])
def test_c9_tests_the_studys_fifteen_points_in_its_regime_only(effect, regime, expected):
    treated, control = planted_pairs(effect, noise=0.01)
    row = findings.finding("C9", findings.paired(treated, control), regime)
    assert row["verdict"] == expected, row
    if regime is QUICK:
        assert row["evidence"]["size"] == "not compared"


def test_identical_arms_have_no_interval():
    arm = [0.4, 0.5, 0.45]
    row = findings.finding("C8", findings.paired(arm, arm), QUICK)
    assert row["verdict"] == "inconclusive" and row["estimate"] == 0.0 and row["ci_low"] is None
    # float32 round-off between two arms that learned nothing is no effect either
    row = findings.finding("C8", findings.paired([0.1 + 1.5e-9] * 2, [0.1] * 2), QUICK)
    assert row["verdict"] == "inconclusive" and row["estimate"] == 0.0
    assert "no interval" in findings.sentence(row)


def test_the_pairing_is_what_makes_a_small_effect_visible():
    treated, control = planted_pairs(0.015)
    paired = findings.finding("C12", findings.paired(treated, control), QUICK)
    unpaired = findings.finding("C12", findings.welch(treated, control), QUICK)
    assert paired["verdict"] == "reproduced" and unpaired["verdict"] == "inconclusive"
    assert unpaired["replication"] == "5 vs 5 seeds"


@pytest.mark.parametrize("accuracies, regime, expected", [
    ([0.690, 0.693, 0.692, 0.691, 0.694], STUDYS, "reproduced"),  # within ±0.02 of 0.6916
    ([0.600, 0.610, 0.605], STUDYS, "contradicted"),  # a gap beyond ±0.02 established
    ([0.62, 0.70, 0.66], STUDYS, "inconclusive"),  # noisy: neither, and never "reproduced"
    ([0.690, 0.693, 0.692], QUICK, "not comparable"),  # not CINIC-10 at the study's budget
    ([0.690, 0.693, 0.692], findings.Regime("CINIC-10", True, False, "quick"), "not comparable"),
])
def test_absolute_claims_need_the_studys_regime_and_a_tight_interval(accuracies, regime,
                                                                     expected):
    est = findings.mean_of_runs(accuracies, test_images=90_000, study_images=90_000)
    row = findings.finding("C1", est, regime)
    assert row["verdict"] == expected and row["direction"] == "abs"
    assert row["pi_low"] <= row["ci_low"] <= row["ci_high"] <= row["pi_high"]


def test_the_regime_is_named_on_rows_that_are_not_the_studys():
    row = paired_row("C7", -0.05)
    assert row["regime"] == ("CIFAR-10 (cifar10-jpeg), quick budget: a generalisation check, "
                             "not a reproduction")
    assert "5 seeds; CIFAR-10 (cifar10-jpeg), quick budget" in findings.table_html([row])
    assert "budget" not in findings.table_html([paired_row("C7", -0.05, regime=STUDYS)])


def grid(effect_blocks: float, effect_kernel: float, noise: float = 0.005, seeds: int = 2,
         seed: int = 0, best=None):
    """03's training grid (blocks x kernel x seeds) with planted main effects and a little
    noise; best: one cell raised by 0.1 above all."""
    rng = np.random.default_rng(seed)
    rows = []
    for b, k, s in itertools.product([1, 3, 5], [2, 3, 4, 5], range(seeds)):
        acc = (0.3 + effect_blocks * (b == 5) + effect_kernel * (k - 2) + 0.1 * ((b, k) == best)
               + rng.normal(0, noise))
        rows.append({"n_blocks": b, "kernel_size": k, "seed": s, "best_val_accuracy": acc})
    return pd.DataFrame(rows)


def reg_grid(effect_dropout: float, effect_lam: float, noise: float = 0.005, seeds: int = 2,
             seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for a, lam, d, s in itertools.product([0.2, 0.5, 0.8], [0.001, 0.01, 0.1],
                                          [0.1, 0.3, 0.5], range(seeds)):
        acc = 0.3 + effect_dropout * d + effect_lam * np.log10(lam) + rng.normal(0, noise)
        rows.append({"alpha": a, "lam": lam, "dropout": d, "seed": s, "best_val_accuracy": acc})
    return pd.DataFrame(rows)


def verdicts(train, reg):
    return {r["id"]: r["verdict"] for r in claims(train, reg, QUICK)}


def test_grid_claims_follow_planted_effects():
    # 5 blocks much worse, larger kernels better, (3, 5) the best cell, dropout matters most,
    # larger lambda slightly worse
    got = verdicts(grid(-0.1, 0.02, best=(3, 5)), reg_grid(-0.3, -0.01))
    assert got == {"C2": "reproduced", "C3": "reproduced", "C4": "reproduced",
                   "C5": "reproduced", "C6": "reproduced"}
    # the same effects reversed
    got = verdicts(grid(+0.1, -0.02, best=(5, 2)), reg_grid(0.0, +0.02))
    assert got["C2"] == "contradicted" and got["C3"] == "contradicted"
    assert got["C4"] == "contradicted" and got["C6"] == "contradicted"
    assert got["C5"] == "contradicted"  # lambda's spread beats an absent dropout effect


def test_grid_claims_without_effects_are_negligible_or_inconclusive_never_decisive():
    tight = verdicts(grid(0.0, 0.0, noise=0.001, seeds=3), reg_grid(0.0, 0.0, noise=0.001))
    assert tight["C3"] == "negligible" and tight["C6"] == "negligible"
    loose = verdicts(grid(0.0, 0.0, noise=0.05, seed=3), reg_grid(0.0, 0.0, noise=0.05, seed=3))
    assert set(loose.values()) == {"inconclusive"}, loose


def test_a_large_lambda_effect_is_direction_only_not_slight():
    got = {r["id"]: r for r in claims(grid(0, 0), reg_grid(0, -0.1), QUICK)}
    assert got["C6"]["verdict"] == "direction only"  # a fall of 20 points is not "slightly"


def test_c4_needs_two_seeds_per_configuration():
    rows = {r["id"]: r for r in claims(grid(-0.1, 0.02, seeds=1), reg_grid(0, 0), QUICK)}
    assert rows["C4"]["verdict"] == "not testable" and "one seed per configuration" in rows["C4"]["why"]
    assert "1 seed, additive-model residual" in rows["C3"]["replication"]


def test_grid_claims_say_what_was_replicated():
    rows = {r["id"]: r for r in claims(grid(-0.1, 0.02), reg_grid(-0.3, 0.02), QUICK)}
    assert rows["C3"]["replication"] == ("12 configurations × 2 seeds, pure error per level, "
                                         "Welch-Satterthwaite df")
    assert rows["C3"]["n"] == 24 and rows["C6"]["n"] == 54


def test_grid_claims_skip_levels_the_grid_lacks():
    small = grid(-0.1, 0.02).query("n_blocks == 1 and kernel_size in (2, 3)")
    ids = {r["id"] for r in claims(small, reg_grid(-0.3, 0.02), QUICK)}
    assert "C2" not in ids and "C4" not in ids and {"C3", "C5", "C6"} <= ids


def test_an_unbalanced_grid_is_refused():
    with pytest.raises(ValueError, match="balanced"):
        claims(grid(0, 0).iloc[1:], reg_grid(0, 0), QUICK)


def test_holm_within_a_family():
    assert findings.holm([0.01, 0.04, 0.03, None]) == [0.03, 0.06, 0.06, None]


def test_findings_file_has_the_documented_shape(tmp_path):
    row = findings.finding("C1", findings.mean_of_runs([0.6, 0.62, 0.61], test_images=1000),
                           QUICK)
    findings.save(tmp_path, "02_resnet", [row], dataset="synthetic", profile="smoke",
                  regime=QUICK)
    grid_rows = claims(grid(-0.1, 0.02), reg_grid(-0.3, 0.02), QUICK)
    findings.save(tmp_path, "03_hyperparams", grid_rows, dataset="synthetic", profile="smoke",
                  regime=QUICK)
    data = json.loads((tmp_path / "results" / "findings.json").read_text())
    assert set(data) == {"dataset", "profile", "backend", "regimes", "claims"}
    assert data["profile"] == "smoke" and set(data["regimes"]) == {"02_resnet", "03_hyperparams"}
    keys = {"id", "notebook", "claim", "quote", "where", "study", "quantity", "direction",
            "delta", "size", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "p",
            "p_adjusted", "n", "replication", "method", "evidence", "n_needed", "regime",
            "regime_short", "comparable", "why", "role", "verdict", "diverged"}
    assert [r["id"] for r in data["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    for r in data["claims"]:
        assert set(r) == keys and r["verdict"] in findings.VERDICTS


STUDY_TEXT = SHARED / "study" / "original-report.md"


@pytest.mark.skipif(not STUDY_TEXT.exists(), reason=f"the study's text not at {STUDY_TEXT}")
def test_every_claim_quotes_the_studys_own_words():
    text = " ".join(STUDY_TEXT.read_text().split())
    for claim in findings.CLAIMS.values():
        assert " ".join(claim.quote.split()) in text, claim.id


def test_a_damaged_findings_file_is_one_line_naming_it(tmp_path):
    row = paired_row("C7", -0.05)
    path = findings.save(tmp_path, "04_augmentation", [row], dataset="x", profile="smoke",
                         regime=QUICK)
    data = json.loads(path.read_text())
    data["claims"][0]["verdict"] = "supported"
    path.write_text(json.dumps(data))
    with pytest.raises(StudyError, match=r"findings\.json: claims\[0\]\.verdict is 'supported'"):
        findings.load(tmp_path)
    path.write_text(path.read_text()[:40])
    with pytest.raises(StudyError, match="findings.json: unreadable"):
        findings.load(tmp_path)


def test_augmentation_claims_pair_each_arm_with_its_seeds_baseline():
    from conftest import notebook_code

    claims, conclusion = (notebook_code("04_augmentation", n) for n in ("claims", "conclusion"))

    rng = np.random.default_rng(0)
    results = []
    for seed in range(SEEDS):
        start = rng.normal(0, 0.05)  # a seed's luck, shared by its arms (same initial weights)
        for name, gap, acc in (("baseline", 0.30, 0.50), ("flip", 0.10, 0.50),
                               ("zoom", 0.30, 0.50)):
            run = {"name": name, "seed": seed, "gap": gap + start + rng.normal(0, .005),
                   "test_accuracy": acc + start + rng.normal(0, 0.005), "train_accuracy": 0,
                   "valid_accuracy": 0, "weights_epoch": 1, "n_train_images": 1,
                   "train_seconds": 1}
            if name == "baseline":  # twice the epochs: overfits more
                run["step_matched"] = {"gap": run["gap"] + 0.1, "test_accuracy": run["test_accuracy"]}
            results.append(run)
    rows = claims(results, QUICK)
    got = {r["id"]: r for r in rows}
    assert got["C7.flip"]["verdict"] == "reproduced" and got["C7.flip"]["role"] == "sub-claim"
    assert got["C7.zoom"]["verdict"] in ("inconclusive", "negligible")
    assert got["C7.flip"]["p_adjusted"] >= got["C7.flip"]["p"]  # Holm within the family
    assert got["C7"]["verdict"] == "reproduced"
    assert got["C7.steps"]["role"] == "sensitivity" and got["C7.steps"]["estimate"] < got["C7"]["estimate"]
    text = conclusion(rows, "planted", False)
    assert "after Holm" in text and "reproduced for flip" in text


def test_summary_names_each_claims_verdict_and_the_family_wise_error():
    rows = [paired_row("C7", -0.05), paired_row("C12", 0.015, noise=0.02),
            findings.finding("C1", findings.mean_of_runs([0.6, 0.61, 0.62]), QUICK)]
    text = findings.summary(rows)
    assert "*reproduced*: C7" in text and "*inconclusive*: C12" in text
    assert "*not comparable*: C1" in text
    said = findings.words.FAMILY_WISE  # the measured rates, not a bound from K
    assert "2 claims" in text and f"{said['unadjusted']:.0%} of runs" in text
    assert "after Holm's correction, 1 " in text and "1 − 0.95^" not in text
    assert "supported" not in text and "full profile" not in text


def test_the_verdicts_are_defined_once_and_the_docs_show_that_table():
    from helpers.base import ROOT

    table = findings.definitions_markdown()
    assert table.count("\n") == len(findings.VERDICTS) + 1
    for doc in ("README.md", "docs/findings.md"):
        assert table in (ROOT / doc).read_text(), f"{doc} lacks the verdicts' table as defined"
    claims_doc = (ROOT / "docs" / "findings.md").read_text()
    for claim in findings.CLAIMS.values():  # the claims table names every claim and its Δ
        assert f"| {claim.id} |" in claims_doc and claim.quote in claims_doc, claim.id


def test_a_direction_decided_by_a_hair_is_marked_fragile():
    close = findings.Estimate(0.021, 0.001, 0.041, 5, "5 seeds", "paired t", 0.007, 4, 0.04)
    clear = findings.Estimate(0.05, 0.03, 0.07, 5, "5 seeds", "paired t", 0.007, 4, 0.001)
    rows = [findings.finding("C12", e, QUICK) for e in (close, clear)]
    assert [r["verdict"] for r in rows] == ["reproduced", "reproduced"]
    assert rows[0]["evidence"]["fragile"] and not rows[1]["evidence"]["fragile"]
    assert "fragile" in findings.table_html(rows[:1]) and "fragile" not in findings.table_html(rows[1:])


def test_a_grid_trial_at_chance_is_named_on_the_grids_rows():
    """Rule 8 for 03's grids: a trial whose accuracy sits at chance is named (configuration and
    seed) on every row its grid gives; a grid without one says nothing of it."""
    rng = np.random.default_rng(0)
    cells = list(itertools.product([1, 3, 5], [2, 3, 4, 5], [0, 1]))
    table = pd.DataFrame(cells, columns=["n_blocks", "kernel_size", "seed"])
    table["best_val_accuracy"] = 0.5 + rng.normal(0, 0.02, len(table))
    clean = training_claims(table, findings.UNNAMED)
    assert clean and not any("chance" in r["replication"] for r in clean)
    table.loc[(table.n_blocks == 5) & (table.kernel_size == 2) & (table.seed == 1),
              "best_val_accuracy"] = 0.1
    rows = training_claims(table, findings.UNNAMED)
    assert [r["id"] for r in rows] == [r["id"] for r in clean]
    for r in rows:
        assert "1 trial at chance accuracy, kept in: n_blocks 5, kernel_size 2, seed 1" in r[
            "replication"], r["replication"]
