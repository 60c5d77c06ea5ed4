"""05's experiment: the transfer model's two stages (base frozen, then unfrozen) once per seed,
its tables, the study's claims C9-C11 and the conclusion written from their verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from helpers.models.pretrained import BaseChoice, build_base, build_transfer_model, train_stage
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
class SeedRun:
    """One seed's transfer model after both stages, with what each stage left."""

    seed: int
    choice: BaseChoice
    model: keras.Model
    frozen: TrainResult
    unfrozen: TrainResult
    frozen_valid_accuracy: float  # after stage 1, best weights restored
    frozen_test: dict
    metrics: dict  # after stage 2

    @property
    def first_unfrozen_valid_accuracy(self) -> float:
        history = self.unfrozen.history
        valid = history[(history.split == "valid") & (history.metric == "accuracy")]
        return float(valid[valid.epoch == 1].value.iloc[0])


def train_seeds(
    train, valid, test, classes: list[str], seeds: list[int], *, base: dict, head: dict,
    head_learning_rate: float, finetune_learning_rate: float, head_epochs: int,
    finetune_epochs: int, fit_args: dict, mixed_precision: bool = False,
) -> list[SeedRun]:
    """For each seed: a fresh base (build_base(**base); pretrained weights are the same for
    every seed, the head's initialisation is not) and head (build_transfer_model(**head)),
    stage 1 on the frozen base, stage 2 unfrozen; test accuracy after each."""
    from helpers.base import progress_bar
    from helpers.models import evaluation, training

    runs = []
    for seed in progress_bar(iterable=seeds, desc="05 seeds"):
        keras.backend.clear_session()
        training.setup(seed, mixed_precision)
        choice = build_base(**base)
        model = build_transfer_model(choice.model, **head)
        args = {**fit_args, "train": train, "valid": valid, "seed": seed}
        frozen = train_stage(model, base_trainable=False, learning_rate=head_learning_rate,
                             epochs=head_epochs, **args)
        frozen_valid = evaluation.evaluate(model, valid, classes)["test_accuracy"]
        frozen_test = evaluation.evaluate(model, test, classes)
        unfrozen = train_stage(model, base_trainable=True, learning_rate=finetune_learning_rate,
                               epochs=finetune_epochs, **args)
        metrics = evaluation.evaluate(model, test, classes)
        runs.append(SeedRun(seed, choice, model, frozen, unfrozen, frozen_valid, frozen_test,
                            metrics))
        print(f"seed {seed}: frozen {frozen.epochs_run} epochs ({frozen.images_per_second:.0f} "
              f"images/s), test {frozen_test['test_accuracy']:.4f}; unfrozen "
              f"{unfrozen.epochs_run} epochs ({unfrozen.images_per_second:.0f} images/s), test "
              f"{metrics['test_accuracy']:.4f}", flush=True)
    return runs


def history(runs: list[SeedRun]):
    """Every seed's joined two-stage history, with columns `stage` and `seed`."""
    import pandas as pd

    return pd.concat([joined_history(r.frozen, r.unfrozen).assign(seed=r.seed) for r in runs],
                     ignore_index=True)


def seed_table(runs: list[SeedRun]):
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


def claims(runs: list[SeedRun], resnet_accuracies: list[float] | None, *, comparable: bool,
           base_model: str) -> list[dict]:
    """C9 (paired over seeds), C10 (against 02's seeds, Welch; absent without 02's results),
    C11 (comparable only for a pretrained VGG19 on CINIC-10)."""
    from helpers.experiments import findings as f

    n = len(runs)
    first = [r.first_unfrozen_valid_accuracy for r in runs]
    frozen = [r.frozen_valid_accuracy for r in runs]
    tests = [r.metrics["test_accuracy"] for r in runs]
    rows = [f.finding("C9", f.paired_interval(first, frozen),
                      f"paired t over {n} seeds (validation accuracy; the study: +0.15)")]
    if resnet_accuracies:
        rows.append(f.finding("C10", f.welch_interval(tests, resnet_accuracies),
                              f"Welch t: {n} seeds of 05 ({base_model}) vs "
                              f"{len(resnet_accuracies)} of 02"))
    pretrained = all(r.choice.pretrained for r in runs)
    rows.append(f.finding("C11", f.mean_interval(tests), f"t interval over {n} seeds, "
                          f"{base_model}", comparable=comparable and pretrained
                          and base_model == "VGG19"))
    return rows


def conclusion(runs: list[SeedRun], rows: list[dict], finetune_lr: float, dataset_name: str,
               is_cinic10: bool) -> str:
    """05's conclusion, worded from the claims' verdicts; the learning rate is the one used."""
    from helpers.base import escape
    from helpers.experiments import findings as f

    table = seed_table(runs)
    frozen = f.mean_interval(table["test, frozen"])
    tuned = f.mean_interval(table["test, fine-tuned"])
    text = (f"On *{escape(dataset_name)}*, over {len(runs)} seed(s): test accuracy "
            f"{frozen[0]:.4f} with the base frozen, {tuned[0]:.4f} after fine-tuning the whole "
            f"network at a learning rate of {finetune_lr:.2g} (the study: "
            f"{f.STUDY_TRANSFER:.4f} with VGG19 on full CINIC-10).\n\n" + f.conclusion(rows))
    if not all(r.choice.pretrained for r in runs):
        text += ("\n\n**The base started from random weights**, so this is not transfer "
                 "learning and says nothing about the study's result.")
    if not is_cinic10:
        text += "\n\nThese numbers are not CINIC-10's: compare them with the study only in shape."
    return text


def metrics(runs: list[SeedRun], config: dict, n_train: int, n_valid: int) -> dict:
    """results/05_transfer.json's content: the first seed's model (the saved one) after both
    stages, every seed's accuracies, the config; a banner when the base was not pretrained."""
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
        "seeds": seed_table(runs).reset_index().to_dict(orient="records"),
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


def resnet_accuracies(run_dir, fingerprint: str) -> list[float] | None:
    """02's per-seed test accuracies from this run folder, if 02 completed there in the folder's
    current state (not a failed or killed rerun) and ran on the same data."""
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
    return [s["test_accuracy"] for s in result.get("seeds", [])] or None
