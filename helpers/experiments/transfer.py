"""05_transfer's results: each seed's two stages (the notebook's train_one_seed), their tables,
claims C9-C12, the results file and the conclusion from the verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import pandas as pd

from helpers.artifacts import completed_notebooks, run_paths
from helpers.atomic import read_json
from helpers.base import escape
from helpers.experiments import findings as f
from helpers.experiments.protocol import NOT_CINIC10
from helpers.models.pretrained import BaseChoice
from helpers.models.training import TrainResult


@dataclass
class TransferRun:
    """One seed's transfer model after both stages, with what each stage left."""

    seed: int
    choice: BaseChoice
    model: keras.Model
    frozen: TrainResult
    unfrozen: TrainResult
    frozen_valid_accuracy: float  # after stage 1's last epoch (the weights stage 2 starts from)
    frozen_test: dict
    metrics: dict  # after stage 2

    @property
    def first_unfrozen_valid_accuracy(self) -> float:
        h = self.unfrozen.history
        return float(h[(h.split == "valid") & (h.metric == "accuracy") & (h.epoch == 1)].value.iloc[0])


def learning_rate(result: TrainResult) -> str:
    """A stage's starting learning rate as text ("1e-05", "a CosineDecay schedule"), from its
    recorded optimiser (inside a LossScaleOptimizer under mixed precision)."""
    config = result.optimizer["config"]
    rate = config.get("inner_optimizer", {}).get("config", config)["learning_rate"]
    return f"{rate:.2g}" if isinstance(rate, int | float) else f"a {rate['class_name']} schedule"


def history(runs: list[TransferRun]) -> pd.DataFrame:
    """Every seed's tidy history, both stages (the second's epochs numbered on), stage, seed."""
    return pd.concat([part.assign(seed=r.seed) for r in runs for part in (
        r.frozen.history.assign(stage="frozen"),
        r.unfrozen.history.assign(epoch=r.unfrozen.history.epoch + r.frozen.epochs_run,
                                  stage="unfrozen"))], ignore_index=True)


def seed_table(runs: list[TransferRun]) -> pd.DataFrame:
    """Per seed: valid accuracy after stage 1 and the first unfrozen epoch, test after each."""
    return pd.DataFrame([{
        "seed": r.seed,
        "valid, frozen": r.frozen_valid_accuracy,
        "valid, 1st unfrozen epoch": r.first_unfrozen_valid_accuracy,
        "test, frozen": r.frozen_test["test_accuracy"],
        "test, fine-tuned": r.metrics["test_accuracy"],
    } for r in runs]).set_index("seed")


def claims(runs: list[TransferRun], resnet: dict | None, regime=None, *, base_model: str,
           subsets: dict) -> list[dict]:
    """C9 (first unfrozen epoch's gain), C10 (vs resnet_seeds(), comparable on the same subsets
    and a pretrained VGG19), C11 (comparable for a pretrained VGG19), C12 (fine-tuned - frozen)."""
    regime, n = regime or f.UNNAMED, len(runs)
    first = [r.first_unfrozen_valid_accuracy for r in runs]
    tests = [r.metrics["test_accuracy"] for r in runs]
    frozen_tests = [r.frozen_test["test_accuracy"] for r in runs]
    vgg19 = base_model == "VGG19" and all(r.choice.pretrained for r in runs)
    not_vgg19 = ("base is VGG19 without pretrained weights" if base_model == "VGG19"
                 else f"base is {base_model}, not a pretrained VGG19")
    # a seed whose fine-tuning diverged (NaN loss, accuracy at chance) is named and left out
    out = f.diverged(tests, [r.metrics.get("test_loss", 0.0) for r in runs]) | f.diverged(
        first) | f.diverged(frozen_tests)
    rows = [f.finding("C9", f.paired(first, [r.frozen_valid_accuracy for r in runs], (
        f"paired t over {n} seeds (validation accuracy), prediction interval for one new "
        "seed"), diverged=out), regime)]
    if resnet:
        differ = {"02 and 05 trained on different subsets": ("train_per_class", "seed"),
                  "they were tested on different images": ("test_per_class", "seed")}
        why = [text for text, keys in differ.items()
               if any(resnet["subsets"].get(k) != subsets[k] for k in keys)]
        why += [] if vgg19 else [f"05's {not_vgg19}"]
        rows.append(f.finding("C10", f.welch(tests, resnet["test_accuracy"], (
            f"Welch t: {n} seeds of 05 ({base_model}) vs {len(resnet['test_accuracy'])} of 02"),
            diverged=(out, f.diverged(resnet["test_accuracy"]))), regime, comparable=not why,
            why="; ".join(why)))
    c11 = f.mean_of_runs(tests, test_images=runs[0].metrics["n_test"], study_images=90_000,
                         method=f"t interval over {n} seeds, {base_model}, with the test set's "
                         "sampling error; prediction interval for one new run", diverged=out)
    rows.append(f.finding("C11", c11, regime, comparable=vgg19,
                          why="" if vgg19 else f"the {not_vgg19}"))
    rows.append(f.finding("C12", f.paired(tests, frozen_tests, f"paired t over {n} seeds "
                                          "(test accuracy)", diverged=out), regime))
    return rows


def conclusion(runs: list[TransferRun], rows: list[dict], finetune_lr: str, dataset_name: str,
               is_cinic10: bool) -> str:
    """05's conclusion from the verdicts; finetune_lr: learning_rate() of the fine-tuning."""
    table = seed_table(runs)
    text = (f"On *{escape(dataset_name)}*, over {len(runs)} seed(s): mean test accuracy "
            f"{table['test, frozen'].mean():.4f} with the base frozen, "
            f"{table['test, fine-tuned'].mean():.4f} after fine-tuning the whole network at a "
            f"learning rate of {finetune_lr} (the study: {f.STUDY_TRANSFER:.4f} with VGG19 on "
            "full CINIC-10).\n\n" + f.conclusion(rows))
    if not all(r.choice.pretrained for r in runs):
        text += ("\n\n**The base started from random weights**, so this is not transfer "
                 "learning and says nothing about the study's result.")
    return text + ("" if is_cinic10 else "\n\n" + NOT_CINIC10)


def metrics(runs: list[TransferRun], config: dict, n_train: int, n_valid: int) -> dict:
    """results/05_transfer.json: the first (saved) seed's metrics, every seed's accuracies and
    optimisers (class_name, whole config) per stage, the config; a banner if not pretrained."""
    first, choice = runs[0], runs[0].choice
    rows = seed_table(runs).reset_index().to_dict(orient="records")
    out = {**first.metrics, "pretrained": choice.pretrained, "pretrained_reason": choice.reason,
           "weights": choice.weights, "frozen_test_accuracy": first.frozen_test["test_accuracy"],
           "frozen": first.frozen.summary(), "unfrozen": first.unfrozen.summary(),
           "seeds": [{**row, "optimizer": {"frozen": r.frozen.optimizer,
                                           "fine-tuned": r.unfrozen.optimizer}}
                     for row, r in zip(rows, runs)],
           "params": int(first.model.count_params()), "n_train": n_train, "n_valid": n_valid,
           "config": config}
    if not choice.pretrained:
        out["banner"] = {"title": "this is not transfer learning.",
                         "text": f"The base network started from random weights: {choice.reason}."}
    return out


def resnet_seeds(run_dir, fingerprint: str) -> dict | None:
    """{"test_accuracy": [...], "subsets": {...}} of 02 in this run folder if it completed
    there (not a failed or killed rerun) on the same data; else None."""
    standing = completed_notebooks(run_dir)
    if standing is not None and "02_resnet" not in standing:
        print("C10 is not tested: 02_resnet did not complete in this run folder "
              f"({run_dir}), so its results do not stand")
        return None
    path = run_paths(run_dir)["results"] / "02_resnet.json"
    result = read_json(path) if path.exists() else {}
    accuracies = [s["test_accuracy"] for s in result.get("seeds", [])]
    if not accuracies or result.get("provenance", {}).get("fingerprint") != fingerprint:
        return None
    return {"test_accuracy": accuracies, "subsets": result.get("subsets", {})}
