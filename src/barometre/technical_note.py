"""The technical note's content: conformity, cross-tables, how each figure is computed, contradictions.

Each function turns the pipeline's outputs (``figures.csv``, ``cells.csv``, the cleaning log,
the figures registry, the published reference) into the rows the note's templates print:
appendix A (conformity with the published edition), appendix B (cross-tables with column
letters, suppressed cells printed « s »), the explanation of every figure, the contradictions
of the sources and the exclusions of the cleaning, with French names for every code.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypedDict

import pandas as pd
from markupsafe import Markup, escape

from barometre import fr
from barometre.codebook import Codebook
from barometre.comparisons import column_letters_legend, keep_letters
from barometre.figures import STATUS_LABELS, explanation
from barometre.fr import nbsp_thousands
from barometre.report_data import AVERAGE_MEASURES, RenderError, ReportData, average_text, format_bound

#: Dimensions of the cross-tables (appendix b), in column order, when the tables hold them.
CROSS_DIMENSIONS = ("collectivity_type", "role", "bp_territory_kind")
DIMENSION_TITLES = {
    "collectivity_type": "Type de collectivité",
    "role": "Statut",
    "bp_territory_kind": "Type de territoire",
    "tool_type": "Type d'outil",
}
SHARE_STATISTIC = {"single": "share", "ordinal": "share", "band": "share", "multiple": "share",
                   "ranking": "first_share"}

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
            "base": (fr.format_number(r["denominator"]) if (percent or averaged) and not pd.isna(r["denominator"])
                     else fr.MISSING),
            "bounds": (f"[{format_bound(float(low), percent)}\u202f; {format_bound(float(high), percent)}]"
                       if has_bounds else fr.MISSING),
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


class HeaderGroup(TypedDict):
    """A header cell of a cross-table, over the columns of one dimension."""

    dim: str
    title: str
    span: int


class TableColumn(TypedDict):
    """A column of a cross-table: one value of a dimension (or « Ensemble ») with its base and letter."""

    label: str
    dim: str
    base: str
    small: bool
    suppressed: bool
    letter: str


class TableCell(TypedDict):
    """A printed cell of a cross-table (``text`` is « s » under statistical secrecy)."""

    text: str
    secret: bool
    small: bool
    dim: str
    letters: str


class TableRow(TypedDict):
    """An answer (or a statistic of a numeric question) and its cells, column by column."""

    label: str
    cells: list[TableCell]


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
            stats: list[tuple[str, str | None]] = [("median", "Médiane"), ("mean", "Moyenne")]
        else:
            stats = [(SHARE_STATISTIC[q.type], None)]
        stat_names = [s for s, _ in stats]
        qc = qc[qc["statistic"].isin(stat_names)]
        columns: list[tuple[str, str, str | None]] = [("ensemble", "Ensemble", None)]  # dimension, value, title
        for dim in CROSS_DIMENSIONS:
            dvals = qc[qc["dimension"] == dim]
            if dvals.empty:
                continue
            for v in dict.fromkeys(dvals["dimension_value"]):
                base = dvals[dvals["dimension_value"] == v]["base"]
                bsupp = ("base_suppressed" in dvals
                         and bool(dvals[dvals["dimension_value"] == v]["base_suppressed"].any()))
                if not bsupp and (base.fillna(0) <= 0).all():
                    continue  # nobody in this column
                columns.append((dim, v, DIMENSION_TITLES.get(dim, dim)))
        header_groups: list[HeaderGroup] = []
        for dim, _, title in columns:
            if header_groups and header_groups[-1]["dim"] == dim:
                header_groups[-1]["span"] += 1
            else:
                header_groups.append({"dim": dim, "title": title or "", "span": 1})
        col_info: list[TableColumn] = []
        for dim, v, _ in columns:
            sel = qc[(qc["dimension"] == dim) & (qc["dimension_value"] == v)]
            bsupp = bool(sel["base_suppressed"].any()) if "base_suppressed" in sel else False
            base = sel["base"].max()
            small = bool(sel["small_base"].any())
            letter = column_letters_legend(qc, q.id, dim).get(v, "") if has_letters and dim != "ensemble" else ""
            col_info.append({"label": v, "dim": dim,
                             "base": "s" if bsupp or pd.isna(base) else fr.format_number(base),
                             "small": small and not bsupp, "suppressed": bsupp, "letter": letter})
        body: list[TableRow] = []
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
                vals: list[TableCell] = []
                for (dim, v, _), info in zip(columns, col_info, strict=True):
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


def contradiction_notes(data: ReportData, published: Mapping[str, Any]) -> list[dict]:
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
        entry = out.setdefault(str(r["id"]), {"id": str(r["id"]), "keys": [], "definition": str(r["definition"]),
                                              "readings": []})
        entry["keys"].append(r["key"])
        if reading not in entry["readings"]:
            entry["readings"].append(reading)
    for fid, entry in out.items():
        entry["published_note"] = pub_notes.get(fid, "")
    return list(out.values())


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
                    "lines": [(identifiers_as_code(label), identifiers_as_code(nbsp_thousands(text)))
                              for label, text in lines]})
    return out


_IDENTIFIER_RE = re.compile(r"(?<![\w{}])[A-Za-z0-9{}]+(?:_+[A-Za-z0-9{}]+)+(?![\w{}])")


def identifiers_as_code(text: str) -> Markup:
    """Raw column and variable names (``O{i}_OBJ_SQ002``, ``tool_objectives``) set as ``<code>``: the
    technical note names them for the audit, and marks them as identifiers, never as prose."""
    return Markup(_IDENTIFIER_RE.sub(lambda m: f"<code>{m.group(0)}</code>", str(escape(text))))

