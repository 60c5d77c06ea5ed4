"""One row of findings.json per claim: the claim's words, this run's estimate with its interval
and replication, the evidence, the verdict, the regime it was reached in, and, where it is
inconclusive, the runs that would decide it."""

from __future__ import annotations

from dataclasses import replace

from statsmodels.stats.multitest import multipletests

from helpers.experiments.findings.claims import CLAIMS, Claim
from helpers.experiments.findings.stats import Estimate
from helpers.experiments.findings.verdicts import Regime, evidence, n_needed, verdict_of

ROLES = ("claim", "sub-claim", "sensitivity")


def _claim(claim: Claim | str) -> Claim:
    return CLAIMS[claim] if isinstance(claim, str) else claim


def _base(claim: Claim, regime: Regime, role: str) -> dict:
    return {
        "id": claim.id, "notebook": claim.notebook, "claim": claim.claim, "quote": claim.quote,
        "where": claim.where, "study": claim.study, "quantity": claim.quantity,
        "direction": claim.direction, "delta": claim.delta,
        "size": claim.size.words if claim.size else None, "regime": regime.label,
        "regime_short": regime.short, "role": role,
    }


def finding(claim: Claim | str, estimate: Estimate, regime: Regime, *, comparable: bool = True,
            why: str = "", testable: bool = True, role: str = "claim",
            p_adjusted: float | None = None) -> dict:
    """The row for claim from this run's estimate. comparable=False (with why): a number or a
    comparison this run's data, budget or model cannot speak to; absolute claims are
    comparable only in the study's regime (CINIC-10 at its budget). testable=False (with why):
    the budget cannot estimate it honestly. p_adjusted: a multiplicity-corrected p-value that
    decides the direction (sub-claims, Holm within their family)."""
    claim = _claim(claim)
    if role not in ROLES:
        raise ValueError(f"role {role!r}: one of {ROLES}")
    e = estimate.cleaned()
    compare_size = regime.is_studys  # the study's numbers are compared in its regime only
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
    row["evidence"] = evidence(claim, e, p_adjusted, compare_size)
    verdict = verdict_of(claim, row["evidence"]) if comparable else "not comparable"
    if verdict == "inconclusive":
        row["n_needed"] = n_needed(claim, e, compare_size)
    return row | {"verdict": verdict}


def fact(claim: Claim | str, observed: str, holds: bool, regime: Regime) -> dict:
    """A claim that is a fact about the data (C0): it holds exactly or not, on CINIC-10 only."""
    claim = _claim(claim)
    row = _base(claim, regime, "claim") | {
        "estimate": None, "ci_low": None, "ci_high": None, "pi_low": None, "pi_high": None,
        "p": None, "p_adjusted": None, "n": 1, "replication": "the whole dataset, counted",
        "method": "counted", "comparable": regime.cinic10, "observed": observed,
        "why": "" if regime.cinic10 else regime.data, "evidence": None, "n_needed": None,
    }
    verdict = ("reproduced" if holds else "contradicted") if regime.cinic10 else "not comparable"
    return row | {"verdict": verdict}


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family's p-values (statsmodels; None stays None)."""
    known = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if known:
        adjusted = multipletests([p_values[i] for i in known], method="holm")[1]
        for i, a in zip(known, adjusted):
            out[i] = float(a)
    return out


def judged(rows: list[dict]) -> list[dict]:
    """The family the multiplicity statement is about: the study's claims (not sub-claims or
    sensitivity rows) with a direction and a p-value, that this run could judge."""
    return [r for r in rows if r["role"] == "claim" and r["direction"] in ("+", "-")
            and r.get("p") is not None
            and r["verdict"] not in ("not comparable", "not testable")]


def the_studys_way(rows: list[dict]) -> tuple[list[str], list[str]]:
    """(ids decided the study's way, ids that stay so after Holm's correction across the
    judged claims): what the family-wise rate is about."""
    tested = judged(rows)
    way = [r for r in tested if r["verdict"] in ("reproduced", "direction only")]
    adjusted = holm([r["p"] for r in tested])
    kept = [r["id"] for r, p in zip(tested, adjusted) if r in way and p < 1 - 0.95]
    return [r["id"] for r in way], kept


def family(claim_id: str, parts: dict[str, Estimate], regime: Regime, **kwargs) -> list[dict]:
    """Sub-claims of one claim (e.g. C7 per augmentation), their directions decided after
    Holm's correction within the family; their intervals are the unadjusted ones."""
    from helpers.experiments.findings.claims import sub_claim

    names = list(parts)
    adjusted = holm([parts[n].p for n in names])
    # n needed for a member: its bounds at the family's Bonferroni level (Holm's first step)
    return [finding(sub_claim(claim_id, n), replace(parts[n], tail=parts[n].tail / len(names)),
                    regime, role="sub-claim", p_adjusted=1.0 if a is None else a, **kwargs)
            for n, a in zip(names, adjusted)]
