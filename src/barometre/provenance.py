"""Provenance of a build: checksums of every input, package versions, git state, build date."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from barometre import __version__


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Version of every distribution installed in the running environment, by normalised name.

    Read from :func:`importlib.metadata.distributions` (what pip installed, the transitive
    dependencies included), so the record names what ran, not a list kept by hand. The
    project itself (an editable install) is left out: its version is ``pipeline_version``.
    """
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalisation
        if key != "barometre":
            out[key] = dist.version
    return dict(sorted(out.items()))


def _git(root: str | Path, *args: str) -> str | None:
    """Output of ``git args`` in the repository whose top level is ``root``; ``None`` otherwise.

    A project copied into a folder of another repository is not that repository:
    its commit and dates are not the project's.
    """
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        if Path(top).resolve() != Path(root).resolve():
            return None
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def git_state(root: str | Path = ".") -> dict[str, object]:
    """Commit hash and whether the working tree differs from it (``None`` outside git)."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit is not None else None
    if commit is None or status is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def run_source_date_epoch(root: str | Path, fallback: int) -> int:
    """The ``SOURCE_DATE_EPOCH`` of one pipeline run, as the Makefile chooses it.

    The environment's value when set; else the date of the last commit of the
    project at ``root`` (the reproducible-builds convention: same commit, same
    bytes); else ``fallback`` (``report.source_date_epoch`` of the configuration).
    The Snakefile sets it once for the whole run, so that a run started with
    ``snakemake`` directly dates its PDF, workbook, report and provenance alike.

    Raises
    ------
    ValueError
        When the environment's ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.
    """
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise ValueError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {env!r}") from None
    committed = _git(root, "log", "-1", "--format=%ct")
    if committed and committed.strip().isdigit():
        return int(committed.strip())
    return int(fallback)


def build_date() -> str:
    """ISO build date: from ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return when.replace(microsecond=0).isoformat()


def project_path(path: str | Path, root: str | Path = ".") -> str:
    """``path`` relative to the project ``root``, with ``/`` separators (never an absolute path).

    Two builds of the same project in two folders must record the same paths.
    A file outside the project is recorded relative to the root too (``../…``).
    """
    root = Path(root).resolve()
    full = Path(path) if Path(path).is_absolute() else root / path
    return Path(os.path.relpath(full.resolve(), root)).as_posix()


def build_provenance(
    edition: str, inputs: dict[str, str | list[str]], synthetic: bool, root: str | Path = "."
) -> dict:
    """The provenance record of one edition's build.

    Parameters
    ----------
    edition
        Edition built.
    inputs
        Named input files (raw exports, codebook, config, registry, published reference).
    synthetic
        Whether the raw data is the documented reconstruction.
    root
        Project root: recorded paths are relative to it, and git is asked there.
    """
    files = {}
    for name, paths in sorted(inputs.items()):
        for p in ([paths] if isinstance(paths, (str, Path)) else list(paths)):
            files[project_path(p, root)] = {"role": name, "sha256": sha256_file(p), "bytes": Path(p).stat().st_size}
    return {
        "edition": edition,
        "pipeline_version": __version__,
        "synthetic_data": synthetic,
        "build_date": build_date(),
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
        "git": git_state(root),
        "python": ".".join(map(str, sys.version_info[:3])),
        "packages": package_versions(),
        "inputs": dict(sorted(files.items())),
    }


def write_json(record: dict, path: str | Path) -> None:
    """Write a record as sorted, indented JSON (stable bytes): provenance.json, datapackage.json."""
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


write_provenance = write_json
