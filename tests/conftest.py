"""Shared fixtures: a full pipeline run on a private copy of the project (built once per session)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_ITEMS = (
    "Snakefile",
    "rules",
    "schemas",
    "scripts",
    "src",
    "codebooks",
    "registry",
    "references",
    "docs/workflow.rst",
    "report_templates",
    "editorial",
    "config.yaml",
    "environment.yml",
    "data/raw",
    "profiles",
)
EDITION = "2017"
#: Every date the pipeline writes comes from SOURCE_DATE_EPOCH. The Makefile exports the date of
#: the last commit; the tests pin their own (the end of the 2017 fieldwork) so that the bytes they
#: compare never depend on when the checkout was committed.
TEST_EPOCH = "1507248000"


def pytest_configure(config):
    os.environ["SOURCE_DATE_EPOCH"] = TEST_EPOCH


def copy_project(dst: Path, src_root: Path = ROOT) -> Path:
    """Copy what the pipeline needs (its inputs: no outputs, no caches) from ``src_root`` into ``dst``."""
    for item in PROJECT_ITEMS:
        src = src_root / item
        if src.is_dir():
            shutil.copytree(src, dst / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake"))
        elif src.exists():
            (dst / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / item)
    return dst


def snakemake_cmd() -> list[str]:
    return [str(Path(sys.executable).with_name("snakemake"))]


def run_snakemake(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH=TEST_EPOCH)
    return subprocess.run([*snakemake_cmd(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def sha256_tree(root: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and (suffixes is None or p.suffix in suffixes):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Path:
    """A copy of the project on which ``snakemake --cores 2`` has run to completion."""
    proj = copy_project(tmp_path_factory.mktemp("run1") / "proj")
    res = run_snakemake(proj, "--cores", "2")
    if res.returncode != 0:
        pytest.fail(f"snakemake failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return proj
