"""The report: one set of jinja2 templates rendered to self-contained HTML, then to PDF.

Every number the text prints comes from the pipeline's outputs — ``figures.csv``
(named figures), ``cells.csv`` (tables), ``provenance.json``, the cleaning log,
the configuration — through the helpers given to the templates (``pct('F05')``,
``n('R01')``, ``base('F05')``, ``quant('F09', 'outil', 'outils')``…), never typed
in a template. Each printed figure is wrapped in ``<span class="fig"
data-fig="F05" data-kind="pct">`` so that tests can check it against ``figures.csv``.

Safety: autoescape is on for the template files (``*.html.j2``) and for strings;
free-text answers never reach the report (text questions are not tabulated and
never rendered); the PDF is produced with a URL fetcher that only serves files
inside the project and ``data:`` URIs.

Determinism: the HTML depends only on the inputs; the PDF takes its dates from
``SOURCE_DATE_EPOCH`` (or ``report.source_date_epoch``) and a PDF identifier
derived from the HTML, so two renders give the same bytes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from barometre import fr
from barometre.charts import load_manifest, read_cells, read_figures
from barometre.codebook import Codebook, load_codebook
from barometre.comparisons import column_letters_legend, keep_letters, rule_text
from barometre.editorial import render_editorial
from barometre.errors import BarometreError
from barometre.figures import STATUS_LABELS, exclusions_summary, explanation, load_registry
from barometre.quantifiers import quantifier_holds, quantify
from barometre.typography import typeset_html

log = logging.getLogger("barometre.render")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "report_templates"
MAIN_TEMPLATE = "report.html.j2"
#: The two documents of an edition: the publication and the technical note.
DOCUMENT_TEMPLATES = {"rapport": MAIN_TEMPLATE, "note": "note_technique.html.j2"}
CSS_FILE = "report.css"

#: Dimensions of the cross-tables (appendix b), in column order, when the tables hold them.
CROSS_DIMENSIONS = ("collectivity_type", "role", "bp_territory_kind")
DIMENSION_TITLES = {
    "collectivity_type": "Type de collectivité",
    "role": "Statut",
    "bp_territory_kind": "Type de territoire",
    "tool_type": "Type d'outil",
}
SHARE_STATISTIC = {"single": "share", "ordinal": "share", "band": "share", "multiple": "share", "ranking": "first_share"}


class RenderError(BarometreError):
    """The report cannot be rendered (unknown figure, missing chart…)."""


class URLRefusedError(ValueError):
    """The PDF renderer asked for a resource outside the project (refused)."""


# --------------------------------------------------------------------------- environment


def make_environment(templates_dir: str | Path = TEMPLATES_DIR) -> Environment:
    """The jinja2 environment of the report.

    Autoescape is on for ``.html``, ``.j2`` and ``.html.j2`` files, for templates
    built from strings, and by default for any other name: a figure definition
    holding ``<script>`` or ``{{7*7}}`` is printed literally. Undefined variables
    raise (``StrictUndefined``).
    """
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html", "j2", "html.j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = lambda v, d=1: fr.format_percent(v, d)
    env.filters["num"] = lambda v, d=0: fr.format_number(v, d)
    env.filters["dec"] = lambda v, d=1: fr.format_decimal(v, d)
    env.filters["date"] = fr.format_date
    env.filters["large"] = fr.format_large
    env.filters["breakable"] = lambda s: Markup(str(escape(s)).replace(".", ".<wbr>").replace("_", "_<wbr>"))
    env.filters["lower_first"] = lambda s: s[:1].lower() + s[1:] if s else s
    env.filters["upper_first"] = lambda s: s[:1].upper() + s[1:] if s else s
    return env


# --------------------------------------------------------------------------- small formatting helpers


def date_period(start: Any, end: Any) -> str:
    """« du 15 juin au 6 octobre 2017 » (the year once when both dates share it)."""
    s, e = fr.format_date(start), fr.format_date(end)
    s_year, e_year = s.rsplit(" ", 1)[-1], e.rsplit(" ", 1)[-1]
    if s_year == e_year:
        s = s.rsplit(" ", 1)[0]
    return f"du {s} au {e}"


def format_bound(value: float, percent: bool) -> str:
    """A conformity bound: integers without decimals, others with up to 2 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fr.MISSING
    if math.isinf(value):
        return "+\u221e" if value > 0 else fr.MINUS + "\u221e"
    if float(value).is_integer():
        text = fr.format_number(value)
    else:
        text = fr.format_decimal(value, 2)
        text = text.rstrip("0").rstrip(",") if "," in text else text
    return f"{text}\u202f%" if percent else text


def _span(text: str, key: str, kind: str, **attrs: str) -> Markup:
    extra = "".join(f' data-{k}="{escape(v)}"' for k, v in attrs.items())
    return Markup(f'<span class="fig" data-fig="{escape(key)}" data-kind="{escape(kind)}"{extra}>{escape(text)}</span>')


_THOUSANDS_RE = re.compile(r"(?<=\d) (?=\d{3}\b)")


def nbsp_thousands(text: str) -> str:
    """« 1 000 € » typed with an ordinary space → U+202F, so that a number is never split over two lines."""
    return _THOUSANDS_RE.sub(fr.NNBSP, text)


_RATIO_RE = re.compile(r"^(\d+) sur (\d+)$")


def quantified_phrase(phrase: str, singular: str, plural: str) -> str:
    """Put a quantifier before a noun: « 3 outils sur 4 », « plus de la moitié des outils », « aucun outil »."""
    m = _RATIO_RE.match(phrase)
    if m:
        n, d = int(m.group(1)), m.group(2)
        return f"{n} {singular if n < 2 else plural} sur {d}"
    if phrase == "aucun":
        return f"aucun {singular}"
    return f"{phrase} des {plural}"


#: Measures printed as a decimal number (« 1,82 € »), never rounded to an integer.
AVERAGE_MEASURES = ("mean", "median")
AVERAGE_DECIMALS = 2


def is_euro(row: Mapping) -> bool:
    """Whether a mean / median figure is an amount in euros (variable ``*_eur`` or « euros » in its definition)."""
    variable = str(row.get("question") or "")
    return variable.endswith("_eur") or "euro" in str(row.get("definition") or "").lower()


def average_text(value: float, row: Mapping, decimals: int = AVERAGE_DECIMALS) -> str:
    """« 1,82 € » / « 3,50 »: a mean or median with its decimals and, for an amount, the euro sign."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fr.MISSING
    text = fr.format_decimal(value, decimals)
    return f"{text}{fr.NBSP}€" if is_euro(row) else text


# --------------------------------------------------------------------------- the data given to templates


@dataclass
class ReportData:
    """Lookup of figures and cells for the templates; every printed number goes through here."""

    figures: pd.DataFrame
    cells: pd.DataFrame

    def __post_init__(self) -> None:
        if "key" not in self.figures.columns:
            comp = self.figures["component"].fillna("").astype(str)
            self.figures = self.figures.assign(component=comp, key=[f"{i}.{c}" if c else str(i) for i, c in zip(self.figures["id"], comp)])
        self._by_key = {r["key"]: r for r in self.figures.to_dict("records")}

    # -- figures ---------------------------------------------------------------
    def row(self, key: str) -> dict:
        try:
            return self._by_key[key]
        except KeyError:
            raise RenderError(f"figure {key!r} is not in figures.csv (known: {', '.join(sorted(self._by_key))})") from None

    def has(self, key: str) -> bool:
        return key in self._by_key

    def val(self, key: str) -> float:
        """Raw value of a figure (for conditions in templates, never printed as is)."""
        v = self.row(key)["value"]
        return float(v) if v is not None and not pd.isna(v) else math.nan

    def pct(self, key: str, decimals: int = 1) -> Markup:
        """« 88,9 % »: the value of a share figure (« secret statistique » when the publication layer withholds it)."""
        r = self.row(key)
        if r["measure"] not in ("share",):
            raise RenderError(f"pct({key!r}): figure is a {r['measure']}, not a share")
        if r.get("disclosure_status") == "suppressed":
            return _span("secret statistique", key, "secret")
        return _span(fr.format_percent(self.val(key), decimals), key, "pct", decimals=str(decimals))

    def n(self, key: str) -> Markup:
        """A count: the value of a count / distinct / sum figure, the numerator of a share."""
        r = self.row(key)
        v = self.val(key) if r["measure"] in ("count", "distinct", "sum") else float(r["numerator"])
        return _span(fr.format_number(v), key, "n")

    def base(self, key: str) -> Markup:
        """The denominator (base) of a share figure."""
        return _span(fr.format_number(float(self.row(key)["denominator"])), key, "base")

    def points(self, key: str, decimals: int = 1) -> Markup:
        """A difference in points, as an absolute value (« 2,3 »)."""
        return _span(fr.format_decimal(abs(self.val(key)), decimals), key, "points", decimals=str(decimals))

    def average(self, key: str, decimals: int = AVERAGE_DECIMALS) -> Markup:
        """A mean or median with its decimals (« 1,82 € »): never rounded to an integer."""
        r = self.row(key)
        if r["measure"] not in AVERAGE_MEASURES:
            raise RenderError(f"average({key!r}): figure is a {r['measure']}, not a mean or median")
        return _span(average_text(self.val(key), r, decimals), key, "average", decimals=str(decimals))

    def value(self, key: str) -> Markup:
        """The value of any figure, formatted by its measure (share, count, mean, median, difference)."""
        measure = self.row(key)["measure"]
        if measure == "share":
            return self.pct(key)
        if measure in AVERAGE_MEASURES:
            return self.average(key)
        if measure == "difference":
            return self.points(key) + Markup("\u00a0pt")
        return self.n(key)

    def measure(self, key: str) -> str:
        return str(self.row(key)["measure"])

    def unit_label(self, key: str) -> str:
        """French noun of the figure's unit (« répondants », « outils »…)."""
        from barometre.figures import UNIT_LABELS

        return UNIT_LABELS.get(str(self.row(key).get("unit")), "")

    def large(self, key: str) -> Markup:
        """A large quantity in words (« 4 millions »)."""
        return _span(fr.format_large(self.val(key)), key, "large")

    def ci(self, key: str) -> Markup:
        """The 95 % Wilson interval of a share, « [81,2 % ; 95,1 %] »."""
        r = self.row(key)
        return _span(fr.format_range(r["ci_low"], r["ci_high"]), key, "ci")

    def quant(self, key: str, singular: str | None = None, plural: str | None = None) -> Markup:
        """The true verbal quantifier of a share (:func:`barometre.quantifiers.quantify`), optionally before a noun."""
        phrase = quantify(self.val(key))
        text = quantified_phrase(phrase, singular, plural) if singular and plural else phrase
        return _span(text, key, "quant", phrase=phrase)

    def soit(self, key: str) -> Markup:
        """« , soit 3 sur 4 »: the quantifier after a percentage (empty when it would only repeat the figure)."""
        if self.row(key).get("disclosure_status") == "suppressed":
            return Markup("")
        phrase = quantify(self.val(key))
        if re.fullmatch(r"[\d\s\u202f,]+%", phrase):
            return Markup("")
        return Markup(", soit ") + _span(phrase, key, "quant", phrase=phrase)

    def count_of(self, key: str, singular: str, plural: str) -> Markup:
        """« 65 communes » / « 1 service de l'État »: a count with its noun, agreed in number."""
        v = self.val(key)
        noun = singular if (not math.isnan(v) and abs(v) < 2) else plural
        return self.n(key) + Markup(" ") + escape(noun)

    def definition(self, key: str) -> str:
        return str(self.row(key)["definition"])

    def reading(self, key: str) -> str:
        r = self.row(key).get("reading")
        return r if isinstance(r, str) else ""

    def status(self, key: str) -> str:
        return str(self.row(key)["status"])

    def published_sum(self, published: dict, fid: str) -> float:
        """Sum of the components of a published count (e.g. R03: 65 + 9 + 1 + 17)."""
        value = published[fid]["value"]
        return float(sum(value.values())) if isinstance(value, dict) else float(value)

    def sum_of(self, fid: str) -> float:
        """Sum of the computed components of a figure id."""
        rows = self.figures[self.figures["id"] == fid]
        return float(rows["value"].sum())

    # -- cells -------------------------------------------------------------------
    def cell(self, harmonised: str, answer_key: str, statistic: str = "share", dimension: str = "ensemble",
             value: str = "Ensemble") -> dict:
        sel = self.cells[(self.cells["harmonised"] == harmonised) & (self.cells["answer_key"] == answer_key)
                         & (self.cells["statistic"] == statistic) & (self.cells["dimension"] == dimension)
                         & (self.cells["dimension_value"] == value)]
        if len(sel) != 1:
            raise RenderError(f"cell {harmonised}/{answer_key}/{statistic}/{dimension}={value}: {len(sel)} rows")
        return sel.iloc[0].to_dict()

    def cell_pct(self, harmonised: str, answer_key: str, statistic: str = "share") -> Markup:
        """Share of one « Ensemble » cell of the tables (« s » when it is under statistical secrecy)."""
        c = self.cell(harmonised, answer_key, statistic)
        text = "s" if bool(c.get("suppressed")) else fr.format_percent(c["value"], 1)
        return _span(text, f"cell:{harmonised}:{answer_key}:{statistic}", "cell")

    def is_top(self, harmonised: str, answer_key: str, statistic: str = "share") -> bool:
        """Whether ``answer_key`` has the largest « Ensemble » value of the question (for wording choices)."""
        sel = self.cells[(self.cells["harmonised"] == harmonised) & (self.cells["statistic"] == statistic)
                         & (self.cells["dimension"] == "ensemble") & (self.cells["answer_key"] != "nsp")]
        if sel.empty or sel["value"].isna().all():
            return False
        best = sel["value"].max()
        mine = sel[sel["answer_key"] == answer_key]["value"]
        return bool(len(mine) and mine.iloc[0] == best)

    def ensemble_base(self, level: str) -> float:
        """Largest « Ensemble » base of a level (all respondents, all tools…)."""
        sel = self.cells[(self.cells["level"] == level) & (self.cells["dimension"] == "ensemble")]
        return float(sel["base"].max()) if len(sel) else math.nan


# --------------------------------------------------------------------------- building blocks


def conformity_rows(data: ReportData) -> list[dict]:
    """Appendix (a): every figure with its published wording, computed value, base, bounds and status."""
    rows, seen = [], set()
    for r in data.figures.to_dict("records"):
        percent = r["measure"] in ("share", "difference")
        value = r["value"]
        if r["measure"] == "difference":
            shown = f"{fr.format_decimal(value, 1)} pt"
        elif percent:
            shown = fr.format_percent(value, 1)
        elif r["measure"] in AVERAGE_MEASURES:
            shown = average_text(value, r)
        else:
            shown = fr.format_number(value)
        averaged = r["measure"] in AVERAGE_MEASURES
        quote = r.get("published_quote") or ""
        quote = quote if isinstance(quote, str) else ""
        first = r["id"] not in seen
        seen.add(r["id"])
        low, high = r.get("bound_low"), r.get("bound_high")
        has_bounds = low is not None and not pd.isna(low)
        rows.append({
            "key": r["key"],
            "definition": r["definition"],
            "quote": quote if first else ("(même citation)" if quote else ""),
            "value": shown,
            "base": fr.format_number(r["denominator"]) if (percent or averaged) and not pd.isna(r["denominator"]) else fr.MISSING,
            "bounds": (f"[{format_bound(float(low), percent)}\u202f; {format_bound(float(high), percent)}]" if has_bounds else fr.MISSING),
            "origin": r.get("bounds_origin") if isinstance(r.get("bounds_origin"), str) else "",
            "status": r["status"],
            "status_label": STATUS_LABELS.get(r["status"], r["status"]),
        })
    return rows


def exclusion_counts(cleaning_log: pd.DataFrame) -> list[dict]:
    """Exclusions of the cleaning log by rule and reason (action ``exclu:<rule>``), with counts."""
    ex = cleaning_log[cleaning_log["action"].astype(str).str.startswith("exclu:")]
    out = []
    for (source, action, reason), grp in ex.groupby(["source", "action", "reason"], sort=False):
        out.append({"source": source, "rule": str(action).removeprefix("exclu:"), "reason": reason, "count": len(grp),
                    "count_text": fr.format_number(len(grp))})
    return out


def _fmt_numeric(v: float, harmonised: str) -> str:
    if pd.isna(v):
        return "s"
    if harmonised.endswith("_year"):
        return f"{v:.1f}".replace(".", ",").removesuffix(",0")  # years: no thousands separator
    return fr.format_number(v) if abs(v) >= 100 else fr.format_decimal(v, 1)


def cross_tables(cells: pd.DataFrame, codebook: Codebook, small_base: int, letters_rule: str = "") -> list[dict]:
    """Appendix (b): one compact table per question, answers × (Ensemble + dimension values).

    Only publishable cells are printed: a suppressed cell prints ``s``, a suppressed
    base hides its whole column; small bases are flagged. With a ``letters`` column
    (:func:`barometre.comparisons.add_letters`), each breakdown column gets its letter,
    each value the letters of the columns it is significantly higher than (never a
    letter pointing to a cell printed ``s``) and the table ``letters_rule`` under it.
    """
    has_letters = "letters" in cells.columns
    tables = []
    for q in codebook.questions:
        if q.type == "text":
            continue
        qc = cells[cells["harmonised"] == q.harmonised]
        if qc.empty:
            continue
        if q.type == "numeric":
            stats = [("median", "Médiane"), ("mean", "Moyenne")]
        else:
            stats = [(SHARE_STATISTIC[q.type], None)]
        stat_names = [s for s, _ in stats]
        qc = qc[qc["statistic"].isin(stat_names)]
        columns = [("ensemble", "Ensemble", None)]
        for dim in CROSS_DIMENSIONS:
            dvals = qc[qc["dimension"] == dim]
            if dvals.empty:
                continue
            for v in dict.fromkeys(dvals["dimension_value"]):
                base = dvals[dvals["dimension_value"] == v]["base"]
                bsupp = bool(dvals[dvals["dimension_value"] == v]["base_suppressed"].any()) if "base_suppressed" in dvals else False
                if not bsupp and (base.fillna(0) <= 0).all():
                    continue  # nobody in this column
                columns.append((dim, v, DIMENSION_TITLES.get(dim, dim)))
        header_groups = []
        for dim, _, title in columns:
            if header_groups and header_groups[-1]["dim"] == dim:
                header_groups[-1]["span"] += 1
            else:
                header_groups.append({"dim": dim, "title": title or "", "span": 1})
        col_info = []
        for dim, v, _ in columns:
            sel = qc[(qc["dimension"] == dim) & (qc["dimension_value"] == v)]
            bsupp = bool(sel["base_suppressed"].any()) if "base_suppressed" in sel else False
            base = sel["base"].max()
            small = bool(sel["small_base"].any())
            letter = column_letters_legend(qc, q.id, dim).get(v, "") if has_letters and dim != "ensemble" else ""
            col_info.append({"label": v, "dim": dim, "base": "s" if bsupp or pd.isna(base) else fr.format_number(base),
                             "small": small and not bsupp, "suppressed": bsupp, "letter": letter})
        body = []
        keys = list(dict.fromkeys(qc[qc["dimension"] == "ensemble"].sort_index()["answer_key"]))
        for stat, stat_label in stats:
            for key in keys:
                rsel = qc[(qc["answer_key"] == key) & (qc["statistic"] == stat)]
                if rsel.empty:
                    continue
                whole = rsel[rsel["dimension"] == "ensemble"]
                if len(whole) and not bool(whole["suppressed"].any()) and float(whole["count"].fillna(0).max()) == 0:
                    continue  # an answer nobody gave: no empty row
                label = nbsp_thousands(stat_label or str(rsel["answer_label"].iloc[0]))
                vals = []
                for (dim, v, _), info in zip(columns, col_info):
                    c = rsel[(rsel["dimension"] == dim) & (rsel["dimension_value"] == v)]
                    if c.empty:
                        vals.append({"text": fr.MISSING, "secret": False, "small": info["small"], "dim": dim,
                                     "letters": ""})
                        continue
                    c = c.iloc[0]
                    secret = bool(c["suppressed"]) or info["suppressed"]
                    if secret:
                        text = "s"
                    elif q.type == "numeric":
                        text = _fmt_numeric(c["value"], q.harmonised)
                    else:
                        text = fr.format_percent(c["value"], 1)
                    vals.append({"text": text, "secret": secret, "small": info["small"], "dim": dim,
                                 "letters": "" if secret or not has_letters or pd.isna(c["letters"])
                                 else str(c["letters"])})
                for cell in vals:  # a letter naming a cell printed « s » would tell something about it
                    shown = {i["letter"] for i, o in zip(col_info, vals, strict=True)
                             if i["dim"] == cell["dim"] and not o["secret"]}
                    cell["letters"] = keep_letters(cell["letters"], shown)
                body.append({"label": label, "cells": vals})
        note = {
            "multiple": "plusieurs réponses possibles (total > 100\u202f%)",
            "ranking": "part des répondants classant la proposition en 1re position",
            "numeric": "valeurs numériques",
        }.get(q.type, "")
        tables.append({
            "id": q.id, "harmonised": q.harmonised, "wording": q.wording, "level": q.level, "type": q.type,
            "groups": header_groups, "columns": col_info, "rows": body, "note": note,
            "filtered": q.filter is not None,
            "letters_rule": letters_rule if any(c["letter"] for c in col_info) else "",
        })
    return tables


# --------------------------------------------------------------------------- narrative per edition

#: Closed question types: presented with a chart in the generic narrative.
CLOSED_TYPES = ("single", "ordinal", "band", "multiple", "ranking")


def narrative_of(edition: str, templates_dir: str | Path) -> str:
    """The edition's own key figures (``_key_figures_<edition>.html.j2``, with its editorial text) when there are, else ``generic``."""
    return str(edition) if (Path(templates_dir) / f"_key_figures_{edition}.html.j2").is_file() else "generic"


def part_titles(codebook: Codebook, published: dict) -> dict[int, str]:
    """Title of each questionnaire part: the codebook's ``parts``, else the published description when it
    gives every part, else « Partie n du questionnaire »."""
    parts = sorted({q.part for q in codebook.questions if q.part})
    listed = published.get("survey", {}).get("questionnaire_parts") or []
    out = {}
    for p in parts:
        if p in codebook.parts:
            out[p] = codebook.parts[p]
        elif len(listed) >= len(parts) and isinstance(listed[p - 1], str):
            out[p] = listed[p - 1][:1].upper() + listed[p - 1][1:]
        else:
            out[p] = f"Partie {p} du questionnaire"
    return out


def generic_parts(codebook: Codebook, published: dict, data: ReportData, charts: Mapping[str, dict]) -> tuple[list[dict], list[str]]:
    """Each questionnaire part with its questions, their charts and the registry figures that use them.

    Returns
    -------
    (parts, others)
        ``parts``: ``number``, ``title``, ``anchor``, ``questions`` (``question``, ``charts``, ``figures``);
        ``others``: keys of the figures that no question of a part uses (e.g. distinct counts).
    """
    titles = part_titles(codebook, published)
    by_question: dict[str, list[dict]] = {}
    for c in sorted(charts.values(), key=lambda c: c.get("order", 0)):
        if c.get("question_id"):
            by_question.setdefault(str(c["question_id"]), []).append(c)
    keys_by_question: dict[str, list[str]] = {}
    for r in data.figures.to_dict("records"):
        q = r.get("question")
        if isinstance(q, str) and q:
            keys_by_question.setdefault(q, []).append(r["key"])
    placed: set[str] = set()
    parts = []
    for number, title in titles.items():
        questions = []
        for q in codebook.questions:
            if q.part != number:
                continue
            keys = keys_by_question.get(q.harmonised, [])
            qcharts = by_question.get(q.id, [])
            if not keys and not qcharts:
                continue
            placed.update(keys)
            questions.append({"question": q, "charts": qcharts, "figures": keys})
        parts.append({"number": number, "title": title, "anchor": f"partie-{number}", "questions": questions})
    others = [k for k in data.figures["key"] if k not in placed]
    return parts, others


def published_keys(data: ReportData) -> list[str]:
    """Keys of the figures compared with a published value (status « pass » or « fail »), in registry order."""
    return [r["key"] for r in data.figures.to_dict("records") if r["status"] in ("pass", "fail")]


def contradiction_notes(data: ReportData, published: dict) -> list[dict]:
    """The readings the registry states for figures whose published wording is ambiguous or contradictory.

    One entry per figure id: the definition, the registry ``reading`` of each component and, when the
    published reference notes an inconsistency, that note (``note`` of the published figure).
    """
    pub_notes = {str(f["id"]): f.get("note", "") for f in published.get("figures", []) if f.get("note")}
    out: dict[str, dict] = {}
    for r in data.figures.to_dict("records"):
        reading = r.get("reading")
        if not (isinstance(reading, str) and reading.strip()):
            continue
        entry = out.setdefault(str(r["id"]), {"id": str(r["id"]), "keys": [], "definition": str(r["definition"]), "readings": []})
        entry["keys"].append(r["key"])
        if reading not in entry["readings"]:
            entry["readings"].append(reading)
    for fid, entry in out.items():
        entry["published_note"] = pub_notes.get(fid, "")
    return list(out.values())


# --------------------------------------------------------------------------- render


def _load(obj: Any, reader) -> Any:
    if isinstance(obj, (str, Path)):
        return reader(obj)
    return obj


def _read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _read_yaml(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def source_date_epoch(config: Mapping) -> int:
    """``SOURCE_DATE_EPOCH`` from the environment, else ``report.source_date_epoch`` of the configuration."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    return int(config.get("report", {}).get("source_date_epoch", 0))


def _css(env: Environment) -> Markup:
    loader = env.loader
    assert isinstance(loader, FileSystemLoader)
    path = Path(loader.searchpath[0]) / CSS_FILE
    css = path.read_text(encoding="utf-8")
    if "</style" in css.lower():
        raise RenderError(f"{path}: a stylesheet cannot contain '</style'")
    return Markup(css)


def _inline_svg(svg: str) -> Markup:
    """Chart SVG for inlining: must be a bare <svg> element (no script, no external reference)."""
    text = svg.strip()
    if not text.startswith("<svg"):
        raise RenderError("chart SVG must start with <svg>")
    low = text.lower()
    if "<script" in low or "javascript:" in low or re.search(r"""href="(?!#)""", text):
        raise RenderError("chart SVG holds a script or an external reference")
    return Markup(text)


def render_report(
    edition: str,
    *,
    figures: pd.DataFrame | str | Path,
    cells: pd.DataFrame | str | Path,
    charts_dir: str | Path,
    provenance: dict | str | Path,
    cleaning_log: pd.DataFrame | str | Path,
    config: dict,
    codebook: Codebook | str | Path,
    published: dict | str | Path,
    templates_dir: str | Path = TEMPLATES_DIR,
    registry: list[dict] | str | Path | None = None,
    document: str = "rapport",
    hooks: Mapping[str, str] | None = None,
    editorial_dir: str | Path | None = None,
) -> str:
    """Render the report of ``edition`` to one self-contained HTML string.

    Parameters
    ----------
    edition
        Edition rendered (key of ``config['editions']``).
    figures, cells, cleaning_log
        ``figures.csv``, ``cells.csv`` and ``cleaning_log.csv`` (frames or paths).
    charts_dir
        Folder of the chart SVGs and ``charts.json``.
    provenance
        ``provenance.json`` (dict or path).
    config
        The pipeline configuration (fieldwork dates, synthetic flag, thresholds).
    codebook, published
        The edition's codebook and published reference (objects or paths).
    templates_dir
        Folder of the jinja2 templates and ``report.css``.
    registry
        The edition's figures registry (list or path): with it, the appendix
        explains how each figure is computed, as ``python -m barometre explain`` does.
    document
        ``"rapport"`` (the publication) or ``"note"`` (the technical note).
    hooks
        Texts other layers provide, empty by default: ``disclosure_summary`` (methodology),
        ``audit_summary`` and ``design_summary`` (technical note).
    editorial_dir
        Folder of the editorial Markdown tree (default ``editorial/``).

    Returns
    -------
    str
        The HTML document (CSS and SVG inlined, no script, no external resource).
    """
    figures = _load(figures, read_figures)
    cells = _load(cells, read_cells)
    cleaning_log = _load(cleaning_log, lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""], dtype=str))
    provenance = _load(provenance, _read_json)
    codebook = _load(codebook, load_codebook)
    published = _load(published, _read_yaml)
    registry = _load(registry, load_registry) if registry is not None else None
    spec = config["editions"][str(edition)]
    synthetic = bool(spec.get("synthetic", False))
    small_base = int(config.get("disclosure", {}).get("small_base", 30))
    min_cell = int(config.get("disclosure", {}).get("min_cell", 3))

    manifest = load_manifest(charts_dir)
    charts = {}
    for c in manifest["charts"]:
        charts[c["id"]] = {**c, "svg": _inline_svg(c["svg"])}
    for c in published.get("charts", []):
        if c["id"] not in charts:
            raise RenderError(f"chart {c['id']} of the published edition is missing from {charts_dir}")
        if charts[c["id"]]["title"] != c["title"]:
            raise RenderError(f"chart {c['id']}: title differs from the published one")

    data = ReportData(figures=figures, cells=cells)
    epoch = source_date_epoch(config)
    stamp = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    pub_by_id = {f["id"]: f for f in published.get("figures", [])}
    raw_roles = set(spec.get("raw", {}))
    raw_files = [
        {"path": p, "role": info.get("role", ""), "sha": str(info.get("sha256", ""))[:16],
         "bytes": fr.format_number(info.get("bytes"))}
        for p, info in provenance.get("inputs", {}).items() if info.get("role") in raw_roles
    ]
    git = provenance.get("git") or {}
    env = make_environment(templates_dir)
    narrative = narrative_of(str(edition), templates_dir)
    fieldwork = spec.get("fieldwork")
    parts, other_figures = generic_parts(codebook, published, data, charts)
    context = {
        "edition": str(edition),
        "narrative": narrative,
        "parts": parts,
        "other_figures": other_figures,
        "published_figures": published_keys(data),
        "contradictions": contradiction_notes(data, published),
        "generic_sections": [("chiffres-cles", "Chiffres clés", False), ("methodologie", "Méthodologie", False)]
        + [(p["anchor"], p["title"], False) for p in parts if p["questions"]]
        + [("annexe-conformite", "Annexe A – Conformité avec l'édition publiée", True),
           ("annexe-tableaux", "Annexe B – Tableaux croisés", True),
           ("annexe-glossaire", "Annexe C – Glossaire", True)],
        "title": spec.get("title", codebook.title),
        "synthetic": synthetic,
        "publisher": published.get("survey", {}).get("publisher", ""),
        # Fieldwork dates only when configured (2018: not published); the year of the edition otherwise.
        "fieldwork": date_period(fieldwork["start"], fieldwork["end"]) if fieldwork else "",
        "fieldwork_end_year": str(fieldwork["end"])[:4] if fieldwork else str(edition),
        "css": _css(env),
        "source_line": lambda c: source_line(c, str(edition), published.get("survey", {}).get("publisher", ""), synthetic),
        "stamp": stamp,
        "charts": charts,
        "published_charts": [c["id"] for c in published.get("charts", [])],
        "pub": pub_by_id,
        "fig": data,
        "pct": data.pct, "n": data.n, "base": data.base, "quant": data.quant, "val": data.val, "ci": data.ci,
        "points": data.points, "large": data.large, "average": data.average, "value": data.value,
        "measure": data.measure, "unit_label": data.unit_label, "has": data.has, "soit": data.soit, "count_of": data.count_of,
        "definition": data.definition, "reading": data.reading, "status": data.status, "cell_pct": data.cell_pct, "is_top": data.is_top,
        "label": lambda q, k: nbsp_thousands(codebook.question(q).label_of(k)),
        "published_sum": lambda fid: fr.format_number(data.published_sum(pub_by_id, fid)),
        "published_value": lambda fid: fr.format_number(pub_by_id[fid]["value"]),
        "computed_sum": lambda fid: fr.format_number(data.sum_of(fid)),
        "codebook": codebook,
        "n_respondents": fr.format_number(data.ensemble_base("respondent")),
        "n_tools": fr.format_number(data.ensemble_base("tool")),
        "n_bp": fr.format_number(data.ensemble_base("bp")),
        "exclusions": exclusion_counts(cleaning_log),
        "exclusions_total": fr.format_number(int(cleaning_log["action"].astype(str).str.startswith("exclu:").sum())),
        "conformity": conformity_rows(data),
        "explanations": explanations(figures, registry, codebook, cleaning_log) if registry is not None else [],
        "exclusions_line": exclusions_summary(cleaning_log),
        "cross_tables": cross_tables(cells, codebook, small_base, letters_rule=rule_text(config)),
        "small_base": fr.format_number(small_base),
        "min_cell": fr.format_number(min_cell),
        "provenance": {
            "commit": (git.get("commit") or "")[:12],
            "dirty": git.get("dirty"),
            "build_date": fr.format_date(provenance.get("build_date")) if provenance.get("build_date") else fr.MISSING,
            "raw_files": raw_files,
            "n_inputs": fr.format_number(len(provenance.get("inputs", {}))),
            "python": provenance.get("python", ""),
            "version": provenance.get("pipeline_version", ""),
        },
        "holds": quantifier_holds,
        "fmt_pct": lambda v, d=1: fr.format_percent(v, d),
        "fmt_num": fr.format_number,
        "tool_blocks": fr.format_number(codebook.sources.get("survey", {}).get("tool_blocks", {}).get("count", 0)),
        "confidence": fr.format_percent(100 * float(config.get("tabulation", {}).get("confidence", 0.95)), 0),
        "questionnaire_parts": sorted({q.part for q in codebook.questions if q.part}),
        "part_titles": part_titles(codebook, published),
        "n_tools_known": not math.isnan(data.ensemble_base("tool")),
        "n_bp_known": not math.isnan(data.ensemble_base("bp")),
    }
    hooks = {k: str((hooks or {}).get(k) or "") for k in HOOKS}
    variables = editorial_variables(str(edition), context, small_base, hooks)
    macros = env.get_template("_macros.html.j2").make_module(context)

    def editorial(name: str):
        return render_editorial(name, str(edition), figures, small_base=small_base, variables=variables,
                                chart=lambda cid: macros.chart(charts[cid]),
                                **({"root": editorial_dir} if editorial_dir else {}))

    context.update(hooks, document=document, editorial=editorial, source_label=source_label, rule_label=rule_label,
                   parts_toc=[(p["anchor"], p["title"], False) for p in parts if p["questions"]])
    if document not in DOCUMENT_TEMPLATES:
        raise RenderError(f"document {document!r} inconnu (attendu : {', '.join(DOCUMENT_TEMPLATES)})")
    html = env.get_template(DOCUMENT_TEMPLATES[document]).render(**context)
    return typeset_html(protect_inclusive_words(html))


#: Template variables other layers fill (publication layer, disclosure audit, survey design); empty by default.
HOOKS = ("disclosure_summary", "audit_summary", "design_summary")

#: French names of the raw sources and cleaning rules of the log (codes never shown to a reader).
SOURCE_LABELS = {"survey": "questionnaire", "bp_inventory": "inventaire des budgets participatifs",
                 "codebook": "dictionnaire des variables"}
RULE_LABELS = {"test": "réponse de test", "duplicate": "doublon", "incomplete": "réponse incomplète",
               "empty": "réponse vide", "out_of_period": "hors période de collecte"}


def source_label(code: str) -> str:
    """French name of a raw source (« questionnaire »), the code itself when it is not listed."""
    return SOURCE_LABELS.get(str(code), str(code).replace("_", " "))


def rule_label(code: str) -> str:
    """French name of a cleaning rule (« doublon »)."""
    return RULE_LABELS.get(str(code), str(code).replace("_", " "))


def editorial_variables(edition: str, context: Mapping[str, Any], small_base: int, hooks: Mapping[str, str]) -> dict[str, str]:
    """Values an editorial placeholder may name besides figures (``{{ collecte }}``, ``{{ repondants }}``…)."""
    fieldwork = context["fieldwork"]
    tools = context["n_tools"] if context["n_tools_known"] else ""
    return {
        "edition": edition,
        "collecte": fieldwork,
        "collecte_phrase": f", {fieldwork}" if fieldwork else f" (les dates de collecte de l'édition {edition} ne sont pas publiées)",
        "repondants": context["n_respondents"],
        "outils": tools,
        "outils_phrase": f", qui ont décrit {tools} outils numériques" if tools else "",
        "seuil_effectif": fr.format_number(small_base),
        "seuil_case": context["min_cell"],
        "confiance": context["confidence"],
        **hooks,
    }


def source_line(chart: Mapping[str, Any], edition: str, publisher: str, synthetic: bool) -> str:
    """« Source : Décider ensemble, baromètre 2017 (reconstruction) — Champ : outils décrits, n = 45 »."""
    who = publisher or "Décider ensemble"
    unit = str(chart.get("unit") or "répondants")
    lo, hi = chart.get("base_min"), chart.get("base_max")
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        n = ""
    elif lo == hi:
        n = f", n = {fr.format_number(lo)}"
    else:
        n = f", n = {fr.format_number(lo)} à {fr.format_number(hi)}"
    origin = " (données reconstruites)" if synthetic else ""
    return f"Source : {who}, baromètre de la démocratie locale numérique {edition}{origin} — Champ : {unit}{n}."


def explanations(figures: pd.DataFrame, registry: list[dict], codebook: Codebook,
                 cleaning_log: pd.DataFrame) -> list[dict]:
    """How each figure of ``figures.csv`` is computed (:func:`barometre.figures.explanation`), in table order.

    Returns
    -------
    list of dict
        ``key``, ``definition`` and ``lines`` (label, text) of each figure; the raw
        columns of tool questions are named once with ``{i}`` for the block, and
        the exclusions (the same for every figure) are left to the caller.
    """
    entries = {(str(e["id"]), str(e.get("component") or "")): e for e in registry}
    blocks = codebook.sources.get("survey", {}).get("tool_blocks", {}).get("count")
    out = []
    for row in figures.to_dict("records"):  # as read by read_figures: with its ``key``
        entry = entries.get((str(row["id"]), row["component"])) or entries.get((str(row["id"]), ""))
        if entry is None:
            raise RenderError(f"figure {row['key']} of figures.csv is not in the registry")
        lines = explanation(row, entry, codebook, cleaning_log, tool_blocks=blocks, compact_blocks=True,
                            with_exclusions=False)
        out.append({"key": row["key"], "definition": row["definition"],
                    "lines": [(identifiers_as_code(label), identifiers_as_code(nbsp_thousands(text))) for label, text in lines]})
    return out


_IDENTIFIER_RE = re.compile(r"(?<![\w{}])[A-Za-z0-9{}]+(?:_+[A-Za-z0-9{}]+)+(?![\w{}])")


def identifiers_as_code(text: str) -> Markup:
    """Raw column and variable names (``O{i}_OBJ_SQ002``, ``tool_objectives``) set as ``<code>``: the
    technical note names them for the audit, and marks them as identifiers, never as prose."""
    return Markup(_IDENTIFIER_RE.sub(lambda m: f"<code>{m.group(0)}</code>", str(escape(text))))


_INCLUSIVE_RE = re.compile(r"[\w'’-]*\w·\w+(?:·\w+)*")
_SKIP_BLOCK_RE = re.compile(r"(<svg\b.*?</svg>|<style\b.*?</style>|<head\b.*?</head>|<[^>]*>)", re.S)


def protect_inclusive_words(html: str) -> str:
    """Wrap words of inclusive writing (« élu·es ») in ``<span class="nw">`` in the body text.

    WeasyPrint's line breaker mishandles the middle dot (it leaves a line almost
    empty before such a word); a no-wrap span avoids it. Tags, attributes, the
    ``<head>``, styles and inline SVGs are left untouched.
    """
    parts = _SKIP_BLOCK_RE.split(html)
    for i in range(0, len(parts), 2):  # even indices: text between tags
        if "·" in parts[i]:
            parts[i] = _INCLUSIVE_RE.sub(lambda m: f'<span class="nw">{m.group(0)}</span>', parts[i])
    return "".join(parts)


# --------------------------------------------------------------------------- PDF


def _weasy_fetcher_class():
    from weasyprint.urls import URLFetcher

    class ProjectURLFetcher(URLFetcher):
        """Serves ``data:`` URIs and files inside ``root``; refuses everything else (http, https, other files)."""

        def __init__(self, root: str | Path, **kwargs):
            super().__init__(fail_on_errors=True, allowed_protocols=("file", "data"), **kwargs)
            self.root = Path(root).resolve()

        def fetch(self, url, headers=None):
            check_url(url, self.root)
            return super().fetch(url, headers)

    return ProjectURLFetcher


def check_url(url: str, root: str | Path) -> None:
    """Raise :class:`URLRefusedError` unless ``url`` is a ``data:`` URI or a file inside ``root``."""
    from urllib.parse import unquote, urlparse

    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return
    if scheme != "file":
        raise URLRefusedError(f"ressource refusée : {url!r} (seuls les fichiers du projet et les URI data: sont servis)")
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise URLRefusedError(f"ressource refusée : {url!r} (hôte distant)")
    path = Path(unquote(parsed.path)).resolve()
    root = Path(root).resolve()
    if path != root and root not in path.parents:
        raise URLRefusedError(f"ressource refusée : {url!r} (hors du projet {root})")


def project_url_fetcher(root: str | Path = ROOT):
    """A WeasyPrint URL fetcher restricted to ``root`` and ``data:`` URIs (errors stop the rendering)."""
    return _weasy_fetcher_class()(root)


_FIG_SPAN_RE = re.compile(r'<span class="fig"[^>]*>(.*?)</span>', re.S)


def print_html(html: str) -> str:
    """The HTML given to WeasyPrint: the figure markers (``<span class="fig">``) are unwrapped.

    They only serve traceability and tests; WeasyPrint's line breaker fails to go back
    to an earlier break opportunity when a non-breaking run (« (n = 45), ») crosses
    the edge of an inline element, and then leaves a line almost empty.
    """
    return _FIG_SPAN_RE.sub(r"\1", html)


def pdf_identifier(html: str) -> bytes:
    """Stable PDF file identifier derived from the HTML."""
    return hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")


def write_pdf(html: str, path: str | Path, base_url: str | Path, *, root: str | Path | None = None) -> None:
    """Render ``html`` to a PDF at ``path`` with WeasyPrint (print CSS, A4).

    Parameters
    ----------
    html
        The report HTML (as returned by :func:`render_report`).
    path
        Output PDF file.
    base_url
        Base for relative URLs (a folder of the project).
    root
        Folder the URL fetcher may read (default: the project root).
    """
    for name in ("weasyprint.progress", "fontTools"):  # per-step progress and font subsetting chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    from weasyprint import HTML

    root = Path(root) if root is not None else ROOT
    fetcher = project_url_fetcher(root)
    base = Path(base_url).resolve()
    document = HTML(string=print_html(html), base_url=base.as_uri() + "/", url_fetcher=fetcher, media_type="print")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    document.write_pdf(str(path), pdf_identifier=pdf_identifier(html), uncompressed_pdf=False)


def _templates_dir(templates: Any) -> Path:
    """Folder of the templates declared as rule inputs (a file or a list of files), else the default."""
    if not templates:
        return TEMPLATES_DIR
    first = templates if isinstance(templates, (str, Path)) else list(templates)[0]
    return Path(first).parent


def run_render_report(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``render_report``: figures, tables, charts, provenance, cleaning log → the publication
    (``html``, ``pdf``) and, when asked, the technical note (``note_html``, ``note_pdf``)."""
    for document, html_key, pdf_key in (("rapport", "html", "pdf"), ("note", "note_html", "note_pdf")):
        if html_key in outputs:
            _render_document(edition, config, inputs, outputs[html_key], outputs.get(pdf_key), document)


def design_hook(edition: str, config: dict, inputs: Mapping[str, str], cells: str | Path) -> str:
    """The ``design_summary`` paragraph of the technical note, from the processed frames of ``inputs``
    (``respondents``, ``tools``, ``bp``); empty when the rule does not pass them."""
    from barometre.design import design_summary
    from barometre.pipeline import LEVEL_FRAMES, _calibrated, read_processed

    if not all(k in inputs for k in LEVEL_FRAMES.values()):
        return ""
    frames, calibration = _calibrated(read_processed(dict(inputs)), (config.get("calibration") or {}).get(str(edition)))
    return design_summary(config, {level: frames[name] for level, name in LEVEL_FRAMES.items()},
                          codebook=load_codebook(inputs["codebook"]), cells=read_cells(cells), calibration=calibration)


def disclosure_hooks(edition: str, config: Mapping, inputs: Mapping[str, str]) -> dict[str, str]:
    """``disclosure_summary`` (methods: what the secrecy policy protects and how, with every exemption's
    reason) and ``audit_summary`` (technical note: the disclosure audit in one sentence)."""
    from barometre.audit import audit_summary
    from barometre.publication import Policy, policy_summary

    if "disclosure" not in config:
        return {}
    policy = Policy.from_config(config["disclosure"], str(edition))
    text = policy_summary(policy)
    reasons = list(dict.fromkeys(e.reason.rstrip(".") for e in policy.exemptions))
    reasons = [r[:1].lower() + r[1:] for r in reasons]  # one sentence: « Exceptions retenues : a ; b. »
    if reasons:
        text += " Exceptions retenues : " + " ; ".join(reasons) + "."
    audit = inputs.get("disclosure_audit")
    return {"disclosure_summary": text, "audit_summary": audit_summary(audit) if audit and Path(audit).exists() else ""}


def _render_document(edition: str, config: dict, inputs: dict[str, str], out_html: str, out_pdf: str | None,
                     document: str) -> None:
    tables = Path(inputs["tables"])
    html = render_report(
        edition,
        figures=inputs["figures"],
        cells=tables / "cells.csv" if tables.is_dir() else tables,
        charts_dir=inputs["charts"],
        provenance=inputs["provenance"],
        cleaning_log=inputs["cleaning_log"],
        config=config,
        codebook=inputs["codebook"],
        published=inputs.get("published") or {},
        templates_dir=_templates_dir(inputs.get("templates")),
        registry=inputs.get("registry"),
        document=document,
        hooks={"design_summary": design_hook(edition, config, inputs,
                                             tables / "cells.csv" if tables.is_dir() else tables),
               **disclosure_hooks(edition, config, inputs)},
    )
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(html, encoding="utf-8")
    log.info("wrote %s (%d characters)", out_html, len(html))
    if out_pdf:
        os.environ.setdefault("SOURCE_DATE_EPOCH", str(source_date_epoch(config)))
        write_pdf(html, out_pdf, base_url=out_html.parent)
        log.info("wrote %s", out_pdf)
