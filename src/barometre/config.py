"""Configuration: loading, schema validation and checks that run before any job.

``rules/common.smk`` calls :func:`check_config` right after Snakemake's own
schema validation, so a misspelt key, a wrong type, a missing file or an empty
edition folder stops the run before anything is computed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from barometre.errors import ConfigError, schema_problems

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "config.schema.json"


def load_config(path: str | Path = ROOT / "config.yaml") -> dict:
    """Read ``config.yaml``, validate it, and return it as a dict.

    Raises
    ------
    ConfigError
        Naming the offending key, value or file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    validate_schema(config, path)
    return config


def validate_schema(config: dict, path: str | Path = "config.yaml") -> None:
    """Validate ``config`` against ``schemas/config.schema.json``, listing every error."""
    lines = schema_problems(config, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")), message=_message)
    if lines:
        raise ConfigError(f"{path}: invalid configuration:\n  " + "\n  ".join(lines))


def _message(err) -> str:
    """A schema error as a person reads it; an unknown key comes with the nearest allowed one."""
    import difflib

    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        parts = []
        for key in sorted(set(err.instance) - set(allowed), key=str):
            near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else (f" (allowed: {', '.join(allowed)})" if allowed else "")
            parts.append(f"unknown key {key!r}{hint}")
        if parts:
            return "; ".join(parts)
    return err.message


def check_files(config: dict, root: str | Path = ".") -> None:
    """Check that every file the configuration names exists and every edition folder holds data.

    Raises
    ------
    ConfigError
        Listing each missing file with the config key that names it.
    """
    root = Path(root)
    problems: list[str] = []
    for edition, spec in config["editions"].items():
        for key in ("codebook", "registry", "published"):
            if key in spec and not (root / spec[key]).is_file():
                problems.append(f"editions/{edition}/{key}: file not found: {spec[key]}")
        folders = set()
        for name, raw in spec["raw"].items():
            p = root / raw["path"]
            folders.add(p.parent)
            if not p.is_file():
                problems.append(f"editions/{edition}/raw/{name}/path: file not found: {raw['path']}")
            elif p.stat().st_size == 0:
                problems.append(f"editions/{edition}/raw/{name}/path: empty file: {raw['path']}")
        for folder in sorted(folders):
            if not folder.is_dir():
                continue
            if not any(f.is_file() and not f.name.startswith(".") and f.suffix != ".md" for f in folder.iterdir()):
                shown = folder.relative_to(root) if folder.is_relative_to(root) else folder
                problems.append(f"editions/{edition}: raw folder {shown.as_posix()} holds no data file "
                                "(only documentation or hidden files)")
    trends = config.get("trends")
    if trends:
        if not (root / trends["registry"]).is_file():
            problems.append(f"trends/registry: file not found: {trends['registry']}")
        for edition in trends["editions"]:
            if str(edition) not in config["editions"]:
                problems.append(f"trends/editions: edition {edition} is not configured under editions")
    if problems:
        raise ConfigError("configuration points to missing data:\n  " + "\n  ".join(problems))


def check_config(config: dict, root: str | Path = ".") -> None:
    """Schema validation plus file checks (what Snakemake runs at start-up)."""
    validate_schema(config)
    check_files(config, root)


def edition_config(config: dict, edition: str) -> dict[str, Any]:
    """The configuration block of one edition, with a clear error when it is not configured."""
    try:
        return config["editions"][str(edition)]
    except KeyError:
        known = ", ".join(sorted(config["editions"]))
        raise ConfigError(f"edition {edition!r} is not in config.yaml (configured: {known})") from None


def resolve_salt(config: dict, synthetic: bool, edition: str) -> tuple[bytes, str]:
    """Find the pseudonymisation salt: environment variable, then salt file.

    For a synthetic edition with neither, a fixed public salt is used (the data
    holds no real person); for real data a missing salt is an error.

    Returns
    -------
    salt, origin
        The salt bytes and where it came from (never the salt itself), for the log.
    """
    spec = config["pseudonymisation"]
    env = os.environ.get(spec["salt_env"])
    if env:
        return env.encode("utf-8"), f"variable d'environnement {spec['salt_env']}"
    path = Path(spec["salt_file"])
    if path.is_file():
        return path.read_bytes().strip(), f"fichier {spec['salt_file']}"
    if synthetic:
        return f"barometre-synthetic-{edition}".encode(), "sel public fixe (données synthétiques)"
    raise ConfigError(
        f"no pseudonymisation salt for edition {edition}: set {spec['salt_env']} or write a secret to "
        f"{spec['salt_file']} (never commit it)"
    )
