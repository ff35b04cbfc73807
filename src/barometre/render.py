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

This module assembles the two documents of an edition (the publication and the technical
note) from their parts: :mod:`barometre.report_data` (what the templates print),
:mod:`barometre.technical_note` (the note's tables), :mod:`barometre.report_hooks` (texts
other layers fill) and :mod:`barometre.pdf` (the PDF output).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from barometre import fr
from barometre.charts import load_manifest, read_cells, read_figures
from barometre.codebook import Codebook, load_codebook
from barometre.comparisons import rule_text
from barometre.editorial import render_editorial
from barometre.figures import exclusions_summary, load_registry
from barometre.fr import nbsp_thousands
from barometre.pdf import URLRefusedError, check_url, pdf_identifier, print_html, project_url_fetcher, write_pdf
from barometre.quantifiers import quantifier_holds
from barometre.report_data import (
    RenderError,
    ReportData,
    average_text,
    date_period,
    format_bound,
    quantified_phrase,
)
from barometre.report_hooks import HOOKS, design_hook, disclosure_hooks
from barometre.technical_note import (
    conformity_rows,
    contradiction_notes,
    cross_tables,
    exclusion_counts,
    explanations,
    rule_label,
    source_label,
)
from barometre.typography import typeset_html

#: The report's API: what this module does, and the names of its parts that callers (the trends
#: report, the tests, the benchmark) import from here.
__all__ = [
    "render_report", "run_render_report", "make_environment", "narrative_of", "part_titles", "generic_parts",
    "published_keys", "editorial_variables", "source_line", "protect_inclusive_words", "source_date_epoch",
    "ROOT", "TEMPLATES_DIR", "MAIN_TEMPLATE", "DOCUMENT_TEMPLATES", "CSS_FILE", "CLOSED_TYPES",
    # report_data: what the templates print
    "RenderError", "ReportData", "average_text", "date_period", "format_bound", "nbsp_thousands", "quantified_phrase",
    # technical_note: the note's tables
    "conformity_rows", "contradiction_notes", "cross_tables", "exclusion_counts", "explanations",
    "rule_label", "source_label",
    # report_hooks: texts other layers fill
    "HOOKS", "design_hook", "disclosure_hooks",
    # pdf: WeasyPrint with a restricted URL fetcher
    "URLRefusedError", "check_url", "pdf_identifier", "print_html", "project_url_fetcher", "write_pdf",
]

log = logging.getLogger("barometre.render")
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "report_templates"
MAIN_TEMPLATE = "report.html.j2"
#: The two documents of an edition: the publication and the technical note.
DOCUMENT_TEMPLATES = {"rapport": MAIN_TEMPLATE, "note": "note_technique.html.j2"}
CSS_FILE = "report.css"


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
        autoescape=select_autoescape(enabled_extensions=("html", "j2", "html.j2"), default_for_string=True,
                                     default=True),
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

# --------------------------------------------------------------------------- narrative per edition

#: Closed question types: presented with a chart in the generic narrative.
CLOSED_TYPES = ("single", "ordinal", "band", "multiple", "ranking")


def narrative_of(edition: str, templates_dir: str | Path) -> str:
    """The edition's own key figures (``_key_figures_<edition>.html.j2``, with its editorial text) when there
    are, else ``generic``."""
    return str(edition) if (Path(templates_dir) / f"_key_figures_{edition}.html.j2").is_file() else "generic"


def part_titles(codebook: Codebook, published: Mapping[str, Any]) -> dict[int, str]:
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


def generic_parts(codebook: Codebook, published: Mapping[str, Any], data: ReportData,
                  charts: Mapping[str, dict]) -> tuple[list[dict], list[str]]:
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


# --------------------------------------------------------------------------- render


def _load(obj: T | str | Path, reader: Callable[[str | Path], T]) -> T:
    """``obj`` itself, or what ``reader`` reads from the file ``obj`` names."""
    if isinstance(obj, (str, Path)):
        return reader(obj)
    return obj


def _read_cleaning_log(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)


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
    return _render(
        edition,
        figures=_load(figures, read_figures),
        cells=_load(cells, read_cells),
        charts_dir=charts_dir,
        provenance=_load(provenance, _read_json),
        cleaning_log=_load(cleaning_log, _read_cleaning_log),
        config=config,
        codebook=_load(codebook, load_codebook),
        published=_load(published, _read_yaml),
        templates_dir=templates_dir,
        registry=_load(registry, load_registry) if registry is not None else None,
        document=document,
        hooks=hooks,
        editorial_dir=editorial_dir,
    )


def _render(
    edition: str,
    *,
    figures: pd.DataFrame,
    cells: pd.DataFrame,
    charts_dir: str | Path,
    provenance: Mapping[str, Any],
    cleaning_log: pd.DataFrame,
    config: Mapping[str, Any],
    codebook: Codebook,
    published: Mapping[str, Any],
    templates_dir: str | Path,
    registry: list[dict] | None,
    document: str,
    hooks: Mapping[str, str] | None,
    editorial_dir: str | Path | None,
) -> str:
    """:func:`render_report` once its inputs are read."""
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
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
        "source_line": lambda c: source_line(c, str(edition), published.get("survey", {}).get("publisher", ""),
                                             synthetic),
        "stamp": stamp,
        "charts": charts,
        "published_charts": [c["id"] for c in published.get("charts", [])],
        "pub": pub_by_id,
        "fig": data,
        "pct": data.pct, "n": data.n, "base": data.base, "quant": data.quant, "val": data.val, "ci": data.ci,
        "points": data.points, "large": data.large, "average": data.average, "value": data.value,
        "measure": data.measure, "unit_label": data.unit_label, "has": data.has, "soit": data.soit,
        "count_of": data.count_of, "definition": data.definition, "reading": data.reading, "status": data.status,
        "cell_pct": data.cell_pct, "is_top": data.is_top,
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
    # A template module's macros are attributes set at run time (``_macros.html.j2`` defines ``chart``).
    macros: Any = env.get_template("_macros.html.j2").make_module(context)

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

def editorial_variables(edition: str, context: Mapping[str, Any], small_base: int,
                        hooks: Mapping[str, str]) -> dict[str, str]:
    """Values an editorial placeholder may name besides figures (``{{ collecte }}``, ``{{ repondants }}``…)."""
    fieldwork = context["fieldwork"]
    tools = context["n_tools"] if context["n_tools_known"] else ""
    return {
        "edition": edition,
        "collecte": fieldwork,
        "collecte_phrase": (f", {fieldwork}" if fieldwork
                            else f" (les dates de collecte de l'édition {edition} ne sont pas publiées)"),
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

def _templates_dir(templates: Any) -> Path:
    """Folder of the templates declared as rule inputs (a file or a list of files), else the default."""
    if not templates:
        return TEMPLATES_DIR
    first = templates if isinstance(templates, (str, Path)) else next(iter(templates))
    return Path(first).parent


def run_render_report(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``render_report``: figures, tables, charts, provenance, cleaning log → the publication
    (``html``, ``pdf``) and, when asked, the technical note (``note_html``, ``note_pdf``)."""
    tables = Path(inputs["tables"])
    cells = tables / "cells.csv" if tables.is_dir() else tables
    # the hooks read processed tables and re-run the calibration: once for both documents
    hooks = {"design_summary": design_hook(edition, config, inputs, cells), **disclosure_hooks(edition, config, inputs)}
    for document, html_key, pdf_key in (("rapport", "html", "pdf"), ("note", "note_html", "note_pdf")):
        if html_key in outputs:
            _render_document(edition, config, inputs, cells, hooks, outputs[html_key], outputs.get(pdf_key), document)


def _render_document(edition: str, config: dict, inputs: dict[str, str], cells: Path, hooks: dict[str, str],
                     out_html: str, out_pdf: str | None, document: str) -> None:
    html = render_report(
        edition,
        figures=inputs["figures"],
        cells=cells,
        charts_dir=inputs["charts"],
        provenance=inputs["provenance"],
        cleaning_log=inputs["cleaning_log"],
        config=config,
        codebook=inputs["codebook"],
        published=inputs.get("published") or {},
        templates_dir=_templates_dir(inputs.get("templates")),
        registry=inputs.get("registry"),
        document=document,
        hooks=hooks,
    )
    html_path = Path(out_html)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(html, encoding="utf-8")
    log.info("wrote %s (%d characters)", html_path, len(html))
    if out_pdf:
        os.environ.setdefault("SOURCE_DATE_EPOCH", str(source_date_epoch(config)))
        write_pdf(html, out_pdf, base_url=html_path.parent)
        log.info("wrote %s", out_pdf)
