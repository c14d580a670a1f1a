"""Paired comparisons against the from-scratch baseline, as a reviewer expects them.

For one target, metric and training size, each initialisation is compared with scratch on the
same test cases and, with several training seeds, the same seeds: the pairs are (seed, case), each
value averaged over folds first (documentation/explanation/statistics.md has the reasoning).

One seed (training randomness not measured):

- the mean paired difference with a percentile bootstrap 95 % confidence interval over the cases
  (``scipy.stats.bootstrap``, 10 000 resamples, a fixed seed so a report is reproduced exactly);
- the two-sided paired Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``), **only** where it
  can reach 0.05: with fewer than :data:`MIN_CASES_FOR_P` pairs the exact test's smallest
  two-sided p-value is 2 / 2^n >= 0.0625, so no p-value is given and the reason ("n < 6") is.

Several seeds (training randomness measured):

- the mean paired difference over seeds and cases with a two-level percentile bootstrap interval:
  each of the 10 000 resamples draws the seeds with replacement and, independently, the cases
  with replacement (the same cases for every seed: the design is crossed, each test case is
  predicted by every seed's model), and takes the mean difference over the drawn pairs;
- a p-value only with at least :data:`MIN_SEEDS_FOR_P` seeds and :data:`MIN_CASES_FOR_P` cases:
  a t-test of the mean difference whose variance comes from the crossed (seed x case) random-
  effects decomposition of the differences, ``(MS_seed + MS_case - MS_residual) / (S C)``
  (components estimated below zero are set to zero), with Satterthwaite's degrees of freedom.
  With few seeds its degrees of freedom are few, as they should be: the seeds, not the cases,
  are then the scarce replication.

Holm's step-down correction is applied over the initialisations compared on that target, metric
and size (a family of m tests: the k-th smallest p is multiplied by m - k + 1, then made monotone).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, t as student_t, wilcoxon

MIN_CASES_FOR_P = 6
MIN_SEEDS_FOR_P = 3
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedComparison:
    """One initialisation against scratch: ``n`` paired cases (per seed), mean difference (init -
    scratch) and its bootstrap interval, the p-value (Wilcoxon with one seed, the crossed t-test with
    several; None with its reason in ``no_p``), the number of ``seeds``."""

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p: float | None
    no_p: str | None = None
    seeds: int = 1
    df: float | None = None  # degrees of freedom of the crossed t-test (several seeds)


def bootstrap_interval(differences: Sequence[float], seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap ``CONFIDENCE`` interval of the mean of ``differences`` (NaN for fewer than two)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan
    if np.all(d == d[0]):  # every resample has the same mean
        return float(d[0]), float(d[0])
    result = bootstrap((d,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                       method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_comparison(values: Sequence[float], scratch: Sequence[float]) -> PairedComparison:
    """Compare paired per-case values of an initialisation with those of scratch (same order)."""
    a, b = np.asarray(values, dtype=float), np.asarray(scratch, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    n = len(d)
    if n == 0:
        return PairedComparison(0, math.nan, math.nan, math.nan, None, "no paired cases")
    low, high = bootstrap_interval(d)
    if n < MIN_CASES_FOR_P:
        return PairedComparison(n, float(d.mean()), low, high, None, f"n < {MIN_CASES_FOR_P}")
    if np.all(d == 0):
        return PairedComparison(n, 0.0, low, high, 1.0)
    return PairedComparison(n, float(d.mean()), low, high, float(wilcoxon(a[keep], b[keep]).pvalue))


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` indices was drawn in each row of ``draws`` (rows, n)."""
    offsets = draws + n * np.arange(len(draws))[:, None]
    return np.bincount(offsets.ravel(), minlength=len(draws) * n).reshape(len(draws), n)


def two_level_interval(differences: np.ndarray, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap ``CONFIDENCE`` interval of the mean of a (seeds, cases) array of
    differences, resampling seeds and cases independently (crossed design)."""
    d = np.asarray(differences, dtype=float)
    n_seeds, n_cases = d.shape
    if np.all(d == d.flat[0]):
        return float(d.flat[0]), float(d.flat[0])
    rng = np.random.default_rng(seed)
    # a resample's mean over its drawn pairs = (seed counts) @ d @ (case counts) / (S C)
    seed_counts = _counts(rng.integers(0, n_seeds, (BOOTSTRAP_RESAMPLES, n_seeds)), n_seeds)
    case_counts = _counts(rng.integers(0, n_cases, (BOOTSTRAP_RESAMPLES, n_cases)), n_cases)
    means = np.einsum("bs,sc,bc->b", seed_counts, d, case_counts) / (n_seeds * n_cases)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def crossed_t_test(differences: np.ndarray) -> tuple[float, float]:
    """Two-sided p-value and Satterthwaite degrees of freedom of the mean of a (seeds, cases) array
    of differences under crossed random seed and case effects (see the module docstring)."""
    d = np.asarray(differences, dtype=float)
    n_seeds, n_cases = d.shape
    grand = d.mean()
    by_seed, by_case = d.mean(axis=1), d.mean(axis=0)
    ms_seed = n_cases * np.sum((by_seed - grand) ** 2) / (n_seeds - 1)
    ms_case = n_seeds * np.sum((by_case - grand) ** 2) / (n_cases - 1)
    residual = d - by_seed[:, None] - by_case[None, :] + grand
    df_residual = (n_seeds - 1) * (n_cases - 1)
    ms_residual = np.sum(residual ** 2) / df_residual
    # Var(mean) = var_seed / S + var_case / C + var_residual / (S C), each component from the mean
    # squares; a component estimated below zero is zero, and its mean square drops out of the sum
    keep_seed, keep_case = int(ms_seed > ms_residual), int(ms_case > ms_residual)
    parts = [(ms_seed, n_seeds - 1)] * keep_seed + [(ms_case, n_cases - 1)] * keep_case  # (coefficient x MS, df)
    parts.append(((1 - keep_seed - keep_case) * ms_residual, df_residual))
    variance = sum(v for v, _ in parts) / (n_seeds * n_cases)
    if variance <= 0:
        return (1.0 if grand == 0 else 0.0), math.inf
    df = (variance * n_seeds * n_cases) ** 2 / sum(v ** 2 / df for v, df in parts if v != 0)
    t = grand / math.sqrt(variance)
    return float(2 * student_t.sf(abs(t), df)), float(df)


def seeded_comparison(values: np.ndarray, scratch: np.ndarray) -> PairedComparison:
    """Compare an initialisation with scratch on (seeds, cases) arrays of per-case values (same
    seeds and cases in the same order). One seed: :func:`paired_comparison`. Cases missing (NaN)
    for any seed in either arm are left out."""
    a, b = np.atleast_2d(np.asarray(values, dtype=float)), np.atleast_2d(np.asarray(scratch, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    if a.shape[0] == 1:
        return paired_comparison(a[0], b[0])
    keep = ~(np.isnan(a) | np.isnan(b)).any(axis=0)
    d = (a - b)[:, keep]
    n_seeds, n = d.shape
    if n == 0:
        return PairedComparison(0, math.nan, math.nan, math.nan, None, "no paired cases", n_seeds)
    low, high = two_level_interval(d) if n > 1 else bootstrap_interval(d[:, 0])
    mean = float(d.mean())
    if n_seeds < MIN_SEEDS_FOR_P or n < MIN_CASES_FOR_P:
        why = f"seeds < {MIN_SEEDS_FOR_P}" if n_seeds < MIN_SEEDS_FOR_P else f"n < {MIN_CASES_FOR_P}"
        return PairedComparison(n, mean, low, high, None, why, n_seeds)
    p, df = crossed_t_test(d)
    return PairedComparison(n, mean, low, high, p, None, n_seeds, df)


def holm(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values of one family; None stays None and is not counted in the family."""
    tested = sorted((p, name) for name, p in pvalues.items() if p is not None)
    m = len(tested)
    adjusted: dict[str, float | None] = {name: None for name in pvalues}
    running = 0.0
    for k, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (m - k) * p))
        adjusted[name] = running
    return adjusted
