"""Exceptions of the pipeline. Each message names the file, column and row at fault."""
from __future__ import annotations


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
