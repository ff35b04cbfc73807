"""Tests of barometre.tabulate: unit, known-answer and property tests."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import barometre.disclosure as disclosure_module
import barometre.stats as stats_module
import barometre.tabulate as tabulate_module
from barometre.codebook import Code, Codebook, Option, Question, load_codebook
from barometre.errors import CodebookError, ValidationError
from barometre.stats import PEARSON, association_test
from barometre.tabulate import (
    CELL_COLUMNS,
    TEST_COLUMNS,
    WEIGHTED_COLUMNS,
    QuestionTable,
    TabulationResult,
    tabulate_edition,
    tabulate_level,
    tabulate_question,
)

ROOT = Path(__file__).resolve().parents[1]
CB = load_codebook(ROOT / "codebooks" / "2017.yaml")
ROLES = ["Élu·e", "Agent"]


def cat(values, labels, ordered=False):
    return pd.Categorical(list(values), categories=list(labels), ordered=ordered)


def q_cat(ref, values):
    q = CB.question(ref)
    return cat(values, q.labels(), ordered=q.type in ("ordinal", "band"))


def cells_of(table: QuestionTable, statistic="share") -> pd.DataFrame:
    c = table.cells
    return c[c["statistic"] == statistic].set_index(["answer_key", "dimension_value"])


# ----------------------------------------------------------------- known answers


def test_three_of_ten_is_thirty_percent_with_wilson_interval():
    q = CB.question("Q29")  # open_data_portal: Oui / Non / Ne se prononce pas
    frame = pd.DataFrame({q.harmonised: q_cat("Q29", ["Oui"] * 3 + ["Non"] * 7)})
    c = cells_of(tabulate_question(frame, q, None))
    oui = c.loc[("oui", "Ensemble")]
    assert (oui["count"], oui["base"], oui["value"]) == (3, 10, pytest.approx(30.0))
    assert oui["ci_low"] == pytest.approx(10.78, abs=0.005)
    assert oui["ci_high"] == pytest.approx(60.32, abs=0.005)
    assert oui["effective_base"] == 10


def test_nsp_shown_is_its_own_category_and_never_inflates_another():
    q = CB.question("Q29")
    values = ["Oui"] * 3 + ["Non"] * 5 + ["Ne se prononce pas"] * 2 + [None] * 4
    frame = pd.DataFrame({q.harmonised: q_cat("Q29", values)})
    c = cells_of(tabulate_question(frame, q, None))
    assert list(c.index.get_level_values(0)) == ["oui", "non", "nsp"]
    assert c["count"].tolist() == [3, 5, 2]
    assert set(c["base"]) == {10}  # NSP in the base, non-response out
    assert c["value"].tolist() == pytest.approx([30, 50, 20])
    assert c.loc[("nsp", "Ensemble"), "answer_label"] == "Ne se prononce pas"
    # moving the NSP answers to non-response changes no other count
    frame2 = pd.DataFrame({q.harmonised: q_cat("Q29", [v if v != "Ne se prononce pas" else None for v in values])})
    c2 = cells_of(tabulate_question(frame2, q, None))
    assert c2.loc[("oui", "Ensemble"), "count"] == 3 and c2.loc[("non", "Ensemble"), "count"] == 5
    assert c2.loc[("nsp", "Ensemble"), "count"] == 0 and c2.loc[("oui", "Ensemble"), "base"] == 8


def test_nsp_dropped_question_has_no_nsp_row():
    q = CB.question("Q18")  # nsp: drop
    frame = pd.DataFrame({q.harmonised: q_cat("Q18", ["Communication", None, "Autre service"])})
    c = cells_of(tabulate_question(frame, q, None))
    assert "nsp" not in c.index.get_level_values(0)
    assert set(c["base"]) == {2}


def test_top2_share_is_the_sum_of_its_two_shares():
    q = CB.question("Q09")
    values = ["Pas du tout important", "Peu important", "Assez important", "Assez important",
              "Très important", "Ne se prononce pas", None]
    frame = pd.DataFrame({q.harmonised: q_cat("Q09", values)})
    t = tabulate_question(frame, q, None)
    top2 = t.cells[t.cells["statistic"] == "top2_share"]
    assert len(top2) == 1
    row = top2.iloc[0]
    assert row["answer_key"] == "top2"
    assert row["answer_label"] == "Assez important + Très important"
    assert (row["count"], row["base"]) == (3, 6)
    shares = cells_of(t)
    assert row["value"] == pytest.approx(
        shares.loc[("assez_important", "Ensemble"), "value"] + shares.loc[("tres_important", "Ensemble"), "value"]
    )


def test_cumulative_bands_by_hand():
    q = CB.question("Q19")  # tool_cost_band, nsp shown, cumulative
    lab = q.labels()
    values = [lab[0]] * 3 + [lab[1]] * 1 + [lab[2]] * 2 + [lab[4]] * 1 + ["Ne se prononce pas"] * 3 + [None] * 2
    frame = pd.DataFrame({q.harmonised: q_cat("Q19", values)})
    t = tabulate_question(frame, q, None)
    share = cells_of(t)
    assert set(share["base"]) == {10}  # NSP included in the share base
    cum = t.cells[t.cells["statistic"] == "cumulative_share"]
    assert cum["answer_key"].tolist() == [c.key for c in q.codes]
    assert cum["count"].tolist() == [3, 4, 6, 6, 7]
    assert set(cum["base"]) == {10}  # one base with the shares: NSP in it, shown as its own share
    assert cum["value"].tolist() == pytest.approx([30, 40, 60, 60, 70])
    assert share.loc[("nsp", "Ensemble"), "value"] == pytest.approx(30)  # 70 % + 30 % NSP = 100 %
    assert cum["answer_label"].iloc[1] == "Cumul jusqu'à « De 1 000 à 5 000 € »"
    assert (cum["ci_low"] <= cum["value"]).all() and (cum["value"] <= cum["ci_high"]).all()


def test_multiple_response_base_is_answered_rows_and_shares_exceed_100():
    q = CB.question("Q08")
    cols = q.columns()
    data = {c: [pd.NA] * 5 for c in cols}
    answered = [0, 1, 2, 4]
    for r in answered:
        for c in cols:
            data[c][r] = False
    data["digital_contributions__transparence"][0] = True
    data["digital_contributions__valoriser"][0] = True
    data["digital_contributions__transparence"][1] = True
    data["digital_contributions__nsp"][2] = True
    data["digital_contributions__valoriser"][4] = True
    data["digital_contributions__adhesion"][4] = True
    frame = pd.DataFrame({c: pd.array(v, dtype="boolean") for c, v in data.items()})
    c = cells_of(tabulate_question(frame, q, None))
    # « ne se prononce pas » (row 2) is exclusive: its own share of the 4 rows that answered,
    # and out of the base of every other option (3 rows)
    assert c.loc[("nsp", "Ensemble"), "base"] == 4
    assert set(c["base"].drop(("nsp", "Ensemble"))) == {3}
    v = c["value"].xs("Ensemble", level=1)
    assert v["nsp"] == 25
    assert v["transparence"] == pytest.approx(200 / 3) and v["valoriser"] == pytest.approx(200 / 3)
    assert v["adhesion"] == pytest.approx(100 / 3)
    assert v.drop("nsp").sum() == pytest.approx(500 / 3)  # > 100 %: several answers per row
    assert c.loc[("inclusion", "Ensemble"), "count"] == 0


def test_exclusive_nsp_checked_with_other_options_counts_only_as_nsp():
    q = CB.question("Q08")
    cols = q.columns()
    data = {c: [False] * 3 for c in cols}
    data["digital_contributions__transparence"] = [True, True, True]
    data["digital_contributions__nsp"] = [False, False, True]  # row 2: NSP and an option (a conflict)
    frame = pd.DataFrame({c: pd.array(v, dtype="boolean") for c, v in data.items()})
    c = cells_of(tabulate_question(frame, q, None))
    assert (c.loc[("transparence", "Ensemble"), "count"], c.loc[("transparence", "Ensemble"), "base"]) == (2, 2)
    assert (c.loc[("nsp", "Ensemble"), "count"], c.loc[("nsp", "Ensemble"), "base"]) == (1, 3)


def test_ranking_first_top3_and_mean_rank_by_hand():
    q = CB.question("Q07")
    keys = [c.key for c in q.codes]
    nan = None
    ranks = {
        "r1": [1, 2, 3, 4, 5, 6, 7],
        "r2": [2, 1, 3, 4, 5, 6, 7],
        "r3": [1, 3, 2, 4, 5, 6, 7],
        "r4": [3, 1, 2, nan, nan, nan, nan],  # partial ranking
        "r5": [nan] * 7,  # did not answer
    }
    frame = pd.DataFrame(
        {f"{q.harmonised}__{k}": pd.array([ranks[r][i] for r in ranks], dtype="Int8") for i, k in enumerate(keys)}
    )
    t = tabulate_question(frame, q, None)
    first = cells_of(t, "first_share")["value"].xs("Ensemble", level=1)
    top3 = cells_of(t, "top3_share")["value"].xs("Ensemble", level=1)
    mean = cells_of(t, "mean_rank").xs("Ensemble", level=1)
    assert set(cells_of(t, "first_share")["base"]) == {4}
    assert first["strategie_globale"] == 50 and first["portage_politique"] == 50 and first["moyens_financiers"] == 0
    assert top3[["strategie_globale", "portage_politique", "moyens_financiers"]].tolist() == [100, 100, 100]
    assert top3["competences"] == 0
    assert mean.loc["strategie_globale", "value"] == pytest.approx(1.75)
    assert mean.loc["strategie_globale", "count"] == 4
    # t interval: sd of (1, 2, 1, 3) = 0.9574, t(0.975, 3) = 3.1824
    assert mean.loc["strategie_globale", "ci_low"] == pytest.approx(1.75 - 3.1824 * 0.9574 / 2, abs=1e-3)
    assert mean.loc["competences", "value"] == 4 and mean.loc["competences", "count"] == 3
    assert mean.loc["competences", "ci_low"] == mean.loc["competences", "ci_high"] == 4
    assert mean.loc["evaluation", "value"] == 7
    assert (t.cells["effective_base"] == t.cells["base"]).all()  # unweighted


def test_filter_restricts_to_faible_like_c08():
    q26, q27 = CB.question("Q26"), CB.question("Q27")
    usage = ["Faible"] * 4 + ["Normal"] * 2 + [None]
    cols = q27.columns()
    data = {c: [False] * 7 for c in cols}
    data["tool_low_usage_reasons__communication"] = [True, True, False, pd.NA, True, True, True]
    data["tool_low_usage_reasons__ergonomie"] = [False, True, False, pd.NA, True, False, True]
    data["tool_low_usage_reasons__nsp"] = [False, False, True, pd.NA, False, False, False]
    for c in cols:
        if c not in (
            "tool_low_usage_reasons__communication",
            "tool_low_usage_reasons__ergonomie",
            "tool_low_usage_reasons__nsp",
        ):
            data[c][3] = pd.NA
    frame = pd.DataFrame(
        {q26.harmonised: q_cat("Q26", usage), **{c: pd.array(v, dtype="boolean") for c, v in data.items()}}
    )
    c = cells_of(tabulate_question(frame, q27, None, codebook=CB))
    assert c.loc[("nsp", "Ensemble"), "base"] == 3  # only « Faible » rows that answered
    assert set(c["base"].drop(("nsp", "Ensemble"))) == {2}  # … and, for the options, did not answer NSP
    assert c.loc[("communication", "Ensemble"), "count"] == 2
    assert c.loc[("ergonomie", "Ensemble"), "count"] == 1
    assert c.loc[("nsp", "Ensemble"), "count"] == 1
    # the filter question can be given directly, and is required
    direct = tabulate_question(frame, q27, None, filter_question=q26).cells
    pd.testing.assert_frame_equal(direct, tabulate_question(frame, q27, None, codebook=CB).cells)
    with pytest.raises(CodebookError):
        tabulate_question(frame, q27, None)


def test_single_filter_on_role():
    q = CB.question("Q04")  # function_elected, asked to élus only
    frame = pd.DataFrame(
        {
            "role": cat(["Élu·e", "Élu·e", "Agent"], ROLES),
            q.harmonised: q_cat("Q04", ["Maire ou président·e", "Adjoint·e au maire", "Maire ou président·e"]),
        }
    )
    c = cells_of(tabulate_question(frame, q, None, codebook=CB))
    assert c.loc[("maire", "Ensemble"), "count"] == 1 and c.loc[("maire", "Ensemble"), "base"] == 2


def test_missing_dimension_value_kept_in_ensemble_only():
    q = CB.question("Q29")
    frame = pd.DataFrame(
        {
            q.harmonised: q_cat("Q29", ["Oui", "Oui", "Non", "Oui", "Non"]),
            "role": cat(["Élu·e", "Agent", "Agent", None, "Élu·e"], ROLES),
        }
    )
    res = tabulate_level(frame, [q], ["role"])
    share = res.cells[res.cells["statistic"] == "share"]
    ens = share[share["dimension"] == "ensemble"]
    by_role = share[share["dimension"] == "role"]
    assert set(ens["base"]) == {5}
    assert set(by_role["dimension_value"]) == set(ROLES)
    bases = by_role.groupby("dimension_value")["base"].first()
    assert bases.sum() == 4
    assert ens.loc[ens["answer_key"] == "oui", "count"].item() == 3
    assert by_role.loc[by_role["answer_key"] == "oui", "count"].sum() == 2


def test_numeric_mean_and_median_by_column():
    q = CB.question("Q13")
    frame = pd.DataFrame(
        {
            q.harmonised: pd.array([2010, 2012, 2014, 2016, None, 2000], dtype="Int64"),
            "tool_type": cat(["Forum de discussion"] * 4 + ["Forum de discussion", "Plateforme de sondage en ligne"],
                             CB.question("Q11").labels()),
        }
    )
    t = tabulate_question(frame, q, "tool_type")
    c = t.cells.set_index(["statistic", "dimension_value"])
    assert c.loc[("mean", "Forum de discussion"), "value"] == 2013
    assert c.loc[("median", "Forum de discussion"), "value"] == 2013
    assert c.loc[("mean", "Forum de discussion"), "count"] == 4 == c.loc[("mean", "Forum de discussion"), "base"]
    assert np.isnan(c.loc[("median", "Forum de discussion"), "ci_low"])
    assert c.loc[("mean", "Plateforme de sondage en ligne"), "count"] == 1
    assert np.isnan(c.loc[("mean", "Autre type d'outil"), "value"])
    ens = tabulate_question(frame, q, None).cells.set_index("statistic")
    assert ens.loc["mean", "value"] == pytest.approx(np.mean([2010, 2012, 2014, 2016, 2000]))
    assert ens.loc["median", "value"] == 2012
    # a group of one value (the sondage platform) is not compared by a rank test
    assert t.test is not None and t.test.test == "non applicable"


# ----------------------------------------------------------------- weights


def test_equal_weights_give_unweighted_shares():
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: q_cat("Q29", ["Oui"] * 3 + ["Non"] * 7), "w": 2.0})
    t = tabulate_question(frame, q, None, weight="w")
    assert list(t.cells.columns) == CELL_COLUMNS + WEIGHTED_COLUMNS
    oui = cells_of(t).loc[("oui", "Ensemble")]
    assert (oui["count"], oui["base"], oui["effective_base"]) == (6, 20, pytest.approx(10))
    assert (oui["unweighted_count"], oui["unweighted_base"]) == (3, 10)
    assert oui["value"] == pytest.approx(30)
    assert oui["ci_low"] == pytest.approx(10.78, abs=0.005)


def test_unequal_weights_use_weighted_counts_and_kish_base():
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: q_cat("Q29", ["Oui", "Non", "Non", None]), "w": [3.0, 1.0, 1.0, 5.0]})
    oui = cells_of(tabulate_question(frame, q, None, weight="w")).loc[("oui", "Ensemble")]
    assert oui["count"] == 3 and oui["base"] == 5
    assert oui["value"] == pytest.approx(60)
    assert oui["effective_base"] == pytest.approx(25 / 11)
    with pytest.raises(ValidationError):
        tabulate_question(frame.assign(w=[1.0, -1.0, 1.0, 1.0]), q, None, weight="w")


# ----------------------------------------------------------------- tests of association


def test_association_test_on_agresti_frame():
    q = Question(
        id="P1", harmonised="party", level="respondent", type="single", wording="Parti",
        raw="P", codes=(Code(1, "dem", "Démocrate"), Code(2, "ind", "Indépendant"), Code(3, "rep", "Républicain")),
    )
    parties = ["Démocrate", "Indépendant", "Républicain"]
    rows = []
    for gender, counts in zip(["Femme", "Homme"], [[762, 327, 468], [484, 239, 477]], strict=True):
        for party, n in zip(parties, counts, strict=True):
            rows += [(gender, party)] * n
    frame = pd.DataFrame(
        {"gender": cat([r[0] for r in rows], ["Femme", "Homme"]), "party": cat([r[1] for r in rows], parties)}
    )
    t = tabulate_question(frame, q, "gender")
    assert t.test is not None and t.test.test == PEARSON
    assert t.test.statistic == pytest.approx(30.07, abs=0.005)
    assert t.test.df == 2 and t.test.pvalue == pytest.approx(2.95e-7, rel=0.01)
    tf = t.tests_frame()
    assert list(tf.columns) == TEST_COLUMNS
    assert tf.iloc[0]["answer_key"] == "all" and tf.iloc[0]["dimension"] == "gender"
    assert tabulate_question(frame, q, None).test is None


def test_nsp_excluded_from_the_test():
    q = CB.question("Q29")
    frame = pd.DataFrame(
        {
            q.harmonised: q_cat("Q29", ["Oui"] * 20 + ["Non"] * 20 + ["Ne se prononce pas"] * 30),
            "role": cat(["Élu·e"] * 10 + ["Agent"] * 10 + ["Élu·e"] * 10 + ["Agent"] * 10 + ["Élu·e"] * 30, ROLES),
        }
    )
    t = tabulate_question(frame, q, "role")
    assert t.test is not None and t.test.n == 40
    assert t.test.statistic == pytest.approx(0.0)


def test_multiple_response_has_one_test_per_option():
    q = CB.question("Q08")
    rng = np.random.default_rng(5)
    n = 80
    frame = pd.DataFrame({c: pd.array(rng.random(n) < 0.5, dtype="boolean") for c in q.columns()})
    frame["role"] = cat(rng.choice(ROLES, n), ROLES)
    t = tabulate_question(frame, q, "role")
    assert t.test is None
    assert list(t.option_tests) == [o.key for o in q.options]
    # rows that checked the exclusive « ne se prononce pas » are out of the option's test
    keep = ~frame["digital_contributions__nsp"].to_numpy(dtype=bool)
    sel = frame["digital_contributions__valoriser"].to_numpy(dtype=bool)[keep]
    elu = (frame["role"] == "Élu·e").to_numpy()[keep]
    table = [[np.sum(sel & elu), np.sum(sel & ~elu)], [np.sum(~sel & elu), np.sum(~sel & ~elu)]]
    assert t.option_tests["valoriser"] == association_test(table)
    assert len(t.tests_frame()) == len(q.options)


def test_ranking_test_is_on_first_choice():
    q = CB.question("Q07")
    rng = np.random.default_rng(1)
    n = 40
    ranks = np.array([rng.permutation(7) + 1 for _ in range(n)])
    frame = pd.DataFrame({c: pd.array(ranks[:, i], dtype="Int8") for i, c in enumerate(q.columns())})
    frame["role"] = cat(rng.choice(ROLES, n), ROLES)
    t = tabulate_question(frame, q, "role", permutations=99)
    assert list(t.option_tests) == ["first"]
    first = cells_of(t, "first_share")
    keys = [c.key for c in q.codes]
    table = first["count"].unstack("dimension_value").loc[keys, ROLES].to_numpy()
    assert t.test == association_test(table, permutations=99)


# ----------------------------------------------------------------- level / edition


def _synthetic_frames(seed=0, n=60, n_tools=30):
    rng = np.random.default_rng(seed)
    frames = {}
    for level, size in (("respondent", n), ("tool", n_tools), ("bp", 25)):
        df = {}
        for q in CB.at_level(level):
            if q.is_categorical:
                labels = q.labels()
                v = rng.choice([*labels, None], size=size).astype(object)
                df[q.harmonised] = cat(v, labels, ordered=q.type in ("ordinal", "band"))
            elif q.type == "multiple":
                answered = rng.random(size) > 0.1
                for c in q.columns():
                    df[c] = pd.array(np.where(answered, rng.random(size) < 0.4, None), dtype="boolean")
            elif q.type == "ranking":
                ranks = np.array([rng.permutation(len(q.codes)) + 1 for _ in range(size)])
                for i, c in enumerate(q.columns()):
                    df[c] = pd.array(ranks[:, i], dtype="Int8")
            elif q.type == "numeric":
                lo, hi = q.range
                df[q.harmonised] = pd.array(rng.integers(int(lo), int(min(hi, lo + 20)), size), dtype="Int64")
            else:
                df[q.harmonised] = pd.array(["texte"] * size, dtype="string")
        frames[level] = pd.DataFrame(df)
    frames["tool"]["collectivity_type"] = cat(
        rng.choice(CB.question("Q01").labels(), n_tools), CB.question("Q01").labels()
    )
    return frames


DIMS = {
    "respondent": ["collectivity_type", "role"],
    "tool": ["tool_type", "collectivity_type"],
    "bp": ["bp_territory_kind"],
}


def test_tabulate_edition_schema_order_and_coverage():
    frames = _synthetic_frames()
    before = {k: v.copy() for k, v in frames.items()}
    res = tabulate_edition(frames, CB, DIMS, permutations=49)
    assert isinstance(res, TabulationResult)
    assert list(res.cells.columns) == CELL_COLUMNS
    assert list(res.tests.columns) == TEST_COLUMNS
    for k in frames:  # inputs untouched
        pd.testing.assert_frame_equal(frames[k], before[k])
    c = res.cells
    tabulated = list(dict.fromkeys(c["question_id"]))
    expected = [q.id for q in CB.questions if q.type != "text"]
    assert tabulated == expected  # codebook order, text skipped
    # every question has the Ensemble column and each dimension of its level, never itself
    for q in CB.questions:
        if q.type == "text":
            continue
        dims = list(dict.fromkeys(c.loc[c["question_id"] == q.id, "dimension"]))
        assert dims == ["ensemble"] + [d for d in DIMS[q.level] if d != q.harmonised]
    assert set(c.loc[c["dimension"] == "ensemble", "dimension_value"]) == {"Ensemble"}
    # shares in percent, intervals around them
    pct = c[c["statistic"].isin(["share", "top2_share", "cumulative_share", "first_share", "top3_share"])]
    ok = pct["base"] > 0
    assert pct.loc[ok, "value"].between(0, 100).all()
    assert (pct.loc[ok, "ci_low"] <= pct.loc[ok, "value"] + 1e-9).all()
    assert (pct.loc[ok, "value"] <= pct.loc[ok, "ci_high"] + 1e-9).all()
    assert (c["effective_base"] == c["base"]).all()  # unweighted
    # deterministic
    again = tabulate_edition(frames, CB, DIMS, permutations=49)
    pd.testing.assert_frame_equal(res.cells, again.cells)
    pd.testing.assert_frame_equal(res.tests, again.tests)
    # one test per question × dimension (per option for multiple)
    q08 = res.tests[res.tests["question_id"] == "Q08"]
    assert len(q08) == 2 * len(CB.question("Q08").options)


def test_missing_level_is_skipped_and_missing_column_raises():
    frames = _synthetic_frames()
    res = tabulate_edition({"respondent": frames["respondent"]}, CB, DIMS, permutations=9)
    assert set(res.cells["level"]) == {"respondent"}
    broken = frames["respondent"].drop(columns=["open_data_portal"])
    with pytest.raises(ValidationError):
        tabulate_edition({"respondent": broken}, CB, DIMS, permutations=9)
    with pytest.raises(ValidationError):
        tabulate_level(frames["respondent"], [CB.question("Q29")], ["no_such_dimension"])


def test_unknown_label_raises():
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: pd.Series(["Oui", "Peut-être"])})
    with pytest.raises(ValidationError, match="Peut-être"):
        tabulate_question(frame, q, None)
    # plain strings with known labels are accepted
    ok = tabulate_question(pd.DataFrame({q.harmonised: ["Oui", "Non", None]}), q, None)
    assert cells_of(ok).loc[("oui", "Ensemble"), "count"] == 1


def test_text_question_is_refused():
    q = CB.question("Q12")
    with pytest.raises(ValueError):
        tabulate_question(pd.DataFrame({q.harmonised: ["x"]}), q, None)


def test_tabulate_question_does_not_mutate_input():
    q = CB.question("Q09")
    frame = pd.DataFrame(
        {
            q.harmonised: q_cat("Q09", ["Peu important", None, "Très important"]),
            "role": cat(["Agent", "Élu·e", None], ROLES),
        }
    )
    before = frame.copy()
    tabulate_question(frame, q, "role")
    pd.testing.assert_frame_equal(frame, before)


# ----------------------------------------------------------------- no crosstab, no groupby-apply


@pytest.mark.parametrize("module", [tabulate_module, stats_module, disclosure_module])
def test_no_crosstab_nor_groupby_apply(module):
    tree = ast.parse(inspect.getsource(module))
    attrs = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "crosstab" not in attrs and "crosstab" not in names
    assert "groupby" not in attrs
    assert "apply" not in attrs


# ----------------------------------------------------------------- property tests

LABELS = CB.question("Q29").labels()  # Oui, Non, Ne se prononce pas
ANSWER = st.sampled_from([*LABELS, None])
ROLE = st.sampled_from([*ROLES, None])
EXCLUSIVE_MULTIPLE = Question(
    id="M1", harmonised="portal_multi", level="respondent", type="multiple", wording="Multiple",
    options=(Option("oui", "Oui", "M_1"), Option("non", "Non", "M_2"), Option("nsp", "Ne se prononce pas", "M_99")),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(ANSWER, ROLE, st.lists(st.booleans(), min_size=3, max_size=3)), min_size=1, max_size=40),
    extra=st.booleans(),
)
def test_property_counts_add_up_and_intervals_bracket_values(rows, extra):
    q = CB.question("Q29")
    answers = [r[0] for r in rows]
    frame = pd.DataFrame({q.harmonised: cat(answers, LABELS), "role": cat([r[1] for r in rows], ROLES)})
    # multiple-response version: the single answer is selected, plus (optionally) extra options
    for j, o in enumerate(EXCLUSIVE_MULTIPLE.options):
        col = [None if a is None else (a == o.label) or (extra and r[2][j]) for a, r in zip(answers, rows, strict=True)]
        frame[f"portal_multi__{o.key}"] = pd.array(col, dtype="boolean")
    res = tabulate_level(frame, [q, EXCLUSIVE_MULTIPLE], ["role"], permutations=19)
    c = res.cells
    single = c[(c["question_id"] == "Q29")]
    sums = single.groupby(["dimension", "dimension_value"])[["count", "base"]].agg({"count": "sum", "base": "first"})
    assert (sums["count"] == sums["base"]).all()
    pos = c[c["base"] > 0]
    assert pos["value"].between(0, 100).all()
    assert (pos["ci_low"] <= pos["value"]).all() and (pos["value"] <= pos["ci_high"]).all()
    assert c.loc[c["base"] == 0, "value"].isna().all()
    multi = c[c["question_id"] == "M1"].set_index(["dimension", "dimension_value", "answer_key"])["value"]
    one = single.set_index(["dimension", "dimension_value", "answer_key"])["value"]
    both = pd.concat({"multi": multi, "single": one}, axis=1).dropna()
    assert (both["multi"] >= both["single"] - 1e-9).all()
    if not extra:
        np.testing.assert_allclose(both["multi"], both["single"])
    assert not np.any(np.isnan(c["count"]))


def test_question_table_with_custom_codebook():
    q = Question(id="X1", harmonised="x", level="respondent", type="single", wording="X", raw="X",
                 codes=(Code(1, "a", "A"), Code(2, "b", "B")))
    cb = Codebook(edition="t", title="t", questions=(q,), sources={}, identifiers={})
    res = tabulate_edition({"respondent": pd.DataFrame({"x": cat(["A", "B", "B"], ["A", "B"])})}, cb, {})
    assert res.tests.empty and list(res.tests.columns) == TEST_COLUMNS
    assert res.cells["value"].tolist() == pytest.approx([100 / 3, 200 / 3])
