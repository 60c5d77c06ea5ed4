"""The data layer's front door: load_dataset(spec) -> Dataset (decoded, cached), subsets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import Split, build_cache, load_meta, load_split
from .sources import SPLITS, resolve_source


@dataclass
class Dataset:
    """A decoded dataset: splits train/valid/test, class names, provenance."""

    name: str
    kind: str
    classes: list[str]
    fingerprint: str
    cache: Path
    note: str
    meta: dict
    splits: dict[str, Split] = field(repr=False, default_factory=dict)

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    @property
    def is_cinic10(self) -> bool:
        return self.kind == "cinic10"

    def provenance(self) -> dict:
        """What a result needs to say about its data."""
        return {
            "dataset": self.name,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "location": self.meta["location"],
            "valid_carved": self.meta["valid_carved"],
        }

    def counts(self):
        """Images per split and class, as a DataFrame (rows: classes, columns: splits)."""
        import pandas as pd

        table = pd.DataFrame(
            {s: np.bincount(self[s].y, minlength=len(self.classes)) for s in SPLITS},
            index=self.classes,
        )
        table.loc["total"] = table.sum()
        return table


def load_dataset(
    spec: str = "auto",
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
    say=print,
) -> Dataset:
    """Resolve spec (auto | cinic10 | synthetic | PATH), decode it once into the cache, load it."""
    source = resolve_source(spec, download=download, say=say)
    cache = build_cache(source, valid_fraction=valid_fraction, seed=seed, say=say)
    meta = load_meta(cache)
    return Dataset(
        meta["name"],
        meta["kind"],
        meta["classes"],
        meta["fingerprint"],
        cache,
        source.note,
        meta,
        {s: load_split(cache, s) for s in SPLITS},
    )


def stratified_subset(split: Split, per_class: int | float | None, seed: int = 0) -> Split:
    """The same number (int) or share (float in (0, 1]) of every class, drawn with seed.
    None or 0 means the whole split."""
    if not per_class:
        return split
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(split.y):
        idx = np.flatnonzero(split.y == c)
        k = int(round(per_class * len(idx))) if isinstance(per_class, float) else int(per_class)
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return split.take(np.sort(np.concatenate(keep)))
