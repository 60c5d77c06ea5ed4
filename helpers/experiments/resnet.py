"""02_resnet's results: each seed's run (the notebook's train_one_seed), table, C1, conclusion."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import pandas as pd

from helpers.base import escape
from helpers.experiments import findings
from helpers.experiments.protocol import NOT_CINIC10
from helpers.models.training import TrainResult


@dataclass
class SeedRun:
    """One seed's trained model, its training record and its test metrics."""

    seed: int
    model: keras.Model
    result: TrainResult
    metrics: dict


def seed_table(runs: list[SeedRun], whole_optimizer: bool = False) -> pd.DataFrame:
    """One row per seed: test accuracy and loss, summary(), the optimiser its fit started with
    (its class, or for the results file its class_name and whole config)."""
    return pd.DataFrame([{
        "seed": r.seed, "test_accuracy": r.metrics["test_accuracy"],
        "test_loss": r.metrics["test_loss"], **r.result.summary(),
        "optimizer": r.result.optimizer if whole_optimizer else r.result.optimizer.get("class_name"),
    } for r in runs]).drop(columns="timing").set_index("seed")


def claim(runs: list[SeedRun], regime=None) -> dict:
    """C1: mean test accuracy over seeds, its interval (with the test set's sampling error) and
    a prediction interval for one new run on the study's 90,000 test images."""
    accs = [r.metrics["test_accuracy"] for r in runs]
    out = findings.diverged(accs, [r.metrics.get("test_loss", 0.0) for r in runs])  # named, left out
    est = findings.mean_of_runs(accs, test_images=runs[0].metrics["n_test"], study_images=90_000,
                                method=f"t interval over {len(accs) - out.sum()} seeds, with the "
                                "test set's sampling error; prediction interval for one new run",
                                diverged=out)
    return findings.finding("C1", est, regime or findings.UNNAMED)


def conclusion(runs: list[SeedRun], c1: dict, dataset_name: str, n_train: int,
               is_cinic10: bool) -> str:
    """Markdown, worded from C1's verdict and the seeds' spread; names from the data escaped."""
    pc = pd.DataFrame({r.seed: r.metrics["per_class"] for r in runs}).mean(axis=1)
    text = (f"On *{escape(dataset_name)}*, {len(runs)} seed(s) of the ResNet trained on "
            f"{n_train:,} images reached a mean test accuracy of {findings.interval_text(c1)} "
            f"(the study: {findings.STUDY_RESNET:.4f} on full CINIC-10, one run).\n\n"
            f"{findings.conclusion([c1])}\n\n"
            f"Per class (mean over seeds), accuracy ranges from {pc.min():.2f} "
            f"(*{escape(str(pc.idxmin()))}*) to {pc.max():.2f} "
            f"(*{escape(str(pc.idxmax()))}*). ")
    sources = runs[0].metrics["per_source"] if all("per_source" in r.metrics for r in runs) else []
    for s in sources:
        est = findings.mean_of_runs([r.metrics["per_source"][s] for r in runs]).cleaned()
        text += (f"Test images from {escape(s)}: accuracy {est.value:.3f}"
                 + (f" [{est.low:.3f}, {est.high:.3f}]" if est.has_interval else "")
                 + " (over seeds). ")
    return text + ("" if is_cinic10 else NOT_CINIC10)
