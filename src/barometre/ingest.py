"""Ingest phase: read raw exports faithfully, without changing a value.

SPSS files are read with pyreadstat, keeping value labels and user-missing
metadata (``user_missing=True``: code 99 stays 99 and is declared missing in
``missing_ranges``). Parquet files (large editions) are read as stored, numeric
codes included. CSV files are read as text, with an explicit encoding,
separator and decimal mark; a UTF-8 byte-order mark is detected and removed.
Every error names the file.
"""
from __future__ import annotations

import csv
import io
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from barometre.errors import IngestError

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RawTable:
    """A raw export as read, with its metadata.

    Attributes
    ----------
    name
        Key of the raw file in the configuration (``survey``, ``bp_inventory``).
    path
        The file read.
    frame
        The data, one row per raw record, columns as exported.
    column_labels
        Variable labels (question text) by column, when the format has them.
    value_labels
        Value labels by column: ``{column: {code: label}}``.
    missing_ranges
        User-missing declarations by column (SPSS).
    encoding
        The text encoding actually used.
    row_numbers
        Position of each record in the file as a person would count it (1-based
        record for ``.sav``, line number for CSV, header being line 1).
    decimal
        Decimal mark of numbers stored as text (CSV): ``","`` or ``"."``.
    notes
        What reading noticed and a person should know (French, for the cleaning report):
        an Excel ``sep=`` line, a byte-order mark overriding the configured encoding.
    compact
        Columns held as small nullable integers to save memory, whose exported values are
        ``float64`` (Parquet, see :func:`read_parquet`); :func:`widen` gives them back.
    """

    name: str
    path: Path
    frame: pd.DataFrame
    column_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    missing_ranges: dict[str, list] = field(default_factory=dict)
    encoding: str = ""
    row_numbers: tuple[int, ...] = ()
    decimal: str = ","
    notes: tuple[str, ...] = ()
    compact: frozenset[str] = frozenset()

    def row_number(self, index: int) -> int:
        """Row number in the file of the record at positional ``index``."""
        return self.row_numbers[index] if self.row_numbers else index + 1


def read_sav(path: str | Path, name: str = "survey", encoding: str | None = None) -> RawTable:
    """Read an SPSS ``.sav`` export with its labels and user-missing metadata.

    Parameters
    ----------
    path
        The ``.sav`` file.
    name
        Key of the file in the configuration.
    encoding
        Override of the file's declared character encoding (rarely needed).

    Returns
    -------
    RawTable
        The raw data with variable labels, value labels and missing ranges.

    Raises
    ------
    IngestError
        When the file is missing, truncated, not SPSS, or not decodable.
    """
    import pyreadstat

    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found (raw file {name!r})")
    try:
        kwargs: dict[str, Any] = {"user_missing": True, "apply_value_formats": False}
        if encoding:
            kwargs["encoding"] = encoding
        frame = None
        if not encoding:  # the fast reader handles the file's own (UTF-8) encoding only
            _, meta = pyreadstat.read_sav(str(path), metadataonly=True, **kwargs)
            frame = read_sav_records(path, meta)
        if frame is None:  # anything the fast reader does not handle: pyreadstat reads the file
            frame, meta = pyreadstat.read_sav(str(path), **kwargs)
    except Exception as exc:  # pyreadstat raises its own exception types
        raise IngestError(
            f"{path}: cannot read as an SPSS .sav file (raw file {name!r}): {_sav_hint(str(exc), encoding)} "
            f"[{type(exc).__name__}: {exc}]"
        ) from exc
    labels = dict(zip(meta.column_names, meta.column_labels or [None] * len(meta.column_names), strict=False))
    return RawTable(
        name=name,
        path=path,
        frame=frame,
        column_labels={k: v for k, v in labels.items() if v},
        value_labels=dict(meta.variable_value_labels or {}),
        missing_ranges=dict(meta.missing_ranges or {}),
        encoding=str(meta.file_encoding or ""),
        row_numbers=tuple(range(1, len(frame) + 1)),
    )


#: ReadStat error messages → what a person should check.
_SAV_HINTS = (
    ("expected number of rows", "the file is truncated (it holds fewer records than its header announces)"),
    ("unable to read from file", "the file is truncated or empty (its header cannot be read)"),
    ("invalid file", "this is not an SPSS .sav file (wrong format or damaged header)"),
    ("unsupported features", "this is not an SPSS .sav file (wrong format or damaged header)"),
    ("convert string", "its text is not in the character encoding the file declares"),
    ("encoding", "its text is not in the character encoding the file declares"),
)


def _sav_hint(message: str, encoding: str | None) -> str:
    low = message.lower()
    for needle, hint in _SAV_HINTS:
        if needle in low:
            if "encoding" in hint:
                tried = f"read as {encoding}" if encoding else "read with the encoding declared in the file"
                hint += f" ({tried}); set `encoding` for this raw file in config.yaml"
            return hint + "."
    return "is the file truncated, in another format, or in an unexpected encoding?"


# --------------------------------------------------------------------------- fast .sav records
SAV_READ_CHUNK = 100_000  # records decoded at once (bounds the temporary memory)
_SAV_SYSMIS = -sys.float_info.max
_SAV_DATETIME = re.compile(r"^(DATETIME|YMDHMS)(\d+)?(\.\d+)?$")  # pyreadstat's SPSS datetime formats
_SAV_NUMBER = re.compile(r"^(F|N|E|COMMA|DOT|DOLLAR|PCT)(\d+)?(\.\d+)?$")  # plain numbers, left as they are
_SPSS_EPOCH = np.datetime64("1582-10-14T00:00:00", "s")


def _sav_dictionary(fh) -> dict | None:
    """Record layout of an SPSS system file, from its header and dictionary; ``None`` if not handled.

    Handled: ``$FL2``, little-endian, uncompressed, known number of cases, strings
    of at most 255 bytes. Each variable record is one 8-byte slot of a case; a
    string of width ``w`` takes ``ceil(w / 8)`` slots (continuation records).
    """
    head = fh.read(176)
    if len(head) < 176 or head[:4] != b"$FL2":
        return None
    layout, case_size, compression, _, ncases = struct.unpack_from("<iiiii", head, 64)
    if layout not in (2, 3) or compression != 0 or ncases < 0 or case_size <= 0:
        return None
    variables: list[tuple[int, int]] = []  # (width: 0 = number, first slot)
    slots = 0
    sysmis = _SAV_SYSMIS
    while True:
        raw = fh.read(4)
        if len(raw) < 4:
            return None
        (rec,) = struct.unpack("<i", raw)
        if rec == 2:
            vtype, has_label, n_missing, _, _ = struct.unpack("<iiiii", fh.read(20))
            fh.read(8)  # short name
            if has_label:
                (length,) = struct.unpack("<i", fh.read(4))
                fh.read((length + 3) // 4 * 4)
            fh.read(8 * abs(n_missing))
            if vtype == 0 or vtype > 0:
                if vtype > 255:
                    return None
                variables.append((vtype, slots))
            slots += 1  # continuation records (vtype -1) are slots of the previous string
        elif rec == 3:
            (count,) = struct.unpack("<i", fh.read(4))
            for _ in range(count):
                fh.read(8)
                (length,) = struct.unpack("<B", fh.read(1))
                fh.read((length + 1 + 7) // 8 * 8 - 1)
            rec4, nvars = struct.unpack("<ii", fh.read(8))
            if rec4 != 4:
                return None
            fh.read(4 * nvars)
        elif rec == 6:
            (lines,) = struct.unpack("<i", fh.read(4))
            fh.read(80 * lines)
        elif rec == 7:
            subtype, size, count = struct.unpack("<iii", fh.read(12))
            body = fh.read(size * count)
            if subtype == 4 and size == 8 and count >= 1:
                (sysmis,) = struct.unpack_from("<d", body, 0)
            if subtype == 14:  # very long strings (over 255 bytes): left to pyreadstat
                return None
        elif rec == 999:
            fh.read(4)
            break
        else:
            return None
    if slots != case_size:
        return None
    return {"variables": variables, "case_size": case_size, "ncases": ncases, "data_offset": fh.tell(),
            "sysmis": sysmis}


def read_sav_records(path: str | Path, meta) -> pd.DataFrame | None:
    """The data of an uncompressed SPSS file, decoded with numpy; ``None`` when pyreadstat must read it.

    pyreadstat (ReadStat) decodes a ``.sav`` value by value through a Python
    callback: about 0.3 µs a cell, 45 s for a million respondents of the 2017
    questionnaire (154 variables), and neither its multiprocessing nor its
    chunked reader helps on two cores. An uncompressed file is a header, a
    dictionary and fixed-size records, so numpy reads each variable as a strided
    column of the records instead, giving the frame pyreadstat gives (``meta`` is
    pyreadstat's own metadata of the file):

    * numbers as float64, the system-missing value as NaN, user-missing codes
      (99) kept as they are (``user_missing=True``);
    * ``DATETIME``/``YMDHMS`` variables as ``datetime64[us]`` (whole seconds only);
    * strings decoded from UTF-8 with their trailing spaces removed, ``""`` when blank.

    Anything else — compression, another encoding or byte order, dates, times,
    very long strings, NUL bytes or invalid UTF-8 in a string, fractional seconds,
    declared missing values on a string — returns ``None``: the caller then
    reads the file with pyreadstat, as before.
    """
    import pyarrow as pa

    path = Path(path)
    if str(meta.file_encoding or "").replace("-", "").upper() != "UTF8":
        return None
    with path.open("rb") as fh:
        layout = _sav_dictionary(fh)
    if layout is None or len(layout["variables"]) != len(meta.column_names):
        return None
    n, record = layout["ncases"], layout["case_size"] * 8
    if n != meta.number_rows or path.stat().st_size < layout["data_offset"] + n * record:
        return None
    kinds = []
    for name, (width, slot) in zip(meta.column_names, layout["variables"], strict=False):
        fmt = str(meta.original_variable_types.get(name) or "")
        rtype = meta.readstat_variable_types.get(name)
        if width > 0:
            if rtype != "string" or name in (meta.missing_ranges or {}) or name in (meta.missing_user_values or {}):
                return None
            kinds.append(("string", width, slot))
        elif rtype != "double":
            return None
        elif _SAV_DATETIME.match(fmt):
            kinds.append(("datetime", 8, slot))
        elif _SAV_NUMBER.match(fmt) or not fmt:
            kinds.append(("number", 8, slot))
        else:  # dates, times and any other format pyreadstat may convert
            return None
    # plain numbers first, then datetimes: the plain rows of ``table`` are then one block as they are
    numeric = [name for kind in ("number", "datetime")
               for name, k in zip(meta.column_names, kinds, strict=False) if k[0] == kind]
    slot_of = {name: k[2] for name, k in zip(meta.column_names, kinds, strict=False)}
    numeric_slots = np.array([slot_of[name] for name in numeric], dtype=np.intp)
    table = np.empty((len(numeric), n))  # one row per numeric variable
    strings: dict[str, list] = {name: [] for name, k in zip(meta.column_names, kinds, strict=False) if k[0] == "string"}
    buffer = np.empty((min(n, SAV_READ_CHUNK), record), dtype=np.uint8)  # records are read into it, chunk by chunk
    fh = path.open("rb")
    fh.seek(layout["data_offset"])
    for lo in range(0, n, SAV_READ_CHUNK):
        rows = min(SAV_READ_CHUNK, n - lo)
        block = buffer[:rows]
        if fh.readinto(block.data.cast("B")) != rows * record:
            fh.close()
            return None
        # every numeric slot of each record at once (row by row: cache-friendly), then transposed
        table[:, lo:lo + rows] = block.view("<f8")[:, numeric_slots].T
        for name, (kind, width, slot) in zip(meta.column_names, kinds, strict=False):
            if kind != "string":
                continue
            at = slot * 8
            cells = block[:, at:at + width]
            nonblank = np.flatnonzero((cells != 0x20).any(axis=1))  # most « Autre » columns are blank
            lengths = np.zeros(rows, dtype=np.int64)
            payload = b""
            if nonblank.size:
                sub = cells[nonblank]
                if (sub == 0).any():
                    fh.close()
                    return None  # NUL bytes: ReadStat versions differ, pyreadstat decides
                # length without the trailing spaces: position of the last non-space byte + 1
                lengths[nonblank] = width - np.argmax(sub[:, ::-1] != 0x20, axis=1)
                payload = sub[np.arange(width)[None, :] < lengths[nonblank, None]].tobytes()
            offsets = np.zeros(rows + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            arr = pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(payload))
            try:
                arr.validate(full=True)  # valid UTF-8
            except pa.ArrowInvalid:
                fh.close()
                return None
            strings[name].append(arr)
    fh.close()
    del buffer
    table[table == layout["sysmis"]] = np.nan
    position = {name: i for i, name in enumerate(meta.column_names)}
    plain = sum(1 for name in numeric if kinds[position[name]][0] == "number")
    # One float block holding every number column (a view: no copy), the other columns as extension
    # arrays; a frame of 154 one-column blocks would be "highly fragmented" for pandas.
    blocks = [(table[:plain], np.array([position[name] for name in numeric[:plain]], dtype=np.intp))]
    for i, name in enumerate(numeric):
        if kinds[position[name]][0] != "datetime":
            continue
        secs = table[i]
        ok = np.isfinite(secs)
        if not np.array_equal(secs[ok], np.floor(secs[ok])):
            return None  # fractional seconds: pyreadstat's rounding is left to pyreadstat
        stamp = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        stamp[ok] = (_SPSS_EPOCH + secs[ok].astype(np.int64).astype("timedelta64[s]")).astype("datetime64[us]")
        blocks.append((pd.array(stamp), np.array([position[name]], dtype=np.intp)))
    for name, chunks in strings.items():
        text = pd.arrays.ArrowStringArray(pa.chunked_array(chunks, type=pa.large_string())).astype("str")
        blocks.append((text, np.array([position[name]], dtype=np.intp)))
    from pandas.api.internals import create_dataframe_from_blocks

    return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n), columns=pd.Index(list(meta.column_names)))


def _decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
        encoding = "utf-8"
    if _is_utf8(encoding) is False and _looks_utf8(data):
        # cp1252 / Latin-1 decode any byte: a UTF-8 file read with them gives « Ã© » and garbled
        # column names, which would otherwise be reported as missing columns.
        raise IngestError(
            f"{path}: ce fichier semble être en UTF-8, la configuration dit {encoding} "
            f"(ses caractères accentués sont des séquences UTF-8 valides) ; "
            "mettre `encoding: utf-8` pour ce fichier dans config.yaml."
        )
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ""
        if _is_utf8(encoding):
            hint = " Ce fichier ne semble pas être en UTF-8 (enregistré par Excel en cp1252 ?)."
        raise IngestError(
            f"{path}: cannot decode as {encoding} at byte {exc.start} (line {line}): {exc.reason}. "
            f"Set the right `encoding` for this file in config.yaml.{hint}"
        ) from exc


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() in ("utf8", "utf8sig")


def _looks_utf8(data: bytes) -> bool:
    """Whether ``data`` holds non-ASCII bytes that all decode as UTF-8 (one chance in millions otherwise)."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_EXCEL_SEP = re.compile(r"^\s*sep=(.)\s*$")  # Excel's « sep=; » first line, which names the separator


def _excel_sep_line(text: str, sep: str, path: Path) -> tuple[str, int, str | None]:
    """Remove Excel's ``sep=`` first line; returns the text, the lines removed and a note for the report."""
    first, _, rest = text.partition("\n")
    m = _EXCEL_SEP.match(first.rstrip("\r"))
    if not m:
        return text, 0, None
    declared = m.group(1)
    if declared != sep:
        raise IngestError(
            f"{path}: line 1: la ligne « {first.strip()} » (ajoutée par Excel) annonce le séparateur "
            f"{declared!r}, la configuration dit {sep!r} : corriger `sep` pour ce fichier dans config.yaml"
        )
    return rest, 1, (f"{path.name} : première ligne « {first.strip()} » (séparateur annoncé par Excel) "
                     "reconnue et ignorée")


def read_csv(
    path: str | Path,
    name: str,
    *,
    encoding: str = "utf-8",
    sep: str = ";",
    decimal: str = ",",
    expected_columns: list[str] | None = None,
) -> RawTable:
    """Read a spreadsheet CSV export as text, cell for cell.

    Values are kept as strings (numbers are parsed later, with the configured
    decimal mark, by the cleaning phase), so nothing is converted silently.

    Parameters
    ----------
    path
        The CSV file.
    name
        Key of the file in the configuration.
    encoding
        Declared encoding (``cp1252`` for a French spreadsheet); a UTF-8 BOM
        overrides it.
    sep
        Field separator.
    decimal
        Decimal mark of the numbers (kept in the returned table for the cleaning phase).
    expected_columns
        Columns the codebook reads from this file; when none of them is found
        the separator is probably wrong and the error says so.

    Raises
    ------
    IngestError
        When the file is missing, cannot be decoded, or its rows are ragged.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found (raw file {name!r})")
    data = path.read_bytes()
    text, used = _decode(data, encoding, path)
    notes: list[str] = []
    if data.startswith(UTF8_BOM) and not _is_utf8(encoding):
        notes.append(f"{path.name} : marque d'ordre des octets UTF-8 trouvée, lu en UTF-8 "
                     f"(la configuration dit {encoding})")
    text, skipped, note = _excel_sep_line(text, sep, path)
    notes += [note] if note else []
    # The header is checked first, leniently: with a wrong separator the strict parse below could
    # fail on a quote far down the file and hide the real cause.
    first = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"'), None)
    if not first:
        raise IngestError(f"{path}: empty file (raw file {name!r})")
    header = [h.strip() for h in first]
    if expected_columns:
        found = set(header) & set(expected_columns)
        if not found:
            first_line = text.split("\n", 1)[0]
            counts = {c: first_line.count(c) for c in (";", ",", "\t", "|") if c != sep}
            likely = max(counts, key=lambda c: counts[c])
            guess = (f" (the header line holds {counts[likely]} × {likely!r}: try sep: {likely!r})"
                     if counts[likely] else "")
            shown = [h if len(h) <= 60 else h[:57] + "…" for h in header[:4]]
            raise IngestError(
                f"{path}: read with separator {sep!r}, the header gives {len(header)} column(s) {shown} "
                f"and none of the codebook columns ({', '.join(expected_columns[:4])}, …): "
                f"the separator {sep!r} is wrong for this file{guess}"
            )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    try:
        list(reader)
    except csv.Error as exc:
        raise IngestError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from exc
    records: list[list[str]] = []
    line_numbers: list[int] = []
    # Line number of each record = physical line where it starts (quoted newlines span lines).
    reader2 = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    next(reader2)
    start = reader2.line_num + 1 + skipped
    for rec in reader2:
        if not any(cell.strip() for cell in rec):
            start = reader2.line_num + 1 + skipped
            continue
        if len(rec) != len(header):
            raise IngestError(
                f"{path}: line {start}: {len(rec)} fields where the header has {len(header)} "
                f"(separator {sep!r}; unquoted separator or newline in a cell?)"
            )
        records.append(rec)
        line_numbers.append(start)
        start = reader2.line_num + 1 + skipped
    frame = pd.DataFrame(records, columns=header, dtype="string")
    return RawTable(name=name, path=path, frame=frame, encoding=used, row_numbers=tuple(line_numbers), decimal=decimal,
                    notes=tuple(notes))


def read_xlsx(
    path: str | Path, name: str, *, sheet: str | int = 0, expected_columns: list[str] | None = None
) -> RawTable:
    """Read a spreadsheet (``.xlsx``) export as text, cell for cell, under the rules of :func:`read_csv`.

    Read with openpyxl (values, not formulas). A number cell gives its text with
    ``.`` as decimal mark and no ``.0`` on whole numbers (« 7 », never « 7.0 »), a
    date cell its ISO date; blank rows are skipped; row numbers are the sheet's.

    Raises
    ------
    IngestError
        When the file is missing, not a workbook, the sheet is absent, or no codebook column is found.
    """
    import datetime as dt

    import openpyxl

    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found (raw file {name!r})")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile / KeyError / its own types
        raise IngestError(f"{path}: cannot read as XLSX (raw file {name!r}): {type(exc).__name__}: {exc}") from exc
    try:
        sheets = book.sheetnames
        if isinstance(sheet, int):
            if sheet >= len(sheets):
                raise IngestError(f"{path}: sheet number {sheet} absent (sheets: {sheets})")
            ws = book[sheets[sheet]]
        elif sheet in sheets:
            ws = book[sheet]
        else:
            raise IngestError(f"{path}: sheet {sheet!r} absent (sheets: {sheets})")

        def text(v: object) -> str:
            if v is None:
                return ""
            if isinstance(v, bool):
                return "VRAI" if v else "FAUX"
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            if isinstance(v, dt.datetime):
                return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
            if isinstance(v, dt.date):
                return v.isoformat()
            return str(v)

        rows = ws.iter_rows(values_only=True)
        header_row = next(rows, None)
        if not header_row or not any(c is not None for c in header_row):
            raise IngestError(f"{path}: empty sheet (raw file {name!r})")
        width = max(i + 1 for i, c in enumerate(header_row) if c is not None)
        header = [text(c).strip() for c in header_row[:width]]
        records, numbers = [], []
        for n, row in enumerate(rows, start=2):
            cells = [text(c) for c in row]
            if any(c.strip() for c in cells[width:]):
                raise IngestError(f"{path}: line {n}: a cell beyond the last titled column ({width} columns)")
            cells = (cells + [""] * width)[:width]
            if any(c.strip() for c in cells):
                records.append(cells)
                numbers.append(n)
    finally:
        book.close()
    if expected_columns and not set(header) & set(expected_columns):
        raise IngestError(f"{path}: the header {header[:4]} holds none of the codebook columns "
                          f"({', '.join(expected_columns[:4])}, …): wrong sheet?")
    frame = pd.DataFrame(records, columns=header, dtype="string")
    return RawTable(name=name, path=path, frame=frame, row_numbers=tuple(numbers), decimal=".")


def read_raw(name: str, spec: dict, expected_columns: list[str] | None = None) -> RawTable:
    """Read one raw file described by its ``config.yaml`` entry.

    Parameters
    ----------
    name
        Key of the raw file in the edition's ``raw`` mapping.
    spec
        Its configuration: ``path``, ``format`` and format options.
    expected_columns
        Raw columns the codebook reads from it (used to detect a wrong separator).
    """
    fmt = spec["format"]
    if fmt == "sav":
        return read_sav(spec["path"], name, spec.get("encoding"))
    if fmt == "csv":
        return read_csv(
            spec["path"], name, encoding=spec.get("encoding", "utf-8"), sep=spec.get("sep", ";"),
            decimal=spec.get("decimal", ","), expected_columns=expected_columns,
        )
    if fmt == "xlsx":
        return read_xlsx(spec["path"], name, sheet=spec.get("sheet", 0), expected_columns=expected_columns)
    if fmt == "parquet":
        return read_parquet(spec["path"], name)
    raise IngestError(f"raw file {name!r}: unknown format {fmt!r}")


def read_parquet(path: str | Path, name: str = "survey") -> RawTable:
    """Read a raw export stored as Parquet (e.g. a large survey converted once from its ``.sav``).

    The frame is read as stored: numeric codes stay numbers (so no value labels or
    user-missing declarations are needed, code 99 is just 99), text stays text.
    Row numbers are record positions (1-based), as for ``.sav``.

    Raises
    ------
    IngestError
        When the file is missing or is not a readable Parquet file.

    Notes
    -----
    A large export is mostly ``float64`` code columns whose values are small
    integers (1 to 99) or missing. Each such column is held as the smallest
    nullable integer type that holds its values exactly (``Int8``: 2 bytes a
    value instead of 8) and listed in :attr:`RawTable.compact`; the cleaning
    phase reads it back as ``float64`` (:func:`widen`), so it sees the very values
    ``pd.read_parquet`` gives. A column with a fraction, an infinity, a
    negative zero or a value beyond ``Int32`` stays ``float64``.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found (raw file {name!r})")
    try:
        frame, compact = _read_parquet_compact(path)
    except Exception as exc:  # pyarrow raises its own exception types
        raise IngestError(
            f"{path}: cannot read as a Parquet file (raw file {name!r}): {type(exc).__name__}: {exc}"
        ) from exc
    return RawTable(name=name, path=path, frame=frame, row_numbers=tuple(range(1, len(frame) + 1)),
                    compact=frozenset(compact))


#: Nullable integer types a ``float64`` column of whole numbers is held in, smallest first.
_COMPACT_TYPES = tuple((np.iinfo(t).min, np.iinfo(t).max, f"I{t.__name__[1:]}")
                       for t in (np.int8, np.int16, np.int32))


def _compact_codes(values: np.ndarray) -> pd.api.extensions.ExtensionArray | None:
    """``values`` (``float64``, NaN for missing) as a nullable integer array, or ``None`` when not exact."""
    missing = np.isnan(values)
    present = values[~missing]
    if not present.size or not np.isfinite(present).all() or (present != np.trunc(present)).any():
        return None
    if np.signbit(present[present == 0]).any():  # -0.0 would come back as 0.0
        return None
    lo, hi = present.min(), present.max()
    for tmin, tmax, dtype in _COMPACT_TYPES:
        if tmin <= lo and hi <= tmax:
            ints = np.where(missing, 0, values).astype(dtype.lower())
            return pd.arrays.IntegerArray(ints, missing)
    return None


def _read_parquet_compact(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``pd.read_parquet(path)`` with its whole-number ``float64`` columns compacted (see :func:`read_parquet`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pfile = pq.ParquetFile(path)
    schema = pfile.schema_arrow
    index_cols = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    doubles = [f.name for f in schema if pa.types.is_float64(f.type) and f.name not in index_cols]
    others = [f.name for f in schema if f.name not in doubles and f.name not in index_cols]
    frame = pd.read_parquet(path, engine="pyarrow", columns=others)
    if frame.shape[1] == 0 and len(frame) != pfile.metadata.num_rows:
        frame = pd.DataFrame(index=pd.RangeIndex(pfile.metadata.num_rows))
    columns: dict[str, Any] = {}
    compact = []
    for name in doubles:  # one column at a time: a million-row export never exists twice as float64
        values = pfile.read(columns=[name]).column(0).to_numpy()
        codes = _compact_codes(values)
        if codes is not None:
            compact.append(name)
        columns[name] = values if codes is None else codes
    frame = pd.concat([frame, pd.DataFrame(columns, index=frame.index)], axis=1)
    order = [f.name for f in schema if f.name in frame.columns]
    return frame[order], compact


def widen(frame: pd.DataFrame, compact: frozenset[str] | set[str]) -> pd.DataFrame:
    """``frame`` with its ``compact`` columns (see :func:`read_parquet`) back to ``float64`` (missing as NaN)."""
    cols = [c for c in frame.columns if c in compact]
    return frame.astype(dict.fromkeys(cols, "float64")) if cols else frame
