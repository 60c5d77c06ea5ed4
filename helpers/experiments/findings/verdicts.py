"""What a claim's estimate says, by three kinds of evidence, and the verdict they add up to.

1. Direction: the 95% interval lies on the study's side of zero, on the other side, or across it.
2. Size, where the study gives one: its number (a single run's) is compared with a 95%
   prediction interval for one new run, and with this run's interval widened by ±Δ.
3. No effect: an interval wholly within ±Δ of zero says the effect is negligible.

VERDICTS (one table, also in the report and docs/findings.md):
- reproduced: the direction holds and, where the study states a size, the size too (its number
  within ±Δ of the whole interval; a size in words: inside the prediction interval).
- direction only: the direction holds, but the study's size is excluded.
- contradicted: the interval lies on the other side of zero; or the study's number is excluded
  while the direction is not established (absolute numbers: excluded at all).
- negligible: the whole interval lies within ±Δ of no effect.
- inconclusive: none of these; the row says how many runs would decide it.
- not testable: this budget cannot estimate the quantity honestly (e.g. one seed per
  configuration for a claim about interactions).
- not comparable: the run's data or budget is not the study's, for a claim whose number
  depends on them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from helpers.experiments.findings.claims import Claim
from helpers.experiments.findings.stats import Estimate

VERDICTS = ("reproduced", "direction only", "contradicted", "negligible", "inconclusive",
            "not testable", "not comparable")
DECISIVE = ("reproduced", "direction only", "contradicted")  # a direction or a size decided
DEFINITIONS = {
    "reproduced": "the direction holds and, where the study states a size, the size too: its "
    "number lies within ±Δ of the whole interval (a size in words: inside the prediction "
    "interval for one new run)",
    "direction only": "the direction holds, but the study's size lies outside what this run "
    "predicts",
    "contradicted": "the interval lies wholly on the other side of zero; or the study's number "
    "lies outside what this run predicts while the direction is not established",
    "negligible": "the whole interval lies within ±Δ of no effect: a real answer, no effect "
    "worth the name",
    "inconclusive": "none of the above: the row gives the runs that would decide it (80% power "
    "at this run's scatter)",
    "not testable": "this budget cannot estimate the quantity honestly (e.g. one seed per "
    "configuration leaves an interaction inseparable from noise)",
    "not comparable": "an absolute number (or a comparison between notebooks) whose data, "
    "budget or model is not the study's",
}
N_MAX = 10_000
POWER = 0.8
FRAGILE = 0.25  # a direction whose bound clears zero by under a quarter of the half-width


@dataclass(frozen=True)
class Regime:
    """On what data and at what budget a notebook ran, against the study's. study_budget: None
    where the notebook sets none of the study's settings (01: it reads every image anyway).
    departures: the study-stated settings this run changes ("epochs 4 (the study: 20)")."""

    data: str
    cinic10: bool
    study_budget: bool | None
    profile: str = ""
    departures: tuple[str, ...] = ()

    @property
    def is_studys(self) -> bool:
        return self.cinic10 and self.study_budget is not False

    @property
    def short(self) -> str:
        """'CIFAR-10 (cifar10-jpeg), quick budget' (the data alone where no budget applies)."""
        if self.study_budget is None:
            return self.data
        budget = "the study's budget" if self.study_budget else (
            f"{self.profile} budget" if self.profile else "a reduced budget")
        return f"{self.data}, {budget}" if not self.is_studys else f"{self.data} at {budget}"

    @property
    def label(self) -> str:
        """'CIFAR-10 (cifar10-jpeg), quick budget: a generalisation check, not a reproduction'."""
        if self.is_studys:
            return self.short
        if self.study_budget is None:
            return f"{self.data}: not CINIC-10"
        return f"{self.short}: a generalisation check, not a reproduction"

    def as_dict(self) -> dict:
        return {"data": self.data, "cinic10": self.cinic10, "study_budget": self.study_budget,
                "profile": self.profile, "departures": list(self.departures),
                "label": self.label}


UNNAMED = Regime("data not named", False, False)  # for tests and interactive use


def _adjusted(claim: Claim, e: Estimate):
    """(value, low, high, pi_low, pi_high) turned so that positive is the study's way."""
    if claim.sign > 0:
        return e.value, e.low, e.high, e.pi_low, e.pi_high
    flip = [None if x is None else -x for x in (e.value, e.high, e.low, e.pi_high, e.pi_low)]
    return tuple(flip)


def evidence(claim: Claim, e: Estimate, p_adjusted: float | None = None) -> dict:
    """The three kinds of evidence: direction (holds | opposite | undetermined), size
    (consistent | excluded | undetermined | None where the study states none) and negligible.
    With p_adjusted (a multiplicity-corrected p-value), the direction is decided by it instead
    of by the interval."""
    value, lo, hi, pi_lo, pi_hi = _adjusted(claim, e)
    if claim.direction == "abs":  # an accuracy is above zero: only its size says anything
        direction = None
    elif p_adjusted is not None:
        decided = p_adjusted < 1 - 0.95
        direction = ("holds" if value > 0 else "opposite") if decided else "undetermined"
    else:
        direction = "holds" if lo > 0 else "opposite" if hi < 0 else "undetermined"
    size = None
    target = claim.target
    if target is not None:
        band = (target - claim.delta, target + claim.delta)
        if band[0] <= lo and hi <= band[1]:
            size = "consistent"
        elif hi < band[0] or lo > band[1] or (pi_lo is not None and not pi_lo <= target <= pi_hi):
            size = "excluded"
        else:
            size = "undetermined"
    elif claim.size is not None:  # a size in words, e.g. "a little": at most size.high
        size = "excluded" if pi_lo is not None and pi_lo > claim.size.high else "consistent"
    negligible = target is None and -claim.delta < lo and hi < claim.delta
    # how far the deciding bound clears zero, as a share of the interval's half-width: a
    # direction decided by a hair can flip with another seed or another processor's round-off
    clear = lo if direction == "holds" else -hi if direction == "opposite" else None
    margin = None if clear is None or p_adjusted is not None else round(clear / ((hi - lo) / 2), 3)
    return {"direction": direction, "size": size, "negligible": bool(negligible),
            "margin": margin, "fragile": margin is not None and margin < FRAGILE}


def verdict_of(claim: Claim, ev: dict) -> str:
    """The verdict the evidence adds up to (see the module's table)."""
    if claim.direction == "abs":
        return {"consistent": "reproduced", "excluded": "contradicted"}.get(ev["size"],
                                                                           "inconclusive")
    if claim.target is not None:  # a direction and the study's number (C9)
        if ev["size"] == "consistent":
            return "reproduced"
        if ev["size"] == "excluded":
            return "direction only" if ev["direction"] == "holds" else "contradicted"
        return "contradicted" if ev["direction"] == "opposite" else "inconclusive"
    if ev["negligible"]:
        return "negligible"
    if ev["direction"] == "holds":
        return "direction only" if ev["size"] == "excluded" else "reproduced"
    return "contradicted" if ev["direction"] == "opposite" else "inconclusive"


# --- how many runs would decide it ---------------------------------------------------------------


def _power(kind: str, effect: float, margin: float, se, df, tail: float):
    """Power of new runs with standard errors se and degrees of freedom df (arrays): to show
    the direction of `effect` ("direction"), to show it within ±margin ("equivalence",
    |effect| < margin) or beyond it ("exclusion", |effect| > margin)."""
    t = stats.t.ppf(1 - tail, df)  # (the normal approximation to the noncentral t's power)
    if kind == "direction":
        return stats.norm.cdf(abs(effect) / se - t)
    if kind == "exclusion":
        return stats.norm.cdf((abs(effect) - margin) / se - t)
    d = abs(effect)  # equivalence: both bounds inside ±margin
    return np.maximum(0.0, stats.norm.cdf((margin - d) / se - t)
                      - stats.norm.cdf((-margin - d) / se + t))


def n_needed(claim: Claim, e: Estimate) -> int | None:
    """Replicates (seeds, or seeds per configuration) at which a run like this one would reach
    a decisive verdict 4 times in 5 if the truth were this run's estimate: the direction of an
    effect at least Δ (an estimate below Δ: its being negligible); for a number the study
    states, being within ±Δ of it (or beyond). From this run's own scatter, and always more
    than this run's replicates; None when it has no scatter, N_MAX + 1 when even N_MAX would
    not do."""
    if e.se is None or not e.se > 0 or e.df is None:
        return None
    per_unit = e.se * math.sqrt(e.units)
    target = claim.target
    if target is not None:
        distance = e.value - target
        kind = "equivalence" if abs(distance) < claim.delta else "exclusion"
        effect = distance
    else:
        kind = "direction" if abs(e.value) >= claim.delta else "equivalence"
        effect = e.value
    if kind == "exclusion" and math.isclose(abs(effect), claim.delta):
        return N_MAX + 1

    def first_enough(ks: np.ndarray) -> int | None:  # k replicates: pure-error df cells*(k-1)
        power = _power(kind, effect, claim.delta, per_unit / np.sqrt(ks),
                       np.maximum(1, e.cells * (ks - 1)), e.tail)
        hits = np.flatnonzero(power >= POWER)
        return int(ks[hits[0]]) if len(hits) else None

    start = e.units + 1  # more than this run had (it did not decide)
    coarse = np.unique(np.geomspace(start, N_MAX, 120).astype(int))
    k = first_enough(coarse)
    if k is None:
        return N_MAX + 1
    below = coarse[coarse < k]
    return first_enough(np.arange(below[-1] + 1 if len(below) else start, k + 1))
