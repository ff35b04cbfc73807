"""Shared helpers of the reconstruction generators (2016, 2018): draws, SPSS layout, writing.

The 2016 and 2018 generators (``generate_2016.py``, ``generate_2018.py``) build
their survey export the way ``generate_2017.py`` does: a LimeSurvey-like SPSS
file whose columns come from the edition's codebook. The generic part lives
here; each generator keeps its targets, its plan of respondents and its notes.
``generate_2017.py`` is left as it is (its output is pinned byte for byte).

Like the generators, this module reads codebooks with PyYAML and imports
nothing from ``src/barometre``: the data must not depend on the code that is
meant to check it.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyreadstat
import yaml

NSP = "nsp"
"""Answer key standing for the user-missing code 99 (« ne se prononce pas »)."""
NSP_CODE = 99
NSP_VALUE_LABEL = "Ne sait pas / ne se prononce pas"
MISSING = None
"""Answer value standing for system-missing (question skipped or not shown)."""

SAV_DATE_OFFSET = 92   # char creation_date[9]  ('dd mmm yy')
SAV_TIME_OFFSET = 101  # char creation_time[8]  ('hh:mm:ss')

FIRST_NAMES = ("Camille", "Dominique", "Claude", "Alex", "Sacha", "Charlie", "Morgan", "Lou",
               "Maxime", "Stéphane", "Andréa", "Noa", "Eden", "Jordan", "Gaël", "Yannick")


# --------------------------------------------------------------------------- draws
def component_rng(seed: int, component: str) -> np.random.Generator:
    """Random generator of one component, derived from the edition's fixed seed.

    Parameters
    ----------
    seed
        The edition's seed.
    component
        Stable name of the component (e.g. ``"tools"``).

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator seeded with ``[seed, crc32(component)]``: changing one
        component leaves the draws of the others unchanged.
    """
    return np.random.default_rng([seed, zlib.crc32(component.encode("utf-8"))])


def expand_counts(counts: dict[Any, int]) -> list[Any]:
    """Expand ``{value: count}`` into a list, in the mapping's order."""
    return [value for value, n in counts.items() for _ in range(n)]


def shuffled_values(rng: np.random.Generator, counts: dict[Any, int]) -> list[Any]:
    """Values with exact target counts, in random order."""
    values = expand_counts(counts)
    return [values[i] for i in rng.permutation(len(values))]


def assign_multiple(rng: np.random.Generator, n_rows: int, counts: dict[str, int]) -> list[dict[str, int]]:
    """Tick options of a multiple-response question with exact column totals.

    Every row gets at least one option: each row first receives one option drawn
    in proportion to the ticks still to give, then the remaining ticks of each
    option go to random rows that do not have it yet.

    Parameters
    ----------
    rng
        Random generator.
    n_rows
        Number of answering rows.
    counts
        Number of rows ticking each option (each at most ``n_rows``; the total
        at least ``n_rows``).

    Returns
    -------
    list of dict
        One ``{option key: 0 or 1}`` per row.
    """
    keys = list(counts)
    total = np.array([counts[k] for k in keys], dtype=int)
    if total.sum() < n_rows or (total > n_rows).any():
        raise ValueError(f"infeasible option counts {counts} for {n_rows} rows")
    ticks = np.zeros((n_rows, len(keys)), dtype=int)
    remaining = total.copy()
    for row in rng.permutation(n_rows):
        k = rng.choice(len(keys), p=remaining / remaining.sum())
        ticks[row, k] = 1
        remaining[k] -= 1
    for k in range(len(keys)):
        free = np.flatnonzero(ticks[:, k] == 0)
        ticks[rng.choice(free, size=remaining[k], replace=False), k] = 1
    return [dict(zip(keys, map(int, row), strict=True)) for row in ticks]


def multiple_rows(rng: np.random.Generator, n: int, answered: int, counts: dict[str, int],
                  nsp_only: int = 0, nsp_key: str | None = NSP) -> list[dict[str, int] | None]:
    """Answers to a multiple-response question: ticks, « ne se prononce pas » only, or blank.

    Parameters
    ----------
    rng
        Random generator.
    n
        Number of respondents asked.
    answered
        How many tick at least one box (« ne se prononce pas » included).
    counts
        Exact number of rows ticking each substantive option.
    nsp_only
        How many answering rows tick only the exclusive « ne se prononce pas ».
    nsp_key
        Key of the exclusive option, ``None`` when the question has none.

    Returns
    -------
    list
        ``n`` tick dictionaries (in random order) or ``None`` for a blank question.
    """
    substantive = assign_multiple(rng, answered - nsp_only, counts)
    extra = {nsp_key: 0} if nsp_key else {}
    rows: list[dict[str, int] | None] = [dict(t, **extra) for t in substantive]
    if nsp_only:
        if not nsp_key:
            raise ValueError("nsp_only needs an exclusive option")
        rows += [dict({k: 0 for k in counts}, **{nsp_key: 1}) for _ in range(nsp_only)]
    rows += [None] * (n - answered)
    return [rows[i] for i in rng.permutation(n)]


def text_answers(rng: np.random.Generator, n: int, texts: list[str]) -> list[str]:
    """Spread free-text answers over ``n`` rows (each text once), the others left empty."""
    out = [""] * n
    for i, text in zip(rng.choice(n, size=len(texts), replace=False).tolist(), texts, strict=True):
        out[i] = text
    return out


def fake_identity(rng: np.random.Generator, label: str, serial: int) -> dict[str, str]:
    """Fake direct identifiers of one respondent (``example.org`` e-mail, ``06 00 00`` phone).

    Parameters
    ----------
    rng
        Random generator (first name).
    label
        Suffix of the fake surname and e-mail (``"017"``).
    serial
        Number used for the fake phone number (0-9999).
    """
    digits = f"{serial:04d}"
    return {
        "IDENT_NOM": f"FICTIF-{label}",
        "IDENT_PRENOM": FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))],
        "IDENT_EMAIL": f"repondant{label}@example.org",
        "IDENT_TEL": f"06 00 00 {digits[:2]} {digits[2:]}",
    }


# --------------------------------------------------------------------------- codebook
def load_codebook(path: str | Path) -> dict:
    """Read a codebook YAML (no validation: the pipeline does that)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def questions_by_name(codebook: dict) -> dict[str, dict]:
    """Survey questions (respondent and tool level) keyed by harmonised name, in questionnaire order."""
    return {q["harmonised"]: q for q in codebook["questions"] if q["level"] in ("respondent", "tool")}


def code_keys(question: dict) -> list[str]:
    """Answer keys of a coded question, in codebook order."""
    return [c["key"] for c in question["codes"]]


def code_of(question: dict, key: Any) -> float:
    """Raw numeric code of an answer key: the code, 99 for :data:`NSP`, NaN for :data:`MISSING`."""
    if key is MISSING:
        return float("nan")
    if key == NSP:
        return float(NSP_CODE)
    for code in question["codes"]:
        if code["key"] == key:
            return float(code["code"])
    raise KeyError(f"{question['id']}: no code with key {key!r}")


def random_answer(rng: np.random.Generator, question: dict) -> Any:
    """A plausible random answer to one question (used for the dirty rows)."""
    qtype = question["type"]
    if qtype in ("single", "ordinal", "band"):
        keys = [k for k in code_keys(question) if k not in ("autre", "aucun")]
        return keys[int(rng.integers(len(keys)))]
    if qtype == "multiple":
        keys = [o["key"] for o in question["options"] if not o.get("exclusive") and o["key"] != "autre"]
        picked = set(rng.choice(keys, size=int(rng.integers(1, min(3, len(keys)) + 1)), replace=False).tolist())
        return {o["key"]: int(o["key"] in picked) for o in question["options"]}
    if qtype == "numeric":
        lo, hi = question.get("range", [0, 100])
        return int(rng.integers(int(lo), int(hi) + 1))
    return ""


def different_answer(rng: np.random.Generator, question: dict, current: Any) -> str:
    """Another substantive answer than ``current`` to a coded question."""
    keys = [k for k in code_keys(question) if k not in (current, "autre", "aucun")]
    return keys[int(rng.integers(len(keys)))]


# --------------------------------------------------------------------------- schedule
def schedule(rng: np.random.Generator, rows: list[dict], start: pd.Timestamp, end: pd.Timestamp,
             last_page: int, first_coll: str | None = None) -> list[dict]:
    """Give each row its start / submit times and IP, then number the rows by start time.

    Start times fall in distinct one-hour slots (8 h-18 h) of the fieldwork; a
    questionnaire takes 6 to 50 minutes. Each duplicate (``kind == "duplicate"``,
    ``twin`` = serial of the kept row) is moved before the submission it
    duplicates; the row of collectivity ``first_coll`` (a test) opens the fieldwork.

    Returns
    -------
    list of dict
        Rows sorted by start time with ``id``, ``startdate``, ``submitdate``
        (``NaT`` when incomplete) and ``ipaddr`` (documentation ranges) added.
    """
    days = pd.date_range(start.normalize(), end.normalize(), freq="D")
    slots = [
        day + pd.Timedelta(hours=h)
        for day in days
        for h in range(8, 19)
        if start <= day + pd.Timedelta(hours=h)
        and day + pd.Timedelta(hours=h, minutes=59) < end - pd.Timedelta(minutes=50)
    ]
    picked = sorted(rng.choice(len(slots), size=len(rows), replace=False).tolist())
    slot_of = {k: picked[j] for k, j in enumerate(rng.permutation(len(rows)).tolist())}
    if first_coll is not None:
        first = next(k for k, r in enumerate(rows) if r["coll_name"] == first_coll)
        earliest = min(slot_of, key=slot_of.get)
        slot_of[first], slot_of[earliest] = slot_of[earliest], slot_of[first]
    for k, r in enumerate(rows):
        if r["kind"] == "duplicate":
            twin = next(j for j, o in enumerate(rows) if o["kind"] == "kept" and o["serial"] == r["twin"])
            if slot_of[k] > slot_of[twin]:
                slot_of[k], slot_of[twin] = slot_of[twin], slot_of[k]
    out = []
    for k, r in enumerate(rows):
        begin = slots[slot_of[k]] + pd.Timedelta(seconds=int(rng.integers(0, 9 * 60)))
        duration = pd.Timedelta(seconds=int(rng.integers(6 * 60, 50 * 60)))
        net = ("192.0.2", "198.51.100")[int(rng.integers(2))]
        out.append(dict(r, startdate=begin,
                        submitdate=begin + duration if r["lastpage"] == last_page else pd.NaT,
                        ipaddr=f"{net}.{int(rng.integers(1, 255))}"))
    out.sort(key=lambda r: r["startdate"])
    return [dict(r, id=k + 1) for k, r in enumerate(out)]


def blank_after(rows_answers: dict, tools: list[dict], questions: dict[str, dict], lastpage: int) -> None:
    """Blank every answer of the parts after ``lastpage`` (an unfinished questionnaire), in place."""
    for name, q in questions.items():
        if q.get("part", 1) > lastpage:
            empty = MISSING if q["type"] != "text" else ""
            if q["level"] == "tool":
                for tool in tools:
                    tool[name] = empty
            else:
                rows_answers[name] = empty


# --------------------------------------------------------------------------- columns
class Column(NamedTuple):
    """One column of the .sav export (see ``generate_2017.Column``)."""

    name: str
    kind: str
    question: str | None
    block: int | None
    label: str
    detail: Any = None


METADATA_COLUMNS = (
    Column("id", "id", None, None, "ID de la réponse"),
    Column("submitdate", "datetime", None, None, "Date d'envoi"),
    Column("lastpage", "int", None, None, "Dernière page"),
    Column("startlanguage", "string", None, None, "Langue de départ"),
    Column("startdate", "datetime", None, None, "Date de début"),
    Column("ipaddr", "string", None, None, "Adresse IP"),
    Column("IDENT_NOM", "string", None, None, "Nom"),
    Column("IDENT_PRENOM", "string", None, None, "Prénom"),
    Column("IDENT_EMAIL", "string", None, None, "Adresse électronique"),
    Column("IDENT_TEL", "string", None, None, "Téléphone"),
    Column("COLL_NOM", "string", None, None, "Nom de votre collectivité"),
)


def question_columns(question: dict, block: int | None) -> list[Column]:
    """Raw columns of one question, for one tool block (``None``: respondent level)."""
    def fmt(pattern: str) -> str:
        return pattern.replace("{i}", str(block)) if block is not None else pattern

    name, wording, qtype = question["harmonised"], question["wording"], question["type"]
    cols: list[Column] = []
    if qtype == "multiple":
        cols += [Column(fmt(o["raw"]), "option", name, block, f"{wording} [{o['label']}]", o["key"])
                 for o in question["options"]]
    elif qtype == "ranking":
        cols += [Column(fmt(question["raw"]).replace("{rank}", str(r)), "rank", name, block,
                        f"{wording} [Rang {r}]", r) for r in range(1, question["ranks"] + 1)]
    else:
        kind = {"numeric": "numeric", "text": "text"}.get(qtype, "code")
        cols.append(Column(fmt(question["raw"]), kind, name, block, wording))
    if question.get("other_text"):
        cols.append(Column(fmt(question["other_text"]), "other", name, block, f"{wording} [Autre]"))
    return cols


def survey_layout(codebook: dict) -> list[Column]:
    """Every column of the .sav export, in LimeSurvey order.

    Metadata and identifiers, the respondent-level questions preceding the tool
    part, the tool blocks side by side (when the survey has any), then the
    remaining respondent-level questions.
    """
    questions = list(questions_by_name(codebook).values())
    blocks = codebook["sources"]["survey"].get("tool_blocks")
    tool_qs = [q for q in questions if q["level"] == "tool"]
    first_tool = next((k for k, q in enumerate(questions) if q["level"] == "tool"), len(questions))
    before = [q for q in questions[:first_tool] if q["level"] == "respondent"]
    after = [q for q in questions[first_tool:] if q["level"] == "respondent"]
    cols = list(METADATA_COLUMNS)
    for q in before:
        cols += question_columns(q, None)
    for block in range(1, int(blocks["count"]) + 1 if blocks else 1):
        for q in tool_qs:
            cols += question_columns(q, block)
    for q in after:
        cols += question_columns(q, None)
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise ValueError("duplicate raw column names in the layout")
    return cols


def cell_value(column: Column, question: dict | None, answer: Any, other: str) -> Any:
    """Raw cell of one column from an internal answer (code, tick, rank, number or text)."""
    if column.kind == "other":
        return other or ""
    if column.kind == "text":
        return answer or ""
    if column.kind == "code":
        return code_of(question, answer)
    if column.kind == "option":
        return float("nan") if answer is None else float(answer[column.detail])
    if column.kind == "rank":
        return float("nan") if answer is None else code_of(question, answer[column.detail - 1])
    if column.kind == "numeric":
        return float("nan") if answer is None else float(answer)
    raise ValueError(f"unexpected column kind {column.kind!r}")


def survey_frame(rows: list[dict], layout: list[Column], questions: dict[str, dict]) -> pd.DataFrame:
    """The raw survey table, one row per submission (codes as float64, NaN = system-missing)."""
    records = []
    for r in rows:
        rec: dict[str, Any] = {
            "id": r["id"], "submitdate": r["submitdate"], "lastpage": r["lastpage"], "startlanguage": "fr",
            "startdate": r["startdate"], "ipaddr": r["ipaddr"], "COLL_NOM": r["coll_name"], **r["identity"],
        }
        for col in layout[len(METADATA_COLUMNS):]:
            if col.block is None:
                source = r["answers"]
            else:
                source = r["tools"][col.block - 1] if col.block <= len(r["tools"]) else {}
            rec[col.name] = cell_value(col, questions[col.question], source.get(col.question),
                                       source.get(f"{col.question}__other", ""))
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[c.name for c in layout])
    for col in layout:
        if col.kind in ("id", "int"):
            frame[col.name] = frame[col.name].astype("int64")
        elif col.kind == "datetime":
            frame[col.name] = pd.to_datetime(frame[col.name]).astype("datetime64[us]")
        elif col.kind in ("string", "text", "other"):
            frame[col.name] = frame[col.name].astype(str)
        else:
            frame[col.name] = frame[col.name].astype("float64")
    return frame


def numeric_format(question: dict) -> str:
    """SPSS print format of a numeric question, wide enough for its range (``F4.0`` for years)."""
    hi = max(abs(v) for v in question.get("range", [0, 9999]))
    return f"F{max(4, len(str(int(hi))))}.0"


def sav_metadata(layout: list[Column], questions: dict[str, dict], file_label: str,
                 note: list[str]) -> dict[str, Any]:
    """Keyword arguments of :func:`pyreadstat.write_sav`: labels, value labels, user-missing 99, measures."""
    labels, value_labels, missing, measure, formats = {}, {}, {}, {}, {}
    for col in layout:
        labels[col.name] = col.label
        q = questions.get(col.question) if col.question else None
        if col.kind in ("id", "int"):
            measure[col.name] = "scale"
            formats[col.name] = "F5.0" if col.kind == "id" else "F1.0"
        elif col.kind == "datetime":
            measure[col.name] = "scale"
        elif col.kind in ("string", "text", "other"):
            measure[col.name] = "nominal"
        elif col.kind == "numeric":
            measure[col.name] = "scale"
            formats[col.name] = numeric_format(q)
        elif col.kind == "option":
            measure[col.name] = "nominal"
            formats[col.name] = "F1.0"
            value_labels[col.name] = {0: "Non coché", 1: "Coché"}
        elif col.kind == "rank":
            measure[col.name] = "nominal"
            formats[col.name] = "F1.0"
            value_labels[col.name] = {int(c["code"]): c["label"] for c in q["codes"]}
        elif col.kind == "code":
            measure[col.name] = "ordinal" if q["type"] in ("ordinal", "band") else "nominal"
            formats[col.name] = "F2.0"
            vl = {int(c["code"]): c["label"] for c in q["codes"]}
            if "nsp" in q:
                vl[NSP_CODE] = NSP_VALUE_LABEL
                missing[col.name] = [NSP_CODE]
            value_labels[col.name] = vl
    return {
        "column_labels": labels,
        "variable_value_labels": value_labels,
        "missing_ranges": missing,
        "variable_measure": measure,
        "variable_format": formats,
        "file_label": file_label,
        "note": note,  # SPSS document lines hold 80 bytes at most
    }


# --------------------------------------------------------------------------- writing
def pin_sav_header(data: bytes, date: bytes, time: bytes) -> bytes:
    """Overwrite the creation date and time of an SPSS system-file header.

    ReadStat stamps the header with the current time and pyreadstat offers no
    parameter to set it; the fields sit at fixed offsets (see
    ``generate_2017.pin_sav_header``). ``date`` is ``b"dd Mmm yy"``, ``time``
    ``b"hh:mm:ss"``.

    Raises
    ------
    ValueError
        If the header does not look like an SPSS file with a date and time at the expected offsets.
    """
    old_date = data[SAV_DATE_OFFSET:SAV_DATE_OFFSET + 9]
    old_time = data[SAV_TIME_OFFSET:SAV_TIME_OFFSET + 8]
    if data[:4] != b"$FL2" or not re.fullmatch(rb"\d\d [A-Z][a-z]{2} \d\d", old_date) \
            or not re.fullmatch(rb"\d\d:\d\d:\d\d", old_time):
        raise ValueError(f"unexpected SPSS header: {data[:4]!r} date {old_date!r} time {old_time!r}")
    if not re.fullmatch(rb"\d\d [A-Z][a-z]{2} \d\d", date) or not re.fullmatch(rb"\d\d:\d\d:\d\d", time):
        raise ValueError(f"bad pinned date or time: {date!r} {time!r}")
    return (data[:SAV_DATE_OFFSET] + date + data[SAV_DATE_OFFSET + 9:SAV_TIME_OFFSET]
            + time + data[SAV_TIME_OFFSET + 8:])


def write_sav(frame: pd.DataFrame, metadata: dict[str, Any], path: Path, date: bytes, time: bytes) -> None:
    """Write the survey export with pyreadstat, then pin its header time-stamp."""
    tmp = path.with_name(path.name + ".tmp")
    pyreadstat.write_sav(frame, str(tmp), **metadata)
    data = pin_sav_header(tmp.read_bytes(), date, time)
    tmp.unlink()
    path.write_bytes(data)
