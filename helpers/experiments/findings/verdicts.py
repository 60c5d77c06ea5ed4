"""What a claim's estimate says, the verdict that adds up to (DEFINITIONS, docs/findings.md),
the runs that would decide it, and findings.json's row for it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from helpers.experiments.findings.claims import CLAIMS, Claim, sub_claim
from helpers.experiments.findings.stats import TAIL, Estimate, simulated_power

__all__ = ["DECISIVE", "UNNAMED", "VERDICTS", "Regime", "fact", "family", "finding", "holm",
           "n_needed", "the_studys_way"]

DEFINITIONS = {
    "reproduced": "the direction holds and, where the study states a size, it is shown: the "
    "interval for the gap to the study's number (its single run counted as one run with "
    "scatter) lies within ±Δ, or the interval lies within the band of a size in words",
    "direction only": "the direction holds, but the study's size is not shown (excluded, "
    "undecided, or not comparable in this regime)",
    "contradicted": "the opposite direction is established (the interval lies wholly on the "
    "other side of zero); or, in the study's regime, a gap beyond ±Δ from the study's number "
    "is established",
    "negligible": "the whole interval lies within ±Δ of no effect: a real answer, no effect "
    "worth the name",
    "inconclusive": "none of the above: the row gives the runs that would decide it (80% power "
    "for an effect of Δ, by the verdict's own test)",
    "not testable": "this budget cannot estimate the quantity honestly (e.g. one seed per "
    "configuration leaves an interaction inseparable from noise)",
    "not comparable": "an absolute number (or a comparison between notebooks) whose data, "
    "budget or model is not the study's",
}
VERDICTS = tuple(DEFINITIONS)
DECISIVE = VERDICTS[:3]  # a direction or a size decided
N_MAX = 10_000
POWER = 0.8
FRAGILE = 0.25  # a direction whose bound clears zero by under a quarter of the half-width


@dataclass(frozen=True)
class Regime:
    """On what data and at what budget a notebook ran. study_budget: None where the notebook
    sets none of the study's settings (01); departures: "epochs 4 (the study: 20)", ..."""

    data: str
    cinic10: bool
    study_budget: bool | None
    profile: str = ""
    departures: tuple[str, ...] = ()

    @property
    def is_studys(self) -> bool:  # the study's numbers are compared in its regime only
        return self.cinic10 and self.study_budget is not False

    @property
    def short(self) -> str:
        """'CIFAR-10 (cifar10-jpeg), quick budget' (the data alone where no budget applies)."""
        if self.study_budget is None:
            return self.data
        budget = "the study's budget" if self.study_budget else (
            f"{self.profile} budget" if self.profile else "a reduced budget")
        return f"{self.data} at {budget}" if self.is_studys else f"{self.data}, {budget}"

    @property
    def label(self) -> str:
        """'CIFAR-10 (cifar10-jpeg), quick budget: a generalisation check, not a reproduction'."""
        return (self.short if self.is_studys else f"{self.data}: not CINIC-10"
                if self.study_budget is None
                else f"{self.short}: a generalisation check, not a reproduction")

    def as_dict(self) -> dict:
        return {**asdict(self), "departures": list(self.departures), "label": self.label}


UNNAMED = Regime("data not named", False, False)  # for tests and interactive use


def evidence(claim: Claim, e: Estimate, p_adjusted: float | None = None,
             compare_size: bool = True) -> dict:
    """direction (by p_adjusted where given, else the interval), size (None: the study states
    none; not compared outside the study's regime), negligible, margin, fragile."""
    value, lo, hi, pi_lo, pi_hi = (  # turned so that positive is the study's way
        (e.value, e.low, e.high, e.pi_low, e.pi_high) if claim.sign > 0 else
        [None if x is None else -x for x in (e.value, e.high, e.low, e.pi_high, e.pi_low)])
    if claim.direction == "abs":  # an accuracy is above zero: only its size says anything
        direction = None
    elif p_adjusted is not None:
        decided = p_adjusted < 1 - 0.95
        direction = ("holds" if value > 0 else "opposite") if decided else "undetermined"
    else:
        direction = "holds" if lo > 0 else "opposite" if hi < 0 else "undetermined"
    size, target = None, claim.target
    if target is not None and (not compare_size or pi_lo is None):
        size = "not compared"
    elif target is not None:  # the gap to the study's run: [pi_lo - target, pi_hi - target]
        gap_lo, gap_hi = pi_lo - target, pi_hi - target
        size = ("shown" if -claim.delta <= gap_lo and gap_hi <= claim.delta else
                "excluded" if gap_lo > claim.delta or gap_hi < -claim.delta else "undetermined")
    elif claim.size is not None:  # a size in words: between size.low and size.high
        size = ("shown" if lo > claim.size.low and hi <= claim.size.high else
                "excluded" if lo > claim.size.high else "undetermined")
    negligible = target is None and -claim.delta < lo and hi < claim.delta
    # how far the deciding bound clears zero, as a share of the interval's half-width: a
    # direction decided by a hair can flip with another seed or another processor's round-off
    clear = lo if direction == "holds" else -hi if direction == "opposite" else None
    margin = None if clear is None or p_adjusted is not None else round(clear / ((hi - lo) / 2), 3)
    return {"direction": direction, "size": size, "negligible": bool(negligible),
            "margin": margin, "fragile": margin is not None and margin < FRAGILE}


def verdict_of(claim: Claim, ev: dict) -> str:
    """The verdict the evidence adds up to (see DEFINITIONS)."""
    if claim.direction == "abs":
        return {"shown": "reproduced", "excluded": "contradicted"}.get(ev["size"], "inconclusive")
    if ev["negligible"]:
        return "negligible"
    if ev["direction"] == "opposite":
        return "contradicted"
    if ev["direction"] == "holds":
        return "reproduced" if ev["size"] in (None, "shown") else "direction only"
    if claim.target is not None and ev["size"] == "excluded":  # a gap beyond Δ, established
        return "contradicted"
    return "inconclusive"


def _power(claim: Claim, e: Estimate, ks: np.ndarray, sd: float,
           compare_size: bool = True) -> np.ndarray:
    """Power of the verdict's own test at ks replicates per cell, for an effect of Δ (a number
    the study states: being shown within ±Δ at no gap), as docs/findings.md says."""
    per = (e.df or 1) / max(e.units - 1, 1)  # this design's df per extra replicate
    df = np.maximum(1.0, per * (ks - 1.0))
    if claim.target is not None and compare_size:
        z = stats.norm.ppf(1 - TAIL)
        seeds = sd**2 * (1 + 1 / ks)
        known = e.fixed_var + e.study_var
        half = np.hypot(stats.t.ppf(1 - TAIL, df) * np.sqrt(seeds), z * math.sqrt(known))
        se = np.sqrt(seeds + known)
        return np.maximum(0.0, 2 * stats.norm.cdf((claim.delta - half) / se) - 1)
    if e.design != "t":
        return simulated_power(e.design, ks, claim.delta, sd, e.cells, per)
    se = np.sqrt(sd**2 / ks + e.fixed_var)
    return stats.norm.cdf(claim.delta / se - stats.t.ppf(1 - e.tail, df))


def n_needed(claim: Claim, e: Estimate, compare_size: bool = True) -> int | None:
    """Replicates per cell at which this design decides an effect of Δ (not this run's estimate)
    4 times in 5 at this run's scatter; None without scatter, N_MAX + 1 beyond N_MAX."""
    sd = e.spread if e.spread is not None else None if e.se is None else e.se * math.sqrt(e.units)
    if sd is None or not sd > 0 or e.df is None:
        return None

    def enough(k: int) -> bool:
        return bool(_power(claim, e, np.array([k]), sd, compare_size)[0] >= POWER)

    low, high = e.units, N_MAX
    if not enough(high):
        return N_MAX + 1
    while high - low > 1:  # the power grows with k: bisect
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


ROLES = ("claim", "sub-claim", "sensitivity")


def _base(claim: Claim, regime: Regime, role: str) -> dict:
    return {"id": claim.id, "notebook": claim.notebook, "claim": claim.claim, "quote": claim.quote,
            "where": claim.where, "study": claim.study, "quantity": claim.quantity,
            "direction": claim.direction, "delta": claim.delta,
            "size": claim.size.words if claim.size else None, "regime": regime.label,
            "regime_short": regime.short, "role": role,
            **dict.fromkeys(("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "p",
                             "p_adjusted"))}


def finding(claim: Claim | str, estimate: Estimate, regime: Regime, *, comparable: bool = True,
            why: str = "", testable: bool = True, role: str = "claim",
            p_adjusted: float | None = None) -> dict:
    """The row for claim from this run's estimate; comparable, testable (False with why) and
    p_adjusted (Holm's, deciding the direction) as DEFINITIONS and family say."""
    claim = CLAIMS[claim] if isinstance(claim, str) else claim
    if role not in ROLES:
        raise ValueError(f"role {role!r}: one of {ROLES}")
    e = estimate.cleaned()
    if claim.direction == "abs" and not regime.is_studys and comparable:
        comparable, why = False, f"{regime.short}, not CINIC-10 at the study's budget"
    row = _base(claim, regime, role) | {
        "estimate": e.value, "ci_low": e.low, "ci_high": e.high, "pi_low": e.pi_low,
        "pi_high": e.pi_high, "p": None if e.p is None else round(e.p, 6),
        "p_adjusted": None if p_adjusted is None else round(p_adjusted, 6), "n": int(e.n),
        "replication": e.replication, "method": e.method, "comparable": comparable,
        "why": why, "evidence": None, "n_needed": None, "diverged": int(e.diverged),
    }
    if not testable:
        return row | {"verdict": "not testable"}
    if not e.has_interval:
        return row | {"verdict": "not comparable" if not comparable else "inconclusive"}
    row["evidence"] = evidence(claim, e, p_adjusted, regime.is_studys)
    verdict = verdict_of(claim, row["evidence"]) if comparable else "not comparable"
    if verdict == "inconclusive":
        row["n_needed"] = n_needed(claim, e, regime.is_studys)
    return row | {"verdict": verdict}


def fact(claim: Claim | str, observed: str, holds: bool, regime: Regime) -> dict:
    """A claim that is a fact about the data (C0): it holds exactly or not, on CINIC-10 only."""
    claim = CLAIMS[claim] if isinstance(claim, str) else claim
    verdict = ("reproduced" if holds else "contradicted") if regime.cinic10 else "not comparable"
    return _base(claim, regime, "claim") | {
        "n": 1, "replication": "the whole dataset, counted", "method": "counted",
        "comparable": regime.cinic10, "observed": observed,
        "why": "" if regime.cinic10 else regime.data, "evidence": None, "n_needed": None,
        "verdict": verdict}


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family's p-values (statsmodels; None stays None)."""
    known = [p for p in p_values if p is not None]
    adjusted = iter(multipletests(known, method="holm")[1] if known else [])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def judged(rows: list[dict]) -> list[dict]:
    """The family the multiplicity statement is about: claims with a direction and a p judged."""
    return [r for r in rows if r["role"] == "claim" and r["direction"] in ("+", "-")
            and r.get("p") is not None
            and r["verdict"] not in ("not comparable", "not testable")]


def the_studys_way(rows: list[dict]) -> tuple[list[str], list[str]]:
    """(ids decided the study's way, those that stay so after Holm across the judged claims)."""
    tested = judged(rows)
    way = [r for r in tested if r["verdict"] in ("reproduced", "direction only")]
    adjusted = holm([r["p"] for r in tested])
    kept = [r["id"] for r, p in zip(tested, adjusted) if r in way and p < 1 - 0.95]
    return [r["id"] for r in way], kept


def family(claim_id: str, parts: dict[str, Estimate], regime: Regime, **kwargs) -> list[dict]:
    """Sub-claims (C7 per augmentation): directions after Holm within the family, intervals not."""
    names = list(parts)
    adjusted = holm([parts[n].p for n in names])
    # n needed for a member: its bounds at the family's Bonferroni level (Holm's first step)
    return [finding(sub_claim(claim_id, n), replace(parts[n], tail=parts[n].tail / len(names)),
                    regime, role="sub-claim", p_adjusted=1.0 if a is None else a, **kwargs)
            for n, a in zip(names, adjusted)]
