"""02_resnet's results: each seed's run (the notebook's train_one_seed trains every seed), their
tables, claim C1 and the conclusion from the seeds' results."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import pandas as pd

from helpers.base import escape
from helpers.experiments import findings
from helpers.experiments.protocol import NOT_CINIC10
from helpers.models import training


@dataclass
class SeedRun:
    """One seed's trained model, its training record and its test metrics."""

    seed: int
    model: keras.Model
    result: training.TrainResult
    metrics: dict


def seed_line(run: SeedRun) -> str:
    """One seed's run in a line: epochs, seconds, images/s, best epoch, test accuracy."""
    r = run.result
    return (f"seed {run.seed}: {r.epochs_run} epochs in {r.seconds:.0f} s, "
            f"{r.images_per_second:.0f} images/s, best epoch {r.best_epoch}, "
            f"test accuracy {run.metrics['test_accuracy']:.4f}")


def history(runs: list[SeedRun]) -> pd.DataFrame:
    """Every seed's tidy history (epoch, split, metric, value) with a column `seed`."""
    return pd.concat([r.result.history.assign(seed=r.seed) for r in runs], ignore_index=True)


def seed_table(runs: list[SeedRun]) -> pd.DataFrame:
    """One row per seed: test accuracy and loss, epochs, best epoch, images/s, optimiser."""
    return pd.DataFrame(
        [{"seed": r.seed, "test_accuracy": r.metrics["test_accuracy"],
          "test_loss": r.metrics["test_loss"],
          **{k: v for k, v in r.result.summary().items() if k != "timing"},
          "optimizer": r.result.optimizer.get("class_name")} for r in runs]
    ).set_index("seed")


def seed_records(runs: list[SeedRun]) -> list[dict]:
    """seed_table's rows for the results file, each with the optimiser its fit started with
    (class_name and its whole get_config())."""
    rows = seed_table(runs).reset_index().to_dict(orient="records")
    return [{**row, "optimizer": r.result.optimizer} for row, r in zip(rows, runs)]


def claim(runs: list[SeedRun], regime=None) -> dict:
    """C1: the mean test accuracy over seeds, its interval (with the test set's own sampling
    error) and a prediction interval for one new run on the study's 90,000 test images."""
    accs = [r.metrics["test_accuracy"] for r in runs]
    out = findings.diverged(accs, [r.metrics.get("test_loss", 0.0) for r in runs])  # named, left out
    est = findings.mean_of_runs(accs, test_images=runs[0].metrics["n_test"], study_images=90_000,
                                method=f"t interval over {len(accs) - out.sum()} seeds, with the "
                                "test set's sampling error; prediction interval for one new run",
                                diverged=out)
    return findings.finding("C1", est, regime or findings.UNNAMED)


def per_class(runs: list[SeedRun]) -> pd.DataFrame:
    """Per class: mean test accuracy over seeds, and its lowest and highest seed."""
    table = pd.DataFrame({r.seed: r.metrics["per_class"] for r in runs})
    return pd.DataFrame({"mean": table.mean(axis=1), "lowest seed": table.min(axis=1),
                         "highest seed": table.max(axis=1)})


def conclusion(runs: list[SeedRun], c1: dict, dataset_name: str, n_train: int,
               is_cinic10: bool) -> str:
    """Markdown, worded from C1's verdict and the seeds' spread; names from the data escaped."""
    pc = per_class(runs)["mean"]
    text = (f"On *{escape(dataset_name)}*, {len(runs)} seed(s) of the ResNet trained on "
            f"{n_train:,} images reached a mean test accuracy of {findings.interval_text(c1)} "
            f"(the study: {findings.STUDY_RESNET:.4f} on full CINIC-10, one run).\n\n"
            f"{findings.conclusion([c1])}\n\n"
            f"Per class (mean over seeds), accuracy ranges from {pc.min():.2f} "
            f"(*{escape(str(pc.idxmin()))}*) to {pc.max():.2f} "
            f"(*{escape(str(pc.idxmax()))}*). ")
    if all("per_source" in r.metrics for r in runs):
        sources = list(runs[0].metrics["per_source"])
        for s in sources:
            est = findings.mean_of_runs([r.metrics["per_source"][s] for r in runs]).cleaned()
            text += (f"Test images from {escape(s)}: accuracy {est.value:.3f}"
                     + (f" [{est.low:.3f}, {est.high:.3f}]" if est.has_interval else "")
                     + " (over seeds). ")
    if not is_cinic10:
        text += NOT_CINIC10
    return text
