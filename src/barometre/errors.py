"""Exceptions of the pipeline. Each message names the file, column and row at fault."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class BarometreError(Exception):
    """Base class of every error the pipeline raises on bad input or configuration."""


class ConfigError(BarometreError):
    """The configuration file is invalid or points to missing files."""


class CodebookError(BarometreError):
    """The codebook is invalid or inconsistent."""


class IngestError(BarometreError):
    """A raw export cannot be read (wrong format, encoding, truncated file…)."""


class ValidationError(BarometreError):
    """Raw or processed data fails validation; ``problems`` lists every failure at once."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ConformityError(BarometreError):
    """Computed figures fall outside the bounds of the published edition."""


def schema_problems(
    data: Any,
    schema: dict,
    *,
    entries: str | None = None,
    label: Callable[[dict, int], str] | None = None,
    message: Callable[[Any], str] | None = None,
) -> list[str]:
    """Every way ``data`` breaks the JSON ``schema``, one ``"<where>: <what>"`` line each, by place.

    The one formatter of schema errors (configuration, codebooks, registries).

    Parameters
    ----------
    data, schema
        The parsed document and its JSON schema (draft 2020-12).
    entries, label
        An error inside ``data[entries][i]`` is placed by ``label(data[entries][i], i)``
        (e.g. « figure F05 ») instead of its JSON path.
    message
        Turns a :class:`jsonschema.ValidationError` into text (default: its own message).
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path]):
        where = list(err.absolute_path)
        if entries is not None and label is not None and len(where) >= 2 and where[0] == entries:
            place = label(data[entries][where[1]], where[1])
        else:
            place = "/".join(map(str, where)) or "(top level)"
        lines.append(f"{place}: {message(err) if message else err.message}")
    return lines
