"""Disclosure audit: attack the published files as an outside researcher would.

Everything an edition publishes about counts of persons is turned into linear
constraints on unknown non-negative integers, and for every masked cell the
interval of values consistent with all of them is computed with an integer
program (:func:`scipy.optimize.milp`, HiGHS).

Unknowns are keyed by **what they count**, not by the table that prints them,
so that a cross published twice (Q01 × role and Q03 × collectivity type), a
filter base (agents by collectivity type) and a figure's numerator are the same
unknown wherever they appear:

``("J", level, conditions)``
    rows of ``level`` meeting every condition ``(variable, labels)`` (a label
    tuple of more than one element is a union: a merged category, a filter on
    several answers); ``J`` of a union equals the sum of its parts.
``("B", level, question, conditions)``
    rows of the question's population (its filter is one of the conditions) that
    answered it; ``B + non-response = J`` of the same conditions.

Constraints come from: answers adding up to their base (single questions); the
dimension columns adding up to « Ensemble » (a non-negative slack for rows whose
dimension value is missing, never more than the base's own slack); options,
rankings and their bases (``count ≤ base``); top-2 and cumulative shares as sums
of answers; shares published next to a known base or count; published tests
(``n``); published figures (numerator and denominator, linked through the
figures registry); identities between levels declared in the policy (e.g. the
number of tools described by each respondent adds up to the tools table); and
the published merges (« Autres (regroupés) » = the sum of its categories).
Means and medians are not attacked as values (they are not counts); their
counts are.

A masked cell marked as a primary one (a count of ``1 .. min_cell-1``) is
protected when its feasible interval reaches down to ``protection.lower`` and up
to ``protection.upper`` (by default ``[0, min_cell]``: the attacker cannot tell
whether nobody or at least ``min_cell`` respondents are in it); any other masked
cell when it is not pinned to one value.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from barometre.codebook import NSP_LABEL, Codebook, Question
from barometre.errors import BarometreError
from barometre.stats import MIN_RANK_GROUP

ENSEMBLE = "ensemble"
AUDIT_COLUMNS = [
    "question", "level", "dimension", "group", "answer", "statistic", "published_value",
    "feasible_min", "feasible_max", "protection_lower", "protection_upper", "rule", "status",
]
PROTECTED, FAILED = "protégé", "échec"
RULE_PRIMARY = "primaire : intervalle couvrant [{lo} ; {hi}]"
RULE_SECONDARY = "secondaire : masquée pour protéger une autre cellule, sans niveau de protection propre"

Cond = frozenset  # of (variable, tuple of labels)


class DisclosureAuditError(BarometreError):
    """Raised when a protected cell can be narrowed below its protection level."""


# --------------------------------------------------------------------------- linear system


@dataclass
class LinearSystem:
    """Non-negative integer unknowns, known values and linear constraints ``lo ≤ a·x ≤ hi``."""

    keys: list[Hashable] = field(default_factory=list)
    index: dict[Hashable, int] = field(default_factory=dict)
    known: dict[int, float] = field(default_factory=dict)
    rows: list[tuple[dict[int, float], float, float]] = field(default_factory=list)
    origin: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    conflicts: list[str] = field(default_factory=list)
    pinned: set[int] = field(default_factory=set)
    _made: set = field(default_factory=set)

    def var(self, key: Hashable) -> int:
        """Index of the unknown ``key`` (created on first use)."""
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.keys)
            self.keys.append(key)
        return i

    def fix(self, i: int, value: float, where: str = "", pinned: bool = False) -> None:
        """Record a published value of unknown ``i`` (a second, different value is a conflict).

        ``pinned``: published outside the tables (a test, a figure), so masking cells cannot hide it.
        """
        if pinned:
            self.pinned.add(i)
        old = self.known.get(i)
        if old is not None and abs(old - value) > 1e-6:
            self.conflicts.append(f"{where}: {value:g} published, {old:g} elsewhere for {self.keys[i]}")
        self.known[i] = float(value)

    def add(self, coefs: Mapping[int, float], lo: float, hi: float) -> None:
        """Constraint ``lo ≤ Σ coefs[i]·x_i ≤ hi``."""
        c = {i: v for i, v in coefs.items() if v}
        if c:
            self.rows.append((c, lo, hi))

    def eq(self, coefs: Mapping[int, float], rhs: float = 0.0) -> None:
        self.add(coefs, rhs, rhs)

    def once(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen (constraints added once)."""
        if key in self._made:
            return False
        self._made.add(key)
        return True


def _combine(*terms: tuple[float, Mapping[int, float]]) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    for w, coefs in terms:
        for i, v in coefs.items():
            out[i] += w * v
    return dict(out)


# --------------------------------------------------------------------------- semantic unknowns


@dataclass
class Model:
    """Builds the unknowns of one edition (codebook, merges, identities) into a :class:`LinearSystem`."""

    codebook: Codebook
    merges: Mapping[str, Mapping[str, Sequence[str]]]  # dimension → merged label → member labels
    system: LinearSystem = field(default_factory=LinearSystem)

    def cond(self, pairs: Iterable[tuple[str, Sequence[str] | str]]) -> Cond:
        out = []
        for var, labels in pairs:
            labs = (labels,) if isinstance(labels, str) else tuple(labels)
            if len(labs) == 1 and labs[0] in self.merges.get(var, {}):
                labs = tuple(self.merges[var][labs[0]])
            out.append((var, tuple(sorted(labs))))
        return frozenset(out)

    def filter_cond(self, q: Question) -> list[tuple[str, tuple[str, ...]]]:
        if q.filter is None:
            return []
        fq = self.codebook.question(q.filter.question)
        return [(fq.harmonised, tuple(fq.label_of(k) for k in q.filter.keys))]

    def J(self, level: str, cond: Cond) -> int:
        """Rows of ``level`` meeting ``cond``; a union condition is the sum of its parts."""
        s = self.system
        i = s.var(("J", level, cond))
        if s.once(("J", level, cond)):
            for var, labs in sorted(cond):
                if len(labs) > 1:
                    rest = cond - {(var, labs)}
                    parts = [self.J(level, rest | {(var, (lab,))}) for lab in labs]
                    s.eq(_combine((1, {i: 1}), *((-1, {p: 1}) for p in parts)))
                    break
        return i

    def B(self, level: str, q: Question, cond: Cond) -> int:
        """Rows of ``q``'s population meeting ``cond`` that answered ``q``."""
        s = self.system
        full = cond | self.cond(self.filter_cond(q))
        i = s.var(("B", level, q.id, full))
        if s.once(("B", level, q.id, full)):
            nr = s.var(("NR", level, q.id, full))
            s.eq({i: 1, nr: 1, self.J(level, full): -1})
            if q.type in ("single", "ordinal", "band"):
                parts = [self.answer(level, q, cond, lab) for lab in q.labels()]
                s.eq(_combine((1, {i: 1}), *((-1, {p: 1}) for p in parts)))
        return i

    def answer(self, level: str, q: Question, cond: Cond, label: str) -> int:
        """Rows of ``q``'s population meeting ``cond`` with answer ``label``."""
        return self.J(level, cond | self.cond([*self.filter_cond(q), (q.harmonised, label)]))

    def flag(self, level: str, q: Question, cond: Cond, what: str, item: str) -> int:
        """Option ticked / item ranked first, in the top 3, ranked at all (``count ≤ base``)."""
        s = self.system
        i = self.J(level, cond | self.cond([*self.filter_cond(q), (f"{q.harmonised}#{what}#{item}", "1")]))
        if s.once(("flag", i)):
            s.add({i: 1, self.B(level, q, cond): -1}, -math.inf, 0)
        return i

    def total(self, name: Hashable, coefs: Mapping[int, float]) -> int:
        """An unknown equal to a linear combination (top-2, cumulative, figure numerators)."""
        s = self.system
        i = s.var(("T", name))
        if s.once(("T", name)):
            s.eq(_combine((1, {i: 1}), (-1, coefs)))
        return i

    def ranking_links(self, level: str, q: Question, cond: Cond) -> None:
        s = self.system
        if not s.once(("rank", level, q.id, cond)):
            return
        b = self.B(level, q, cond)
        items = [c.key for c in q.codes]
        first = {k: self.flag(level, q, cond, "first", k) for k in items}
        top3 = {k: self.flag(level, q, cond, "top3", k) for k in items}
        ranked = {k: self.flag(level, q, cond, "ranked", k) for k in items}
        s.add(_combine((1, {v: 1 for v in first.values()}), (-1, {b: 1})), -math.inf, 0)
        s.add(_combine((1, {v: 1 for v in top3.values()}), (-3, {b: 1})), -math.inf, 0)
        for k in items:
            s.add({first[k]: 1, top3[k]: -1}, -math.inf, 0)
            s.add({top3[k]: 1, ranked[k]: -1}, -math.inf, 0)


def _column_cond(model: Model, dimension: str, value: str) -> Cond:
    return frozenset() if dimension == ENSEMBLE else model.cond([(dimension, value)])


def cell_unknowns(model: Model, cell: pd.Series) -> tuple[int | None, int | None]:
    """Unknowns (count, base) of one row of ``cells.csv`` (``None``: not a count)."""
    q = model.codebook.question(str(cell["question_id"]))
    level, stat, key = str(cell["level"]), str(cell["statistic"]), str(cell["answer_key"])
    # An attribute of the collectivity is counted once per collectivity: another population than the
    # respondents (its unknowns never meet theirs).
    if q.tabulation_unit == "collectivity":
        level = "collectivity"
    cond = _column_cond(model, str(cell["dimension"]), str(cell["dimension_value"]))
    if q.type == "numeric":
        b = model.B(level, q, cond)
        return b, b
    if q.type == "multiple":
        b = model.B(level, q, cond)
        exclusive = [o.key for o in q.options if o.exclusive]
        if not exclusive or key in exclusive:
            return model.flag(level, q, cond, "option", key), b
        # an exclusive answer (« ne se prononce pas ») leaves the base of every other option
        nsp = {model.flag(level, q, cond, "option", k): 1.0 for k in exclusive}
        sub = model.total(("msub", level, q.id, cond), _combine((1, {b: 1}), (-1, nsp)))
        c = model.flag(level, q, cond, "option", key)
        if model.system.once(("msub-flag", c)):
            model.system.add({c: 1, sub: -1}, -math.inf, 0)
        return c, sub
    if q.type == "ranking":
        model.ranking_links(level, q, cond)
        what = {"first_share": "first", "top3_share": "top3", "mean_rank": "ranked"}[stat]
        return model.flag(level, q, cond, what, key), model.B(level, q, cond)
    b = model.B(level, q, cond)
    labels = q.labels()
    keys = [c.key for c in q.codes] + (["nsp"] if len(labels) > len(q.codes) else [])
    if stat == "share":
        return model.answer(level, q, cond, str(cell["answer_label"])), b
    if stat == "top2_share":
        parts = {model.answer(level, q, cond, q.label_of(k)): 1.0 for k in q.top2}
        return model.total(("top2", level, q.id, cond), parts), b
    if stat == "cumulative_share":
        upto = keys.index(key) + 1
        parts = {model.answer(level, q, cond, lab): 1.0 for lab in labels[:upto]}
        # shares and cumulative shares of a band question have one base (every answer, « ne se prononce pas » included)
        return model.total(("cum", level, q.id, cond, key), parts), b
    return None, None


# --------------------------------------------------------------------------- published files → system


def _known_count(row: pd.Series) -> tuple[float, float]:
    """Count and base as published, a blank one recovered from the share when the other is known.

    In a weighted edition the persons are the unweighted count and base (published beside the
    weighted ones); a weighted share says nothing exact about them without the weights.
    """
    if "unweighted_count" in row.index:
        return row["unweighted_count"], row["unweighted_base"]
    count, base, value = row["count"], row["base"], row.get("value", np.nan)
    pct = str(row["statistic"]) not in ("mean", "median", "mean_rank")
    if pct and pd.notna(value):
        if pd.isna(count) and pd.notna(base):
            count = round(float(value) * float(base) / 100)
        elif pd.isna(base) and pd.notna(count) and float(value) > 0:
            base = round(float(count) * 100 / float(value))
    return count, base


def add_cells(model: Model, cells: pd.DataFrame) -> dict[int, tuple[int | None, int | None]]:
    """Every row of ``cells`` into the model: its unknowns, published values fixed; additivity over dimensions."""
    s = model.system
    units: dict[int, tuple[int | None, int | None]] = {}
    families: dict[tuple, dict[tuple[str, str], int]] = defaultdict(dict)
    for pos, row in enumerate(cells.itertuples(index=False)):
        r = pd.Series(row._asdict())
        c, b = cell_unknowns(model, r)
        units[pos] = (c, b)
        if c is None or b is None:  # not a count (cell_unknowns gives both unknowns or neither)
            continue
        where = f"{r['question_id']} {r['statistic']} {r['answer_key']} × {r['dimension_value']}"
        count, base = _known_count(r)
        s.origin[c].append((pos, "count"))
        s.origin[b].append((pos, "base"))
        if pd.notna(count):
            s.fix(c, float(count), where)
        if pd.notna(base):
            s.fix(b, float(base), where)
        dim = str(r["dimension"])
        col = (ENSEMBLE, "") if dim == ENSEMBLE else (dim, str(r["dimension_value"]))
        qid = str(r["question_id"])
        families[(qid, "count", str(r["statistic"]), str(r["answer_key"]))][col] = c
        families[(qid, "base", str(r["statistic"]), "")][col] = b
    _add_dimension_sums(model, families)
    return units


def _add_dimension_sums(model: Model, families: Mapping[tuple, Mapping[tuple[str, str], int]]) -> None:
    """Dimension columns add up to « Ensemble », up to the rows whose dimension value is missing."""
    s = model.system
    for fam, cols in families.items():
        qid = fam[0]
        total = cols.get((ENSEMBLE, ""))
        if total is None:
            continue
        by_dim: dict[str, list[int]] = defaultdict(list)
        for (dim, _), var in cols.items():
            if dim != ENSEMBLE:
                by_dim[dim].append(var)
        for dim, parts in by_dim.items():
            slack = s.var(("slack", qid, dim, fam))
            base_slack = s.var(("slack", qid, dim, (qid, "base", fam[2], "")))
            s.eq(_combine((1, {v: 1 for v in parts}), (1, {slack: 1}), (-1, {total: 1})))
            if fam[1] == "count":
                s.add({slack: 1, base_slack: -1}, -math.inf, 0)


def add_tests(model: Model, cells: pd.DataFrame, tests: pd.DataFrame) -> None:
    """A published test's ``n``: the rows of its table (dimension columns, NSP excluded)."""
    s = model.system
    values = cells.groupby(["question_id", "dimension"], sort=False)["dimension_value"].unique()
    levels = cells.groupby("question_id")["level"].first()
    col_base = cells.groupby(["question_id", "dimension", "dimension_value"], sort=False)["base"].first()
    for t in tests.itertuples(index=False):
        if pd.isna(t.n) or (str(t.question_id), str(t.dimension)) not in values.index:
            continue
        q = model.codebook.question(str(t.question_id))
        level = "collectivity" if q.tabulation_unit == "collectivity" else str(levels[t.question_id])
        terms: dict[int, float] = defaultdict(float)
        for v in values[(str(t.question_id), str(t.dimension))]:
            if q.type == "numeric":  # the rank test compares only the groups of MIN_RANK_GROUP values or more
                b = col_base.get((str(t.question_id), str(t.dimension), v))
                if b is not None and pd.notna(b) and float(b) < MIN_RANK_GROUP:
                    continue
            cond = model.cond([(str(t.dimension), str(v))])
            if q.type in ("single", "ordinal", "band"):
                for lab in q.labels(with_nsp=False):
                    terms[model.answer(level, q, cond, lab)] += 1
            elif q.type == "ranking":
                model.ranking_links(level, q, cond)
                for c in q.codes:
                    terms[model.flag(level, q, cond, "first", c.key)] += 1
            else:
                terms[model.B(level, q, cond)] += 1
                for o in q.options if q.type == "multiple" else ():
                    if o.exclusive and str(t.answer_key) != o.key:  # another option: tested among substantive answers
                        terms[model.flag(level, q, cond, "option", o.key)] -= 1
        s.fix(
            model.total(("test", t.question_id, t.dimension, t.answer_key), terms),
            float(t.n),
            f"test {t.question_id}",
            True,
        )


def figure_terms(model: Model, spec: Mapping) -> tuple[dict[int, float], dict[int, float]] | None:
    """Numerator and denominator of a registry figure as sums of unknowns (``None``: not linked)."""
    level = {"respondents": "respondent", "tools": "tool", "bp": "bp"}.get(str(spec["unit"]))
    if level is None:  # collectivities are another unit
        return None
    fcond: Cond = frozenset()
    if spec.get("filter"):
        fq = model.codebook.question(spec["filter"]["question"])
        fcond = model.cond([(fq.harmonised, [_label(fq, k) for k in spec["filter"]["keys"]])])
    measure = spec["measure"]
    if "question" not in spec:
        return ({model.J(level, fcond): 1.0}, {}) if measure == "count" else None
    q = model.codebook.question(spec["question"])
    if q.tabulation_unit == "collectivity":  # counted once per collectivity, as in the tables
        level = "collectivity"
    if q.type == "multiple":
        num = {model.flag(level, q, fcond, "option", spec["option"]): 1.0}
    elif q.type == "ranking" and spec.get("rank_max", 1) in (1, 3):
        model.ranking_links(level, q, fcond)
        num = {model.flag(level, q, fcond, "first" if spec.get("rank_max", 1) == 1 else "top3", spec["item"]): 1.0}
    elif q.is_categorical:
        num = {model.answer(level, q, fcond, _label(q, k)): 1.0 for k in spec["keys"]}
    else:
        return None
    if measure == "count":
        return num, {}
    base = spec.get("base", "answered")
    if base == "all":
        den = {model.J(level, fcond | model.cond(model.filter_cond(q))): 1.0}
    else:
        den = {model.B(level, q, fcond): 1.0}
        if base == "substantive" and q.is_categorical:
            den = _combine((1, den), (-1, {model.answer(level, q, fcond, NSP_LABEL): 1.0}))
        elif base == "substantive" and q.type == "multiple":
            den = _combine(
                (1, den), (-1, {model.flag(level, q, fcond, "option", o.key): 1.0 for o in q.options if o.exclusive})
            )
    if measure == "difference":
        minus = {model.answer(level, q, fcond, _label(q, k)): 1.0 for k in spec["minus_keys"]}
        num = _combine((1, num), (-1, minus))
    elif measure != "share":
        return None
    return num, den


def _label(q: Question, key: str) -> str:
    return NSP_LABEL if key == "nsp" and q.is_categorical else q.label_of(key)


def figure_key(figure: Mapping) -> str:
    comp = figure.get("component", "")
    comp = "" if comp is None or (isinstance(comp, float) and math.isnan(comp)) else str(comp)
    return f"{figure['id']}.{comp}" if comp else str(figure["id"])


def add_figures(model: Model, figures: pd.DataFrame, registry: Sequence[Mapping]) -> None:
    """Published numerators and denominators of the figures linked to counts."""
    specs = {figure_key(f): f for f in registry}
    s = model.system
    for f in figures.to_dict("records"):
        spec = specs.get(figure_key(f))
        terms = None if spec is None else figure_terms(model, spec)
        if terms is None:
            continue
        for part, col in zip(terms, ("numerator", "denominator"), strict=True):
            if part and pd.notna(f.get(col)):
                s.fix(model.total(("fig", figure_key(f), col), part), float(f[col]), f"figure {figure_key(f)}", True)


def add_identities(model: Model, cells: pd.DataFrame, identities: Sequence[Mapping]) -> None:
    """Declared identities between levels: Σ weight × rows answering each key = rows of another level."""
    for ident in identities:
        try:
            q = model.codebook.question(ident["question"])
        except BarometreError:  # an edition without the question (e.g. no tool blocks in 2018)
            continue
        target = ident["level"]
        if not (cells["level"] == target).any() or not set(ident["weights"]) <= {c.key for c in q.codes}:
            continue  # another questionnaire: the identity is not known to hold
        shared = set(cells.loc[cells["level"] == q.level, "dimension"]) & set(
            cells.loc[cells["level"] == target, "dimension"]
        )
        conds: list[Cond] = [frozenset()]
        for d in sorted(shared - {ENSEMBLE}):
            vals = cells.loc[(cells["level"] == target) & (cells["dimension"] == d), "dimension_value"].unique()
            conds += [model.cond([(d, str(v))]) for v in vals]
        for cond in conds:
            terms = {model.answer(q.level, q, cond, q.label_of(k)): float(w) for k, w in ident["weights"].items()}
            model.system.eq(_combine((1, terms), (-1, {model.J(target, cond): 1.0})))


# --------------------------------------------------------------------------- attack


def feasible_intervals(system: LinearSystem, targets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value of each target unknown consistent with the system (MILP, HiGHS).

    Known unknowns are substituted; each connected block of the remaining
    constraints is solved on its own. A known target gets its own value.

    Raises
    ------
    BarometreError
        When the published values contradict each other (no feasible point).
    """
    n = len(system.keys)
    known = np.full(n, np.nan)
    for i, v in system.known.items():
        known[i] = v
    unknown = np.flatnonzero(np.isnan(known))
    pos = np.full(n, -1)
    pos[unknown] = np.arange(unknown.size)
    r_idx: list[int] = []
    c_idx: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for coefs, lower, upper in system.rows:
        const = sum(v * known[i] for i, v in coefs.items() if not math.isnan(known[i]))
        free = [(pos[i], v) for i, v in coefs.items() if math.isnan(known[i])]
        if not free:
            if const < lower - 1e-6 or const > upper + 1e-6:
                terms = ", ".join(f"{v:g}×{system.keys[i]}={known[i]:g}" for i, v in coefs.items())
                raise BarometreError(
                    f"published values contradict a constraint: {const:g} not in [{lower:g}, {upper:g}] ({terms})"
                )
            continue
        k = len(lo)
        for p, v in free:
            r_idx.append(k)
            c_idx.append(p)
            vals.append(v)
        lo.append(lower - const)
        hi.append(upper - const)
    m = len(lo)
    A = csr_matrix(coo_matrix((vals, (r_idx, c_idx)), shape=(m, unknown.size)))
    adj = (A.T @ A).astype(bool) if m else csr_matrix((unknown.size, unknown.size))
    _, comp = connected_components(adj, directed=False) if unknown.size else (0, np.array([], dtype=int))
    row_comp = comp[A.indices[A.indptr[:-1]]] if m else np.array([], dtype=int)  # every row has a free unknown
    lo_a, hi_a = np.array(lo), np.array(hi)
    out_lo = np.full(len(targets), np.nan)
    out_hi = np.full(len(targets), np.nan)
    by_comp: dict[int, list[int]] = defaultdict(list)
    for t, i in enumerate(targets):
        if not math.isnan(known[i]):
            out_lo[t] = out_hi[t] = known[i]
        else:
            by_comp[int(comp[pos[i]])].append(t)
    for cid, ts in by_comp.items():
        cols = np.flatnonzero(comp == cid)
        rows = np.flatnonzero(row_comp == cid)
        sub = A[rows][:, cols]
        local = {int(c): j for j, c in enumerate(cols)}
        cons = [LinearConstraint(sub, lo_a[rows], hi_a[rows])] if rows.size else []
        for t in ts:
            j = local[int(pos[targets[t]])]
            for sign, out in ((1.0, out_lo), (-1.0, out_hi)):
                c = np.zeros(cols.size)
                c[j] = sign
                res = milp(c, constraints=cons, integrality=np.ones(cols.size), bounds=Bounds(0, np.inf))
                if res.status == 2:
                    raise BarometreError(
                        f"published values are inconsistent (no solution) around {system.keys[targets[t]]}"
                    )
                out[t] = sign * res.fun if res.status == 0 else (math.inf if sign < 0 else 0.0)
    return out_lo, out_hi


# --------------------------------------------------------------------------- the audit


def build_model(
    codebook: Codebook, cells: pd.DataFrame, tests: pd.DataFrame | None, figures: pd.DataFrame | None,
    registry: Sequence[Mapping], merges: Mapping[str, Mapping[str, Sequence[str]]], identities: Sequence[Mapping],
) -> tuple[Model, dict[int, tuple[int | None, int | None]]]:
    """The attacker's system for one edition, and the unknowns of each cell (by row position)."""
    model = Model(codebook, merges)
    units = add_cells(model, cells)
    if tests is not None:
        add_tests(model, cells, tests)
    # A weighted edition's figures are weighted sums, not counts of persons: not linked (a limit of the attacker).
    if figures is not None and "unweighted_count" not in cells.columns:
        add_figures(model, figures, registry)
    add_identities(model, cells, identities)
    return model, units


def read_published_cells(tables: str | Path) -> pd.DataFrame:
    """``cells.csv``, with every value a per-question CSV publishes and ``cells.csv`` leaves blank filled in."""
    tables = Path(tables)
    cells = pd.read_csv(tables / "cells.csv", keep_default_na=False, na_values=[""])
    keycols = ["question_id", "dimension", "dimension_value", "statistic", "answer_key"]
    for path in sorted(tables.glob("*.csv")):
        if path.name in ("cells.csv", "tests.csv", "regroupements.csv"):
            continue
        part = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if not set(keycols) <= set(part.columns):
            continue
        merged = cells[keycols].merge(part[[*keycols, "count", "base"]], on=keycols, how="left")
        for col in ("count", "base"):
            cells[col] = cells[col].fillna(pd.Series(merged[col].to_numpy(), index=cells.index))
    return cells


def read_merges(tables: str | Path) -> dict[str, dict[str, list[str]]]:
    """Published merges (``regroupements.csv``: dimension, label, categories joined by `` | ``)."""
    path = Path(tables) / "regroupements.csv"
    out: dict[str, dict[str, list[str]]] = defaultdict(dict)
    if path.exists():
        for r in pd.read_csv(path).itertuples(index=False):
            out[str(r.dimension)][str(r.label)] = str(r.categories).split(" | ")
    return dict(out)


def _count_unknowns(units: Mapping[int, tuple[int | None, int | None]], pos: int) -> tuple[int, int]:
    """The (count, base) unknowns of row ``pos`` of ``cells``, which must be a count."""
    c, b = units[pos]
    if c is None or b is None:
        raise BarometreError(f"row {pos} of the cells is not a count: it has no unknowns to attack")
    return c, b


def audit_cells(
    model: Model, units: Mapping[int, tuple[int | None, int | None]], cells: pd.DataFrame,
    primary: np.ndarray, lower: float, upper: float, subset: np.ndarray | None = None,
    caps: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per masked cell: its feasible interval, the rule it must meet and whether it does.

    ``subset``: only these rows of ``cells`` are attacked (all masked rows by default).
    ``caps``: per row, the interval the exempt counts alone leave (:func:`exempt_caps`); a
    protection level never asks for more than that.

    ``primary`` codes each row of ``cells``: 0 not primary, 1 a small count, 2 a small
    complement (``base − count``, options of multiple-response questions), whose
    interval is then the complement's. Column ``position`` gives the row of ``cells``.
    """
    s = model.system
    masked = cells["count"].isna().to_numpy() & np.array([units[p][0] is not None for p in range(len(cells))])
    if subset is not None:
        masked &= subset
    rows = np.flatnonzero(masked)
    targets = []
    for p in rows:
        c, b = _count_unknowns(units, int(p))
        if primary[p] == 2:
            targets.append(model.total(("complement", int(p)), {b: 1.0, c: -1.0}))
        else:
            targets.append(c)
    lo, hi = feasible_intervals(s, targets) if targets else (np.array([]), np.array([]))
    prim = primary[rows] > 0
    need_lo, need_hi = np.full(rows.size, float(lower)), np.full(rows.size, float(upper))
    if caps is not None:  # what the exempt counts alone already say: no masking can hide more
        need_lo = np.maximum(need_lo, caps[0][rows])
        need_hi = np.minimum(need_hi, caps[1][rows])
    # Secondary cells have no protection level of their own (as in τ-ARGUS): they hold counts of
    # at least min_cell, or zeros, which may be published.
    ok = np.where(prim, (lo <= need_lo) & (hi >= need_hi), True)
    sub = cells.iloc[rows]
    rule = np.where(primary[rows] == 2, RULE_PRIMARY.format(lo=f"{lower:g}", hi=f"{upper:g}") + " (complément)",
                    RULE_PRIMARY.format(lo=f"{lower:g}", hi=f"{upper:g}"))
    return pd.DataFrame({
        "question": sub["question_id"].to_numpy(), "level": sub["level"].to_numpy(),
        "dimension": sub["dimension"].to_numpy(), "group": sub["dimension_value"].to_numpy(),
        "answer": sub["answer_label"].to_numpy(), "statistic": sub["statistic"].to_numpy(),
        "published_value": "", "feasible_min": lo, "feasible_max": hi,
        "protection_lower": np.where(prim, need_lo, np.nan), "protection_upper": np.where(prim, need_hi, np.nan),
        "rule": np.where(prim, rule, RULE_SECONDARY),
        "status": np.where(ok, PROTECTED, FAILED), "position": rows, "target": targets,
    }, columns=[*AUDIT_COLUMNS, "position", "target"])


def audit_published(
    tables: str | Path, figures: str | Path, primary: str | Path, codebook: Codebook, registry: str | Path | None,
    disclosure: Mapping, edition: str,
) -> pd.DataFrame:
    """The audit of one edition from its files as published (and the list of its primary cells).

    Reads ``cells.csv`` (and every per-question CSV), ``tests.csv``, ``regroupements.csv``
    and ``figures.csv``; ``primary`` is the unpublished list of masked cells of fewer
    than ``min_cell`` units. Returns the ``disclosure_audit.csv`` table.
    """
    from barometre.figures import load_registry
    from barometre.publication import Policy

    policy = Policy.from_config(disclosure, edition)
    cells = read_published_cells(tables)
    tests = pd.read_csv(Path(tables) / "tests.csv", keep_default_na=False, na_values=[""])
    figs = pd.read_csv(figures, keep_default_na=False, na_values=[""])
    figs["component"] = figs["component"].fillna("")
    specs = load_registry(registry) if registry else []  # registry: is optional
    model, units = build_model(codebook, cells, tests, figs, specs, read_merges(tables),
                               policy.identities)
    keys = ["question_id", "dimension", "dimension_value", "statistic", "answer_key"]
    prim = pd.read_csv(primary, keep_default_na=False, na_values=[""])
    codes = cells[keys].astype(str).merge(prim.astype({k: str for k in keys}), on=keys, how="left")["primary"]
    primary_codes = codes.fillna(0).to_numpy(dtype=int)
    exempt = (
        cells["exempt"].astype(str).str.lower().eq("true").to_numpy()
        if "exempt" in cells
        else np.zeros(len(cells), bool)
    )
    ex_figs = figs[figs["disclosure_status"] == "exempt"] if "disclosure_status" in figs else None
    caps = exempt_caps(codebook, cells, exempt, primary_codes, ex_figs, specs, read_merges(tables),
                       policy.identities)
    table = audit_cells(model, units, cells, primary_codes, policy.lower, policy.upper, caps=caps)
    return table.drop(columns=["position", "target"])


def exempt_caps(
    codebook: Codebook, cells: pd.DataFrame, exempt: np.ndarray, primary: np.ndarray, figures: pd.DataFrame | None,
    registry: Sequence[Mapping], merges: Mapping[str, Mapping[str, Sequence[str]]], identities: Sequence[Mapping],
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``cells``: the feasible interval of its protected quantity when only exempt counts are published.

    A count of 1 under an exempt total of 1 (one forum, published as a public fact) cannot
    be protected up to ``min_cell``: its protection level is capped by this interval.
    """
    blank = cells.copy()
    for col in ("count", "base", "value", "ci_low", "ci_high", "unweighted_count", "unweighted_base"):
        if col in blank.columns:
            blank[col] = blank[col].astype(float).where(exempt)
    model, units = build_model(codebook, blank, None, figures, registry, merges, identities)
    rows = np.flatnonzero((primary > 0) & np.array([units[p][0] is not None for p in range(len(cells))]))
    pairs = [_count_unknowns(units, int(p)) for p in rows]
    targets = [model.total(("complement", int(p)), {b: 1.0, c: -1.0}) if primary[p] == 2 else c
               for p, (c, b) in zip(rows, pairs, strict=True)]
    lo_c, hi_c = np.full(len(cells), -np.inf), np.full(len(cells), np.inf)
    if targets:
        lo, hi = feasible_intervals(model.system, targets)
        lo_c[rows], hi_c[rows] = lo, hi
    return lo_c, hi_c


def audit_summary(path: str | Path) -> str:
    """One French sentence summing up ``disclosure_audit.csv`` for the technical note."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    n = len(table)
    failed = int((table["status"] == FAILED).sum())
    primary = int(table["protection_lower"].notna().sum())
    from barometre import fr

    verdict = (
        "pour chacune, les valeurs compatibles avec tout ce qui est publié couvrent encore tout l'intervalle protégé"
        if failed == 0
        else f"{fr.format_number(failed)} "
        + ("peuvent être resserrées" if failed > 1 else "peut être resserrée")
        + " en deçà de leur protection"
    )
    return (f"Audit du secret statistique : {fr.format_number(n)} cellules masquées (dont {fr.format_number(primary)} "
            f"sous le seuil de diffusion) ont été attaquées par programmation linéaire en nombres entiers à partir de "
            f"tous les fichiers publiés ; {verdict}.")
