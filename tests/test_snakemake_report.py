"""`snakemake --report report.zip` is a browsable archive of each edition's outputs.

Builds the archive on the suite's pipeline run and reads back what its page lists: the
workflow description, and under « Édition 2017 » the report, the workbook, the figures, the
conformity file and the data package, each file stored in the archive.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from conftest import EDITION, run_snakemake

#: What a reader opens for one edition, by subcategory of the Snakemake report.
EXPECTED = {
    "Publication": {f"results/{EDITION}/rapport_{EDITION}.html", f"results/{EDITION}/rapport_{EDITION}.pdf"},
    "Note technique": {
        f"results/{EDITION}/note_technique_{EDITION}.html",
        f"results/{EDITION}/note_technique_{EDITION}.pdf",
    },
    "Tableaux": {f"results/{EDITION}/tableaux.xlsx"},
    "Chiffres et conformité": {f"results/{EDITION}/figures.csv", f"results/{EDITION}/conformity.txt"},
    "Données ouvertes": {f"results/{EDITION}/datapackage.json"},
}


def _variable(page: str, name: str) -> dict:
    """A JSON object the report page assigns to ``var <name>``."""
    match = re.search(rf"var {name} = (?=\{{)", page)
    assert match, f"report.html has no `var {name}`"
    return json.JSONDecoder().raw_decode(page[match.end():])[0]


@pytest.fixture(scope="module")
def report_archive(built_project: Path) -> tuple[zipfile.ZipFile, str]:
    res = run_snakemake(built_project, "--report", "report.zip", timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    archive = zipfile.ZipFile(built_project / "report.zip")
    page_name = next(n for n in archive.namelist() if n.endswith("/report.html"))
    return archive, archive.read(page_name).decode("utf-8")


@pytest.mark.e2e
def test_report_lists_the_edition_outputs_by_category(report_archive):
    _, page = report_archive
    categories = _variable(page, "categories")
    edition = categories.get(f"Édition {EDITION}")
    assert edition, f"no « Édition {EDITION} » category: {sorted(categories)}"
    assert {k: set(v) for k, v in edition.items()} == EXPECTED


@pytest.mark.e2e
def test_every_listed_output_is_stored_in_the_archive_with_french_labels(report_archive):
    archive, page = report_archive
    results = _variable(page, "results")
    stored = {Path(n).name: archive.getinfo(n).file_size for n in archive.namelist() if "/data/raw/" in n}
    for path in set().union(*EXPECTED.values()):
        assert path in results, f"{path} not in the report's results"
        assert results[path]["labels"]["Fichier"] == Path(path).name
        assert stored.get(Path(path).name), f"{path} not stored in report.zip"


@pytest.mark.e2e
def test_report_carries_the_workflow_description(report_archive):
    _, page = report_archive
    # docutils renders docs/workflow.rst into the page (JSON-escaped there)
    assert "Licence Ouverte / Etalab 2.0" in page
    assert "reconstitution synth" in page
