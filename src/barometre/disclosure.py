"""Statistical disclosure control of the tabulated cells (« secret statistique »).

The rule: no published figure may come from fewer than ``min_cell`` respondents,
and no published figure may be recovered by subtracting published numbers.
Counts used here are **respondent counts** (``unweighted_count`` /
``unweighted_base`` when the tabulation is weighted, else ``count`` / ``base``).

Tables
------
For one question, statistic and dimension, a *table* has the answers as rows and
the dimension values plus the « Ensemble » column (the rows of dimension
``"ensemble"``, shared by every dimension of the question) as columns; the
published base of each column is its total. Statistics are handled by kind:

partition — ``share`` of single/ordinal/band questions, ``first_share`` of rankings
    Answers add up to the base, columns add up to « Ensemble ».
    Primary: ``0 < count < min_cell``. Secondary on rows **and** columns.
binary — ``share`` of multiple-response questions, ``top3_share`` of rankings
    Options are not additive: each cell is a pair (count, base − count).
    Primary: ``count`` or ``base − count`` in ``1 .. min_cell-1``. Secondary
    across the dimension columns (rows), and on columns too for ``top3_share``
    (the top-3 counts of a column add up to about three times its base).
mean — ``mean`` (numeric), ``mean_rank`` (ranking)
    Primary: fewer than ``min_cell`` contributing respondents. Secondary across
    the dimension columns (sums are additive). ``median`` follows ``mean``.
    A suppressed numeric cell also hides its base (which equals its count).
derived — ``top2_share``, ``cumulative_share``
    Published only when every share it is made of is published (so it brings no
    new information). For top-2 the components are the codebook's ``top2``
    categories when a codebook is given, else (conservatively) every category of
    the column. A cumulative share's base excludes NSP, so when the NSP cell of
    a column is suppressed every cumulative cell of that column and its base
    are hidden.

Columns: a column whose base is in ``1 .. min_cell-1`` is suppressed whole,
base included (``base_suppressed``), and so is the next smallest column of the
same dimension when it is the only hidden base (Ensemble base − other bases).

Secondary suppression iterates until stable: any line (row or column, totals
included) with exactly one suppressed cell gets its smallest non-zero
unsuppressed cell suppressed (ties: first in table order), or failing that a
zero cell; a column line with no unsuppressed cell left has its base (hence the
whole column) suppressed.

Limits: protection here is per question. Differencing **between** questions
(shared margins, filter bases, crosses published twice, figures, tests) is the
job of :mod:`barometre.publication`, which starts from these flags and adds
secondary suppressions until the attacker of :mod:`barometre.audit` can narrow
no cell of fewer than ``min_cell`` respondents.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from barometre.codebook import Codebook
from barometre.design import exclusive_base_problems, protect_exclusive_bases, split_exclusive
from barometre.errors import BarometreError

ENSEMBLE_DIMENSION = "ensemble"
MERGED_LABEL = "Autres (regroupés)"

PARTITION, BINARY, MEAN, FOLLOW, DERIVED = "partition", "binary", "mean", "follow", "derived"

#: Columns blanked in the publishable view of a suppressed cell / base.
CELL_VALUE_COLUMNS = ("count", "value", "ci_low", "ci_high", "unweighted_count")
BASE_COLUMNS = ("base", "effective_base", "unweighted_base")


def statistic_kind(statistic: str, question_type: str) -> str:
    """Disclosure kind of a statistic (see the module docstring)."""
    if statistic == "share":
        return BINARY if question_type == "multiple" else PARTITION
    return {
        "first_share": PARTITION,
        "top3_share": BINARY,
        "mean": MEAN,
        "mean_rank": MEAN,
        "median": FOLLOW,
        "top2_share": DERIVED,
        "cumulative_share": DERIVED,
    }.get(statistic, PARTITION)


def _has_column_lines(statistic: str, kind: str) -> bool:
    return kind == PARTITION or statistic == "top3_share"


# --------------------------------------------------------------------------- merge


def merge_small_categories(
    frame: pd.DataFrame, dimension: str, min_base: int = 3, label: str = MERGED_LABEL
) -> pd.DataFrame:
    """Merge the rare values of a dimension column into one category.

    Values held by ``1 .. min_base-1`` rows are merged into ``label``; if the
    merged group is itself still smaller than ``min_base``, the smallest other
    values are added to it until it is not (or nothing is left). Empty values
    are kept as they are. Category order is kept, ``label`` comes last.

    Parameters
    ----------
    frame
        Processed frame (not modified).
    dimension
        Name of a categorical column.
    min_base
        Smallest publishable number of rows (``disclosure.min_cell``).
    label
        French label of the merged category.

    Returns
    -------
    pandas.DataFrame
        A copy with the dimension column recoded.
    """
    if dimension not in frame.columns:
        raise BarometreError(f"merge_small_categories: no column {dimension!r}")
    series = frame[dimension]
    cat = series.astype("category") if not isinstance(series.dtype, pd.CategoricalDtype) else series
    categories = [str(c) for c in cat.cat.categories]
    codes = cat.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(categories))
    merged = {i for i, n in enumerate(counts) if 0 < n < min_base}
    out = frame.copy()
    if not merged:
        return out
    if label in categories:
        raise BarometreError(f"merge_small_categories: {dimension} already has a category {label!r}")
    while sum(counts[i] for i in merged) < min_base:
        rest = [i for i in range(len(categories)) if i not in merged and counts[i] > 0]
        if not rest:
            break
        merged.add(min(rest, key=lambda i: (counts[i], -i)))
    kept = [c for i, c in enumerate(categories) if i not in merged]
    values = series.astype(object).where(series.notna(), None)
    merged_labels = {categories[i] for i in merged}
    values = values.map(lambda v: label if v is not None and str(v) in merged_labels else v)
    out[dimension] = pd.Categorical(values, categories=[*kept, label], ordered=bool(cat.cat.ordered))
    return out


# --------------------------------------------------------------------------- index


@dataclass
class _Table:
    statistic: str
    dimension: str
    kind: str
    pos: np.ndarray  # answers × columns, positions into the question's cells (-1: absent)
    cols: np.ndarray  # column ids of pos's columns
    keys: list[str]


class _QuestionIndex:
    """Positions of one question's cells arranged as tables and columns."""

    def __init__(self, sub: pd.DataFrame, min_cell: int) -> None:
        self.m = min_cell
        self.n = _col(sub, "unweighted_count", "count")
        self.b = _col(sub, "unweighted_base", "base")
        self.stat = sub["statistic"].astype(str).to_numpy()
        self.key = sub["answer_key"].astype(str).to_numpy()
        self.dim = sub["dimension"].astype(str).to_numpy()
        dval = sub["dimension_value"].astype(str).to_numpy()
        self.qtype = str(sub["question_type"].iloc[0])
        self.qid = str(sub["question_id"].iloc[0])
        self.kind = np.array([statistic_kind(s, self.qtype) for s in self.stat])
        # columns
        colkeys = [
            (ENSEMBLE_DIMENSION, "") if d == ENSEMBLE_DIMENSION else (d, v) for d, v in zip(self.dim, dval, strict=True)
        ]
        self.col_names: list[tuple[str, str]] = []
        ids: dict[tuple[str, str], int] = {}
        for ck in colkeys:
            if ck not in ids:
                ids[ck] = len(self.col_names)
                self.col_names.append(ck)
        self.col = np.array([ids[ck] for ck in colkeys], dtype=np.int64)
        self.ens = ids.get((ENSEMBLE_DIMENSION, ""))
        n_cols = len(self.col_names)
        self.mainbase = np.zeros(n_cols)
        np.maximum.at(self.mainbase, self.col, np.nan_to_num(self.b))
        self.dims = [d for d in dict.fromkeys(self.dim) if d != ENSEMBLE_DIMENSION]
        ens_col = [self.ens] if self.ens is not None else []
        self.dim_cols = {
            d: [i for i, (dd, _) in enumerate(self.col_names) if dd == d] + ens_col for d in self.dims
        }
        self.tables: list[_Table] = []
        for s in dict.fromkeys(self.stat):
            kind = statistic_kind(s, self.qtype)
            for d in self.dims or [ENSEMBLE_DIMENSION]:
                self.tables.append(self._table(s, d, kind))
            if self.dims and self.ens is not None:
                self.tables.append(self._table(s, ENSEMBLE_DIMENSION, kind))

    def _table(self, s: str, d: str, kind: str) -> _Table:
        sel = np.flatnonzero((self.stat == s) & ((self.dim == d) | (self.dim == ENSEMBLE_DIMENSION)))
        keys = list(dict.fromkeys(self.key[sel]))
        cols = list(dict.fromkeys(self.col[sel]))
        if self.ens is not None and self.ens in cols:  # Ensemble last
            cols.remove(self.ens)
            cols.append(self.ens)
        kidx = {k: i for i, k in enumerate(keys)}
        cidx = {c: i for i, c in enumerate(cols)}
        pos = np.full((len(keys), len(cols)), -1, dtype=np.int64)
        for p in sel:
            pos[kidx[self.key[p]], cidx[self.col[p]]] = p
        return _Table(s, d, kind, pos, np.array(cols, dtype=np.int64), keys)

    # -- rules
    def primary(self) -> np.ndarray:
        small = (self.n > 0) & (self.n < self.m)
        comp = self.b - self.n
        pair = (comp > 0) & (comp < self.m) & (self.kind == BINARY)
        return small | pair

    def label(self, p: int) -> str:
        d, v = self.col_names[self.col[p]]
        where = "Ensemble" if d == ENSEMBLE_DIMENSION else f"{d} = « {v} »"
        return f"{self.qid} [{self.stat[p]}] {self.key[p]} × {where}"


def _col(sub: pd.DataFrame, preferred: str, fallback: str) -> np.ndarray:
    name = preferred if preferred in sub.columns else fallback
    return sub[name].to_numpy(dtype=float, na_value=np.nan)


def _lines(t: _Table) -> list[tuple[np.ndarray, int | None]]:
    """Lines of a table: (positions, column id whose base closes the line, or None)."""
    lines: list[tuple[np.ndarray, int | None]] = []
    if t.kind in (PARTITION, BINARY, MEAN):
        for r in range(t.pos.shape[0]):
            line = t.pos[r][t.pos[r] >= 0]
            if line.size >= 2:
                lines.append((line, None))
    if _has_column_lines(t.statistic, t.kind):
        for c in range(t.pos.shape[1]):
            line = t.pos[:, c][t.pos[:, c] >= 0]
            if line.size:
                lines.append((line, int(t.cols[c])))
    return lines


def _components(idx: _QuestionIndex, p: int, codebook: Codebook | None) -> tuple[np.ndarray, np.ndarray]:
    """Share cells a derived cell is made of, and cells whose suppression hides its base."""
    same = np.flatnonzero((idx.col == idx.col[p]) & (idx.stat == "share"))
    keys = idx.key[same]
    if idx.stat[p] == "top2_share":
        comp_keys: Sequence[str] | None = None
        if codebook is not None:
            try:
                comp_keys = codebook.question(idx.qid).top2 or None
            except BarometreError:
                comp_keys = None
        comp = same if comp_keys is None else same[np.isin(keys, list(comp_keys))]
        return comp, np.array([], dtype=np.int64)
    # cumulative: this band and every band before it (share order), NSP hides the base
    order = list(keys)
    if idx.key[p] not in order:
        return same, np.array([], dtype=np.int64)
    upto = order.index(idx.key[p])
    return same[: upto + 1], same[keys == "nsp"]


def _protect_question(idx: _QuestionIndex, codebook: Codebook | None) -> tuple[np.ndarray, np.ndarray]:
    m = idx.m
    n_cells = idx.n.size
    supp = idx.primary()
    colsupp = np.zeros(len(idx.col_names), dtype=bool)
    colsupp |= (idx.mainbase > 0) & (idx.mainbase < m)
    lines = [ln for t in idx.tables for ln in _lines(t)]
    mean_like = idx.kind == MEAN
    changed = True
    while changed:
        changed = False
        supp |= colsupp[idx.col]
        # base rows: the bases of one dimension add up to the Ensemble base
        for cols in idx.dim_cols.values():
            cols_a = np.array(cols, dtype=np.int64)
            if np.count_nonzero(colsupp[cols_a]) == 1:
                cand = cols_a[~colsupp[cols_a] & (idx.mainbase[cols_a] > 0)]
                if cand.size:
                    colsupp[cand[np.argmin(idx.mainbase[cand])]] = True
                    changed = True
        supp |= colsupp[idx.col]
        for line, base_col in lines:
            if base_col is not None and colsupp[base_col]:
                continue
            hidden = supp[line]
            if np.count_nonzero(hidden) != 1:
                continue
            cand = line[~hidden & (idx.n[line] > 0)]
            if not cand.size:  # only zeros left: hiding a zero still blocks the subtraction
                cand = line[~hidden]
            if cand.size:
                supp[cand[np.argmin(idx.n[cand])]] = True
                changed = True
            elif base_col is not None:
                colsupp[base_col] = True
                changed = True
    basesupp = colsupp[idx.col].copy()
    # median follows mean; a hidden numeric mean also hides its base (= count)
    for p in np.flatnonzero(idx.kind == FOLLOW).tolist():
        twin = np.flatnonzero((idx.col == idx.col[p]) & mean_like & (idx.stat == "mean"))
        if twin.size and supp[twin].any():
            supp[p] = True
    if idx.qtype == "numeric":
        basesupp |= supp
    # derived cells
    for p in np.flatnonzero(idx.kind == DERIVED).tolist():
        comp, base_comp = _components(idx, p, codebook)
        if base_comp.size and supp[base_comp].any():
            supp[p] = True
            basesupp[p] = True
        elif comp.size and supp[comp].any():
            supp[p] = True
    assert supp.size == n_cells
    return supp, basesupp


def _by_question(cells: pd.DataFrame) -> list[np.ndarray]:
    q = cells["question_id"].astype(str).to_numpy()
    return [np.flatnonzero(q == qid) for qid in dict.fromkeys(q)]


# --------------------------------------------------------------------------- public API


def apply_disclosure(
    cells: pd.DataFrame,
    *,
    min_cell: int = 3,
    small_base: int = 30,
    codebook: Codebook | None = None,
) -> pd.DataFrame:
    """Flag small bases and suppress disclosive cells (primary and secondary).

    Parameters
    ----------
    cells
        Long cells of :mod:`barometre.tabulate` (not modified).
    min_cell
        Smallest publishable number of respondents in a cell.
    small_base
        Bases (effective bases when weighted) under this are flagged
        « effectif faible ».
    codebook
        Optional: gives the exact components of ``top2_share`` cells.

    Returns
    -------
    pandas.DataFrame
        A copy with boolean columns ``small_base``, ``suppressed`` (count, value
        and interval must not be published) and ``base_suppressed`` (the base
        must not be published either). Use :func:`publishable` to blank them.
    """
    out = cells.copy()
    eff_col = "effective_base" if "effective_base" in cells.columns else "base"
    eff = cells[eff_col].to_numpy(dtype=float, na_value=np.nan)
    out["small_base"] = ~(eff >= small_base)
    supp = np.zeros(len(cells), dtype=bool)
    basesupp = np.zeros(len(cells), dtype=bool)
    parts = split_exclusive(cells, codebook)  # an exclusive NSP and the other options: two bases, two tables
    for rows in _by_question(parts):
        idx = _QuestionIndex(parts.iloc[rows], min_cell)
        s, b = _protect_question(idx, codebook)
        supp[rows] = s
        basesupp[rows] = b
    out["suppressed"] = supp
    out["base_suppressed"] = basesupp
    return protect_exclusive_bases(out, codebook)


def publishable(cells: pd.DataFrame) -> pd.DataFrame:
    """Copy of disclosure-checked cells with suppressed figures blanked (``NaN``).

    Counts, values and intervals of ``suppressed`` cells, and bases of
    ``base_suppressed`` cells, are set to ``NaN``.
    """
    if "suppressed" not in cells.columns:
        raise BarometreError("publishable: run apply_disclosure on the cells first")
    out = cells.copy()
    supp = out["suppressed"].to_numpy(dtype=bool)
    if "base_suppressed" in out.columns:
        bsupp = out["base_suppressed"].to_numpy(dtype=bool)
    else:
        bsupp = np.zeros_like(supp)
    for c in CELL_VALUE_COLUMNS:
        if c in out.columns:
            out[c] = out[c].astype(float).mask(supp)
    for c in BASE_COLUMNS:
        if c in out.columns:
            out[c] = out[c].astype(float).mask(bsupp)
    return out


def check_disclosure(cells: pd.DataFrame, min_cell: int = 3, *, codebook: Codebook | None = None) -> list[str]:
    """List every disclosure violation of a set of cells (empty list: safe).

    Checks, on the cells as they would be published (``suppressed`` /
    ``base_suppressed`` flags; all cells count as published without them):

    * a published cell from ``1 .. min_cell-1`` respondents (or, for binary
      kinds, a published complement ``base − count`` in that range);
    * a published base in ``1 .. min_cell-1``;
    * a line (row across dimension values and Ensemble, or column with its
      published base) holding exactly one suppressed cell, which a single
      subtraction would recover;
    * a dimension with exactly one hidden column base;
    * a published derived cell (top-2, cumulative) built on a suppressed share.

    Returns
    -------
    list of str
        One French-free, human-readable message per violation.
    """
    problems: list[str] = exclusive_base_problems(cells, codebook)
    has_flags = "suppressed" in cells.columns
    parts = split_exclusive(cells, codebook)
    for rows in _by_question(parts):
        sub = parts.iloc[rows]
        idx = _QuestionIndex(sub, min_cell)
        supp = sub["suppressed"].to_numpy(dtype=bool) if has_flags else np.zeros(len(sub), dtype=bool)
        bsupp = (
            sub["base_suppressed"].to_numpy(dtype=bool)
            if has_flags and "base_suppressed" in sub.columns
            else np.zeros(len(sub), dtype=bool)
        )
        for p in np.flatnonzero(idx.primary() & ~supp).tolist():
            problems.append(
                f"{idx.label(p)}: published cell from fewer than {min_cell} respondents "
                f"(count {idx.n[p]:g}, base {idx.b[p]:g})"
            )
        for p in np.flatnonzero((idx.b > 0) & (idx.b < min_cell) & ~bsupp).tolist():
            problems.append(f"{idx.label(p)}: published base {idx.b[p]:g} < {min_cell}")
        colhidden = np.zeros(len(idx.col_names), dtype=bool)
        counting = np.isin(idx.kind, [PARTITION, BINARY])
        np.logical_or.at(colhidden, idx.col, bsupp & counting)
        if idx.qtype == "numeric":
            np.logical_or.at(colhidden, idx.col, bsupp)
        for t in idx.tables:
            for line, base_col in _lines(t):
                if base_col is not None and colhidden[base_col]:
                    continue
                hidden = line[supp[line]]
                if hidden.size == 1:
                    where = "row" if base_col is None else "column"
                    problems.append(
                        f"{idx.label(int(hidden[0]))}: only suppressed cell of its {where}, recoverable by subtraction"
                    )
        for d, cols in idx.dim_cols.items():
            if np.count_nonzero(colhidden[cols]) == 1:
                problems.append(
                    f"{idx.qid} × {d}: exactly one hidden column base, recoverable from the Ensemble base"
                )
        for p in np.flatnonzero((idx.kind == DERIVED) & ~supp).tolist():
            comp, base_comp = _components(idx, p, codebook)
            if supp[comp].any() or supp[base_comp].any():
                problems.append(f"{idx.label(p)}: derived cell published while a component is suppressed")
    return problems
