"""Statistical building blocks of the tabulation phase.

Everything here is pure and vectorised: confidence intervals for proportions
(Wilson) and for means (Student *t*), Kish's effective base for weighted data,
grouped means and medians computed with :func:`numpy.bincount`, and a test of
association for a contingency table that names the test it used.

Conventions
-----------
* :func:`wilson_interval` returns **proportions** in ``[0, 1]``; the tabulation
  multiplies by 100 to publish percentages.
* A base (``nobs``) of zero gives ``NaN`` bounds, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as _sps
from statsmodels.stats.proportion import proportion_confint

ArrayLike = npt.ArrayLike

PEARSON = "khi2 de Pearson"
FISHER = "test exact de Fisher"
PERMUTATION = "test de permutation (khi2)"
KRUSKAL = "test de Kruskal-Wallis"
TREND = "test de tendance (scores moyens)"
TREND_PERMUTATION = "test de tendance (scores moyens, permutation)"
NOT_APPLICABLE = "non applicable"

#: Default seed of the permutation tests (end of the 2017 fieldwork).
DEFAULT_SEED = 20171006

#: Above this many rows, the trend test's permutation p-value is drawn from random tables with fixed
#: margins instead of permuted rows (:func:`trend_test`); the association test draws random tables at
#: any size (:class:`scipy.stats.MonteCarloMethod`).
PERMUTATION_DIRECT_ABOVE = 1_000
#: Smallest group a rank test (Kruskal-Wallis) compares: smaller groups are left out of it.
MIN_RANK_GROUP = 5


def wilson_interval(
    count: ArrayLike, nobs: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, vectorised.

    Parameters
    ----------
    count, nobs
        Successes and trials (broadcast together). Need not be integers: for
        weighted data pass ``share * effective_base`` and ``effective_base``.
    confidence
        Confidence level, e.g. ``0.95``.

    Returns
    -------
    tuple of numpy.ndarray
        Lower and upper bounds as **proportions** in ``[0, 1]``; ``NaN`` where
        ``nobs`` is zero, missing or negative.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    count_a, nobs_a = np.broadcast_arrays(
        np.asarray(count, dtype=float), np.asarray(nobs, dtype=float)
    )
    low = np.full(count_a.shape, np.nan)
    high = np.full(count_a.shape, np.nan)
    ok = np.isfinite(count_a) & np.isfinite(nobs_a) & (nobs_a > 0)
    if ok.any():
        lo, hi = proportion_confint(
            np.clip(count_a[ok], 0.0, nobs_a[ok]), nobs_a[ok], alpha=1 - confidence, method="wilson"
        )
        share = np.clip(count_a[ok] / nobs_a[ok], 0.0, 1.0)
        # the Wilson interval always contains the share; enforce it against rounding
        low[ok] = np.clip(np.minimum(lo, share), 0.0, 1.0)
        high[ok] = np.clip(np.maximum(hi, share), 0.0, 1.0)
    return low, high


def effective_base(weights: ArrayLike) -> float:
    """Kish's effective sample size ``(Σw)² / Σw²``.

    Parameters
    ----------
    weights
        Non-negative weights (``NaN`` not allowed).

    Returns
    -------
    float
        The effective base; ``0.0`` for no (or only zero) weights. Equals the
        number of rows when every weight is equal.
    """
    w = np.asarray(weights, dtype=float).ravel()
    if np.isnan(w).any() or (w < 0).any():
        raise ValueError("weights must be non-negative and not missing")
    sq = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / sq if sq > 0 else 0.0


def grouped_effective_base(groups: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Kish effective base of each group (``groups`` are codes ``0..n_groups-1``)."""
    s1 = np.bincount(groups, weights=weights, minlength=n_groups)
    s2 = np.bincount(groups, weights=weights * weights, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s2 > 0, s1 * s1 / np.where(s2 > 0, s2, 1.0), 0.0)


def t_interval(
    mean: ArrayLike, sd: ArrayLike, n: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Student *t* interval ``mean ± t(n-1) · sd / √n``, vectorised.

    ``n`` may be an effective base (weighted data). ``NaN`` where ``n < 2``.
    """
    mean_a, sd_a, n_a = np.broadcast_arrays(
        np.asarray(mean, dtype=float), np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    )
    ok = np.isfinite(mean_a) & np.isfinite(sd_a) & (n_a >= 2)
    half = np.full(mean_a.shape, np.nan)
    if ok.any():
        q = _sps.t.ppf(0.5 + confidence / 2, n_a[ok] - 1)
        half[ok] = q * sd_a[ok] / np.sqrt(n_a[ok])
    return mean_a - half, mean_a + half


@dataclass(frozen=True)
class GroupedMoments:
    """Per-group count, weighted sum, effective base, mean and standard deviation."""

    n: np.ndarray
    weight_sum: np.ndarray
    effective_n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray


def grouped_moments(
    values: np.ndarray, groups: np.ndarray, n_groups: int, weights: np.ndarray | None = None
) -> GroupedMoments:
    """Mean and standard deviation of ``values`` by group, with ``np.bincount``.

    Parameters
    ----------
    values
        Finite values (drop missing ones beforehand).
    groups
        Group code ``0..n_groups-1`` of each value.
    n_groups
        Number of groups.
    weights
        Optional weights; the variance is the weighted variance rescaled by
        ``n_eff / (n_eff - 1)`` (reduces to the usual ``ddof=1`` variance).

    Returns
    -------
    GroupedMoments
        ``NaN`` mean for empty groups, ``NaN`` sd where the effective base < 2.
    """
    if weights is None:
        # Weights of 1: Σw = Σw² = n, so the effective base is n (n·n/n is exact below 2**26), and
        # multiplying by w = 1.0 changes no value: the same sums as the weighted formulas, in fewer passes.
        n = np.bincount(groups, minlength=n_groups).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.bincount(groups, weights=values, minlength=n_groups) / n
            centred = values - mean[groups]
            var = np.bincount(groups, weights=centred * centred, minlength=n_groups) / n
            var = np.where(n >= 2, var * n / (n - 1), np.nan)
        mean = np.where(n > 0, mean, np.nan)
        return GroupedMoments(n=n, weight_sum=n.copy(), effective_n=n.copy(), mean=mean, sd=np.sqrt(var))
    w = np.asarray(weights, dtype=float)
    n = np.bincount(groups, minlength=n_groups).astype(float)
    sw = np.bincount(groups, weights=w, minlength=n_groups)
    n_eff = grouped_effective_base(groups, w, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(groups, weights=w * values, minlength=n_groups) / sw
        centred = values - mean[groups]
        var = np.bincount(groups, weights=w * centred * centred, minlength=n_groups) / sw
        var = np.where(n_eff >= 2, var * n_eff / (n_eff - 1), np.nan)
    mean = np.where(sw > 0, mean, np.nan)
    return GroupedMoments(n=n, weight_sum=sw, effective_n=n_eff, mean=mean, sd=np.sqrt(var))


def grouped_median(
    values: np.ndarray, groups: np.ndarray, n_groups: int, weights: np.ndarray | None = None,
    *, value_order: np.ndarray | None = None,
) -> np.ndarray:
    """Median of ``values`` by group (weighted: lower weighted median), vectorised.

    Unweighted, the usual median (mean of the two middle values for an even
    count). Weighted, the smallest value whose cumulative weight reaches half
    the group's total. ``NaN`` for empty groups. ``value_order`` (optional): a
    stable argsort of ``values``, when it is already known (:func:`sorted_by_group`).
    """
    out = np.full(n_groups, np.nan)
    if values.size == 0:
        return out
    order = sorted_by_group(values, groups, n_groups, value_order)
    v, g = values[order], groups[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = counts > 0
    if weights is None:
        lo = starts + (counts - 1) // 2
        hi = starts + counts // 2
        out[present] = (v[lo[present]] + v[hi[present]]) / 2
        return out
    w = np.asarray(weights, dtype=float)[order]
    cw = np.cumsum(w)
    before = np.concatenate(([0.0], cw))[starts]  # weight before each group
    total = np.bincount(g, weights=w, minlength=n_groups)
    within = cw - before[g]
    reached = within >= total[g] / 2 - 1e-12 * np.maximum(total[g], 1)
    # first position of each group where half the weight is reached
    idx = np.flatnonzero(reached)
    first = np.full(n_groups, -1)
    gi = g[idx]
    # idx is sorted, so the first occurrence per group is the minimum
    keep = np.concatenate(([True], gi[1:] != gi[:-1])) if gi.size else np.array([], dtype=bool)
    first[gi[keep]] = idx[keep]
    has = present & (first >= 0)
    out[has] = v[first[has]]
    return out


@dataclass(frozen=True)
class AssociationTest:
    """Result of a test of association, naming the test actually used.

    Attributes
    ----------
    test
        ``"khi2 de Pearson"``, ``"test exact de Fisher"``,
        ``"test de permutation (khi2)"``, ``"test de Kruskal-Wallis"`` or
        ``"non applicable"``.
    statistic
        χ² (Pearson and permutation), the sample odds ratio (Fisher) or H
        (Kruskal-Wallis); ``NaN`` when not applicable.
    df
        Degrees of freedom of the reference χ² distribution; ``None`` for the
        exact and permutation tests and when not applicable.
    pvalue
        Two-sided p-value (``NaN`` when not applicable).
    n
        Total count of the table tested (after dropping empty rows/columns).
    min_expected
        Smallest expected count under independence (``NaN`` when not applicable).
    """

    test: str
    statistic: float
    df: int | None
    pvalue: float
    n: int
    min_expected: float

    @classmethod
    def not_applicable(cls, n: int = 0) -> AssociationTest:
        """A « non applicable » result (degenerate table)."""
        return cls(NOT_APPLICABLE, float("nan"), None, float("nan"), int(n), float("nan"))


def association_test(
    table: ArrayLike,
    *,
    min_expected: float = 5,
    permutations: int = 9999,
    seed: int | None = DEFAULT_SEED,
) -> AssociationTest:
    """Test of independence of a two-way count table, choosing the test.

    Empty rows and columns are dropped first. Then:

    * fewer than two rows or columns left → ``"non applicable"``;
    * every expected count ≥ ``min_expected`` → Pearson's χ² without
      continuity correction (``scipy.stats.chi2_contingency(correction=False)``);
    * otherwise, a 2×2 table → Fisher's exact test (two-sided);
    * otherwise → a Monte-Carlo permutation test of the χ² statistic with both
      margins fixed: ``scipy.stats.chi2_contingency(method=MonteCarloMethod(...))``,
      ``permutations`` random tables from ``numpy.random.default_rng(seed)``,
      p = (1 + #{χ²* ≥ χ²}) / (1 + permutations); constant cost and memory
      whatever the size of the survey.

    Parameters
    ----------
    table
        Counts, rows = answers, columns = groups. Non-integer counts (e.g.
        rescaled weighted counts) are rounded for the exact and permutation tests.
    min_expected
        Threshold on the expected counts for the χ² approximation.
    permutations
        Number of random permutations.
    seed
        Seed of the permutation test (reproducible p-values).

    Returns
    -------
    AssociationTest
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2:
        raise ValueError(f"association_test needs a two-way table, got shape {t.shape}")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError("association_test: counts must be non-negative and not missing")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    total = float(t.sum())
    if t.shape[0] < 2 or t.shape[1] < 2:
        return AssociationTest.not_applicable(round(total))
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / total
    min_exp = float(expected.min())
    if min_exp >= min_expected:
        res = _sps.chi2_contingency(t, correction=False)
        statistic, pvalue = float(res.statistic), float(res.pvalue)
        return AssociationTest(PEARSON, statistic, int(res.dof), pvalue, round(total), min_exp)
    ti = np.rint(t)
    if t.shape == (2, 2):
        res = _sps.fisher_exact(ti)
        return AssociationTest(FISHER, float(res.statistic), None, float(res.pvalue), int(ti.sum()), min_exp)
    ti = ti[ti.sum(axis=1) > 0][:, ti.sum(axis=0) > 0]
    if ti.shape[0] < 2 or ti.shape[1] < 2:
        return AssociationTest.not_applicable(int(ti.sum()))
    method = _sps.MonteCarloMethod(n_resamples=permutations, rng=np.random.default_rng(seed))
    res = _sps.chi2_contingency(ti, correction=False, method=method)
    return AssociationTest(PERMUTATION, float(res.statistic), None, float(res.pvalue), int(ti.sum()), min_exp)


def sorted_by_group(
    values: np.ndarray, groups: np.ndarray, n_groups: int, value_order: np.ndarray | None = None
) -> np.ndarray:
    """``np.lexsort((values, groups))``: rows by group, then value, then position.

    With ``value_order`` (a stable argsort of ``values``, e.g. one sort shared by several
    groupings of the same values), only the group codes are sorted, stably: the same order.
    """
    if value_order is None:
        return np.lexsort((values, groups))
    by_group = groups[value_order]
    if n_groups < 2**15:  # numpy sorts 16-bit integers by radix, in linear time
        by_group = by_group.astype(np.int16)
    return value_order[np.argsort(by_group, kind="stable")]


def kruskal_test(
    values: np.ndarray, groups: np.ndarray, n_groups: int, min_group: int = MIN_RANK_GROUP,
    *, value_order: np.ndarray | None = None,
) -> AssociationTest:
    """Kruskal-Wallis test of a numeric variable across groups (unweighted).

    Only groups of at least ``min_group`` values are compared (the χ² approximation
    of H needs them; a group of one value says nothing about its distribution);
    fewer than two such groups, or no variation at all, gives ``"non applicable"``.

    H is computed as :func:`scipy.stats.kruskal` computes it (mid-ranks, tie
    correction, χ² p-value), from one sort of the values (``value_order``: a stable
    argsort of ``values``, computed here when not given) instead of ranking them
    again for each grouping: hand-written so that one sort serves every dimension of a
    question. Rank sums are multiples of ½ (exact in any order), the tie term is summed
    over the same array as scipy's, so the result is the same to the last bit
    (``tests/test_scale_equivalence.py``).
    """
    sizes = np.bincount(groups, minlength=n_groups)
    compared = np.flatnonzero(sizes >= max(min_group, 1))
    n = int(sizes[compared].sum())
    if compared.size < 2:
        return AssociationTest.not_applicable(n)
    order = np.argsort(values, kind="stable") if value_order is None else value_order
    kept = (sizes >= max(min_group, 1))[groups[order]]
    v, g = values[order][kept], groups[order][kept]
    starts = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1])))
    if starts.size < 2:
        return AssociationTest.not_applicable(n)
    counts = np.diff(starts, append=v.size)
    run_ranks = (starts + 1).astype(float) + (counts.astype(float) - 1) / 2  # mid-ranks, as scipy's _rankdata
    rank_sums = np.bincount(g, weights=np.repeat(run_ranks, counts), minlength=n_groups)
    ties_t = np.zeros(v.size)
    ties_t[starts] = counts
    ties = 1 - np.sum(ties_t**3 - ties_t, axis=-1) / (n**3 - n)
    ssbn = sum(rank_sums[i] ** 2 / int(sizes[i]) for i in compared)
    h = 12.0 / (n * (n + 1)) * ssbn - 3 * (n + 1)
    df = np.asarray(compared.size - 1, dtype=h.dtype)
    h /= ties
    return AssociationTest(KRUSKAL, float(h), compared.size - 1, float(special.chdtrc(df, h)), n, float("nan"))


def _mean_score_statistic(n_j: np.ndarray, s_j: np.ndarray, ybar, total_ss, size: int) -> np.ndarray:
    """Mean-score statistic from the group counts ``n_j``, score sums ``s_j``, mean score and total sum of squares."""
    between = np.sum(np.where(n_j > 0, (s_j - n_j * ybar) ** 2 / np.where(n_j > 0, n_j, 1), 0.0), axis=-1)
    return np.squeeze((size - 1) * between / total_ss)


def trend_test(
    table: ArrayLike,
    scores: ArrayLike | None = None,
    *,
    min_expected: float = 5,
    permutations: int = 9999,
    seed: int | None = DEFAULT_SEED,
) -> AssociationTest:
    """Test for an ordered answer across groups: the mean-score statistic (Cochran–Mantel–Haenszel).

    Rows are ordered answers with ``scores`` (default 1, 2, …), columns are groups
    (nominal). ``Q = (n − 1) · Σ_j n_j (m̄_j − m̄)² / Σ_i n_i (a_i − ā)²``, χ² with
    (groups − 1) degrees of freedom; with two groups it is the linear-by-linear
    (Cochran–Armitage) statistic. When an expected count is below ``min_expected``
    the p-value is a permutation one (``scipy.stats.permutation_test``, groups
    permuted, ``permutations`` draws from ``default_rng(seed)``); above
    :data:`PERMUTATION_DIRECT_ABOVE` rows, random tables with the same margins are
    drawn instead (``scipy.stats.random_table``, the same null distribution, a
    cost that does not grow with the number of rows).

    Empty rows and columns are dropped first; fewer than two of either, or no
    variation of the scores, gives « non applicable ».
    """
    t = np.asarray(table, dtype=float)
    a = np.arange(1, t.shape[0] + 1, dtype=float) if scores is None else np.asarray(scores, dtype=float)
    keep_r, keep_c = t.sum(axis=1) > 0, t.sum(axis=0) > 0
    t, a = t[keep_r][:, keep_c], a[keep_r]
    total = float(t.sum())
    if t.shape[0] < 2 or t.shape[1] < 2:
        return AssociationTest.not_applicable(round(total))
    ti = np.rint(t).astype(np.int64)
    size = int(ti.sum())
    present = a[ti.sum(axis=1) > 0]
    if size == 0 or np.ptp(present) == 0:
        return AssociationTest.not_applicable(size)
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / total
    min_exp = float(expected.min())
    df = t.shape[1] - 1
    # The statistic from the table, without one row per respondent: the group counts and score sums
    # are whole numbers (exact in any order) when the scores are, and the squared deviations are
    # summed over the same array as per respondent, so Q is the same to the last bit.
    whole = bool(np.all(a == np.floor(a)) and np.abs(a).max() * size < 2**52)
    if whole:
        n_j = ti.sum(axis=0)
        ybar = np.float64(float((a * ti.sum(axis=1)).sum()) / size)
        total_ss = np.sum(np.repeat(np.tile((a - ybar) ** 2, t.shape[1]), ti.T.ravel()))
        q = float(_mean_score_statistic(n_j[None, :], (a[:, None] * ti).sum(axis=0)[None, :], ybar, total_ss, size))
    if not whole or (min_exp < min_expected and size <= PERMUTATION_DIRECT_ABOVE):
        y = np.repeat(np.tile(a, t.shape[1]), ti.T.ravel())          # answer score of each row
        g = np.repeat(np.repeat(np.arange(t.shape[1]), t.shape[0]), ti.T.ravel())  # its group
        ybar = y.mean()
        total_ss = np.sum((y - ybar) ** 2)

        def statistic(groups: np.ndarray, axis: int = -1) -> np.ndarray:
            onehot = np.atleast_2d(groups)[..., None] == np.arange(t.shape[1])
            return _mean_score_statistic(onehot.sum(axis=-2), (onehot * y[:, None]).sum(axis=-2), ybar, total_ss,
                                         y.size)

        if not whole:
            q = float(statistic(g))
    if min_exp >= min_expected:
        return AssociationTest(TREND, q, df, float(_sps.chi2.sf(q, df)), size, min_exp)
    if size > PERMUTATION_DIRECT_ABOVE:
        # Permuting the groups of the rows is drawing tables with both margins fixed (the same null
        # distribution): scipy's random_table (Patefield) does it at a cost that does not grow with n.
        # Only the score sums vary; the p-value is permutation_test's: (1 + #{Q* ≥ Q}) / (1 + draws).
        rng = np.random.default_rng(seed)
        tables = _sps.random_table(ti.sum(axis=1), ti.sum(axis=0), seed=rng).rvs(permutations)
        null = _mean_score_statistic(ti.sum(axis=0).astype(float), np.einsum("i,kij->kj", a, tables), ybar,
                                     total_ss, size)
        hits = np.count_nonzero(null >= q - abs(q) * np.finfo(float).eps * 100)  # permutation_test's tolerance
        return AssociationTest(TREND_PERMUTATION, q, None, (hits + 1) / (permutations + 1), size, min_exp)
    res = _sps.permutation_test((g,), statistic, permutation_type="pairings", n_resamples=permutations,
                                alternative="greater", vectorized=True, batch=100, rng=np.random.default_rng(seed))
    return AssociationTest(TREND_PERMUTATION, q, None, float(res.pvalue), int(y.size), min_exp)
