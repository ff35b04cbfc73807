"""Publication layer: one disclosure policy for every published number of an edition.

Order of work, for one edition:

1. :func:`merge_maps` / :func:`apply_merges` — rare categories of a breakdown
   variable are merged *before* tabulation, with the same map in every level where
   the variable appears (respondents and tools), so that « Autres (regroupés) »
   means the same thing everywhere; the map is published (``regroupements.csv``).
2. :func:`protect` — primary suppression (cells of ``1 .. min_cell-1`` respondents,
   :mod:`barometre.disclosure`), then secondary suppression across *linked* tables:
   the attacker of :mod:`barometre.audit` is run on what would be published (cells,
   tests kept, exempt figures) and, as long as a masked cell can be narrowed
   below its protection level (upper and lower protection levels, as τ-ARGUS or
   sdcTable), the smallest published cell of a constraint that pins it is masked too.
3. :func:`publish_tests` — a test is published only when every cell of its table
   is published (then χ², n and the expected counts give nothing back); otherwise
   its statistics are blanked with « test non publié : secret statistique ».
4. :func:`publish_figures` — a named figure is published when it is exempt (a
   public fact or a figure the edition itself printed, with the reason), or when
   the published tables already determine it; otherwise it is blanked.

Cells of exempt levels or questions (counts that are not about persons) are
published as they are; every exemption carries its reason.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from barometre import audit
from barometre.codebook import Codebook
from barometre.disclosure import BINARY, MERGED_LABEL, apply_disclosure, publishable, statistic_kind

log = logging.getLogger("barometre")

REASON_MASKED = "secret statistique"
REASON_TEST = "test non publié : secret statistique"
REASON_FIGURE = "non publié : secret statistique"
PUBLISHED, SUPPRESSED, EXEMPT = "published", "suppressed", "exempt"
TEST_STAT_COLUMNS = ("statistic", "df", "pvalue", "n", "min_expected")
FIGURE_VALUE_COLUMNS = ("numerator", "denominator", "value", "ci_low", "ci_high")
MAX_ROUNDS = 60


@dataclass(frozen=True)
class Exemption:
    """Counts published as they are: a level, a question (optionally one dimension) or a figure."""

    reason: str
    level: str | None = None
    question: str | None = None
    dimension: str | None = None
    figure: str | None = None


@dataclass(frozen=True)
class Policy:
    """What the edition protects and how (``disclosure:`` of config.yaml, with its edition's overrides)."""

    min_cell: int = 3
    small_base: int = 30
    lower: float = 0.0
    upper: float = 3.0
    merge_label: str = MERGED_LABEL
    exemptions: tuple[Exemption, ...] = ()
    identities: tuple[Mapping, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, disclosure: Mapping, edition: str | None = None) -> Policy:
        """Global defaults, then ``disclosure.editions[edition]`` (lists are extended, values replaced)."""
        spec = {k: v for k, v in disclosure.items() if k != "editions"}
        over = dict((disclosure.get("editions") or {}).get(str(edition), {}) or {})
        for key in ("exemptions", "identities"):
            spec[key] = [*(spec.get(key) or []), *(over.pop(key, None) or [])]
        spec.update(over)
        m = int(spec.get("min_cell", 3))
        prot = spec.get("protection") or {}
        return cls(
            min_cell=m, small_base=int(spec.get("small_base", 30)),
            lower=float(prot.get("lower", 0)), upper=float(prot.get("upper", m)),
            merge_label=str(spec.get("merge_label", MERGED_LABEL)),
            exemptions=tuple(Exemption(**e) for e in spec.get("exemptions", [])),
            identities=tuple(spec.get("identities", [])),
        )


def policy_summary(policy: Policy) -> str:
    """Two or three French sentences for the methods note: what the policy protects and how."""
    n_ex = len(policy.exemptions)
    concern = "des comptes qui ne portent pas sur des personnes ou des chiffres publiés par l'édition elle-même."
    if n_ex > 1:
        ex = f" Les {n_ex} exceptions explicites, chacune avec son motif, concernent {concern}"
    elif n_ex == 1:
        ex = f" L'exception explicite, avec son motif, concerne {concern}"
    else:
        ex = ""
    return (
        f"Aucun chiffre publié ne repose sur moins de {policy.min_cell} répondants : les catégories trop rares des "
        f"variables de croisement sont regroupées (« {policy.merge_label} ») avant tout calcul, de la même façon dans "
        f"tous les tableaux, et les cellules trop petites sont masquées (« {REASON_MASKED} »). "
        "D'autres cellules sont masquées autour d'elles pour qu'aucune ne puisse être retrouvée en combinant les "
        "tableaux, les bases, les tests et les chiffres clés publiés ; un audit le vérifie avant publication par "
        "programmation linéaire en nombres entiers." + ex
    )


# --------------------------------------------------------------------------- merges


def merge_maps(
    frames: Mapping[str, pd.DataFrame], dimensions: Mapping[str, Sequence[str]], min_cell: int,
) -> dict[str, list[str]]:
    """Categories of each breakdown variable to merge, the same in every level where it appears.

    A category is merged when some level has ``1 .. min_cell-1`` rows in it; the
    merged group then grows (smallest category first, in the level where it is
    still too small) until every level has 0 or at least ``min_cell`` rows in it.

    Returns
    -------
    dict
        Dimension → merged categories, in their order (dimensions without a merge left out).
    """
    out: dict[str, list[str]] = {}
    variables = list(dict.fromkeys(d for dims in dimensions.values() for d in dims))
    for dim in variables:
        counts = [frames[lv][dim].astype(str).where(frames[lv][dim].notna()).value_counts()
                  for lv, dims in dimensions.items() if dim in dims and lv in frames and dim in frames[lv].columns]
        merged = {str(c) for vc in counts for c, n in vc.items() if 0 < n < min_cell}
        changed = bool(merged)
        while changed:
            changed = False
            for vc in counts:
                inside = int(vc[vc.index.isin(merged)].sum())
                rest = vc[~vc.index.isin(merged) & (vc > 0)]
                if 0 < inside < min_cell and len(rest):
                    merged.add(str(rest.sort_values(kind="stable").index[0]))
                    changed = True
        if merged:
            order = _categories(frames, dim)
            out[dim] = [c for c in order if c in merged]
    return out


def _categories(frames: Mapping[str, pd.DataFrame], dim: str) -> list[str]:
    cats: list[str] = []
    for frame in frames.values():
        if dim in frame.columns:
            s = frame[dim]
            vals = (
                [str(c) for c in s.cat.categories]
                if isinstance(s.dtype, pd.CategoricalDtype)
                else sorted(s.dropna().astype(str).unique())
            )
            cats += [c for c in vals if c not in cats]
    return cats


def apply_merges(frame: pd.DataFrame, maps: Mapping[str, Sequence[str]], label: str = MERGED_LABEL,
                 keep: str | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with each merged group of ``maps`` recoded to ``label`` (``keep``: left as is)."""
    out = frame.copy()
    for dim, members in maps.items():
        if dim == keep or dim not in out.columns:
            continue
        s = out[dim]
        cats = (
            [str(c) for c in s.cat.categories]
            if isinstance(s.dtype, pd.CategoricalDtype)
            else sorted(s.dropna().astype(str).unique())
        )
        in_group = s.notna() & s.astype(str).isin(members)
        values = s.astype(object).where(s.notna(), None).mask(in_group, label)
        out[dim] = pd.Categorical(values, categories=[*[c for c in cats if c not in members], label])
    return out


def merges_frame(maps: Mapping[str, Sequence[str]], label: str = MERGED_LABEL) -> pd.DataFrame:
    """The published merges: one row per merged group (``regroupements.csv``)."""
    return pd.DataFrame({"dimension": list(maps), "label": [label] * len(maps),
                         "categories": [" | ".join(m) for m in maps.values()]},
                        columns=["dimension", "label", "categories"])


# --------------------------------------------------------------------------- cells


def exempt_cells(cells: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Rows of ``cells`` covered by an exemption of the policy."""
    out = np.zeros(len(cells), dtype=bool)
    for e in policy.exemptions:
        if e.figure is not None:
            continue
        sel = np.ones(len(cells), dtype=bool)
        if e.level is not None:
            sel &= (cells["level"] == e.level).to_numpy()
        if e.question is not None:
            sel &= ((cells["question_id"] == e.question) | (cells["harmonised"] == e.question)).to_numpy()
        if e.dimension is not None:
            sel &= (cells["dimension"] == e.dimension).to_numpy()
        out |= sel
    return out


def primary_codes(cells: pd.DataFrame, min_cell: int) -> np.ndarray:
    """0: not a primary cell; 1: a count of ``1 .. min_cell-1``; 2: such a complement (options)."""
    n = cells["unweighted_count" if "unweighted_count" in cells else "count"].to_numpy(dtype=float)
    b = cells["unweighted_base" if "unweighted_base" in cells else "base"].to_numpy(dtype=float)
    binary = np.array(
        [statistic_kind(s, t) == BINARY for s, t in zip(cells["statistic"], cells["question_type"], strict=True)]
    )
    counting = ~cells["statistic"].isin(["mean", "median"]).to_numpy()
    small = (n > 0) & (n < min_cell) & counting
    comp = binary & (b - n > 0) & (b - n < min_cell)
    return np.where(small, 1, np.where(comp, 2, 0))


def publish_tests(flags: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """``tests`` with ``published`` and ``withheld_reason``; a test on a table with a masked cell is blanked."""
    hidden = flags["suppressed"].to_numpy(bool) | flags["base_suppressed"].to_numpy(bool)
    dims = flags["dimension"] != audit.ENSEMBLE
    stat_of = {"all": ("share", "mean"), "first": ("first_share",)}
    masked_tables = set()
    sel = flags[hidden & dims.to_numpy()]
    for r in sel[["question_id", "dimension", "statistic", "answer_key", "question_type"]].itertuples(index=False):
        masked_tables.add(
            (r.question_id, r.dimension, r.statistic, r.answer_key if r.question_type == "multiple" else "")
        )
    ok = []
    for t in tests.itertuples(index=False):
        stats = stat_of.get(str(t.answer_key), ("share",))
        key = "" if str(t.answer_key) in stat_of else str(t.answer_key)
        ok.append(not any((t.question_id, t.dimension, s, key) in masked_tables for s in stats))
    out = tests.copy()
    ok_a = np.array(ok, dtype=bool)
    for c in TEST_STAT_COLUMNS:
        if c in out.columns:
            out[c] = out[c].astype("float64").mask(~ok_a)
    out["published"] = ok_a
    out["withheld_reason"] = np.where(ok_a, "", REASON_TEST)
    return out


def _mask_var(flags: pd.DataFrame, system: audit.LinearSystem, var: int) -> None:
    """Mask every published place of unknown ``var``: its cells, or the whole column of its base."""
    supp = flags["suppressed"].to_numpy(bool).copy()
    bsupp = flags["base_suppressed"].to_numpy(bool).copy()
    colkey = (
        flags["question_id"].astype(str)
        + "\x1f"
        + flags["dimension"].astype(str)
        + "\x1f"
        + flags["dimension_value"].astype(str)
    )
    for pos, kind in system.origin.get(var, []):
        if kind == "count":
            supp[pos] = True
        else:
            col = (colkey == colkey.iloc[pos]).to_numpy()
            supp |= col
            bsupp |= col
    flags["suppressed"] = supp
    flags["base_suppressed"] = bsupp


def _rows_of(system: audit.LinearSystem) -> dict[int, list[int]]:
    rows_of: dict[int, list[int]] = {}
    for r, (coefs, _, _) in enumerate(system.rows):
        for i in coefs:
            rows_of.setdefault(i, []).append(r)
    return rows_of


def _candidate(system: audit.LinearSystem, rows_of: Mapping[int, list[int]], target: int,
               exempt_vars: set[int], min_cell: int) -> int | None:
    """The published unknown to mask so that ``target`` is no longer pinned: the smallest of its constraints."""
    frontier, seen = [target], {target}
    for _ in range(4):
        cands: list[tuple[int, float, int]] = []
        nxt = []
        for v in frontier:
            for r in rows_of.get(v, []):
                for j in system.rows[r][0]:
                    if j in seen:
                        continue
                    seen.add(j)
                    if j in system.known:
                        if j not in system.pinned and j not in exempt_vars and system.origin.get(j):
                            size = system.known[j]
                            # smallest cell that can absorb a protection range (≥ min_cell), else smallest non-zero
                            cands.append((0 if size >= min_cell else 1 if size > 0 else 2, size, j))
                    else:
                        nxt.append(j)
        if cands:
            return min(cands)[2]
        frontier = nxt
    return None


@dataclass
class Protected:
    """Outcome of :func:`protect`: flagged cells, published tests, the final audit."""

    cells: pd.DataFrame
    tests: pd.DataFrame
    audit: pd.DataFrame
    primary: np.ndarray


def protect(
    cells: pd.DataFrame, tests: pd.DataFrame, codebook: Codebook, policy: Policy,
    merges: Mapping[str, Mapping[str, Sequence[str]]], registry: Sequence[Mapping] = (),
    exempt_figures: pd.DataFrame | None = None,
) -> Protected:
    """Primary and secondary suppression over every linked table of an edition.

    Parameters
    ----------
    cells, tests
        Unprotected tabulation (not modified).
    merges
        Published merges, dimension → label → categories (:func:`barometre.audit.read_merges` form).
    registry, exempt_figures
        Figures published whatever the tables say (exemptions), and their registry entries.

    Returns
    -------
    Protected
        ``cells`` with ``small_base``, ``suppressed``, ``base_suppressed``, ``suppression_reason``
        and ``exempt``; tests with ``published`` / ``withheld_reason``; the last audit.
    """
    flags = apply_disclosure(cells, min_cell=policy.min_cell, small_base=policy.small_base, codebook=codebook)
    exempt = exempt_cells(cells, policy)
    flags.loc[exempt, ["suppressed", "base_suppressed"]] = False
    primary = np.where(exempt, 0, primary_codes(cells, policy.min_cell))
    # Masking more cells only widens the intervals: a cell once protected stays so, and each round
    # attacks only the cells that failed and the cells newly masked.
    caps = audit.exempt_caps(codebook, cells, exempt, primary, exempt_figures, registry, merges, policy.identities)
    todo = np.ones(len(cells), dtype=bool)
    for round_ in range(MAX_ROUNDS):
        public = publishable(flags)
        pub_tests = publish_tests(flags, tests)
        model, units = audit.build_model(
            codebook, public, pub_tests, exempt_figures, registry, merges, policy.identities
        )
        result = audit.audit_cells(model, units, public, primary, policy.lower, policy.upper, subset=todo, caps=caps)
        failed = result[result["status"] == audit.FAILED]
        if failed.empty:
            break
        before = public["count"].isna().to_numpy()
        exempt_vars = {u for p in np.flatnonzero(exempt).tolist() for u in units[p] if u is not None}
        rows_of = _rows_of(model.system)
        chosen = {
            c
            for t in failed["target"]
            for c in [_candidate(model.system, rows_of, int(t), exempt_vars, policy.min_cell)]
            if c is not None
        }
        if not chosen:
            break
        for var in sorted(chosen):
            _mask_var(flags, model.system, var)
        todo = np.zeros(len(cells), dtype=bool)
        todo[failed["position"].to_numpy(dtype=int)] = True
        todo |= publishable(flags)["count"].isna().to_numpy() & ~before
        log.info(
            "secondary suppression, round %d: %d cells still narrowed, %d more masked",
            round_ + 1,
            len(failed),
            len(chosen),
        )
    flags["suppression_reason"] = np.where(flags["suppressed"] | flags["base_suppressed"], REASON_MASKED, "")
    flags["exempt"] = exempt
    if "letters" in flags.columns:
        flags["letters"] = flags["letters"].astype(object).where(~flags["suppressed"], "")
    return Protected(cells=flags, tests=publish_tests(flags, tests), audit=result, primary=primary)


# --------------------------------------------------------------------------- figures


def figure_exemption(key: str, spec: Mapping, policy: Policy) -> Exemption | None:
    """The exemption covering a figure (by key, by level of its unit, or by its question's « Ensemble »)."""
    level = {"respondents": "respondent", "collectivities": "respondent", "tools": "tool", "bp": "bp"}.get(
        str(spec.get("unit"))
    )
    for e in policy.exemptions:
        if e.figure is not None:
            if e.figure in (key, key.partition(".")[0]):
                return e
        elif (e.level is not None and e.question is None and e.level == level
              and spec.get("unit") != "collectivities") or (
                e.question is not None and e.question == spec.get("question")
                and e.dimension in (None, audit.ENSEMBLE) and not spec.get("filter")):
            return e
    return None


def publish_figures(
    figures: pd.DataFrame, registry: Sequence[Mapping], codebook: Codebook, policy: Policy,
    cells: pd.DataFrame, tests: pd.DataFrame | None, merges: Mapping[str, Mapping[str, Sequence[str]]],
) -> pd.DataFrame:
    """``figures`` with ``disclosure_status`` and ``disclosure_reason``; a suppressed figure's numbers blanked.

    A figure is exempt (published with its reason), or published when the
    published tables and the figures already published determine its numerator
    and denominator; a figure that cannot be linked to the tables (another unit,
    a mean) is published when none of its counts is under ``min_cell``.
    """
    specs = {audit.figure_key(f): f for f in registry}
    status, reasons = [], []
    out = figures.copy()
    published_rows: list[dict] = []
    model, _ = audit.build_model(codebook, cells, tests, None, registry, merges, policy.identities)
    for f in figures.to_dict("records"):
        key = audit.figure_key(f)
        spec = specs.get(key, {})
        ex = figure_exemption(key, spec, policy) if spec else None
        terms = audit.figure_terms(model, spec) if spec else None
        if ex is not None:
            st, why = EXEMPT, ex.reason
        elif terms is not None:
            targets = [
                model.total(("fig", key, col), part)
                for part, col in zip(terms, ("numerator", "denominator"), strict=True)
                if part
            ]
            lo, hi = audit.feasible_intervals(model.system, targets)
            st, why = (PUBLISHED, "") if np.all(lo == hi) else (SUPPRESSED, REASON_FIGURE)
        else:
            st, why = (SUPPRESSED, REASON_FIGURE) if _small(f, policy.min_cell) else (PUBLISHED, "")
        if st != SUPPRESSED:
            published_rows.append(f)
            audit.add_figures(model, pd.DataFrame([f]), registry)
        status.append(st)
        reasons.append(why)
    out["disclosure_status"] = status
    out["disclosure_reason"] = reasons
    hide = out["disclosure_status"].to_numpy() == SUPPRESSED
    for c in FIGURE_VALUE_COLUMNS:
        if c in out.columns:
            out[c] = out[c].astype("float64").mask(hide)
    return out


def _small(figure: Mapping, min_cell: int) -> bool:
    num, den = float(figure.get("numerator", np.nan)), float(figure.get("denominator", np.nan))
    parts = [num, den, den - num] if figure.get("measure") == "share" else [num, den]
    return any(0 < p < min_cell for p in parts if not np.isnan(p))
