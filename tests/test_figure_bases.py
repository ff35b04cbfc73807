"""One base for tables and figures: ranking, exclusive « ne se prononce pas », collectivity unit, weights."""
from __future__ import annotations

import pandas as pd
import pytest

from barometre.codebook import NSP_LABEL, Code, Codebook, Option, Question
from barometre.figures import compute_figure
from barometre.tabulate import tabulate_question

RANK = Question(id="Q07", harmonised="lev", level="respondent", type="ranking", wording="Classez", raw="R{rank}",
                ranks=3, codes=(Code(1, "x", "X"), Code(2, "y", "Y"), Code(3, "z", "Z")))
MULTI = Question(id="Q08", harmonised="contrib", level="respondent", type="multiple", wording="Contributions",
                 options=(Option("a", "A", "RA"), Option("b", "B", "RB"), Option("nsp", NSP_LABEL, "RN", True)))
POP = Question(id="Q02", harmonised="pop", level="respondent", unit="collectivity", type="single", wording="Pop",
               raw="P", codes=(Code(1, "small", "Petite"), Code(2, "big", "Grande")))
CB = Codebook(edition="t", title="t", questions=(RANK, MULTI, POP), sources={}, identifiers={})


@pytest.fixture()
def frames():
    resp = pd.DataFrame({
        "respondent_id": ["r1", "r2", "r3", "r4", "r5"],
        "collectivity_id": ["c1", "c1", "c2", "c3", "c3"],
        # partial rankings: r3 ranked only y, r4 only z; r5 did not rank
        "lev__x": pd.array([1, 2, None, None, None], dtype="Int8"),
        "lev__y": pd.array([2, 1, 1, None, None], dtype="Int8"),
        "lev__z": pd.array([None, None, None, 1, None], dtype="Int8"),
        "contrib__a": pd.array([True, False, True, False, None], dtype="boolean"),
        "contrib__b": pd.array([False, True, True, False, None], dtype="boolean"),
        "contrib__nsp": pd.array([False, False, False, True, None], dtype="boolean"),
        "pop": pd.Categorical([None, "Grande", "Petite", "Petite", "Grande"], categories=POP.labels()),
        "w": [1.0, 2.0, 1.0, 1.0, 3.0],
    })
    return {"respondents": resp, "tools": pd.DataFrame(), "bp": pd.DataFrame()}


def _table_cell(frame, q, statistic, key):
    cells = tabulate_question(frame, q, None).cells
    return cells[(cells["statistic"] == statistic) & (cells["answer_key"] == key)].iloc[0]


def test_ranking_figure_uses_the_tables_base(frames):
    # x is ranked first by 1 of the 4 rows that ranked something (not 1 of the 2 that ranked x)
    spec = {"id": "F01", "unit": "respondents", "measure": "share", "question": "lev", "item": "x", "rank_max": 1,
            "base": "answered", "definition": "d"}
    r = compute_figure(spec, frames, CB)
    cell = _table_cell(frames["respondents"], RANK, "first_share", "x")
    assert (r["numerator"], r["denominator"]) == (cell["count"], cell["base"]) == (1, 4)
    assert r["value"] == pytest.approx(cell["value"])
    assert "au moins un élément" in r["base_rule"]


def test_multiple_substantive_base_is_the_tables_base(frames):
    spec = {"id": "F07", "unit": "respondents", "measure": "share", "question": "contrib", "option": "a",
            "definition": "d"}
    published_reading = compute_figure({**spec, "base": "answered"}, frames, CB)
    tables_base = compute_figure({**spec, "base": "substantive"}, frames, CB)
    cell = _table_cell(frames["respondents"], MULTI, "share", "a")
    assert (published_reading["numerator"], published_reading["denominator"]) == (2, 4)  # NSP row in the base
    assert (tables_base["numerator"], tables_base["denominator"]) == (cell["count"], cell["base"]) == (2, 3)
    nsp = compute_figure({**spec, "option": "nsp", "base": "substantive"}, frames, CB)
    assert (nsp["numerator"], nsp["denominator"]) == (1, 4)  # the exclusive answer's own share keeps every row


def test_collectivity_unit_keeps_the_first_complete_response(frames):
    # c1: r1 left the population blank, r2 answered → r2 (Grande); c3: r4 and r5 disagree → the first, r4
    spec = {"id": "X", "unit": "collectivities", "measure": "share", "question": "pop", "keys": ["big"],
            "base": "answered", "definition": "d"}
    r = compute_figure(spec, frames, CB)
    assert (r["numerator"], r["denominator"]) == (1, 3)


def test_weighted_edition_figures_use_the_weights(frames):
    spec = {"id": "X", "unit": "respondents", "measure": "share", "question": "contrib", "option": "b",
            "base": "answered", "definition": "d"}
    r = compute_figure(spec, frames, CB, weight="w")
    # answered rows r1..r4, weights 1, 2, 1, 1; b checked by r2 and r3 → 3 / 5
    assert (r["numerator"], r["denominator"]) == (3, 5)
    assert r["value"] == pytest.approx(60)
    assert "pondéré" in r["base_rule"]
    assert r["ci_low"] < 60 < r["ci_high"]


def test_explanation_names_the_unit_and_counts_the_collectivities(frames):
    from dataclasses import asdict

    from barometre.figures import compute_figures, explanation, units_note

    spec = {"id": "X", "unit": "collectivities", "measure": "share", "question": "pop", "keys": ["big"],
            "base": "answered", "definition": "d"}
    fig = compute_figures([spec], frames, CB, {})[0]
    note = units_note(frames, CB, "collectivities")
    assert note.startswith("3 collectivités distinctes pour 5 répondants")
    assert note.endswith("d'une même collectivité : 1")  # c3: r4 says Petite, r5 Grande
    lines = dict(explanation(asdict(fig), spec, CB, pd.DataFrame(columns=["action", "reason", "column"]),
                            tool_blocks=None, units_note=note))
    assert lines["Unité"].startswith("collectivités (une ligne par collectivité") and note in lines["Unité"]
