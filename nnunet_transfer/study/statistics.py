"""Paired comparisons against the from-scratch baseline, as a reviewer expects them.

For one target, metric and training size, each initialisation is compared with scratch on the
same test cases (each case's metric averaged over folds first):

- the mean paired difference with a percentile bootstrap 95 % confidence interval
  (``scipy.stats.bootstrap``, 10 000 resamples of the cases, a fixed seed so a report is
  reproduced exactly);
- the two-sided paired Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``), **only** where it
  can reach 0.05: with fewer than :data:`MIN_CASES_FOR_P` pairs the exact test's smallest
  two-sided p-value is 2 / 2^n >= 0.0625, so no p-value is given and the reason ("n < 6") is;
- Holm's step-down correction over the initialisations compared on that target, metric and size
  (a family of m tests: the k-th smallest p is multiplied by m - k + 1, then made monotone).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, wilcoxon

MIN_CASES_FOR_P = 6
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedComparison:
    """One initialisation against scratch: ``n`` paired cases, mean difference (init - scratch) and
    its bootstrap interval, the Wilcoxon p-value (None with its reason in ``no_p``)."""

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p: float | None
    no_p: str | None = None


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
