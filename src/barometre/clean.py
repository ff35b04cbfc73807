"""Clean phase: exclusions, validation, decoding, reshaping, redaction, pseudonymisation.

Every function is pure: it takes frames and returns new frames plus a log of
what it did. Nothing is dropped or changed without a log line naming the file,
the row and the reason.
"""
from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import hmac
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers

from barometre.codebook import NSP_LABEL, Codebook, Question, check_export_metadata
from barometre.errors import ValidationError
from barometre.ingest import RawTable, widen

ROW = "_row"  # file row number carried along every frame until output
# exports whose cells are read as text (line numbers as a person counts)
TEXT_EXPORTS = (".csv", ".txt", ".xlsx", ".xlsm")

LOG_COLUMNS = ["source", "file", "row", "record_id", "column", "action", "reason"]

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS6 = re.compile(r"(?:\d\D{0,3}){6}")  # a text without six digits close together holds no phone number
EMAIL_MASK = "[courriel masqué]"
PHONE_MASK = "[téléphone masqué]"
NAME_MASK = "[nom masqué]"


@dataclass(frozen=True)
class CleanResult:
    """Outcome of cleaning one edition.

    Attributes
    ----------
    respondents, tools, bp
        The processed tables (one row per respondent, per tool, per BP territory).
    exclusions
        One row per excluded raw record: source, file, row, record id, rule, reason.
    events
        Every other change: recodes, out-of-filter answers discarded,
        « ne sait pas » turned into non-response, redactions.
    raw_rows, kept_rows
        Record counts by source, so that raw = kept + excluded can be checked.
    notes
        What a person should know about the exports (French, for the cleaning report):
        columns the codebook does not know, variable labels differing from the
        wording, Excel's ``sep=`` line.
    """

    respondents: pd.DataFrame
    tools: pd.DataFrame
    bp: pd.DataFrame
    exclusions: pd.DataFrame
    events: pd.DataFrame
    raw_rows: dict[str, int] = field(default_factory=dict)
    kept_rows: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def mask_phones(text: str) -> str:
    """Mask every phone number of ``text``, in any French or international notation.

    The phonenumbers library (Google's libphonenumber) recognises « 06 98 76 54 32 »,
    « +33 (0)6 98 76 54 32 », « 0033 6… », « +44 20 7946 0958 »…; numbers without a
    country code are read as French.
    """
    if not _DIGITS6.search(text):
        return text
    out, last = [], 0
    for m in phonenumbers.PhoneNumberMatcher(text, "FR", leniency=phonenumbers.Leniency.POSSIBLE):
        out += [text[last:m.start], PHONE_MASK]
        last = m.end
    return "".join(out) + text[last:] if out else text


def normalise_text(value: object) -> str:
    """Case-, accent- and space-insensitive form of a string (for matching, never for output)."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", text).strip().casefold()


def _log(source: str, file: Path | str, rows, ids, column: str, action: str, reason: str) -> pd.DataFrame:
    rows = list(rows)
    return pd.DataFrame(
        {
            "source": source,
            "file": str(file),
            "row": pd.array(rows, dtype="Int64"),
            "record_id": [str(i) for i in ids],
            "column": column,
            "action": action,
            "reason": reason,
        },
        columns=LOG_COLUMNS,
    )


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "row" else "string") for c in LOG_COLUMNS})


def _concat_logs(logs: list[pd.DataFrame]) -> pd.DataFrame:
    logs = [log for log in logs if len(log)]
    if not logs:
        return _empty_log()
    return pd.concat(logs, ignore_index=True)


_ASCII_SPACE_RUN = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"  # what Python's \s matches among ASCII characters


def _pylist(values) -> list:
    """Python list of an array's values (fast for Arrow-backed arrays, whose ``__iter__`` is slow)."""
    if isinstance(values, (pd.Index, pd.Series)):
        values = values.array
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.to_numpy(dtype=object, na_value=None).tolist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    return list(values)


def normalise_texts(values: list[str]) -> list[str]:
    r""":func:`normalise_text` of many strings at once.

    Strings whose characters all lie below U+0200 (ASCII, Latin-1, Latin
    Extended-A and most of B: French names and e-mail addresses) are normalised
    by pyarrow: NFKD (utf8proc; decompositions of characters assigned this long
    ago are the same in every Unicode version, so in Python's too), non-ASCII
    characters removed, then on ASCII ``\s`` is ``[\t\n\v\f\r\x1c-\x1f ]``
    and ``casefold`` is ``lower``. Other strings go through :func:`normalise_text`.
    """
    if not len(values):
        return []
    return _normalise_arrow(values).to_pylist()


_SPACE_BYTES = np.zeros(256, dtype=bool)
_SPACE_BYTES[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F]] = True  # ASCII \s other than " "


def _byte_view(arr) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (from 0) and UTF-8 bytes of a pyarrow large_string array, without copy."""
    off = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8)[off[0]:off[-1]] if buf is not None else np.zeros(0, np.uint8)
    return off - off[0], data


def _any_per_string(off: np.ndarray, byte_mask: np.ndarray) -> np.ndarray:
    """Whether each string (``off``) has at least one byte where ``byte_mask`` is true."""
    flags = np.zeros(len(off) - 1, dtype=bool)
    flags[np.searchsorted(off, np.flatnonzero(byte_mask), side="right") - 1] = True
    return flags


def _normalise_arrow(values):
    """:func:`normalise_texts` as a pyarrow array (``values``: a list of ``str`` or an Arrow string array, no null).

    Each step runs only on the strings it can change, found by scanning their
    UTF-8 bytes: NFKD and the removal of non-ASCII characters on non-ASCII
    strings (a byte >= 0x80), the whitespace collapse and trim on strings holding
    a whitespace other than single inner spaces, and Python's
    :func:`normalise_text` (instead of all this) on strings with a character from
    U+0200 up (a lead byte >= 0xC8).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = values.cast(pa.large_string()) if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string())
    if not len(arr):
        return arr

    def patch(out, where: np.ndarray, new):
        return pc.replace_with_mask(out, pa.array(where), new.cast(pa.large_string()))

    off, data = _byte_view(arr)
    non_ascii = _any_per_string(off, data >= 0x80)
    slow = _any_per_string(off, data >= 0xC8)
    out = arr
    if non_ascii.any():
        sub = pc.utf8_normalize(arr.filter(pa.array(non_ascii)), form="NFKD")
        out = patch(out, non_ascii, pc.replace_substring_regex(sub, "[^\\x{0}-\\x{7F}]+", ""))
    off, data = _byte_view(out)
    space = data == 0x20
    nonempty = off[1:] > off[:-1]
    spaced = _any_per_string(off, _SPACE_BYTES[data] | np.append(space[:-1] & space[1:], False))
    spaced[nonempty] |= space[off[:-1][nonempty]] | space[off[1:][nonempty] - 1]  # leading / trailing space
    if spaced.any():
        sub = pc.replace_substring_regex(out.filter(pa.array(spaced)), _ASCII_SPACE_RUN, " ")
        out = patch(out, spaced, pc.utf8_trim(sub, " "))
    out = pc.ascii_lower(out)
    if slow.any():
        python = [normalise_text(v) for v in arr.filter(pa.array(slow)).to_pylist()]
        out = patch(out, slow, pa.array(python, type=pa.large_string()))
    return out


def _normalised_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of ``normalise_text(value)``: equal codes ⇔ equal normalised texts (no missing values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _is_text_series(values):
        return pd.factorize(values.map(normalise_text).to_numpy(dtype=object))[0]
    codes, uniques = pd.factorize(values)
    arr = uniques.array
    arr = pa.array(arr) if hasattr(arr, "__arrow_array__") else pa.array(_pylist(arr), type=pa.large_string())
    if not len(arr):
        return codes
    normalised = pc.dictionary_encode(_normalise_arrow(arr)).indices.to_numpy(zero_copy_only=False)
    return normalised[codes]


def _is_text_series(values: pd.Series) -> bool:
    """True when every non-missing value is a ``str`` (safe to work on distinct values)."""
    if isinstance(values.dtype, pd.StringDtype):
        return True
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _map_unique(values: pd.Series, func, na, dtype=object) -> np.ndarray:
    """``values.map(func)`` as an array, computed once per distinct value.

    Text repeats a lot (empty answers, collectivity names, tool names…), so the
    Python function runs on the distinct values only. Every missing value gives
    ``na`` (the caller passes ``func``'s result on a missing value). Series that
    are not text fall back to the per-value map.
    """
    if not _is_text_series(values):
        return np.asarray(values.map(func).to_numpy(dtype=object), dtype=dtype)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=dtype)
    uniques = _pylist(uniques)
    if func is normalise_text:
        table[:-1] = normalise_texts(uniques)
    elif dtype is bool:
        table[:-1] = [bool(func(u)) for u in uniques]
    else:
        table[:-1] = [func(u) for u in uniques]
    table[-1] = na
    return table[codes]  # code -1 (missing) takes the last entry


def _is_blank(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        return series.isna() | (series.astype("string").str.strip() == "")
    return series.isna()


# --------------------------------------------------------------------------- missing codes
def declared_missing(values: pd.Series, ranges: list | None, code: int | None = None) -> np.ndarray:
    """Where ``values`` hold a missing code: within a user-missing range of the export, or equal to ``code``.

    ``ranges`` are the export's declarations for the column (``.sav``: ``[{"lo": 99, "hi": 99}]``);
    ``code`` is the codebook's missing code, given for coded columns (categories, check boxes,
    ranks, counts) whose 99 is never a number. Text values are compared as numbers.
    """
    if not ranges and code is None:
        return np.zeros(len(values), dtype=bool)
    num = values if values.dtype.kind in "fiu" else pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    arr = np.asarray(num, dtype="float64")
    hit = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        for r in ranges or []:
            if isinstance(r, dict) and isinstance(r.get("lo"), (int, float)) and isinstance(r.get("hi"), (int, float)):
                hit |= (arr >= r["lo"]) & (arr <= r["hi"])
        if code is not None:
            hit |= arr == float(code)
    return hit


# --------------------------------------------------------------------------- exclusions
def exclusion_columns(rule: dict) -> list[str]:
    """Columns an exclusion rule reads (its ``columns`` and ``order_by``)."""
    return list(rule["columns"]) + ([rule["order_by"]] if rule.get("order_by") else [])


def apply_exclusions(
    frame: pd.DataFrame, rules: list[dict], *, source: str, file: Path | str, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove test, incomplete and duplicate records by the rules of ``config.yaml``.

    :func:`exclusion_positions`, with the kept records as a frame.

    Returns
    -------
    kept, log
        The remaining records and one log row per excluded record.
    """
    pos, log = exclusion_positions(frame, rules, source=source, file=file, id_column=id_column)
    return (frame if len(pos) == len(frame) else frame.iloc[pos]), log


def exclusion_positions(
    frame: pd.DataFrame, rules: list[dict], *, source: str, file: Path | str, id_column: str,
    compact: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Positions of the records kept by the exclusion rules of ``config.yaml``, and the log of the others.

    Rules apply in order; a record excluded by one rule is not seen by the next.

    Parameters
    ----------
    frame
        Raw records with the ``_row`` column (file row numbers).
    rules
        The edition's ``exclusions`` entries for this source.
    source, file, id_column
        Names used in the log.
    compact
        Columns of ``frame`` held as small integers, read as ``float64`` (:func:`_rows`).

    Returns
    -------
    positions, log
        Positions (ascending) of the remaining records in ``frame``, and one log row
        per excluded record. Nothing is copied: a large export is sliced only where
        and when a column is read.
    """
    # Rows are tracked by position:
    # each rule reads only its own columns of the rows still kept (no copy of the whole frame per rule).
    pos = np.arange(len(frame))
    logs: list[pd.DataFrame] = []
    for rule in rules:
        cols = rule["columns"]
        missing = [c for c in exclusion_columns(rule) if c not in frame.columns]
        if missing:
            raise ValidationError(
                f"{file}: exclusion rule {rule['id']!r} names column(s) {missing} absent from the export",
                [{"file": str(file), "column": c, "row": None, "value": None,
                  "problem": f"colonne absente de l'export, nécessaire à la règle d'exclusion {rule['id']!r}"}
                 for c in missing],
            )
        kind = rule["rule"]

        def column(c: str, pos: np.ndarray = pos) -> pd.Series:
            return _rows(frame, [c], pos, compact)[c]

        if kind == "match":
            pattern = re.compile(rule["pattern"])
            hit = np.zeros(len(pos), dtype=bool)
            for c in cols:
                values = column(c).astype("string").fillna("")
                hit |= _map_unique(values, pattern.search, False, dtype=bool)  # a match object is truthy
        elif kind == "missing":
            hit = np.ones(len(pos), dtype=bool)
            for c in cols:
                hit &= _is_blank(column(c)).to_numpy(dtype=bool)
        elif kind == "below":
            hit = np.zeros(len(pos), dtype=bool)
            for c in cols:
                hit |= (pd.to_numeric(column(c), errors="coerce") < rule["threshold"]).fillna(False).to_numpy(bool)
        elif kind == "duplicate":
            # Equal normalised keys ⇔ equal integer codes of the normalised keys (normalised once per distinct value).
            keys = {c: _normalised_codes(column(c).astype("string").fillna("")) for c in cols}
            order = column(rule["order_by"]).to_numpy() if rule.get("order_by") else np.arange(len(pos))
            # Stable order: by order_by then file row, so "last" is the latest submission.
            ranked = pd.DataFrame(keys).assign(_o=order, _r=column(ROW).to_numpy())
            ranked = ranked.sort_values(["_o", "_r"], kind="stable")
            dup_sorted = ranked.duplicated(subset=cols, keep=rule.get("keep", "last"))
            hit = dup_sorted.sort_index().to_numpy(dtype=bool)
        else:  # pragma: no cover - schema forbids it
            raise ValueError(f"unknown exclusion rule {kind!r}")
        if hit.any():
            out = _rows(frame, [ROW, id_column], pos[hit], compact)  # the log needs these two columns only
            logs.append(_log(source, file, out[ROW], out[id_column], ",".join(cols), f"exclu:{rule['id']}",
                             rule["reason"]))
            pos = pos[~hit]
    return pos, _concat_logs(logs)


# --------------------------------------------------------------------------- validation
def _code_set(q: Question, missing_code: int) -> list:
    codes = [c.code for c in q.codes]
    if q.nsp in ("show", "drop") and q.level != "bp":
        codes.append(missing_code)
    return codes


#: Columns validated at once when the records are given by position (bounds the copy of a large export).
VALIDATE_CHUNK = 16


def _rows(frame: pd.DataFrame, columns: list[str], positions: np.ndarray | None,
          compact: frozenset[str] = frozenset()) -> pd.DataFrame:
    """The ``columns`` of ``frame`` (those it has) at ``positions`` (every record when ``None``).

    Columns of ``compact`` (held as small integers, see :func:`barometre.ingest.read_parquet`) come back
    as the ``float64`` values of the export.
    """
    sub = frame[[c for c in dict.fromkeys(columns) if c in frame.columns]]
    return widen(sub if positions is None or len(positions) == len(frame) else sub.iloc[positions], compact)


def validate_raw(
    raw: RawTable, frame: pd.DataFrame, codebook: Codebook, level: str, positions: np.ndarray | None = None
) -> None:
    """Check a raw export against the codebook, reporting every failure at once.

    Uses pandera with ``lazy=True``. Checked: every codebook column exists, every
    code is declared, numbers are in range, required answers are present,
    record ids are unique.

    ``positions`` (ascending) restricts the check to those records of ``frame``
    (the records kept after the exclusions): they are then validated
    :data:`VALIDATE_CHUNK` columns at a time, so that only those columns of the
    kept records are ever copied. The problems found are the same.

    Raises
    ------
    ValidationError
        Listing each failure with its file, column, row and offending value.
    """
    import pandera.pandas as pa

    source = codebook.sources[raw.name]
    id_col = source["id_column"]
    blocks = source.get("tool_blocks", {}).get("count", 0)
    questions = [q for q in codebook.questions if (q.level == level or (level == "respondent" and q.level == "tool"))]
    columns: dict[str, pa.Column] = {
        id_col: pa.Column(checks=None, nullable=False, unique=True, required=True, coerce=False)
    }
    is_csv = raw.path.suffix.lower() in TEXT_EXPORTS  # cells read as text (CSV, spreadsheets)

    def add(col: str, checks: list, nullable: bool = True) -> None:
        columns[col] = pa.Column(checks=checks or None, nullable=nullable, required=True)

    for q in questions:
        block_ids = range(1, blocks + 1) if q.level == "tool" else [None]
        for b in block_ids:
            if q.type in ("single", "ordinal", "band"):
                col = q.raw_columns(b)[0]
                allowed = _code_set(q, codebook.missing_code)
                if is_csv:
                    norm = {normalise_text(c) for c in allowed}
                    check = pa.Check(
                        lambda s, norm=norm: s.isna() | (s.str.strip() == "") | s.map(normalise_text).isin(norm),
                        element_wise=False, error=f"code hors du codebook (attendus : {sorted(norm)})",
                    )
                else:
                    check = pa.Check.isin(allowed, error=f"code hors du codebook (attendus : {allowed})")
                add(col, [check], nullable=not q.required)
            elif q.type == "multiple":
                for col in q.raw_columns(b):
                    if q.other_text and col == q.other_text.replace("{i}", str(b)):
                        add(col, [])
                    else:  # the missing code (99) of a check box is a non-response, decoded as such
                        add(col, [pa.Check.isin([0, 1, codebook.missing_code],
                                                error="case à cocher hors de {0, 1} "
                                                      f"(ni code manquant {codebook.missing_code})")])
            elif q.type == "ranking":
                allowed = [c.code for c in q.codes]
                for col in q.raw_columns(b):
                    add(col, [pa.Check.isin([*allowed, codebook.missing_code],
                                            error=f"item de classement inconnu (attendus : {allowed})")])
            elif q.type == "numeric":
                col = q.raw_columns(b)[0]
                lo, hi = q.range or (-np.inf, np.inf)
                if raw.missing_ranges.get(col):  # user-missing codes declared by the export are not numbers
                    check = pa.Check(
                        lambda s, lo=lo, hi=hi, r=raw.missing_ranges[col]: s.isna() | s.between(lo, hi)
                        | pd.Series(declared_missing(s, r), index=s.index),
                        element_wise=False, error=f"nombre hors de [{lo}, {hi}]",
                    )
                elif is_csv:
                    check = pa.Check(
                        lambda s, lo=lo, hi=hi: s.isna() | (s.str.strip() == "")
                        | parse_decimal(s, raw.decimal).between(lo, hi).fillna(False),
                        element_wise=False,
                        error=f"nombre illisible (marque décimale attendue : « {raw.decimal} ») "
                              f"ou hors de [{lo:g}, {hi:g}]",
                    )
                else:
                    check = pa.Check.in_range(lo, hi, error=f"nombre hors de [{lo}, {hi}]")
                add(col, [check])
            else:
                for col in q.raw_columns(b):
                    add(col, [])
            if q.other_text and q.type != "multiple":
                add(q.other_text.replace("{i}", str(b)) if b else q.other_text, [])
    problems: list[dict] = []
    names = list(columns)
    groups = [names] if positions is None else [names[i:i + VALIDATE_CHUNK]
                                                for i in range(0, len(names), VALIDATE_CHUNK)]
    for group in groups:
        schema = pa.DataFrameSchema({c: columns[c] for c in group}, strict=False, coerce=False, name=raw.name)
        sub = widen(frame, raw.compact) if positions is None else _rows(frame, [*group, ROW], positions, raw.compact)
        try:
            schema.validate(sub, lazy=True, inplace=True)  # coerce=False: nothing is changed, no copy needed
        except pa.errors.SchemaErrors as exc:
            problems += _problems_from_pandera(exc.failure_cases, raw, sub)
    for q in questions:
        if q.type != "ranking" or not all(c in frame.columns for c in q.raw_columns()):
            continue
        rank_cols = q.raw_columns()
        sub = (widen(frame, raw.compact) if positions is None
               else _rows(frame, [*rank_cols, ROW], positions, raw.compact))
        rows = sub[ROW] if ROW in sub.columns else pd.Series(raw.row_numbers, index=sub.index)
        _, dup = decode_ranking(sub, q, codebook.missing_code)
        for idx in sub.index[dup.to_numpy()]:
            codes = pd.to_numeric(sub.loc[idx, rank_cols], errors="coerce")
            twice = codes[codes.duplicated(keep=False) & codes.notna()]
            problems.append({"file": str(raw.path), "column": ", ".join(twice.index), "row": int(rows[idx]),
                             "problem": f"{q.id} : le même item est classé à deux rangs", "value": int(twice.iloc[0])})
    owner = {c: q.id for q in questions for b in (range(1, blocks + 1) if q.level == "tool" else [None])
             for c in q.raw_columns(b)}
    for p in problems:
        if p["row"] is None and p["column"] in owner and "absente" in p["problem"]:
            p["problem"] += f" (question {owner[p['column']]})"
    if problems:
        raise_problems(raw.path, problems)


def problem_line(p: dict) -> str:
    """One validation problem as a person reads it: file, column, row, what is wrong, the value."""
    # .sav: 1-based record number (SPSS case number); CSV: physical line, the header being line 1
    unit = "line" if str(p["file"]).lower().endswith(TEXT_EXPORTS) else "row"
    where = f"{unit} {p['row']}" if p.get("row") is not None else f"every {unit}"
    value = "" if p.get("value") is None else f" (valeur : {p['value']!r})"
    return f"{p['file']}: column {p['column']!r}, {where}: {p['problem']}{value}"


def raise_problems(path: Path | str, problems: list[dict]) -> None:
    """Raise one :class:`ValidationError` listing every problem (sorted by file, column, row)."""
    problems = sorted(problems, key=lambda p: (str(p["file"]), str(p["column"]),
                                               p["row"] if p.get("row") is not None else -1))
    files = sorted({str(p["file"]) for p in problems})
    head = ", ".join(files) if files else str(path)
    raise ValidationError(
        f"{head}: {len(problems)} validation problem(s):\n  " + "\n  ".join(problem_line(p) for p in problems), problems
    )


def _problems_from_pandera(cases: pd.DataFrame, raw: RawTable, frame: pd.DataFrame) -> list[dict]:
    problems = []
    rows = frame[ROW] if ROW in frame.columns else pd.Series(raw.row_numbers, index=frame.index)
    for case in cases.itertuples(index=False):
        idx = getattr(case, "index", None)
        row = None
        if idx is not None and not (isinstance(idx, float) and np.isnan(idx)) and idx in rows.index:
            row = int(rows.loc[idx])
        check = str(case.check)
        column = case.column if isinstance(case.column, str) else str(case.failure_case)
        if check == "column_in_dataframe":
            problem = "colonne du codebook absente de l'export"
            column = str(case.failure_case)
            value = None
        elif check.startswith("field_uniqueness") or "unique" in check:
            problem = "identifiant en double"
            value = case.failure_case
        elif check == "not_nullable":
            problem = "réponse obligatoire manquante"
            value = None
        else:
            problem = check
            value = case.failure_case
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        problems.append({"file": str(raw.path), "column": column, "row": row, "problem": problem, "value": value})
    problems.sort(key=lambda p: (p["column"], p["row"] if p["row"] is not None else -1, p["problem"]))
    return problems


def parse_decimal(values: pd.Series, decimal: str = ",") -> pd.Series:
    """Parse spreadsheet numbers as text ("150 000,50") into floats; blanks give NaN.

    Thousands separators (spaces, no-break spaces) are removed; ``decimal`` is
    the decimal mark. The other mark is never guessed to be a thousands
    separator: with ``decimal=","``, "2.35" gives NaN (not 235), so a file whose
    decimal mark differs from the configuration fails validation instead of
    being read wrong. Unparseable values give NaN (validation reports them).
    """
    if decimal not in (",", "."):
        raise ValueError(f"decimal mark must be ',' or '.', got {decimal!r}")
    other = "." if decimal == "," else ","
    s = values.astype("string").str.strip().str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    wrong_mark = s.str.contains(other, regex=False).fillna(False).astype(bool)
    if decimal == ",":
        s = s.str.replace(",", ".", regex=False)
    s = s.where((s != "") & ~wrong_mark, None)
    return pd.to_numeric(s, errors="coerce").astype("Float64")


# --------------------------------------------------------------------------- decoding
def decode_categorical(values: pd.Series, question: Question, missing_code: int) -> tuple[pd.Series, pd.Series]:
    """Turn raw codes into a categorical of French labels in codebook order.

    « Ne sait pas » (``missing_code``) becomes the « Ne se prononce pas »
    category when the question shows it, a non-response otherwise.

    Returns
    -------
    decoded, nsp_dropped
        The categorical series and a boolean mask of NSP answers turned into
        non-response (to be logged).
    """
    labels = question.labels()
    ordered = question.type in ("ordinal", "band")
    if values.dtype.kind in "fiu":
        # Numeric codes → category positions by an index lookup (no label string per row).
        lookup: dict[object, str] = {float(c.code): c.label for c in question.codes}
        keys = values.to_numpy(dtype="float64")
        nsp = keys == float(missing_code)
        position = {label: i for i, label in enumerate(labels)}
        targets = np.array([position.get(label, -1) for label in lookup.values()] + [-1], dtype=np.int64)
        codes = targets[pd.Index(list(lookup), dtype="float64").get_indexer(keys)]  # unknown / missing → -1
        if question.shows_nsp:
            codes[nsp] = position.get(NSP_LABEL, -1)
            dropped = pd.Series(False, index=values.index)
        else:
            dropped = pd.Series(nsp, index=values.index)
        cat = pd.Categorical.from_codes(codes, categories=labels, ordered=ordered)
        return pd.Series(cat, index=values.index, name=question.harmonised), dropped
    else:
        lookup = {normalise_text(c.code): c.label for c in question.codes}
        keys = values.astype("string").map(lambda v: normalise_text(v) if v is not None and v is not pd.NA else v)
        nsp_mask = pd.Series(False, index=values.index)
    mapped = keys.map(lookup)
    if question.shows_nsp:
        mapped = mapped.where(~nsp_mask, NSP_LABEL)
        dropped = pd.Series(False, index=values.index)
    else:
        dropped = nsp_mask.fillna(False).astype(bool)
    out = pd.Series(pd.Categorical(mapped, categories=labels, ordered=ordered), index=values.index,
                    name=question.harmonised)
    return out, dropped


def recode_other(decoded: pd.Series, other: pd.Series, question: Question) -> tuple[pd.Series, pd.Series]:
    """Recode hand-typed « Autre » answers by the codebook's ``recode_other`` patterns.

    Returns
    -------
    recoded, changed
        The new categorical and a mask of the rows recoded (to be logged).
    """
    other_code = next((c for c in question.codes if c.key == "autre"), None)
    if other_code is None or not question.recode_other:
        return decoded, pd.Series(False, index=decoded.index)
    # The patterns run once per distinct typed text, on the rows answering « Autre » only.
    rows = np.flatnonzero((decoded == other_code.label).to_numpy(dtype=bool))
    codes, uniques = pd.factorize(other.iloc[rows].astype("string").fillna(""), use_na_sentinel=True)
    norm = normalise_texts(_pylist(uniques))
    categories = list(decoded.cat.categories)
    target = np.full(len(uniques) + 1, -1, dtype=np.int64)  # category of each distinct text; -1 = not recoded
    for rule in question.recode_other:
        pat = re.compile(rule["pattern"], re.IGNORECASE)
        to = categories.index(question.label_of(rule["to"]))
        for i, text in enumerate(norm):
            if target[i] < 0 and pat.search(text):
                target[i] = to
    row_target = target[codes]
    hit = row_target >= 0
    changed = np.zeros(len(decoded), dtype=bool)
    changed[rows[hit]] = True
    new_codes = decoded.cat.codes.to_numpy(dtype=np.int64).copy()
    new_codes[rows[hit]] = row_target[hit]
    recoded = pd.Series(
        pd.Categorical.from_codes(new_codes, categories=decoded.cat.categories, ordered=decoded.cat.ordered),
        index=decoded.index, name=decoded.name,
    )
    return recoded, pd.Series(changed, index=decoded.index)


def decode_multiple(frame: pd.DataFrame, question: Question, block: int | None) -> tuple[pd.DataFrame, pd.Series]:
    """One boolean column per option; <NA> for records that did not answer.

    A record answered when at least one option is checked. An exclusive
    option (« ne se prononce pas ») checked together with others is kept
    unchanged and reported in the returned mask.

    Returns
    -------
    decoded, exclusive_conflict
    """
    raw_cols = [o.raw.replace("{i}", str(block)) if block else o.raw for o in question.options]
    checked = frame[raw_cols].apply(pd.to_numeric, errors="coerce").eq(1)
    answered = checked.any(axis=1)
    out = {}
    for opt, col in zip(question.options, raw_cols, strict=False):
        values = pd.array(checked[col].to_numpy(), dtype="boolean")
        values[~answered.to_numpy()] = pd.NA
        out[f"{question.harmonised}__{opt.key}"] = values
    exclusive = [col for opt, col in zip(question.options, raw_cols, strict=False) if opt.exclusive]
    conflict = pd.Series(False, index=frame.index)
    if exclusive:
        others = [c for c in raw_cols if c not in exclusive]
        conflict = checked[exclusive].any(axis=1) & checked[others].any(axis=1)
    return pd.DataFrame(out, index=frame.index), conflict


def decode_ranking(
    frame: pd.DataFrame, question: Question, missing_code: int | None = 99
) -> tuple[pd.DataFrame, pd.Series]:
    """Turn « one column per rank holding an item code » into one rank column per item.

    Returns
    -------
    ranks, duplicated
        ``<harmonised>__<item>`` Int8 ranks (<NA> when unranked) and a mask of
        records that put the same item at two ranks (a validation failure).
    """
    rank_cols = question.raw_columns()
    codes = frame[rank_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64", copy=True)
    if missing_code is not None and all(c.code != missing_code for c in question.codes):
        codes[codes == float(missing_code)] = np.nan  # « ne sait pas » at a rank: nothing ranked there
    n = len(frame)
    out = {}
    for c in question.codes:
        hit = codes == float(c.code)
        has = hit.any(axis=1)
        rank = np.where(has, hit.argmax(axis=1) + 1, 0)
        arr = pd.array(rank, dtype="Int8")
        arr[~has] = pd.NA
        out[f"{question.harmonised}__{c.key}"] = arr
    # An item ranked twice = two equal neighbours once each row is sorted (NaN sorts last, never equal).
    srt = np.sort(codes, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1) if codes.shape[1] > 1 else np.zeros(n, dtype=bool)
    return pd.DataFrame(out, index=frame.index), pd.Series(dup, index=frame.index)


@functools.lru_cache(maxsize=16)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern | None:
    """One case-insensitive whole-word pattern for every name of 4 characters or more.

    Longest names first (then alphabetical, so the pattern is the same on every run): at a
    given position the longest name wins, and a mask is never matched again.
    """
    kept = sorted({str(n).strip() for n in names if n and len(str(n).strip()) >= 4}, key=lambda n: (-len(n), n))
    if not kept:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in kept) + r")(?!\w)", re.IGNORECASE)


# Case-insensitive key of a string, one character per character, such that two strings equal under
# re.IGNORECASE have equal keys: ASCII letters are lower-cased, every non-ASCII character and the
# letters i, k, s (the only ASCII letters re.IGNORECASE equates with non-ASCII ones: ı İ K ſ) become
# "?", other ASCII characters stay. Equal keys are necessary (not sufficient) for a match.
_FOLD_FROM = "".join(chr(c) for c in range(128) if chr(c).isalpha() and chr(c) not in "iksIKS") + "iksIKS"
_FOLD_TABLE = bytes.maketrans(_FOLD_FROM.encode(), _FOLD_FROM.lower()[:-6].encode() + b"??????")
_PY_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())  # what str.strip() removes
_MATCH_START = re.compile(r"(?<!\w)")  # positions where a name may start (the pattern's look-behind)
_MATCH_END = re.compile(r"(?!\w)")  # positions where a name may end (its look-ahead)
_KEY = 4  # every name kept is at least this long


_FOLD_LUT = np.frombuffer(bytes(range(128)).translate(_FOLD_TABLE) + b"?" * 128, dtype=np.uint8)


def _fold(text: str) -> bytes:
    """Key of ``text``: one byte per character (see ``_FOLD_TABLE``)."""
    return text.encode("ascii", "replace").translate(_FOLD_TABLE)


def _key4(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The 4 key bytes starting at each position of ``at``, packed in a uint32."""
    return (data[at].astype(np.uint32) | (data[at + 1].astype(np.uint32) << 8)
            | (data[at + 2].astype(np.uint32) << 16) | (data[at + 3].astype(np.uint32) << 24))


class _NameIndex:
    """The names of :func:`_names_pattern`, with their case-insensitive keys, for fast candidate search.

    For one column of texts, :meth:`candidates` finds the few names that can
    match in each text; the text is then masked with the pattern of those names
    only, which gives exactly what the pattern of every name gives (a name that
    cannot match anywhere in a text never changes which alternative matches
    first). Millions of names (an e-mail, a phone number… per respondent) are
    keyed with numpy on their UTF-8 bytes: no Python object is made per name.
    """

    def __init__(self, names) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(names, (pa.Array, pa.ChunkedArray)):
            raw = names
        else:  # same set as _names_pattern: str(n) of the truthy names
            raw = pa.array([str(n) for n in names if n], type=pa.large_string())
        raw = raw.cast(pa.large_string())
        # Each distinct string once: a name is a candidate or not whatever its repeats
        # (``candidates`` takes the distinct names found), and a million records repeat a lot.
        raw = pc.unique(raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw)
        names = pc.unique(pc.utf8_trim(pc.drop_null(raw), characters=_PY_WHITESPACE))  # str.strip()
        del raw
        # key of every name, from its UTF-8 bytes: continuation bytes dropped, then the fold table
        # (a non-ASCII character, whose first byte is >= 0xC0, becomes "?"): one byte per character
        off = np.frombuffer(names.buffers()[1], dtype=np.int64)[names.offset:names.offset + len(names) + 1]
        buf = names.buffers()[2]
        data = np.frombuffer(buf, dtype=np.uint8)[off[0]:off[-1]] if buf is not None else np.zeros(0, np.uint8)
        lengths = pc.utf8_length(names).to_numpy(zero_copy_only=False).astype(np.int64)  # characters, as len()
        key_off = np.concatenate(([0], np.cumsum(lengths)))
        first = (data & 0xC0) != 0x80
        keep = lengths >= _KEY
        self.names = names.filter(pa.array(keep))
        self.keys = _FOLD_LUT[data[first]]
        self.start, self.end = key_off[:-1][keep], key_off[1:][keep]
        head = _key4(self.keys, self.start)
        self.order = np.argsort(head, kind="stable")  # names sorted by the key of their first 4 characters
        if len(self.order) < 2**31:
            self.order = self.order.astype(np.int32)
        self.head = head[self.order]
        self.tail = _key4(self.keys, self.end - _KEY)  # key of their last 4 characters
        self.min_len = int(lengths[keep].min()) if keep.any() else 0

    def __len__(self) -> int:
        return len(self.start)

    def candidates(self, texts: list[str]) -> list[tuple[str, ...]]:
        """For each text, the names that may match in it, longest first (then alphabetical).

        A name matching at ``text[p:q]`` has its key equal to ``key(text)[p:q]``, with
        ``p`` a possible start (the look-behind holds) and ``q`` a possible end (the
        look-ahead holds): its first and last 4 key bytes are found at such places.
        """
        none: list[tuple[str, ...]] = [() for _ in texts]
        if not len(self) or not texts:
            return none
        folded = [_fold(t) for t in texts]
        starts: list[tuple[int, int, list[int]]] = []  # (text, start, possible ends)
        firsts: set[int] = set()
        lasts: set[int] = set()
        for k, (text, key) in enumerate(zip(texts, folded, strict=False)):
            if len(text) < self.min_len:
                continue
            ends = [m.start() for m in _MATCH_END.finditer(text)]
            lasts.update(int.from_bytes(key[q - _KEY:q], "little") for q in ends if q >= _KEY)
            for m in _MATCH_START.finditer(text):
                p = m.start()
                if p + self.min_len > len(text):
                    break
                starts.append((k, p, ends))
                firsts.add(int.from_bytes(key[p:p + _KEY], "little"))
        if not starts:
            return none
        wanted = np.array(sorted(firsts), dtype=np.uint32)
        lo, hi = np.searchsorted(self.head, wanted, "left"), np.searchsorted(self.head, wanted, "right")
        span = hi - lo
        cand = self.order[np.repeat(lo - np.cumsum(span) + span, span) + np.arange(span.sum())]
        cand = cand[np.isin(self.tail[cand], np.array(sorted(lasts), dtype=np.uint32))]
        if not cand.size:
            return none
        import pyarrow.compute as pc

        by_key: dict[bytes, list[str]] = {}
        for name in pc.unique(self.names.take(np.sort(cand))).to_pylist():  # names may repeat
            by_key.setdefault(_fold(name), []).append(name)
        heads = {key[:_KEY] for key in by_key}
        shortest, longest = min(map(len, by_key)), max(map(len, by_key))
        out: list[set[str]] = [set() for _ in texts]
        for k, p, ends in starts:
            key = folded[k]
            if key[p:p + _KEY] not in heads:
                continue
            for q in ends[bisect.bisect_left(ends, p + shortest):bisect.bisect_right(ends, p + longest)]:
                found = by_key.get(key[p:q])
                if found:
                    out[k].update(found)
        return [tuple(sorted(c, key=lambda n: (-len(n), n))) for c in out]


@functools.lru_cache(maxsize=4096)
def _candidates_pattern(candidates: tuple[str, ...]) -> re.Pattern:
    """:func:`_names_pattern` of names already kept and sorted (longest first, then alphabetical)."""
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in candidates) + r")(?!\w)", re.IGNORECASE)


def redact_text(values: pd.Series, names: list[str] | _NameIndex | None = None) -> tuple[pd.Series, pd.Series]:
    """Mask e-mail addresses, phone numbers and known names in free text.

    Parameters
    ----------
    values
        Free-text answers.
    names
        Identifying strings from the raw file (respondent and collectivity
        names) that must not appear in any output; or their ``_NameIndex``,
        built once when many columns are redacted with the same names.

    Returns
    -------
    redacted, changed
    """
    s = values.astype("string")
    # Each distinct text is redacted once (free text repeats: empty answers, pick lists, copies).
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    uniques = _pylist(uniques)
    texts = [mask_phones(EMAIL_RE.sub(EMAIL_MASK, u)) for u in uniques]
    index = names if isinstance(names, _NameIndex) else _NameIndex(tuple(names or ()))
    for k, cands in enumerate(index.candidates(texts)):
        if cands:  # same result as _names_pattern(names).sub(): names that cannot match are left out
            texts[k] = _candidates_pattern(cands).sub(NAME_MASK, texts[k])
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = texts
    table[-1] = pd.NA
    out = pd.Series(pd.array(table[codes], dtype=s.dtype), index=s.index, name=s.name)
    changed_u = np.append(np.array([t != u for t, u in zip(texts, uniques, strict=False)], dtype=bool), False)
    return out, pd.Series(changed_u[codes], index=s.index, name=s.name)


def pseudonymise(values: pd.Series, salt: bytes, prefix: str = "COL-") -> pd.Series:
    """Stable pseudonymous ids: HMAC-SHA256 of the normalised value under a secret salt.

    The same collectivity always gets the same id for a given salt; without the
    salt the id cannot be traced back to the name.
    """
    def one(v: object) -> str | None:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
            return None
        digest = hmac.new(salt, normalise_text(v).encode("utf-8"), hashlib.sha256).hexdigest()
        return prefix + digest[:12]

    if not _is_text_series(values):
        return values.map(one).astype("string")
    # one HMAC per distinct name, not per record (same ids as one() on each value)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = _pylist(uniques)
    norm = normalise_texts(uniques)
    table = np.array([None if not u.strip() else prefix + hmac.digest(salt, k.encode("utf-8"), "sha256").hex()[:12]
                      for u, k in zip(uniques, norm, strict=False)] + [None], dtype=object)
    return pd.Series(table[codes], index=values.index, name=values.name).astype("string")


# --------------------------------------------------------------------------- filters
def _filter_mask(frame: pd.DataFrame, question: Question, codebook: Codebook) -> pd.Series:
    filt = question.filter
    if filt is None:
        raise ValueError(f"question {question.id} has no filter")
    target = codebook.question(filt.question)
    labels = [target.label_of(k) for k in filt.keys]
    return frame[target.harmonised].isin(labels)


def apply_filters(
    frame: pd.DataFrame, questions: list[Question], codebook: Codebook, *, source: str, file: Path | str, id_col: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check answers against each question's filter (« asked only if … »), in both directions.

    An answer given outside the filter is erased and logged; a filtered question left
    unanswered inside its filter is logged too (each row), since it shrinks that
    question's base.
    """
    out = frame.copy()
    logs = []
    for q in questions:
        if q.filter is None:
            continue
        allowed = _filter_mask(out, q, codebook)
        cols = [c for c in q.columns() if c in out.columns and not c.endswith("_other")]
        present = out[cols].notna().any(axis=1)
        silent = allowed & ~present
        if silent.any():
            hit = out[silent]
            logs.append(_log(source, file, hit[ROW], hit[id_col], q.harmonised, "non-réponse dans le filtre",
                             f"{q.id} posée (car {q.filter.question} ∈ {list(q.filter.keys)}) mais sans réponse : "
                             f"la base de {q.id} (« {q.wording} ») compte ces lignes en moins"))
        cols = [c for c in q.columns() if c in out.columns]
        present = out[cols].notna().any(axis=1)
        bad = present & ~allowed
        if bad.any():
            hit = out[bad]
            logs.append(_log(source, file, hit[ROW], hit[id_col], q.harmonised, "réponse hors filtre effacée",
                             f"{q.id} n'est posée que si {q.filter.question} ∈ {list(q.filter.keys)}"))
            for c in cols:
                out.loc[bad, c] = pd.NA
    return out, _concat_logs(logs)


# --------------------------------------------------------------------------- levels
def decode_level(
    frame: pd.DataFrame,
    questions: list[Question],
    codebook: Codebook,
    *,
    block: int | None,
    source: str,
    file: Path | str,
    id_col: str,
    names: list[str] | _NameIndex,
    decimal: str = ",",
    missing_ranges: dict[str, list] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every question of one level (respondent, one tool block, or BP).

    ``decimal`` is the decimal mark of numbers stored as text (CSV exports);
    ``missing_ranges`` the export's user-missing declarations by raw column
    (a number declared missing is a non-response, never a value).

    Every free-text column is screened, public ones included: e-mail addresses and
    phone numbers are masked in all of them, known names in the non-public ones;
    each masking is logged with its column and row.
    """
    cols: dict[str, pd.Series | pd.array] = {}
    logs = []
    ids = frame[id_col]
    rows = frame[ROW]

    def rawcol(pattern: str | None) -> str:
        if pattern is None:
            raise ValueError("a codebook question without its raw column")
        return pattern.replace("{i}", str(block)) if block else pattern

    def screened(pattern: str | None, column: str, public: bool = False) -> pd.Series:
        """The free text of raw column ``pattern`` with its personal data masked (logged), blanks as missing."""
        red, changed = redact_text(frame[rawcol(pattern)], None if public else names)
        hit = changed.to_numpy(dtype=bool)
        if hit.any():
            what = "courriel ou téléphone retiré d'un texte public (le nom reste)" if public \
                else "courriel, téléphone ou nom retiré du texte libre"
            logs.append(_log(source, file, rows[hit], ids[hit], column, "texte masqué", what))
        return red.where(red.fillna("").str.strip() != "", None)

    for q in questions:
        if q.type in ("single", "ordinal", "band"):
            decoded, dropped = decode_categorical(frame[rawcol(q.raw)], q, codebook.missing_code)
            if dropped.any():
                logs.append(_log(source, file, rows[dropped], ids[dropped], q.harmonised, "ne sait pas → non-réponse",
                                 f"{q.id} ne montre pas « ne se prononce pas »"))
            if q.other_text:
                other = frame[rawcol(q.other_text)]
                decoded, changed = recode_other(decoded, other, q)
                if changed.any():  # one log row per recoded record, in file order
                    hit = changed.to_numpy(dtype=bool)
                    logs.append(_log(source, file, rows[hit], ids[hit], q.harmonised, "recodage « Autre »",
                                     ("« Autre » saisi à la main → "
                                      + decoded[hit].astype(str)).to_numpy(dtype=object)))
                cols[f"{q.harmonised}_other"] = screened(q.other_text, f"{q.harmonised}_other")
            cols[q.harmonised] = decoded
        elif q.type == "multiple":
            decoded, conflict = decode_multiple(frame, q, block)
            nsp = np.zeros(len(frame), dtype=bool)
            for o in q.options:
                nsp |= declared_missing(frame[rawcol(o.raw)], None, codebook.missing_code)
            if nsp.any():
                logs.append(_log(source, file, rows[nsp], ids[nsp], q.harmonised, "code manquant → non-réponse",
                                 f"{q.id} : code {codebook.missing_code} dans une case à cocher, lu comme non coché"))
            if conflict.any():
                logs.append(_log(source, file, rows[conflict], ids[conflict], q.harmonised, "signalé",
                                 "option exclusive cochée avec d'autres options (gardé tel quel)"))
            for c in decoded.columns:
                cols[c] = decoded[c]
            if q.other_text:
                cols[f"{q.harmonised}_other"] = screened(q.other_text, f"{q.harmonised}_other")
        elif q.type == "ranking":
            decoded, dup = decode_ranking(frame, q, codebook.missing_code)
            if dup.any():
                raise ValidationError(
                    f"{file}: {q.id} ranks the same item twice in rows {rows[dup].tolist()}",
                    [{"file": str(file), "column": q.raw, "row": int(r), "problem": "item classé deux fois",
                      "value": None}
                     for r in rows[dup]],
                )
            for c in decoded.columns:
                cols[c] = decoded[c]
        elif q.type == "numeric":
            raw = frame[rawcol(q.raw)]
            num = parse_decimal(raw, decimal) if raw.dtype.kind not in "fiu" else raw.astype("Float64")
            declared = declared_missing(raw, (missing_ranges or {}).get(rawcol(q.raw)))
            if declared.any():
                num = num.mask(pd.Series(declared, index=num.index))
                logs.append(_log(source, file, rows[declared], ids[declared], q.harmonised,
                                 "code manquant → non-réponse",
                                 f"{q.id} : code déclaré manquant dans l'export (« ne sait pas »), pas un nombre"))
            if num.dropna().mod(1).eq(0).all():
                num = num.round().astype("Int64")
            cols[q.harmonised] = num
        elif q.type == "text":
            text = screened(q.raw, q.harmonised, public=q.public)
            cols[q.harmonised] = text.str.strip() if q.public else text
    out = pd.DataFrame(cols, index=frame.index)
    return out, _concat_logs(logs)


def release_memory() -> None:
    """Give the memory freed so far back to the system (Arrow's pool, then the C heap on glibc).

    Between the steps of a large cleaning, freed blocks stay reserved by the allocators
    (Arrow's mimalloc pool, glibc's heap) and count in the resident set: at a million
    records several hundred MiB. Nothing else changes; elsewhere than glibc only Arrow's
    pool is trimmed. Hand-written with ctypes: neither pandas nor numpy expose
    ``malloc_trim``.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):  # not glibc (musl has no malloc_trim)
            libc.malloc_trim(0)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """The C library on Linux (found once: ``find_library`` runs a subprocess), else ``None``."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _survey_name_index(frame: pd.DataFrame, codebook: Codebook) -> _NameIndex:
    """:func:`_survey_names` as a :class:`_NameIndex`, taken from the Arrow columns without Python strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ident = codebook.identifiers
    arrow: list = []
    other: list[str] = []
    for col in list(ident.get("drop", [])) + list(ident.get("pseudonymise", {}).keys()):
        if col in frame.columns and frame[col].dtype.kind not in "fiuM":
            if isinstance(frame[col].dtype, pd.StringDtype) and hasattr(frame[col].array, "__arrow_array__"):
                # distinct stripped values only (the index keeps each name once), column by column, each
                # column's temporary tables released before the next (peak memory of large exports)
                values = pc.drop_null(pc.unique(pa.chunked_array(pa.array(frame[col].array)).cast(pa.large_string())))
                arrow.append(pc.unique(pc.utf8_trim(values, characters=_PY_WHITESPACE)))
                del values
                release_memory()
            else:
                other.extend(map(str, _pylist(frame[col].dropna().unique())))
    if other:
        arrow.append(pa.array(other, type=pa.large_string()))
    if not arrow:
        return _NameIndex(())
    # str(n) of the truthy names: "" is dropped by the length filter of the index anyway
    chunks = [c for a in arrow for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    return _NameIndex(pa.chunked_array(chunks, type=pa.large_string()))


def _survey_names(frame: pd.DataFrame, codebook: Codebook) -> list[str]:
    ident = codebook.identifiers
    names: list[str] = []
    for col in list(ident.get("drop", [])) + list(ident.get("pseudonymise", {}).keys()):
        if col in frame.columns and frame[col].dtype.kind not in "fiuM":
            names.extend(map(str, _pylist(frame[col].dropna().unique())))
    return names


def clean_survey(
    raw: RawTable, codebook: Codebook, exclusions: list[dict], salt: bytes
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clean the respondent export: exclusions, validation, decoding, tool blocks.

    Returns
    -------
    respondents, tools, excluded, events
    """
    src = codebook.sources[raw.name]
    id_col = src["id_column"]
    frame = raw.frame.assign(**{ROW: list(raw.row_numbers)})
    release_memory()  # what reading left reserved, before the cleaning's own allocations
    if id_col not in frame.columns:
        raise ValidationError(f"{raw.path}: id column {id_col!r} missing",
                              [{"file": str(raw.path), "column": id_col, "row": None, "problem": "colonne absente",
                                "value": None}])
    id_values = _rows(frame, [id_col], None, raw.compact)[id_col]
    dup_ids = id_values.duplicated(keep=False) & id_values.notna()
    del id_values
    # A rule whose columns are absent is a problem listed with every validation problem (not alone).
    rules = [r for r in exclusions if r["source"] == raw.name]
    rule_problems = [
        {"file": str(raw.path), "column": c, "row": None, "value": None,
         "problem": f"colonne absente de l'export, nécessaire à la règle d'exclusion {r['id']!r}"}
        for r in rules for c in exclusion_columns(r) if c not in frame.columns
    ]
    usable = [r for r in rules if all(c in frame.columns for c in exclusion_columns(r))]
    # The kept records are tracked by position and never copied as a whole: each step below takes
    # only the columns it reads (a million-record export is not held twice in memory).
    pos, excluded = exclusion_positions(frame, usable, source=raw.name, file=raw.path, id_column=id_col,
                                        compact=raw.compact)
    checked = pos
    if dup_ids.any():
        # duplicated record ids are reported by validation below even when excluded rows carry them
        checked = np.union1d(pos, np.flatnonzero(dup_ids.to_numpy(dtype=bool)))
    problems = list(rule_problems)
    try:
        validate_raw(raw, frame, codebook, "respondent", positions=checked)
    except ValidationError as exc:
        problems += exc.problems
    if problems:
        raise_problems(raw.path, problems)
    names = _survey_name_index(raw.frame, codebook)  # indexed once for every text column
    release_memory()

    def take(columns: list[str], rows: np.ndarray | None = None) -> pd.DataFrame:
        """``columns`` of the kept records (of those at ``rows``, positions among the kept records)."""
        return _rows(frame, [*columns, ROW, id_col], pos if rows is None else pos[rows], raw.compact)

    logs = []
    resp_q = codebook.at_level("respondent")
    decoded_parts = []
    for q in resp_q:  # one question at a time: its own columns only
        part, log = decode_level(take(q.raw_columns()), [q], codebook, block=None, source=raw.name, file=raw.path,
                                 id_col=id_col, names=names, missing_ranges=raw.missing_ranges)
        decoded_parts.append(part)
        logs.append(log)
    keys = take([])
    resp = pd.concat(decoded_parts, axis=1) if decoded_parts else pd.DataFrame(index=keys.index)
    del decoded_parts  # the parts are in ``resp`` now (peak memory of large exports)
    release_memory()
    resp = resp.assign(**{ROW: keys[ROW], id_col: keys[id_col]})
    resp, log = apply_filters(resp, resp_q, codebook, source=raw.name, file=raw.path, id_col=id_col)
    logs.append(log)

    ids = keys[id_col]
    if ids.dtype.kind in "fiu":  # vectorised f"R{int(v):04d}" (int() truncates like astype)
        respondent_id = ("R" + pd.Series(ids.to_numpy().astype(np.int64), index=keys.index, name=id_col)
                         .astype("string").str.zfill(4)).astype("string")
    else:
        respondent_id = ids.map(lambda v: f"R{int(v):04d}").astype("string")
    pseudo_cols = codebook.identifiers.get("pseudonymise", {})
    meta = {"respondent_id": respondent_id}
    for raw_col, out_col in pseudo_cols.items():
        meta[out_col] = pseudonymise(take([raw_col])[raw_col], salt)
    meta_cols = take([c for c in ("submitdate", "startlanguage") if c in frame.columns])
    meta["submitted_at"] = pd.to_datetime(meta_cols["submitdate"]) if "submitdate" in frame.columns else pd.NaT
    meta["language"] = meta_cols["startlanguage"].astype("string") if "startlanguage" in frame.columns else pd.NA
    respondents = pd.concat([pd.DataFrame(meta, index=keys.index), resp.drop(columns=[ROW, id_col])], axis=1)
    del resp, meta

    # tool blocks → one row per tool
    blocks = src.get("tool_blocks")
    tool_frames = []
    tool_rows = []  # position in ``respondents`` of the respondent of each tool row
    if blocks:
        count_col = blocks["count_column"]
        count_raw = take([count_col])[count_col]
        n_tools = pd.to_numeric(count_raw, errors="coerce")
        # A count is a code: « ne sait pas » (99, or any declared user-missing value) describes no tool.
        unknown = declared_missing(count_raw, raw.missing_ranges.get(count_col), codebook.missing_code)
        if unknown.any():
            hit = keys[unknown]
            logs.append(_log(raw.name, raw.path, hit[ROW], hit[id_col], count_col, "code manquant → aucun bloc lu",
                             f"{count_col} = code manquant (« ne sait pas ») : nombre d'outils inconnu, "
                             "aucun bloc outil lu"))
        n_tools = n_tools.mask(pd.Series(unknown, index=n_tools.index)).fillna(0)
        tool_q = codebook.at_level("tool")
        for b in range(1, blocks["count"] + 1):
            in_block = n_tools >= b
            block_cols = [c for q in tool_q for c in q.raw_columns(b)]
            # any answer in the block, column by column (no row-wise frame reduction)
            answered = np.zeros(len(pos), dtype=bool)
            for c in block_cols:
                if c in frame.columns:
                    answered |= ~_is_blank(take([c])[c]).to_numpy(dtype=bool)
            data_beyond = (~in_block) & pd.Series(answered, index=keys.index)
            if data_beyond.any():
                hit = keys[data_beyond]
                logs.append(_log(raw.name, raw.path, hit[ROW], hit[id_col], f"bloc outil {b}", "bloc ignoré",
                                 f"réponses dans le bloc {b} alors que {blocks['count_column']} < {b}"))
            # only the block's columns of its own records are copied, not the whole export
            in_rows = np.flatnonzero(in_block.to_numpy(dtype=bool))
            sub = take(block_cols, in_rows)
            if sub.empty:
                continue
            dec, log = decode_level(sub, tool_q, codebook, block=b, source=raw.name, file=raw.path, id_col=id_col,
                                    names=names, missing_ranges=raw.missing_ranges)
            logs.append(log)
            dec = dec.assign(**{ROW: sub[ROW], id_col: sub[id_col]})
            dec, log = apply_filters(dec, tool_q, codebook, source=raw.name, file=raw.path, id_col=id_col)
            logs.append(log)
            rid = respondent_id[in_block]
            head = pd.DataFrame(
                {
                    "tool_id": (rid + f"-{b}").astype("string"),
                    "respondent_id": rid,
                    "tool_index": pd.array([b] * len(sub), dtype="Int8"),
                },
                index=sub.index,
            )
            tool_frames.append(pd.concat([head, dec.drop(columns=[ROW, id_col])], axis=1))
            tool_rows.append(in_rows)
            del sub, dec, head
            release_memory()
    del names  # the name index is needed for redaction only
    if tool_frames:
        tools = pd.concat(tool_frames, ignore_index=True)
        del tool_frames
    else:
        # No tool described, or a questionnaire without tool blocks (2018): an empty table with the same key columns.
        tools = pd.DataFrame({"tool_id": pd.Series(dtype="string"), "respondent_id": pd.Series(dtype="string"),
                              "tool_index": pd.Series(dtype="Int8")})
    dims = respondents.set_index("respondent_id")
    carry = [c for c in ("collectivity_id", "collectivity_type", "role") if c in dims.columns]
    by_position = dims.index.is_unique and len(tools) > 0  # then map by id = take by position (no string hashing)
    rows = np.concatenate(tool_rows) if by_position else None
    for c in carry:
        if by_position:
            values = pd.Series(respondents[c].array.take(rows), index=tools.index, name="respondent_id")
        else:
            values = (tools["respondent_id"].map(dims[c]).astype(dims[c].dtype) if len(tools)
                      else pd.Series(dtype=dims[c].dtype))
        tools.insert(2 + carry.index(c), c, values)
    tools = tools.sort_values(["respondent_id", "tool_index"], kind="stable").reset_index(drop=True)
    respondents = respondents.sort_values("respondent_id", kind="stable").reset_index(drop=True)
    events = _concat_logs(logs)
    return respondents, tools, excluded, events


def clean_bp(raw: RawTable, codebook: Codebook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean the participatory-budget inventory (one row per territory).

    Returns
    -------
    bp, events
    """
    src = codebook.sources[raw.name]
    id_col = src["id_column"]
    frame = widen(raw.frame, raw.compact).assign(**{ROW: list(raw.row_numbers)})
    problems = identifier_problems(raw, frame[id_col], src.get("id_pattern"))
    try:
        validate_raw(raw, frame, codebook, "bp")
    except ValidationError as exc:  # duplicates are reported above, with the line of the first occurrence
        problems += [p for p in exc.problems if not (p["column"] == id_col and p["problem"] == "identifiant en double")]
    if problems:
        raise_problems(raw.path, problems)
    qs = codebook.at_level("bp")
    dec, log = decode_level(frame, qs, codebook, block=None, source=raw.name, file=raw.path, id_col=id_col, names=[],
                            decimal=raw.decimal, missing_ranges=raw.missing_ranges)
    dec = dec.assign(**{ROW: frame[ROW], id_col: frame[id_col]})
    dec, log2 = apply_filters(dec, qs, codebook, source=raw.name, file=raw.path, id_col=id_col)
    # Identifiers are text as typed (« 30bis », « 07 »), never numbers; sorted as a person numbers them.
    bp_id = frame[id_col].astype("string").str.strip()
    order = sorted(range(len(bp_id)), key=lambda i: _natural_key(bp_id.iloc[i]))
    out = pd.concat([pd.DataFrame({"bp_id": bp_id}, index=frame.index), dec.drop(columns=[ROW, id_col])], axis=1)
    out = out.iloc[order].reset_index(drop=True)
    return out, _concat_logs([log, log2])


def _natural_key(text: str) -> tuple:
    """« 2 » before « 10 », « 30 » before « 30bis »: digit runs compare as numbers."""
    return tuple((0, int(t), t) if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", str(text)))


def identifier_problems(raw: RawTable, ids: pd.Series, pattern: str | None = None) -> list[dict]:
    """Problems of a file's record identifiers, checked on the raw text (never converted to a number).

    Each identifier must be present, unique once its surrounding spaces are removed
    (« 7 » and « 7 » typed with a trailing space are the same record; « 07 » and « 7 »
    are distinct texts, reported only when ``pattern`` rules one out), and match
    ``pattern`` in full when the codebook gives one (``id_pattern``). Each problem names its line.
    """
    column = ids.name
    text = ids.astype("string").str.strip()
    rows = list(raw.row_numbers) or list(range(1, len(ids) + 1))
    problems = []
    seen: dict[str, int] = {}
    regex = re.compile(pattern) if pattern else None
    for value, row in zip(_pylist(text), rows, strict=False):
        if value is None or value == "":
            problems.append({"file": str(raw.path), "column": column, "row": row, "value": None,
                             "problem": "identifiant vide"})
            continue
        if value in seen:
            problems.append({"file": str(raw.path), "column": column, "row": row, "value": value,
                             "problem": f"identifiant en double (déjà ligne {seen[value]})"})
        else:
            seen[value] = row
        if regex is not None and not regex.fullmatch(value):
            problems.append({"file": str(raw.path), "column": column, "row": row, "value": value,
                             "problem": f"identifiant au format inattendu (attendu : {pattern})"})
    return problems


def clean_edition(raws: dict[str, RawTable], codebook: Codebook, exclusions: list[dict], salt: bytes) -> CleanResult:
    """Clean every raw file of one edition and check that no record is lost.

    Raises
    ------
    ValidationError
        When raw records ≠ kept + excluded for a source (nothing may vanish).
    """
    respondents = tools = bp = None
    excluded_logs, event_logs = [], []
    raw_rows, kept_rows = {}, {}
    problems: list[dict] = []
    notes: list[str] = []
    for name, raw in raws.items():
        level = codebook.sources[name]["level"]
        raw_rows[name] = len(raw.frame)
        label_problems, label_warnings = check_export_metadata(codebook, name, raw.path, raw.value_labels,
                                                               raw.column_labels)
        problems += label_problems
        notes += [*raw.notes, *unknown_columns_notes(raw, codebook, exclusions), *label_warnings]
        try:
            if level == "respondent":
                respondents, tools, excluded, events = clean_survey(raw, codebook, exclusions, salt)
                kept_rows[name] = len(respondents)
                excluded_logs.append(excluded)
                event_logs.append(events)
            elif level == "bp":
                bp, events = clean_bp(raw, codebook)
                kept_rows[name] = len(bp)
                event_logs.append(events)
        except ValidationError as exc:
            if not exc.problems:
                raise
            problems += exc.problems  # every file is validated before one error lists all problems
    if problems:
        raise_problems(", ".join(str(r.path) for r in raws.values()), problems)
    excluded = _concat_logs(excluded_logs)
    for name in raws:
        n_ex = int((excluded["source"] == name).sum())
        if raw_rows[name] != kept_rows[name] + n_ex:
            raise ValidationError(
                f"{raws[name].path}: {raw_rows[name]} raw records but {kept_rows[name]} kept + {n_ex} excluded"
            )
    empty = pd.DataFrame()
    return CleanResult(
        respondents=respondents if respondents is not None else empty,
        tools=tools if tools is not None else empty,
        bp=bp if bp is not None else empty,
        exclusions=excluded,
        events=_concat_logs(event_logs),
        raw_rows=raw_rows,
        kept_rows=kept_rows,
        notes=tuple(notes),
    )


def unknown_columns_notes(raw: RawTable, codebook: Codebook, exclusions: list[dict]) -> list[str]:
    """A note naming the export's columns that nothing reads (not in the codebook, identifiers or exclusion rules)."""
    spec = codebook.sources[raw.name]
    levels = ("respondent", "tool") if spec["level"] == "respondent" else (spec["level"],)
    blocks = spec.get("tool_blocks", {})
    known = {spec["id_column"], blocks.get("count_column"), "submitdate", "startlanguage"}
    for q in codebook.questions:
        if q.level in levels:
            for b in (range(1, blocks.get("count", 0) + 1) if q.level == "tool" else [None]):
                known.update(q.raw_columns(b))
    ident = codebook.identifiers
    known.update([*ident.get("drop", []), *ident.get("pseudonymise", {}), *ident.get("metadata", [])])
    known.update(c for r in exclusions if r["source"] == raw.name for c in exclusion_columns(r))
    unknown = [str(c) for c in raw.frame.columns if c not in known]
    if not unknown:
        return []
    return [f"{raw.path.name} : {len(unknown)} colonne(s) inconnue(s) du codebook, ignorée(s) : " + ", ".join(unknown)]
