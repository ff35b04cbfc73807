"""End-to-end: the whole pipeline on the shipped 2017 data, checked against the published edition."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_snakemake

pytestmark = pytest.mark.e2e

PUBLISHED = yaml.safe_load((ROOT / "references/published_2017.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def processed(built_project):
    base = built_project / "data/processed/2017"
    return {name: pd.read_parquet(base / f"{name}.parquet") for name in ("respondents", "tools", "bp_inventory")}


@pytest.fixture(scope="module")
def figures(built_project) -> pd.DataFrame:
    t = pd.read_csv(built_project / "results/2017/figures.csv", keep_default_na=False, na_values=[""])
    t["component"] = t["component"].fillna("")
    return t


def test_processed_counts(processed):
    assert processed["respondents"]["collectivity_id"].nunique() == 98
    assert len(processed["tools"]) == 45
    assert len(processed["bp_inventory"]) == 61


def test_categoricals_keep_label_order(processed):
    from barometre.codebook import load_codebook

    cb = load_codebook(ROOT / "codebooks/2017.yaml")
    for level, frame in (("respondent", processed["respondents"]), ("tool", processed["tools"])):
        for q in cb.at_level(level):
            if q.is_categorical:
                assert list(frame[q.harmonised].cat.categories) == q.labels(), q.id


def test_no_identifier_column(processed):
    for frame in processed.values():
        for col in frame.columns:
            assert not re.search(r"(?i)(^|_)(nom|name|e?mail|tel|phone|ip|ipaddr)(_|$)", col) or col in {
                "tool_name", "bp_territory_name"}, col
        text = [str(v) for v in frame.to_numpy().ravel()]
        assert not any("@" in v and "example.org" in v for v in text)


def test_cleaning_log_accounts_for_every_raw_row(built_project, processed):
    import pyreadstat

    raw, _ = pyreadstat.read_sav(str(built_project / "data/raw/2017/barometre_2017_limesurvey.sav"), metadataonly=False)
    log = pd.read_csv(built_project / "data/processed/2017/cleaning_log.csv")
    excluded = log[log["action"].str.startswith("exclu:")]
    assert len(raw) == len(processed["respondents"]) + len(excluded)
    assert set(excluded["action"]) == {"exclu:test", "exclu:incomplete", "exclu:duplicate"}
    kept_ids = set(processed["respondents"]["respondent_id"])
    assert not kept_ids & {f"R{int(i):04d}" for i in excluded["record_id"]}


def test_every_published_numeric_figure_is_computed_and_passes(figures):
    computed = {(r.id, r.component) for r in figures.itertuples()}
    for pub in PUBLISHED["figures"]:
        if pub["kind"] == "text":
            continue
        if isinstance(pub.get("value"), dict):
            comps = list(pub["bounds"].keys()) if isinstance(pub["bounds"], dict) else list(pub["value"].keys())
            for comp in comps:
                assert (pub["id"], comp) in computed, (pub["id"], comp)
        else:
            assert any(i == pub["id"] for i, _ in computed), pub["id"]
    checked = figures[figures["status"].isin(["pass", "fail"])]
    failing = checked[checked["status"] == "fail"]
    assert failing.empty, failing[["id", "component", "value", "bound_low", "bound_high"]].to_string()
    # the published ids are all checked against bounds (text figures with the project's own reading too)
    assert {"R04", "F01", "F03", "F11", "B06", "T01"} <= set(checked["id"])


@pytest.mark.parametrize("fid,expected", [
    ("R04", 31 / 121 * 100), ("F03", 18 / 45 * 100), ("F11.ne_se_prononce_pas", 7 / 41 * 100), ("B06", 6 / 26 * 100),
])
def test_known_values(figures, fid, expected):
    i, _, comp = fid.partition(".")
    row = figures[(figures["id"] == i) & (figures["component"] == comp)].iloc[0]
    assert row["value"] == pytest.approx(expected)
    assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_contradiction_92_of_98_is_shown(figures):
    r03 = figures[figures["id"] == "R03"]["value"].sum()
    x01 = figures[figures["id"] == "X01"]["value"].iloc[0]
    assert r03 == 92 and x01 == 6


def test_second_dry_run_has_nothing_to_do(built_project):
    res = run_snakemake(built_project, "-n", "--cores", "1")
    assert res.returncode == 0, res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr


def test_conformity_rule_fails_on_out_of_bounds(built_project, tmp_path):
    """A figure outside its bounds stops the pipeline, naming the failing id."""
    from barometre.errors import ConformityError
    from barometre.pipeline import run_conformity

    t = pd.read_csv(built_project / "results/2017/figures.csv", keep_default_na=False, na_values=[""])
    t.loc[t["id"] == "F05", "value"] = 50.0
    t.loc[t["id"] == "F05", "status"] = "fail"
    p = tmp_path / "figures.csv"
    t.to_csv(p, index=False)
    with pytest.raises(ConformityError, match="F05"):
        run_conformity("2017", {"figures": str(p)}, {"report": str(tmp_path / "c.txt")})


@pytest.mark.parametrize("fid", sorted({f["id"] for f in yaml.safe_load(
    (ROOT / "registry/figures_2017.yaml").read_text(encoding="utf-8"))["figures"]}))
def test_explain_works_for_every_id(built_project, fid, monkeypatch):
    from barometre.__main__ import explain_text

    monkeypatch.chdir(built_project)
    text = explain_text(fid, "2017")
    assert "Numérateur" in text and ("Valeur" in text)
    assert "synthétiques" in text


def test_explain_f05_content(built_project, monkeypatch):
    from barometre.__main__ import explain_text

    monkeypatch.chdir(built_project)
    text = explain_text("F05", "2017")
    assert "Quel est ou quels sont les objectifs de ce dispositif numérique ?" in text
    assert "O1_OBJ_SQ002" in text and "O3_OBJ_SQ002" in text
    assert "Doublon" in text or "doublon" in text
    assert "40 → " not in text
    assert re.search(r"Numérateur : .* → 40\b", text)
    assert re.search(r"Dénominateur : .* → 45\b", text)
    assert "88,9" in text and "Bornes (publié) : [87 ; 90,5] → conforme" in text
