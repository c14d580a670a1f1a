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


def test_crossed_t_test_by_hand_on_an_additive_design():
    from scipy.stats import t as student_t

    from nnunet_transfer.study.statistics import crossed_t_test
    seed_effect, case_effect = np.array([-0.02, 0.0, 0.02]), np.array([0.05, -0.05, 0.1, -0.1, 0.0, 0.03])
    d = 0.04 + seed_effect[:, None] + case_effect[None, :]  # no residual: MS_residual = 0
    s, c = d.shape
    ms_seed = c * np.var(seed_effect, ddof=1)
    ms_case = s * np.var(case_effect, ddof=1)
    variance = (ms_seed + ms_case) / (s * c)
    df = (ms_seed + ms_case) ** 2 / (ms_seed ** 2 / (s - 1) + ms_case ** 2 / (c - 1))
    expected = 2 * student_t.sf((0.04 + case_effect.mean()) / np.sqrt(variance), df)
    p, got_df = crossed_t_test(d)
    assert got_df == pytest.approx(df) and p == pytest.approx(expected)


def test_crossed_t_test_keeps_its_level_where_a_test_over_cases_does_not():
    """Null differences with a training (seed) effect: the crossed test rejects about 5 %, a
    Wilcoxon over the seed-averaged cases (training randomness ignored) far more often."""
    from scipy.stats import wilcoxon

    from nnunet_transfer.study.statistics import crossed_t_test
    rng = np.random.default_rng(0)
    crossed = cases_only = 0
    for _ in range(400):
        d = rng.normal(0, 0.03, (3, 1)) + rng.normal(0, 0.05, (1, 12)) + rng.normal(0, 0.01, (3, 12))
        crossed += crossed_t_test(d)[0] < 0.05
        cases_only += wilcoxon(d.mean(axis=0)).pvalue < 0.05
    assert crossed / 400 < 0.09 and cases_only / 400 > 0.12


def test_seeded_comparison_needs_three_seeds_for_p_and_drops_incomplete_cases():
    from nnunet_transfer.study.statistics import seeded_comparison, two_level_interval
    a = np.array([[0.6, 0.7, 0.8, 0.6, 0.7, 0.8, math.nan], [0.62, 0.71, 0.8, 0.6, 0.72, 0.8, 0.5]])
    b = np.full_like(a, 0.55)
    two = seeded_comparison(a, b)
    assert two.p is None and two.no_p == "seeds < 3" and two.n == 6 and two.seeds == 2
    assert two.mean_difference == pytest.approx(float(np.mean(a[:, :6] - 0.55)))
    assert (two.ci_low, two.ci_high) == pytest.approx(two_level_interval(a[:, :6] - 0.55))
    one = seeded_comparison(a[1:], b[1:])  # one seed: the Wilcoxon path over 7 cases
    assert one.seeds == 1 and one.n == 7 and one.p is not None
    three = seeded_comparison(np.vstack([a[:, :6], a[1:, :6]]), np.full((3, 6), 0.55))
    assert three.p is not None and three.df is not None and three.seeds == 3
