"""A new edition by configuration only: raw data + codebook + registry + published reference + config entry.

The made-up edition « 2099 » (``tests/fixtures/edition_toy/``) is added to a private
copy of the project — its raw files are written here, the codebook, registry and
published reference are copied from the fixtures, ``config.yaml`` gets one more
entry — and Snakemake builds its processed tables, tables, figures, conformity and
provenance with the project's code as it is. The toy edition differs from 2017 on
purpose: no ``role`` question (a configured tabulation dimension), two tool
blocks, a BP inventory without territory kind and in UTF-8, a mean and a median
per inhabitant.

The report is not built for it (``report: false``, which keeps this test short): an
edition with a report gets the generic narrative (tests/test_reports_editions.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, copy_project, run_snakemake

pytestmark = pytest.mark.e2e

FIXTURES = ROOT / "tests" / "fixtures" / "edition_toy"
EDITION = "2099"
TARGETS = [f"results/{EDITION}/conformity.txt", f"results/{EDITION}/tableaux.xlsx",
           f"results/{EDITION}/provenance.json", f"data/processed/{EDITION}/cleaning_report.md"]


def write_toy_raw(folder: Path) -> dict[str, Path]:
    """The toy raw exports: a 14-row .sav (12 kept, 1 test, 1 unfinished) and a 4-row BP inventory."""
    import pyreadstat

    folder.mkdir(parents=True, exist_ok=True)
    n = 12
    nan = float("nan")
    tools = {0: (1, 1), 1: (1, 2), 2: (1, 2), 3: (1, 2)}  # 8 tools, 5 « concertation »
    rows = []
    for i in range(n):
        o1, o2 = tools.get(i, (nan, nan))
        if i < 7:
            avis = (1, i % 2, 0)          # informer
        elif i < 9:
            avis = (0, 1, 0)              # consulter only
        elif i == 9:
            avis = (0, 0, 1)              # « ne se prononce pas » only
        else:
            avis = (nan, nan, nan)        # left blank
        rows.append({
            "id": i + 1, "submitdate": pd.Timestamp("2099-03-01 10:00") + pd.Timedelta(hours=i),
            "COLL_NOM": f"Collectivité fictive {i + 1:02d}", "IDENT_EMAIL": f"r{i + 1}@example.org",
            "TYPE": 1.0 if i < 9 else 2.0, "NB": 2.0 if i in tools else 0.0,
            "O1_TYPE": float(o1), "O2_TYPE": float(o2),
            "AVIS_SQ001": float(avis[0]), "AVIS_SQ002": float(avis[1]), "AVIS_SQ099": float(avis[2]),
            "POP": 1000.0, "BUDGET": {0: 1000.0, 1: 1500.0, 2: 1500.0, 3: 4000.0}.get(i, nan),
        })
    rows.append(dict(rows[0], id=13, COLL_NOM="TEST", IDENT_EMAIL="essai@example.org"))
    rows.append(dict(rows[5], id=14, COLL_NOM="Collectivité fictive 13", IDENT_EMAIL="r13@example.org",
                     submitdate=pd.NaT))
    frame = pd.DataFrame(rows)
    frame["submitdate"] = frame["submitdate"].astype("datetime64[us]")
    sav = folder / "toy_2099.sav"
    pyreadstat.write_sav(frame, str(sav), variable_value_labels={"TYPE": {1: "Commune", 2: "Autre"}})
    csv = folder / "inventaire_2099.csv"
    csv.write_text("Numéro;Vote en ligne\n1;oui\n2;non\n3;Oui \n4; non\n", encoding="utf-8")
    return {"survey": sav, "inventory": csv}


def add_toy_edition(proj: Path) -> None:
    """Add edition 2099 to the project copy: files in place and one entry in config.yaml."""
    write_toy_raw(proj / "data" / "raw" / EDITION)
    shutil.copy(FIXTURES / "codebook.yaml", proj / "codebooks" / f"{EDITION}.yaml")
    shutil.copy(FIXTURES / "registry.yaml", proj / "registry" / f"figures_{EDITION}.yaml")
    shutil.copy(FIXTURES / "published.yaml", proj / "references" / f"published_{EDITION}.yaml")
    config_path = proj / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["editions"][EDITION] = {
        "title": "Édition fictive 2099 (jeu d'essai)",
        "synthetic": True,
        "report": False,
        "fieldwork": {"start": "2099-03-01", "end": "2099-03-31"},
        "codebook": f"codebooks/{EDITION}.yaml",
        "registry": f"registry/figures_{EDITION}.yaml",
        "published": f"references/published_{EDITION}.yaml",
        "raw": {
            "survey": {"path": f"data/raw/{EDITION}/toy_2099.sav", "format": "sav"},
            "inventory": {"path": f"data/raw/{EDITION}/inventaire_2099.csv", "format": "csv",
                          "encoding": "utf-8", "sep": ";", "decimal": ","},
        },
        "exclusions": [
            {"id": "test", "reason": "Réponse de test", "source": "survey", "rule": "match",
             "columns": ["COLL_NOM"], "pattern": "(?i)^\\s*test\\b"},
            {"id": "incomplete", "reason": "Questionnaire non terminé", "source": "survey", "rule": "missing",
             "columns": ["submitdate"]},
        ],
    }
    # The toy edition printed its number of tools: published through an explicit exemption, as 2017 does.
    config["disclosure"].setdefault("editions", {})[EDITION] = {
        "exemptions": [{"figure": "R02", "reason": "Nombre d'outils imprimé par l'édition fictive elle-même."},
                       # on the answered base (« ne se prononce pas » included) the share would give the NSP
                       # count back next to the tables' base: published only because the edition printed it
                       {"figure": "F01", "reason": "Part imprimée par l'édition fictive elle-même."}]}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def toy_project(tmp_path_factory) -> Path:
    proj = copy_project(tmp_path_factory.mktemp("toy") / "proj")
    code_before = {p.relative_to(proj): p.read_bytes() for d in ("src", "rules", "scripts", "schemas")
                   for p in (proj / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    add_toy_edition(proj)
    res = run_snakemake(proj, "--cores", "2", *TARGETS)
    if res.returncode != 0:
        pytest.fail(f"snakemake failed for the toy edition:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    code_after = {p.relative_to(proj): p.read_bytes() for d in ("src", "rules", "scripts", "schemas")
                  for p in (proj / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert code_after == code_before, "adding an edition must not need any code change"
    return proj


def test_toy_figures_pass_their_published_bounds(toy_project):
    figures = pd.read_csv(toy_project / f"results/{EDITION}/figures.csv", keep_default_na=False, na_values=[""])
    assert set(figures["status"]) == {"pass"}, figures[["id", "value", "status"]]
    value = dict(zip(figures["id"], figures["value"], strict=True))
    assert value["R01"] == 12 and value["R02"] == 8
    assert value["R03"] == pytest.approx(75) and value["F01"] == pytest.approx(70)
    assert value["T01"] == pytest.approx(62.5) and value["B01"] == pytest.approx(50)
    assert value["M01"] == pytest.approx(2) and value["M02"] == pytest.approx(1.5)
    assert (figures["edition"].astype(str) == EDITION).all() and figures["synthetic"].all()
    text = (toy_project / f"results/{EDITION}/conformity.txt").read_text(encoding="utf-8")
    assert text.startswith(f"Conformité de l'édition {EDITION} : 8 chiffres")


def test_toy_cleaning_and_tables(toy_project):
    report = (toy_project / f"data/processed/{EDITION}/cleaning_report.md").read_text(encoding="utf-8")
    assert f"data/raw/{EDITION}/README.md" in report and "2017" not in report
    assert "| survey | 14 | 2 | 12 |" in report and "| inventory | 4 | 0 | 4 |" in report
    tools = pd.read_parquet(toy_project / f"data/processed/{EDITION}/tools.parquet")
    assert len(tools) == 8
    cells = pd.read_csv(toy_project / f"results/{EDITION}/tables/cells.csv")
    assert set(cells["dimension"]) <= {"ensemble", "collectivity_type", "tool_type"}  # no role, no BP kind
    log = (toy_project / f"logs/{EDITION}/tabulate.log").read_text(encoding="utf-8")
    assert "role" in log and "not crossed" in log


def test_all_target_covers_the_toy_edition_without_report(toy_project):
    res = run_snakemake(toy_project, "-n", "--quiet", "all")
    assert res.returncode == 0, res.stderr[-4000:]
    dry = run_snakemake(toy_project, "-n", "--summary")
    assert dry.returncode == 0, dry.stderr[-4000:]
    listed = dry.stdout
    assert f"results/{EDITION}/figures.csv" in listed
    assert f"rapport_{EDITION}" not in listed


# --------------------------------------------------------------------------- an edition with less
NEW_TYPE = "Pôle d'équilibre territorial"
BARE = "2098"


def add_bare_edition(proj: Path) -> None:
    """Edition 2098: the toy export with a collectivity type no earlier edition has (code 3), and
    only what an analyst has on day one — raw files, a codebook, a config entry. No registry, no
    published figures, no ``parts:`` titles; its report is built."""
    import pyreadstat

    files = write_toy_raw(proj / "data" / "raw" / BARE)
    frame, _ = pyreadstat.read_sav(str(files["survey"]), user_missing=True)
    frame.loc[[1, 3, 10], "TYPE"] = 3.0  # three respondents of the new type (one with tools)
    sav = proj / "data" / "raw" / BARE / f"toy_{BARE}.sav"
    pyreadstat.write_sav(frame, str(sav), variable_value_labels={"TYPE": {1: "Commune", 2: "Autre", 3: NEW_TYPE}})
    files["survey"].unlink()
    book = yaml.safe_load((FIXTURES / "codebook.yaml").read_text(encoding="utf-8"))
    book["edition"] = int(BARE)
    book["title"] = "Édition fictive 2098 (jeu d'essai)"
    types = book["questions"][0]
    assert types["harmonised"] == "collectivity_type"
    types["codes"].insert(1, {"code": 3, "key": "pole_equilibre", "label": NEW_TYPE})
    (proj / "codebooks" / f"{BARE}.yaml").write_text(yaml.safe_dump(book, allow_unicode=True, sort_keys=False),
                                                     encoding="utf-8")
    config_path = proj / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["editions"][BARE] = {
        "title": "Édition fictive 2098 (jeu d'essai)",
        "synthetic": True,
        "codebook": f"codebooks/{BARE}.yaml",
        "raw": {
            "survey": {"path": f"data/raw/{BARE}/toy_{BARE}.sav", "format": "sav"},
            "inventory": {"path": f"data/raw/{BARE}/inventaire_2099.csv", "format": "csv",
                          "encoding": "utf-8", "sep": ";", "decimal": ","},
        },
        "exclusions": [{"id": "incomplete", "reason": "Questionnaire non terminé", "source": "survey",
                        "rule": "missing", "columns": ["submitdate"]}],
    }
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (proj / "data" / "raw" / BARE / "README.md").write_text("Jeu d'essai fictif.\n", encoding="utf-8")


@pytest.fixture(scope="module")
def bare_project(tmp_path_factory) -> Path:
    proj = copy_project(tmp_path_factory.mktemp("bare") / "proj")
    add_bare_edition(proj)
    res = run_snakemake(
        proj,
        "--cores",
        "2",
        f"results/{BARE}/rapport_{BARE}.html",
        f"results/{BARE}/rapport_{BARE}.pdf",
        f"results/{BARE}/conformity.txt",
        f"results/{BARE}/provenance.json",
    )
    if res.returncode != 0:
        pytest.fail(f"snakemake failed for the edition without registry:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return proj


def test_edition_without_registry_nor_published_builds_and_shows_its_new_type(bare_project):
    """By configuration only: no registry, no published figures, a new collectivity type. The report is
    built; every chart of the collectivity types and every table crossed by them shows the new type."""
    res = bare_project / "results" / BARE
    figures = pd.read_csv(res / "figures.csv")
    assert figures.empty  # nothing to compute, nothing invented
    manifest = yaml.safe_load((res / "charts" / "charts.json").read_text(encoding="utf-8"))
    type_charts = [c for c in manifest["charts"] if c["question_id"] == "A1" or c["id"] == "E01"]
    assert type_charts, [c["id"] for c in manifest["charts"]]
    for c in type_charts:
        svg = (res / "charts" / c["file"]).read_text(encoding="utf-8")
        assert NEW_TYPE in c["alt"] and "Pôle d" in svg, c["id"]
        assert "non représentés" not in c["caption"]
    cells = pd.read_csv(res / "tables" / "cells.csv")
    crossed = cells[cells["dimension"] == "collectivity_type"]
    columns = set(crossed["dimension_value"].astype(str))
    # As a breakdown column the new type is either its own column or, being rare, one of the categories
    # the publication layer merges before tabulation — listed by name in regroupements.csv.
    merges = pd.read_csv(res / "tables" / "regroupements.csv")
    merged = merges[merges["dimension"] == "collectivity_type"]
    assert NEW_TYPE in columns or any(NEW_TYPE in str(members).split(" | ") and label in columns
                                      for members, label in zip(merged["categories"], merged["label"], strict=True))
    html = (res / f"rapport_{BARE}.html").read_text(encoding="utf-8")
    assert "Pôle d’équilibre territorial" in html or "Pôle d&#39;équilibre territorial" in html or NEW_TYPE in html
    assert (res / f"rapport_{BARE}.pdf").stat().st_size > 0
    provenance = yaml.safe_load((res / "provenance.json").read_text(encoding="utf-8"))
    assert not any("registry" in k or "published" in k for k in provenance["inputs"])


def test_collectivity_chart_takes_its_types_from_the_codebook(tmp_path):
    """Chart E01 draws one bar per code of the edition's codebook that a count figure counts (not 2017's
    five types): a new type with its figure gets its bar, and nothing is left « non représenté »."""
    from barometre.charts import chart_specs, draw_chart
    from barometre.codebook import load_codebook

    book = yaml.safe_load((FIXTURES / "codebook.yaml").read_text(encoding="utf-8"))
    book["questions"][0]["codes"].insert(1, {"code": 3, "key": "pole_equilibre", "label": NEW_TYPE})
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(book, allow_unicode=True, sort_keys=False), encoding="utf-8")
    codebook = load_codebook(path)
    rows = [("R01", "", "distinct", "", "", 26.0),
            ("R03", "commune", "count", "collectivity_type", "collectivités de collectivity_type ∈ {Commune}", 14.0),
            ("R03", "pole_equilibre", "count", "collectivity_type", "", 9.0),
            ("X09", "", "count", "collectivity_type", "collectivités de collectivity_type ∈ {Autre}", 3.0)]
    figures = pd.DataFrame(rows, columns=["id", "component", "measure", "question", "numerator_rule", "value"])
    figures["key"] = [f"{i}.{c}" if c else i for i, c, *_ in rows]
    figures["definition"] = figures["id"]
    spec = next(s for s in chart_specs(codebook, {}, figures) if s.id == "E01")
    assert spec.figure_keys == ("R03.commune", "R03.pole_equilibre", "X09")
    chart = draw_chart(spec, cells=pd.DataFrame(), figures=figures, codebook=codebook, edition="2098", synthetic=True,
                       order=1)
    assert NEW_TYPE in chart.alt and "non représentés" not in chart.caption
