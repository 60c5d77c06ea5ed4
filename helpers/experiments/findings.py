"""The study's claims as data, each tested in every run: an estimate with a 95% interval from
real replication (seeds, or the grid's factorial design), n, the method, and a verdict that
follows from the interval. Notebooks write their claims to results/findings/<notebook>.json;
`collect` merges them into results/findings.json, which the report opens with."""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from helpers.atomic import read_json, write_json
from helpers.base import escape

LEVEL = 0.95
VERDICTS = ("supported", "contradicted", "inconclusive", "not comparable")
COLOURS = {
    "supported": "#1a7f37",
    "contradicted": "#c00",
    "inconclusive": "#9a6700",
    "not comparable": "#57606a",
}


@dataclass(frozen=True)
class Claim:
    """One finding of the study and the quantity that tests it. direction: '+' (the study says
    the quantity is above zero), '-' (below zero) or 'abs' (an absolute number, `reference`)."""

    id: str
    notebook: str
    claim: str
    study: str
    quantity: str
    direction: str
    reference: float | None = None


STUDY_RESNET, STUDY_TRANSFER = 0.6916222, 0.7248  # the study's two test accuracies
CLAIMS = {
    c.id: c
    for c in [
        Claim("C1", "02_resnet", "the ResNet reaches 69.16% test accuracy (20 epochs)",
              "0.6916", "ResNet test accuracy", "abs", STUDY_RESNET),
        Claim("C2", "03_hyperparams", "one or three residual blocks are best (Fig. 4)",
              "1 or 3 blocks best", "best of {1, 3} blocks minus 5 blocks", "+"),
        Claim("C3", "03_hyperparams", "larger kernels give higher accuracy (Fig. 5)",
              "larger is better", "largest kernel minus smallest kernel", "+"),
        Claim("C4", "03_hyperparams", "few blocks with large kernels are best (Fig. 6)",
              "{1, 3} blocks × kernel {4, 5} best",
              "mean of {1, 3} blocks × kernel {4, 5} minus the other cells", "+"),
        Claim("C5", "03_hyperparams",
              "dropout moves accuracy most of the three regularisation parameters (Fig. 7)",
              "dropout matters most",
              "dropout's spread of marginal means minus the largest other spread", "+"),
        Claim("C6", "03_hyperparams", "accuracy decreases slightly as λ grows (Fig. 7)",
              "slight decrease", "largest λ minus smallest λ", "-"),
        Claim("C7", "04_augmentation", "augmentation decreases overfitting (Fig. 10)",
              "gap decreases",
              "train−validation gap, augmented minus baseline (mean of the augmentations)", "-"),
        Claim("C8", "04_augmentation", "augmentation improves accuracy a little",
              "a little better",
              "test accuracy, augmented minus baseline (mean of the augmentations)", "+"),
        Claim("C9", "05_transfer", "fine-tuning adds 15 percentage points after its first "
              "epoch (Fig. 12)", "+0.15",
              "validation accuracy after the first unfrozen epoch minus after the frozen stage",
              "+"),
        Claim("C10", "05_transfer", "transfer learning is the best model of the study",
              "05 > 02", "test accuracy of 05 minus 02", "+"),
        Claim("C11", "05_transfer", "fine-tuned VGG19 reaches 72.48% test accuracy",
              "0.7248", "transfer model test accuracy", "abs", STUDY_TRANSFER),
    ]
}


def sub_claim(claim_id: str, part: str) -> Claim:
    """The claim restricted to one arm, e.g. C7 for flip alone: id 'C7.flip'."""
    c = CLAIMS[claim_id]
    quantity = c.quantity.replace("augmented", part).replace(" (mean of the augmentations)", "")
    return Claim(f"{c.id}.{part}", c.notebook, f"{c.claim} — {part}", c.study, quantity,
                 c.direction, c.reference)


# --- intervals ---------------------------------------------------------------------------------


def _clean(x) -> float | None:
    """A JSON-ready number: None for a missing or non-finite one; rounded to 1e-6, below the
    resolution of any accuracy here, so float32 round-off never reads as an effect."""
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6) + 0.0


def mean_interval(values) -> tuple[float, float | None, float | None, int]:
    """Mean of independent replicates and its t interval (None, None with fewer than two)."""
    v = np.asarray(values, float)
    n, mean = len(v), float(v.mean())
    if n < 2 or np.ptp(v) < 1e-6:  # no scatter seen: nothing to build an interval from
        return mean, None, None, n
    low, high = stats.t.interval(LEVEL, n - 1, loc=mean, scale=stats.sem(v))
    return mean, _clean(low), _clean(high), n


def paired_interval(treated, control) -> tuple[float, float | None, float | None, int]:
    """Mean paired difference treated - control (arms share seeds and initial weights)."""
    return mean_interval(np.asarray(treated, float) - np.asarray(control, float))


def welch_interval(a, b) -> tuple[float, float | None, float | None, int]:
    """mean(a) - mean(b) for two independent samples, Welch's t interval; n = the smaller."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    est = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2 or max(np.ptp(a), np.ptp(b)) < 1e-6:
        return est, None, None, min(len(a), len(b))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(LEVEL)
    return est, _clean(ci.low), _clean(ci.high), min(len(a), len(b))


def additive_fit(table: pd.DataFrame, factors: list[str], metric: str):
    """Ordinary least squares of metric on the factors' main effects (each a category): the
    residual variance of a factorial grid measures the noise plus interactions."""
    import statsmodels.formula.api as smf

    formula = f"{metric} ~ " + " + ".join(f"C({f})" for f in factors)
    return smf.ols(formula, data=table).fit()


def factorial_contrast(
    table: pd.DataFrame, factors: list[str], metric: str, weights: np.ndarray
) -> tuple[float, float | None, float | None, int]:
    """A linear contrast sum(w * y) of a grid's trials (weights sum to zero), with a t interval
    from the additive model's residual variance: its standard error is sqrt(mse * sum(w^2))."""
    fit = additive_fit(table, factors, metric)
    y = table[metric].to_numpy(float)
    est = float(weights @ y)
    if fit.df_resid < 1:
        return est, None, None, len(y)
    half = stats.t.ppf(0.5 + LEVEL / 2, fit.df_resid) * math.sqrt(
        fit.mse_resid * float(weights @ weights)
    )
    return est, _clean(est - half), _clean(est + half), len(y)


def factorial_bootstrap(
    table: pd.DataFrame, factors: list[str], metric: str, statistic, n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float | None, float | None, int]:
    """A non-linear statistic of a grid (e.g. a spread of marginal means), with a percentile
    interval from a residual bootstrap of the additive model (residuals rescaled for the
    parameters fitted)."""
    fit = additive_fit(table, factors, metric)
    est = float(statistic(table))
    if fit.df_resid < 1:
        return est, None, None, len(table)
    rng = np.random.default_rng(seed)
    resid = fit.resid.to_numpy() * math.sqrt(len(table) / fit.df_resid)
    fitted = fit.fittedvalues.to_numpy()
    sample = table.copy()
    draws = np.empty(n_boot)
    for i in range(n_boot):
        sample[metric] = fitted + rng.choice(resid, len(resid), replace=True)
        draws[i] = statistic(sample)
    low, high = np.quantile(draws, [0.5 - LEVEL / 2, 0.5 + LEVEL / 2])
    return est, _clean(low), _clean(high), len(table)


# --- verdicts and rows -------------------------------------------------------------------------


def verdict(claim: Claim, low: float | None, high: float | None, comparable: bool = True) -> str:
    """supported: the interval lies wholly on the study's side of zero (for an absolute claim:
    it reaches the study's number or lies above it); contradicted: wholly on the other side
    (absolute: wholly below); inconclusive otherwise. Absolute claims off CINIC-10: not
    comparable."""
    if claim.direction == "abs":
        if not comparable:
            return "not comparable"
        if high is None:
            return "inconclusive"
        return "supported" if high >= claim.reference else "contradicted"
    if low is None or high is None:
        return "inconclusive"
    lo, hi = (low, high) if claim.direction == "+" else (-high, -low)
    return "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"


def finding(claim: Claim | str, estimate_ci_n: tuple, method: str, comparable: bool = True) -> dict:
    """One row of findings.json for claim from (estimate, ci_low, ci_high, n)."""
    claim = CLAIMS[claim] if isinstance(claim, str) else claim
    est, low, high, n = estimate_ci_n
    row = {k: v for k, v in asdict(claim).items() if k != "reference"}
    row |= {
        "estimate": _clean(est),
        "ci_low": low,
        "ci_high": high,
        "n": int(n),
        "method": method,
        "verdict": verdict(claim, low, high, comparable),
    }
    return row


# --- files -------------------------------------------------------------------------------------


def save(run_dir, notebook: str, rows: list[dict], *, dataset: str, profile: str) -> Path:
    """results/findings/<notebook>.json (this notebook's claims), then the merged
    results/findings.json of the notebooks that stand (this one counting itself)."""
    from helpers.artifacts import completed_notebooks, run_paths
    from helpers.backend import name as backend_name

    folder = run_paths(run_dir)["results"] / "findings"
    folder.mkdir(exist_ok=True)
    write_json(folder / f"{notebook}.json", {"dataset": dataset, "profile": profile,
                                             "backend": backend_name(), "claims": rows})
    return collect(run_dir, completed_notebooks(run_dir, also=notebook))


def collect(run_dir, standing: set[str] | None = None) -> Path:
    """results/findings.json: {"dataset", "profile", "backend", "claims": [...]} from every
    notebook that wrote its findings and stands (artifacts.completed_notebooks; None: all),
    claims in the study's order."""
    from helpers.artifacts import run_paths

    results = run_paths(run_dir)["results"]
    parts = [read_json(p) for p in sorted((results / "findings").glob("*.json"))
             if standing is None or p.stem in standing]
    claims = [row for part in parts for row in part["claims"]]
    order = list(CLAIMS)
    claims.sort(key=lambda r: (order.index(r["id"].split(".")[0]), r["id"]))
    merged = {
        "dataset": parts[-1]["dataset"] if parts else None,
        "profile": parts[-1]["profile"] if parts else None,
        # the Keras backend (a run folder keeps one; parts from before it was recorded: TF's)
        "backend": parts[-1].get("backend", "tensorflow") if parts else None,
        "claims": claims,
    }
    return write_json(results / "findings.json", merged)


def load(run_dir, standing: set[str] | None = None) -> dict | None:
    """results/findings.json, or None where no notebook wrote findings; with standing (the
    notebooks that completed, artifacts.completed_notebooks), only their claims."""
    path = Path(run_dir) / "results" / "findings.json"
    found = read_json(path) if path.exists() else None
    if found and standing is not None:
        found = {**found, "claims": [r for r in found["claims"] if r["notebook"] in standing]}
    return found


# --- words -------------------------------------------------------------------------------------


def interval_text(row: dict, digits: int = 3) -> str:
    """'0.612 [0.598, 0.626], n = 3' (no interval: 'n = 1, no interval')."""
    est = f"{row['estimate']:+.{digits}f}" if row["direction"] != "abs" else (
        f"{row['estimate']:.{digits}f}")
    if row["ci_low"] is None:
        return f"{est}, n = {row['n']}, no interval"
    return f"{est} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}], n = {row['n']}"


def badge(verdict_: str) -> str:
    """The verdict, bold, for Markdown text (nbconvert drops inline HTML's content, so colour
    lives in table_html)."""
    return f"**{verdict_}**"


def sentence(row: dict) -> str:
    """One Markdown sentence for a claim, worded from its verdict: never 'raised' or 'best'
    where the interval includes zero."""
    claim, v, ci = row["claim"], row["verdict"], interval_text(row)
    if v == "supported":
        return f"**{row['id']}** ({claim}): {badge(v)} — {row['quantity']} is {ci}."
    if v == "contradicted":
        return (f"**{row['id']}** ({claim}): {badge(v)} — {row['quantity']} is {ci}, on the "
                "other side of the study's claim.")
    if v == "not comparable":
        return (f"**{row['id']}** ({claim}): {badge(v)} — this run is not on CINIC-10; "
                f"{row['quantity']} was {ci}.")
    if row["ci_low"] is None:
        return (f"**{row['id']}** ({claim}): {badge(v)} — {row['quantity']} is {ci}: one "
                "run cannot separate an effect from the scatter between seeds.")
    half = (row["ci_high"] - row["ci_low"]) / 2
    return (f"**{row['id']}** ({claim}): {badge(v)} — {row['quantity']} is {ci}: within "
            f"the scatter between runs (±{half:.3f}), so this run neither confirms nor "
            "refutes it.")


def conclusion(rows: list[dict]) -> str:
    """A notebook's conclusion on the study's claims: one bullet per claim."""
    return "\n".join(f"- {sentence(r)}" for r in rows)


def table_html(rows: list[dict]) -> str:
    """claim | the study | this run: estimate [95% interval], n | verdict (coloured) | method,
    as one HTML table (a block: Markdown renderers pass it through whole)."""
    head = ("claim", "the study", "this run: estimate [95% interval], n", "verdict", "method")
    out = ["<table class='findings'>", "<thead><tr>"
           + "".join(f"<th style='text-align:left'>{h}</th>" for h in head) + "</tr></thead>",
           "<tbody>"]
    for r in rows:
        cells = (
            f"<b>{html.escape(r['id'])}</b> {html.escape(r['claim'])}",
            html.escape(r["study"]),
            f"{html.escape(r['quantity'])}: {interval_text(r)}",
            f"<b style='color:{COLOURS[r['verdict']]}'>{r['verdict']}</b>",
            html.escape(r["method"]),
        )
        out.append("<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells)
                   + "</tr>")
    return "\n".join([*out, "</tbody>", "</table>"])


def summary(rows: list[dict]) -> str:
    """The whole report's conclusion, counted from the verdicts."""
    counts = {v: [r["id"] for r in rows if r["verdict"] == v] for v in VERDICTS}
    parts = [f"{len(ids)} {v} ({escape(', '.join(ids))})" for v, ids in counts.items() if ids]
    text = f"Of the study's claims this run tested ({len(rows)}): " + "; ".join(parts) + ". "
    if counts["inconclusive"]:
        text += ("An inconclusive claim is one whose interval includes no effect: more seeds, "
                 "more data or more epochs (the `full` profile) are needed to tell. ")
    return text
