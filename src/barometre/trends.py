"""Editions over time: harmonised indicators, their comparability, questionnaire differences, charts.

Three outputs under ``results/trends/`` (rules of ``rules/trends.smk``):

``trends.csv``
    One row per indicator of ``registry/trends.yaml`` and per edition: value,
    Wilson interval, base, whether the value is comparable with the other
    editions and, if not, why (French ``note``). Values are computed with the
    figures engine (:func:`barometre.figures.compute_figure`) on each edition's
    processed tables, so a trend value and the edition's registered figure of
    the same definition are the same number (checked).
``questionnaire_differences.csv``
    For every pair of editions and every harmonised variable: present in one
    questionnaire only, wording, type, answer keys, labels, raw codes, handling of
    « ne se prononce pas », filter, comparability flags — or ``identique``.
``charts/``
    One SVG per indicator comparable in at least two editions, and
    ``charts.json`` (title, alt text, caption, editions drawn).

Comparability of one edition's value (see :func:`comparability`): the indicator
must apply (question, answer keys and unit present in the edition), the
codebooks must not rule the comparison out (``comparable: false``,
``comparable_with``), the base must be built the same way (question type,
« ne se prononce pas », filter), and the registry must not mark the indicator
``comparable: false``. The most recent edition where the indicator applies is
the reference the others are compared with.
"""
from __future__ import annotations

import io
import json
import logging
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from barometre import fr
from barometre.codebook import Codebook, Question, load_codebook
from barometre.errors import BarometreError, schema_problems
from barometre.figures import UNIT_LABELS, compute_figure

log = logging.getLogger("barometre.trends")

ROOT = Path(__file__).resolve().parents[2]
TRENDS_SCHEMA = ROOT / "schemas" / "trends.schema.json"

TREND_COLUMNS = [
    "indicator", "label", "edition", "value", "value_label", "ci_low", "ci_high", "numerator", "base",
    "unit", "unit_label", "measure", "question", "question_id", "wording", "comparable", "note",
    "published_figure", "published_value", "figure_status", "synthetic",
]
DIFFERENCE_COLUMNS = [
    "harmonised", "label", "edition_a", "edition_b", "difference", "difference_label", "detail", "comparable", "note",
]
DIFFERENCE_LABELS = {
    "absente": "Question posée dans une seule des deux éditions",
    "niveau": "Niveau d'observation différent",
    "type": "Type de question différent",
    "formulation": "Formulation modifiée",
    "modalites": "Modalités ajoutées ou retirées",
    "libelles": "Libellés de modalités modifiés",
    "codes_bruts": "Codes bruts différents (harmonisés par les codebooks)",
    "nsp": "« Ne se prononce pas » traité différemment",
    "filtre": "Filtre différent",
    "non_comparable": "Marquée non comparable dans un codebook",
    "identique": "Identique",
}
LEVELS = {"respondents": "respondent", "collectivities": "respondent", "tools": "tool", "bp": "bp"}
LEVEL_ABSENT = {"respondent": "pas de questionnaire des répondants",
                "tool": "le questionnaire ne fait pas décrire d'outils",
                "bp": "pas d'inventaire des budgets participatifs"}
TYPE_FAMILIES = {"single": "modalités", "ordinal": "modalités", "band": "modalités", "multiple": "choix multiple",
                 "ranking": "classement", "numeric": "nombre", "text": "texte"}
FIGURE_FIELDS = ("unit", "measure", "question", "keys", "option", "item", "rank_max", "min", "variable", "per",
                 "base", "filter")


class TrendsError(BarometreError):
    """The trends registry is invalid, or a trend value disagrees with the edition's registered figure."""


# --------------------------------------------------------------------------- inputs


def load_trends_registry(path: str | Path) -> list[dict]:
    """Read and validate ``registry/trends.yaml`` (JSON schema, unique ids).

    Raises
    ------
    TrendsError
        Naming the indicator and field at fault.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = schema_problems(data, json.loads(TRENDS_SCHEMA.read_text(encoding="utf-8")), entries="indicators",
                            label=lambda e, i: f"indicator {e.get('id', i)}")
    if lines:
        raise TrendsError(f"{path}: invalid trends registry:\n  " + "\n  ".join(lines))
    ids = [i["id"] for i in data["indicators"]]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise TrendsError(f"{path}: duplicated indicator ids: {dup}")
    return data["indicators"]


@dataclass
class EditionData:
    """What the trends need of one edition."""

    edition: str
    codebook: Codebook
    frames: dict[str, pd.DataFrame]
    figures: pd.DataFrame | None = None
    synthetic: bool = True


def read_figures_table(path: str | Path) -> pd.DataFrame:
    """``figures.csv`` indexed by key (``id`` or ``id.component``)."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    table["component"] = table["component"].fillna("").astype(str)
    table["key"] = [f"{i}.{c}" if c else str(i) for i, c in zip(table["id"], table["component"], strict=True)]
    return table.set_index("key")


# --------------------------------------------------------------------------- one edition's value


def _question(codebook: Codebook, name: str | None) -> Question | None:
    """Question of harmonised name ``name`` (ids and chart ids are edition-specific: not accepted)."""
    if not name:
        return None
    return next((q for q in codebook.questions if q.harmonised == name), None)


def _answer_keys(q: Question) -> set[str]:
    keys = {c.key for c in q.codes} | {o.key for o in q.options}
    if q.is_categorical and q.shows_nsp:
        keys.add("nsp")
    return keys


def applicability(spec: dict, ed: EditionData) -> tuple[Question | None, str]:
    """Whether ``spec`` can be computed for edition ``ed``.

    Returns
    -------
    question, reason
        The codebook question the indicator reads (``None`` for an identifier
        such as ``collectivity_id``) and an empty reason, or ``None`` and the
        French reason why the indicator does not apply.
    """
    e = ed.edition
    level = LEVELS[spec["unit"]]
    if not ed.codebook.at_level(level):
        return None, f"{e} : {LEVEL_ABSENT[level]}"
    q = None
    if spec.get("question"):
        q = _question(ed.codebook, spec["question"])
        if q is None:
            return None, f"{e} : question {spec['question']} absente du questionnaire"
        if q.level != level:
            return None, f"{e} : question {spec['question']} posée au niveau {q.level}, pas {level}"
        wanted = list(spec.get("keys", [])) + [spec[k] for k in ("option", "item") if k in spec]
        missing = [k for k in wanted if k not in _answer_keys(q)]
        if missing:
            why = f"{e} : modalité(s) {', '.join(missing)} absente(s) du questionnaire"
            return None, why + (f" ({q.comparability_note.rstrip('.')})" if q.comparability_note else "")
    frame = ed.frames[{"respondent": "respondents", "tool": "tools", "bp": "bp"}[level]]
    for var in (spec.get("variable"), spec.get("per")):
        if var and var not in frame.columns:
            return None, f"{e} : variable {var} absente du questionnaire"
        vq = _question(ed.codebook, var)
        if vq is not None and q is None and var == spec.get("variable"):
            q = vq
    f = spec.get("filter")
    if f:
        fq = _question(ed.codebook, f["question"])
        if fq is None or any(k not in _answer_keys(fq) for k in f["keys"]):
            return None, f"{e} : filtre {f['question']} ∈ {f['keys']} impossible dans ce questionnaire"
    return q, ""


def base_signature(q: Question | None, spec: dict, codebook: Codebook) -> dict[str, Any]:
    """How the base of an indicator is built in one edition (compared across editions).

    Level, family of question type, « ne se prononce pas » in or out of the base
    (categorical questions with ``base: answered``), presence of an exclusive
    « ne se prononce pas » option (multiple response), and the question's filter.
    """
    if q is None:
        return {}
    sig: dict[str, Any] = {"niveau": q.level, "type": TYPE_FAMILIES[q.type]}
    if q.is_categorical and spec.get("base", "answered") == "answered":
        sig["nsp"] = "dans la base" if q.shows_nsp else "hors base"
    if q.type == "multiple":
        has_nsp = any(o.key == "nsp" for o in q.options)
        sig["nsp"] = "option « ne se prononce pas »" if has_nsp else "sans option « ne se prononce pas »"
    if q.filter is not None:
        fq = codebook.question(q.filter.question)
        sig["filtre"] = f"{fq.harmonised} ∈ {{{', '.join(sorted(q.filter.keys))}}}"
    else:
        sig["filtre"] = "aucun"
    return sig


def value_label(value: float, spec: dict) -> str:
    """The value in French: « 51,0 % », « 194 », « 1,82 € par habitant »."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fr.MISSING
    decimals = int(spec.get("decimals", 1))
    if spec["measure"] == "share":
        return fr.format_percent(value, decimals)
    if spec["measure"] in ("count", "distinct"):
        return fr.format_number(value, decimals)
    text = fr.format_decimal(value, decimals)
    return f"{text}{fr.NBSP}{spec['value_unit']}" if spec.get("value_unit") else text


def _figure_spec(spec: dict) -> dict:
    return {k: spec[k] for k in FIGURE_FIELDS if k in spec}


def _published(spec: dict, ed: EditionData, value: float) -> tuple[str, str, str]:
    """(figure key, published value, status) of the edition's registered figure of the same definition.

    Raises
    ------
    TrendsError
        When the edition's ``figures.csv`` lacks the figure or holds another value.
    """
    key = spec.get("published", {}).get(ed.edition)
    if not key or ed.figures is None:
        return "", "", ""
    if key not in ed.figures.index:
        raise TrendsError(f"indicator {spec['id']}: figure {key} not in results/{ed.edition}/figures.csv")
    row = ed.figures.loc[key]
    fig_value = float(row["value"]) if pd.notna(row["value"]) else math.nan
    same = (math.isnan(fig_value) and math.isnan(value)) or abs(fig_value - value) <= 1e-9 * max(1.0, abs(value))
    if not same:
        raise TrendsError(f"indicator {spec['id']}, edition {ed.edition}: value {value!r} differs from figure "
                          f"{key} ({fig_value!r}); the two definitions have drifted apart")
    pv = row.get("published_value", "")
    return key, "" if pd.isna(pv) else str(pv), str(row["status"])


# --------------------------------------------------------------------------- comparability


def comparability(spec: dict, questions: dict[str, Question | None], reasons: dict[str, str],
                  codebooks: dict[str, Codebook], editions: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """Comparable flag and French reason of each edition's value of one indicator.

    Parameters
    ----------
    spec
        The indicator.
    questions
        Question read in each edition (``None`` when it is an identifier or when the indicator does not apply).
    reasons
        Why the indicator does not apply, per edition (``""`` when it does).
    codebooks
        Codebook of each edition.
    editions
        Editions in chronological order.

    Returns
    -------
    dict
        ``{edition: (comparable, reason)}``.
    """
    out: dict[str, tuple[bool, str]] = {}
    candidates = []
    for e in editions:
        q = questions.get(e)
        if reasons.get(e):
            out[e] = (False, reasons[e])
        elif q is not None and not q.comparable:
            note = q.comparability_note.rstrip(".")
            out[e] = (False, f"{e} : question marquée non comparable" + (f" ({note})" if note else ""))
        else:
            candidates.append(e)
    if spec.get("comparable") is False:
        for e in candidates:
            out[e] = (False, spec["reason"])
        return out
    if not candidates:
        return out
    ref = candidates[-1]
    q_ref = questions.get(ref)
    sig_ref = base_signature(q_ref, spec, codebooks[ref])
    for e in candidates[:-1]:
        q = questions.get(e)
        why = []
        if q is not None and q_ref is not None:
            if not q.comparable_to(ref) or not q_ref.comparable_to(e):
                note = q.comparability_note or q_ref.comparability_note
                why.append(f"codebooks : {e} et {ref} déclarés non comparables"
                           + (f" ({note.rstrip('.')})" if note else ""))
            sig = base_signature(q, spec, codebooks[e])
            for k in sorted(set(sig) | set(sig_ref)):
                if sig.get(k) != sig_ref.get(k):
                    why.append(f"{k} : {sig.get(k, 'sans objet')} en {e}, {sig_ref.get(k, 'sans objet')} en {ref}")
        elif (q is None) != (q_ref is None):
            why.append(f"{e} et {ref} ne lisent pas la même variable")
        out[e] = (not why,
                  "base différente de l'édition de référence " + ref + " (" + " ; ".join(why) + ")" if why else "")
    others = [e for e in candidates[:-1] if out[e][0]]
    if others:
        out[ref] = (True, "")
    else:
        applying = len(candidates) + sum(1 for e in editions if e not in candidates and not reasons.get(e))
        out[ref] = (False, f"seule édition où l'indicateur s'applique ({ref})" if applying <= 1
                    else f"aucune autre édition comparable à {ref}")
    return out


# --------------------------------------------------------------------------- trends table


def _join_notes(*parts: str) -> str:
    seen: list[str] = []
    for p in parts:
        p = (p or "").strip()
        if p and p not in seen:
            seen.append(p)
    return " ".join(s if s.endswith(".") else s + "." for s in seen)


def compute_trends(registry: list[dict], data: dict[str, EditionData], editions: Sequence[str],
                   confidence: float = 0.95) -> pd.DataFrame:
    """Every indicator × edition, with value, interval, base and comparability.

    Parameters
    ----------
    registry
        Indicators (:func:`load_trends_registry`).
    data
        Processed tables, codebook, figures and synthetic flag of each edition.
    editions
        Editions in chronological order.
    confidence
        Level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TREND_COLUMNS`, indicators in registry order, editions in ``editions`` order.
    """
    codebooks = {e: data[e].codebook for e in editions}
    rows = []
    for spec in registry:
        questions, reasons, results = {}, {}, {}
        for e in editions:
            q, reason = applicability(spec, data[e])
            questions[e], reasons[e] = q, reason
            if not reason:
                results[e] = compute_figure(_figure_spec(spec), data[e].frames, data[e].codebook, confidence)
        flags = comparability(spec, questions, reasons, codebooks, editions)
        for e in editions:
            res = results.get(e)
            value = res["value"] if res else math.nan
            q = questions[e]
            comparable, reason = flags.get(e, (False, reasons[e]))
            pub_key, pub_value, status = _published(spec, data[e], value) if res else ("", "", "")
            caveat = q.comparability_note if (q is not None and comparable) else ""
            rows.append({
                "indicator": spec["id"], "label": spec["label"], "edition": str(e),
                "value": value, "value_label": value_label(value, spec),
                "ci_low": res["ci_low"] if res else math.nan, "ci_high": res["ci_high"] if res else math.nan,
                "numerator": res["numerator"] if res else math.nan, "base": res["denominator"] if res else math.nan,
                "unit": spec["unit"], "unit_label": UNIT_LABELS[spec["unit"]], "measure": spec["measure"],
                "question": spec.get("question", spec.get("variable", "")),
                "question_id": q.id if q is not None else "", "wording": q.wording if q is not None else "",
                "comparable": bool(comparable),
                "note": _join_notes(reason, spec.get("edition_notes", {}).get(e, ""), caveat, spec.get("note", "")),
                "published_figure": pub_key, "published_value": pub_value, "figure_status": status,
                "synthetic": bool(data[e].synthetic),
            })
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


# --------------------------------------------------------------------------- questionnaire differences


def _keys_labels(q: Question) -> dict[str, str]:
    return {c.key: c.label for c in q.codes} | {o.key: o.label for o in q.options}


def _pair_differences(qa: Question, qb: Question, a: str, b: str, ca: Codebook, cb: Codebook) -> list[tuple[str, str]]:
    """(kind, French detail) of every difference between two questions of the same harmonised name."""
    out: list[tuple[str, str]] = []
    if qa.level != qb.level:
        out.append(("niveau", f"{a} : {qa.level} ; {b} : {qb.level}"))
    if qa.type != qb.type:
        out.append(("type", f"{a} : {qa.type} ; {b} : {qb.type}"))
    if qa.wording.strip() != qb.wording.strip():
        out.append(("formulation", f"{a} : « {qa.wording} » ; {b} : « {qb.wording} »"))
    la, lb = _keys_labels(qa), _keys_labels(qb)
    added = [k for k in lb if k not in la]
    removed = [k for k in la if k not in lb]
    if added or removed:
        parts = []
        if added:
            parts.append(f"ajoutées en {b} : " + ", ".join(f"{k} ({lb[k]})" for k in added))
        if removed:
            parts.append(f"absentes en {b} : " + ", ".join(f"{k} ({la[k]})" for k in removed))
        out.append(("modalites", " ; ".join(parts)))
    relabelled = [k for k in la if k in lb and la[k] != lb[k]]
    if relabelled:
        out.append(("libelles", " ; ".join(f"{k} : « {la[k]} » → « {lb[k]} »" for k in relabelled)))
    codes_a, codes_b = {c.key: c.code for c in qa.codes}, {c.key: c.code for c in qb.codes}
    recoded = [k for k in codes_a if k in codes_b and str(codes_a[k]) != str(codes_b[k])]
    if recoded:
        out.append(("codes_bruts", ", ".join(f"{k} : {codes_a[k]} → {codes_b[k]}" for k in recoded)))
    if qa.is_categorical and qb.is_categorical and qa.nsp != qb.nsp:
        words = {"show": "modalité à part entière", "drop": "non-réponse"}
        out.append(("nsp", f"{a} : {words[qa.nsp]} ; {b} : {words[qb.nsp]}"))

    def filt(q: Question, c: Codebook) -> str:
        if q.filter is None:
            return "aucun"
        return f"{c.question(q.filter.question).harmonised} ∈ {{{', '.join(sorted(q.filter.keys))}}}"

    if filt(qa, ca) != filt(qb, cb):
        out.append(("filtre", f"{a} : {filt(qa, ca)} ; {b} : {filt(qb, cb)}"))
    if not (qa.comparable_to(b) and qb.comparable_to(a)):
        out.append(("non_comparable", qa.comparability_note or qb.comparability_note or "comparable: false"))
    return out


def questionnaire_differences(codebooks: dict[str, Codebook], editions: Sequence[str]) -> pd.DataFrame:
    """Differences between the questionnaires of every pair of editions (older first).

    One row per harmonised variable and difference; ``identique`` when there is
    none. ``comparable`` says whether the variable may be compared between the two
    editions at all (same level and type family, no codebook flag against it);
    individual answer keys may still be missing (``modalites``).
    """
    rows = []
    for i, a in enumerate(editions):
        for b in editions[i + 1:]:
            ca, cb = codebooks[a], codebooks[b]
            names = list(dict.fromkeys([q.harmonised for q in cb.questions] + [q.harmonised for q in ca.questions]))
            for name in names:
                qa, qb = _question(ca, name), _question(cb, name)
                either = qb or qa
                assert either is not None  # the name comes from one of the two codebooks
                label = either.wording
                notes = _join_notes(*(q.comparability_note for q in (qa, qb) if q is not None))
                if qa is None or qb is None:
                    where = b if qa is None else a
                    rows.append({"harmonised": name, "label": label, "edition_a": a, "edition_b": b,
                                 "difference": "absente", "difference_label": DIFFERENCE_LABELS["absente"],
                                 "detail": f"posée en {where} seulement", "comparable": False, "note": notes})
                    continue
                diffs = _pair_differences(qa, qb, a, b, ca, cb)
                comparable = (qa.comparable_to(b) and qb.comparable_to(a) and qa.level == qb.level
                              and TYPE_FAMILIES[qa.type] == TYPE_FAMILIES[qb.type])
                for kind, detail in diffs or [("identique", "")]:
                    rows.append({"harmonised": name, "label": label, "edition_a": a, "edition_b": b,
                                 "difference": kind, "difference_label": DIFFERENCE_LABELS[kind], "detail": detail,
                                 "comparable": bool(comparable), "note": notes})
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


# --------------------------------------------------------------------------- charts


FOOTNOTE_WRAP = 110
SYNTHETIC_NOTE = "Données synthétiques"


def _wrap(text: str, width: int = FOOTNOTE_WRAP) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False))


def chart_indicators(trends: pd.DataFrame) -> list[str]:
    """Indicators comparable in at least two editions (one chart each), in table order."""
    counts = trends[trends["comparable"]].groupby("indicator", sort=False).size()
    return [i for i in dict.fromkeys(trends["indicator"]) if counts.get(i, 0) >= 2]


def draw_trend_chart(rows: pd.DataFrame, order: int = 0) -> dict[str, Any]:
    """One indicator's chart: its comparable editions as points (with the 95 % interval of a share).

    Parameters
    ----------
    rows
        The indicator's rows of ``trends.csv`` (all editions).
    order
        Position of the chart in the manifest.

    Returns
    -------
    dict
        Manifest entry (``id``, ``title``, ``alt``, ``caption``, ``file``, ``editions``…) and ``svg``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from barometre.charts import BASE_STYLE, MUTED_COLOUR, OKABE_ITO, TEXT_COLOUR, accessible_svg, check_layout

    ind = str(rows["indicator"].iloc[0])
    title = str(rows["label"].iloc[0])
    measure = str(rows["measure"].iloc[0])
    unit_label = str(rows["unit_label"].iloc[0])
    shown = rows[rows["comparable"]]
    hidden = rows[~rows["comparable"]]
    synthetic = bool(rows["synthetic"].any())
    editions = [str(e) for e in shown["edition"]]
    values = [float(v) for v in shown["value"]]
    is_share = measure == "share"

    bases = [
        f"{e} : n{fr.NBSP}={fr.NBSP}{fr.format_number(b)} {unit_label}"
        for e, b in zip(editions, shown["base"], strict=True)
        if pd.notna(b)
    ]
    notes = []
    if bases:
        notes.append("Base : " + " ; ".join(bases) + ".")
    if is_share:
        notes.append("Barres : intervalle de confiance à 95 % (Wilson), indicatif sur un échantillon non aléatoire.")
    notes.append("Points non reliés : bases et questionnaires diffèrent d'une édition à l'autre.")
    for r in hidden.itertuples():
        why = "non comparable" if pd.notna(r.value) else "indicateur non mesuré"
        notes.append(f"{r.edition} non représentée : {why} (raison dans le tableau).")
    footnote = _wrap(" ".join(notes))
    if synthetic:
        footnote += f"\n{SYNTHETIC_NOTE}"

    # Any keys: matplotlib types rc_context keys as a Literal of every rcParam name
    style: dict[Any, Any] = {**BASE_STYLE, "svg.hashsalt": f"barometre-trends-{ind}", "svg.id": f"trend-{ind}-svg"}
    height = 2.6 + 0.16 * (footnote.count("\n") + 1)
    with plt.rc_context(style):
        fig, ax = plt.subplots(figsize=(6.3, height), layout="constrained")
        x = list(range(len(editions)))
        colour = OKABE_ITO["blue"]
        # Each edition is a point on its own, never joined by a line: their bases and questionnaires differ.
        sns.scatterplot(x=x, y=values, ax=ax, color=colour, s=48, zorder=3, legend=False)
        if is_share:
            lo = [v - float(low) for v, low in zip(values, shown["ci_low"], strict=True)]
            hi = [float(h) - v for v, h in zip(values, shown["ci_high"], strict=True)]
            ax.errorbar(x, values, yerr=[lo, hi], fmt="none", ecolor=OKABE_ITO["sky_blue"], elinewidth=1.2,
                        capsize=4, zorder=2)
            ax.set_yticks([0, 20, 40, 60, 80, 100])
            ax.set_ylim(0, 108)
            ax.set_ylabel("Part (%)")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fr.format_number(v)))
            tops = [float(h) for h in shown["ci_high"]]
        else:
            top = max(values) if values and max(values) > 0 else 1.0
            ticks = [t for t in matplotlib.ticker.MaxNLocator(5).tick_values(0, top * 1.2) if t >= 0]
            ax.set_yticks(ticks)
            ax.set_ylim(0, max(ticks[-1], top * 1.2))
            ax.set_ylabel(
                "Nombre" if measure in ("count", "distinct") else str(rows["value_label"].iloc[0]).split(fr.NBSP, 1)[-1]
            )
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fr.format_number(v)))
            tops = values
        for xi, t, label in zip(x, tops, shown["value_label"], strict=True):
            ax.annotate(str(label), (xi, t), xytext=(0, 6), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8.5, color=TEXT_COLOUR)
        ax.set_xticks(x, labels=editions)
        ax.set_xlim(-0.5, len(editions) - 0.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.5)
        ax.set_axisbelow(True)
        fig.supxlabel(footnote, x=0.005, ha="left", fontsize=7, color=MUTED_COLOUR, linespacing=1.4)
        check_layout(fig, ind)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "barometre (matplotlib)"})
        plt.close(fig)
    pairs = " ; ".join(f"{e} : {lab}" for e, lab in zip(editions, shown["value_label"], strict=True))
    alt = f"{title}, par édition : {pairs}."
    if len(hidden):
        alt += " Éditions non représentées (non comparables) : " + ", ".join(str(e) for e in hidden["edition"]) + "."
    svg = accessible_svg(buf.getvalue(), f"trend-{ind}", title, alt)
    return {
        "id": ind,
        "title": title,
        "alt": alt,
        "caption": " ".join(notes) + (f" {SYNTHETIC_NOTE}." if synthetic else ""),
        "file": f"{ind}.svg",
        "editions": editions,
        "excluded_editions": [str(e) for e in hidden["edition"]],
        "measure": measure,
        "synthetic": synthetic,
        "order": order,
        "svg": svg,
    }


def write_trend_charts(trends: pd.DataFrame, out_dir: str | Path) -> Path:
    """One SVG per chartable indicator plus ``charts.json``; returns the manifest path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.svg"):
        old.unlink()
    charts = []
    for k, ind in enumerate(chart_indicators(trends), start=1):
        chart = draw_trend_chart(trends[trends["indicator"] == ind], order=k)
        (out / chart["file"]).write_text(chart.pop("svg"), encoding="utf-8")
        charts.append(chart)
    path = out / "charts.json"
    path.write_text(json.dumps({"charts": charts}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_trends(path: str | Path) -> pd.DataFrame:
    """Read ``trends.csv`` back (flags as booleans, texts never turned into NaN)."""
    texts = ("note", "published_figure", "published_value", "figure_status", "question_id", "wording")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"edition": str, **{c: str for c in texts}})
    for col in ("comparable", "synthetic"):
        table[col] = table[col].astype(str).str.lower().isin(("true", "1"))
    for col in texts:
        table[col] = table[col].fillna("").astype(str)
    return table


# --------------------------------------------------------------------------- rules


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def run_compare_questionnaires(editions: Sequence[str], inputs: dict[str, Any], outputs: dict[str, str]) -> None:
    """Rule ``compare_questionnaires``: codebooks → ``questionnaire_differences.csv``."""
    from barometre.pipeline import write_csv

    editions = [str(e) for e in editions]
    codebooks = {e: load_codebook(p) for e, p in zip(editions, _as_list(inputs["codebooks"]), strict=True)}
    table = questionnaire_differences(codebooks, editions)
    write_csv(table, outputs["differences"])
    counts = table.groupby("difference").size().to_dict()
    log.info("questionnaire differences: %d rows %s", len(table), counts)


def run_compute_trends(editions: Sequence[str], synthetic: dict[str, bool], confidence: float,
                       inputs: dict[str, Any], outputs: dict[str, str]) -> None:
    """Rule ``compute_trends``: processed tables, codebooks, figures of each edition + registry → ``trends.csv``."""
    from barometre.pipeline import write_csv

    editions = [str(e) for e in editions]
    per_edition = {k: _as_list(inputs[k]) for k in ("respondents", "tools", "bp", "figures", "codebooks")}
    data = {}
    for k, e in enumerate(editions):
        frames = {"respondents": pd.read_parquet(per_edition["respondents"][k]),
                  "tools": pd.read_parquet(per_edition["tools"][k]),
                  "bp": pd.read_parquet(per_edition["bp"][k])}
        data[e] = EditionData(e, load_codebook(per_edition["codebooks"][k]), frames,
                              read_figures_table(per_edition["figures"][k]), bool(synthetic[e]))
    registry = load_trends_registry(inputs["registry"])
    table = compute_trends(registry, data, editions, confidence)
    write_csv(table, outputs["trends"])
    for ind, group in table.groupby("indicator", sort=False):
        log.info("%s: %s", ind, "; ".join(f"{r.edition}={r.value_label}{'' if r.comparable else ' (non comparable)'}"
                                          for r in group.itertuples()))


def run_plot_trends(inputs: dict[str, Any], outputs: dict[str, str]) -> None:
    """Rule ``plot_trends``: ``trends.csv`` → one SVG per comparable indicator and ``charts.json``."""
    trends = read_trends(inputs["trends"])
    path = write_trend_charts(trends, outputs["charts"])
    manifest = json.loads(path.read_text(encoding="utf-8"))
    log.info("wrote %d trend charts: %s", len(manifest["charts"]), [c["id"] for c in manifest["charts"]])
