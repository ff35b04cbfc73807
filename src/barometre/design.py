"""Survey design: the unit of each question, clusters and weights, design-based variance.

Three jobs, in the order the tabulation needs them:

* **units** — an attribute of the collectivity (codebook ``unit: collectivity``:
  type, population band…) is tabulated once per collectivity, not once per
  respondent. :func:`collectivity_units` keeps one respondent per collectivity by
  the configured rule (the first complete response) and lists the conflicts
  between respondents of one collectivity;
* **design** — :class:`Design` names, per level, the cluster column (tools within
  respondents, respondents within collectivities), an optional stratum and weight
  column (config ``design:``);
* **variance** — Taylor-linearised variance of a ratio (a share, a mean) under a
  one-stage, with-replacement cluster design, the design effect, the interval on
  the design effective base, and Pearson's χ² with the Rao–Scott correction.
  Known answers: ``tests/reference/survey_design.R`` (R package ``survey``).

Hand-written (reason): statsmodels has no design-based estimator for clustered,
weighted shares, and ``samplics`` is not in the pinned environment; the formulas
are those of R's ``survey`` (``svymean``, ``svychisq``), checked against it to 1e-6.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as _sps

from barometre.codebook import NSP_LABEL, Codebook, Question
from barometre.stats import wilson_interval

ArrayLike = npt.ArrayLike

COLLECTIVITY = "collectivity"
#: Rules for a collectivity with several respondents (config ``design.collectivity.rule``).
COLLECTIVITY_RULES = ("first_complete",)
CONFLICT_COLUMNS = ["collectivity_id", "question_id", "variable", "respondents", "values", "kept_value",
                    "kept_respondent"]

RAO_SCOTT = "khi2 de Pearson corrigé (Rao-Scott)"


# --------------------------------------------------------------------------- units


def collectivity_questions(codebook: Codebook, level: str = "respondent") -> list[Question]:
    """Questions of ``level`` that describe the collectivity (codebook ``unit: collectivity``)."""
    return [q for q in codebook.at_level(level) if q.tabulation_unit == COLLECTIVITY]


@dataclass(frozen=True)
class CollectivityUnits:
    """One row per collectivity, and what the rule decided.

    Attributes
    ----------
    frame
        The kept rows (one per collectivity; rows without a collectivity identifier kept as they are).
    conflicts
        One row per collectivity × question whose respondents gave different answers
        (columns :data:`CONFLICT_COLUMNS`).
    n_rows, n_collectivities
        Rows before, collectivities after.
    """

    frame: pd.DataFrame
    conflicts: pd.DataFrame
    n_rows: int
    n_collectivities: int

    def summary(self) -> str:
        """One French sentence for the log and the technical note."""
        from barometre import fr

        n_conf = self.conflicts["collectivity_id"].nunique() if len(self.conflicts) else 0
        return (f"{fr.format_number(self.n_rows)} répondants, {fr.format_number(self.n_collectivities)} collectivités "
                f"distinctes ; réponses divergentes entre répondants d'une même collectivité : "
                f"{fr.format_number(n_conf)} collectivité{'s' if n_conf > 1 else ''}")


def collectivity_units(
    frame: pd.DataFrame,
    questions: Sequence[Question],
    *,
    id_column: str = "collectivity_id",
    order_by: str = "respondent_id",
    rule: str = "first_complete",
) -> CollectivityUnits:
    """Keep one respondent per collectivity for the collectivity attributes.

    Rule ``first_complete``: among the respondents of a collectivity, the first
    (by ``order_by``) of those who answered the most collectivity attributes
    (« ne se prononce pas » not counted as an answer) — the first complete
    response when one exists.

    Parameters
    ----------
    frame
        Processed respondents (``id_column``, ``order_by`` and the questions' columns).
    questions
        The collectivity attributes (their columns decide completeness and conflicts).

    Returns
    -------
    CollectivityUnits
    """
    if rule not in COLLECTIVITY_RULES:
        raise ValueError(f"design.collectivity.rule: unknown rule {rule!r} (allowed: {', '.join(COLLECTIVITY_RULES)})")
    for col in (id_column, order_by):
        if col not in frame.columns:
            raise KeyError(f"collectivity_units: column {col!r} missing from the respondents frame")
    columns = [c for q in questions for c in q.columns() if c in frame.columns and not c.endswith("_other")]
    # a complete response answers every attribute; « ne se prononce pas » is no answer about the collectivity
    answered = ((frame[columns].notna() & frame[columns].astype(object).ne(NSP_LABEL)).sum(axis=1) if columns
                else pd.Series(0, index=frame.index))
    ids = frame[id_column]
    # rows without a collectivity identifier cannot be matched: each stays its own unit
    key = ids.astype(object).where(ids.notna(), "\0" + frame[order_by].astype(str))
    ordered = frame.assign(_key=key, _answered=-answered).sort_values(["_key", "_answered", order_by], kind="stable")
    kept = ordered.drop_duplicates("_key", keep="first")
    rows = []
    multi = ordered[ordered["_key"].duplicated(keep=False) & ordered[id_column].notna()]
    if len(multi):
        kept_by_key = kept.set_index("_key")
        for q in questions:
            for col in (c for c in q.columns() if c in frame.columns and not c.endswith("_other")):
                values = multi.groupby("_key", sort=True)[col].agg(lambda s: sorted({str(v) for v in s.dropna()}))
                for k, vals in values.items():
                    if len(vals) > 1:
                        members = multi.loc[multi["_key"] == k, order_by].astype(str)
                        kv = kept_by_key.loc[k, col]
                        rows.append((str(k), q.id, col, " ; ".join(members), " | ".join(vals),
                                     "" if pd.isna(kv) else str(kv), str(kept_by_key.loc[k, order_by])))
    conflicts = pd.DataFrame(rows, columns=CONFLICT_COLUMNS).sort_values(
        ["collectivity_id", "question_id", "variable"], kind="stable").reset_index(drop=True)
    out = kept.drop(columns=["_key", "_answered"]).sort_values(order_by, kind="stable").reset_index(drop=True)
    return CollectivityUnits(out, conflicts, len(frame), len(out))


# --------------------------------------------------------------------------- design


@dataclass(frozen=True)
class Design:
    """Sampling design of one level: cluster, stratum and weight columns (each optional).

    ``cluster=None`` and ``weight=None``: every row is its own cluster with weight 1,
    the simple random sample of the unweighted tabulation.
    """

    cluster: str | None = None
    stratum: str | None = None
    weight: str | None = None

    @property
    def is_simple(self) -> bool:
        """No cluster, stratum or weight: the tabulation keeps its exact and permutation tests."""
        return self.cluster is None and self.stratum is None and self.weight is None


def design_of(config: Mapping, level: str) -> Design:
    """The :class:`Design` of ``level`` from config ``design.levels.<level>`` (simple when absent).

    The weight defaults to ``tabulation.weight``.
    """
    levels = (config.get("design") or {}).get("levels") or {}
    spec = levels.get(level) or {}
    weight = spec.get("weight", (config.get("tabulation") or {}).get("weight"))
    return Design(cluster=spec.get("cluster"), stratum=spec.get("stratum"), weight=weight)


@dataclass(frozen=True)
class DesignArrays:
    """Codes of the design for a set of rows: cluster and stratum codes, weights."""

    cluster: np.ndarray
    stratum: np.ndarray
    weight: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, design: Design, *, check: bool = True) -> DesignArrays:
        """Cluster and stratum codes (each row its own cluster without one), weights (1 without).

        A missing cluster is an error; with ``check=False`` it is coded −1 (the caller checks the rows it uses).
        """
        n = len(frame)
        cluster = (pd.factorize(frame[design.cluster], sort=True)[0] if design.cluster else np.arange(n))
        stratum = (pd.factorize(frame[design.stratum], sort=True)[0] if design.stratum else np.zeros(n, dtype=np.int64))
        weight = frame[design.weight].to_numpy(dtype=float) if design.weight else np.ones(n)
        if check and (cluster < 0).any():
            raise ValueError(f"design: cluster column {design.cluster!r} has missing values")
        return cls(np.asarray(cluster, dtype=np.int64), np.asarray(stratum, dtype=np.int64), weight)

    def subset(self, mask: np.ndarray) -> DesignArrays:
        return DesignArrays(self.cluster[mask], self.stratum[mask], self.weight[mask])

    @property
    def degrees_of_freedom(self) -> int:
        """Clusters minus strata (R ``degf``)."""
        return _distinct(self.psu_pairs())[1] - _distinct(self.stratum)[1]

    def psu_pairs(self) -> np.ndarray:
        """One integer per (stratum, cluster) pair, in the pairs' lexicographic order (a cluster −1 apart)."""
        return self.stratum * (self.cluster.max(initial=0) + 2) + (self.cluster + 1)


def _distinct(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """``np.unique(codes, return_inverse=True)``'s inverse and the number of distinct codes.

    Non-negative codes of a moderate range are renumbered through a presence table
    (no sort); the result is the same.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and codes.min() >= 0 and codes.max() <= 4 * codes.size + 1024:
        present = np.bincount(codes) > 0
        return (np.cumsum(present) - 1)[codes], int(present.sum())
    uniq, inverse = np.unique(codes, return_inverse=True)
    return inverse.reshape(-1), int(uniq.size)


def _cluster_totals_variance(scores: np.ndarray, arrays: DesignArrays) -> np.ndarray:
    """Variance of totals of linearised ``scores`` (rows × k): with-replacement PSUs within strata.

    ``Σ_h n_h/(n_h−1) Σ_c (z_hc − z̄_h)(z_hc − z̄_h)ᵀ``, as R ``survey``'s default
    (``svyrecvar``, one stage, no finite population correction). Returns k × k.
    """
    scores = scores.reshape(len(scores), -1)
    inv, n_psu = _distinct(arrays.psu_pairs())
    k = scores.shape[1]
    # PSU totals added row by row, as np.add.at would (same sums, same order)
    flat = (inv[:, None] * k + np.arange(k)[None, :]).ravel()
    totals = np.bincount(flat, weights=scores.ravel(), minlength=n_psu * k).reshape(n_psu, k)
    psu_stratum = np.zeros(n_psu, dtype=np.int64)
    psu_stratum[inv] = arrays.stratum
    var = np.zeros((k, k))
    for h in np.unique(psu_stratum):
        t = totals[psu_stratum == h]
        n_h = t.shape[0]
        if n_h < 2:
            continue  # a stratum with one PSU adds nothing (R's survey.lonely.psu = "fail" would stop)
        c = t - t.mean(axis=0)
        var += n_h / (n_h - 1) * c.T @ c
    return var


@dataclass(frozen=True)
class DesignShare:
    """A share estimated under the design.

    Attributes
    ----------
    share, se
        Estimate (proportion in [0, 1]) and its Taylor-linearised standard error.
    n
        Rows in the base (unweighted).
    deff
        Design effect: the design variance over the variance of a simple random sample
        of ``n`` rows drawn with replacement (``p(1−p)/(n−1)``, R ``svymean(deff = "replace")``).
    effective_base
        ``p(1−p)/se²`` (``n`` when the share is 0 or 1, where both are 0).
    """

    share: float
    se: float
    n: int
    deff: float
    effective_base: float


def design_share(y: ArrayLike, domain: ArrayLike, arrays: DesignArrays) -> DesignShare:
    """Share of ``y`` (0/1) within ``domain`` (boolean), design-based (R ``svymean`` on a subset).

    The whole design is kept (rows outside the domain score 0), as R's
    ``subset(design, …)`` does, so clusters without a domain row still count.
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(domain, dtype=bool)
    w = arrays.weight * d
    total = float(w.sum())
    n = int(d.sum())
    if total <= 0:
        return DesignShare(float("nan"), float("nan"), n, float("nan"), float("nan"))
    p = float((w * np.where(d, y, 0.0)).sum() / total)
    z = w * (np.where(d, y, 0.0) - p) / total
    var = float(_cluster_totals_variance(z, arrays)[0, 0])
    se = float(np.sqrt(max(var, 0.0)))
    srs = p * (1 - p) / (n - 1) if n > 1 else float("nan")  # R: svyvar(x) / n, with svyvar's n/(n−1)
    deff = var / srs if srs and srs > 0 else float("nan")
    eff = p * (1 - p) / var if var > 0 else float(n)
    return DesignShare(p, se, n, deff, eff)


def design_interval(share: DesignShare, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval on the design effective base: stays in [0, 1] and behaves at 0 and 100 %.

    The effective base is capped at the base (a design never adds information).
    """
    eff = min(share.effective_base, float(share.n)) if share.n else float("nan")
    low, high = wilson_interval(share.share * eff, eff, confidence)
    return float(low), float(high)


@dataclass(frozen=True)
class RaoScottTest:
    """Pearson's χ² with the Rao–Scott second-order correction (R ``svychisq(statistic = "F")``).

    Attributes
    ----------
    test
        :data:`RAO_SCOTT`.
    pearson
        Pearson's X² of the weighted table rescaled to the number of rows.
    statistic
        ``F = X² / tr(Δ)``, compared to F(ndf, ddf).
    ndf, ddf
        ``d₀ = tr(Δ)² / tr(Δ²)`` and ``d₀ · ν`` (ν: clusters minus strata).
    pvalue
        Upper tail of F(ndf, ddf).
    mean_deff
        ``tr(Δ) / ((r−1)(c−1))``: the mean generalised design effect.
    n
        Rows of the table.
    """

    test: str
    pearson: float
    statistic: float
    ndf: float
    ddf: float
    pvalue: float
    mean_deff: float
    n: int


def rao_scott(rows: ArrayLike, cols: ArrayLike, arrays: DesignArrays) -> RaoScottTest:
    """Rao–Scott corrected test of independence of two categorical codes (0..r−1, 0..c−1).

    Follows R ``survey::svychisq(statistic = "F")`` step by step (cell shares,
    their linearised covariance, the design-effect matrix Δ of the interaction
    contrasts). Rows with a negative code are left out of the design beforehand.
    """
    r_codes = np.asarray(rows, dtype=np.int64)
    c_codes = np.asarray(cols, dtype=np.int64)
    ok = (r_codes >= 0) & (c_codes >= 0)
    r_codes, c_codes, arrays = r_codes[ok], c_codes[ok], arrays.subset(ok)
    r_codes, c_codes = _distinct(r_codes)[0], _distinct(c_codes)[0]
    nr, nc = int(r_codes.max(initial=-1)) + 1, int(c_codes.max(initial=-1)) + 1
    n = int(r_codes.size)
    nan = float("nan")
    if nr < 2 or nc < 2:
        return RaoScottTest(RAO_SCOTT, nan, nan, nan, nan, nan, nan, n)
    w = arrays.weight
    cell = r_codes + nr * c_codes  # R's interaction(rows, cols): rows vary fastest
    k = nr * nc
    total = w.sum()
    mean = np.bincount(cell, weights=w, minlength=k) / total  # the row-by-row sums of the weighted indicators
    centred = np.repeat(-mean[None, :], n, axis=0)  # indicators − mean: −mean, and 1 − mean in each row's cell
    centred[np.arange(n), cell] = 1.0 - mean[cell]
    scores = w[:, None] * centred / total
    v = _cluster_totals_variance(scores, arrays)
    table = (np.bincount(cell, weights=w, minlength=k) * (n / total)).reshape(nc, nr).T
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        pearson = float(np.nansum(np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)))
    # contrasts of the interaction, orthogonal to the main effects (R: qr.resid(qr(X1), X12[, -main]))
    grid_r = np.tile(np.arange(nr), nc)
    grid_c = np.repeat(np.arange(nc), nr)
    x1 = np.column_stack(
        [np.ones(k)] + [grid_r == i for i in range(1, nr)] + [grid_c == j for j in range(1, nc)]
    ).astype(float)
    inter = np.column_stack([(grid_r == i) & (grid_c == j) for j in range(1, nc) for i in range(1, nr)]).astype(float)
    q, _ = np.linalg.qr(x1)
    cmat = inter - q @ (q.T @ inter)
    inv_d = np.diag(np.where(mean == 0, 0.0, 1.0 / np.where(mean == 0, 1.0, mean)))
    denom = cmat.T @ (inv_d / n) @ cmat
    numr = cmat.T @ inv_d @ v @ inv_d @ cmat
    delta = np.linalg.solve(denom, numr)
    tr = float(np.trace(delta))
    d0 = tr**2 / float(np.trace(delta @ delta))
    nu = arrays.degrees_of_freedom
    f = pearson / tr
    p = float(_sps.f.sf(f, d0, d0 * nu))
    return RaoScottTest(RAO_SCOTT, pearson, f, d0, d0 * nu, p, tr / ((nr - 1) * (nc - 1)), n)


DESIGN_TREND = "test de tendance (scores moyens, Wald sur le plan)"


def design_trend(scores: ArrayLike, groups: ArrayLike, arrays: DesignArrays) -> RaoScottTest:
    """Design-based test for trend: Wald F test that the mean score is the same in every group.

    As R ``regTermTest(svyglm(score ~ group, design), ~group)``: group means and
    their Taylor covariance, Wald X² of the contrasts, ``F = X² / (G − 1)`` on
    (G − 1, ν + 1 − G) degrees of freedom. Rows with a missing score (NaN) or a
    negative group code are left out. Returned in a :class:`RaoScottTest`
    (``pearson`` holds the Wald X², ``mean_deff`` is NaN).
    """
    y = np.asarray(scores, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    ok = np.isfinite(y) & (g >= 0)
    y, arrays = y[ok], arrays.subset(ok)
    g = _distinct(g[ok])[0]
    k = int(g.max(initial=-1)) + 1
    nan = float("nan")
    if k < 2 or y.size == 0 or np.ptp(y) == 0:
        return RaoScottTest(DESIGN_TREND, nan, nan, nan, nan, nan, nan, int(y.size))
    w = arrays.weight
    onehot = (g[:, None] == np.arange(k)).astype(float)
    wg = np.bincount(g, weights=w, minlength=k)  # the row-by-row sums of the weighted one-hot columns
    means = np.bincount(g, weights=w * y, minlength=k) / wg
    scores_z = w[:, None] * onehot * (y[:, None] - means) / wg
    v = _cluster_totals_variance(scores_z, arrays)
    c = np.hstack([np.eye(k - 1), -np.ones((k - 1, 1))])
    diff = c @ means
    wald = float(diff @ np.linalg.solve(c @ v @ c.T, diff))
    ndf, ddf = k - 1, arrays.degrees_of_freedom + 1 - k
    f = wald / ndf
    return RaoScottTest(DESIGN_TREND, wald, f, float(ndf), float(ddf), float(_sps.f.sf(f, ndf, ddf)), nan, int(y.size))


# --------------------------------------------------------------------------- tables under the design


# For one statistic: answer keys, y (rows × k), domain (rows × k), each row's answer code for the test.
RowDefinition = tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None]


def _row_definitions(question: Question, sub: pd.DataFrame) -> dict[str, RowDefinition]:
    """For each statistic: answer keys, y (rows × k), domain (rows × k) and the rows' answer code of its test.

    The bases follow :mod:`barometre.tabulate` (module docstring), statistic by statistic.
    """
    from barometre.tabulate import _answer_codes, _float_matrix

    q = question
    n = len(sub)
    out: dict[str, RowDefinition] = {}
    if q.is_categorical:
        labels = q.labels()
        a = _answer_codes(sub[q.harmonised], labels, f"question {q.id}")
        k, n_sub = len(labels), len(q.codes)
        keys = [c.key for c in q.codes] + (["nsp"] if q.shows_nsp else [])
        y = a[:, None] == np.arange(k)[None, :]
        answered = np.repeat((a >= 0)[:, None], k, axis=1)
        out["share"] = (keys, y, answered, np.where(a < n_sub, a, -1))
        if q.type == "ordinal" and q.top2:
            idx = [keys.index(key) for key in q.top2]
            out["top2_share"] = (["top2"], np.isin(a, idx)[:, None], answered[:, :1], None)
        if q.type == "band" and q.cumulative:
            cum = (a[:, None] <= np.arange(n_sub)[None, :]) & (a[:, None] >= 0)
            out["cumulative_share"] = (keys[:n_sub], cum, answered[:, :n_sub], None)
    elif q.type == "multiple":
        m = _float_matrix(sub, q.columns())
        answered = ~np.isnan(m).all(axis=1) if m.shape[1] else np.zeros(n, dtype=bool)
        excl = [j for j, o in enumerate(q.options) if o.exclusive]
        nsp = (m[:, excl] == 1).any(axis=1) if excl else np.zeros(n, dtype=bool)
        dom = np.repeat(answered[:, None], m.shape[1], axis=1)
        if excl:
            dom &= np.where(np.isin(np.arange(m.shape[1]), excl)[None, :], True, ~nsp[:, None])
        out["share"] = ([o.key for o in q.options], (m == 1) & dom, dom, None)
    elif q.type == "ranking":
        m = _float_matrix(sub, q.columns())
        answered = ~np.isnan(m).all(axis=1) if m.shape[1] else np.zeros(n, dtype=bool)
        dom = np.repeat(answered[:, None], m.shape[1], axis=1)
        keys = [c.key for c in q.codes]
        first = np.where((m == 1).any(axis=1), (m == 1).argmax(axis=1), -1)
        out["first_share"] = (keys, m == 1, dom, np.where(answered, first, -1))
        out["top3_share"] = (keys, m <= 3, dom, None)
    return out


@dataclass(frozen=True)
class _Units:
    """Primary sampling units of a set of rows: each row's PSU code (PSUs in (stratum, cluster) order),
    each PSU's stratum code, the weights."""

    psu: np.ndarray
    psu_stratum: np.ndarray
    weight: np.ndarray
    arrays: DesignArrays

    @classmethod
    def of(cls, arrays: DesignArrays) -> _Units:
        """PSUs numbered in (stratum, cluster) order, as :func:`_cluster_totals_variance` numbers them."""
        inv, n_psu = _distinct(arrays.psu_pairs())
        psu_stratum = np.zeros(n_psu, dtype=np.int64)
        psu_stratum[inv] = arrays.stratum
        return cls(inv, psu_stratum, arrays.weight, arrays)

    def subset(self, mask: np.ndarray) -> _Units:
        """The units of the rows in ``mask``: PSUs renumbered in the same order (as recomputed on the subset)."""
        psu = self.psu[mask]
        present = np.bincount(psu, minlength=self.psu_stratum.size) > 0
        renumber = np.cumsum(present) - 1
        return _Units(renumber[psu], self.psu_stratum[present], self.weight[mask], self.arrays.subset(mask))


def _group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of ``values`` (rows × k) within each group (n_groups × k), in the order numpy's
    ``values_in_group.sum(axis=0)`` adds them: row by row for k > 1, pairwise for k = 1."""
    k = values.shape[1]
    if k == 1:  # numpy sums one column pairwise: the same sums over the full column with zeros elsewhere
        col = values[:, 0]
        return np.array([[np.where(groups == g, col, 0.0).sum()] for g in range(n_groups)]).reshape(n_groups, 1)
    flat = (groups[:, None] * k + np.arange(k)[None, :]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=n_groups * k).reshape(n_groups, k)


def _stratum_variance(totals: np.ndarray, psu_stratum: np.ndarray) -> np.ndarray:
    """``Σ_h n_h/(n_h−1) Σ_c (t_hc − t̄_h)²`` of each column of ``totals`` (PSUs × m)."""
    var = np.zeros(totals.shape[1])
    for h in np.unique(psu_stratum):
        t = totals[psu_stratum == h]
        if t.shape[0] >= 2:
            var += t.shape[0] / (t.shape[0] - 1) * ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    return var


def _grouped_variances(
    y: np.ndarray, domain: np.ndarray, groups: np.ndarray, n_groups: int, units: _Units
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares, Taylor variances and unweighted bases of k (y, domain) columns in every group (n_groups × k).

    The domain of group g is ``domain & (groups == g)``; the whole design is kept (rows
    outside the domain score 0), as :func:`design_share`. Same sums in the same order as
    one group at a time, with grouped sums (``np.bincount``) instead of a pass per group.
    """
    k = y.shape[1]
    wd = units.weight[:, None] * domain
    total = _group_sums(wd, groups, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, _group_sums(wd * y, groups, n_groups) / np.where(total > 0, total, 1.0), np.nan)
        safe = np.where(total > 0, total, 1.0)
        z = np.where((total > 0)[groups], wd * (y - p[groups]) / safe[groups], 0.0)
    n_psu = units.psu_stratum.size
    cell = units.psu * n_groups + groups
    # PSU totals of each group and column, added row by row (as np.add.at did, one group at a time)
    totals = np.empty((n_psu, n_groups, k))
    for j in range(k):
        totals[:, :, j] = np.bincount(cell, weights=z[:, j], minlength=n_psu * n_groups).reshape(n_psu, n_groups)
    if k == 1:  # one column is summed pairwise over the PSUs: one group at a time, as before
        var = np.array([_stratum_variance(np.ascontiguousarray(totals[:, g, :]), units.psu_stratum)[0]
                        for g in range(n_groups)]).reshape(n_groups, 1)
    else:
        var = _stratum_variance(totals.reshape(n_psu, n_groups * k), units.psu_stratum).reshape(n_groups, k)
    base = np.bincount((groups[:, None] * k + np.arange(k)[None, :]).ravel(), weights=domain.ravel().astype(float),
                       minlength=n_groups * k).reshape(n_groups, k)
    return p, var, base


def _group_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of a breakdown column by its values as text (sorted), ``-1`` where missing."""
    codes, uniques = pd.factorize(column.astype(object), use_na_sentinel=True)
    text = [str(v) for v in uniques]
    values = sorted(set(text))
    rank = {v: i for i, v in enumerate(values)}
    to_value = np.array([rank[t] for t in text] + [-1], dtype=np.int64)  # the last entry: a missing value
    return to_value[codes], values


def _present(codes: np.ndarray, values: list[str]) -> tuple[np.ndarray, list[str]]:
    """``codes`` renumbered over the values they use (a subset's own categories), in the same order."""
    used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
    renumber = np.append(np.cumsum(used) - 1, -1)  # index -1: a missing value stays -1
    return renumber[codes], [v for v, u in zip(values, used, strict=True) if u]


def _test_rows(q: Question, defs: dict[str, RowDefinition], key: object) -> np.ndarray | None:
    """Each row's answer code for the test of ``q`` (and of option ``key`` of a multiple-response question)."""
    if q.type == "multiple":
        keys, y, dom, _ = defs["share"]
        if key not in keys:
            return None
        col = keys.index(str(key))
        return np.where(dom[:, col], y[:, col].astype(np.int64), -1)
    if q.is_categorical and "share" in defs:
        return defs["share"][3]
    if q.type == "ranking":
        return defs["first_share"][3]
    return None


def design_tables(
    cells: pd.DataFrame,
    tests: pd.DataFrame,
    frame: pd.DataFrame,
    questions: Sequence[Question],
    design: Design,
    *,
    codebook: Codebook | None = None,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Design-based intervals and tests for the share cells of ``questions`` (a non-simple design).

    Adds ``deff`` (design effect of each share cell, ``NaN`` elsewhere) and replaces
    ``ci_low`` / ``ci_high`` of the shares by the Wilson interval on the design
    effective base (:func:`design_interval`); the tests of the single, multiple and
    ranking tables become Rao–Scott tests (:func:`rao_scott`), those of ordinal and band
    tables design-based tests for trend (:func:`design_trend`). Means,
    medians and mean ranks keep their Student intervals and rank tests.

    Every group of a breakdown is estimated in one pass (grouped sums), and the
    results are written into ``cells`` and ``tests`` at once.
    """
    from barometre.tabulate import filter_mask

    cells = cells.copy()
    if "deff" not in cells.columns:
        cells["deff"] = np.nan
    if (design.cluster and design.stratum is None and design.weight is None and design.cluster in frame.columns
            and not frame[design.cluster].duplicated().any()):
        design = Design()  # every cluster a single row, no weight: the simple design and its exact tests
    if design.is_simple or cells.empty:
        return cells, tests
    tests = tests.copy()
    # the design coded once on the whole frame; each question's rows are a subset of it (same PSU order)
    full = DesignArrays.from_frame(frame, design, check=False)
    if not np.isfinite(full.weight).all():  # as tabulate_level, which rejects them first
        row = frame.index[~np.isfinite(full.weight)][0]
        raise ValueError(f"design: weight column {design.weight!r} has a missing or infinite value (row {row!r})")
    full_units = _Units.of(full)
    cell_groups = cells.groupby(["question_id", "dimension", "statistic"], sort=False).indices
    test_groups = tests.groupby(["question_id", "dimension"], sort=False).indices if len(tests) else {}
    dim_codes: dict[str, tuple[np.ndarray, list[str]]] = {}
    value_col = cells["dimension_value"].to_numpy()
    key_col = cells["answer_key"].to_numpy()
    out_rows: list[np.ndarray] = []
    out_low: list[np.ndarray] = []
    out_high: list[np.ndarray] = []
    out_deff: list[np.ndarray] = []
    test_rows: list[int] = []
    test_results: list[RaoScottTest] = []
    for q in questions:
        mask = np.asarray(filter_mask(frame, q, codebook), dtype=bool)
        if design.cluster and (full.cluster[mask] < 0).any():
            raise ValueError(f"design: cluster column {design.cluster!r} has missing values")
        sub = frame.loc[mask]
        units = full_units.subset(mask)
        defs = _row_definitions(q, sub)
        floats = {stat: np.asarray(y, dtype=float) for stat, (_, y, _, _) in defs.items()}
        dims = list(dict.fromkeys(d for (qid, d, _) in cell_groups if qid == q.id))
        for dim in dims:
            if dim == "ensemble":
                gcodes, values = np.zeros(len(sub), dtype=np.int64), ["Ensemble"]
            else:
                if dim not in dim_codes:
                    dim_codes[dim] = _group_codes(frame[dim])
                gcodes, values = _present(dim_codes[dim][0][mask], dim_codes[dim][1])
            in_group = gcodes >= 0
            g_units = units if in_group.all() else None
            for stat, (keys, _, dom, _) in defs.items():
                rows = cell_groups.get((q.id, dim, stat))
                if rows is None or not values:
                    continue
                if g_units is not None:
                    p, var, n = _grouped_variances(floats[stat], dom, gcodes, len(values), g_units)
                else:  # rows without a value belong to no group but stay in the design (they score 0)
                    p, var, n = _grouped_variances(floats[stat], dom & in_group[:, None], np.where(in_group, gcodes, 0),
                                                   len(values), units)
                with np.errstate(divide="ignore", invalid="ignore"):
                    srs = p * (1 - p) / (n - 1)
                    deff = np.where(srs > 0, var / np.where(srs > 0, srs, 1.0), np.nan)
                    eff = np.where(var > 0, p * (1 - p) / np.where(var > 0, var, 1.0), n)
                eff = np.minimum(eff, n)
                low, high = wilson_interval(p * eff, eff, confidence)
                pos = {k: i for i, k in enumerate(keys)}
                gi = pd.Index(values).get_indexer(value_col[rows])
                kj = np.array([pos.get(k, -1) for k in key_col[rows]], dtype=np.int64)
                ok = (gi >= 0) & (kj >= 0)
                flat = gi[ok] * len(keys) + kj[ok]
                out_rows.append(rows[ok])
                out_low.append(100 * low.ravel()[flat])
                out_high.append(100 * high.ravel()[flat])
                out_deff.append(deff.ravel()[flat])
            if dim == "ensemble":
                continue
            done: dict[object, RaoScottTest | None] = {}
            for ti in test_groups.get((q.id, dim), []):
                key = tests["answer_key"].iat[ti] if q.type == "multiple" else None
                if key not in done:
                    rows_codes = _test_rows(q, defs, key)
                    if rows_codes is None:
                        done[key] = None
                    elif q.type in ("ordinal", "band"):  # ordered answers: a test for trend, as the simple design
                        done[key] = design_trend(np.where(rows_codes >= 0, rows_codes + 1.0, np.nan), gcodes,
                                                 units.arrays)
                    else:
                        done[key] = rao_scott(rows_codes, gcodes, units.arrays)
                res = done[key]
                if res is None or not np.isfinite(res.pvalue):
                    continue  # a degenerate table stays « non applicable »
                test_rows.append(ti)
                test_results.append(res)
    if out_rows:
        idx = cells.index[np.concatenate(out_rows)]
        cells.loc[idx, "ci_low"] = np.concatenate(out_low)
        cells.loc[idx, "ci_high"] = np.concatenate(out_high)
        cells.loc[idx, "deff"] = np.concatenate(out_deff)
    if test_rows:
        tidx = tests.index[test_rows]
        tests.loc[tidx, "test"] = [r.test for r in test_results]
        tests.loc[tidx, "statistic"] = [r.statistic for r in test_results]
        tests.loc[tidx, "pvalue"] = [r.pvalue for r in test_results]
        tests.loc[tidx, "n"] = [r.n for r in test_results]
        tests.loc[tidx, "min_expected"] = np.nan
        tests.loc[tidx, "df"] = pd.NA
    return cells, tests


# --------------------------------------------------------------------------- technical note

_LEVEL_WORDS = {
    "respondent": ("répondants", "répondant"),
    "tool": ("outils", "outil"),
    "bp": ("territoires", "territoire"),
}
_CLUSTER_WORDS = {"collectivity_id": "collectivités", "respondent_id": "répondants"}


def design_summary(
    config: Mapping,
    frames: Mapping[str, pd.DataFrame],
    *,
    codebook: Codebook | None = None,
    cells: pd.DataFrame | None = None,
    calibration=None,
) -> str:
    """The survey design in French, for the technical note.

    Parameters
    ----------
    config
        The project configuration (sections ``design``, ``tabulation``, ``comparisons``).
    frames
        Processed frames by level (``respondent``, ``tool``, ``bp``).
    codebook
        The edition's codebook (its collectivity attributes); optional.
    cells
        The edition's ``cells.csv`` (its ``deff`` column gives the design effects); optional.
    calibration
        A :class:`barometre.calibration.CalibrationResult`, when the edition is calibrated.
    """
    from barometre import fr
    from barometre.comparisons import ADJUST_METHODS, settings

    parts = ["Échantillon auto-sélectionné : les collectivités ont choisi de répondre. Les intervalles de confiance "
             "et les tests ne décrivent que la variation d'échantillonnage sous le plan déclaré ci-dessous ; ils sont "
             "indicatifs et ne valent pas généralisation à l'ensemble des collectivités."]
    resp = frames.get("respondent")
    if codebook is not None and resp is not None and len(resp):
        attrs = collectivity_questions(codebook)
        if attrs:
            coll = (config.get("design") or {}).get("collectivity") or {}
            units = collectivity_units(resp, attrs, **coll)
            n_conf = units.conflicts["collectivity_id"].nunique() if len(units.conflicts) else 0
            parts.append(
                f"Unités : les attributs de la collectivité ({', '.join(q.id for q in attrs)}) sont comptés "
                f"une fois par collectivité, soit {fr.format_number(units.n_collectivities)} collectivités pour "
                f"{fr.format_number(units.n_rows)} répondants ; quand une collectivité a plusieurs répondants, la "
                f"première réponse complète est retenue (réponses divergentes : {fr.format_number(n_conf)} "
                f"collectivité{'s' if n_conf > 1 else ''})."
            )
    for level, frame in frames.items():
        if frame is None or not len(frame):
            continue
        d = design_of(config, level)
        plural, _ = _LEVEL_WORDS.get(level, (level, level))
        if d.is_simple:
            parts.append(f"{plural.capitalize()} : traités comme un échantillon aléatoire simple, sans pondération ; "
                         "tests exacts ou par permutation quand les effectifs sont faibles.")
            continue
        bits = []
        if d.cluster and d.cluster in frame.columns:
            bits.append(
                f"grappes = {_CLUSTER_WORDS.get(d.cluster, d.cluster)} ({fr.format_number(frame[d.cluster].nunique())} "
                f"grappes pour {fr.format_number(len(frame))} {plural})"
            )
        if d.stratum:
            bits.append(
                f"{fr.format_number(frame[d.stratum].nunique())} strates" if d.stratum in frame.columns else "strates"
            )
        if d.weight:
            bits.append("pondération par calage" if calibration is not None else "pondération fournie avec les données")
        parts.append(f"{plural.capitalize()} : " + ", ".join(bits) + ".")
    parts.append(
        "Méthode : parts et variances par linéarisation de Taylor (grappes tirées avec remise), intervalle "
        "de Wilson sur la base effective du plan, qui reste dans [0\u202f%\u202f; 100\u202f%] ; "
        "tests du khi2 corrigés de Rao-Scott (statistique F) pour les tableaux en grappes ou pondérés ; "
        "moyennes : intervalle de Student."
    )
    if cells is not None and "deff" in cells.columns:
        deff = pd.to_numeric(cells["deff"], errors="coerce")
        deff = deff[np.isfinite(deff)]
        if len(deff):
            parts.append(f"Effets de plan des parts : médiane {fr.format_decimal(float(deff.median()), 2)} "
                         f"(de {fr.format_decimal(float(deff.min()), 2)} à {fr.format_decimal(float(deff.max()), 2)}).")
    if calibration is not None:
        parts.append(calibration.summary())
    opts = settings(config)
    parts.append(
        f"Comparaisons : tests globaux et comparaisons de colonnes corrigés pour la multiplicité "
        f"(méthode de {ADJUST_METHODS[opts['adjust']][1]}, "
        f"seuil de {fr.format_percent(100 * float(opts['alpha']), 0)})."
    )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- disclosure of the two bases


EXCLUSIVE_PART = "·exclusive"


def exclusive_mask(cells: pd.DataFrame, codebook: Codebook | None = None) -> np.ndarray:
    """Rows of ``cells`` that are an exclusive option of a multiple-response question.

    From the codebook when given (``exclusive: true``), else the « ne se prononce pas »
    key (``nsp``) of a multiple-response question.
    """
    multiple = cells["question_type"].astype(str).eq("multiple").to_numpy() if "question_type" in cells.columns \
        else np.zeros(len(cells), dtype=bool)
    if codebook is None:
        return multiple & cells["answer_key"].astype(str).eq("nsp").to_numpy()
    pairs = {(q.id, o.key) for q in codebook.questions if q.type == "multiple" for o in q.options if o.exclusive}
    return multiple & np.array(
        [(qid, k) in pairs for qid, k in zip(cells["question_id"], cells["answer_key"], strict=True)], dtype=bool
    )


def split_exclusive(cells: pd.DataFrame, codebook: Codebook | None = None) -> pd.DataFrame:
    """``cells`` whose exclusive-option rows carry their own question key, for the disclosure rules.

    The exclusive option and the other options of a multiple-response question have
    different bases (module :mod:`barometre.tabulate`): the suppression treats them as
    two tables, each with one base per column; :func:`protect_exclusive_bases` then
    handles what ties them.
    """
    mask = exclusive_mask(cells, codebook)
    if not mask.any():
        return cells
    qid = cells["question_id"].astype(str).to_numpy(dtype=object).copy()
    qid[mask] = qid[mask] + EXCLUSIVE_PART
    return cells.assign(question_id=qid)


def _exclusive_tables(cells: pd.DataFrame, codebook: Codebook | None):
    """(exclusive rows, other option rows) of each multiple-response question that has an exclusive option."""
    mask = exclusive_mask(cells, codebook)
    if not mask.any():
        return
    for qid in dict.fromkeys(cells.loc[mask, "question_id"]):
        same = cells["question_id"].eq(qid).to_numpy() & cells["statistic"].eq("share").to_numpy()
        yield cells.index[same & mask], cells.index[same & ~mask]


def protect_exclusive_bases(cells: pd.DataFrame, codebook: Codebook | None = None) -> pd.DataFrame:
    """Hide what the two bases of a multiple-response column would reveal (run after the suppression).

    With an exclusive « ne se prononce pas », a column has two bases: every row that
    answered (the NSP share's) and those rows minus the NSP ones (every other option's).
    Their difference is the NSP count, so

    * where the NSP cell is suppressed its base is hidden too (``base_suppressed``);
    * where the other options' base is hidden, the NSP cell is suppressed with its base
      (its count and its base would give the hidden one);
    * the bases of a dimension's columns add up to the « Ensemble » one: a dimension with
      exactly one hidden NSP cell gets a second one (its smallest other column).
    """
    out = cells.copy()
    if "suppressed" not in out.columns:
        return out
    if "base_suppressed" not in out.columns:
        out["base_suppressed"] = False
    base_col = "unweighted_base" if "unweighted_base" in out.columns else "base"
    for excl, others in _exclusive_tables(out, codebook):
        col_of = out.loc[excl, "dimension"].astype(str) + "\0" + out.loc[excl, "dimension_value"].astype(str)
        other_cols = out.loc[others, "dimension"].astype(str) + "\0" + out.loc[others, "dimension_value"].astype(str)
        hidden_cols = set(other_cols[out.loc[others, "base_suppressed"].astype(bool).to_numpy()])
        out.loc[col_of.index[col_of.isin(hidden_cols).to_numpy()], ["suppressed", "base_suppressed"]] = True
        sub = out.loc[excl]
        ens = list(sub.index[sub["dimension"].eq("ensemble")])
        changed = True
        while changed:
            changed = False
            hidden = out.loc[excl, "suppressed"].astype(bool)
            out.loc[hidden.index[hidden.to_numpy()], "base_suppressed"] = True
            for dim in sub.loc[sub["dimension"].ne("ensemble"), "dimension"].unique():
                members = list(sub.index[sub["dimension"].eq(dim)]) + ens
                is_hidden = out.loc[members, "suppressed"].astype(bool)
                if int(is_hidden.sum()) == 1:
                    cand = out.loc[is_hidden.index[~is_hidden.to_numpy()]]
                    cand = cand[cand[base_col].fillna(0) > 0]
                    if len(cand):
                        out.loc[cand[base_col].astype(float).idxmin(), ["suppressed", "base_suppressed"]] = True
                        changed = True
    return out


def exclusive_base_problems(cells: pd.DataFrame, codebook: Codebook | None = None) -> list[str]:
    """Violations of :func:`protect_exclusive_bases`'s rules in published cells (empty: safe)."""
    if "suppressed" not in cells.columns:
        return []
    problems = []
    bsupp = cells["base_suppressed"] if "base_suppressed" in cells.columns else pd.Series(False, index=cells.index)
    for excl, others in _exclusive_tables(cells, codebook):
        for i in excl:
            row = cells.loc[i]
            same_col = others[(cells.loc[others, "dimension"] == row["dimension"]).to_numpy()
                              & (cells.loc[others, "dimension_value"] == row["dimension_value"]).to_numpy()]
            where = f"{row['question_id']} [{row['answer_key']}] × {row['dimension']} = « {row['dimension_value']} »"
            if bool(row["suppressed"]) and not bool(bsupp[i]) and len(same_col) and not bsupp[same_col].all():
                problems.append(
                    f"{where}: suppressed exclusive cell whose base and the other options' base are published"
                )
            if not bool(row["suppressed"]) and len(same_col) and bsupp[same_col].any():
                problems.append(f"{where}: exclusive cell published while the other options' base is hidden")
    return problems
