"""Intervals from real replication: seeds (a mean, a paired or a two-sample difference) and
balanced factorial grids (contrasts of marginal means, the intersection-union test, the best
cell of a region, a residual bootstrap). Every method returns an Estimate: the value, its 95%
interval, the standard error and degrees of freedom it rests on, a two-sided p-value for "no
effect" where the method has one, and (for designs whose runs the study reports one of) a 95%
prediction interval for one new run. tests/test_calibration.py checks each method's coverage
and false-verdict rate by simulation on designs of the study's shape."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

LEVEL = 0.95
TAIL = (1 - LEVEL) / 2  # each bound of a 95% interval misses on its side at most 2.5% of the time


def _clean(x) -> float | None:
    """A JSON-ready number: None for a missing or non-finite one; rounded to 1e-6, below the
    resolution of any accuracy here, so float32 round-off never reads as an effect."""
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6) + 0.0


@functools.lru_cache(maxsize=4096)
def t_crit(df: float, tail: float = TAIL) -> float:
    """The t quantile a bound at one-sided level `tail` needs with df degrees of freedom."""
    return float(stats.t.ppf(1 - tail, df))


@dataclass(frozen=True)
class Estimate:
    """A quantity measured by a run. value and its 95% interval [low, high] (None: no interval:
    fewer than two replicates or no scatter); n: the runs behind it; replication: what was
    replicated, in words; se, df: what the interval rests on; p: two-sided p-value for no
    effect (None where the method gives none); pi_low, pi_high: a 95% prediction interval for
    one new run of the design the study reports once (None where not made); units: replicates
    per cell (seeds), which a bigger run would raise; cells: the design's cells (its degrees
    of freedom at `k` replicates are cells * (k - 1)); tail: the one-sided level of each bound
    (smaller than 2.5% where a bound is adjusted for several comparisons)."""

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

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def cleaned(self) -> Estimate:
        """Every number rounded for JSON (see _clean)."""
        return replace(self, value=_clean(self.value), low=_clean(self.low),
                       high=_clean(self.high), pi_low=_clean(self.pi_low),
                       pi_high=_clean(self.pi_high),
                       p=None if self.p is None else float(min(max(self.p, 0.0), 1.0)))


def _seed_words(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _no_scatter(v: np.ndarray) -> bool:
    return len(v) < 2 or float(np.ptp(v)) < 1e-6


def mean_of_runs(values, *, test_images: int | None = None, study_images: int | None = None,
                 method: str | None = None) -> Estimate:
    """The mean of independent runs (one per seed) of an accuracy, its t interval and a
    prediction interval for one new run. With test_images (this run's test set size), the
    test set's own sampling error p(1-p)/N joins both: the seeds share one test subset, so
    their scatter does not hold it. study_images: the study's test set, whose run the
    prediction is compared with (its sampling error joins the prediction interval only)."""
    v = np.asarray(values, float)
    n, mean = len(v), float(v.mean())
    method = method or f"t interval over {_seed_words(n)}"
    if _no_scatter(v):
        return Estimate(mean, None, None, n, _seed_words(n), method, units=n)
    s2 = float(v.var(ddof=1))
    p = min(max(mean, 0.0), 1.0)
    test_var = p * (1 - p) / test_images if test_images else 0.0
    study_var = p * (1 - p) / study_images if study_images else 0.0
    # the seeds' part is estimated (t with n - 1 df), the binomial parts are known (normal):
    # each bound's half-width adds the two in quadrature
    t, z = t_crit(n - 1), t_crit(math.inf)
    half = math.hypot(t * math.sqrt(s2 / n), z * math.sqrt(test_var))
    pi = math.hypot(t * math.sqrt(s2 * (1 + 1 / n)), z * math.sqrt(test_var + study_var))
    se = math.sqrt(s2 / n + test_var)
    return Estimate(mean, mean - half, mean + half, n, _seed_words(n), method, se, n - 1,
                    None, mean - pi, mean + pi, units=n)


def paired(treated, control, method: str | None = None) -> Estimate:
    """Mean paired difference treated - control over seeds (both arms of a seed share its
    initial weights and data order), with a t interval, its two-sided p-value and a
    prediction interval for one new seed's difference."""
    d = np.asarray(treated, float) - np.asarray(control, float)
    n, mean = len(d), float(d.mean())
    method = method or f"paired t over {_seed_words(n)}"
    if _no_scatter(d):
        return Estimate(mean, None, None, n, _seed_words(n), method, units=n)
    s = float(d.std(ddof=1))
    se, t = s / math.sqrt(n), t_crit(n - 1)
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    pi = t * s * math.sqrt(1 + 1 / n)
    return Estimate(mean, mean - t * se, mean + t * se, n, _seed_words(n), method, se, n - 1, p,
                    mean - pi, mean + pi, units=n)


def welch(a, b, method: str | None = None) -> Estimate:
    """mean(a) - mean(b) for two independent samples of runs, Welch's t interval; n counts
    both samples and the replication says "3 vs 3 seeds"."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    est = float(a.mean() - b.mean())
    words = f"{len(a)} vs {len(b)} seeds"
    method = method or f"Welch t, {words}"
    units = min(len(a), len(b))
    if min(len(a), len(b)) < 2 or (_no_scatter(a) and _no_scatter(b)):
        return Estimate(est, None, None, len(a) + len(b), words, method, units=units, cells=2)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = t_crit(df)
    p = float(2 * stats.t.sf(abs(est) / se, df))
    return Estimate(est, est - t * se, est + t * se, len(a) + len(b), words, method, se, df, p,
                    units=units, cells=2)


# --- balanced factorial grids --------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A balanced full-factorial grid of runs: y has shape (L1, ..., Lk, r), r replicates
    (seeds) of every cell. With r >= 2 the noise is the pure error between a cell's replicates
    (every interaction is part of the model); with r = 1 it is the additive model's residual,
    which holds the interactions too (said in `replication`)."""

    factors: tuple[str, ...]
    levels: tuple[tuple, ...]
    y: np.ndarray

    @classmethod
    def from_table(cls, table, factors: list[str], metric: str, replicate: str = "seed") -> Grid:
        """From a trials table (one row per trial); every cell needs the same replicates."""
        levels = tuple(tuple(sorted(table[f].unique())) for f in factors)
        reps = np.sort(table[replicate].unique()) if replicate in table else np.zeros(1)
        y = np.full([len(v) for v in levels] + [len(reps)], np.nan)
        where = [np.searchsorted(np.asarray(lv), table[f].to_numpy()) for lv, f in
                 zip(levels, factors)]
        rep = (np.searchsorted(reps, table[replicate].to_numpy()) if replicate in table
               else np.zeros(len(table), int))
        y[(*where, rep)] = table[metric].to_numpy(float)
        if np.isnan(y).any() or len(table) != y.size:
            raise ValueError(f"grid over {factors}: not every cell has every {replicate} "
                             f"({int(np.isnan(y).sum())} missing); the design must be balanced")
        return cls(tuple(factors), levels, y)

    @property
    def r(self) -> int:
        return self.y.shape[-1]

    @property
    def cells(self) -> int:
        return int(np.prod(self.y.shape[:-1]))

    @property
    def cell_means(self) -> np.ndarray:
        return self.y.mean(axis=-1)

    def marginal(self, factor: str) -> np.ndarray:
        """Mean of every trial at each level of factor, (L,)."""
        axis = self.factors.index(factor)
        other = tuple(i for i in range(self.y.ndim) if i != axis)
        return self.y.mean(axis=other)

    def additive_fit(self) -> np.ndarray:
        """The main-effects model's fitted cell values (balanced: grand + each marginal's
        deviation), shape of the cells."""
        m = self.cell_means
        fitted = np.full(m.shape, m.mean())
        for axis in range(m.ndim):
            other = tuple(i for i in range(m.ndim) if i != axis)
            dev = m.mean(axis=other) - m.mean()
            shape = [1] * m.ndim
            shape[axis] = -1
            fitted = fitted + dev.reshape(shape)
        return fitted

    def noise(self) -> tuple[float, int, str]:
        """(sigma^2 of one trial, degrees of freedom, words): pure error with replicates,
        else the additive model's residual."""
        if self.r >= 2:
            resid = self.y - self.cell_means[..., None]
            df = self.cells * (self.r - 1)
            return float((resid**2).sum() / df), df, f"pure-error df {df}"
        params = 1 + sum(len(lv) - 1 for lv in self.levels)
        df = self.cells - params
        if df < 1:
            return math.nan, 0, "no residual df"
        resid = self.y[..., 0] - self.additive_fit()
        return float((resid**2).sum() / df), df, (
            f"additive-model residual df {df}: interactions count as noise")

    def replication(self) -> str:
        seeds = _seed_words(self.r)
        return f"{self.cells} configurations × {seeds}, {self.noise()[2]}"

    def fitted_and_residuals(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Per trial: the model's fitted value and residual (rescaled for the parameters
        fitted, so their spread estimates one trial's noise), and the residual df: what a
        residual bootstrap resamples."""
        sigma2, df, _ = self.noise()
        if self.r >= 2:
            fitted = np.broadcast_to(self.cell_means[..., None], self.y.shape)
        else:
            fitted = self.additive_fit()[..., None]
        resid = (self.y - fitted).ravel()
        if df >= 1:
            resid = resid * math.sqrt(resid.size / df)
        return np.asarray(fitted), resid, df

    def level_weights(self, factor: str, per_level) -> np.ndarray:
        """Cell weights of a contrast of factor's marginal means with weights per_level (L,)."""
        axis = self.factors.index(factor)
        shape = [1] * (self.y.ndim - 1)
        shape[axis] = -1
        others = self.cells // len(self.levels[axis])
        w = np.asarray(per_level, float).reshape(shape) / others
        return np.broadcast_to(w, self.y.shape[:-1]).copy()

    def contrast(self, weights: np.ndarray, method: str) -> Estimate:
        """sum(w * cell mean) with a t interval from the noise: se = sigma * sqrt(sum(w^2) / r);
        and a prediction interval for one new grid of one seed per cell, se * sqrt(r + 1)."""
        w = np.asarray(weights, float)
        est = float((w * self.cell_means).sum())
        sigma2, df, _ = self.noise()
        base = dict(n=self.y.size, replication=self.replication(), method=method,
                    units=self.r, cells=self.cells)
        if df < 1 or not sigma2 > 1e-12:
            return Estimate(est, None, None, **base)
        se = math.sqrt(sigma2 * float((w**2).sum()) / self.r)
        t = t_crit(df)
        p = float(2 * stats.t.sf(abs(est) / se, df))
        pi = t * se * math.sqrt(self.r + 1)
        return Estimate(est, est - t * se, est + t * se, se=se, df=df, p=p, pi_low=est - pi,
                        pi_high=est + pi, **base)

    def trend(self, factor: str, values=None, method: str | None = None) -> Estimate:
        """Linear trend over factor's levels (at `values`, default the levels themselves):
        the least-squares slope of the marginal means times the range, i.e. the fitted change
        from the lowest to the highest level, in the metric's units."""
        x = np.asarray(values if values is not None else self.levels[self.factors.index(factor)],
                       float)
        dev = x - x.mean()
        per_level = dev / (dev**2).sum() * (x.max() - x.min())
        return self.contrast(self.level_weights(factor, per_level),
                             method or f"linear trend contrast over {factor}, t interval")


def intersection_union(parts: list[Estimate], method: str) -> Estimate:
    """Both (all) of parts above zero: the intersection-union test, which needs no adjustment.
    The estimate is the smallest part; the interval [min of the lows, min of the highs] covers
    the smallest true value at least 95% of the time; p: the level at which it excludes 0."""
    if not all(p.has_interval for p in parts):
        worst = min(parts, key=lambda p: p.value)
        return replace(worst, low=None, high=None, p=None, pi_low=None, pi_high=None,
                       method=method)
    worst = min(parts, key=lambda p: p.value)
    low, high = min(p.low for p in parts), min(p.high for p in parts)
    one_sided = [stats.t.sf(p.value / p.se, p.df) for p in parts]  # P(>= value | 0), per part
    p_up = max(one_sided)  # every part must clear zero
    p_down = min(1 - s for s in one_sided)  # one part below zero is enough
    return replace(worst, low=low, high=high, p=min(1.0, 2 * min(p_up, p_down)), pi_low=None,
                   pi_high=None, method=method)


def best_cell(grid: Grid, region, method: str) -> Estimate:
    """The best cell mean inside region (a set of cell index tuples) minus the best one
    outside, with simultaneous bounds: the lower one from every inside-outside difference at
    one-sided level 2.5% / |region| (Bonferroni over the region's cells), the upper one at
    2.5% / |outside|. Needs replicates (pure error): with one seed per cell an interaction is
    indistinguishable from noise, so there is no interval."""
    means = grid.cell_means
    cells = list(itertools.product(*[range(len(lv)) for lv in grid.levels]))
    inside = [c for c in cells if c in region]
    outside = [c for c in cells if c not in region]
    est = float(max(means[c] for c in inside) - max(means[c] for c in outside))
    base = dict(n=grid.y.size, replication=grid.replication(), method=method, units=grid.r,
                cells=grid.cells, tail=TAIL / len(inside))
    sigma2, df, _ = grid.noise()
    if grid.r < 2 or not sigma2 > 1e-12:
        return Estimate(est, None, None, **base)
    se = math.sqrt(2 * sigma2 / grid.r)
    diff = np.array([[means[c] - means[d] for d in outside] for c in inside])  # (in, out)
    t_low = t_crit(df, TAIL / len(inside))
    t_high = t_crit(df, TAIL / len(outside))
    low = float((diff - t_low * se).min(axis=1).max())
    high = float((diff + t_high * se).min(axis=1).max())
    up = stats.t.sf(diff / se, df)  # one-sided p of each difference being above zero
    p_up = len(inside) * up.max(axis=1).min()
    p_down = len(outside) * (1 - up).min(axis=1).max()
    return Estimate(est, low, high, se=se, df=df, p=float(min(1.0, 2 * min(p_up, p_down))),
                    **base)


def residual_bootstrap(grid: Grid, statistic, method: str, n_boot: int = 2000,
                       seed: int = 0) -> Estimate:
    """A non-linear statistic of a grid's trials (e.g. a spread of marginal means), with a
    basic (reflected) bootstrap interval: the model's fitted values plus residuals drawn with
    replacement, n_boot times; the interval's half-widths are widened by t(df)/z for the
    residual degrees of freedom. statistic(y) takes trial arrays shaped like grid.y with any
    leading batch axes."""
    est = float(statistic(grid.y))
    base = dict(n=grid.y.size, replication=grid.replication(), method=method, units=grid.r,
                cells=grid.cells)
    fitted, resid, df = grid.fitted_and_residuals()
    if df < 1 or float(np.ptp(resid)) < 1e-9:
        return Estimate(est, None, None, **base)
    rng = np.random.default_rng(seed)
    draws = rng.choice(resid, size=(n_boot, resid.size), replace=True).reshape(
        (n_boot, *grid.y.shape))
    boot = np.asarray(statistic(fitted + draws), float)
    q_low, q_high = np.quantile(boot, [TAIL, 1 - TAIL])
    widen = t_crit(df) / float(stats.norm.ppf(1 - TAIL))
    low = est - (q_high - est) * widen  # basic interval: the bootstrap's bias reflected
    high = est + (est - q_low) * widen
    se = float(boot.std(ddof=1))
    # p: the level at which the interval would just reach zero (its inversion)
    d = boot - est
    tail = (d >= est / widen).mean() if est > 0 else (d <= est / widen).mean()
    p = float(min(1.0, 2 * tail))
    return Estimate(est, low, high, se=se, df=df, p=p, **base)
