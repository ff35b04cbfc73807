"""Editions over time (src/barometre/trends.py, rules/trends.smk).

Unit tests on small made-up codebooks (comparability rules, values, labels,
charts), tests on the project's codebooks (questionnaire differences), and
end-to-end checks on the shared ``built_project`` (one ``snakemake`` builds the
three editions and the trends).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from barometre.codebook import Codebook, load_codebook
from barometre.trends import (
    DIFFERENCE_COLUMNS,
    TREND_COLUMNS,
    EditionData,
    TrendsError,
    chart_indicators,
    compute_trends,
    draw_trend_chart,
    load_trends_registry,
    questionnaire_differences,
    read_trends,
    value_label,
    write_trend_charts,
)

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = ["2016", "2017", "2018"]


# --------------------------------------------------------------------------- small made-up editions
def toy_codebook(tmp_path: Path, edition: str, *, nsp: str = "show", keys=("oui", "non"), extra: dict | None = None,
                 with_tools: bool = False) -> Codebook:
    q = {
        "id": "Q1",
        "harmonised": "opinion",
        "level": "respondent",
        "type": "single",
        "wording": "Êtes-vous d'accord ?",
        "raw": "OP",
        "nsp": nsp,
        "codes": [{"code": i + 1, "key": k, "label": k.capitalize()} for i, k in enumerate(keys)],
    }
    q.update(extra or {})
    questions = [q]
    sources = {"survey": {"level": "respondent", "id_column": "id"}}
    if with_tools:
        questions.append({"id": "Q2", "harmonised": "tool_type", "level": "tool", "type": "single", "wording": "Type",
                          "raw": "O{i}_T", "codes": [{"code": 1, "key": "a", "label": "A"}]})
        sources["survey"]["tool_blocks"] = {"count": 1, "count_column": "NB"}
    data = {"edition": edition, "title": f"Jouet {edition}", "sources": sources, "questions": questions}
    path = tmp_path / f"cb_{edition}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_codebook(path)


def toy_edition(tmp_path, edition, answers: list[str | None], **kw) -> EditionData:
    cb = toy_codebook(tmp_path, edition, **kw)
    n = len(answers)
    resp = pd.DataFrame({"respondent_id": [f"R{i}" for i in range(n)], "collectivity_id": [f"C{i}" for i in range(n)],
                         "opinion": answers})
    tools = (
        pd.DataFrame({"tool_id": ["R0-1"], "respondent_id": ["R0"], "tool_type": ["A"]})
        if kw.get("with_tools")
        else pd.DataFrame({"tool_id": pd.Series(dtype="string"), "respondent_id": pd.Series(dtype="string")})
    )
    return EditionData(edition, cb, {"respondents": resp, "tools": tools, "bp": pd.DataFrame()}, None, True)


SHARE_OUI = {"id": "oui", "label": "Part des oui", "unit": "respondents", "measure": "share",
             "question": "opinion", "keys": ["oui"], "base": "answered"}


def run(registry, data):
    return compute_trends(registry, data, sorted(data))


def test_same_question_same_base_is_comparable(tmp_path):
    data = {"2001": toy_edition(tmp_path, "2001", ["Oui", "Non", "Oui", "Oui"]),
            "2002": toy_edition(tmp_path, "2002", ["Oui", "Non", None, "Non"])}
    t = run([SHARE_OUI], data)
    assert list(t.columns) == TREND_COLUMNS
    assert t["comparable"].tolist() == [True, True]
    assert t["value"].tolist() == [75.0, pytest.approx(100 / 3)]
    assert t["base"].tolist() == [4, 3]
    assert t["value_label"].tolist() == ["75,0\u202f%", "33,3\u202f%"]
    assert (t["ci_low"] < t["value"]).all() and (t["value"] < t["ci_high"]).all()
    assert chart_indicators(t) == ["oui"]


def test_missing_key_absent_question_and_single_edition(tmp_path):
    data = {"2001": toy_edition(tmp_path, "2001", ["Oui", "Non"]),
            "2002": toy_edition(tmp_path, "2002", ["D'accord", "Pas d'accord"], keys=("d_accord", "pas_d_accord"))}
    t = run([SHARE_OUI], data)
    assert t["comparable"].tolist() == [False, False]
    assert "modalité(s) oui absente(s)" in t["note"].iloc[1] and math.isnan(t["value"].iloc[1])
    assert "seule édition" in t["note"].iloc[0] and t["value"].iloc[0] == 50
    absent = dict(SHARE_OUI, question="autre_question")
    t2 = run([dict(absent, id="absente")], data)
    assert t2["note"].str.contains("question autre_question absente").all()
    assert chart_indicators(t) == []


def test_nsp_in_one_base_and_not_in_the_other_is_not_comparable(tmp_path):
    data = {"2001": toy_edition(tmp_path, "2001", ["Oui", "Ne se prononce pas"], nsp="show"),
            "2002": toy_edition(tmp_path, "2002", ["Oui", None], nsp="drop")}
    t = run([SHARE_OUI], data)
    assert t["comparable"].tolist() == [False, False]
    assert "nsp : dans la base en 2001, hors base en 2002" in t["note"].iloc[0]
    # the same indicator on the base without « ne se prononce pas » would be computable, but the base rule differs
    assert t["value"].tolist() == [50.0, 100.0]


def test_codebook_flags_rule_comparisons_out(tmp_path):
    note = "Échelle changée."
    data = {
        "2001": toy_edition(tmp_path, "2001", ["Oui", "Non"], extra={"comparable": False, "comparability_note": note}),
        "2002": toy_edition(tmp_path, "2002", ["Oui", "Non"]),
        "2003": toy_edition(tmp_path, "2003", ["Oui", "Oui"], extra={"comparable_with": ["2002"]}),
    }
    t = run([SHARE_OUI], data).set_index("edition")
    assert not t.loc["2001", "comparable"] and "Échelle changée" in t.loc["2001", "note"]
    assert t.loc["2002", "comparable"] and t.loc["2003", "comparable"]
    data["2003"] = toy_edition(tmp_path, "2003", ["Oui", "Oui"], extra={"comparable_with": ["1999"]})
    t = run([SHARE_OUI], data).set_index("edition")
    assert not t.loc["2002", "comparable"] and "déclarés non comparables" in t.loc["2002", "note"]


def test_registry_override_and_tool_unit(tmp_path):
    data = {"2001": toy_edition(tmp_path, "2001", ["Oui"], with_tools=True),
            "2002": toy_edition(tmp_path, "2002", ["Non"], with_tools=False)}
    spec = {"id": "outils", "label": "Nombre d'outils", "unit": "tools", "measure": "count", "decimals": 0}
    t = run([spec, dict(SHARE_OUI, comparable=False, reason="Questionnaires différents.")], data)
    tools = t[t["indicator"] == "outils"].set_index("edition")
    assert tools.loc["2001", "value"] == 1 and tools.loc["2001", "value_label"] == "1"
    assert "ne fait pas décrire d'outils" in tools.loc["2002", "note"]
    oui = t[t["indicator"] == "oui"]
    assert not oui["comparable"].any() and oui["note"].str.contains("Questionnaires différents").all()


def test_value_labels():
    assert (
        value_label(1.82, {"measure": "mean", "decimals": 2, "value_unit": "€ par habitant"})
        == "1,82\u00a0€ par habitant"
    )
    assert value_label(194, {"measure": "distinct", "decimals": 0}) == "194"
    assert value_label(float("nan"), {"measure": "share"}) == "\u2013"


# --------------------------------------------------------------------------- registry
def test_project_registry_is_valid():
    registry = load_trends_registry(ROOT / "registry/trends.yaml")
    ids = [i["id"] for i in registry]
    assert len(ids) == len(set(ids)) >= 8
    for spec in registry:
        if spec.get("comparable") is False:
            assert spec["reason"]


def test_registry_errors_name_the_indicator(tmp_path):
    bad = {"indicators": [{"id": "x", "label": "X", "unit": "respondents", "measure": "share", "question": "q",
                           "keys": ["a"], "base": "answered", "comparable": False}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(TrendsError, match="indicator x"):
        load_trends_registry(path)
    dup = {"indicators": [dict(bad["indicators"][0], reason="r")] * 2}
    path.write_text(yaml.safe_dump(dup), encoding="utf-8")
    with pytest.raises(TrendsError, match="duplicated"):
        load_trends_registry(path)


# --------------------------------------------------------------------------- questionnaire differences
@pytest.fixture(scope="module")
def differences() -> pd.DataFrame:
    codebooks = {e: load_codebook(ROOT / f"codebooks/{e}.yaml") for e in EDITIONS}
    return questionnaire_differences(codebooks, EDITIONS)


def rows(diff, a, b, name):
    return diff[(diff["edition_a"] == a) & (diff["edition_b"] == b) & (diff["harmonised"] == name)]


def test_differences_cover_every_pair_and_variable(differences):
    assert list(differences.columns) == DIFFERENCE_COLUMNS
    assert set(zip(differences["edition_a"], differences["edition_b"], strict=True)) == {
        ("2016", "2017"),
        ("2016", "2018"),
        ("2017", "2018"),
    }
    for a, b in (("2016", "2017"), ("2017", "2018")):
        names = {q.harmonised for e in (a, b) for q in load_codebook(ROOT / f"codebooks/{e}.yaml").questions}
        assert (
            set(differences[(differences["edition_a"] == a) & (differences["edition_b"] == b)]["harmonised"]) == names
        )


def test_differences_name_what_changed(differences):
    ct = rows(differences, "2016", "2017", "collectivity_type").set_index("difference")
    assert "service_etat" in ct.loc["modalites", "detail"] and "codes_bruts" in ct.index
    assert ct["comparable"].all()
    levers = rows(differences, "2016", "2017", "digital_levers")
    assert {"type", "non_comparable"} <= set(levers["difference"]) and not levers["comparable"].any()
    assert rows(differences, "2016", "2017", "open_data_portal")["difference"].tolist() == ["identique"]
    pop = rows(differences, "2017", "2018", "population_band")
    assert pop["difference"].tolist() == ["absente"] and pop["detail"].iloc[0] == "posée en 2017 seulement"
    merged = rows(differences, "2017", "2018", "collectivity_type").set_index("difference")
    assert "intercommunalite_metropole" in merged.loc["modalites", "detail"]
    assert rows(differences, "2016", "2017", "tools_described")["difference"].tolist() == ["formulation"]


# --------------------------------------------------------------------------- charts
def trend_rows() -> pd.DataFrame:
    base = {"indicator": "part_x", "label": "Part des x", "unit": "collectivities", "unit_label": "collectivités",
            "measure": "share", "synthetic": True}
    return pd.DataFrame([
        dict(base, edition="2016", value=51.0, value_label="51,0\u202f%", ci_low=44.0, ci_high=58.0, base=194,
             comparable=True),
        dict(base, edition="2017", value=66.3, value_label="66,3\u202f%", ci_low=56.5, ci_high=74.9, base=98,
             comparable=True),
        dict(base, edition="2018", value=math.nan, value_label="\u2013", ci_low=math.nan, ci_high=math.nan,
             base=math.nan, comparable=False),
    ])


def test_chart_is_deterministic_accessible_and_french():
    one, two = draw_trend_chart(trend_rows()), draw_trend_chart(trend_rows())
    assert one["svg"] == two["svg"]
    svg = one["svg"]
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "<text" in svg and "51,0" in svg and "66,3" in svg  # text kept as text, French numbers
    assert "Données synthétiques" in svg and "2018 non représentée" in svg
    assert "#0072b2" in svg.lower()  # Okabe–Ito blue
    assert "<script" not in svg.lower()
    assert one["editions"] == ["2016", "2017"] and one["excluded_editions"] == ["2018"]
    assert "2016 : 51,0" in one["alt"]


def test_write_trend_charts_one_per_comparable_indicator(tmp_path):
    t = pd.concat([trend_rows(), trend_rows().assign(indicator="seul", comparable=[True, False, False])])
    manifest = json.loads(write_trend_charts(t, tmp_path).read_text(encoding="utf-8"))
    assert [c["id"] for c in manifest["charts"]] == ["part_x"]
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == ["part_x.svg"]


# --------------------------------------------------------------------------- end to end
@pytest.mark.e2e
def test_one_snakemake_builds_the_editions_and_the_trends(built_project):
    for e in EDITIONS:
        assert (built_project / f"results/{e}/conformity.txt").is_file()
    trends = read_trends(built_project / "results/trends/trends.csv")
    registry = load_trends_registry(built_project / "registry/trends.yaml")
    assert len(trends) == len(registry) * len(EDITIONS)
    assert list(trends.columns) == TREND_COLUMNS
    assert trends["label"].str.len().gt(0).all() and trends["synthetic"].all()
    # every linked published figure is the same number and passes its edition's conformity check
    linked = trends[trends["published_figure"] != ""]
    assert len(linked) >= 8 and (linked["figure_status"] == "pass").all()
    # every non-comparable value says why
    assert trends.loc[~trends["comparable"], "note"].str.len().gt(0).all()
    by = trends.set_index(["indicator", "edition"])
    assert by.loc[("part_communes", "2016"), "comparable"] and by.loc[("part_communes", "2018"), "comparable"]
    assert not by.loc[("part_intercommunalites", "2018"), "comparable"]
    assert not by.loc[("part_outils_open_data", "2016"), "comparable"]
    assert by.loc[("collectivites_repondantes", "2016"), "value"] == 194


@pytest.mark.e2e
def test_trend_charts_match_the_table_and_rebuild_identically(built_project, tmp_path):
    trends = read_trends(built_project / "results/trends/trends.csv")
    charts = built_project / "results/trends/charts"
    manifest = json.loads((charts / "charts.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in manifest["charts"]] == chart_indicators(trends)
    assert len(manifest["charts"]) >= 5
    write_trend_charts(trends, tmp_path)
    for c in manifest["charts"]:
        assert (tmp_path / c["file"]).read_bytes() == (charts / c["file"]).read_bytes(), c["file"]
    diff = pd.read_csv(built_project / "results/trends/questionnaire_differences.csv")
    assert list(diff.columns) == DIFFERENCE_COLUMNS and len(diff) > 50


# --------------------------------------------------------------------------- generic pieces the editions need
def test_mean_and_median_per_inhabitant(tmp_path):
    from barometre.figures import compute_figure

    cb = toy_codebook(tmp_path, "2001")
    frame = pd.DataFrame(
        {
            "respondent_id": ["R1", "R2", "R3", "R4", "R5"],
            "collectivity_id": ["C1", "C2", "C3", "C4", "C5"],
            "budget": [1000.0, 1500.0, 1500.0, 4000.0, None],
            "pop": [1000, 1000, 1000, 1000, 1000],
        }
    )
    frames = {"respondents": frame, "tools": pd.DataFrame(), "bp": pd.DataFrame()}
    spec = {"unit": "collectivities", "measure": "mean", "variable": "budget", "per": "pop"}
    mean = compute_figure(spec, frames, cb)
    median = compute_figure(dict(spec, measure="median"), frames, cb)
    assert (mean["value"], median["value"], mean["denominator"]) == (2.0, 1.5, 4.0)
    assert "budget / pop" in mean["numerator_rule"] and math.isnan(mean["ci_low"])
    assert compute_figure(dict(spec, per=None), frames, cb)["value"] == 2000.0


def test_config_checks_the_trends_block(tmp_path):
    from barometre.config import check_files
    from barometre.errors import ConfigError

    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    assert config["trends"]["editions"] == EDITIONS
    # Every edition gets its report (generic narrative for 2016 and 2018).
    assert [e for e, spec in config["editions"].items() if not spec.get("report", True)] == []
    check_files(config, ROOT)
    bad = dict(config, trends={"editions": ["2016", "2031"], "registry": "registry/nope.yaml"})
    with pytest.raises(ConfigError, match=r"trends/registry.*\n.*2031"):
        check_files(bad, ROOT)
