"""Clean phase: exclusions, validation, decoding, reshaping, redaction, pseudonymisation.

Every function is pure: it takes frames and returns new frames plus a log of
what it did. Nothing is dropped or changed without a log line naming the file,
the row and the reason.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from barometre.codebook import NSP_LABEL, Codebook, Question
from barometre.errors import ValidationError
from barometre.ingest import RawTable

ROW = "_row"  # file row number carried along every frame until output

LOG_COLUMNS = ["source", "file", "row", "record_id", "column", "action", "reason"]

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_RE = re.compile(r"(?<!\d)(?:(?:\+|00)33[\s.-]?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
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
    """

    respondents: pd.DataFrame
    tools: pd.DataFrame
    bp: pd.DataFrame
    exclusions: pd.DataFrame
    events: pd.DataFrame
    raw_rows: dict[str, int] = field(default_factory=dict)
    kept_rows: dict[str, int] = field(default_factory=dict)


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


def _is_blank(series: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(series) or series.dtype == object:
        return series.isna() | (series.astype("string").str.strip() == "")
    return series.isna()


# --------------------------------------------------------------------------- exclusions
def apply_exclusions(
    frame: pd.DataFrame, rules: list[dict], *, source: str, file: Path | str, id_column: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove test, incomplete and duplicate records by the rules of ``config.yaml``.

    Rules apply in order; a record excluded by one rule is not seen by the next.

    Parameters
    ----------
    frame
        Raw records with the ``_row`` column (file row numbers).
    rules
        The edition's ``exclusions`` entries for this source.
    source, file, id_column
        Names used in the log.

    Returns
    -------
    kept, log
        The remaining records and one log row per excluded record.
    """
    kept = frame
    logs: list[pd.DataFrame] = []
    for rule in rules:
        cols = rule["columns"]
        missing = [c for c in cols if c not in kept.columns]
        if missing:
            raise ValidationError(
                f"{file}: exclusion rule {rule['id']!r} names column(s) {missing} absent from the export",
                [{"file": str(file), "column": c, "row": None, "problem": "colonne absente"} for c in missing],
            )
        kind = rule["rule"]
        if kind == "match":
            pattern = re.compile(rule["pattern"])
            hit = np.zeros(len(kept), dtype=bool)
            for c in cols:
                values = kept[c].astype("string").fillna("")
                hit |= values.map(lambda v: bool(pattern.search(v))).to_numpy(dtype=bool)
        elif kind == "missing":
            hit = np.ones(len(kept), dtype=bool)
            for c in cols:
                hit &= _is_blank(kept[c]).to_numpy(dtype=bool)
        elif kind == "below":
            hit = np.zeros(len(kept), dtype=bool)
            for c in cols:
                hit |= (pd.to_numeric(kept[c], errors="coerce") < rule["threshold"]).fillna(False).to_numpy(bool)
        elif kind == "duplicate":
            keys = pd.DataFrame({c: kept[c].astype("string").fillna("").map(normalise_text) for c in cols})
            order = kept[rule["order_by"]] if rule.get("order_by") else pd.Series(np.arange(len(kept)))
            # Stable order: by order_by then file row, so "last" is the latest submission.
            ranked = keys.assign(_o=order.to_numpy(), _r=kept[ROW].to_numpy()).sort_values(["_o", "_r"], kind="stable")
            dup_sorted = ranked.duplicated(subset=cols, keep=rule.get("keep", "last"))
            hit = dup_sorted.reindex(keys.index).to_numpy(dtype=bool)
        else:  # pragma: no cover - schema forbids it
            raise ValueError(f"unknown exclusion rule {kind!r}")
        if hit.any():
            out = kept[hit]
            logs.append(_log(source, file, out[ROW], out[id_column], ",".join(cols), f"exclu:{rule['id']}", rule["reason"]))
        kept = kept[~hit]
    return kept, _concat_logs(logs)


# --------------------------------------------------------------------------- validation
def _code_set(q: Question, missing_code: int) -> list:
    codes = [c.code for c in q.codes]
    if q.nsp in ("show", "drop") and q.level != "bp":
        codes.append(missing_code)
    return codes


def validate_raw(raw: RawTable, frame: pd.DataFrame, codebook: Codebook, level: str) -> None:
    """Check a raw export against the codebook, reporting every failure at once.

    Uses pandera with ``lazy=True``. Checked: every codebook column exists, every
    code is declared, numbers are in range, required answers are present,
    record ids are unique.

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
    is_csv = raw.path.suffix.lower() in (".csv", ".txt")

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
                    else:
                        add(col, [pa.Check.isin([0, 1], error="case à cocher hors de {0, 1}")])
            elif q.type == "ranking":
                allowed = [c.code for c in q.codes]
                for col in q.raw_columns(b):
                    add(col, [pa.Check.isin(allowed, error=f"item de classement inconnu (attendus : {allowed})")])
            elif q.type == "numeric":
                col = q.raw_columns(b)[0]
                lo, hi = q.range or (-np.inf, np.inf)
                if is_csv:
                    check = pa.Check(
                        lambda s, lo=lo, hi=hi: s.isna() | (s.str.strip() == "") | parse_decimal(s).between(lo, hi).fillna(False),
                        element_wise=False, error=f"nombre illisible ou hors de [{lo}, {hi}]",
                    )
                else:
                    check = pa.Check.in_range(lo, hi, error=f"nombre hors de [{lo}, {hi}]")
                add(col, [check])
            else:
                for col in q.raw_columns(b):
                    add(col, [])
            if q.other_text and q.type != "multiple":
                add(q.other_text.replace("{i}", str(b)) if b else q.other_text, [])
    schema = pa.DataFrameSchema(columns, strict=False, coerce=False, name=raw.name)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems = _problems_from_pandera(exc.failure_cases, raw, frame)
        lines = [f"{p['file']}: column {p['column']!r}, row {p['row']}: {p['problem']} (valeur : {p['value']!r})" for p in problems]
        raise ValidationError(
            f"{raw.path}: {len(problems)} validation problem(s):\n  " + "\n  ".join(lines), problems
        ) from None


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
    the decimal mark. Unparseable values give NaN (validation reports them).
    """
    s = values.astype("string").str.strip().str.replace(r"[\s\u00a0\u202f]", "", regex=True)
    if decimal == ",":
        s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    s = s.where(s != "", None)
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
    if values.dtype.kind in "fiu":
        lookup = {float(c.code): c.label for c in question.codes}
        keys = values.astype("float64")
        nsp_mask = keys == float(missing_code)
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
    ordered = question.type in ("ordinal", "band")
    out = pd.Series(pd.Categorical(mapped, categories=labels, ordered=ordered), index=values.index, name=question.harmonised)
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
    text = other.astype("string").fillna("").map(normalise_text)
    target = pd.Series(pd.NA, index=decoded.index, dtype="object")
    for rule in question.recode_other:
        pat = re.compile(rule["pattern"], re.IGNORECASE)
        hit = (decoded == other_code.label) & target.isna() & text.map(lambda v: bool(pat.search(v))).astype(bool)
        target = target.mask(hit, question.label_of(rule["to"]))
    changed = target.notna()
    recoded = decoded.astype("object").mask(changed, target)
    recoded = pd.Series(
        pd.Categorical(recoded, categories=decoded.cat.categories, ordered=decoded.cat.ordered),
        index=decoded.index, name=decoded.name,
    )
    return recoded, changed


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
    for opt, col in zip(question.options, raw_cols):
        values = pd.array(checked[col].to_numpy(), dtype="boolean")
        values[~answered.to_numpy()] = pd.NA
        out[f"{question.harmonised}__{opt.key}"] = values
    exclusive = [col for opt, col in zip(question.options, raw_cols) if opt.exclusive]
    conflict = pd.Series(False, index=frame.index)
    if exclusive:
        others = [c for c in raw_cols if c not in exclusive]
        conflict = checked[exclusive].any(axis=1) & checked[others].any(axis=1)
    return pd.DataFrame(out, index=frame.index), conflict


def decode_ranking(frame: pd.DataFrame, question: Question) -> tuple[pd.DataFrame, pd.Series]:
    """Turn « one column per rank holding an item code » into one rank column per item.

    Returns
    -------
    ranks, duplicated
        ``<harmonised>__<item>`` Int8 ranks (<NA> when unranked) and a mask of
        records that put the same item at two ranks (a validation failure).
    """
    rank_cols = question.raw_columns()
    codes = frame[rank_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
    n = len(frame)
    out = {}
    for c in question.codes:
        hit = codes == float(c.code)
        has = hit.any(axis=1)
        rank = np.where(has, hit.argmax(axis=1) + 1, 0)
        arr = pd.array(rank, dtype="Int8")
        arr[~has] = pd.NA
        out[f"{question.harmonised}__{c.key}"] = arr
    filled = ~np.isnan(codes)
    dup = np.zeros(n, dtype=bool)
    for i in range(n):
        row = codes[i][filled[i]]
        dup[i] = len(row) != len(set(row.tolist()))
    return pd.DataFrame(out, index=frame.index), pd.Series(dup, index=frame.index)


def redact_text(values: pd.Series, names: list[str] | None = None) -> tuple[pd.Series, pd.Series]:
    """Mask e-mail addresses, phone numbers and known names in free text.

    Parameters
    ----------
    values
        Free-text answers.
    names
        Identifying strings from the raw file (respondent and collectivity
        names) that must not appear in any output.

    Returns
    -------
    redacted, changed
    """
    s = values.astype("string")
    out = s.str.replace(EMAIL_RE, EMAIL_MASK, regex=True).str.replace(PHONE_RE, PHONE_MASK, regex=True)
    for name in sorted({n for n in (names or []) if n and len(n.strip()) >= 4}, key=len, reverse=True):
        out = out.str.replace(r"(?<!\w)" + re.escape(name.strip()) + r"(?!\w)", NAME_MASK, case=False, regex=True)
    changed = (out.fillna("") != s.fillna(""))
    return out, changed.astype(bool)


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

    return values.map(one).astype("string")


# --------------------------------------------------------------------------- filters
def _filter_mask(frame: pd.DataFrame, question: Question, codebook: Codebook) -> pd.Series:
    target = codebook.question(question.filter.question)
    labels = [target.label_of(k) for k in question.filter.keys]
    return frame[target.harmonised].isin(labels)


def apply_filters(
    frame: pd.DataFrame, questions: list[Question], codebook: Codebook, *, source: str, file: Path | str, id_col: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank answers given outside a question's filter (« asked only if … ») and log them."""
    out = frame.copy()
    logs = []
    for q in questions:
        if q.filter is None:
            continue
        allowed = _filter_mask(out, q, codebook)
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
    names: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every question of one level (respondent, one tool block, or BP)."""
    cols: dict[str, pd.Series | pd.array] = {}
    logs = []
    ids = frame[id_col]
    rows = frame[ROW]

    def rawcol(pattern: str) -> str:
        return pattern.replace("{i}", str(block)) if block else pattern

    for q in questions:
        if q.type in ("single", "ordinal", "band"):
            decoded, dropped = decode_categorical(frame[rawcol(q.raw)], q, codebook.missing_code)
            if dropped.any():
                logs.append(_log(source, file, rows[dropped], ids[dropped], q.harmonised, "ne sait pas → non-réponse",
                                 f"{q.id} ne montre pas « ne se prononce pas »"))
            if q.other_text:
                other = frame[rawcol(q.other_text)]
                decoded, changed = recode_other(decoded, other, q)
                if changed.any():
                    for idx in frame.index[changed]:
                        logs.append(_log(source, file, [rows[idx]], [ids[idx]], q.harmonised, "recodage « Autre »",
                                         f"« Autre » saisi à la main → {decoded[idx]}"))
                red, _ = redact_text(other, names)
                cols[f"{q.harmonised}_other"] = red.where(red.str.strip() != "", None)
            cols[q.harmonised] = decoded
        elif q.type == "multiple":
            decoded, conflict = decode_multiple(frame, q, block)
            if conflict.any():
                logs.append(_log(source, file, rows[conflict], ids[conflict], q.harmonised, "signalé",
                                 "option exclusive cochée avec d'autres options (gardé tel quel)"))
            for c in decoded.columns:
                cols[c] = decoded[c]
            if q.other_text:
                red, _ = redact_text(frame[rawcol(q.other_text)], names)
                cols[f"{q.harmonised}_other"] = red.where(red.str.strip() != "", None)
        elif q.type == "ranking":
            decoded, dup = decode_ranking(frame, q)
            if dup.any():
                raise ValidationError(
                    f"{file}: {q.id} ranks the same item twice in rows {rows[dup].tolist()}",
                    [{"file": str(file), "column": q.raw, "row": int(r), "problem": "item classé deux fois", "value": None}
                     for r in rows[dup]],
                )
            for c in decoded.columns:
                cols[c] = decoded[c]
        elif q.type == "numeric":
            raw = frame[rawcol(q.raw)]
            num = parse_decimal(raw) if not raw.dtype.kind in "fiu" else raw.astype("Float64")
            if num.dropna().mod(1).eq(0).all():
                num = num.round().astype("Int64")
            cols[q.harmonised] = num
        elif q.type == "text":
            raw = frame[rawcol(q.raw)]
            if q.public:
                cols[q.harmonised] = raw.astype("string").str.strip()
            else:
                red, changed = redact_text(raw, names)
                if changed.any():
                    logs.append(_log(source, file, rows[changed], ids[changed], q.harmonised, "texte masqué",
                                     "courriel, téléphone ou nom retiré du texte libre"))
                cols[q.harmonised] = red.where(red.fillna("").str.strip() != "", None)
    out = pd.DataFrame(cols, index=frame.index)
    return out, _concat_logs(logs)


def _survey_names(frame: pd.DataFrame, codebook: Codebook) -> list[str]:
    ident = codebook.identifiers
    names: list[str] = []
    for col in list(ident.get("drop", [])) + list(ident.get("pseudonymise", {}).keys()):
        if col in frame.columns and frame[col].dtype.kind not in "fiuM":
            names.extend(str(v) for v in frame[col].dropna().unique())
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
    if id_col not in frame.columns:
        raise ValidationError(f"{raw.path}: id column {id_col!r} missing",
                              [{"file": str(raw.path), "column": id_col, "row": None, "problem": "colonne absente", "value": None}])
    dup_ids = frame[id_col].duplicated(keep=False) & frame[id_col].notna()
    kept, excluded = apply_exclusions(frame, [r for r in exclusions if r["source"] == raw.name],
                                      source=raw.name, file=raw.path, id_column=id_col)
    if dup_ids.any():
        # duplicated record ids are reported by validation below even when excluded rows carry them
        kept = pd.concat([kept, frame[dup_ids & ~frame.index.isin(kept.index)]]).sort_index()
    validate_raw(raw, kept, codebook, "respondent")
    names = _survey_names(raw.frame, codebook)
    logs = []

    resp_q = codebook.at_level("respondent")
    resp, log = decode_level(kept, resp_q, codebook, block=None, source=raw.name, file=raw.path, id_col=id_col, names=names)
    logs.append(log)
    resp = resp.assign(**{ROW: kept[ROW], id_col: kept[id_col]})
    resp, log = apply_filters(resp, resp_q, codebook, source=raw.name, file=raw.path, id_col=id_col)
    logs.append(log)

    respondent_id = kept[id_col].map(lambda v: f"R{int(v):04d}").astype("string")
    pseudo_cols = codebook.identifiers.get("pseudonymise", {})
    meta = {"respondent_id": respondent_id}
    for raw_col, out_col in pseudo_cols.items():
        meta[out_col] = pseudonymise(kept[raw_col], salt)
    meta["submitted_at"] = pd.to_datetime(kept["submitdate"]) if "submitdate" in kept.columns else pd.NaT
    meta["language"] = kept["startlanguage"].astype("string") if "startlanguage" in kept.columns else pd.NA
    respondents = pd.concat([pd.DataFrame(meta, index=kept.index), resp.drop(columns=[ROW, id_col])], axis=1)

    # tool blocks → one row per tool
    blocks = src.get("tool_blocks")
    tool_frames = []
    if blocks:
        n_tools = pd.to_numeric(kept[blocks["count_column"]], errors="coerce").fillna(0)
        tool_q = codebook.at_level("tool")
        for b in range(1, blocks["count"] + 1):
            in_block = n_tools >= b
            block_cols = [c for q in tool_q for c in q.raw_columns(b)]
            data_beyond = (~in_block) & kept[block_cols].apply(lambda s: ~_is_blank(s)).any(axis=1)
            if data_beyond.any():
                hit = kept[data_beyond]
                logs.append(_log(raw.name, raw.path, hit[ROW], hit[id_col], f"bloc outil {b}", "bloc ignoré",
                                 f"réponses dans le bloc {b} alors que {blocks['count_column']} < {b}"))
            sub = kept[in_block]
            if sub.empty:
                continue
            dec, log = decode_level(sub, tool_q, codebook, block=b, source=raw.name, file=raw.path, id_col=id_col, names=names)
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
    if tool_frames:
        tools = pd.concat(tool_frames, ignore_index=True)
    else:
        tools = pd.DataFrame({"tool_id": pd.Series(dtype="string"), "respondent_id": pd.Series(dtype="string")})
    dims = respondents.set_index("respondent_id")
    carry = [c for c in ("collectivity_id", "collectivity_type", "role") if c in dims.columns]
    for c in carry:
        tools.insert(2 + carry.index(c), c, tools["respondent_id"].map(dims[c]).astype(dims[c].dtype) if len(tools) else pd.Series(dtype=dims[c].dtype))
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
    frame = raw.frame.assign(**{ROW: list(raw.row_numbers)})
    validate_raw(raw, frame, codebook, "bp")
    qs = codebook.at_level("bp")
    dec, log = decode_level(frame, qs, codebook, block=None, source=raw.name, file=raw.path, id_col=id_col, names=[])
    dec = dec.assign(**{ROW: frame[ROW], id_col: frame[id_col]})
    dec, log2 = apply_filters(dec, qs, codebook, source=raw.name, file=raw.path, id_col=id_col)
    bp_id = pd.to_numeric(frame[id_col].str.strip(), errors="coerce").astype("Int64")
    out = pd.concat([pd.DataFrame({"bp_id": bp_id}, index=frame.index), dec.drop(columns=[ROW, id_col])], axis=1)
    out = out.sort_values("bp_id", kind="stable").reset_index(drop=True)
    return out, _concat_logs([log, log2])


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
    for name, raw in raws.items():
        level = codebook.sources[name]["level"]
        raw_rows[name] = len(raw.frame)
        if level == "respondent":
            respondents, tools, excluded, events = clean_survey(raw, codebook, exclusions, salt)
            kept_rows[name] = len(respondents)
            excluded_logs.append(excluded)
            event_logs.append(events)
        elif level == "bp":
            bp, events = clean_bp(raw, codebook)
            kept_rows[name] = len(bp)
            event_logs.append(events)
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
    )
