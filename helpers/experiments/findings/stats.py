"""Intervals from seeds and balanced factorial grids, each an Estimate (docs/findings.md); diverged
runs are left out and counted. tests/test_calibration.py checks every method by simulation."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

__all__ = ["Estimate", "Grid", "best_cell", "diverged", "either", "mean_of_runs", "paired",
           "spread_lead", "welch"]

LEVEL = 0.95
TAIL = (1 - LEVEL) / 2  # each bound of a 95% interval misses on its side at most 2.5% of the time
CHANCE_MARGIN = 0.02  # an accuracy within 2 points of chance (1 / classes): the run diverged


def _clean(x) -> float | None:
    """A JSON-ready number or None, rounded to 1e-6: float32 round-off is never an effect."""
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6) + 0.0


@functools.lru_cache(maxsize=4096)
def t_crit(df: float, tail: float = TAIL) -> float:
    """The t quantile a bound at one-sided level `tail` needs with df degrees of freedom."""
    return float(stats.t.ppf(1 - tail, df))


def diverged(accuracy, loss=None, classes: int = 10) -> np.ndarray:
    """Per run: diverged (loss not finite, accuracy missing or near chance), so left out."""
    acc = np.asarray(accuracy, float)
    out = ~np.isfinite(acc) | (acc <= 1 / classes + CHANCE_MARGIN)
    if loss is not None:
        out |= ~np.isfinite(np.asarray(loss, float))
    return out


def _kept(mask, *arrays) -> tuple[int, list[np.ndarray]]:
    arrays = np.asarray(arrays, float)  # (k, runs)
    bad = ~np.isfinite(arrays).all(axis=0) | (False if mask is None else np.asarray(mask, bool))
    return int(bad.sum()), list(arrays[:, ~bad])


@dataclass(frozen=True)
class Estimate:
    """A 95% interval [low, high] (None: no scatter), two-sided p, a prediction interval for one
    new run; units: replicates per cell; tail: each bound's one-sided level; for n_needed:
    spread (one replicate's s.d.), fixed_var (what more seeds do not shrink: the shared test
    subset's error), study_var (the study's test set's) and design ('best cell 4 8')."""

    value: float
    low: float | None
    high: float | None
    n: int
    replication: str
    method: str
    se: float | None = None
    df: float | None = None
    p: float | None = None
    pi_low: float | None = None
    pi_high: float | None = None
    units: int = 1
    cells: int = 1
    tail: float = TAIL
    spread: float | None = None
    fixed_var: float = 0.0
    study_var: float = 0.0
    design: str = "t"
    diverged: int = 0

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def cleaned(self) -> Estimate:
        return replace(self, value=_clean(self.value), low=_clean(self.low),
                       high=_clean(self.high), pi_low=_clean(self.pi_low),
                       pi_high=_clean(self.pi_high),
                       p=None if self.p is None else float(min(max(self.p, 0.0), 1.0)))


def _left_out(k: int) -> str:
    return f" ({k} diverged, left out)" if k else ""


def _seed_words(n: int, left_out: int = 0) -> str:
    return f"{n} seed{'s' if n != 1 else ''}" + _left_out(left_out)


def _no_scatter(v: np.ndarray) -> bool:
    return len(v) < 2 or float(np.ptp(v)) < 1e-6


def mean_of_runs(values, *, test_images: int | None = None, study_images: int | None = None,
                 method: str | None = None, diverged=None) -> Estimate:
    """The mean over seeds, its t interval and a prediction interval for one new run: the shared
    test subset's error p(1-p)/test_images joins both, the study's test set's the latter."""
    left_out, (v,) = _kept(diverged, values)
    n, mean = len(v), float(v.mean()) if len(v) else math.nan
    base = dict(n=n, replication=_seed_words(n, left_out), units=n, diverged=left_out,
                method=method or f"t interval over {_seed_words(n)}")
    if _no_scatter(v):
        return Estimate(mean, None, None, **base)
    s2 = float(v.var(ddof=1))
    p = min(max(mean, 0.0), 1.0)
    test_var = p * (1 - p) / test_images if test_images else 0.0
    study_var = p * (1 - p) / study_images if study_images else 0.0
    # the seeds' part is estimated (t, n - 1 df), the binomial parts known (normal): each
    # bound's half-width adds the two in quadrature
    t, z = t_crit(n - 1), t_crit(math.inf)
    half = math.hypot(t * math.sqrt(s2 / n), z * math.sqrt(test_var))
    pi = math.hypot(t * math.sqrt(s2 * (1 + 1 / n)), z * math.sqrt(test_var + study_var))
    return Estimate(mean, mean - half, mean + half, se=math.sqrt(s2 / n + test_var), df=n - 1,
                    pi_low=mean - pi, pi_high=mean + pi, spread=math.sqrt(s2),
                    fixed_var=test_var, study_var=study_var, **base)


def paired(treated, control, method: str | None = None, diverged=None) -> Estimate:
    """Mean difference treated - control over seeds (a seed's arms share initial weights and
    data order), scipy's paired t; diverged: seeds to leave out (either arm diverged)."""
    left_out, (a, b) = _kept(diverged, treated, control)
    n = len(a)
    est = replace(mean_of_runs(a - b, method=method or f"paired t over {_seed_words(n)}"),
                  replication=_seed_words(n, left_out), diverged=left_out)
    if not est.has_interval:
        return est
    test = stats.ttest_rel(a, b)
    ci = test.confidence_interval(LEVEL)
    pi = t_crit(n - 1) * est.spread * math.sqrt(1 + 1 / n)
    return replace(est, low=float(ci.low), high=float(ci.high), se=est.spread / math.sqrt(n),
                   p=float(test.pvalue), pi_low=est.value - pi, pi_high=est.value + pi)


def welch(a, b, method: str | None = None, diverged=(None, None)) -> Estimate:
    """mean(a) - mean(b) of independent runs, scipy's Welch t; diverged: a mask for each."""
    out_a, (a,) = _kept(diverged[0], a)
    out_b, (b,) = _kept(diverged[1], b)
    est = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    base = dict(n=len(a) + len(b), units=min(len(a), len(b)), cells=2,
                replication=f"{len(a)} vs {len(b)} seeds" + _left_out(out_a + out_b),
                method=method or f"Welch t, {len(a)} vs {len(b)} seeds", diverged=out_a + out_b)
    if base["units"] < 2 or (_no_scatter(a) and _no_scatter(b)):
        return Estimate(est, None, None, **base)
    test = stats.ttest_ind(a, b, equal_var=False)
    ci = test.confidence_interval(LEVEL)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return Estimate(est, float(ci.low), float(ci.high), se=se, df=float(test.df),
                    p=float(test.pvalue), **base)


@dataclass(frozen=True)
class Grid:
    """A balanced full-factorial grid of runs, y (L1, ..., Lk, r): r seeds per cell. Noise: with
    r >= 2 the pure error per level; with r = 1 the additive residual (holding interactions)."""

    factors: tuple[str, ...]
    levels: tuple[tuple, ...]
    y: np.ndarray

    @classmethod
    def from_table(cls, table, factors: list[str], metric: str, replicate: str = "seed") -> Grid:
        """From a trials table (one row per trial); every cell needs the same replicates."""
        columns = [table[f].to_numpy() for f in factors]
        columns.append(table[replicate].to_numpy() if replicate in table else np.zeros(len(table)))
        coded = [np.unique(c, return_inverse=True) for c in columns]  # (sorted levels, indices)
        y = np.full([len(lv) for lv, _ in coded], np.nan)
        y[tuple(where for _, where in coded)] = table[metric].to_numpy(float)
        if np.isnan(y).any() or len(table) != y.size:
            raise ValueError(f"grid over {factors}: not every cell has every {replicate} "
                             f"({int(np.isnan(y).sum())} missing); the design must be balanced")
        return cls(tuple(factors), tuple(tuple(lv) for lv, _ in coded[:-1]), y)

    @property
    def r(self) -> int:
        return self.y.shape[-1]

    @property
    def cells(self) -> int:
        return int(np.prod(self.y.shape[:-1]))

    def marginal(self, factor: str) -> np.ndarray:
        """Mean of every trial at each level of factor, (L,)."""
        axis = self.factors.index(factor)
        return self.y.mean(axis=tuple(i for i in range(self.y.ndim) if i != axis))

    def noise(self) -> tuple[float, int, str]:
        """(sigma^2 of one trial, df, words), pooled: pure error, or the additive residual."""
        m = self.y.mean(axis=-1)  # cell means
        if self.r >= 2:
            df = self.cells * (self.r - 1)
            return float(((self.y - m[..., None]) ** 2).sum() / df), df, f"pure-error df {df}"
        df = self.cells - 1 - sum(len(lv) - 1 for lv in self.levels)
        if df < 1:
            return math.nan, 0, "no residual df"
        fitted = np.full(m.shape, m.mean())  # balanced: grand + each marginal's deviation
        for axis in range(m.ndim):
            other = tuple(i for i in range(m.ndim) if i != axis)
            fitted = fitted + (m.mean(axis=other, keepdims=True) - m.mean())
        return float(((m - fitted) ** 2).sum() / df), df, (
            f"additive-model residual df {df}: interactions count as noise")

    def replication(self) -> str:
        how = ("pure error per level, Welch-Satterthwaite df" if self.r >= 2
               else self.noise()[2])
        return f"{self.cells} configurations × {_seed_words(self.r)}, {how}"

    def level_variances(self, factor: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per level of factor (L,): marginal mean, its variance and df from the level's own pure
        error (valid whatever the other factors do), or with one seed the additive residual."""
        axis = self.factors.index(factor)
        means = self.marginal(factor)
        n_level = self.y.size // len(means)
        if self.r >= 2:
            resid = np.moveaxis(self.y - self.y.mean(axis=-1)[..., None], axis, 0)
            df = np.full(len(means), (self.cells // len(means)) * (self.r - 1), float)
            s2 = (resid.reshape(len(means), -1) ** 2).sum(axis=1) / df
        else:
            sigma2, pooled, _ = self.noise()
            s2, df = np.full(len(means), sigma2), np.full(len(means), float(pooled))
        return means, s2 / n_level, df

    def level_contrast(self, factor: str, per_level, method: str) -> Estimate:
        """sum(w * marginal mean) over factor's levels, a Welch-Satterthwaite t interval."""
        w = np.asarray(per_level, float)
        means, v, df_level = self.level_variances(factor)
        est = float(w @ means)
        base = dict(n=self.y.size, replication=self.replication(), method=method,
                    units=self.r, cells=self.cells)
        parts = w**2 * v
        var = float(parts.sum())
        if not np.all(np.isfinite(df_level)) or df_level.min() < 1 or not var > 1e-12:
            return Estimate(est, None, None, **base)
        df = (var**2 / float((parts**2 / df_level).sum()) if self.r >= 2
              else float(df_level[0]))
        se = math.sqrt(var)
        t = t_crit(df)
        p = float(2 * stats.t.sf(abs(est) / se, df))
        return Estimate(est, est - t * se, est + t * se, se=se, df=df, p=p, **base)

    def trend(self, factor: str, values=None, method: str | None = None) -> Estimate:
        """The least-squares slope over factor's levels (at values) times their range."""
        x = np.asarray(values if values is not None else self.levels[self.factors.index(factor)],
                       float)
        dev = x - x.mean()
        return self.level_contrast(factor, dev / (dev**2).sum() * (x.max() - x.min()),
                                   method or f"linear trend contrast over {factor}, Welch t")


def either(parts: list[Estimate], method: str) -> Estimate:
    """The best of parts: each part's bounds at one-sided TAIL / len(parts) (Bonferroni), so [max
    low, max high] covers the largest true value; p: Bonferroni up, intersection-union down."""
    best = max(parts, key=lambda p: p.value)
    if not all(p.has_interval for p in parts):
        return replace(best, low=None, high=None, p=None, method=method)
    k = len(parts)
    low = max(p.value - t_crit(p.df, TAIL / k) * p.se for p in parts)
    high = max(p.value + t_crit(p.df, TAIL / k) * p.se for p in parts)
    up = [float(stats.t.sf(p.value / p.se, p.df)) for p in parts]
    p_up, p_down = min(1.0, k * min(up)), max(1 - u for u in up)
    return replace(best, low=low, high=high, p=min(1.0, 2 * min(p_up, p_down)), method=method,
                   tail=TAIL / k)


def best_cell(grid: Grid, region, method: str) -> Estimate:
    """Best cell mean inside region (index tuples) minus the best outside, from every pair's
    bounds: the lower at 2.5% / |inside|, the upper at 2.5% / |outside|, pooled pure error."""
    means = grid.y.mean(axis=-1)
    cells = list(itertools.product(*[range(len(lv)) for lv in grid.levels]))
    inside = [c for c in cells if c in region]
    outside = [c for c in cells if c not in region]
    est = float(max(means[c] for c in inside) - max(means[c] for c in outside))
    base = dict(n=grid.y.size, replication=grid.replication().split(",")[0]
                + f", pure-error df {grid.cells * (grid.r - 1)} (pooled)",
                method=method, units=grid.r, cells=grid.cells, tail=TAIL / len(inside),
                design=f"best cell {len(inside)} {len(outside)}")
    sigma2, df, _ = grid.noise()
    if grid.r < 2 or not sigma2 > 1e-12:
        return Estimate(est, None, None, **base)
    se = math.sqrt(2 * sigma2 / grid.r)
    diff = np.array([[means[c] - means[d] for d in outside] for c in inside])  # (in, out)
    low = float((diff - t_crit(df, TAIL / len(inside)) * se).min(axis=1).max())
    high = float((diff + t_crit(df, TAIL / len(outside)) * se).min(axis=1).max())
    up = stats.t.sf(diff / se, df)  # one-sided p of each difference being above zero
    p_up = len(inside) * up.max(axis=1).min()
    p_down = len(outside) * (1 - up).min(axis=1).max()
    return Estimate(est, low, high, se=se, df=df, p=float(min(1.0, 2 * min(p_up, p_down))),
                    spread=math.sqrt(sigma2), **base)


ALPHAS = np.geomspace(1e-6, 0.5, 160)  # the levels a p-value is read off (interval inversion)


def _ranges(means, v, df, tails):
    """Bounds (A,) of a factor's spread at one-sided levels tails (A,), from pairs' Welch t."""
    i, j = np.triu_indices(len(means), 1)
    d = np.abs(means[i] - means[j])
    se = np.sqrt(v[i] + v[j])
    dfp = (v[i] + v[j]) ** 2 / (v[i] ** 2 / df[i] + v[j] ** 2 / df[j])
    t = stats.t.ppf(1 - np.asarray(tails)[:, None], dfp[None, :])
    return np.maximum(0.0, (d - t * se).max(axis=1)), (d + t * se).max(axis=1)


def spread_lead(grid: Grid, lead: str, method: str) -> Estimate:
    """Lead's spread (max - min) of marginal means minus the largest other's, simultaneous
    bounds from every pair's Welch interval (C5 in docs/findings.md); p by interval inversion."""
    others = [f for f in grid.factors if f != lead]
    spreads = {f: float(np.ptp(grid.marginal(f))) for f in grid.factors}
    est = spreads[lead] - max(spreads[f] for f in others)
    pairs = {f: math.comb(len(lv), 2) for f, lv in zip(grid.factors, grid.levels)}
    n_low = 2 * pairs[lead] + len(others)
    n_high = 1 + 2 * sum(pairs[f] for f in others)
    base = dict(n=grid.y.size, replication=grid.replication(), method=method, units=grid.r,
                cells=grid.cells, tail=TAIL / n_low,
                design="spread " + " ".join(str(len(lv)) for lv in grid.levels))
    parts = {f: grid.level_variances(f) for f in grid.factors}
    if any(not np.all(v > 1e-14) or not np.all(np.isfinite(df)) or df.min() < 1
           for _, v, df in parts.values()):
        return Estimate(est, None, None, **base)
    tails = np.concatenate([[TAIL], ALPHAS])
    lo_lead, _ = _ranges(*parts[lead], tails / n_low)  # the lower bound's pairs
    low = lo_lead - np.max([_ranges(*parts[f], tails / n_low)[1] for f in others], axis=0)
    _, hi_lead = _ranges(*parts[lead], tails / n_high)  # the upper bound's
    high = hi_lead - np.max([_ranges(*parts[f], tails / n_high)[0] for f in others], axis=0)
    # p (two-sided): twice the smallest one-sided level at which a bound excludes zero
    reach = np.concatenate([ALPHAS[low[1:] > 0], ALPHAS[high[1:] < 0]])
    p = float(min(1.0, 2 * reach.min())) if len(reach) else 1.0
    se = float(math.sqrt(2 * parts[lead][1].mean()))
    df = float(min(parts[lead][2].sum(), grid.cells * (grid.r - 1) if grid.r >= 2
                   else parts[lead][2][0]))
    return Estimate(est, float(low[0]), float(high[0]), se=se, df=df, p=p, **base)


def simulated_power(design: str, k: np.ndarray, effect: float, sigma: float, cells: int,
                    df_per: float, reps: int = 4000, seed: int = 0) -> np.ndarray:
    """Simulated power at k replicates per cell of 'best cell IN OUT' (one inside cell `effect`
    above the rest) and 'spread L1 L2 ...' (the first factor's levels spread over `effect`)."""
    rng = np.random.default_rng(seed)
    words = design.split()
    out = []
    for kk in np.atleast_1d(k):
        if words[0] == "best":
            n_in, n_out = int(words[2]), int(words[3])
            m = rng.normal(0, sigma / math.sqrt(kk), (reps, n_in + n_out))
            m[:, 0] += effect
            diff = m[:, :n_in, None] - m[:, None, n_in:]
            t, se = t_crit(max(1.0, df_per * (kk - 1)), TAIL / n_in), sigma * math.sqrt(2 / kk)
            out.append(float(((diff - t * se).min(axis=2).max(axis=1) > 0).mean()))
            continue
        levels = [int(x) for x in words[1:]]
        n_low = 2 * math.comb(levels[0], 2) + len(levels) - 1
        tops = []  # the lead's lower bound, then each other factor's upper bound
        for f, L in enumerate(levels):
            n_level = cells * kk / L
            t = t_crit(max(1.0, 2 * (cells / L) * (kk - 1)), TAIL / n_low)  # a pair's df
            truth = np.linspace(0, effect, L) if f == 0 else np.zeros(L)
            m = truth + rng.normal(0, sigma / math.sqrt(n_level), (reps, L))
            top = np.abs(m[:, :, None] - m[:, None, :]).max(axis=(1, 2))  # its widest pair
            se = sigma * math.sqrt(2 / n_level)
            tops.append(top - t * se if f == 0 else top + t * se)
        low = np.maximum(0, tops[0]) - np.max(tops[1:], axis=0)
        out.append(float((low > 0).mean()))
    return np.asarray(out)
