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
"""
from __future__ import annotations

import io
import json
import logging
import math
import re
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from barometre import fr  # noqa: E402
from barometre.codebook import NSP_LABEL, Codebook, Question  # noqa: E402
from barometre.errors import BarometreError  # noqa: E402

log = logging.getLogger("barometre.charts")

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
MAIN_COLOUR = OKABE_ITO["blue"]
SECOND_COLOUR = OKABE_ITO["sky_blue"]
NSP_COLOUR = "#9A9A9A"  # neutral grey for « ne se prononce pas » (distinct in lightness)
TEXT_COLOUR = "#1A1A1A"
MUTED_COLOUR = "#555555"

FIG_WIDTH_IN = 6.3  # ≈ 160 mm, the text width of an A4 page with 25 mm margins
LABEL_WRAP = 38  # characters per line of a category label
FONT_FAMILY = "DejaVu Sans"
SECRET_MARK = "s"
NBSP = "\u00a0"
MULTIPLE_NOTE = "plusieurs réponses possibles, total > 100\u202f%"
SYNTHETIC_NOTE = "Données synthétiques"

#: Unit nouns (singular, plural) of each level.
UNIT_NOUNS = {
    "respondent": ("répondant", "répondants"),
    "tool": ("outil", "outils"),
    "bp": ("territoire", "territoires"),
}

BASE_STYLE = {
    "svg.fonttype": "none",  # text stays text
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY, "Liberation Sans", "Arial"],
    "font.size": 8.5,
    "axes.edgecolor": "#888888",
    "axes.linewidth": 0.6,
    "axes.labelcolor": TEXT_COLOUR,
    "xtick.color": TEXT_COLOUR,
    "ytick.color": TEXT_COLOUR,
    "text.color": TEXT_COLOUR,
    "legend.frameon": False,
    "path.simplify": False,
    "figure.dpi": 72,
}


class ChartError(BarometreError):
    """A chart cannot be drawn (missing cells, clipped text…)."""


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
        if spec.question is not None:
            try:
                codebook.question(spec.question)
            except BarometreError:
                log.info("chart %s left out: question %s not in this codebook", spec.id, spec.question)
                continue
        if spec.kind == "figures" and keys is not None:
            missing = [k for k in (*spec.figure_keys, *([spec.base_key] if spec.base_key else [])) if k not in keys]
            if missing:
                log.info("chart %s left out: figure(s) %s not in this edition", spec.id, ", ".join(missing))
                continue
        if spec.kind != "figures" and cells is not None and not _has_cells(cells, codebook.question(spec.question)):
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
                                   sort=(q.type == "single" and len(q.codes) > 3), unit=FILTERED_UNITS.get(q.harmonised)))
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
    try:
        q = codebook.question(spec.question)
    except BarometreError:
        return spec  # left out below, as any chart whose question is not in the codebook
    keys: list[str] = []
    if not {"measure", "question", "component", "numerator_rule"} <= set(figures.columns):
        return None  # a table of keys only: no figure counts an answer
    counts = figures[(figures["measure"] == "count") & (figures["question"].astype(str) == q.harmonised)]
    for c in q.codes:
        hit = counts[(counts["component"] == c.key) | counts["numerator_rule"].astype(str).str.endswith("{" + c.label + "}")]
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
    table["key"] = [f"{i}.{c}" if c else str(i) for i, c in zip(table["id"], table["component"])]
    return table


def ensemble_rows(cells: pd.DataFrame, question: Question, statistic: str) -> pd.DataFrame:
    """« Ensemble » rows of one question and statistic, in codebook answer order."""
    sel = cells[
        (cells["harmonised"] == question.harmonised)
        & (cells["dimension"] == "ensemble")
        & (cells["statistic"] == statistic)
    ]
    if sel.empty:
        raise ChartError(f"no « Ensemble » cells for question {question.id} ({question.harmonised}), statistic {statistic}")
    order = [c.key for c in question.codes] + [o.key for o in question.options] + ["nsp"]
    rank = {k: i for i, k in enumerate(dict.fromkeys(order))}
    sel = sel.assign(_order=sel["answer_key"].map(lambda k: rank.get(k, len(rank))))
    return sel.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


# --------------------------------------------------------------------------- drawing helpers


@dataclass
class _Row:
    key: str
    label: str
    values: list[float]
    suppressed: list[bool]
    muted: bool = False  # NSP / « autre »: drawn in grey, kept last


_THOUSANDS_RE = re.compile(r"(?<=\d) (?=\d{3}\b)")


def wrap_label(label: str, width: int = LABEL_WRAP) -> str:
    """Wrap a category label on several lines (never cutting a word nor a number such as « 1 000 »)."""
    label = _THOUSANDS_RE.sub(fr.NNBSP, label)
    return "\n".join(textwrap.wrap(label, width=width, break_long_words=False, break_on_hyphens=False)) or label


def _is_muted(key: str, label: str) -> bool:
    return key == "nsp" or label == NSP_LABEL


def _last_rank(key: str) -> int:
    """0 for ordinary answers, 1 for « autre », 2 for « ne se prononce pas » (always at the bottom)."""
    return {"autre": 1, "nsp": 2}.get(key, 0)


def _sort_rows(rows: list[_Row], by: int = 0) -> list[_Row]:
    """Decreasing value (suppressed cells count as 0), « autre » and NSP last; stable."""
    def k(r: _Row) -> tuple:
        v = r.values[by]
        v = 0.0 if (r.suppressed[by] or v is None or math.isnan(v)) else v
        return (_last_rank(r.key), -v)
    return sorted(rows, key=k)


def _fmt_value(v: float, suppressed: bool) -> str:
    if suppressed:
        return SECRET_MARK
    return fr.format_percent(v, 1)


def _style(chart_id: str, edition: str) -> dict:
    return {**BASE_STYLE, "svg.hashsalt": f"barometre-{edition}-{chart_id}", "svg.id": f"chart-{chart_id}-svg"}


def _draw_hbars(
    rows: list[_Row], series: list[tuple[str, str]], footnote: str, chart_id: str, edition: str,
    counts: bool = False,
) -> str:
    """Horizontal bars, one group per row and one bar per series; returns the SVG text.

    Parameters
    ----------
    rows
        Categories, top to bottom.
    series
        (name, colour) of each series; a name is shown in a legend when there are several.
    footnote
        Small text under the chart (base, notes, « Données synthétiques »).
    counts
        Values are counts (labels « 65 »), not percentages; the axis runs to the largest count.
    """
    n_series = len(series)
    labels = [wrap_label(r.label) for r in rows]
    bar_h = 0.78 / n_series
    group_in = 0.2 * n_series + 0.06  # inches per category
    height = 0.45 + sum(max(group_in, 0.15 * (lab.count("\n") + 1) + 0.05) for lab in labels) + 0.25 * (n_series > 1)
    height += 0.18 * (footnote.count("\n") + 1)
    if n_series > 1 and sum(len(n) for n, _ in series) >= 60:
        height += 0.18 * (n_series - 1)
    finite = [v for r in rows for v in r.values if v is not None and not math.isnan(v)]
    xmax = max(finite + [1.0]) if counts else 100.0
    with plt.rc_context(_style(chart_id, edition)):
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, height), layout="constrained")
        for s, (name, colour) in enumerate(series):
            offset = (s - (n_series - 1) / 2) * bar_h
            for i, r in enumerate(rows):
                v, sup = r.values[s], r.suppressed[s]
                y = i + offset
                if v is None and not sup:  # no bar of this series for this row (e.g. NSP has no cumulative share)
                    continue
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                if sup or missing:
                    ax.text(0.006 * xmax, y, SECRET_MARK if sup else fr.MISSING, va="center", ha="left",
                            fontsize=8, fontstyle="italic", color=MUTED_COLOUR)
                    continue
                c = NSP_COLOUR if r.muted else colour
                ax.barh(y, v, height=bar_h * 0.92, color=c, edgecolor="none", label=name if i == 0 else None)
                ax.text(v + 0.008 * xmax, y, fr.format_number(v) if counts else _fmt_value(v, False),
                        va="center", ha="left", fontsize=8, color=TEXT_COLOUR)
        ax.set_yticks(range(len(rows)), labels=labels)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(0, xmax * 1.13)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="y", length=0, pad=4)
        if n_series > 1:
            handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, c in series]
            ax.legend(handles, [n for n, _ in series], loc="lower left", bbox_to_anchor=(0, 1.0),
                      ncol=n_series if sum(len(n) for n, _ in series) < 60 else 1,
                      fontsize=8, handlelength=1.2, borderaxespad=0.2)
        fig.supxlabel(footnote, x=0.005, ha="left", fontsize=7, color=MUTED_COLOUR, linespacing=1.4)
        check_layout(fig, chart_id)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "barometre (matplotlib)"})
        plt.close(fig)
    return buf.getvalue()


def check_layout(fig, chart_id: str, tolerance: float = 0.5) -> None:
    """Fail when any text of ``fig`` extends beyond the figure (clipped label).

    Raises
    ------
    ChartError
        Naming the chart and the clipped text.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < box.x0 - tolerance or bb.x1 > box.x1 + tolerance or bb.y0 < box.y0 - tolerance or bb.y1 > box.y1 + tolerance:
            raise ChartError(f"chart {chart_id}: text {t.get_text()!r} is clipped (extends beyond the figure)")


# --------------------------------------------------------------------------- SVG post-processing

# matplotlib's own SVG is parsed with the standard XML parser (trusted input: no entity, no
# internal DTD subset), edited as a tree and written back; no regular expression on markup.
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
#: Prefix of each namespace matplotlib writes (SVG is the default one). The tree is written back
#: with these prefixes by :func:`_serialise`, not through ElementTree's process-wide prefix registry
#: (which any other library may change).
_PREFIXES = {
    _SVG_NS: "", _XLINK_NS: "xlink", "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://purl.org/dc/elements/1.1/": "dc", "http://creativecommons.org/ns#": "cc",
}
_HREF_ATTRIBUTES = frozenset({"href", f"{{{_XLINK_NS}}}href"})
_URL_REF_RE = re.compile(r"url\(#([^)]+)\)")  # inside one attribute value, e.g. clip-path="url(#p1)"
#: SVG presentation attributes matplotlib writes as inline styles.
PRESENTATION_ATTRIBUTES = frozenset({
    "fill", "fill-opacity", "stroke", "stroke-width", "stroke-linejoin", "stroke-linecap", "stroke-opacity",
    "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "font-size", "font-family",
    "font-weight", "font-style", "text-anchor", "clip-path",
})


def _style_to_attributes(element: ET.Element) -> None:
    """``style="fill: #0072b2; font-size: 8px"`` → ``fill="#0072b2" font-size="8px"``, in place.

    Inline SVG in HTML: presentation attributes are SVG, not document CSS, so an HTML
    renderer never misreads them (WeasyPrint warns on each SVG property in a style).
    Declarations that are not presentation attributes stay in ``style``.
    """
    style = element.attrib.pop("style", None)
    if style is None:
        return
    rest = []
    for decl in style.split(";"):
        if ":" not in decl:
            continue
        name, value = (p.strip() for p in decl.split(":", 1))
        if name in PRESENTATION_ATTRIBUTES:
            element.set(name, value)
        else:
            rest.append(f"{name}: {value}")
    if rest:
        element.set("style", "; ".join(rest))


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    """Prefix every ``id`` (and its references) so several SVGs can be inlined in one HTML page."""
    renamed = {}
    for el in root.iter():
        name = el.get("id")
        if name:
            renamed[name] = name if name.startswith(prefix) else prefix + name
            el.set("id", renamed[name])

    def ref(m: re.Match) -> str:
        return f"url(#{renamed.get(m.group(1), m.group(1))})"

    for el in root.iter():
        for attr, value in el.attrib.items():
            if "url(#" in value:
                el.set(attr, _URL_REF_RE.sub(ref, value))
            elif attr in _HREF_ATTRIBUTES and value.startswith("#") and value[1:] in renamed:
                el.set(attr, "#" + renamed[value[1:]])


def _serialise(root: ET.Element, chart_id: str) -> str:
    """The tree as SVG text: ``{uri}name`` written ``prefix:name``, the prefixes declared on the root."""
    used: set[str] = set()

    def name(qualified: str) -> str:
        if not qualified.startswith("{"):
            return qualified
        uri, local = qualified[1:].split("}", 1)
        if uri not in _PREFIXES:
            raise ChartError(f"chart {chart_id}: unexpected XML namespace {uri} in the SVG output")
        used.add(uri)
        return f"{_PREFIXES[uri]}:{local}" if _PREFIXES[uri] else local

    for el in root.iter():
        el.tag = name(el.tag)
        el.attrib = {name(k): v for k, v in el.attrib.items()}
    declarations = {f"xmlns:{_PREFIXES[u]}" if _PREFIXES[u] else "xmlns": u
                    for u in sorted(used, key=lambda u: _PREFIXES[u])}
    root.attrib = {**declarations, **root.attrib}
    return ET.tostring(root, encoding="unicode")


def accessible_svg(svg: str, chart_id: str, title: str, alt: str) -> str:
    """The SVG root element alone, with ``role="img"``, ``aria-label``, ``<title>`` and ``<desc>``.

    The XML prolog and DOCTYPE are left out (the parser drops them) so that the same
    text can be saved as a file and inlined in HTML; ``<style>`` blocks are removed and
    inline styles become presentation attributes.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ChartError(f"chart {chart_id}: the SVG output is not well-formed XML ({exc})") from None
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise ChartError(f"chart {chart_id}: no <svg> element in the output")
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{_SVG_NS}}}style":
                parent.remove(child)
    for el in root.iter():
        _style_to_attributes(el)
    _prefix_ids(root, f"chart-{chart_id}-")
    root.set("role", "img")
    root.set("aria-labelledby", f"chart-{chart_id}-title chart-{chart_id}-desc")
    root.set("aria-label", alt)
    for position, (tag, text) in enumerate((("title", title), ("desc", alt))):
        element = ET.Element(f"{{{_SVG_NS}}}{tag}", {"id": f"chart-{chart_id}-{tag}"})
        element.text = text
        root.insert(position, element)
    return _serialise(root, chart_id).rstrip() + "\n"


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


def _alt_list(rows: list[_Row], s: int = 0) -> str:
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


def _rows_from(sel: pd.DataFrame, muted_nsp: bool = True) -> list[_Row]:
    return [
        _Row(r.answer_key, str(r.answer_label), [float(r.value) if pd.notna(r.value) else math.nan], [bool(r.suppressed)],
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
            rows.append(_Row(r.answer_key, str(r.answer_label),
                             [float(r.value) if pd.notna(r.value) else math.nan, float(t.value) if pd.notna(t.value) else math.nan],
                             [bool(r.suppressed), bool(t.suppressed)]))
        rows = _sort_rows(rows, 0)
        sel = pd.concat([first, top3.reset_index()])
        base, lo, hi = _base_text(list(first["base"]), unit)
        small, n_supp = _flags(sel)
        rank_note = "classement de 1 à " + fr.format_number(len(q.codes))
        notes = [(rank_note, rank_note)] + _common_notes(small, n_supp, small_base, min_cell)
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
                rows.append(_Row(r.answer_key, str(r.answer_label),
                                 [float(r.value) if pd.notna(r.value) else math.nan, float(c.value) if pd.notna(c.value) else math.nan],
                                 [bool(r.suppressed), bool(c.suppressed)]))
            else:  # NSP: no cumulative share
                rows.append(_Row(r.answer_key, str(r.answer_label), [float(r.value) if pd.notna(r.value) else math.nan, math.nan],
                                 [bool(r.suppressed), False], muted=True))
        # shares and cumulative shares have one base (every answer, « ne se prononce pas » included)
        base_all, lo, hi = _base_text(list(share["base"]), unit)
        small, n_supp = _flags(pd.concat([share, cum.reset_index()]))
        has_nsp = any(r.key == "nsp" for r in rows)
        series = [("Part de la tranche", MAIN_COLOUR), ("Cumul jusqu'à cette tranche", OKABE_ITO["orange"])]
        nsp_note = " (« ne se prononce pas » compris)" if has_nsp else ""
        notes = [(f"{base_all}{nsp_note}", f"{base_all}{nsp_note}")] + _common_notes(small, n_supp, small_base, min_cell)
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
                r.values[1] = None  # type: ignore[call-overload]
    else:
        sel = ensemble_rows(cells, q, "share")
        rows = _rows_from(sel)
        if spec.sort or spec.kind == "multiple":
            rows = _sort_rows(rows)
        base, lo, hi = _base_text(list(sel["base"]), unit)
        small, n_supp = _flags(sel)
        series = [("Part", MAIN_COLOUR)]
        if spec.kind == "multiple":
            notes.append((MULTIPLE_NOTE, MULTIPLE_NOTE))
        elif any(r.key == "nsp" for r in rows):
            notes.append(("« ne se prononce pas » compris dans la base", None))
        notes += _common_notes(small, n_supp, small_base, min_cell)
        if spec.kind == "multiple":
            alt = f"Part des {_phrase(base)} ayant choisi chaque réponse (plusieurs réponses possibles) : {_alt_list(rows)}."
        else:
            alt = f"Répartition des {_phrase(base)} : {_alt_list(rows)}."
    footnote = _footnote(base, notes, synthetic)
    svg = _draw_hbars(rows, series, footnote, spec.id, edition)
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


def _draw_figures(spec: ChartSpec, figures: pd.DataFrame | None, codebook: Codebook, edition: str, synthetic: bool, order: int) -> Chart:
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
        rows = [_Row(k, _answer_label(codebook, spec.question, by_key.loc[k]), [float(by_key.loc[k, "value"])],
                     [math.isnan(float(by_key.loc[k, "value"]))]) for k in spec.figure_keys]
        rows = _sort_rows(rows)
        unit = ("collectivité", "collectivités") if by_key.loc[spec.base_key or spec.figure_keys[0], "measure"] == "distinct" \
            else UNIT_NOUNS.get(q.level if q else "respondent", ("répondant", "répondants"))
        total = float(by_key.loc[spec.base_key, "value"]) if spec.base_key else sum(r.values[0] for r in rows)
        base = f"n{NBSP}={NBSP}{fr.format_number(total)} {unit[1] if total >= 2 else unit[0]}"
        notes: list[Note] = [("une ligne par collectivité, même si plusieurs de ses élu·es ou agents ont répondu", "une ligne par collectivité")] \
            if unit[0] == "collectivité" else []
        shown = sum(r.values[0] for r in rows if not r.suppressed[0])
        if spec.base_key and shown != total and not any(r.suppressed[0] for r in rows):
            notes.append((f"types non représentés : {fr.format_number(total - shown)}", None))
        if any(r.suppressed[0] for r in rows):
            notes.append((f"{SECRET_MARK} : secret statistique, valeur non publiée", f"{SECRET_MARK} : secret statistique"))
        alt = f"Répartition des {_phrase(base)} : " + " ; ".join(
            f"{r.label} : {'secret statistique' if r.suppressed[0] else fr.format_number(r.values[0])}" for r in rows) + "."
        svg = _draw_hbars(rows, [("Nombre", MAIN_COLOUR)], _footnote(base, notes, synthetic), spec.id, edition, counts=True)
        svg = accessible_svg(svg, spec.id, spec.title, alt)
        return Chart(
            id=spec.id, title=spec.title, alt=alt, caption=_caption(base, notes), file=f"{spec.id}.svg", kind=spec.kind,
            question_id=q.id if q else None, base_min=total, base_max=total, unit=unit[1], small_base=False, suppressed=0,
            published=False, synthetic=synthetic, order=order, svg=svg,
        )
    rows, bases = [], []
    for key in spec.figure_keys:
        f = by_key.loc[key]
        label = codebook.question(str(f["question"])).wording
        rows.append(_Row(key, label, [float(f["value"])], [math.isnan(float(f["value"]))]))
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
    svg = _draw_hbars(rows, [("Part", OKABE_ITO["bluish_green"])], _footnote(base, notes, synthetic), spec.id, edition)
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
