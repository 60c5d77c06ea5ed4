"""04_augmentation's experiment: the simple CNN trained on the original images (the baseline)
and on each augmented, doubled set, once per seed. Within a seed every arm starts from the same
saved initial weights and draws the same data order, so a difference between arms measures the
augmentation; the seeds give the scatter. Claims C7 and C8, pooled and per augmentation."""

from __future__ import annotations

import keras
import pandas as pd

from helpers.base import escape
from helpers.data import DOUBLED_SETS
from helpers.data.augment import check_names, doubled_split, make_augment
from helpers.experiments import findings
from helpers.experiments.protocol import NOT_CINIC10

GAP_NOTE = (
    "All accuracies of a run come from the same weights: those after `epochs` epochs (every run "
    "is read after the same number; the baseline trains on to twice that, the augmented runs' "
    "number of steps, for the sensitivity rows), evaluated on the set it trained on (an "
    "augmented run: the originals and their augmented copy, as the study's training curves "
    "count them), the validation and the test split. gap: train minus validation accuracy "
    "(overfitting). Each row is the mean over the seeds."
)
SETTINGS = set(
    "fingerprint train_per_class valid_per_class test_per_class subset_seed epochs batch_size "
    "learning_rate lr_scaling patience mixed_precision doubled_set".split()
)


def save_initial_weights(run_dir, seeds: list[int]) -> dict[str, str]:
    """models/04_initial_s<seed>.weights.h5 per seed, atomically: the start every arm of that
    seed loads. Returns {str(seed): path}."""
    from helpers import backend
    from helpers.artifacts import run_paths
    from helpers.atomic import write_atomic
    from helpers.models import nets

    folder, paths = run_paths(run_dir)["models"], {}
    for seed in seeds:
        keras.backend.clear_session()
        backend.set_random_seed(seed)  # keras.utils' would import TensorFlow on jax
        final = folder / f"04_initial_s{seed}.weights.h5"
        write_atomic(final, nets.create_simple_cnn().save_weights, suffix=".weights.h5")
        paths[str(seed)] = str(final)
    return paths


def comparison_trials(names, strengths: dict, settings: dict, seed: int = 0,
                      repeats: int = 1) -> list:
    """trialstore.Trial list: the baseline, then one per augmentation name (at its strength in
    strengths, 04's parameters), each for seeds
    seed .. seed+repeats-1. settings hold what every trial shares and what changes its result
    (epochs, batch size, learning rate, dataset fingerprint, subset sizes ...); they are part of
    each trial's id."""
    from helpers.experiments.trialstore import make_trials

    check_names(names, strengths)
    configs = [{"name": "baseline", "strength": None}]
    configs += [{"name": name, "strength": strengths[name]} for name in names]
    return make_trials("04aug", configs, settings, repeats=repeats, seed=seed)


def augmentation_trial(config: dict, context: dict) -> dict:
    """Train the simple CNN from its seed's initial weights on the train subset (doubled with
    one augmented copy unless the baseline), test it, save it deployable. Loads the cached
    dataset itself (once per process), so it runs in this kernel or in a Ray worker alike.
    context: settings (SETTINGS), dataset (spec), run_dir, initial_weights ({seed: path} or
    one path) [, threads]: the contract in docs/trials.md. Returns history rows
    (epoch, split, metric, value) and, all from the weights after `epochs` epochs: test, train
    (on the set trained on) and valid accuracy and the gap. The baseline trains on to twice the
    epochs, the augmented arms' number of steps, and adds the same read then as `step_matched`
    (a sensitivity check); its saved model is the one after `epochs`."""
    from helpers import artifacts
    from helpers.experiments.trialstore import needed_settings, subsets
    from helpers.models import evaluation, nets, reuse, training

    settings = needed_settings(context, SETTINGS, "augmentation_trial")
    if settings["doubled_set"] not in DOUBLED_SETS:
        raise ValueError(f"doubled_set {settings['doubled_set']!r}: one of {', '.join(DOUBLED_SETS)}")
    seed = config["seed"]
    # the same dropout/shuffle streams in every arm of a seed; threads: a Ray worker's share
    training.setup(seed, settings["mixed_precision"], context.get("threads"))
    ds, train, valid, test = subsets(context, ("train", "valid", "test"))
    model = _initial_model(context["initial_weights"], seed)
    baseline = config["name"] == "baseline"
    fn = None if baseline else make_augment(config["name"], config["strength"])
    once = not baseline and settings["doubled_set"] == "once"
    # the set the run trains on; for every_epoch, one fixed draw of it stands in for the gap
    trained_on = train if baseline else doubled_split(train, fn, seed)
    epochs = settings["epochs"]
    splits = {"test": test, "train": trained_on, "valid": valid}
    # the baseline's read at `epochs` (every arm's), while it trains on to twice the epochs
    snapshot = evaluation.Snapshot(epochs, splits, ds.classes) if baseline else None
    result = reuse.fit_trial(model, trained_on if once else train, valid,
                             {**settings, "epochs": epochs * (2 if baseline else 1)}, seed,
                             augment=None if (baseline or once) else fn,
                             repeat_augmented=not (baseline or once),
                             restore_best=False,  # the last epoch's: same epochs in every arm
                             callbacks=[snapshot] if baseline else None)
    # every accuracy below comes from one set of weights (GAP_NOTE)
    with training.quiet():
        last = {name: evaluation.evaluate(model, split, ds.classes, name=name)
                for name, split in splits.items()}
    if baseline:
        model.set_weights(snapshot.weights)  # the saved model: the baseline after `epochs`
    artifacts.save_model(context["run_dir"], f"04_{config['name']}_s{seed}",
                         nets.deployable(model))
    read = snapshot.metrics if baseline else last
    out = {
        "name": config["name"],
        "seed": seed,
        "history": result.history.to_dict(orient="records"),
        **_accuracies(read),
        "test_loss": read["test"]["test_loss"],
        "weights_epoch": epochs,
        "doubled_set": None if baseline else settings["doubled_set"],
        "n_train_images": len(train) * (1 if baseline else 2),
        **result.summary(),
    }
    if baseline:
        out["step_matched"] = {"epochs": 2 * epochs, **_accuracies(last)}
    return out


def _initial_model(initial_weights: dict[str, str] | str, seed: int):
    """The simple CNN with seed's saved initial weights (initial_weights: {seed: path} or one
    path), traced once per process (reuse.model) and reset to exactly that state."""
    from helpers.models import nets, reuse

    path = initial_weights[str(seed)] if isinstance(initial_weights, dict) else initial_weights

    def build():
        model = nets.create_simple_cnn()
        model.load_weights(path)
        return model

    return reuse.model(("simple_cnn",), build)


def _accuracies(read: dict) -> dict:
    """test, train and valid accuracy and the gap (train minus valid) from evaluate()'s dicts."""
    acc = {split: read[split][f"{split}_accuracy"] for split in ("test", "train", "valid")}
    return {"test_accuracy": acc["test"], "train_accuracy": acc["train"],
            "valid_accuracy": acc["valid"], "gap": acc["train"] - acc["valid"]}


def run_comparison(
    trials: list,
    *,
    dataset: str,
    run_dir,
    initial_weights: dict[str, str] | str,
    executor: str = "local",
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
) -> list[dict]:
    """trialstore.run_trials of augmentation_trial (finished trials are kept, each result
    saved as it arrives; executor local or ray), then every trial's full result, histories
    included, in the trials' order. With Ray on a cluster, run_dir and the data dir must be
    on a disk the workers share (they read the initial weights and write the models)."""
    from helpers.experiments.trialstore import TrialStore, run_trials

    context = {
        "settings": trials[0].settings,
        "dataset": dataset,
        "run_dir": str(run_dir),
        "initial_weights": initial_weights,
    }
    run_trials(
        trials,
        augmentation_trial,
        context,
        run_dir=run_dir,
        executor=executor,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        desc="04 augmentations",
        metric="valid_accuracy",
    )
    store = TrialStore(run_dir)
    return [{**store.load(t, "valid_accuracy")["result"], "seed": t.config["seed"]} for t in trials]


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
    after Holm's correction within the family)."""
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
        pooled = wide[names].mean(axis=1)
        rows.append(findings.finding(claim_id, findings.paired(
            pooled, wide.baseline, f"paired t over {n} seeds (mean of {len(names)} "
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
    if not is_cinic10:
        text += " " + NOT_CINIC10
    return text
