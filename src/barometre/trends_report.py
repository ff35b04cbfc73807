"""The trends report: harmonised indicators across editions, rendered with the report's templates.

``results/trends/rapport_tendances.html`` and ``.pdf`` are built from the outputs of
``rules/trends.smk`` only — ``trends.csv`` (one row per indicator and edition: value,
interval, base, comparability and its reason), ``questionnaire_differences.csv`` and
``charts/charts.json`` — through the template ``trends.html.j2``, which shares the
base template and stylesheet of the edition reports.

Every value printed comes from ``trends.csv`` (its ``value_label``, its interval and base
formatted by :mod:`barometre.fr`) and is wrapped in ``<span class="trend"
data-indicator=… data-edition=…>`` so that tests can check it. Same safety as
:mod:`barometre.render` (autoescape, inline SVG checked, restricted URL fetcher) and
same determinism (dates from ``SOURCE_DATE_EPOCH``).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from barometre import fr
from barometre.render import (
    TEMPLATES_DIR,
    _css,
    _inline_svg,
    _templates_dir,
    date_period,
    make_environment,
    protect_inclusive_words,
    source_date_epoch,
    write_pdf,
)
from barometre.trends import read_trends
from barometre.typography import typeset_html

log = logging.getLogger("barometre.trends_report")

TRENDS_TEMPLATE = "trends.html.j2"


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def indicator_blocks(trends: pd.DataFrame, charts: Mapping[str, dict]) -> list[dict]:
    """One block per indicator, in ``trends.csv`` order.

    Each block holds its editions' values, intervals, bases, comparability and chart.
    """
    blocks = []
    for ind in dict.fromkeys(trends["indicator"]):
        rows = trends[trends["indicator"] == ind]
        first = rows.iloc[0]
        editions: list[dict[str, Any]] = []
        for r in rows.to_dict("records"):
            value = _num(r["value"])
            lo, hi, base = _num(r["ci_low"]), _num(r["ci_high"]), _num(r["base"])
            measured = not math.isnan(value)
            editions.append({
                "edition": str(r["edition"]),
                "measured": measured,
                "value": str(r["value_label"]) if measured else fr.MISSING,
                "ci": fr.format_range(lo, hi) if measured and not (math.isnan(lo) or math.isnan(hi)) else "",
                "lo": None if math.isnan(lo) else lo, "hi": None if math.isnan(hi) else hi,
                "base": f"{fr.format_number(base)} {r['unit_label']}" if not math.isnan(base) else "",
                "comparable": bool(r["comparable"]),
                "note": str(r["note"] or ""),
                "published": str(r["published_figure"] or ""),
                "status": str(r["figure_status"] or ""),
            })
        n_comparable = sum(e["comparable"] and e["measured"] for e in editions)
        blocks.append({
            "id": str(ind),
            "label": str(first["label"]),
            "wording": str(first["wording"] or ""),
            "measure": str(first["measure"]),
            "editions": editions,
            "comparable": n_comparable >= 2,
            "n_comparable": n_comparable,
            "chart": charts.get(str(ind)),
        })
    return blocks


_KEY_WITH_LABEL_RE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+ \(([^)]*)\)")
_SNAKE_RE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")


def french_detail(text: str) -> str:
    """A questionnaire difference in French labels: « service_etat (Service de l'État) » → « « Service de l'État » »,
    any other harmonised key written as words (``from_1000_to_5000`` → « from 1000 to 5000 » never happens
    when the codebook gives the label)."""
    text = _KEY_WITH_LABEL_RE.sub(lambda m: f"« {m.group(1)} »", text)
    return _SNAKE_RE.sub(lambda m: m.group(0).replace("_", " "), text)


def summary_sentences(blocks: list[dict]) -> list[str]:
    """The summary paragraph: how many indicators compare, and for each comparable share whether the intervals
    of its first and last comparable editions overlap (no reading of a change when they do)."""
    comparable = [b for b in blocks if b["comparable"]]
    out = [f"Sur {fr.format_number(len(blocks))} indicateurs harmonisés, {fr.format_number(len(comparable))} "
           "se comparent sur au moins deux éditions ; les autres changent de question, de modalités ou de base."]
    overlap: list[str] = []
    apart: list[str] = []
    for b in comparable:
        eds = [e for e in b["editions"] if e["comparable"] and e["measured"] and e["lo"] is not None]
        if len(eds) < 2:
            continue
        first, last = eds[0], eds[-1]
        (overlap if first["lo"] <= last["hi"] and last["lo"] <= first["hi"] else apart).append(
            f"{b['label'][:1].lower()}{b['label'][1:]} "
            f"({first['edition']} : {first['value']} ; {last['edition']} : {last['value']})"
        )
    if overlap:
        out.append(
            "Les intervalles de la première et de la dernière édition se recouvrent pour : "
            + " ; ".join(overlap)
            + ". L'écart n'y est pas lisible comme une évolution."
        )
    if apart:
        out.append("Ils sont disjoints pour : " + " ; ".join(apart) + ". L'écart reste à lire avec prudence : "
                   "les répondants ne sont ni tirés au sort ni les mêmes d'une édition à l'autre.")
    return out


def difference_rows(differences: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Differences between questionnaires (every row but « identique »), and the variables found identical."""
    diffs: list[dict] = []
    same: list[dict] = []
    for r in differences.fillna("").to_dict("records"):
        row = {
            "harmonised": str(r["harmonised"]),
            "label": str(r["label"]),
            "pair": f"{r['edition_a']} → {r['edition_b']}",
            "difference": str(r["difference_label"]),
            "detail": french_detail(str(r["detail"])),
            "comparable": str(r["comparable"]).lower() in ("true", "1"),
            "note": str(r["note"]),
        }
        (same if r["difference"] == "identique" else diffs).append(row)
    return diffs, same


def render_trends_report(
    *, trends: pd.DataFrame | str | Path, differences: pd.DataFrame | str | Path, charts_dir: str | Path,
    config: dict, templates_dir: str | Path = TEMPLATES_DIR,
) -> str:
    """Render the trends report to one self-contained HTML string.

    Parameters
    ----------
    trends, differences
        ``trends.csv`` and ``questionnaire_differences.csv`` (frames or paths).
    charts_dir
        ``results/trends/charts`` (``charts.json`` and one SVG per chartable indicator).
    config
        The pipeline configuration (compared editions, their titles, fieldwork, synthetic flags).
    """
    import json

    if not isinstance(trends, pd.DataFrame):
        trends = read_trends(trends)
    if not isinstance(differences, pd.DataFrame):
        differences = pd.read_csv(differences, keep_default_na=False, na_values=[""], dtype=str)
    manifest = json.loads((Path(charts_dir) / "charts.json").read_text(encoding="utf-8"))
    charts = {}
    for c in manifest.get("charts", []):
        svg = (Path(charts_dir) / c["file"]).read_text(encoding="utf-8")
        charts[str(c["id"])] = {**c, "svg": _inline_svg(svg)}
    editions = [str(e) for e in dict.fromkeys(trends["edition"])]
    specs = config.get("editions", {})
    edition_rows = []
    for e in editions:
        spec = specs.get(e, {})
        fw = spec.get("fieldwork")
        edition_rows.append({
            "edition": e,
            "fieldwork": date_period(fw["start"], fw["end"]) if fw else "dates de collecte non publiées",
            "synthetic": bool(spec.get("synthetic", False)),
        })
    synthetic = bool(trends["synthetic"].any()) or any(r["synthetic"] for r in edition_rows)
    diffs, same = difference_rows(differences)
    blocks = indicator_blocks(trends, charts)
    epoch = source_date_epoch(config)
    stamp = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = make_environment(templates_dir)
    span = f"{editions[0]}–{editions[-1]}" if len(editions) > 1 else (editions[0] if editions else "")
    context = {
        "title": f"Baromètre de la démocratie locale numérique — évolutions {span}",
        "edition": span,
        "editions": edition_rows,
        "publisher": "Décider ensemble",
        "synthetic": synthetic,
        "css": _css(env),
        "stamp": stamp,
        "build_date": fr.format_date(dt.datetime.fromtimestamp(epoch, dt.UTC).date().isoformat()),
        "indicators": blocks,
        "n_indicators": fr.format_number(len(blocks)),
        "n_comparable": fr.format_number(sum(b["comparable"] for b in blocks)),
        "differences": diffs,
        "identical": same,
        "n_differences": fr.format_number(len(diffs)),
        "summary": summary_sentences(blocks),
        "confidence": fr.format_percent(100 * float(config.get("tabulation", {}).get("confidence", 0.95)), 0),
    }
    html = env.get_template(TRENDS_TEMPLATE).render(**context)
    return typeset_html(protect_inclusive_words(html))


def run_render_trends_report(config: dict, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
    """Rule ``render_trends_report``: trends.csv, questionnaire differences, trend charts → HTML + PDF."""
    html = render_trends_report(
        trends=inputs["trends"], differences=inputs["differences"], charts_dir=inputs["charts"], config=config,
        templates_dir=_templates_dir(inputs.get("templates")),
    )
    out_html = Path(outputs["html"])
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(html, encoding="utf-8")
    log.info("wrote %s (%d characters)", out_html, len(html))
    if "pdf" in outputs:
        os.environ.setdefault("SOURCE_DATE_EPOCH", str(source_date_epoch(config)))
        write_pdf(html, outputs["pdf"], base_url=out_html.parent)
        log.info("wrote %s", outputs["pdf"])
