"""05_transfer's results: each seed's two stages (the notebook's train_one_seed trains every
seed), their tables, the study's claims C9-C12 and the conclusion written from their verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from helpers.experiments.protocol import NOT_CINIC10
from helpers.models.pretrained import BaseChoice
from helpers.models.training import TrainResult


def joined_history(frozen: TrainResult, unfrozen: TrainResult):
    """Both stages' tidy histories as one, epochs numbered on, with a column `stage`."""
    import pandas as pd

    second = unfrozen.history.assign(epoch=unfrozen.history.epoch + frozen.epochs_run)
    return pd.concat(
        [frozen.history.assign(stage="frozen"), second.assign(stage="unfrozen")],
        ignore_index=True,
    )


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
        history = self.unfrozen.history
        valid = history[(history.split == "valid") & (history.metric == "accuracy")]
        return float(valid[valid.epoch == 1].value.iloc[0])


def seed_line(run: TransferRun) -> str:
    """One seed's run in a line: each stage's epochs and images/s, test accuracy after each."""
    frozen, unfrozen = run.frozen, run.unfrozen
    return (f"seed {run.seed}: frozen {frozen.epochs_run} epochs ({frozen.images_per_second:.0f} "
            f"images/s), test {run.frozen_test['test_accuracy']:.4f}; unfrozen "
            f"{unfrozen.epochs_run} epochs ({unfrozen.images_per_second:.0f} images/s), test "
            f"{run.metrics['test_accuracy']:.4f}")


def learning_rate(result: TrainResult) -> str:
    """The learning rate a stage's fit started with, from its recorded optimiser (inside a
    LossScaleOptimizer under mixed precision), as text: "1e-05", or "a CosineDecay schedule"."""
    config = result.optimizer["config"]
    rate = config.get("inner_optimizer", {}).get("config", config)["learning_rate"]
    return f"{rate:.2g}" if isinstance(rate, int | float) else f"a {rate['class_name']} schedule"


def history(runs: list[TransferRun]):
    """Every seed's joined two-stage history, with columns `stage` and `seed`."""
    import pandas as pd

    return pd.concat([joined_history(r.frozen, r.unfrozen).assign(seed=r.seed) for r in runs],
                     ignore_index=True)


def seed_table(runs: list[TransferRun]):
    """Per seed: validation accuracy after stage 1 and after the first unfrozen epoch, test
    accuracy after each stage."""
    import pandas as pd

    return pd.DataFrame([{
        "seed": r.seed,
        "valid, frozen": r.frozen_valid_accuracy,
        "valid, 1st unfrozen epoch": r.first_unfrozen_valid_accuracy,
        "test, frozen": r.frozen_test["test_accuracy"],
        "test, fine-tuned": r.metrics["test_accuracy"],
    } for r in runs]).set_index("seed")


def claims(runs: list[TransferRun], resnet: dict | None, regime=None, *, base_model: str,
           subsets: dict) -> list[dict]:
    """C9 (the first unfrozen epoch's gain, paired over seeds, against the study's +0.15), C10
    (against 02's seeds: absent without 02's results, comparable only when both trained on the
    same subset, were tested on the same images and 05's base is a pretrained VGG19), C11
    (comparable only for a pretrained VGG19 in the study's regime) and C12 (fine-tuned minus
    frozen test accuracy, paired over seeds). resnet: resnet_seeds(); subsets: this notebook's
    {train_per_class, valid_per_class, test_per_class, seed}."""
    from helpers.experiments import findings as f

    regime = regime or f.UNNAMED
    n = len(runs)
    first = [r.first_unfrozen_valid_accuracy for r in runs]
    frozen = [r.frozen_valid_accuracy for r in runs]
    tests = [r.metrics["test_accuracy"] for r in runs]
    frozen_tests = [r.frozen_test["test_accuracy"] for r in runs]
    vgg19 = base_model == "VGG19" and all(r.choice.pretrained for r in runs)
    # a seed whose fine-tuning diverged (NaN loss, accuracy at chance) is named and left out
    out = f.diverged(tests, [r.metrics.get("test_loss", 0.0) for r in runs]) | f.diverged(
        first) | f.diverged(frozen_tests)
    rows = [f.finding("C9", f.paired(first, frozen, f"paired t over {n} seeds (validation "
                                     "accuracy), prediction interval for one new seed",
                                     diverged=out), regime)]
    if resnet:
        rows.append(f.finding("C10", f.welch(tests, resnet["test_accuracy"], (
            f"Welch t: {n} seeds of 05 ({base_model}) vs {len(resnet['test_accuracy'])} of 02"),
            diverged=(out, f.diverged(resnet["test_accuracy"]))),
            regime, **_comparable_with_02(resnet["subsets"], subsets, base_model, vgg19)))
    n_test = runs[0].metrics["n_test"]
    c11 = f.mean_of_runs(tests, test_images=n_test, study_images=90_000,
                         method=f"t interval over {n} seeds, {base_model}, with the test set's "
                         "sampling error; prediction interval for one new run", diverged=out)
    rows.append(f.finding("C11", c11, regime, comparable=vgg19, why="" if vgg19 else (
        f"the {_not_vgg19(base_model)}")))
    rows.append(f.finding("C12", f.paired(tests, frozen_tests, f"paired t over {n} seeds "
                                          "(test accuracy)", diverged=out), regime))
    return rows


def _comparable_with_02(theirs: dict, ours: dict, base_model: str, vgg19: bool) -> dict:
    """C10's comparable/why: 02 and 05 on the same training subset and test images, and 05's
    base the study's (a pretrained VGG19)."""
    def differ(*keys):
        return any(theirs.get(k) != ours[k] for k in keys)

    why = []
    if differ("train_per_class", "seed"):
        why.append("02 and 05 trained on different subsets")
    if differ("test_per_class", "seed"):
        why.append("they were tested on different images")
    if not vgg19:
        why.append(f"05's {_not_vgg19(base_model)}")
    return {"comparable": not why, "why": "; ".join(why)}


def _not_vgg19(base_model: str) -> str:
    if base_model == "VGG19":
        return "base is VGG19 without pretrained weights"
    return f"base is {base_model}, not a pretrained VGG19"


def conclusion(runs: list[TransferRun], rows: list[dict], finetune_lr: str, dataset_name: str,
               is_cinic10: bool) -> str:
    """05's conclusion, worded from the claims' verdicts; finetune_lr: learning_rate() of the
    fine-tuning stage, the one used."""
    from helpers.base import escape
    from helpers.experiments import findings as f

    table = seed_table(runs)
    frozen, tuned = table["test, frozen"].mean(), table["test, fine-tuned"].mean()
    text = (f"On *{escape(dataset_name)}*, over {len(runs)} seed(s): mean test accuracy "
            f"{frozen:.4f} with the base frozen, {tuned:.4f} after fine-tuning the whole "
            f"network at a learning rate of {finetune_lr} (the study: "
            f"{f.STUDY_TRANSFER:.4f} with VGG19 on full CINIC-10).\n\n" + f.conclusion(rows))
    if not all(r.choice.pretrained for r in runs):
        text += ("\n\n**The base started from random weights**, so this is not transfer "
                 "learning and says nothing about the study's result.")
    if not is_cinic10:
        text += "\n\n" + NOT_CINIC10
    return text


def metrics(runs: list[TransferRun], config: dict, n_train: int, n_valid: int) -> dict:
    """results/05_transfer.json's content: the first seed's model (the saved one) after both
    stages, every seed's accuracies and each stage's optimiser as its fit started (class_name
    and its whole get_config()), the config; a banner when the base was not pretrained."""
    first = runs[0]
    choice = first.choice
    out = {
        **first.metrics,
        "pretrained": choice.pretrained,
        "pretrained_reason": choice.reason,
        "weights": choice.weights,
        "frozen_test_accuracy": first.frozen_test["test_accuracy"],
        "frozen": first.frozen.summary(),
        "unfrozen": first.unfrozen.summary(),
        "seeds": [{**row, "optimizer": {"frozen": r.frozen.optimizer,
                                        "fine-tuned": r.unfrozen.optimizer}}
                  for row, r in zip(seed_table(runs).reset_index().to_dict(orient="records"),
                                    runs)],
        "params": int(first.model.count_params()),
        "n_train": n_train,
        "n_valid": n_valid,
        "config": config,
    }
    if not choice.pretrained:
        out["banner"] = {
            "title": "this is not transfer learning.",
            "text": f"The base network started from random weights: {choice.reason}.",
        }
    return out


def resnet_seeds(run_dir, fingerprint: str) -> dict | None:
    """02's per-seed test accuracies and the subsets it drew, from this run folder, if 02
    completed there in the folder's current state (not a failed or killed rerun) and ran on the
    same data: {"test_accuracy": [...], "subsets": {...}} (None otherwise)."""
    from helpers.artifacts import completed_notebooks, run_paths
    from helpers.atomic import read_json

    path = run_paths(run_dir)["results"] / "02_resnet.json"
    standing = completed_notebooks(run_dir)
    if standing is not None and "02_resnet" not in standing:
        print("C10 is not tested: 02_resnet did not complete in this run folder "
              f"({run_dir}), so its results do not stand")
        return None
    if not path.exists():
        return None
    result = read_json(path)
    if result.get("provenance", {}).get("fingerprint") != fingerprint:
        return None
    accuracies = [s["test_accuracy"] for s in result.get("seeds", [])]
    if not accuracies:
        return None
    return {"test_accuracy": accuracies, "subsets": result.get("subsets", {})}
