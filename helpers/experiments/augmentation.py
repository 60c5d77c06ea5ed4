"""04_augmentation's arms, tables, claims C7-C8 and conclusion. Within a seed every arm starts from
the same saved weights and data order, so arms differ by the augmentation; seeds give scatter."""

from __future__ import annotations

import json
import re

import keras
import pandas as pd

from helpers.artifacts import run_paths
from helpers.atomic import read_json
from helpers.base import escape
from helpers.experiments import findings
from helpers.experiments.protocol import NOT_CINIC10, study_settings
from helpers.experiments.trialstore import digest

STUDYS = study_settings("04_augmentation")["augmentations"]  # the study's five


def arms(augmentations: dict) -> tuple[list[dict], dict[str, dict]]:
    """(trial configs, layers) of 04's dict name -> Keras layer: the baseline, then {"name",
    "layer": class-digest of its config} (every argument joins the id, labels stay short);
    layers: {name: its config as plain JSON, unnamed}, which the trials rebuild it from."""
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
        key = digest(json.dumps(layers[name], sort_keys=True).encode())[:12]  # the trial ids' hash
        configs.append({"name": name, "layer": f"{config['class_name']}-{key}"})
    return configs, layers


def load_results(run_dir, table: pd.DataFrame) -> list[dict]:
    """Each trial's whole result (histories too), seed added, in run_trials' table's order."""
    folder = run_paths(run_dir)["results"] / "trials"
    return [{**read_json(folder / f"{tid}.json")["result"], "seed": int(seed)}
            for tid, seed in zip(table.trial_id, table.seed)]


def seed_table(results: list[dict]) -> pd.DataFrame:
    """One row per run (augmentation, seed): accuracies, gap, best epoch, images, seconds."""
    return pd.DataFrame([{
        "augmentation": r["name"], "seed": r["seed"],
        **{c: r[c] for c in ("test_accuracy", "train_accuracy", "valid_accuracy", "gap",
                             "weights_epoch", "n_train_images")},
        "seconds": r["train_seconds"]} for r in results])


def summary_table(results: list[dict]) -> pd.DataFrame:
    """Per augmentation, in the dict's order: seed_table's means over seeds, and their number."""
    runs = seed_table(results).groupby("augmentation", sort=False)
    return runs.mean().drop(columns="seed").assign(seeds=runs.seed.nunique())


def claims(results: list[dict], regime=None) -> list[dict]:
    """C7 (gap) and C8 (test accuracy): augmented minus its seed's baseline (paired), pooled
    over the study's five (STUDYS) where present; against the baseline at the same steps (twice
    the epochs: C7.steps, sensitivity); per augmentation (C7.<name>, Holm in the family)."""
    regime = regime or findings.UNNAMED
    table = seed_table(results)
    steps = {r["seed"]: r["step_matched"] for r in results
             if r["name"] == "baseline" and "step_matched" in r}
    names = [n for n in dict.fromkeys(table.augmentation) if n != "baseline"]
    # the claim pools the study's; one added (an extension) has its own rows, unless alone
    studys = [a for a in names if a in STUDYS] or names
    bad = set(table.seed[findings.diverged(table.test_accuracy)])  # a seed with a diverged run
    rows = []
    for claim_id, metric in (("C7", "gap"), ("C8", "test_accuracy")):
        wide = table.pivot(index="seed", columns="augmentation", values=metric).dropna()
        drop = wide.index.isin(bad)  # named and left out, not averaged in
        n = len(wide) - int(drop.sum())
        pooled = wide[studys].mean(axis=1)
        rows.append(findings.finding(claim_id, findings.paired(
            pooled, wide.baseline, f"paired t over {n} seeds (mean of {len(studys)} "
            "augmentations minus the baseline, same seed and epochs)", diverged=drop), regime))
        if steps and all(s in steps for s in wide.index):
            quantity = findings.CLAIMS[claim_id].quantity.replace(
                "minus baseline", "minus the baseline at twice the epochs (the same steps)")
            rows.append(findings.finding(
                findings.sub_claim(claim_id, "steps", quantity, "at the same number of steps"),
                findings.paired(pooled, [steps[s][metric] for s in wide.index], f"paired t over "
                                f"{n} seeds, the baseline read after twice the epochs",
                                diverged=drop), regime, role="sensitivity"))
        rows += findings.family(claim_id, {name: findings.paired(
            wide[name], wide.baseline, f"paired t over {n} seeds", diverged=drop)
            for name in names}, regime)
    return rows


def conclusion(rows: list[dict], dataset_name: str, is_cinic10: bool) -> str:
    """04's conclusion from the verdicts: claims, the step-matched rows, each augmentation's."""
    text = f"On *{escape(dataset_name)}*:\n\n" + findings.conclusion(
        [r for r in rows if r["role"] != "sub-claim"])
    parts = {claim_id: {r["id"].split(".", 1)[1]: r["verdict"] for r in rows
                        if r["id"].startswith(f"{claim_id}.") and r["role"] == "sub-claim"}
             for claim_id in ("C7", "C8")}
    for claim_id, what in (("C7", "the train−validation gap"), ("C8", "test accuracy")):
        said = [f"{v} for {', '.join(escape(n) for n, w in parts[claim_id].items() if w == v)}"
                for v in findings.VERDICTS if v in parts[claim_id].values()]
        text += (f"\n\nPer augmentation, on {what} (directions after Holm's correction within "
                 f"the {len(parts[claim_id])}): " + "; ".join(said) + ".")
    text += ("\n\n(Each augmented run sees twice the images, so twice the steps, per epoch: the "
             "study's protocol. The sensitivity rows set them against the baseline after twice "
             "the epochs, the same number of steps.)")
    added = [escape(n) for n in parts["C7"] if n not in STUDYS]
    if added:
        text += (f" {', '.join(added)}: not among the study's five, an extension of ours (its "
                 "rows are ours; the pooled rows keep to the study's).")
    return text + ("" if is_cinic10 else " " + NOT_CINIC10)
