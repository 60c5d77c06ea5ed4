"""01_data's check of the study's data facts (C0): three splits of 90,000 images in 10 classes,
counted on the dataset as loaded (a fact holds exactly or not; only CINIC-10 can hold it)."""

from __future__ import annotations

from helpers.data.sources import CINIC10_PER_SPLIT_CLASS, SPLITS


def claim(ds, regime) -> dict:
    """C0 from the dataset's counts: images per split and the number of classes."""
    from helpers.experiments import findings

    per_split = {s: len(ds[s]) for s in SPLITS}
    expected = 10 * CINIC10_PER_SPLIT_CLASS
    observed = (", ".join(f"{s} {n:,}" for s, n in per_split.items())
                + f"; {len(ds.classes)} classes")
    holds = len(ds.classes) == 10 and all(n == expected for n in per_split.values())
    return findings.fact("C0", observed, holds, regime)
