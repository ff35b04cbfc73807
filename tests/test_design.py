"""Tests of barometre.design: collectivity units, design-based shares and the Rao–Scott test.

Known answers: tests/reference/survey_design.R (R package ``survey``), outputs committed
next to it; the test compares with them to 1e-6 and never needs R.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from barometre.codebook import Code, Question
from barometre.design import (
    Design,
    DesignArrays,
    collectivity_units,
    design_interval,
    design_of,
    design_share,
    rao_scott,
)

REF = Path(__file__).parent / "reference"
DESIGNS = {
    "clustered": Design(cluster="cluster"),
    "weighted": Design(weight="weight"),
    "stratified": Design(cluster="cluster", stratum="stratum", weight="weight"),
}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REF / "survey_design_data.csv")


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_shares_match_r_survey(data, name):
    expected = pd.read_csv(REF / "survey_design_shares.csv")
    expected = expected[expected["design"] == name]
    arrays = DesignArrays.from_frame(data, DESIGNS[name])
    for row in expected.itertuples():
        domain = np.ones(len(data), bool) if row.group == "(all)" else (data["grp"] == row.group).to_numpy()
        res = design_share((data["answer"] == row.answer).to_numpy(), domain, arrays)
        assert res.n == row.n
        assert res.share == pytest.approx(row.share, abs=1e-6)
        assert res.se == pytest.approx(row.se, abs=1e-6)
        assert res.deff == pytest.approx(row.deff, abs=1e-6)


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_rao_scott_matches_r_svychisq(data, name):
    expected = pd.read_csv(REF / "survey_design_chisq.csv").set_index("design").loc[name]
    arrays = DesignArrays.from_frame(data, DESIGNS[name])
    rows = pd.factorize(data["answer"], sort=True)[0]
    cols = pd.factorize(data["grp"], sort=True)[0]
    res = rao_scott(rows, cols, arrays)
    assert res.statistic == pytest.approx(expected["statistic"], abs=1e-6)
    assert res.ndf == pytest.approx(expected["ndf"], abs=1e-6)
    assert res.ddf == pytest.approx(expected["ddf"], abs=1e-6)
    assert res.pvalue == pytest.approx(expected["pvalue"], abs=1e-6)


def test_clusters_widen_the_interval():
    # 10 clusters of 4 identical answers: the same 40 rows as 40 independent ones give a narrower interval
    y = np.repeat([1, 0, 1, 1, 0, 1, 0, 1, 1, 1], 4)
    frame = pd.DataFrame({"c": np.repeat(np.arange(10), 4)})
    dom = np.ones(40, bool)
    clustered = design_share(y, dom, DesignArrays.from_frame(frame, Design(cluster="c")))
    simple = design_share(y, dom, DesignArrays.from_frame(frame, Design()))
    assert clustered.deff > 3.5 and simple.deff == pytest.approx(1.0)
    lo_c, hi_c = design_interval(clustered)
    lo_s, hi_s = design_interval(simple)
    assert hi_c - lo_c > hi_s - lo_s


def test_interval_behaves_at_zero_and_hundred():
    frame = pd.DataFrame({"c": [1, 1, 2, 2, 3]})
    arrays = DesignArrays.from_frame(frame, Design(cluster="c"))
    for y in (np.zeros(5), np.ones(5)):
        share = design_share(y, np.ones(5, bool), arrays)
        low, high = design_interval(share)
        assert 0 <= low <= share.share <= high <= 1 and high - low > 0.2


def _question(qid: str, harmonised: str) -> Question:
    return Question(qid, harmonised, "respondent", "single", "?", raw="X", unit="collectivity",
                    codes=(Code(1, "a", "A"), Code(2, "b", "B")))


def test_collectivity_units_first_complete_and_conflicts():
    frame = pd.DataFrame({
        "respondent_id": ["R1", "R2", "R3", "R4", "R5"],
        "collectivity_id": ["K1", "K1", "K2", "K2", None],
        "kind": [None, "A", "A", "B", "A"],
        "size": ["A", "A", "A", "A", None],
    })
    qs = [_question("Q01", "kind"), _question("Q02", "size")]
    units = collectivity_units(frame, qs)
    # K1: R2 answered both attributes (R1 only one) → R2; K2: both complete → the first, R3; R5 has no collectivity
    assert units.frame["respondent_id"].tolist() == ["R2", "R3", "R5"]
    assert (units.n_rows, units.n_collectivities) == (5, 3)
    assert units.conflicts[["collectivity_id", "question_id", "values", "kept_value"]].values.tolist() == [
        ["K2", "Q01", "A | B", "A"]]
    assert "5 répondants, 3 collectivités" in units.summary()


def test_design_of_reads_the_config():
    cfg = {"design": {"levels": {"tool": {"cluster": "respondent_id"}}}, "tabulation": {"weight": None}}
    assert design_of(cfg, "tool") == Design(cluster="respondent_id")
    assert design_of(cfg, "respondent").is_simple


def test_r_script_reproduces_the_committed_answers(tmp_path):
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        pytest.skip("Rscript absent (Debian r-base-core r-cran-survey): the committed R outputs are used as they are")
    run = subprocess.run(["Rscript", str(REF / "survey_design.R"), str(tmp_path)], cwd=REF.parents[1],
                         capture_output=True, text=True)
    if run.returncode != 0 and "survey" in run.stderr and "there is no package" in run.stderr:
        pytest.skip("R package survey absent (Debian r-cran-survey)")
    assert run.returncode == 0, run.stderr
    for name in ("survey_design_shares.csv", "survey_design_chisq.csv", "survey_design_trend.csv"):
        fresh, committed = pd.read_csv(tmp_path / name), pd.read_csv(REF / name)
        pd.testing.assert_frame_equal(fresh, committed, rtol=0, atol=1e-9)


def test_design_summary_states_the_sample_the_units_and_the_clusters():
    from barometre.codebook import Codebook
    from barometre.design import design_summary

    frames = {
        "respondent": pd.DataFrame({"respondent_id": ["R1", "R2", "R3"], "collectivity_id": ["K1", "K1", "K2"],
                                    "kind": ["A", "B", "A"], "size": ["A", "A", "B"]}),
        "tool": pd.DataFrame({"tool_id": ["T1", "T2", "T3"], "respondent_id": ["R1", "R1", "R3"]}),
    }
    cb = Codebook("t", "t", (_question("Q01", "kind"), _question("Q02", "size")), {}, {})
    config = {"design": {"levels": {"tool": {"cluster": "respondent_id"}}}}
    cells = pd.DataFrame({"deff": [0.9, 1.2, np.nan, 1.5]})
    text = design_summary(config, frames, codebook=cb, cells=cells)
    assert "auto-sélectionné" in text and "indicatifs" in text
    assert "2 collectivités pour 3 répondants" in text and "réponses divergentes : 1 collectivité)" in text
    assert "grappes = répondants (2 grappes pour 3 outils)" in text
    assert "Répondants : traités comme un échantillon aléatoire simple" in text
    assert "médiane 1,20 (de 0,90 à 1,50)" in text and "Holm" in text
    assert "_" not in text  # no identifier shown to a reader


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_trend_test_matches_r_svyglm_regtermtest(data, name):
    from barometre.design import design_trend

    expected = pd.read_csv(REF / "survey_design_trend.csv").set_index("design").loc[name]
    arrays = DesignArrays.from_frame(data, DESIGNS[name])
    scores = data["answer"].map({"x": 1, "y": 2, "z": 3}).to_numpy(dtype=float)
    res = design_trend(scores, pd.factorize(data["grp"], sort=True)[0], arrays)
    assert res.statistic == pytest.approx(expected["statistic"], abs=1e-6)
    assert (res.ndf, res.ddf) == (expected["ndf"], expected["ddf"])
    assert res.pvalue == pytest.approx(expected["pvalue"], abs=1e-6)


def test_singleton_clusters_keep_the_simple_designs_exact_tests():
    from barometre.codebook import Codebook
    from barometre.design import design_tables
    from barometre.tabulate import tabulate_level

    q = Question("Q05", "opinion", "respondent", "single", "?", raw="X", codes=(Code(1, "a", "A"), Code(2, "b", "B")))
    frame = pd.DataFrame({"collectivity_id": [f"K{i}" for i in range(8)],
                          "opinion": pd.Categorical(list("AABBABAB"), categories=q.labels()),
                          "kind": list("xxxxyyyy")})
    cb = Codebook("t", "t", (q,), {}, {})
    res = tabulate_level(frame, [q], ["kind"], codebook=cb)
    _, tests = design_tables(res.cells, res.tests, frame, [q], Design(cluster="collectivity_id"), codebook=cb)
    pd.testing.assert_frame_equal(tests, res.tests)
    assert tests["test"].iloc[0] == "test exact de Fisher"
    clustered = frame.assign(collectivity_id=list("KKLLMMNN"))
    _, tests2 = design_tables(res.cells, res.tests, clustered, [q], Design(cluster="collectivity_id"), codebook=cb)
    assert "Rao-Scott" in tests2["test"].iloc[0]


def test_exclusive_nsp_bases_are_hidden_with_a_second_column():
    from barometre.codebook import Codebook, Option
    from barometre.design import protect_exclusive_bases

    q = Question("Q08", "contrib", "respondent", "multiple", "?",
                 options=(Option("a", "A", "RA"), Option("nsp", "Ne se prononce pas", "RN", True)))
    rows = []
    # columns: Ensemble (nsp 4 of 60), X (nsp 1 of 30: suppressed), Y (nsp 3 of 20), Z (nsp 0 of 10)
    for dim, val, nsp, base in [("ensemble", "Ensemble", 4, 60), ("kind", "X", 1, 30), ("kind", "Y", 3, 20),
                                ("kind", "Z", 0, 10)]:
        rows.append(dict(question_id="Q08", dimension=dim, dimension_value=val, answer_key="a", statistic="share",
                         count=base - nsp - 2, base=base - nsp, suppressed=False, base_suppressed=False))
        rows.append(dict(question_id="Q08", dimension=dim, dimension_value=val, answer_key="nsp", statistic="share",
                         count=nsp, base=base, suppressed=val == "X", base_suppressed=False))
    out = protect_exclusive_bases(
        pd.DataFrame(rows).assign(question_type="multiple"), Codebook("t", "t", (q,), {}, {})
    ).set_index(["dimension_value", "answer_key"])
    # X's NSP base would give its NSP count (30 − 29): hidden; Z (smallest other base) hidden with it,
    # so the bases of the dimension no longer give X's by subtraction from the Ensemble
    assert out.loc[("X", "nsp"), "base_suppressed"] and out.loc[("Z", "nsp"), "suppressed"]
    assert out.loc[("Z", "nsp"), "base_suppressed"]
    assert not out.loc[("Y", "nsp"), "suppressed"] and not out.loc[("Ensemble", "nsp"), "base_suppressed"]
    assert not out.xs("a", level="answer_key")["suppressed"].any()


def test_a_substantive_answer_beats_ne_se_prononce_pas():
    frame = pd.DataFrame({"respondent_id": ["R1", "R2"], "collectivity_id": ["K1", "K1"],
                          "kind": ["Ne se prononce pas", "B"], "size": ["A", "A"]})
    units = collectivity_units(frame, [_question("Q01", "kind"), _question("Q02", "size")])
    assert units.frame["respondent_id"].tolist() == ["R2"]
    assert units.conflicts["kept_value"].tolist() == ["B"]


def test_design_tables_name_a_missing_weight():
    from barometre.codebook import Codebook
    from barometre.design import design_tables
    from barometre.tabulate import tabulate_level

    q = Question("Q05", "opinion", "respondent", "single", "?", raw="X", codes=(Code(1, "a", "A"), Code(2, "b", "B")))
    frame = pd.DataFrame({"collectivity_id": list("KKLLMMNN"), "w": [1.0] * 8,
                          "opinion": pd.Categorical(list("AABBABAB"), categories=q.labels()), "kind": list("xxxxyyyy")})
    cb = Codebook("t", "t", (q,), {}, {})
    res = tabulate_level(frame, [q], ["kind"], codebook=cb, weight="w")
    with pytest.raises(ValueError, match=r"weight column 'w' has a missing or infinite value \(row 5\)"):
        design_tables(res.cells, res.tests, frame.assign(w=[1.0] * 5 + [np.nan] + [1.0] * 2), [q],
                      Design(cluster="collectivity_id", weight="w"), codebook=cb)
