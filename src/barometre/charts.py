"""Charts of the report: one SVG per chart plus a ``charts.json`` manifest.

Every chart is drawn from the tables, never from a recount of the microdata:

* the charts of the published edition (``charts`` of ``references/published_<edition>.yaml``,
  C01…C08, same order, same titles) and the presentation charts (who answered,
  tool types) read the « Ensemble » rows of ``cells.csv``;
* the participatory-budget focus reads the named figures B02…B07 of ``figures.csv``
  (the numbers quoted in the text).

Conventions: French labels (wrapped), French number formats (:mod:`barometre.fr`),
Okabe–Ito colour-blind-safe palette, text kept as SVG text, deterministic SVG
(fixed hash salt and id per chart, no date), base and notes in the caption,
suppressed cells (« secret statistique ») never drawn as numbers, a
« Données synthétiques » footnote when the edition is synthetic. Each SVG carries
its ``<title>`` and ``<desc>`` (the alt text) and ``role="img"``.

This module says what each chart shows (specs, rows, notes, alt text, caption, manifest);
:mod:`barometre.chart_drawing` draws the bars and :mod:`barometre.chart_svg` makes the SVG
fit to inline and accessible.
"""
from __future__ import annotations

import json
import logging
import math
import re
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from barometre import fr
from barometre.chart_drawing import (
    BASE_STYLE,
    MAIN_COLOUR,
    MUTED_COLOUR,
    OKABE_ITO,
    SECOND_COLOUR,
    SECRET_MARK,
    TEXT_COLOUR,
    BarRow,
    ChartError,
    check_layout,
    draw_hbars,
    sort_rows,
    wrap_label,
)
from barometre.chart_svg import accessible_svg
from barometre.codebook import NSP_LABEL, Codebook, Question
from barometre.errors import BarometreError

#: The charts' API, and the names of their parts that callers (the trends charts, the tests) import from here.
__all__ = [
    "ChartSpec", "Chart", "EXTRA_CHARTS", "FILTERED_UNITS", "CHART_KINDS", "UNIT_NOUNS", "MULTIPLE_NOTE",
    "SYNTHETIC_NOTE", "chart_specs", "code_count_spec", "read_cells", "read_figures", "ensemble_rows", "draw_chart",
    "draw_charts", "write_charts", "load_manifest", "run_plot_charts",
    # chart_drawing: palette, style, bars, layout check
    "BASE_STYLE", "MAIN_COLOUR", "MUTED_COLOUR", "OKABE_ITO", "SECOND_COLOUR", "SECRET_MARK", "TEXT_COLOUR",
    "ChartError", "check_layout", "wrap_label",
    # chart_svg: SVG post-processing and accessibility
    "accessible_svg",
]

log = logging.getLogger("barometre.charts")

NBSP = "\u00a0"
MULTIPLE_NOTE = "plusieurs réponses possibles, total > 100\u202f%"
SYNTHETIC_NOTE = "Données synthétiques"

#: Unit nouns (singular, plural) of each level.
UNIT_NOUNS = {
    "respondent": ("répondant", "répondants"),
    "tool": ("outil", "outils"),
    "bp": ("territoire", "territoires"),
}


@dataclass(frozen=True)
class ChartSpec:
    """What one chart shows.

    Attributes
    ----------
    id
        ``C01``…``C08`` for the published charts, ``E01``… for the project's extra charts.
    kind
        ``bars`` (single choice), ``multiple``, ``ranking``, ``bands`` (ordered bands with
        cumulative shares) or ``figures`` (named figures of ``figures.csv``).
    question
        Codebook reference (id, harmonised name or chart id); ``None`` for ``figures``.
    title
        Title, exactly as published for C01…C08.
    sort
        Sort the categories by decreasing share (nominal questions); « Autre » and
        « Ne se prononce pas » stay last.
    unit
        (singular, plural) noun of the base, when it is not the level's default.
    figure_keys
        For ``figures``: keys (``id`` or ``id.component``) of the figures drawn: all shares
        (bars in percent, labelled by the wording of each figure's question) or all counts
        (bars in numbers, labelled by the answer of ``question`` each figure counts).
    base_key
        For counts: the figure giving the base (e.g. ``R01``, distinct collectivities).
    """

    id: str
    kind: str
    question: str | None
    title: str
    sort: bool = False
    unit: tuple[str, str] | None = None
    figure_keys: tuple[str, ...] = ()
    base_key: str | None = None
    published: bool = False


@dataclass
class Chart:
    """A drawn chart: the manifest entry plus the SVG text."""

    id: str
    title: str
    alt: str
    caption: str
    file: str
    kind: str
    question_id: str | None
    base_min: float | None
    base_max: float | None
    unit: str
    small_base: bool
    suppressed: int
    published: bool
    synthetic: bool
    order: int
    svg: str = field(repr=False, default="")

    def manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("svg")
        return d


# --------------------------------------------------------------------------- specs

#: Extra charts (not in the published report), in report order.
EXTRA_CHARTS = (
    ChartSpec(
        "E01", "figures", "collectivity_type", "Collectivités répondantes selon leur type",
        figure_keys=(), base_key="R01",  # one count figure per code of the codebook (see code_count_keys)
    ),
    ChartSpec("E02", "bars", "role", "Répondants selon leur statut : élu·es et agents"),
    ChartSpec("E03", "bars", "function_elected", "Fonction des élu·es répondants", sort=True, unit=("élu·e", "élu·es")),
    ChartSpec("E04", "bars", "function_staff", "Fonction des agents répondants", sort=True, unit=("agent", "agents")),
    ChartSpec("E05", "bars", "staff_service", "Service des agents répondants", sort=True, unit=("agent", "agents")),
    ChartSpec("E06", "bars", "tool_type", "Types d'outils numériques décrits", sort=True),
    ChartSpec("E08", "bars", "civictech_partnership_importance",
              "Quelle importance accordez-vous aux partenariats avec les acteurs du numérique et de la civic tech ?"),
    ChartSpec(
        "E07", "figures", None, "Budgets participatifs : règles de fonctionnement et place du numérique",
        figure_keys=("B02", "B03", "B04.comment_at_vote_pct", "B05", "B06", "B07"),
    ),
)

#: Base nouns of filtered questions (the default is the level's noun).
FILTERED_UNITS = {
    "tool_low_usage_reasons": ("outil à l'usage jugé faible", "outils à l'usage jugé faible"),
}


#: Question types drawn as a chart, and the chart kind of each.
CHART_KINDS = {"ranking": "ranking", "multiple": "multiple", "band": "bands", "single": "bars", "ordinal": "bars"}


def chart_specs(codebook: Codebook, published: dict, figures: pd.DataFrame | None = None,
                cells: pd.DataFrame | None = None) -> list[ChartSpec]:
    """Every chart of an edition's report, in report order.

    1. The charts of the published report (``charts`` of the published reference, their
       questions found by the ``chart:`` id of the codebook), in published order and with
       their published titles (C01…C08 in 2017).
    2. The project's extra charts (:data:`EXTRA_CHARTS`), only when the edition has what
       they draw: their question in the codebook, and for ``figures`` charts every figure
       in ``figures.csv`` (when given).
    3. For an edition without published charts (2016, 2018), one chart per closed question
       of the codebook (single, ordinal, band, multiple, ranking) that the extra charts do
       not already draw and that has « Ensemble » cells (when ``cells`` is given), in
       codebook order, titled by its wording; the chart id is the question id.

    Parameters
    ----------
    codebook
        The edition's codebook.
    published
        The parsed ``references/published_<edition>.yaml`` (``charts`` list, may be absent).
    figures, cells
        ``figures.csv`` and ``cells.csv`` of the edition, to leave out charts without data.
    """
    specs = []
    for c in published.get("charts", []):
        q = codebook.question(c["id"])
        kind = {"ranking": "ranking", "multiple": "multiple", "band": "bands"}.get(q.type, "bars")
        specs.append(ChartSpec(
            id=c["id"], kind=kind, question=q.id, title=c["title"], sort=(q.type == "single"),
            unit=FILTERED_UNITS.get(q.harmonised), published=True,
        ))
    known = {s.id for s in specs}
    keys = set(figures["key"]) if figures is not None and "key" in figures.columns else None
    for spec in EXTRA_CHARTS:
        if spec.id in known:
            raise ChartError(f"extra chart id {spec.id} clashes with a published chart id")
        if spec.kind == "figures" and not spec.figure_keys and spec.question is not None:
            made = code_count_spec(spec, codebook, figures)
            if made is None:
                log.info("chart %s left out: no count figure per code of %s in this edition", spec.id, spec.question)
                continue
            spec = made
        question = None
        if spec.question is not None:
            try:
                question = codebook.question(spec.question)
            except BarometreError:
                log.info("chart %s left out: question %s not in this codebook", spec.id, spec.question)
                continue
        if spec.kind == "figures" and keys is not None:
            missing = [k for k in (*spec.figure_keys, *([spec.base_key] if spec.base_key else [])) if k not in keys]
            if missing:
                log.info("chart %s left out: figure(s) %s not in this edition", spec.id, ", ".join(missing))
                continue
        if spec.kind != "figures" and cells is not None and question is not None and not _has_cells(cells, question):
            log.info("chart %s left out: no « Ensemble » cells for %s", spec.id, spec.question)
            continue
        specs.append(spec)
    if not published.get("charts"):
        drawn = {codebook.question(s.question).id for s in specs if s.question and s.kind != "figures"}
        for q in codebook.questions:
            if q.type not in CHART_KINDS or q.id in drawn or q.id in known:
                continue
            if cells is not None and not _has_cells(cells, q):
                log.info("chart %s left out: no « Ensemble » cells", q.id)
                continue
            specs.append(ChartSpec(id=q.id, kind=CHART_KINDS[q.type], question=q.id, title=q.wording,
                                   sort=(q.type == "single" and len(q.codes) > 3),
                                   unit=FILTERED_UNITS.get(q.harmonised)))
    return specs


def code_count_spec(spec: ChartSpec, codebook: Codebook, figures: pd.DataFrame | None) -> ChartSpec | None:
    """``spec`` drawing one count figure per code of its question, in the codebook's order.

    The figure of a code is the count figure of that question whose component is the
    code's key (``R03.commune``) or whose rule counts that answer alone (``X01``:
    « collectivity_type ∈ {Département} »). An edition whose codebook adds a type gets
    its bar as soon as its registry counts it; without such figures the chart is left
    out (``None``; the question then gets its chart from its cells).
    """
    from dataclasses import replace

    if figures is None or "key" not in figures.columns:
        return spec  # figures not given: the chart is listed, as every figures chart then
    if spec.question is None:
        return spec  # no question whose codes to count: the figures chart as it is
    try:
        q = codebook.question(spec.question)
    except BarometreError:
        return spec  # left out below, as any chart whose question is not in the codebook
    keys: list[str] = []
    if not {"measure", "question", "component", "numerator_rule"} <= set(figures.columns):
        return None  # a table of keys only: no figure counts an answer
    counts = figures[(figures["measure"] == "count") & (figures["question"].astype(str) == q.harmonised)]
    for c in q.codes:
        alone = counts["numerator_rule"].astype(str).str.endswith("{" + c.label + "}")
        hit = counts[(counts["component"] == c.key) | alone]
        keys += list(hit["key"][:1])
    return replace(spec, figure_keys=tuple(keys)) if keys else None


def _has_cells(cells: pd.DataFrame, q: Question) -> bool:
    return bool(((cells["harmonised"] == q.harmonised) & (cells["dimension"] == "ensemble")).any())


# --------------------------------------------------------------------------- reading tables


def _as_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin(("true", "1", "vrai"))


def read_cells(path: str | Path) -> pd.DataFrame:
    """Read ``cells.csv`` (keys such as ``nsp`` or labels never turn into NaN; flags as booleans)."""
    cells = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"answer_key": str, "dimension_value": str})
    for col in ("small_base", "suppressed", "base_suppressed"):
        cells[col] = _as_bool(cells[col]) if col in cells.columns else False
    return cells


def read_figures(path: str | Path) -> pd.DataFrame:
    """Read ``figures.csv``, with a ``key`` column (``id`` or ``id.component``)."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    table["component"] = table["component"].fillna("").astype(str)
    table["key"] = [f"{i}.{c}" if c else str(i) for i, c in zip(table["id"], table["component"], strict=True)]
    return table


def ensemble_rows(cells: pd.DataFrame, question: Question, statistic: str) -> pd.DataFrame:
    """« Ensemble » rows of one question and statistic, in codebook answer order."""
    sel = cells[
        (cells["harmonised"] == question.harmonised)
        & (cells["dimension"] == "ensemble")
        & (cells["statistic"] == statistic)
    ]
    if sel.empty:
        raise ChartError(f"no « Ensemble » cells for question {question.id} ({question.harmonised}), "
                         f"statistic {statistic}")
    order = [c.key for c in question.codes] + [o.key for o in question.options] + ["nsp"]
    rank = {k: i for i, k in enumerate(dict.fromkeys(order))}
    sel = sel.assign(_order=sel["answer_key"].map(lambda k: rank.get(k, len(rank))))
    return sel.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _is_muted(key: str, label: str) -> bool:
    return key == "nsp" or label == NSP_LABEL



# --------------------------------------------------------------------------- one chart per kind


def _unit(spec: ChartSpec, q: Question | None, level: str) -> tuple[str, str]:
    if spec.unit:
        return spec.unit
    return UNIT_NOUNS.get(level, ("répondant", "répondants"))


def _base_text(bases: list[float], unit: tuple[str, str]) -> tuple[str, float | None, float | None]:
    vals = sorted({b for b in bases if b is not None and not math.isnan(b)})
    if not vals:
        return f"n{NBSP}={NBSP}{SECRET_MARK}", None, None
    lo, hi = vals[0], vals[-1]
    noun = unit[1] if hi >= 2 else unit[0]
    if lo == hi:
        return f"n{NBSP}={NBSP}{fr.format_number(lo)} {noun}", lo, hi
    return f"n{NBSP}={NBSP}{fr.format_number(lo)} à {fr.format_number(hi)} {noun}", lo, hi


FOOTNOTE_WRAP = 118  # characters per line of the footnote (7 pt over the figure width)


Note = tuple[str, "str | None"]  # (long form for the caption, short form for the SVG footnote or None)


def _footnote(base: str, notes: list[Note], synthetic: bool) -> str:
    """Footnote under a chart: base and short notes, wrapped; « Données synthétiques » on its own line."""
    line = " · ".join(p for p in [base, *(short for _, short in notes)] if p)
    text = "\n".join(textwrap.wrap(line, width=FOOTNOTE_WRAP, break_long_words=False))
    if synthetic:
        text += f"\n{SYNTHETIC_NOTE}"
    return text


def _caption(base: str, notes: list[Note]) -> str:
    return " ; ".join(p for p in [base, *(long for long, _ in notes)] if p) + "."


def _phrase(base: str) -> str:
    """« n = 45 outils » → « 45 outils »."""
    return base.removeprefix(f"n{NBSP}={NBSP}")


def _alt_list(rows: list[BarRow], s: int = 0) -> str:
    items = []
    for r in rows:
        v, sup = r.values[s], r.suppressed[s]
        if sup:
            items.append(f"{r.label} : secret statistique")
        elif v is None or math.isnan(v):
            items.append(f"{r.label} : non disponible")
        else:
            items.append(f"{r.label} : {fr.format_percent(v, 1)}")
    return " ; ".join(items)


def _flags(sel: pd.DataFrame) -> tuple[bool, int]:
    return bool(sel["small_base"].any()), int(sel["suppressed"].sum())


def _common_notes(small: bool, n_supp: int, small_base: int, min_cell: int) -> list[Note]:
    notes: list[Note] = []
    if n_supp:
        notes.append((f"{SECRET_MARK} : secret statistique (case de moins de {fr.format_number(min_cell)} réponses "
                      "ou permettant de la retrouver), valeur non publiée", f"{SECRET_MARK} : secret statistique"))
    if small:
        notes.append((f"effectif faible (moins de {fr.format_number(small_base)}) : à lire avec prudence",
                      f"effectif faible (moins de {fr.format_number(small_base)})"))
    return notes


def _float(value: Any) -> float:
    """A cell's value as a float, NaN when it is missing."""
    return float(value) if pd.notna(value) else math.nan


def _rows_from(sel: pd.DataFrame, muted_nsp: bool = True) -> list[BarRow]:
    return [
        BarRow(r.answer_key, str(r.answer_label), [_float(r.value)], [bool(r.suppressed)],
               muted=muted_nsp and _is_muted(r.answer_key, str(r.answer_label)))
        for r in sel.itertuples()
    ]


def draw_chart(
    spec: ChartSpec, *, cells: pd.DataFrame, figures: pd.DataFrame | None, codebook: Codebook,
    edition: str, synthetic: bool, order: int = 0, small_base: int = 30, min_cell: int = 3,
) -> Chart:
    """Draw one chart from the tables.

    Returns
    -------
    Chart
        Manifest entry and accessible SVG text.
    """
    q = codebook.question(spec.question) if spec.question else None
    notes: list[Note] = []
    if spec.kind == "figures":
        return _draw_figures(spec, figures, codebook, edition, synthetic, order)
    assert q is not None
    unit = _unit(spec, q, q.level)
    if spec.kind == "ranking":
        first = ensemble_rows(cells, q, "first_share")
        top3 = ensemble_rows(cells, q, "top3_share").set_index("answer_key")
        rows = []
        for r in first.itertuples():
            t = top3.loc[r.answer_key]
            rows.append(BarRow(r.answer_key, str(r.answer_label), [_float(r.value), _float(t.value)],
                               [bool(r.suppressed), bool(t.suppressed)]))
        rows = sort_rows(rows, 0)
        sel = pd.concat([first, top3.reset_index()])
        base, lo, hi = _base_text(list(first["base"]), unit)
        small, n_supp = _flags(sel)
        rank_note = "classement de 1 à " + fr.format_number(len(q.codes))
        notes = [(rank_note, rank_note), *_common_notes(small, n_supp, small_base, min_cell)]
        series = [("Classé en 1re position", MAIN_COLOUR), ("Classé parmi les 3 premiers", SECOND_COLOUR)]
        alt = (f"Part des {_phrase(base)} qui classent chaque proposition en 1re position "
               f"(entre parenthèses : parmi les trois premières) : "
               + " ; ".join(
                   f"{r.label} : " + (SECRET_MARK if r.suppressed[0] else fr.format_percent(r.values[0], 1))
                   + " (" + (SECRET_MARK if r.suppressed[1] else fr.format_percent(r.values[1], 1)) + ")"
                   for r in rows) + ".")
    elif spec.kind == "bands":
        share = ensemble_rows(cells, q, "share")
        cum = ensemble_rows(cells, q, "cumulative_share").set_index("answer_key")
        rows = []
        for r in share.itertuples():
            if r.answer_key in cum.index:
                c = cum.loc[r.answer_key]
                rows.append(BarRow(r.answer_key, str(r.answer_label), [_float(r.value), _float(c.value)],
                                   [bool(r.suppressed), bool(c.suppressed)]))
            else:  # NSP: no cumulative share
                rows.append(BarRow(r.answer_key, str(r.answer_label), [_float(r.value), math.nan],
                                   [bool(r.suppressed), False], muted=True))
        # shares and cumulative shares have one base (every answer, « ne se prononce pas » included)
        base_all, lo, hi = _base_text(list(share["base"]), unit)
        small, n_supp = _flags(pd.concat([share, cum.reset_index()]))
        has_nsp = any(r.key == "nsp" for r in rows)
        series = [("Part de la tranche", MAIN_COLOUR), ("Cumul jusqu'à cette tranche", OKABE_ITO["orange"])]
        nsp_note = " (« ne se prononce pas » compris)" if has_nsp else ""
        notes = [(f"{base_all}{nsp_note}", f"{base_all}{nsp_note}"),
                 *_common_notes(small, n_supp, small_base, min_cell)]
        base_sub = base_all
        base = ""
        cum_items = " ; ".join(
            f"jusqu'à « {r.label} » : " + (SECRET_MARK if r.suppressed[1] else fr.format_percent(r.values[1], 1))
            for r in rows if r.key != "nsp")
        alt = (f"Répartition des {_phrase(base_all)} par tranche : {_alt_list(rows, 0)}. En cumulé, sur les "
               f"{_phrase(base_sub)} : {cum_items}.")
        # draw NSP rows with a single bar: keep the cumulative value NaN but not shown as a dash
        for r in rows:
            if r.key == "nsp":
                r.values[1] = None  # type: ignore[call-overload]  # None: no bar at all (draw_hbars skips it)
    else:
        sel = ensemble_rows(cells, q, "share")
        rows = _rows_from(sel)
        if spec.sort or spec.kind == "multiple":
            rows = sort_rows(rows)
        base, lo, hi = _base_text(list(sel["base"]), unit)
        small, n_supp = _flags(sel)
        series = [("Part", MAIN_COLOUR)]
        if spec.kind == "multiple":
            notes.append((MULTIPLE_NOTE, MULTIPLE_NOTE))
        elif any(r.key == "nsp" for r in rows):
            notes.append(("« ne se prononce pas » compris dans la base", None))
        notes += _common_notes(small, n_supp, small_base, min_cell)
        if spec.kind == "multiple":
            alt = (f"Part des {_phrase(base)} ayant choisi chaque réponse (plusieurs réponses possibles) : "
                   f"{_alt_list(rows)}.")
        else:
            alt = f"Répartition des {_phrase(base)} : {_alt_list(rows)}."
    footnote = _footnote(base, notes, synthetic)
    svg = draw_hbars(rows, series, footnote, spec.id, edition)
    svg = accessible_svg(svg, spec.id, spec.title, alt)
    caption = _caption(base, notes)
    return Chart(
        id=spec.id, title=spec.title, alt=alt, caption=caption,
        file=f"{spec.id}.svg", kind=spec.kind, question_id=q.id, base_min=lo, base_max=hi, unit=unit[1],
        small_base=small, suppressed=n_supp, published=spec.published, synthetic=synthetic, order=order, svg=svg,
    )


def _answer_label(codebook: Codebook, question: str | None, figure: pd.Series) -> str:
    """Label of the answer a count figure counts (its component, else the single key of its rule)."""
    q = codebook.question(question) if question else codebook.question(str(figure["question"]))
    keys = [figure["component"]] if figure["component"] else []
    if not keys:  # e.g. X01: « collectivity_type ∈ {Département} »
        m = re.search(r"\{([^}]*)\}", str(figure.get("numerator_rule", "")))
        if m:
            return m.group(1)
    try:
        return q.label_of(keys[0]) if keys else str(figure["definition"])
    except BarometreError:
        return str(figure["definition"])


def _draw_figures(spec: ChartSpec, figures: pd.DataFrame | None, codebook: Codebook, edition: str, synthetic: bool,
                  order: int) -> Chart:
    """Bars of named figures (``figures.csv``): all shares, or all counts with a base figure."""
    if figures is None:
        raise ChartError(f"chart {spec.id}: needs figures.csv")
    by_key = figures.set_index("key")
    missing = [k for k in (*spec.figure_keys, *([spec.base_key] if spec.base_key else [])) if k not in by_key.index]
    if missing:
        raise ChartError(f"chart {spec.id}: figure(s) {', '.join(missing)} not in figures.csv")
    measures = {str(by_key.loc[k, "measure"]) for k in spec.figure_keys}
    if measures not in ({"share"}, {"count"}):
        raise ChartError(f"chart {spec.id}: figures must be all shares or all counts, got {sorted(measures)}")
    counts = measures == {"count"}
    if counts:
        q = codebook.question(spec.question) if spec.question else None
        # A figure withheld by the publication layer (no value) is shown as « s », never as a bar.
        rows = [BarRow(k, _answer_label(codebook, spec.question, by_key.loc[k]), [float(by_key.loc[k, "value"])],
                     [math.isnan(float(by_key.loc[k, "value"]))]) for k in spec.figure_keys]
        rows = sort_rows(rows)
        distinct = by_key.loc[spec.base_key or spec.figure_keys[0], "measure"] == "distinct"
        unit = (("collectivité", "collectivités") if distinct
                else UNIT_NOUNS.get(q.level if q else "respondent", ("répondant", "répondants")))
        total = float(by_key.loc[spec.base_key, "value"]) if spec.base_key else sum(r.values[0] for r in rows)
        base = f"n{NBSP}={NBSP}{fr.format_number(total)} {unit[1] if total >= 2 else unit[0]}"
        notes: list[Note] = []
        if unit[0] == "collectivité":
            notes.append(("une ligne par collectivité, même si plusieurs de ses élu·es ou agents ont répondu",
                          "une ligne par collectivité"))
        shown = sum(r.values[0] for r in rows if not r.suppressed[0])
        if spec.base_key and shown != total and not any(r.suppressed[0] for r in rows):
            notes.append((f"types non représentés : {fr.format_number(total - shown)}", None))
        if any(r.suppressed[0] for r in rows):
            notes.append((f"{SECRET_MARK} : secret statistique, valeur non publiée",
                          f"{SECRET_MARK} : secret statistique"))
        alt = f"Répartition des {_phrase(base)} : " + " ; ".join(
            f"{r.label} : {'secret statistique' if r.suppressed[0] else fr.format_number(r.values[0])}"
            for r in rows) + "."
        svg = draw_hbars(rows, [("Nombre", MAIN_COLOUR)], _footnote(base, notes, synthetic), spec.id, edition,
                         counts=True)
        svg = accessible_svg(svg, spec.id, spec.title, alt)
        return Chart(
            id=spec.id, title=spec.title, alt=alt, caption=_caption(base, notes), file=f"{spec.id}.svg", kind=spec.kind,
            question_id=q.id if q else None, base_min=total, base_max=total, unit=unit[1], small_base=False,
            suppressed=0, published=False, synthetic=synthetic, order=order, svg=svg,
        )
    rows, bases = [], []
    for key in spec.figure_keys:
        f = by_key.loc[key]
        label = codebook.question(str(f["question"])).wording
        rows.append(BarRow(key, label, [float(f["value"])], [math.isnan(float(f["value"]))]))
        bases.append((key, label, float(f["denominator"])))
    unit = UNIT_NOUNS["bp"]
    tally: dict[float, int] = {}
    for _, _, d in bases:
        tally[d] = tally.get(d, 0) + 1
    main = max(tally, key=lambda d: (tally[d], d))
    base = f"n{NBSP}={NBSP}{fr.format_number(main)} {unit[1]}"
    notes = [(f"« {lab} » : n{NBSP}={NBSP}{fr.format_number(d)} {unit[1]} concernés",
              f"{lab} : n{NBSP}={NBSP}{fr.format_number(d)}") for _, lab, d in bases if d != main]
    alt = f"Part des {_phrase(base)} ayant un budget participatif, pour chaque caractéristique : {_alt_list(rows)}."
    svg = draw_hbars(rows, [("Part", OKABE_ITO["bluish_green"])], _footnote(base, notes, synthetic), spec.id, edition)
    svg = accessible_svg(svg, spec.id, spec.title, alt)
    dvals = [d for _, _, d in bases]
    return Chart(
        id=spec.id, title=spec.title, alt=alt, caption=_caption(base, notes), file=f"{spec.id}.svg", kind=spec.kind,
        question_id=None, base_min=min(dvals), base_max=max(dvals), unit=unit[1], small_base=False, suppressed=0,
        published=False, synthetic=synthetic, order=order, svg=svg,
    )


# --------------------------------------------------------------------------- all charts


def draw_charts(
    *, cells: pd.DataFrame, figures: pd.DataFrame, codebook: Codebook, published: dict, edition: str,
    synthetic: bool, small_base: int = 30, min_cell: int = 3,
) -> list[Chart]:
    """Draw every chart of the report, in report order."""
    return [
        draw_chart(spec, cells=cells, figures=figures, codebook=codebook, edition=edition, synthetic=synthetic,
                   order=i, small_base=small_base, min_cell=min_cell)
        for i, spec in enumerate(chart_specs(codebook, published, figures, cells), start=1)
    ]


def write_charts(charts: list[Chart], out_dir: str | Path, edition: str, synthetic: bool) -> Path:
    """Write one SVG per chart and ``charts.json`` into ``out_dir``; returns the manifest path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for c in charts:
        (out / c.file).write_text(c.svg, encoding="utf-8")
    manifest = {"edition": str(edition), "synthetic": bool(synthetic), "charts": [c.manifest() for c in charts]}
    path = out / "charts.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def load_manifest(charts_dir: str | Path) -> dict:
    """Read ``charts.json`` and attach each chart's SVG text (key ``svg``)."""
    d = Path(charts_dir)
    manifest = json.loads((d / "charts.json").read_text(encoding="utf-8"))
    for c in manifest["charts"]:
        c["svg"] = (d / c["file"]).read_text(encoding="utf-8")
    return manifest


def run_plot_charts(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``plot_charts``: cells + figures → ``results/<edition>/charts/`` (SVGs + ``charts.json``)."""
    import yaml

    from barometre.codebook import load_codebook
    from barometre.config import edition_config

    spec = edition_config(config, edition)
    synthetic = bool(spec["synthetic"])
    codebook = load_codebook(inputs["codebook"])
    published = yaml.safe_load(Path(inputs["published"]).read_text(encoding="utf-8")) if inputs.get("published") else {}
    tables = Path(inputs["tables"])
    cells = read_cells(tables / "cells.csv" if tables.is_dir() else tables)
    figures = read_figures(inputs["figures"])
    charts = draw_charts(cells=cells, figures=figures, codebook=codebook, published=published, edition=edition,
                         synthetic=synthetic, small_base=int(config.get("disclosure", {}).get("small_base", 30)),
                         min_cell=int(config.get("disclosure", {}).get("min_cell", 3)))
    out_dir = Path(outputs["charts"])
    if out_dir.exists():
        for old in out_dir.glob("*.svg"):
            old.unlink()
    path = write_charts(charts, out_dir, edition, synthetic)
    for c in charts:
        log.info("chart %s (%s): %s, %d secret cell(s)", c.id, c.kind, c.caption, c.suppressed)
    log.info("wrote %d charts and %s", len(charts), path)
