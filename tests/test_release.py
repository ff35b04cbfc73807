"""Licence, citation, changelog and version: present, consistent, one version everywhere.

CITATION.cff was also checked with `cffconvert --validate` (schema 1.2.0) when written; this
test keeps what that schema requires and what the project decided (authors are entities,
the original editions' authors are credited as authors of the original).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from barometre import __version__
from barometre.datapackage import OUTPUT_LICENSE

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_semantic():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__


def test_licence_is_the_mit_text():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_citation_is_cff_1_2_0_with_the_version_and_the_original_authors():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(cff)
    assert cff["version"] == __version__
    assert cff["license"] == "MIT"
    # the project team as an entity, never a person's name
    assert all(set(a) == {"name"} for a in cff["authors"]), cff["authors"]
    originals = [r for r in cff["references"] if "2017" in r["title"]]
    assert originals and {a["name"] for a in originals[0]["authors"]} == {"Décider ensemble", "Cap Collectif"}


def test_changelog_follows_keep_a_changelog_and_knows_the_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", text, re.M)
    assert __version__ in versions, f"CHANGELOG.md has no « ## [{__version__}] - date » section"


def test_readme_states_the_licences_and_the_release_procedure():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "MIT" in text and "Licence Ouverte / Etalab 2.0" in text
    assert "git tag -a v" in text
    assert "3.11, 3.12 and 3.13" in text
    assert OUTPUT_LICENSE["name"] == "etalab-2.0"


def test_provenance_records_the_version_and_every_installed_distribution(tmp_path):
    from importlib import metadata

    from barometre.provenance import build_provenance

    raw = tmp_path / "raw.csv"
    raw.write_text("a\n1\n", encoding="utf-8")
    record = build_provenance("2017", {"survey": str(raw)}, synthetic=True, root=tmp_path)
    assert record["pipeline_version"] == __version__
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in metadata.distributions()}
    installed.pop("barometre", None)
    assert record["packages"] == installed
    # nothing typed by hand: a dependency of a dependency is there too
    assert {"pandas", "weasyprint", "frictionless", "packaging"} <= set(record["packages"])
