"""The data layer's types (Split, Dataset) and draws (subsets, carving, channel statistics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.data.sources import SPLITS

# CINIC-10's published per-channel statistics (its README), for comparison in 01_data.
CINIC10_MEAN = (0.47889522, 0.47227842, 0.43047404)
CINIC10_STD = (0.24205776, 0.23828046, 0.25874835)


@dataclass
class Split:
    """One split in memory: x (n, 32, 32, 3) uint8, y (n,) int64, names and sources (n,) str."""

    x: np.ndarray
    y: np.ndarray
    names: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


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
        return {"dataset": self.name, "kind": self.kind, "fingerprint": self.fingerprint,
                "location": self.meta["location"], "valid_carved": self.meta["valid_carved"]}

    def counts(self):
        """Images per split (columns) and class (rows, then total), as a DataFrame."""
        import pandas as pd

        # a class folder named "total" keeps its own row, relabelled, under the real total
        index = [f"{c!r} (class)" if c == "total" else c for c in self.classes]
        table = pd.DataFrame({s: np.bincount(self[s].y, minlength=len(self.classes)) for s in SPLITS},
                             index=index)
        return pd.concat([table, table.sum().to_frame("total").T])


def stratified_subset(split: Split, per_class: int | float | None, seed: int = 0) -> Split:
    """The same number (int) or share (float in (0, 1]) of every class (None or 0: all), seeded."""
    if not per_class:
        return split
    keep = _per_class(split.y, seed,
                      lambda rng, idx: rng.choice(idx, _share(per_class, idx), replace=False))
    rows = np.sort(np.concatenate(keep))
    return Split(split.x[rows], split.y[rows], split.names[rows], split.sources[rows])


def carve_valid(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of train indices into (train, valid): `fraction` of every class."""
    shuffled = _per_class(y, seed, lambda rng, idx: rng.permutation(idx))
    cuts = [_share(fraction, idx) for idx in shuffled]
    train = np.concatenate([idx[k:] for idx, k in zip(shuffled, cuts)])
    valid = np.concatenate([idx[:k] for idx, k in zip(shuffled, cuts)])
    return np.sort(train), np.sort(valid)


def _per_class(y: np.ndarray, seed: int, pick) -> list[np.ndarray]:
    """pick(rng, indices of class c) for every class in order, from one generator seeded once."""
    rng = np.random.default_rng(seed)
    return [pick(rng, np.flatnonzero(y == c)) for c in np.unique(y)]


def _share(amount: int | float, idx: np.ndarray) -> int:
    """How many of a class's len(idx) images: a count (int, at most all) or a share (float)."""
    return min(int(round(amount * len(idx))) if isinstance(amount, float) else int(amount), len(idx))


def channel_stats(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (3,) in [0, 1], exact from 256-bin histograms (no float copy)."""
    hist = np.stack([np.bincount(split.x[..., ch].ravel(), minlength=256) for ch in range(3)])
    values = np.arange(256) / 255.0
    mean = hist @ values / hist.sum(axis=1)
    return mean, np.sqrt(hist @ values**2 / hist.sum(axis=1) - mean**2)


def source_shares(ds: Dataset):
    """Share of images per source (cifar10 / imagenet / …) in each split, as a DataFrame."""
    import pandas as pd

    shares = {s: pd.Series(ds[s].sources).value_counts(normalize=True) for s in SPLITS}
    return pd.DataFrame(shares).fillna(0.0).rename_axis("source")
