"""Figures registry: named, defined figures computed from the processed tables.

Each figure of ``registry/figures_<edition>.yaml`` is computed into one
:class:`Figure` (numerator, denominator, value, Wilson interval) and, where the
edition published it, compared with the published bounds.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from barometre.codebook import NSP_LABEL, TYPE_LABELS, Codebook, Question
from barometre.errors import CodebookError, ConformityError, schema_problems

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_SCHEMA = ROOT / "schemas" / "registry.schema.json"

FIGURE_COLUMNS = [
    "id", "component", "definition", "reading", "unit", "measure", "question", "numerator_rule", "base_rule",
    "numerator", "denominator", "value", "ci_low", "ci_high", "published_quote", "published_value",
    "bound_low", "bound_high", "bounds_origin", "status", "published_key",
]

UNITS = {"respondents": "respondents", "collectivities": "respondents", "tools": "tools", "bp": "bp"}
UNIT_LABELS = {"respondents": "répondants", "collectivities": "collectivités", "tools": "outils", "bp": "territoires"}


@dataclass(frozen=True)
class Figure:
    """One computed figure.

    Attributes
    ----------
    id, component
        Registry id (R01…B09 reuse the published ids) and component for multi-valued figures.
    numerator, denominator
        Counts (or the sum for ``measure: sum``); denominator is NaN for counts.
    value
        Percentage (0–100) for shares and differences, else the count or sum.
    ci_low, ci_high
        95 % Wilson interval of a share (NaN otherwise).
    status
        ``pass`` / ``fail`` against the bounds, ``non publié`` when no bounds apply.
    published_key
        The published figure it is compared with (``id`` or ``id.component``; a registry
        entry may name another one with ``published:``), empty when there is none.
    """

    id: str
    component: str
    definition: str
    reading: str
    unit: str
    measure: str
    question: str
    numerator_rule: str
    base_rule: str
    numerator: float
    denominator: float
    value: float
    ci_low: float
    ci_high: float
    published_quote: str
    published_value: str
    bound_low: float
    bound_high: float
    bounds_origin: str
    status: str
    published_key: str = ""

    @property
    def key(self) -> str:
        """``id`` or ``id.component``."""
        return f"{self.id}.{self.component}" if self.component else self.id


def load_registry(path: str | Path) -> list[dict]:
    """Read and validate a figures registry.

    Raises
    ------
    CodebookError
        Naming the entry and field at fault.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = schema_problems(
        data,
        json.loads(REGISTRY_SCHEMA.read_text(encoding="utf-8")),
        entries="figures",
        label=lambda e, i: f"figure {e.get('id', i)}{'.' + e['component'] if e.get('component') else ''}",
    )
    if lines:
        raise CodebookError(f"{path}: invalid figures registry:\n  " + "\n  ".join(lines))
    keys = [(f["id"], f.get("component", "")) for f in data["figures"]]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise CodebookError(f"{path}: duplicated figure ids: {sorted(dup)}")
    return data["figures"]


def load_published(path: str | Path) -> dict[str, dict]:
    """Published figures of an edition by id (``references/published_<edition>.yaml``)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {f["id"]: f for f in data.get("figures", [])}


def _wilson(count: float, nobs: float, confidence: float) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    if not nobs or nobs <= 0 or np.isnan(nobs):
        return math.nan, math.nan
    low, high = proportion_confint(count, nobs, alpha=1 - confidence, method="wilson")
    return 100 * float(low), 100 * float(high)


def unit_frame(frames: dict[str, pd.DataFrame], unit: str, codebook: Codebook | None = None) -> pd.DataFrame:
    """Rows of the unit a figure counts: respondents, collectivities, tools or BP territories.

    ``collectivities`` keeps one respondent per distinct collectivity: with the
    codebook, by the tables' rule (:func:`barometre.design.collectivity_units`, the
    first complete response to the collectivity attributes); without, the first by
    respondent id.
    """
    frame = frames[UNITS[unit]]
    if unit == "collectivities":
        if codebook is not None:
            from barometre.design import collectivity_questions, collectivity_units

            return collectivity_units(frame, collectivity_questions(codebook)).frame
        frame = frame.sort_values("respondent_id", kind="stable").drop_duplicates("collectivity_id")
    return frame


def _labels(q: Question, keys: list[str]) -> list[str]:
    return [NSP_LABEL if k == "nsp" and q.is_categorical else q.label_of(k) for k in keys]


def _answer_masks(frame: pd.DataFrame, q: Question, spec: dict) -> tuple[pd.Series, pd.Series, str]:
    """Numerator and answered masks of one figure on ``frame`` (already filtered)."""
    if q.type == "multiple":
        col = f"{q.harmonised}__{spec['option']}"
        answered = frame[col].notna()
        num = frame[col].fillna(False).astype(bool)
        rule = f"{col} coché"
    elif q.type == "ranking":
        col = f"{q.harmonised}__{spec['item']}"
        # as in the tables: the base is every row that ranked at least one item, not only this one
        answered = frame[q.columns()].notna().any(axis=1)
        num = (frame[col] <= spec.get("rank_max", 1)).fillna(False).astype(bool)
        rule = f"{col} ≤ {spec.get('rank_max', 1)}"
    elif q.type == "numeric":
        col = q.harmonised
        answered = frame[col].notna()
        num = (frame[col] >= spec["min"]).fillna(False).astype(bool)
        rule = f"{col} ≥ {spec['min']}"
    else:
        col = q.harmonised
        labels = _labels(q, spec["keys"])
        answered = frame[col].notna()
        num = frame[col].isin(labels).astype(bool)
        rule = f"{col} ∈ {{{', '.join(labels)}}}"
    return num, answered, rule


def _ratio_values(frame: pd.DataFrame, variable: str, per: str | None) -> tuple[pd.Series, str]:
    """Known values of ``variable``, or of ``variable / per`` row by row (rows with ``per`` ≤ 0 left out).

    Returns
    -------
    values, rule
        The values (float) and the rule in words (« budget / population »).
    """
    num = pd.to_numeric(frame[variable], errors="coerce").astype("float64")
    if per is None:
        return num.dropna(), variable
    den = pd.to_numeric(frame[per], errors="coerce").astype("float64")
    keep = num.notna() & den.notna() & (den > 0)
    return (num[keep] / den[keep]), f"{variable} / {per}"


def compute_figure(spec: dict, frames: dict[str, pd.DataFrame], codebook: Codebook, confidence: float = 0.95,
                   weight: str | None = None) -> dict:
    """Compute one registry entry (without the published comparison).

    With ``weight`` (a weight column of the edition's frames), shares and
    differences are weighted; counts stay counts of rows.

    Returns
    -------
    dict
        numerator, denominator, value, ci_low, ci_high and the rules in words.
    """
    frame = unit_frame(frames, spec["unit"], codebook)
    filt = spec.get("filter")
    filter_rule = ""
    if filt:
        fq = codebook.question(filt["question"])
        labels = _labels(fq, filt["keys"])
        frame = frame[frame[fq.harmonised].isin(labels)]
        filter_rule = f" parmi {fq.harmonised} ∈ {{{', '.join(labels)}}}"
    measure = spec["measure"]
    out: dict[str, Any] = {"numerator": math.nan, "denominator": math.nan, "value": math.nan,
                           "ci_low": math.nan, "ci_high": math.nan, "numerator_rule": "", "base_rule": ""}
    if measure == "count" and "question" not in spec:
        out.update(
            numerator=float(len(frame)),
            value=float(len(frame)),
            numerator_rule=f"{UNIT_LABELS[spec['unit']]}{filter_rule}",
        )
        return out
    if measure in ("mean", "median"):
        values, rule = _ratio_values(frame, spec["variable"], spec.get("per"))
        n = float(len(values))
        v = (float(values.mean()) if measure == "mean" else float(values.median())) if n else math.nan
        word = "moyenne" if measure == "mean" else "médiane"
        out.update(numerator=math.nan, denominator=n, value=v,
                   numerator_rule=f"{word} de {rule}{filter_rule}",
                   base_rule=f"{UNIT_LABELS[spec['unit']]} dont {rule} est connu{filter_rule}")
        return out
    if measure in ("distinct", "sum"):
        col = spec["variable"]
        if measure == "distinct":
            v = float(frame[col].nunique(dropna=True))
            out.update(numerator=v, value=v, numerator_rule=f"valeurs distinctes de {col}{filter_rule}")
        else:
            v = float(pd.to_numeric(frame[col], errors="coerce").sum(skipna=True))
            out.update(numerator=v, value=v, numerator_rule=f"somme de {col}{filter_rule}")
        return out
    q = codebook.question(spec["question"])
    if q.filter is not None:
        fq = codebook.question(q.filter.question)
        frame = frame[frame[fq.harmonised].isin(_labels(fq, list(q.filter.keys)))]
        filter_rule += (
            f" (filtre du questionnaire : {fq.harmonised} ∈ {{{', '.join(_labels(fq, list(q.filter.keys)))}}})"
        )
    num, answered, rule = _answer_masks(frame, q, spec)
    out["numerator_rule"] = rule + filter_rule
    if measure == "count":
        n = float(num.sum())
        out.update(numerator=n, value=n)
        return out
    base_kind = spec.get("base", "answered")
    if base_kind == "answered":
        base = answered
        answered_words = (
            f"ayant classé au moins un élément de {q.id}" if q.type == "ranking" else f"ayant répondu à {q.id}"
        )
        out["base_rule"] = f"{UNIT_LABELS[spec['unit']]} {answered_words}{filter_rule}"
    elif base_kind == "substantive":
        if q.is_categorical:
            base = answered & (frame[q.harmonised] != NSP_LABEL)
        elif q.type == "multiple" and spec.get("option") not in {o.key for o in q.options if o.exclusive}:
            # the tables' base: an exclusive « ne se prononce pas » leaves the base of every other option
            exclusive = [f"{q.harmonised}__{o.key}" for o in q.options if o.exclusive]
            base = answered & ~frame[exclusive].fillna(False).astype(bool).any(axis=1) if exclusive else answered
        else:
            base = answered
        out["base_rule"] = (
            f"{UNIT_LABELS[spec['unit']]} ayant répondu à {q.id}, hors « ne se prononce pas »{filter_rule}"
        )
    else:
        base = pd.Series(True, index=frame.index)
        out["base_rule"] = f"tous les {UNIT_LABELS[spec['unit']]}{filter_rule}"
    if weight is not None and weight in frame.columns:  # a weighted edition: weighted shares (Wilson on Kish's base)
        from barometre.stats import effective_base

        w = frame[weight].to_numpy(dtype=float)
        n_base, n_num = float(w[base.to_numpy()].sum()), float(w[(num & base).to_numpy()].sum())
        n_eff = effective_base(w[base.to_numpy()])
        out["base_rule"] += f" (pondéré par {weight}, base effective {_number_text(round(n_eff, 1))})"
        if measure == "share":
            low, high = _wilson(n_num / n_base * n_eff if n_base else 0.0, n_eff, confidence)
            out.update(numerator=n_num, denominator=n_base, value=100 * n_num / n_base if n_base else math.nan,
                       ci_low=low, ci_high=high)
            return out
    else:
        n_base = float(base.sum())
        n_num = float((num & base).sum())
    if measure == "difference":
        minus = frame[q.harmonised].isin(_labels(q, spec["minus_keys"])) & base
        n_minus = float(minus.sum())
        out.update(numerator=n_num - n_minus, denominator=n_base,
                   value=100 * (n_num - n_minus) / n_base if n_base else math.nan,
                   numerator_rule=f"({rule}) − ({q.harmonised} ∈ {{{', '.join(_labels(q, spec['minus_keys']))}}})")
        return out
    low, high = _wilson(n_num, n_base, confidence)
    out.update(numerator=n_num, denominator=n_base, value=100 * n_num / n_base if n_base else math.nan,
               ci_low=low, ci_high=high)
    return out


def _published_bounds(pub: dict, component: str) -> tuple[float, float, str]:
    bounds = pub.get("bounds")
    value = pub.get("value")
    if component:
        if isinstance(bounds, dict):
            b = bounds.get(component)
            if b is None and component in ("population",):
                b = bounds.get(component)
            if b is not None:
                return (
                    float(b[0]),
                    (math.inf if b[1] is None else float(b[1])),
                    str(value.get(component, "") if isinstance(value, dict) else ""),
                )
        if bounds == "exact" and isinstance(value, dict) and component in value:
            v = float(value[component])
            return v, v, str(value[component])
        if isinstance(bounds, list):
            return (
                float(bounds[0]),
                (math.inf if bounds[1] is None else float(bounds[1])),
                str(value if value is not None else ""),
            )
        return math.nan, math.nan, ""
    if isinstance(bounds, list):
        return (
            float(bounds[0]),
            (math.inf if bounds[1] is None else float(bounds[1])),
            "" if value is None else str(value),
        )
    return math.nan, math.nan, ""


def compute_figures(
    registry: list[dict], frames: dict[str, pd.DataFrame], codebook: Codebook, published: dict[str, dict],
    confidence: float = 0.95, weight: str | None = None,
) -> list[Figure]:
    """Compute every figure of the registry and compare it with the published bounds (weighted with ``weight``)."""
    figures = []
    for spec in registry:
        comp = spec.get("component", "")
        res = compute_figure(spec, frames, codebook, confidence, weight)
        pub_ref = spec.get("published", {})
        pub = published.get(pub_ref.get("id", spec["id"]))
        pub_comp = pub_ref.get("component", comp)
        quote, pvalue, low, high, origin, pub_key = "", "", math.nan, math.nan, "", ""
        if pub is not None and pub.get("kind") != "text":
            low, high, pvalue = _published_bounds(pub, pub_comp)
            quote = pub.get("quote", "")
            origin = "publié"
            multi = isinstance(pub.get("value"), dict) or isinstance(pub.get("bounds"), dict)
            pub_id = str(pub_ref.get("id", spec["id"]))
            pub_key = f"{pub_id}.{pub_comp}" if (multi and pub_comp) else pub_id
        elif pub is not None:
            quote = pub.get("quote", "")
        if "bounds" in spec:
            low, high = float(spec["bounds"][0]), float(spec["bounds"][1])
            origin = "lecture du projet"
        value = res["value"]
        if math.isnan(low):
            status = "non publié" if pub is None else "texte"
        elif math.isnan(value):
            status = "fail"
        else:
            # Published bounds are rounding intervals; compare on the value rounded to 1e-9 to avoid float noise.
            v = round(value, 9)
            status = "pass" if low <= v <= high else "fail"
        q = spec.get("question", spec.get("variable", ""))
        figures.append(
            Figure(
                id=spec["id"],
                component=comp,
                definition=spec["definition"],
                reading=spec.get("reading", spec.get("bounds_reading", "")),
                unit=spec["unit"],
                measure=spec["measure"],
                question=str(q),
                numerator_rule=res["numerator_rule"],
                base_rule=res["base_rule"],
                numerator=res["numerator"],
                denominator=res["denominator"],
                value=value,
                ci_low=res["ci_low"],
                ci_high=res["ci_high"],
                published_quote=quote,
                published_value=pvalue,
                bound_low=low,
                bound_high=high,
                bounds_origin=origin,
                status=status,
                published_key=pub_key,
            )
        )
    return figures


def figures_frame(figures: list[Figure]) -> pd.DataFrame:
    """Figures as the ``figures.csv`` table, in registry order."""
    return pd.DataFrame([asdict(f) for f in figures], columns=FIGURE_COLUMNS)


def _key(r) -> str:
    return f"{r.id}.{r.component}" if isinstance(r.component, str) and r.component else str(r.id)


def _outside_bounds(table: pd.DataFrame) -> pd.Series:
    """Rows that have bounds and whose value is missing or outside them, recomputed from the numbers."""
    low = pd.to_numeric(table["bound_low"], errors="coerce")
    high = pd.to_numeric(table["bound_high"], errors="coerce")
    value = pd.to_numeric(table["value"], errors="coerce").round(9)
    bounded = low.notna() & high.notna()
    return bounded & ~((value >= low) & (value <= high)).fillna(False)


def conformity_failures(table: pd.DataFrame) -> list[str]:
    """Keys (``id`` or ``id.component``) of figures outside their bounds.

    A figure fails when its ``status`` says so *or* when its value, compared again
    with its bounds, lies outside them: a table edited or written by other code is
    never trusted on its word.
    """
    bad = table[(table["status"] == "fail") | _outside_bounds(table)]
    return [_key(r) for r in bad.itertuples()]


def published_keys(published: dict) -> list[str]:
    """Keys (``id`` or ``id.component``) of every numeric figure of a published reference."""
    keys = []
    for pub in published.get("figures", []):
        if pub.get("kind") == "text":
            continue
        value, bounds = pub.get("value"), pub.get("bounds")
        if isinstance(value, dict) or isinstance(bounds, dict):
            keys += [f"{pub['id']}.{c}" for c in (bounds if isinstance(bounds, dict) else value)]
        else:
            keys.append(str(pub["id"]))
    return keys


def missing_published(table: pd.DataFrame, published: dict) -> list[str]:
    """Numeric published figures the table does not compute (by ``id.component``, or by id for a whole figure).

    A figure computed under another registry id (``published:`` in the registry)
    counts for the published figure it is compared with (``published_key``).
    """
    keys = {_key(r) for r in table.itertuples()}
    if "published_key" in table.columns:
        keys |= {str(k) for k in table["published_key"].dropna() if str(k)}
    ids = {str(i) for i in table["id"]} | {k.partition(".")[0] for k in keys}
    return [k for k in published_keys(published) if k not in keys and not ("." not in k and k in ids)]


def assert_conformity(table: pd.DataFrame, edition: str, published: dict | None = None) -> None:
    """Raise when a figure falls outside its bounds, or a published figure is not computed.

    Each failing figure is named with its value, bounds, numerator and
    denominator (the bounds are compared again, whatever ``status`` says); with
    ``published`` (the edition's reference), each numeric published figure
    missing from the table is named too.
    """
    bad = table[(table["status"] == "fail") | _outside_bounds(table)]
    lines = [
        f"{_key(r)}: value {r.value:.3f} outside [{r.bound_low}, {r.bound_high}] ({r.numerator:g}/{r.denominator:g})"
        + ("" if r.status == "fail" else f" (figures.csv says status {r.status!r})")
        for r in bad.itertuples()
    ]
    missing = missing_published(table, published) if published is not None else []
    lines += [f"{k}: published for edition {edition} but not computed (no registry entry)" for k in missing]
    if lines:
        raise ConformityError(
            f"edition {edition}: {len(bad)} figure(s) outside published bounds, {len(missing)} published figure(s) "
            "not computed:\n  " + "\n  ".join(lines)
        )


def exclusions_summary(exclusions: pd.DataFrame) -> str:
    """The cleaning log's exclusions, counted by reason (« Réponse de test (3) ; … »); empty when none."""
    ex = exclusions[exclusions["action"].astype(str).str.startswith("exclu:")]
    return " ; ".join(f"{r} ({n})" for r, n in ex.groupby("reason").size().items())


def _treatments(exclusions: pd.DataFrame, question) -> list[tuple[str, str]]:
    """The cleaning log's treatments of ``question``'s variable (recodes, NSP conversions…), as (label, text) lines."""
    action = exclusions["action"].astype(str)
    ev = exclusions[(exclusions["column"] == question.harmonised) & ~action.str.startswith("exclu:")]
    return [("Traitement sur cette variable", f"{act} — {reason} ({n} ligne{'s' if n > 1 else ''})")
            for (act, reason), n in ev.groupby(["action", "reason"]).size().items()]


def explanation(
    figure: Mapping, entry: Mapping, codebook, exclusions: pd.DataFrame, *, tool_blocks: int | None,
    compact_blocks: bool = False, with_exclusions: bool = True, units_note: str = "",
) -> list[tuple[str, str]]:
    """How one figure is computed, as (label, text) lines in French: what ``explain`` prints.

    Parameters
    ----------
    figure
        A computed figure: a row of ``figures.csv`` or :func:`dataclasses.asdict` of a :class:`Figure`.
    entry
        Its registry entry (question or variable, restriction).
    codebook
        The edition's codebook (question wording, raw columns, questionnaire filter).
    exclusions
        The cleaning log (``action``, ``reason``, ``column``): exclusions and treatments.
    tool_blocks
        Number of tool blocks of the export (raw columns of a tool question, one set per block).
    compact_blocks
        Name the raw columns of a tool question once, with ``{i}`` for the block number
        (the report's appendix), instead of one set per block (``explain``).
    with_exclusions
        Include the exclusions of the cleaning (the same for every figure: the report's
        appendix says them once, with :func:`exclusions_summary`).
    units_note
        What the unit counts, e.g. « 98 collectivités distinctes pour 121 répondants »
        (:func:`units_note`); the unit is named even without it.
    """
    from barometre import fr

    lines: list[tuple[str, str]] = []
    question = codebook.question(entry["question"]) if entry.get("question") else None
    if question is not None:
        q = question
        lines.append((f"Question {q.id} ({q.harmonised}, {TYPE_LABELS.get(q.type, q.type)})", f"« {q.wording} »"))
        if q.level == "tool" and tool_blocks and compact_blocks:
            cols = ", ".join(q.raw_columns()) + f" (bloc outil {{i}} = 1 à {tool_blocks})"
        else:
            blocks = range(1, tool_blocks + 1) if (q.level == "tool" and tool_blocks) else [None]
            cols = ", ".join(c for b in blocks for c in q.raw_columns(b))
        lines.append(("Colonnes brutes", cols))
        if q.filter:
            lines.append(("Filtre du questionnaire", f"posée seulement si {q.filter.question} ∈ {list(q.filter.keys)}"))
    elif entry.get("variable"):
        lines.append(("Variable", str(entry["variable"])))
    unit = str(figure.get("unit", ""))
    unit_text = UNIT_WORDS.get(unit, UNIT_LABELS.get(unit, unit))
    lines.append(("Unité", unit_text + (f" — {units_note}" if units_note else "")))
    if entry.get("filter"):
        lines.append(("Restriction", f"{entry['filter']['question']} ∈ {entry['filter']['keys']}"))
    summary = exclusions_summary(exclusions) if with_exclusions else ""
    if summary:
        lines.append(("Exclusions appliquées au nettoyage", summary))
    if question is not None:
        lines += _treatments(exclusions, question)
    measure = figure["measure"]
    value, num, den = float(figure["value"]), float(figure["numerator"]), float(figure["denominator"])
    if measure in ("mean", "median"):
        lines.append(("Calcul", str(figure["numerator_rule"])))
    else:
        lines.append(("Numérateur", f"{figure['numerator_rule']} → {_number_text(num)}"))
    if not math.isnan(den):
        lines.append(("Dénominateur", f"{figure['base_rule']} → {_number_text(den)}"))
    if measure == "share":
        interval = fr.format_range(float(figure["ci_low"]), float(figure["ci_high"]))
        lines.append(("Valeur", f"{fr.format_percent(value)} (IC 95 % Wilson : {interval})"))
    elif measure == "difference":
        lines.append(("Valeur", f"{fr.format_decimal(value, 1)} points"))
    elif measure in ("mean", "median"):
        lines.append(("Valeur", fr.format_decimal(value, 3)))
    else:
        lines.append(("Valeur", fr.format_number(value)))
    if _present(figure.get("reading")):
        lines.append(("Lecture retenue", str(figure["reading"])))
    if _present(figure.get("published_quote")):
        lines.append(("Publié", f"« {figure['published_quote']} »"))
    low, high = float(figure["bound_low"]), float(figure["bound_high"])
    status = str(figure["status"])
    if not math.isnan(low):
        lines.append((f"Bornes ({figure['bounds_origin']})",
                      f"[{_number_text(low)} ; {_number_text(high)}] → {STATUS_LABELS.get(status, status)}"))
    else:
        lines.append(("Statut", STATUS_LABELS.get(status, status)))
    return lines


#: What each unit counts, in French (``explain``, the report's appendix).
UNIT_WORDS = {
    "respondents": "répondants (une ligne par questionnaire rempli)",
    "collectivities": ("collectivités (une ligne par collectivité : quand elle a plusieurs répondants, "
                       "la première réponse complète aux questions sur la collectivité)"),
    "tools": "outils décrits (une ligne par outil ; plusieurs outils par répondant)",
    "bp": "territoires à budget participatif (inventaire)",
}


def units_note(frames: Mapping[str, pd.DataFrame], codebook: Codebook, unit: str) -> str:
    """How many units a figure's unit holds, in French (« 98 collectivités distinctes pour 121 répondants »)."""
    from barometre import fr

    if unit == "collectivities":
        from barometre.design import collectivity_questions, collectivity_units

        u = collectivity_units(frames["respondents"], collectivity_questions(codebook))
        n_conf = u.conflicts["collectivity_id"].nunique() if len(u.conflicts) else 0
        return (
            f"{fr.format_number(u.n_collectivities)} collectivités distinctes pour {fr.format_number(u.n_rows)} "
            f"répondants ; réponses divergentes entre répondants d'une même collectivité : {fr.format_number(n_conf)}"
        )
    frame = frames.get(UNITS.get(unit, unit))
    if frame is None:
        return ""
    if unit == "tools" and "respondent_id" in frame.columns:
        respondents = fr.format_number(frame["respondent_id"].nunique())
        return f"{fr.format_number(len(frame))} outils décrits par {respondents} répondants"
    return f"{fr.format_number(len(frame))} {UNIT_LABELS.get(unit, unit)}"


#: What a figure's status says, in French (``explain``, the report's appendix).
STATUS_LABELS = {"pass": "conforme", "fail": "hors bornes", "non publié": "non publié", "texte": "texte seul"}


def _number_text(value: float) -> str:
    """A count, bound or amount as a French reader writes it: « 25,55 », « 4 452 610 », « +∞ »."""
    from barometre import fr

    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    if float(value).is_integer():
        return fr.format_number(value)
    return fr.format_decimal(value, 6).rstrip("0").rstrip(",")  # at most 6 decimals, trailing zeros dropped



def _present(text) -> bool:
    return isinstance(text, str) and text.strip() != ""
