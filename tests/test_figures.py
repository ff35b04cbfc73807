"""Figures registry: computation on tiny frames, bounds, conformity errors."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from barometre.codebook import NSP_LABEL, Code, Codebook, Filter, Option, Question
from barometre.errors import CodebookError, ConformityError
from barometre.figures import (
    assert_conformity,
    compute_figure,
    compute_figures,
    conformity_failures,
    figures_frame,
    load_registry,
)

ROOT = Path(__file__).resolve().parents[1]

COST = Question(
    id="Q19",
    harmonised="cost",
    level="tool",
    type="band",
    wording="Coût",
    raw="C",
    nsp="show",
    chart="C03",
    codes=(Code(1, "lt1000", "< 1 000"), Code(2, "mid", "1 000–5 000"), Code(3, "hi", "> 5 000")),
)
USAGE = Question(id="Q26", harmonised="usage", level="tool", type="ordinal", wording="Usage", raw="U", nsp="show",
                 codes=(Code(1, "faible", "Faible"), Code(2, "normal", "Normal")))
REASONS = Question(id="Q27", harmonised="reasons", level="tool", type="multiple", wording="Raisons",
                   filter=Filter("Q26", ("faible",)),
                   options=(Option("a", "A", "RA"), Option("nsp", NSP_LABEL, "RN", True)))
RANK = Question(id="Q07", harmonised="lev", level="respondent", type="ranking", wording="Classez", raw="R{rank}",
                ranks=2, codes=(Code(1, "x", "X"), Code(2, "y", "Y")))
CB = Codebook(edition="t", title="t", questions=(COST, USAGE, REASONS, RANK), sources={}, identifiers={})


def cat(values, q):
    return pd.Categorical(values, categories=q.labels(), ordered=True)


@pytest.fixture()
def frames():
    tools = pd.DataFrame({
        "tool_id": list("abcdefgh"),
        # 3 below 1 000, 1 between, 2 above, 1 NSP, 1 missing
        "cost": cat(["< 1 000", "< 1 000", "< 1 000", "1 000–5 000", "> 5 000", "> 5 000", NSP_LABEL, None], COST),
        "usage": cat(["Faible", "Faible", "Faible", "Normal", NSP_LABEL, "Normal", None, "Faible"], USAGE),
        "reasons__a": pd.array([True, False, None, True, None, None, None, False], dtype="boolean"),
        "reasons__nsp": pd.array([False, True, None, False, None, None, None, False], dtype="boolean"),
    })
    resp = pd.DataFrame(
        {
            "respondent_id": ["r1", "r2", "r3"],
            "collectivity_id": ["c1", "c1", "c2"],
            "lev__x": pd.array([1, 2, None], dtype="Int8"),
            "lev__y": pd.array([2, 1, None], dtype="Int8"),
        }
    )
    return {"tools": tools, "respondents": resp, "bp": pd.DataFrame()}


def test_share_substantive_base_leaves_nsp_out(frames):
    r = compute_figure({"id": "F02", "unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000"],
                        "base": "substantive", "definition": "d"}, frames, CB)
    assert (r["numerator"], r["denominator"]) == (3, 6)
    assert r["value"] == pytest.approx(50.0)
    # Wilson 95 % for 3/6, by hand: centre (3+1.92)/(6+3.84)=0.5, half-width 1.96*sqrt(.25*6+0.96)/9.84 = 0.3187
    assert r["ci_low"] == pytest.approx(18.76, abs=0.01)
    assert r["ci_high"] == pytest.approx(81.24, abs=0.01)


def test_share_answered_base_keeps_nsp(frames):
    r = compute_figure({"id": "X", "unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000", "mid"],
                        "base": "answered", "definition": "d"}, frames, CB)
    assert (r["numerator"], r["denominator"]) == (4, 7)


def test_nsp_share(frames):
    r = compute_figure({"id": "F11", "unit": "tools", "measure": "share", "question": "usage", "keys": ["nsp"],
                        "base": "answered", "definition": "d"}, frames, CB)
    assert (r["numerator"], r["denominator"]) == (1, 7)


def test_multiple_with_questionnaire_filter(frames):
    # reasons only asked when usage = Faible: 4 such tools, 3 answered (one left it blank)
    r = compute_figure({"id": "F12", "unit": "tools", "measure": "share", "question": "reasons", "option": "nsp",
                        "base": "answered", "definition": "d"}, frames, CB)
    assert (r["numerator"], r["denominator"]) == (1, 3)


def test_ranking_first_and_top2(frames):
    spec = {"id": "F01", "unit": "respondents", "measure": "share", "question": "lev", "item": "x", "base": "answered",
            "definition": "d"}
    assert compute_figure({**spec, "rank_max": 1}, frames, CB)["value"] == pytest.approx(50)
    assert compute_figure({**spec, "rank_max": 2}, frames, CB)["value"] == pytest.approx(100)


def test_distinct_and_collectivity_unit(frames):
    r = compute_figure({"id": "R01", "unit": "respondents", "measure": "distinct", "variable": "collectivity_id",
                        "definition": "d"}, frames, CB)
    assert r["value"] == 2
    r = compute_figure({"id": "R02", "unit": "collectivities", "measure": "count", "definition": "d"}, frames, CB)
    assert r["value"] == 2


def test_published_bounds_and_status(frames):
    share = {"unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000"], "base": "substantive",
             "definition": "d"}
    reg = [
        {"id": "F02", **share},
        {"id": "F03", **share},
        {"id": "X01", "unit": "tools", "measure": "count", "definition": "d"},
    ]
    published = {"F02": {"kind": "percent", "bounds": [49.5, 50.5], "quote": "la moitié"},
                 "F03": {"kind": "percent", "value": 40, "bounds": [39.5, 40.5], "quote": "40 %"}}
    table = figures_frame(compute_figures(reg, frames, CB, published))
    assert table["status"].tolist() == ["pass", "fail", "non publié"]
    assert conformity_failures(table) == ["F03"]
    with pytest.raises(ConformityError) as err:
        assert_conformity(table, "t")
    assert "F03" in str(err.value) and "F02" not in str(err.value)



def test_conformity_rechecks_bounds_whatever_the_status_says(frames):
    """A figure outside its bounds fails even when figures.csv was edited to say « pass »."""
    reg = [{"id": "F03", "unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000"],
            "base": "substantive", "definition": "d"}]
    published = {"F03": {"kind": "percent", "value": 40, "bounds": [39.5, 40.5], "quote": "40 %"}}
    table = figures_frame(compute_figures(reg, frames, CB, published))
    assert table["status"].tolist() == ["fail"]
    table.loc[0, "status"] = "pass"
    assert conformity_failures(table) == ["F03"]
    with pytest.raises(ConformityError, match=r"F03: value 50\.000 outside \[39\.5, 40\.5\] .*says status 'pass'"):
        assert_conformity(table, "t")
    table.loc[0, "value"] = 40.0  # within the bounds again: nothing to say
    assert conformity_failures(table) == []
    assert_conformity(table, "t")


def test_conformity_names_every_published_figure_the_registry_does_not_compute(frames):
    from barometre.figures import missing_published, published_keys

    reg = [{"id": "F02", "unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000"],
            "base": "substantive", "definition": "d"}]
    table = figures_frame(compute_figures(reg, frames, CB, {}))
    published = {
        "figures": [
            {"id": "F02", "kind": "percent", "value": 50, "bounds": [49.5, 50.5]},
            {"id": "F09", "kind": "percent", "value": 75, "bounds": [72, 78]},
            {
                "id": "R03",
                "kind": "count",
                "value": {"commune": 2, "metropole": 1},
                "bounds": {"commune": [2, 2], "metropole": [1, 1]},
            },
            {"id": "T02", "kind": "text", "value": None},
        ]
    }
    assert published_keys(published) == ["F02", "F09", "R03.commune", "R03.metropole"]
    assert missing_published(table, published) == ["F09", "R03.commune", "R03.metropole"]
    with pytest.raises(ConformityError) as err:
        assert_conformity(table, "t", published)
    message = str(err.value)
    assert "0 figure(s) outside published bounds, 3 published figure(s) not computed" in message
    for key in ("F09", "R03.commune", "R03.metropole"):
        assert f"{key}: published for edition t but not computed" in message
    assert "T02" not in message and "F02:" not in message

def test_component_bounds_from_dict():
    from barometre.figures import _published_bounds

    pub = {"value": {"normale": 34}, "bounds": {"normale": [33.5, 34.5]}}
    assert _published_bounds(pub, "normale")[:2] == (33.5, 34.5)
    pub = {"value": {"commune": 65}, "bounds": "exact"}
    assert _published_bounds(pub, "commune")[:2] == (65.0, 65.0)
    pub = {"value": {"population_min": 4000000}, "bounds": {"population": [4000001, None]}}
    low, high, _ = _published_bounds(pub, "population")
    assert low == 4000001 and math.isinf(high)


def test_shipped_registry_is_valid_and_names_real_questions():
    from barometre.codebook import load_codebook

    cb = load_codebook(ROOT / "codebooks/2017.yaml")
    for spec in load_registry(ROOT / "registry/figures_2017.yaml"):
        if "question" in spec:
            q = cb.question(spec["question"])
            for k in spec.get("keys", []) + spec.get("minus_keys", []):
                q.label_of(k)
            if "option" in spec:
                q.label_of(spec["option"])
            if "item" in spec:
                q.label_of(spec["item"])


def test_registry_typo_is_reported(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(
        "edition: 1\nfigures:\n  - {id: F01, definition: d, unit: tool, measure: share, question: q, base: all}\n",
        encoding="utf-8",
    )
    with pytest.raises(CodebookError, match="F01"):
        load_registry(p)


def test_a_published_figure_computed_under_another_id_is_not_missing(frames):
    """A registry entry with ``published: {id: F13}`` computes F13's comparison under its own id (X09)."""
    from barometre.figures import missing_published

    reg = [{"id": "X09", "unit": "tools", "measure": "share", "question": "C03", "keys": ["lt1000"],
            "base": "substantive", "definition": "d", "published": {"id": "F13"}}]
    published = {"F13": {"kind": "percent", "value": 50, "bounds": [49.5, 50.5], "quote": "la moitié"}}
    table = figures_frame(compute_figures(reg, frames, CB, published))
    assert table["published_key"].tolist() == ["F13"]
    reference = {"figures": [{"id": "F13", "kind": "percent", "value": 50, "bounds": [49.5, 50.5]}]}
    assert missing_published(table, reference) == []
    assert missing_published(table.drop(columns=["published_key"]), reference) == ["F13"]


def test_numbers_in_explanations_are_written_the_french_way():
    from barometre.figures import _number_text

    assert [_number_text(v) for v in (25.55, 90.5, 98.0, 4_452_610.0, float("inf"), 1.5e-05, 1e-07)] == [
        "25,55", "90,5", "98", "4\u202f452\u202f610", "+∞", "0,000015", "0"]
