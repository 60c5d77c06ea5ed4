"""The data layer's front door: load_dataset(spec) -> Dataset (decoded, cached), subsets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import Split, build_cache, check_carving, load_meta, load_split
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
        """Images per split and class, as a DataFrame (rows: classes, then total; columns: splits)."""
        import pandas as pd

        # a class folder named "total" keeps its own row, relabelled, under the real total
        index = [f"{c!r} (class)" if c == "total" else c for c in self.classes]
        table = pd.DataFrame(
            {s: np.bincount(self[s].y, minlength=len(self.classes)) for s in SPLITS},
            index=index,
        )
        return pd.concat([table, table.sum().to_frame("total").T])


def load_dataset(
    spec: str = "auto",
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
    say=print,
) -> Dataset:
    """Resolve spec (auto | cinic10 | synthetic | PATH), decode it once into the cache, load it."""
    check_carving(valid_fraction, seed)  # before a download or a decode, not after
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


# CINIC-10's published per-channel statistics (its README), for comparison in 01_data.
CINIC10_MEAN = (0.47889522, 0.47227842, 0.43047404)
CINIC10_STD = (0.24205776, 0.23828046, 0.25874835)


def channel_stats(split: Split, chunk: int = 10_000):
    """Per-channel mean and std of pixel values in [0, 1], computed in float64 chunks so a
    90,000-image split never needs a float copy in memory. Returns (mean (3,), std (3,))."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for i in range(0, len(split), chunk):
        part = split.x[i : i + chunk].reshape(-1, 3).astype(np.float64) / 255.0
        total += part.sum(axis=0)
        total_sq += np.square(part).sum(axis=0)
    n = len(split) * 32 * 32
    mean = total / n
    return mean, np.sqrt(total_sq / n - mean**2)


def source_shares(ds: Dataset):
    """Share of images per source (cifar10 / imagenet / …) in each split, as a DataFrame."""
    import pandas as pd

    return (
        pd.DataFrame({s: pd.Series(ds[s].sources).value_counts(normalize=True) for s in SPLITS})
        .fillna(0.0)
        .rename_axis("source")
    )
