"""What every trial function gets, and how it reads it: the one contract of 03's resnet_trial and
04's augmentation_trial, for a third to copy.

    trial_fn(config, context) -> result (a JSON-able dict)

- config: what varies between trials (the grid point and its `seed`), checked by the function;
- context["settings"]: what the trials of a grid share and what changes their results (the
  dataset's fingerprint, subset sizes and seed, epochs, batch size, learning rate ...): the
  settings every trial id hashes (trialstore.settings), checked here against what the function
  needs;
- context's other keys: where to run, not what: "dataset" (the spec every process loads itself,
  so it runs locally or in a Ray worker alike), "threads" (a Ray worker's share of the cores),
  and what the function names itself (04: "run_dir", "initial_weights")."""

from __future__ import annotations


def settings(context: dict, needed: set[str], who: str) -> dict:
    """context["settings"], after a ValueError naming who and any needed key that is missing."""
    given = context.get("settings")
    if not isinstance(given, dict):
        raise ValueError(f"{who}: context['settings'] must be the grid's settings (a mapping)")
    missing = needed - set(given)
    if missing:
        raise ValueError(f"{who}: settings lack {sorted(missing)}")
    return given


def subsets(context: dict, splits: tuple[str, ...]) -> tuple:
    """(dataset, *the stratified subsets of splits) the settings name (<split>_per_class,
    subset_seed), from context["dataset"], loaded once per process and checked against the
    settings' fingerprint."""
    from helpers import data

    given = context["settings"]
    ds = data.shared_dataset(context["dataset"], given["fingerprint"], say=lambda *_: None)
    return (ds, *(data.stratified_subset(ds[s], given[f"{s}_per_class"], given["subset_seed"])
                  for s in splits))
