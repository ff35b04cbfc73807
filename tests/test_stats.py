"""Tests of barometre.stats: intervals, effective base, tests of association."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps

from barometre.stats import (
    FISHER,
    KRUSKAL,
    NOT_APPLICABLE,
    PEARSON,
    PERMUTATION,
    AssociationTest,
    association_test,
    effective_base,
    grouped_median,
    grouped_moments,
    kruskal_test,
    t_interval,
    wilson_interval,
)

# Agresti, Categorical Data Analysis: party identification by gender.
AGRESTI = np.array([[762, 327, 468], [484, 239, 477]])


# ----------------------------------------------------------------- Wilson


def test_wilson_known_answer_3_of_10():
    low, high = wilson_interval(3, 10)
    assert float(low) == pytest.approx(0.1078, abs=5e-5)
    assert float(high) == pytest.approx(0.6032, abs=5e-5)


def test_wilson_is_vectorised_and_nan_for_empty_base():
    low, high = wilson_interval(np.array([3, 0, 10, 0]), np.array([10, 10, 10, 0]))
    assert low.shape == (4,)
    assert low[1] == 0.0 and high[2] == 1.0
    assert np.isnan(low[3]) and np.isnan(high[3])
    assert np.all(low[:3] <= np.array([0.3, 0.0, 1.0]))
    assert np.all(high[:3] >= np.array([0.3, 0.0, 1.0]))


def test_wilson_accepts_non_integer_counts_and_checks_confidence():
    low, high = wilson_interval(2.5, 7.5, confidence=0.9)
    assert 0 < low < 1 / 3 < high < 1
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=95)


def test_wilson_wider_at_higher_confidence():
    l90, h90 = wilson_interval(30, 100, 0.90)
    l99, h99 = wilson_interval(30, 100, 0.99)
    assert l99 < l90 and h99 > h90


# ----------------------------------------------------------------- effective base


def test_effective_base_kish():
    assert effective_base(np.ones(17)) == pytest.approx(17)
    assert effective_base([1, 2, 3]) == pytest.approx(36 / 14)
    assert effective_base([]) == 0.0
    assert effective_base([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        effective_base([1.0, -1.0])
    with pytest.raises(ValueError):
        effective_base([1.0, np.nan])


# ----------------------------------------------------------------- t interval, grouped moments


def test_t_interval_known_answer():
    # 1..5: mean 3, sd 1.5811, t(0.975, 4) = 2.7764 -> half-width 1.9632
    low, high = t_interval(3.0, np.std([1, 2, 3, 4, 5], ddof=1), 5)
    assert float(low) == pytest.approx(3 - 1.96324, abs=1e-4)
    assert float(high) == pytest.approx(3 + 1.96324, abs=1e-4)
    low, high = t_interval([2.0], [0.0], [1])
    assert np.isnan(low[0]) and np.isnan(high[0])


def test_grouped_moments_and_median_match_pandas():
    rng = np.random.default_rng(0)
    values = rng.integers(1, 8, size=60).astype(float)
    groups = rng.integers(0, 4, size=60)
    mom = grouped_moments(values, groups, 5)
    med = grouped_median(values, groups, 5)
    ref = pd.Series(values).groupby(groups).agg(["count", "mean", "std", "median"])
    np.testing.assert_allclose(mom.n[:4], ref["count"])
    np.testing.assert_allclose(mom.mean[:4], ref["mean"])
    np.testing.assert_allclose(mom.sd[:4], ref["std"])
    np.testing.assert_allclose(med[:4], ref["median"])
    assert np.isnan(mom.mean[4]) and np.isnan(med[4]) and mom.n[4] == 0


def test_weighted_moments_with_equal_weights_equal_unweighted():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    groups = np.zeros(4, dtype=np.int64)
    a = grouped_moments(values, groups, 1)
    b = grouped_moments(values, groups, 1, np.full(4, 2.5))
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.sd, b.sd)
    np.testing.assert_allclose(b.effective_n, [4.0])


def test_weighted_median():
    values = np.array([1.0, 2.0, 3.0])
    groups = np.zeros(3, dtype=np.int64)
    assert grouped_median(values, groups, 1, np.array([1.0, 1.0, 5.0]))[0] == 3.0
    assert grouped_median(values, groups, 1, np.array([5.0, 1.0, 1.0]))[0] == 1.0


# ----------------------------------------------------------------- association tests


def test_pearson_known_answer_agresti():
    res = association_test(AGRESTI)
    assert res.test == PEARSON
    assert res.statistic == pytest.approx(30.07, abs=0.005)
    assert res.df == 2
    assert res.pvalue == pytest.approx(2.95e-07, rel=0.01)
    assert res.n == AGRESTI.sum()
    assert res.min_expected == pytest.approx(246.35, abs=0.01)
    # same as scipy, without continuity correction
    ref = sps.chi2_contingency(AGRESTI, correction=False)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)


def test_association_test_is_frozen():
    res = association_test(AGRESTI)
    assert isinstance(res, AssociationTest)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.pvalue = 0.5  # type: ignore[misc]


def test_fisher_for_small_2x2_tea_tasting():
    res = association_test([[3, 1], [1, 3]])
    assert res.test == FISHER
    assert res.pvalue == pytest.approx(0.4857, abs=1e-4)  # Fisher's lady tasting tea
    assert res.df is None
    assert res.n == 8
    assert res.min_expected == 2.0


def test_permutation_for_small_larger_table_is_seeded_and_close_to_scipy():
    table = np.array([[3, 1, 0], [1, 2, 4]])
    a = association_test(table, permutations=9999, seed=1)
    b = association_test(table, permutations=9999, seed=1)
    assert a == b
    assert a.test == PERMUTATION
    assert a.df is None
    ref = sps.chi2_contingency(table, correction=False, method=sps.PermutationMethod(n_resamples=9999, rng=2))
    assert a.statistic == pytest.approx(ref.statistic)
    assert a.pvalue == pytest.approx(ref.pvalue, abs=0.02)
    assert 1 / 10000 <= a.pvalue <= 1


def test_permutation_pvalue_of_perfect_association_is_small():
    table = np.array([[6, 0, 0], [0, 6, 0], [0, 0, 6]])
    res = association_test(table, permutations=999, seed=3)
    assert res.test == PERMUTATION
    assert res.pvalue == pytest.approx(1 / 1000)


def test_empty_rows_and_columns_are_dropped_first():
    padded = np.zeros((3, 4))
    padded[:2, 1:] = AGRESTI
    res = association_test(padded)
    assert res.test == PEARSON and res.df == 2
    assert res.statistic == pytest.approx(30.0701, abs=1e-3)


@pytest.mark.parametrize("table", [[[5, 6, 7]], [[5], [6]], [[0, 0], [0, 0]], [[4, 0], [3, 0]]])
def test_degenerate_tables_are_not_applicable(table):
    res = association_test(table)
    assert res.test == NOT_APPLICABLE
    assert np.isnan(res.statistic) and np.isnan(res.pvalue) and res.df is None


def test_min_expected_threshold_is_respected():
    table = np.array([[10, 10], [10, 10]])
    assert association_test(table, min_expected=5).test == PEARSON
    assert association_test(table, min_expected=11).test == FISHER


def test_bad_tables_raise():
    with pytest.raises(ValueError):
        association_test([1, 2, 3])
    with pytest.raises(ValueError):
        association_test([[1, -2], [3, 4]])


def test_kruskal():
    values = np.array([1.0, 2, 3, 10, 11, 12])
    groups = np.array([0, 0, 0, 1, 1, 1])
    res = kruskal_test(values, groups, 2, min_group=3)
    ref = sps.kruskal(values[:3], values[3:])
    assert res.test == KRUSKAL and res.df == 1
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert kruskal_test(values, np.zeros(6, dtype=np.int64), 2).test == NOT_APPLICABLE


def test_kruskal_leaves_out_groups_too_small_for_a_rank_test():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 8), rng.normal(1, 1, 6), [9.0]])
    groups = np.repeat([0, 1, 2], [8, 6, 1])
    res = kruskal_test(values, groups, 3)  # default: groups of at least 5 values
    assert res.df == 1 and res.n == 14
    assert res.pvalue == pytest.approx(sps.kruskal(values[:8], values[8:14]).pvalue)
    assert kruskal_test(values[:10], groups[:10], 3).test == NOT_APPLICABLE  # 8 and 2: one group left



def test_trend_test_is_the_mean_score_statistic():
    import statsmodels.formula.api as smf

    from barometre.stats import TREND, TREND_PERMUTATION, trend_test

    table = np.array([[10, 5, 3], [8, 8, 6], [4, 9, 12]])  # answers 1..3 (rows) × 3 groups
    y = np.repeat(np.tile([1.0, 2, 3], 3), table.T.ravel())
    g = np.repeat(np.repeat([0, 1, 2], 3), table.T.ravel())
    r2 = smf.ols("y ~ C(g)", data=pd.DataFrame({"y": y, "g": g})).fit().rsquared
    res = trend_test(table)
    assert res.test == TREND and res.df == 2 and res.n == 65
    assert res.statistic == pytest.approx((65 - 1) * r2)  # (n − 1) η²
    assert res.pvalue == pytest.approx(sps.chi2.sf((65 - 1) * r2, 2))
    # two groups: the linear-by-linear (Cochran–Armitage) statistic (n − 1) r²
    two = table[:, :2]
    y2 = np.repeat(np.tile([1.0, 2, 3], 2), two.T.ravel())
    g2 = np.repeat(np.repeat([0, 1], 3), two.T.ravel())
    assert trend_test(two).statistic == pytest.approx((y2.size - 1) * sps.pearsonr(y2, g2).statistic ** 2)
    # sparse: a seeded permutation p-value
    sparse = np.array([[3, 1, 0], [2, 2, 1], [0, 2, 4]])
    a, b = trend_test(sparse, permutations=999, seed=1), trend_test(sparse, permutations=999, seed=1)
    assert a.test == TREND_PERMUTATION and a == b and 0 < a.pvalue < 0.1
