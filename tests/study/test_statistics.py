"""Paired comparisons against scratch: bootstrap interval, Wilcoxon only where it can reach 0.05, Holm."""
import math

import numpy as np
import pytest

from nnunet_transfer.study.statistics import MIN_CASES_FOR_P, bootstrap_interval, holm, paired_comparison


def test_holm_order_and_monotonicity_by_hand():
    # sorted: 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06 to stay monotone)
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "untested": None})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "untested": None})


def test_holm_caps_at_one_and_counts_only_tested():
    assert holm({"a": 0.6, "b": 0.5}) == pytest.approx({"a": 1.0, "b": 1.0})
    assert holm({"a": 0.02, "b": None}) == pytest.approx({"a": 0.02, "b": None})  # a family of one
    assert holm({}) == {}


def test_no_p_below_six_pairs_and_why():
    five = paired_comparison([0.9] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert five.p is None and five.no_p == "n < 6" and five.n == 5
    assert five.mean_difference == pytest.approx(0.6)
    six = paired_comparison([0.9] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    # exact two-sided signed-rank test, all 6 differences positive: 2 / 2^6
    assert six.no_p is None and six.p == pytest.approx(2 / 2 ** MIN_CASES_FOR_P)


def test_bootstrap_interval_contains_the_paired_mean_and_is_reproducible():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 0.9, 12), rng.uniform(0.4, 0.8, 12)
    result = paired_comparison(a, b)
    assert result.mean_difference == pytest.approx(float(np.mean(a - b)))
    assert result.ci_low < result.mean_difference < result.ci_high
    # the percentile interval lies within the range of the differences and is the same on every call
    assert (a - b).min() <= result.ci_low and result.ci_high <= (a - b).max()
    assert paired_comparison(a, b) == result


def test_constant_differences_and_nan_cases():
    assert bootstrap_interval([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))
    assert all(math.isnan(v) for v in bootstrap_interval([0.2]))
    same = paired_comparison([0.5] * 7, [0.5] * 7)
    assert same.p == 1.0 and same.mean_difference == 0.0
    # a case missing in either arm is dropped from the pairs
    partial = paired_comparison([0.9, math.nan, 0.8], [0.1, 0.2, math.nan])
    assert partial.n == 1 and partial.mean_difference == pytest.approx(0.8)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_comparison([1.0], [1.0, 2.0])
