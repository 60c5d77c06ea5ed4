"""04_augmentation's experiment: the simple CNN trained on the original images (the baseline)
and on each augmented, doubled set, once per seed. Within a seed every arm starts from the same
saved initial weights and draws the same data order, so a difference between arms measures the
augmentation; the seeds give the scatter. Claims C7 and C8, pooled and per augmentation."""

from __future__ import annotations

import hashlib
import json
import re

import keras
import pandas as pd

from helpers.artifacts import run_paths
from helpers.atomic import read_json
from helpers.base import escape
from helpers.experiments import findings
from helpers.experiments.protocol import NOT_CINIC10, study_settings

STUDYS = study_settings("04_augmentation")["augmentations"]  # the study's five

GAP_NOTE = (
    "All accuracies of a run come from the same weights: those after `epochs` epochs (every run "
    "is read after the same number; the baseline trains on to twice that, the augmented runs' "
    "number of steps, for the sensitivity rows), evaluated on the set it trained on (an "
    "augmented run: the originals and their augmented copy, as the study's training curves "
    "count them), the validation and the test split. gap: train minus validation accuracy "
    "(overfitting). Each row is the mean over the seeds."
)


def arms(augmentations: dict) -> tuple[list[dict], dict[str, dict]]:
    """(trial configs, layers) of 04's dict (name -> Keras preprocessing layer): the baseline,
    then {"name", "layer": its class and a digest of its whole config} per entry, so every
    argument of the layer joins the trial id while labels stay short; layers: {name: the
    layer's config, plain JSON, without its name}, which the trials rebuild it from."""
    bad = [n for n in augmentations if not (isinstance(n, str) and re.fullmatch(r"[\w-]+", n))
           or n == "baseline"]
    if bad or not augmentations:
        raise ValueError(f"augmentations {bad or '{}'}: give at least one, each named by a word "
                         "(letters, digits, _ or -) other than 'baseline'")
    configs, layers = [{"name": "baseline"}], {}
    for name, layer in augmentations.items():
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"augmentations[{name!r}] is a {type(layer).__name__}, not a Keras "
                             "layer (e.g. keras.layers.RandomFlip('horizontal'))")
        config = keras.layers.serialize(layer)
        config["config"].pop("name", None)  # a label ("random_flip_1" in a rerun cell)
        layers[name] = json.loads(json.dumps(config))
        digest = hashlib.sha256(json.dumps(layers[name], sort_keys=True).encode()).hexdigest()
        configs.append({"name": name, "layer": f"{config['class_name']}-{digest[:12]}"})
    return configs, layers


def load_results(run_dir, table: pd.DataFrame) -> list[dict]:
    """Each trial's whole result (histories included), seed added, in table's order
    (trialstore.run_trials' table: its trial_id and seed columns)."""
    folder = run_paths(run_dir)["results"] / "trials"
    return [{**read_json(folder / f"{tid}.json")["result"], "seed": int(seed)}
            for tid, seed in zip(table.trial_id, table.seed)]


RUN_COLUMNS = ["test_accuracy", "train_accuracy", "valid_accuracy", "gap", "weights_epoch"]


def seed_table(results: list[dict]) -> pd.DataFrame:
    """One row per run (augmentation, seed): accuracies, gap, best epoch, images, seconds."""
    rows = [{"augmentation": r["name"], "seed": r["seed"], **{c: r[c] for c in RUN_COLUMNS},
             "n_train_images": r["n_train_images"], "seconds": r["train_seconds"]}
            for r in results]
    return pd.DataFrame(rows)


def summary_table(results: list[dict]) -> pd.DataFrame:
    """Per augmentation, the mean over seeds of each run's accuracies and gap (all from the same
    weights, see GAP_NOTE), images and seconds, and the number of seeds."""
    table = seed_table(results)
    order = list(dict.fromkeys(table.augmentation))
    means = table.drop(columns="seed").groupby("augmentation").mean().loc[order]
    return means.assign(seeds=table.groupby("augmentation").seed.nunique().loc[order])


def histories(results: list[dict]) -> pd.DataFrame:
    """All runs' history rows in one tidy table with columns `augmentation` and `seed`."""
    return pd.concat(
        [pd.DataFrame(r["history"]).assign(augmentation=r["name"], seed=r["seed"])
         for r in results],
        ignore_index=True,
    )


def claims(results: list[dict], regime=None) -> list[dict]:
    """C7 (gap) and C8 (test accuracy): each augmentation minus the baseline of the same seed
    (paired: same initial weights and data order), pooled over the augmentations per seed (the
    claim); the same against the baseline at twice the epochs, i.e. the same number of steps
    (a sensitivity row, C7.steps); and per augmentation (C7.<name>, their directions decided
    after Holm's correction within the family). The pooled rows pool the study's five (STUDYS)
    where the run has any: an augmentation the notebook adds gets its own rows only."""
    regime = regime or findings.UNNAMED
    table = seed_table(results)
    steps = {r["seed"]: r["step_matched"] for r in results
             if r["name"] == "baseline" and "step_matched" in r}
    rows = []
    for claim_id, metric in (("C7", "gap"), ("C8", "test_accuracy")):
        wide = table.pivot(index="seed", columns="augmentation", values=metric).dropna()
        names = [n for n in dict.fromkeys(table.augmentation) if n != "baseline"]
        # a seed any of whose runs diverged is named and left out, not averaged in
        out = pd.Series(findings.diverged(table.test_accuracy), index=table.index)
        bad = set(table.seed[out])
        drop = wide.index.isin(bad)
        n = len(wide) - int(drop.sum())
        # the claim pools the study's augmentations; one the notebook adds (an extension) has
        # its own rows below, unless the study's are all gone
        studys = [a for a in names if a in STUDYS] or names
        pooled = wide[studys].mean(axis=1)
        rows.append(findings.finding(claim_id, findings.paired(
            pooled, wide.baseline, f"paired t over {n} seeds (mean of {len(studys)} "
            "augmentations minus the baseline, same seed and epochs)", diverged=drop), regime))
        if steps and all(s in steps for s in wide.index):
            matched = [steps[s][metric] for s in wide.index]
            quantity = findings.CLAIMS[claim_id].quantity.replace(
                "minus baseline", "minus the baseline at twice the epochs (the same steps)")
            rows.append(findings.finding(
                findings.sub_claim(claim_id, "steps", quantity, "at the same number of steps"),
                findings.paired(pooled, matched, f"paired t over {n} seeds, the baseline "
                                "read after twice the epochs", diverged=drop), regime,
                role="sensitivity"))
        rows += findings.family(claim_id, {
            name: findings.paired(wide[name], wide.baseline, f"paired t over {n} seeds",
                                  diverged=drop)
            for name in names}, regime)
    return rows


def conclusion(rows: list[dict], dataset_name: str, is_cinic10: bool) -> str:
    """04's conclusion, worded from the verdicts: the claims, the step-matched check, and which
    augmentations' effects hold after Holm's correction within the five."""
    text = f"On *{escape(dataset_name)}*:\n\n" + findings.conclusion(
        [r for r in rows if r["role"] != "sub-claim"])
    for claim_id, what in (("C7", "the train−validation gap"), ("C8", "test accuracy")):
        parts = [r for r in rows if r["id"].startswith(f"{claim_id}.") and r["role"] == "sub-claim"]
        by = {v: [escape(r["id"].split(".", 1)[1]) for r in parts if r["verdict"] == v]
              for v in findings.VERDICTS}
        said = [f"{v} for {', '.join(names)}" for v, names in by.items() if names]
        text += (f"\n\nPer augmentation, on {what} (directions after Holm's correction within "
                 f"the {len(parts)}): " + "; ".join(said) + ".")
    text += ("\n\n(Each augmented run sees twice the images, so twice the steps, per epoch: the "
             "study's protocol. The sensitivity rows set them against the baseline after twice "
             "the epochs, the same number of steps.)")
    added = [escape(r["id"].split(".", 1)[1]) for r in rows if r["id"].startswith("C7.")
             and r["role"] == "sub-claim" and r["id"].split(".", 1)[1] not in STUDYS]
    if added:
        text += (f" {', '.join(added)}: not among the study's five, an extension of ours (its "
                 "rows are ours; the pooled rows keep to the study's).")
    if not is_cinic10:
        text += " " + NOT_CINIC10
    return text
