"""The data layer's front door: load_dataset(spec) -> Dataset, and the subsets notebooks use."""

from __future__ import annotations

import numpy as np

from helpers.atomic import write_json
from helpers.base import StudyError, resolve
from helpers.data import cache
from helpers.data.dataset import (  # noqa: F401  (the layer's names, from one place)
    CINIC10_MEAN,
    CINIC10_STD,
    Dataset,
    Split,
    channel_stats,
    source_shares,
    stratified_subset,
)
from helpers.data.sources import SPLITS, resolve_source

# 04's doubled set: the originals plus one augmented copy drawn "once" (the study's "augmented
# dataset, twice as big") or anew "every_epoch"; here so profiles check it without TensorFlow.
DOUBLED_SETS = ("once", "every_epoch")


def load_dataset(spec: str = "auto", *, valid_fraction: float = 0.1, seed: int = 0,
                 say=print) -> Dataset:
    """spec (auto | cinic10 | synthetic | PATH), decoded once into the cache (archives memoised)."""
    cache.check_carving(valid_fraction, seed)  # before a download or a decode, not after
    path = resolve(spec) if spec not in ("auto", "cinic10", "synthetic") else None
    folder = cache.known_archive(path, valid_fraction, seed) if path is not None else None
    note = ""  # (a memo's cache has none: only auto's fallback or images left out have one)
    if folder is None:
        source = resolve_source(spec, say=say)
        folder = cache.build_cache(source, valid_fraction=valid_fraction, seed=seed, say=say)
        note = source.note
        if path is not None and path.is_file():  # next time, known_archive finds it
            write_json(cache.archive_memo(path, valid_fraction, seed), {"cache": folder.name})
    meta = cache.load_meta(folder)
    return Dataset(meta["name"], meta["kind"], meta["classes"], meta["fingerprint"], folder, note,
                   meta, {s: cache.load_split(folder, s) for s in SPLITS})


PER_CLASS = {"train_per_class": "train", "valid_per_class": "valid", "test_per_class": "test"}


def check_subset_sizes(ds: Dataset, params: dict, where: str) -> None:
    """Refuse a *_per_class count above its split's rarest class (a draw would take fewer)."""
    for key, split in PER_CLASS.items():
        n = params.get(key)
        counts = np.bincount(ds[split].y, minlength=len(ds.classes))
        rarest = int(counts.argmin())
        if n and not isinstance(n, float) and n > counts[rarest]:
            raise StudyError(
                f"{where}: {key}={n}, but {ds.name}'s {split} split has only "
                f"{counts[rarest]:,} images of class {ds.classes[rarest]!r} (its fewest); give at "
                f"most {counts[rarest]:,}, or 0 for the whole split")


_LOADED: dict[str, Dataset] = {}


def shared_dataset(spec: str, fingerprint: str | None = None, say=print) -> Dataset:
    """load_dataset(spec), once per process (kernel or Ray worker); refuses another fingerprint."""
    if spec not in _LOADED:
        _LOADED[spec] = load_dataset(spec, say=say)
    ds = _LOADED[spec]
    if fingerprint and ds.fingerprint != fingerprint:
        raise StudyError(
            f"dataset {spec!r} has fingerprint {ds.fingerprint}, the trials expect {fingerprint}: "
            "a worker sees different data (set CINIC10_DATA to a disk they share)")
    return ds


def load_subsets(spec: str, seed: int, train_per_class, valid_per_class,
                 test_per_class) -> tuple[Dataset, Split, Split, Split]:
    """The dataset and its train, valid and test subsets drawn with seed (0: the whole split)."""
    ds = shared_dataset(spec)
    sizes = dict(zip(PER_CLASS, (train_per_class, valid_per_class, test_per_class)))
    check_subset_sizes(ds, sizes, "load_subsets")
    return ds, *(stratified_subset(ds[split], sizes[key], seed) for key, split in PER_CLASS.items())
