"""Tabulation phase: every question crossed with every dimension, as one long table.

Input: the processed frames of the cleaning phase (one per level), whose columns
follow :meth:`barometre.codebook.Question.columns`. Output: a long ``cells``
table (one row per question × dimension × dimension value × statistic × answer)
and a ``tests`` table (tests of association), both deterministic.

Counting is vectorised: answer codes and column codes are combined into one
integer and counted with :func:`numpy.bincount` (weighted when a weight column is
given). No ``pd.crosstab``, no ``groupby().apply``.

Definitions (the « base » of each statistic)
--------------------------------------------
share (single, ordinal, band)
    count / base, base = rows of the column with a non-missing answer. When the
    question shows « Ne se prononce pas » (``nsp: show``) it is a category of its
    own and is **in** the base; it is never added to another category. With
    ``nsp: drop`` the cleaning phase already turned it into a non-response.
top2_share (ordinal with ``top2``)
    Sum of the two named categories, same base as ``share`` (so it equals the
    sum of the two shares). ``answer_key`` is ``"top2"``.
cumulative_share (band with ``cumulative: true``)
    « x or less »: this band plus every lower band, over the **same base as the
    shares** (every answer, « ne se prononce pas » included and shown as its own
    share): one base for the whole table, so the last band reaches 100 % minus
    the NSP share. (A registry figure « parmi les réponses connues » states its
    own base, ``base: substantive``.)
share (multiple)
    Rows that selected the option / rows that answered the question (any option
    not missing). An option missing in an answered row counts as not selected.
    Shares may add up to more than 100 %. An **exclusive** option (« ne se
    prononce pas », ``exclusive: true``) is reported as its own share of every
    row that answered, and its rows leave the base of every other option.
first_share, top3_share, mean_rank (ranking)
    Base = rows that ranked at least one item (the same base in the figures
    registry). ``first_share``: ranked the item first; ``top3_share``: ranked it
    1st, 2nd or 3rd; ``mean_rank`` (partial rankings): mean rank among the rows
    that ranked the item (``count`` = those rows; an unranked item is not given a
    rank), with a Student *t* interval (``NaN`` below two rows; weighted: on the
    item's Kish effective base).
mean, median (numeric)
    Over non-missing values; ``count`` = ``base`` = rows with a value. The mean
    has a Student *t* interval, the median none.

Columns: dimension ``"ensemble"`` / value ``"Ensemble"`` holds the whole
(filtered) population, including rows whose dimension value is missing; those
rows are left out of the dimension columns only. Shares and their Wilson
intervals are in **percent** (0–100).

Weights: counts and bases are weighted sums, the Wilson interval uses Kish's
effective base, and two more columns, ``unweighted_count`` and
``unweighted_base``, carry the respondent counts used by the disclosure rules.
``effective_base`` is always present (equal to ``base`` without weights).

Tests of association (one per question × dimension, on the dimension columns
only, « Ensemble » excluded):

* single: substantive answers × dimension (NSP excluded), key ``"all"``;
* ordinal/band: the same table, tested for trend (mean score of the ordered
  answers across the dimension, :func:`barometre.stats.trend_test`), key ``"all"``;
* multiple: one 2 × k test per option (selected / not selected among the rows
  that answered × dimension), key = option key; no multiplicity correction;
* ranking: the item ranked first × dimension, key ``"first"``;
* numeric: Kruskal-Wallis across the dimension values with at least
  :data:`barometre.stats.MIN_RANK_GROUP` values, key ``"all"`` (« non applicable »
  when weighted).

Weighted tables are tested after rescaling them to their Kish effective base
(a first-order design-effect correction), see :func:`barometre.stats.association_test`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from barometre.codebook import Codebook, Question
from barometre.errors import CodebookError, ValidationError
from barometre.stats import (
    DEFAULT_SEED,
    AssociationTest,
    GroupedMoments,
    association_test,
    effective_base,
    grouped_effective_base,
    grouped_median,
    grouped_moments,
    kruskal_test,
    t_interval,
    trend_test,
    wilson_interval,
)

ENSEMBLE_DIMENSION = "ensemble"
ENSEMBLE_LABEL = "Ensemble"

SHARE = "share"
TOP2 = "top2_share"
CUMULATIVE = "cumulative_share"
FIRST = "first_share"
TOP3 = "top3_share"
MEAN_RANK = "mean_rank"
MEAN = "mean"
MEDIAN = "median"

#: Statistics in the order they appear for one question × dimension.
STATISTIC_ORDER = (SHARE, TOP2, CUMULATIVE, FIRST, TOP3, MEAN_RANK, MEAN, MEDIAN)
#: Statistics whose value is a percentage.
PERCENT_STATISTICS = frozenset({SHARE, TOP2, CUMULATIVE, FIRST, TOP3})

CELL_COLUMNS = [
    "question_id",
    "harmonised",
    "question_type",
    "level",
    "dimension",
    "dimension_value",
    "answer_key",
    "answer_label",
    "statistic",
    "count",
    "base",
    "effective_base",
    "value",
    "ci_low",
    "ci_high",
]
#: Extra columns of a weighted tabulation.
WEIGHTED_COLUMNS = ["unweighted_count", "unweighted_base"]
TEST_COLUMNS = ["question_id", "dimension", "answer_key", "test", "statistic", "df", "pvalue", "n", "min_expected"]

TABULATED_TYPES = ("single", "ordinal", "band", "multiple", "ranking", "numeric")


@dataclass(frozen=True)
class QuestionTable:
    """One question crossed with one dimension (or with none: « Ensemble »).

    Attributes
    ----------
    cells
        Long table, columns :data:`CELL_COLUMNS` (+ :data:`WEIGHTED_COLUMNS`).
    test
        The test of association of the table (``None`` for « Ensemble » and for
        multiple-response questions, which have one test per option).
    option_tests
        Tests by answer key: one per option (multiple), else ``{key: test}``.
    """

    cells: pd.DataFrame
    test: AssociationTest | None = None
    option_tests: Mapping[str, AssociationTest] = field(default_factory=lambda: MappingProxyType({}))

    def tests_frame(self) -> pd.DataFrame:
        """The tests of this table with columns :data:`TEST_COLUMNS`."""
        if self.cells.empty or not self.option_tests:
            return _empty_tests()
        qid = str(self.cells["question_id"].iloc[0])
        dim = str(self.cells["dimension"].iloc[0])
        return _tests_frame([(qid, dim, key, t) for key, t in self.option_tests.items()])


@dataclass(frozen=True)
class TabulationResult:
    """Every table of an edition: ``cells`` (:data:`CELL_COLUMNS`) and ``tests`` (:data:`TEST_COLUMNS`)."""

    cells: pd.DataFrame
    tests: pd.DataFrame


# --------------------------------------------------------------------------- helpers


def _empty_tests() -> pd.DataFrame:
    return _tests_frame([])


def _tests_frame(rows: list[tuple[str, str, str, AssociationTest]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question_id": pd.Series([r[0] for r in rows], dtype=object),
            "dimension": pd.Series([r[1] for r in rows], dtype=object),
            "answer_key": pd.Series([r[2] for r in rows], dtype=object),
            "test": pd.Series([r[3].test for r in rows], dtype=object),
            "statistic": pd.Series([r[3].statistic for r in rows], dtype="float64"),
            "df": pd.Series([r[3].df for r in rows], dtype="Int64"),
            "pvalue": pd.Series([r[3].pvalue for r in rows], dtype="float64"),
            "n": pd.Series([r[3].n for r in rows], dtype="int64"),
            "min_expected": pd.Series([r[3].min_expected for r in rows], dtype="float64"),
        },
        columns=TEST_COLUMNS,
    )


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what}: column(s) {', '.join(missing)} missing from the processed frame",
            [{"column": c, "problem": "missing"} for c in missing],
        )


def filter_mask(
    frame: pd.DataFrame,
    question: Question,
    codebook: Codebook | None = None,
    filter_question: Question | None = None,
) -> np.ndarray:
    """Rows to which ``question`` was asked, following its codebook filter.

    Parameters
    ----------
    frame
        Processed frame holding the filter question's column.
    question
        The question tabulated.
    codebook, filter_question
        Where to find the filter question (``codebook.question(question.filter.question)``),
        unless given directly.

    Returns
    -------
    numpy.ndarray
        Boolean mask; all ``True`` without a filter.
    """
    if question.filter is None:
        return np.ones(len(frame), dtype=bool)
    if filter_question is None:
        if codebook is None:
            raise CodebookError(
                f"question {question.id}: it is filtered on {question.filter.question}; pass the codebook"
            )
        filter_question = codebook.question(question.filter.question)
    if not filter_question.is_categorical:
        raise CodebookError(
            f"question {question.id}: filter question {filter_question.id} is of type "
            f"{filter_question.type}, only single/ordinal/band filters are supported"
        )
    _require(frame, [filter_question.harmonised], f"question {question.id} (filter on {filter_question.id})")
    labels = [filter_question.label_of(k) for k in question.filter.keys]
    return frame[filter_question.harmonised].isin(labels).to_numpy(dtype=bool)


def _answer_codes(series: pd.Series, labels: list[str], what: str) -> np.ndarray:
    """Integer codes of a categorical answer in ``labels`` order (-1 = missing)."""
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == labels:
        return series.cat.codes.to_numpy(dtype=np.int64)
    values = series.astype(object).where(series.notna(), None)
    unknown = series.notna().to_numpy() & ~values.isin(labels).to_numpy()
    if unknown.any():
        bad = sorted({str(v) for v in values[unknown]})
        raise ValidationError(
            f"{what}: value(s) not among the codebook labels: {', '.join(bad)}",
            [{"column": series.name, "value": v, "problem": "unknown label"} for v in bad],
        )
    return np.asarray(pd.Categorical(values, categories=labels).codes, dtype=np.int64)


def _dimension_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (-1 = missing) and French labels of a dimension column."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(dtype=np.int64), [str(c) for c in series.cat.categories]
    values = series.dropna().unique()
    labels = sorted(str(v) for v in values)
    as_text = series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(v))
    cat = pd.Categorical(as_text, categories=labels)
    return np.asarray(cat.codes, dtype=np.int64), labels


def _level_dimension_codes(
    frame: pd.DataFrame, dimension: str, mask: np.ndarray, all_rows: bool, level_cache: dict | None,
    rows_key: object = None,
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """:func:`_dimension_codes` of the rows of ``mask``, and their bins (:class:`_Groups`) when known.

    A categorical column is coded once per frame (its categories do not depend on the rows
    kept), then each question takes its rows; questions with the same filter (``rows_key``)
    share them.
    """
    series = frame[dimension]
    if level_cache is None or not isinstance(series.dtype, pd.CategoricalDtype):
        codes, labels = _dimension_codes(series if all_rows else series[mask])
        return codes, labels, None
    if dimension not in level_cache:
        codes, labels = _dimension_codes(series)
        level_cache[dimension] = codes, labels, _Groups(codes, len(labels)).bins
    codes, labels, bins = level_cache[dimension]
    if all_rows:
        return codes, labels, bins
    key = (dimension, rows_key)
    if rows_key is None or key not in level_cache:
        rows = codes[mask], labels, None if bins is None else bins[mask]
        if rows_key is None:
            return rows
        level_cache[key] = rows
    return level_cache[key]


def _float_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Columns as a float matrix, missing → NaN (nullable dtypes included)."""
    if not columns:
        return np.empty((len(frame), 0))
    out = np.empty((len(frame), len(columns)), order="F")  # column-major: the handlers read it column by column
    for j, c in enumerate(columns):
        out[:, j] = frame[c].to_numpy(dtype=float, na_value=np.nan)
    return out


def _count_columns(
    hits: Sequence[np.ndarray], groups: _Groups, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted and weighted counts, answers × groups, of the rows ``hits[j]`` (booleans) of each answer ``j``.

    Column by column, one :func:`numpy.bincount` over every row, the rows not counted in bins
    of their own that are dropped (:func:`_table_counts`): each group adds the same rows in row
    order as counting the selected rows alone, so the sums are the same to the last bit.
    """
    k, g_n = len(hits), groups.n
    ucnt = np.empty((k, g_n))
    cnt = ucnt if w is None else np.empty((k, g_n))
    for j, hit in enumerate(hits):
        u, c = _table_counts(hit, 1, groups, w, counted=1)
        ucnt[j] = u[0]
        if w is not None:
            cnt[j] = c[0]
    return ucnt, cnt


def _pct_ci(
    count: np.ndarray, base: np.ndarray, eff: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share in percent and its Wilson interval (effective base for weighted data)."""
    count, base, eff = np.broadcast_arrays(count, base, eff)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(base > 0, count / np.where(base > 0, base, 1.0), np.nan)
    low, high = wilson_interval(share * eff, eff, confidence)
    return share * 100, low * 100, high * 100


def _rescale(table: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Weighted table rescaled to the Kish effective base of ``weights`` (unchanged unweighted)."""
    total = table.sum()
    if weights is None or total <= 0:
        return table
    return table * (effective_base(weights) / total)


@dataclass(frozen=True)
class _Context:
    question: Question
    dimension: str
    col_labels: list[str]
    weighted: bool
    cache: dict = field(default_factory=dict)  # per question, shared by its dimensions (same rows)
    bins: np.ndarray | None = None  # the group bins of the table (:class:`_Groups`), when already known

    def groups(self, gcodes: np.ndarray) -> _Groups:
        """The table's groups, with their bins when already known."""
        return _Groups(gcodes, len(self.col_labels), self.bins)

    def cached(self, key: str, make):
        """``make()`` computed once per question (the rows do not depend on the dimension)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def block(
        self,
        statistic: str,
        keys: Sequence[str],
        labels: Sequence[str],
        count: np.ndarray,
        base: np.ndarray,
        eff: np.ndarray,
        value: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        ucount: np.ndarray,
        ubase: np.ndarray,
    ) -> dict[str, object]:
        """K answers × G columns as long rows, answer-major: the columns of :data:`CELL_COLUMNS`
        (+ :data:`WEIGHTED_COLUMNS`), for :func:`_cells_frame`."""
        k, g = len(keys), len(self.col_labels)
        shape = (k, g)

        def flat(a: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(a, dtype=float), shape).ravel().copy()

        n = k * g
        q = self.question
        data: dict[str, object] = {
            "question_id": [q.id] * n,
            "harmonised": [q.harmonised] * n,
            "question_type": [q.type] * n,
            "level": [q.level] * n,
            "dimension": [self.dimension] * n,
            "dimension_value": list(self.col_labels) * k,
            "answer_key": [key for key in keys for _ in range(g)],
            "answer_label": [lab for lab in labels for _ in range(g)],
            "statistic": [statistic] * n,
            "count": flat(count),
            "base": flat(base),
            "effective_base": flat(eff),
            "value": flat(value),
            "ci_low": flat(low),
            "ci_high": flat(high),
        }
        if self.weighted:
            data["unweighted_count"] = flat(ucount)
            data["unweighted_base"] = flat(ubase)
        return data


def _cells_frame(blocks: Sequence[dict[str, object]], weighted: bool) -> pd.DataFrame:
    """One frame of the cell blocks (:meth:`_Context.block`), in their order: the frame that concatenating
    one frame per block gave, built once (building ~150 small frames cost more than counting a million rows)."""
    columns = CELL_COLUMNS + (WEIGHTED_COLUMNS if weighted else [])
    data: dict[str, object] = {}
    for c in columns:
        parts: list[Any] = [b[c] for b in blocks]
        data[c] = np.concatenate(parts) if isinstance(parts[0], np.ndarray) else [x for part in parts for x in part]
    return pd.DataFrame(data, columns=columns)


class _Groups:
    """Group codes (-1 = missing) of one table, with the bins :func:`_table_counts` combines them into."""

    def __init__(self, codes: np.ndarray, n: int, bins: np.ndarray | None = None) -> None:
        self.codes, self.n = codes, n
        self._bins = bins

    @property
    def bins(self) -> np.ndarray | None:
        """Codes with the missing ones in a last bin ``n``; ``None`` for one group and nothing missing."""
        if self._bins is None and not (self.n == 1 and not (self.codes < 0).any()):
            self._bins = np.where(self.codes >= 0, self.codes, self.n)
        return self._bins


def _table_counts(
    a_bins: np.ndarray, k: int, groups: _Groups, w: np.ndarray | None, counted: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted and weighted counts, answers × groups, of answer codes ``a_bins`` (``k``: missing).

    One :func:`numpy.bincount` over every row; the missing answers and groups fall in the
    last row and column, which are dropped. Each kept cell adds the same rows, in row order,
    as counting the kept rows alone: the same sums to the last bit. With ``counted``, ``a_bins`` are
    booleans and only the rows where it is ``counted`` are counted (``k`` = 1).
    """
    g_n, gbins = groups.n, groups.bins
    if gbins is None:  # « Ensemble »: one column, nothing to combine
        idx, width = a_bins, 1
    else:
        width = g_n + 1
        idx = a_bins * width + gbins
    rows = slice(None, k) if counted is None else slice(counted, counted + 1)
    size = (k + 1) * width
    ucnt = np.bincount(idx, minlength=size).reshape(k + 1, width)[rows, :g_n].astype(float)
    if w is None:
        return ucnt, ucnt
    return ucnt, np.bincount(idx, weights=w, minlength=size).reshape(k + 1, width)[rows, :g_n].copy()


# --------------------------------------------------------------------------- per type

_Blocks = tuple[list[dict[str, object]], dict[str, AssociationTest]]


def _categorical(
    ctx: _Context,
    frame: pd.DataFrame,
    gcodes: np.ndarray,
    w: np.ndarray | None,
    confidence: float,
    test_kw: dict | None,
) -> _Blocks:
    q = ctx.question
    labels = q.labels()
    keys = [c.key for c in q.codes] + (["nsp"] if q.shows_nsp else [])
    g_n = len(ctx.col_labels)
    k = len(labels)
    a = ctx.cached("codes", lambda: _answer_codes(frame[q.harmonised], labels, f"question {q.id} ({q.harmonised})"))
    # every row counted once, the missing answers and dimension values in a last bin of their own that is
    # dropped: each kept cell adds the same rows in the same order as counting the kept rows alone
    a_bins = ctx.cached("codes_binned", lambda: np.where(a >= 0, a, k))
    ucnt, cnt = _table_counts(a_bins, k, ctx.groups(gcodes), w)
    base, ubase = cnt.sum(axis=0), ucnt.sum(axis=0)
    wv = None
    if w is not None:
        ok = (a >= 0) & (gcodes >= 0)
        a, wv = a[ok], w[ok]
        eff = grouped_effective_base(gcodes[ok], wv, g_n)
    else:
        eff = base
    n_sub = len(q.codes)
    blocks = [ctx.block(SHARE, keys, labels, cnt, base, eff, *_pct_ci(cnt, base, eff, confidence), ucnt, ubase)]

    if q.type == "ordinal" and q.top2:
        idx = [keys.index(key) for key in q.top2]
        c2, u2 = cnt[idx].sum(axis=0, keepdims=True), ucnt[idx].sum(axis=0, keepdims=True)
        lab = " + ".join(q.label_of(key) for key in q.top2)
        pct = _pct_ci(c2, base, eff, confidence)
        blocks.append(ctx.block(TOP2, ["top2"], [lab], c2, base, eff, *pct, u2, ubase))

    if q.type == "band" and q.cumulative:
        # one base for the shares and the cumulative shares: every answer, « ne se prononce pas »
        # included and shown as its own share (the last band reaches 100 % minus that share)
        cc, uc = np.cumsum(cnt[:n_sub], axis=0), np.cumsum(ucnt[:n_sub], axis=0)
        clabels = [f"Cumul jusqu'à « {c.label} »" for c in q.codes]
        pct = _pct_ci(cc, base, eff, confidence)
        blocks.append(ctx.block(CUMULATIVE, keys[:n_sub], clabels, cc, base, eff, *pct, uc, ubase))

    tests: dict[str, AssociationTest] = {}
    if test_kw is not None:
        table = _rescale(cnt[:n_sub], None if wv is None else wv[a < n_sub])
        # ordered answers (ordinal, band): a test for trend of the mean score, not a nominal χ²
        test = trend_test if q.type in ("ordinal", "band") else association_test
        tests["all"] = test(table, **test_kw)
    return blocks, tests


def _answered(matrix: np.ndarray) -> np.ndarray:
    return ~np.isnan(matrix).all(axis=1) if matrix.shape[1] else np.zeros(matrix.shape[0], dtype=bool)


def _rank_codes(matrix: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Ranks as integer codes (0 = not ranked) and the largest rank.

    ``None`` unless every rank is a whole number ≥ 1 (the others take the general path).
    """
    flat = matrix.ravel(order="K")
    if not flat.size or np.isnan(np.fmax.reduce(flat)):  # fmax/fmin skip NaN: NaN only when nothing is ranked
        return np.zeros(matrix.shape, dtype=np.intp), 0
    low, top = float(np.fmin.reduce(flat)), float(np.fmax.reduce(flat))
    if low < 1 or top > 2**20:
        return None
    filled = np.fmax(matrix, 0.0)  # not ranked (NaN) → 0
    codes = filled.astype(np.int8 if top < 2**7 else np.int16 if top < 2**15 else np.int32)  # small: kept per question
    return (codes, int(top)) if (codes == filled).all() else None


def _rank_tables(ranks: tuple[np.ndarray, int], groups: _Groups) -> tuple[np.ndarray, np.ndarray, GroupedMoments]:
    """Unweighted first-place and top-3 counts and mean-rank moments, items × groups, from one count of
    (rank, group) per item.

    Counts and the sums of the (whole-number) ranks are exact, so the mean is the one of
    :func:`barometre.stats.grouped_moments`; the squared deviations are then added per group in
    row order as it does (the rows an item leaves unranked add exact zeros), so the standard
    deviation is the same to the last bit too.
    """
    codes, top = ranks
    g_n = groups.n
    k = codes.shape[1]
    width = g_n + 1
    gbins = groups.bins if groups.bins is not None else np.zeros(len(groups.codes), dtype=np.intp)
    rank_values = np.arange(top + 1, dtype=float)
    first, top3 = np.empty((k, g_n)), np.empty((k, g_n))
    n, mean, sd = np.empty((k, g_n)), np.empty((k, g_n)), np.empty((k, g_n))
    for j in range(k):
        idx = np.multiply(codes[:, j], width, dtype=np.intp) + gbins
        table = np.bincount(idx, minlength=(top + 1) * width).reshape(top + 1, width)
        first[j] = table[1, :g_n] if top >= 1 else 0
        top3[j] = table[1:4, :g_n].sum(axis=0)
        nj = table[1:, :g_n].sum(axis=0).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mj = (table[1:, :g_n] * np.arange(1, top + 1)[:, None]).sum(axis=0).astype(float) / nj
            centred = rank_values[:, None] - np.append(mj, 0.0)[None, :]
            squares = centred * centred
            squares[0] = 0.0  # not ranked: nothing added
            var = np.bincount(gbins, weights=squares.ravel()[idx], minlength=width)[:g_n] / nj
            var = np.where(nj >= 2, var * nj / (nj - 1), np.nan)
        n[j], mean[j], sd[j] = nj, np.where(nj > 0, mj, np.nan), np.sqrt(var)
    mom = GroupedMoments(n=n.ravel(), weight_sum=n.ravel().copy(), effective_n=n.ravel().copy(),
                         mean=mean.ravel(), sd=sd.ravel())
    return first, top3, mom


#: Most yes/no columns counted together by :func:`_bit_counts` (2 ** 16 answer patterns).
_MAX_PACKED_BITS = 16


def _packed_bits(columns: Sequence[np.ndarray | None]) -> np.ndarray:
    """Boolean columns packed into one integer per row, column ``j`` as bit ``j`` (``None``: never set)."""
    packed = np.zeros(len(next(c for c in columns if c is not None)), dtype=np.intp)
    for j, col in enumerate(columns):
        if col is not None:
            packed |= col.astype(np.intp) << j
    return packed


def _bit_counts(packed: np.ndarray, n_bits: int, groups: _Groups) -> np.ndarray:
    """Unweighted counts, bits × groups, of the rows whose bit is set (:func:`_packed_bits`).

    One :func:`numpy.bincount` of every bit pattern × group, then each bit's count is the sum
    of the patterns that have it: whole numbers, exact in any order, so the counts of
    counting each column on its own.
    """
    patterns = _table_counts(packed, 1 << n_bits, groups, None)[0]
    bits = (np.arange(1 << n_bits)[:, None] >> np.arange(n_bits)) & 1
    return bits.T.astype(float) @ patterns


def _multiple(
    ctx: _Context,
    frame: pd.DataFrame,
    gcodes: np.ndarray,
    w: np.ndarray | None,
    confidence: float,
    test_kw: dict | None,
) -> _Blocks:
    q = ctx.question
    cols = q.columns()
    keys = [o.key for o in q.options]
    labels = [o.label for o in q.options]
    g_n, k = len(ctx.col_labels), len(keys)
    m = ctx.cached("matrix", lambda: _float_matrix(frame, cols))
    answered = ctx.cached("answered", lambda: _answered(m))
    exclusive = [j for j, o in enumerate(q.options) if o.exclusive]
    # rows that checked an exclusive option (« ne se prononce pas »), whatever their group
    said_nsp = ctx.cached("said_nsp", lambda: (m[:, exclusive] == 1).any(axis=1) if exclusive else None)
    # an exclusive option checked with others (a conflict the cleaning reports) counts only as that option
    def option_hits() -> list[np.ndarray]:
        return [(m[:, j] == 1) & (True if j in exclusive or said_nsp is None else ~said_nsp) for j in range(k)]
    groups = ctx.groups(gcodes)
    u_nsp = w_nsp = None
    if w is None and k + 2 <= _MAX_PACKED_BITS:
        # unweighted: one count per table of the rows' answered / « ne se prononce pas » / option bits
        packed = ctx.cached("packed", lambda: _packed_bits([answered, said_nsp, *option_hits()]))
        ucnt_bits = _bit_counts(packed, k + 2, groups)
        ubase = base = ucnt_bits[0]
        u_nsp = w_nsp = ucnt_bits[1]
        ucnt = cnt = ucnt_bits[2:]
    else:
        ub, b = _table_counts(answered, 1, groups, w, counted=1)
        ubase, base = ub[0], b[0]
        ucnt, cnt = _count_columns(ctx.cached("hits", option_hits), groups, w)
    ok = answered & (gcodes >= 0) if w is not None or exclusive else None
    eff = base if w is None else grouped_effective_base(gcodes[ok], w[ok], g_n)
    nsp = ok & said_nsp if exclusive else np.zeros(len(answered), dtype=bool)
    if exclusive:
        # « Ne se prononce pas » is an exclusive answer: its rows leave every other option's base
        # (they did not say « not selected »); its own share stays on every row that answered.
        if u_nsp is None:
            u, c = _table_counts(said_nsp, 1, groups, w, counted=1)
            u_nsp, w_nsp = u[0], c[0]
        sub = ok & ~nsp
        e_sub = ubase - u_nsp if w is None else grouped_effective_base(gcodes[sub], w[sub], g_n)
        is_excl = np.isin(np.arange(k), exclusive)[:, None]
        ubase = np.where(is_excl, ubase, ubase - u_nsp)
        base = np.where(is_excl, base, base - w_nsp)
        eff = np.where(is_excl, eff, e_sub)
    base_k, eff_k = np.broadcast_to(base, (k, g_n)), np.broadcast_to(eff, (k, g_n))
    ubase_k = np.broadcast_to(ubase, (k, g_n))
    pct = _pct_ci(cnt, base_k, eff_k, confidence)
    blocks = [ctx.block(SHARE, keys, labels, cnt, base_k, eff_k, *pct, ucnt, ubase_k)]
    tests: dict[str, AssociationTest] = {}
    if test_kw is not None:
        for i, key in enumerate(keys):
            rows = None if w is None else ok if i in exclusive else ok & ~nsp
            table = _rescale(np.vstack([cnt[i], base_k[i] - cnt[i]]), None if w is None else w[rows])
            tests[key] = association_test(table, **test_kw)
    return blocks, tests


def _ranking(
    ctx: _Context,
    frame: pd.DataFrame,
    gcodes: np.ndarray,
    w: np.ndarray | None,
    confidence: float,
    test_kw: dict | None,
) -> _Blocks:
    q = ctx.question
    cols = q.columns()
    keys = [c.key for c in q.codes]
    labels = [c.label for c in q.codes]
    g_n, k = len(ctx.col_labels), len(keys)
    m_all = ctx.cached("matrix", lambda: _float_matrix(frame, cols))
    answered = ctx.cached("answered", lambda: _answered(m_all))
    groups = ctx.groups(gcodes)
    ub, b = _table_counts(answered, 1, groups, w, counted=1)
    ubase, base = ub[0], b[0]
    ok, wv, eff = None, None, base
    if w is not None:
        ok = answered & (gcodes >= 0)
        wv = w[ok]
        eff = grouped_effective_base(gcodes[ok], wv, g_n)
    ranks = None if w is not None else ctx.cached("rank_codes", lambda: _rank_codes(m_all))
    if ranks is not None:
        first_u, top3_u, mom = _rank_tables(ranks, groups)
        counts = {FIRST: (first_u, first_u), TOP3: (top3_u, top3_u)}
    else:
        counts = {
            FIRST: _count_columns(ctx.cached("first", lambda: [m_all[:, j] == 1 for j in range(k)]), groups, w),
            TOP3: _count_columns(ctx.cached("top3", lambda: [m_all[:, j] <= 3 for j in range(k)]), groups, w),
        }
        # mean rank: groups = item × column, item by item (each group's values in row order, as before)
        ok_rows = answered & (gcodes >= 0)
        parts = []
        for j in range(k):
            sel = ok_rows & ~np.isnan(m_all[:, j])
            parts.append(grouped_moments(m_all[sel, j], gcodes[sel], g_n, None if w is None else w[sel]))
        mom = GroupedMoments(*(np.concatenate([getattr(p, f) for p in parts])
                               for f in ("n", "weight_sum", "effective_n", "mean", "sd")))
    blocks = []
    tests: dict[str, AssociationTest] = {}
    for stat in (FIRST, TOP3):
        ucnt, cnt = counts[stat]
        pct = _pct_ci(cnt, base, eff, confidence)
        blocks.append(ctx.block(stat, keys, labels, cnt, base, eff, *pct, ucnt, ubase))
    first_cnt = counts[FIRST][1]
    low, high = t_interval(mom.mean, mom.sd, mom.effective_n, confidence)
    shape = (k, g_n)
    blocks.append(
        ctx.block(
            MEAN_RANK, keys, labels, mom.weight_sum.reshape(shape), base, eff,
            mom.mean.reshape(shape), low.reshape(shape), high.reshape(shape), mom.n.reshape(shape), ubase,
        )
    )
    if test_kw is not None:
        tests["first"] = association_test(_rescale(first_cnt, wv), **test_kw)
    return blocks, tests


def _numeric(
    ctx: _Context,
    frame: pd.DataFrame,
    gcodes: np.ndarray,
    w: np.ndarray | None,
    confidence: float,
    test_kw: dict | None,
) -> _Blocks:
    q = ctx.question
    g_n = len(ctx.col_labels)
    v_all = ctx.cached("values", lambda: frame[q.harmonised].to_numpy(dtype=float, na_value=np.nan))
    finite = ctx.cached("finite", lambda: np.isfinite(v_all))
    v_fin = ctx.cached("finite_values", lambda: v_all[finite])
    # one stable sort of the question's values serves the median and the rank test of every dimension
    order_fin = ctx.cached("value_order", lambda: np.argsort(v_fin, kind="stable"))
    g_fin = gcodes[finite]
    in_group = g_fin >= 0
    if in_group.all():  # every row with a value is in a column: no copy
        v, g, value_order = v_fin, g_fin, order_fin
        ok = finite
    else:
        v, g = v_fin[in_group], g_fin[in_group]
        value_order = (np.cumsum(in_group) - 1)[order_fin[in_group[order_fin]]]  # the same sort, of the rows kept
        ok = finite & (gcodes >= 0)
    wv = None if w is None else w[ok]
    mom = grouped_moments(v, g, g_n, wv)
    med = grouped_median(v, g, g_n, wv, value_order=value_order)
    low, high = t_interval(mom.mean, mom.sd, mom.effective_n, confidence)
    nan = np.full(g_n, np.nan)
    count = mom.weight_sum[None, :]
    base, eff = mom.weight_sum, mom.effective_n
    blocks = [
        ctx.block(MEAN, [MEAN], ["Moyenne"], count, base, eff, mom.mean, low, high, mom.n, mom.n),
        ctx.block(MEDIAN, [MEDIAN], ["Médiane"], count, base, eff, med, nan, nan, mom.n, mom.n),
    ]
    tests: dict[str, AssociationTest] = {}
    if test_kw is not None:
        tests["all"] = (AssociationTest.not_applicable(int(v.size)) if wv is not None
                        else kruskal_test(v, g, g_n, value_order=value_order))
    return blocks, tests


_HANDLERS = {
    "single": _categorical,
    "ordinal": _categorical,
    "band": _categorical,
    "multiple": _multiple,
    "ranking": _ranking,
    "numeric": _numeric,
}


# --------------------------------------------------------------------------- public API


def tabulate_question(
    frame: pd.DataFrame,
    question: Question,
    dimension: str | None,
    *,
    codebook: Codebook | None = None,
    filter_question: Question | None = None,
    weight: str | None = None,
    confidence: float = 0.95,
    min_expected: float = 5,
    permutations: int = 9999,
    seed: int | None = DEFAULT_SEED,
    test: bool = True,
) -> QuestionTable:
    """Tabulate one question by one dimension (``None``: the « Ensemble » column).

    Parameters
    ----------
    frame
        Processed frame of the question's level (not modified).
    question
        Codebook question (any type but ``text``).
    dimension
        Name of a categorical column of ``frame``, or ``None`` for the total.
    codebook, filter_question
        Needed when the question has a filter (to find the filter question).
    weight
        Name of a weight column, or ``None`` (unweighted, the 2017 case).
    confidence
        Level of the confidence intervals.
    min_expected, permutations, seed
        Passed to :func:`barometre.stats.association_test`.
    test
        Whether to run the test of association (only with a dimension).

    Returns
    -------
    QuestionTable
        Long cells (see the module docstring) and the test(s) of association.
    """
    blocks, tests, _ = _tabulate_question(
        frame, question, dimension, codebook=codebook, filter_question=filter_question, weight=weight,
        confidence=confidence, min_expected=min_expected, permutations=permutations, seed=seed, test=test, cache={},
        level_cache={},
    )
    return _question_table(blocks, tests, question, weight is not None)


def _tabulate_question(
    frame: pd.DataFrame,
    question: Question,
    dimension: str | None,
    *,
    codebook: Codebook | None,
    filter_question: Question | None,
    weight: str | None,
    confidence: float,
    min_expected: float,
    permutations: int,
    seed: int | None,
    test: bool,
    cache: dict,
    level_cache: dict | None = None,
) -> tuple[list[dict[str, object]], dict[str, AssociationTest], str]:
    """The cell blocks and tests of :func:`tabulate_question`, and the dimension's name, with ``cache``
    shared by the dimensions of one question (same frame) and ``level_cache`` by the questions of one
    frame (its dimension codes)."""
    if question.type not in _HANDLERS:
        raise ValueError(f"question {question.id}: type {question.type!r} is not tabulated")
    needed = question.columns() if question.type in ("multiple", "ranking") else [question.harmonised]
    _require(frame, needed, f"question {question.id} ({question.harmonised})")
    if "mask" not in cache:
        # the rows of a filter, the same for every question it filters (once per frame)
        cache["rows_key"] = None if question.filter is None else ("filter", question.filter.question,
                                                                  tuple(question.filter.keys))
        if level_cache is not None and cache["rows_key"] is not None and cache["rows_key"] in level_cache:
            mask = cache["mask"] = level_cache[cache["rows_key"]]
        else:
            mask = cache["mask"] = filter_mask(frame, question, codebook, filter_question)
            if level_cache is not None and cache["rows_key"] is not None:
                level_cache[cache["rows_key"]] = mask
        cache["all_rows"] = bool(mask.all())
        # only the columns the question reads, and no row copy when every row is asked
        cols = list(dict.fromkeys([*needed, *([weight] if weight else [])]))
        cols = [c for c in cols if c in frame.columns]
        cache["sub"] = frame[cols] if cache["all_rows"] else frame.loc[mask, cols]
    mask, sub = cache["mask"], cache["sub"]
    w = None
    if weight is not None:
        _require(frame, [weight], "weight")
        w = cache.get("weights")
        if w is None:
            w = cache["weights"] = sub[weight].to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(w).any() or (w < 0).any():
            raise ValidationError(f"weight column {weight!r}: missing or negative weights")
    bins = None
    if dimension is None:
        gcodes = np.zeros(len(sub), dtype=np.int64)
        col_labels = [ENSEMBLE_LABEL]
        dim_name = ENSEMBLE_DIMENSION
    else:
        _require(frame, [dimension], f"dimension of question {question.id}")
        gcodes, col_labels, bins = _level_dimension_codes(frame, dimension, mask, cache["all_rows"], level_cache,
                                                          cache["rows_key"])
        dim_name = dimension
    ctx = _Context(question, dim_name, col_labels, weight is not None, cache, bins)
    test_kw = (
        {"min_expected": min_expected, "permutations": permutations, "seed": seed}
        if (test and dimension is not None)
        else None
    )
    blocks, tests = _HANDLERS[question.type](ctx, sub, gcodes, w, confidence, test_kw)
    return blocks, tests, dim_name


def _question_table(blocks: list[dict[str, object]], tests: dict[str, AssociationTest], question: Question,
                    weighted: bool) -> QuestionTable:
    main = None if question.type == "multiple" else next(iter(tests.values()), None)
    return QuestionTable(cells=_cells_frame(blocks, weighted), test=main, option_tests=MappingProxyType(dict(tests)))


def tabulate_level(
    frame: pd.DataFrame,
    questions: Iterable[Question],
    dimensions: Sequence[str],
    *,
    codebook: Codebook | None = None,
    weight: str | None = None,
    confidence: float = 0.95,
    min_expected: float = 5,
    permutations: int = 9999,
    seed: int | None = DEFAULT_SEED,
) -> TabulationResult:
    """Tabulate questions of one level by « Ensemble » and by each dimension.

    Text questions are skipped, and a question is not crossed with itself
    (e.g. ``collectivity_type`` by ``collectivity_type``).

    Returns
    -------
    TabulationResult
        Cells ordered by question (given order), dimension (« ensemble » first,
        then ``dimensions`` order), statistic, answer, dimension value.
    """
    blocks: list[dict[str, object]] = []
    tests: list[tuple[str, str, str, AssociationTest]] = []
    level_cache: dict = {}  # the dimension codes of the frame, computed once for all its questions
    for q in questions:
        if q.type not in TABULATED_TYPES:
            continue
        cache: dict = {}  # the question's rows, codes and cells, computed once for all its dimensions
        for dim in (None, *dimensions):
            if dim is not None and dim == q.harmonised:
                continue
            q_blocks, q_tests, dim_name = _tabulate_question(
                frame, q, dim, codebook=codebook, filter_question=None, weight=weight, confidence=confidence,
                min_expected=min_expected, permutations=permutations, seed=seed, test=True, cache=cache,
                level_cache=level_cache,
            )
            blocks += q_blocks
            # the tests of a table with cells (QuestionTable.tests_frame)
            if dim is not None and any(len(b["count"]) for b in q_blocks):  # type: ignore[arg-type]
                tests += [(q.id, dim_name, key, t) for key, t in q_tests.items()]
    columns = CELL_COLUMNS + (WEIGHTED_COLUMNS if weight is not None else [])
    # one frame per level, not one per table (same rows, same dtypes as concatenating them)
    cell_frame = _cells_frame(blocks, weight is not None) if blocks else pd.DataFrame(columns=columns)
    return TabulationResult(cells=cell_frame, tests=_tests_frame(tests))


def tabulate_edition(
    frames: Mapping[str, pd.DataFrame],
    codebook: Codebook,
    dimensions: Mapping[str, Sequence[str]],
    weight: str | None = None,
    confidence: float = 0.95,
    *,
    min_expected: float = 5,
    permutations: int = 9999,
    seed: int | None = DEFAULT_SEED,
) -> TabulationResult:
    """Tabulate every question of an edition, level by level.

    Parameters
    ----------
    frames
        Processed frame by level (``respondent``, ``tool``, ``bp``); levels
        without a frame are skipped.
    codebook
        The edition's codebook (question order, filters).
    dimensions
        Dimension columns by level (``tabulation.dimensions`` in the config).
    weight
        Weight column (``None`` for 2017), required in every frame when given.
    confidence, min_expected, permutations, seed
        As in :func:`tabulate_question`.

    Returns
    -------
    TabulationResult
        All cells and tests, in codebook question order; within a question,
        by dimension (« ensemble » first, then ``dimensions[level]`` order),
        statistic, answer and dimension value.
    """
    levels: list[str] = []
    for q in codebook.questions:
        if q.level not in levels:
            levels.append(q.level)
    cells: list[pd.DataFrame] = []
    tests: list[pd.DataFrame] = []
    for level in levels:
        if level not in frames:
            continue
        res = tabulate_level(
            frames[level], codebook.at_level(level), list(dimensions.get(level, [])),
            codebook=codebook, weight=weight, confidence=confidence,
            min_expected=min_expected, permutations=permutations, seed=seed,
        )
        if not res.cells.empty:
            cells.append(res.cells)
        if not res.tests.empty:
            tests.append(res.tests)
    columns = CELL_COLUMNS + (WEIGHTED_COLUMNS if weight is not None else [])
    position = {q.id: i for i, q in enumerate(codebook.questions)}
    if cells:
        cell_frame = _in_codebook_order(pd.concat(cells, ignore_index=True), position)
    else:
        cell_frame = pd.DataFrame(columns=columns)
    test_frame = _in_codebook_order(pd.concat(tests, ignore_index=True), position) if tests else _empty_tests()
    return TabulationResult(cells=cell_frame, tests=test_frame)


def _in_codebook_order(frame: pd.DataFrame, position: Mapping[str, int]) -> pd.DataFrame:
    """Stable reordering of rows by the codebook position of their question."""
    pos = frame["question_id"].map(lambda qid: position.get(qid, len(position))).to_numpy(dtype=np.int64)
    return frame.iloc[np.argsort(pos, kind="stable")].reset_index(drop=True)
