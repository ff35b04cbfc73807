"""Ingest phase: read raw exports faithfully, without changing a value.

SPSS files are read with pyreadstat, keeping value labels and user-missing
metadata (``user_missing=True``: code 99 stays 99 and is declared missing in
``missing_ranges``). CSV files are read as text, with an explicit encoding,
separator and decimal mark; a UTF-8 byte-order mark is detected and removed.
Every error names the file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """

    name: str
    path: Path
    frame: pd.DataFrame
    column_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    missing_ranges: dict[str, list] = field(default_factory=dict)
    encoding: str = ""
    row_numbers: tuple[int, ...] = ()

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
        frame, meta = pyreadstat.read_sav(str(path), **kwargs)
    except Exception as exc:  # pyreadstat raises its own exception types
        raise IngestError(
            f"{path}: cannot read as an SPSS .sav file (raw file {name!r}): {type(exc).__name__}: {exc}. "
            "Is the file truncated, in another format, or in an unexpected encoding?"
        ) from exc
    labels = dict(zip(meta.column_names, meta.column_labels or [None] * len(meta.column_names)))
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


def _decode(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
        encoding = "utf-8"
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(
            f"{path}: cannot decode as {encoding} at byte {exc.start} (line {line}): {exc.reason}. "
            "Set the right `encoding` for this file in config.yaml."
        ) from exc


def read_csv(
    path: str | Path,
    name: str,
    *,
    encoding: str = "utf-8",
    sep: str = ";",
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
    text, used = _decode(path.read_bytes(), encoding, path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise IngestError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from exc
    if not rows:
        raise IngestError(f"{path}: empty file (raw file {name!r})")
    header = [h.strip() for h in rows[0]]
    if expected_columns:
        found = set(header) & set(expected_columns)
        if not found:
            raise IngestError(
                f"{path}: none of the expected columns {expected_columns[:4]}… found in header "
                f"{header[:4]!r}: is the separator {sep!r} right for this file?"
            )
    records: list[list[str]] = []
    line_numbers: list[int] = []
    # Line number of each record = physical line where it starts (quoted newlines span lines).
    reader2 = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    next(reader2)
    start = reader2.line_num + 1
    for rec in reader2:
        if not any(cell.strip() for cell in rec):
            start = reader2.line_num + 1
            continue
        if len(rec) != len(header):
            raise IngestError(
                f"{path}: line {start}: {len(rec)} fields where the header has {len(header)} "
                f"(separator {sep!r}; unquoted separator or newline in a cell?)"
            )
        records.append(rec)
        line_numbers.append(start)
        start = reader2.line_num + 1
    frame = pd.DataFrame(records, columns=header, dtype="string")
    return RawTable(name=name, path=path, frame=frame, encoding=used, row_numbers=tuple(line_numbers))


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
            expected_columns=expected_columns,
        )
    if fmt == "xlsx":
        path = Path(spec["path"])
        if not path.is_file():
            raise IngestError(f"{path}: file not found (raw file {name!r})")
        try:
            frame = pd.read_excel(path, sheet_name=spec.get("sheet", 0), dtype=str).astype("string")
        except Exception as exc:
            raise IngestError(f"{path}: cannot read as XLSX: {exc}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        return RawTable(name=name, path=path, frame=frame, row_numbers=tuple(range(2, len(frame) + 2)))
    raise IngestError(f"raw file {name!r}: unknown format {fmt!r}")
