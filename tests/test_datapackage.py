"""The Frictionless data package of an edition: built from the CSV headers, valid for `frictionless`.

Unit tests on tiny hand-written CSVs (schema derivation, undocumented columns, primary keys
that the validator enforces), then the end-to-end package of the 2017 edition: every published
CSV listed, every column documented in French, valid for the ``frictionless`` library.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from barometre import __version__
from barometre.datapackage import (
    FIELDS,
    OUTPUT_LICENSE,
    build_datapackage,
    table_schema,
    undocumented_fields,
    write_datapackage,
)

frictionless = pytest.importorskip("frictionless")

CELLS_HEADER = ("edition,question_id,harmonised,question_type,level,dimension,dimension_value,answer_key,"
                "answer_label,statistic,count,base,effective_base,value,ci_low,ci_high,small_base,suppressed,"
                "base_suppressed")
FIGURES_HEADER = ("edition,synthetic,id,component,definition,reading,unit,measure,question,numerator_rule,base_rule,"
                  "numerator,denominator,value,ci_low,ci_high,published_quote,published_value,bound_low,bound_high,"
                  "bounds_origin,status,published_key")


def _edition(tmp_path: Path, cells_rows: list[str], extra_column: str | None = None) -> Path:
    """A tiny results/<e>/ folder: tables/cells.csv, tests.csv, one question table, figures.csv."""
    root = tmp_path / "results" / "2017"
    (root / "tables").mkdir(parents=True)
    header = CELLS_HEADER + (f",{extra_column}" if extra_column else "")
    cells = "\n".join([header, *cells_rows]) + "\n"
    (root / "tables" / "cells.csv").write_text(cells, encoding="utf-8")
    (root / "tables" / "Q01_collectivity_type.csv").write_text(cells, encoding="utf-8")
    (root / "tables" / "tests.csv").write_text(
        "question_id,dimension,answer_key,test,statistic,df,pvalue,n,min_expected\n"
        "Q01,role,all,khi2 de Pearson,1.5,2.0,0.47,121,5.2\n", encoding="utf-8")
    (root / "figures.csv").write_text(
        FIGURES_HEADER + "\n"
        "2017,True,R01,,Nombre de collectivités,,respondents,distinct,collectivity_id,valeurs distinctes,,98.0,,98.0,,,"
        "« 98 collectivités »,98,98.0,98.0,publié,pass,R01\n"
        "2017,True,F02,commune,Part des communes,,respondents,share,collectivity_type,commune,répondants,79.0,121.0,"
        "65.3,56.5,73.2,« plus de la moitié »,plus de la moitié,50.0,inf,lecture du projet,pass,F02.commune\n",
        encoding="utf-8")
    return root


ROWS = [
    "2017,Q01,collectivity_type,single,respondent,ensemble,Ensemble,commune,Commune,share,79.0,121.0,121.0,65.3,56.5,73.2,False,False,False",
    "2017,Q01,collectivity_type,single,respondent,ensemble,Ensemble,departement,Département,share,,121.0,121.0,,,,False,True,False",
    "2017,Q01,collectivity_type,single,respondent,role,Élu·e,commune,Commune,share,s,s,31.0,s,s,s,False,True,True",
]


def _package(root: Path) -> dict:
    package = build_datapackage("2017", root / "tables", root / "figures.csv", root, synthetic=True)
    write_datapackage(package, root / "datapackage.json")
    return package


def _report(root: Path):
    return frictionless.validate(str(root / "datapackage.json"))


def test_schema_follows_the_header_and_the_dictionary(tmp_path):
    root = _edition(tmp_path, ROWS)
    schema = table_schema(root / "tables" / "cells.csv", "cells")
    assert [f["name"] for f in schema["fields"]] == CELLS_HEADER.split(",")
    by_name = {f["name"]: f for f in schema["fields"]}
    assert by_name["value"]["type"] == "number" and by_name["suppressed"]["type"] == "boolean"
    assert by_name["base"]["title"] == "Base" and "secret statistique" in by_name["base"]["description"]
    # French typography: « s » with narrow no-break spaces, a no-break space before the colon
    assert "«\u202fs\u202f»\u202f:" in by_name["count"]["description"]
    assert schema["missingValues"] == ["", "s"]
    assert schema["primaryKey"] == ["question_id", "dimension", "dimension_value", "answer_key", "statistic"]


def test_an_undocumented_column_is_described_by_type_and_named(tmp_path):
    rows = [r + ",0.05" for r in ROWS]
    root = _edition(tmp_path, rows, extra_column="p_not_documented")
    package = _package(root)
    field = package["resources"][0]["schema"]["fields"][-1]
    assert field == {"name": "p_not_documented", "type": "number"}
    assert undocumented_fields(package) == {"tables/cells.csv": ["p_not_documented"],
                                            "tables/Q01_collectivity_type.csv": ["p_not_documented"]}


def test_tiny_package_is_valid_and_carries_licence_version_and_synthetic_flag(tmp_path):
    root = _edition(tmp_path, ROWS)
    package = _package(root)
    report = _report(root)
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert [r["path"] for r in package["resources"]] == [
        "tables/cells.csv", "tables/tests.csv", "tables/Q01_collectivity_type.csv", "figures.csv"]
    assert package["licenses"] == [OUTPUT_LICENSE] and package["version"] == __version__
    assert package["synthetic"] is True and "synthétique" in package["description"]
    assert not undocumented_fields(package)


def test_the_validator_enforces_the_primary_key_and_the_types(tmp_path):
    root = _edition(tmp_path, [*ROWS, ROWS[0]])
    _package(root)
    errors = {e[0] for e in _report(root).flatten(["type"])}
    assert "primary-key" in errors
    bad = _edition(tmp_path / "bad", [ROWS[0].replace("65.3", "soixante-cinq")])
    _package(bad)
    assert "type-error" in {e[0] for e in _report(bad).flatten(["type"])}


def test_a_changed_file_fails_its_hash(tmp_path):
    root = _edition(tmp_path, ROWS)
    _package(root)
    with (root / "tables" / "tests.csv").open("a", encoding="utf-8") as fh:
        fh.write("Q02,role,all,khi2 de Pearson,1.0,1.0,0.3,100,4.0\n")
    assert not _report(root).valid


def test_descriptions_are_french_sentences():
    for name, doc in FIELDS.items():
        assert doc.title and doc.description.endswith("."), name
        assert "_" not in doc.title, name


# --------------------------------------------------------------------------- end to end
@pytest.mark.e2e
def test_edition_package_lists_every_published_csv_documented_and_valid(built_project):
    """`frictionless validate results/2017/datapackage.json` passes; no published column is undocumented."""
    root = built_project / "results" / "2017"
    package = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
    # disclosure_audit.csv is the secrecy audit's control file: its rule column tells which masked cells
    # hold fewer than min_cell respondents, so it is kept for the researchers, never in the open data.
    published = {p.relative_to(root).as_posix() for p in root.rglob("*.csv")} - {"disclosure_audit.csv"}
    assert {r["path"] for r in package["resources"]} == published
    assert not undocumented_fields(package), (
        "published columns without a description: add them to barometre.datapackage.FIELDS: "
        f"{undocumented_fields(package)}")
    assert package["synthetic"] is True and package["version"] == __version__
    report = frictionless.validate(str(root / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:20]


def test_calibration_margins_are_their_own_documented_resource(tmp_path):
    """A calibrated edition publishes tables/calibration.csv: described as margins, not as a question table."""
    root = _edition(tmp_path, ROWS)
    (root / "tables" / "calibration.csv").write_text(
        "variable,category,target,weighted,respondents\n"
        "collectivity_type,Commune,70.0,70.0,79\ncollectivity_type,Département,51.0,51.0,42\n", encoding="utf-8")
    package = _package(root)
    margins = [r for r in package["resources"] if r["path"] == "tables/calibration.csv"]
    assert len(margins) == 1 and margins[0]["title"] == "Marges de calage"
    assert "primaryKey" not in margins[0]["schema"]
    assert not undocumented_fields(package)
    report = _report(root)
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
