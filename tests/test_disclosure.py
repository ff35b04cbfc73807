"""Tests of barometre.disclosure: primary and secondary suppression, checks, merging."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barometre.codebook import load_codebook
from barometre.disclosure import (
    MERGED_LABEL,
    apply_disclosure,
    check_disclosure,
    merge_small_categories,
    publishable,
)
from barometre.errors import BarometreError
from barometre.tabulate import tabulate_level

ROOT = Path(__file__).resolve().parents[1]
CB = load_codebook(ROOT / "codebooks" / "2017.yaml")
ROLES = ["Élu·e", "Agent"]
COLL = CB.question("Q01").labels()


def cat(values, labels, ordered=False):
    return pd.Categorical(list(values), categories=list(labels), ordered=ordered)


def frame_from_counts(
    qref: str, counts: dict[str, dict[str, int]], dimension: str = "role", dim_labels=ROLES
) -> pd.DataFrame:
    """Respondent frame with ``counts[dimension value][answer label]`` rows."""
    q = CB.question(qref)
    answers, dims = [], []
    for dv, by_answer in counts.items():
        for label, n in by_answer.items():
            answers += [label] * n
            dims += [dv] * n
    return pd.DataFrame(
        {
            q.harmonised: cat(answers, q.labels(), ordered=q.type in ("ordinal", "band")),
            dimension: cat(dims, dim_labels),
        }
    )


def tab(qref: str, frame: pd.DataFrame, dims=("role",)) -> pd.DataFrame:
    return tabulate_level(frame, [CB.question(qref)], list(dims), codebook=CB, permutations=9).cells


def cell(
    cells: pd.DataFrame, dimension_value: str, answer_key: str, statistic: str = "share", dimension: str | None = None
) -> pd.Series:
    sel = (
        (cells["dimension_value"] == dimension_value)
        & (cells["answer_key"] == answer_key)
        & (cells["statistic"] == statistic)
    )
    if dimension is not None:
        sel &= cells["dimension"] == dimension
    rows = cells[sel]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# ----------------------------------------------------------------- brute force


ADDITIVE = {("share", "single"), ("share", "ordinal"), ("share", "band"), ("first_share", "ranking")}


def single_subtractions(pub: pd.DataFrame) -> list[str]:
    """Every suppressed cell that one subtraction of published numbers gives back.

    For each additive table (answers × dimension values, with the Ensemble column
    and the base row as totals), and each row/column: total − Σ other published
    cells recovers a cell as soon as it is the only unknown of its line.
    """
    found: list[str] = []
    for (qid, stat), g in pub.groupby(["question_id", "statistic"], sort=False):
        qtype = g["question_type"].iloc[0]
        ens = g[g["dimension"] == "ensemble"].set_index("answer_key")
        if (stat, qtype) in ADDITIVE and not ens.empty:  # the Ensemble column alone
            unknown = int(ens["count"].isna().sum()) + int(pd.isna(ens["base"].iloc[0]))
            if unknown == 1:
                found.append(f"{qid}/{stat}/ensemble")
        for dim, t in g[g["dimension"] != "ensemble"].groupby("dimension", sort=False):
            counts = t.pivot(index="answer_key", columns="dimension_value", values="count")
            bases = t.groupby("dimension_value")["base"].first()
            counts["__ens__"] = ens["count"]
            bases["__ens__"] = ens["base"].iloc[0]
            lines = []
            if (stat, qtype) in ADDITIVE:
                for col in counts.columns:  # column: base − Σ answers
                    lines.append((f"{qid}/{stat}/{dim}/col {col}", list(counts[col]), bases[col]))
            for key in counts.index:  # row: Ensemble − Σ dimension values
                lines.append(
                    (f"{qid}/{stat}/{dim}/row {key}", list(counts.loc[key].drop("__ens__")), counts.loc[key, "__ens__"])
                )
            lines.append((f"{qid}/{stat}/{dim}/bases", list(bases.drop("__ens__")), bases["__ens__"]))
            for name, parts, total in lines:
                unknown = [p for p in parts if pd.isna(p)] + ([total] if pd.isna(total) else [])
                if len(unknown) == 1:
                    found.append(name)
    return found


def primary_only(cells: pd.DataFrame, min_cell: int = 3) -> pd.DataFrame:
    out = cells.copy()
    out["suppressed"] = (out["count"] > 0) & (out["count"] < min_cell)
    out["base_suppressed"] = False
    out["small_base"] = out["base"] < 30
    return out


# ----------------------------------------------------------------- primary / secondary


def test_primary_cells_one_and_two_are_suppressed_zero_is_not():
    frame = frame_from_counts(
        "Q29",
        {"Élu·e": {"Oui": 1, "Non": 10}, "Agent": {"Oui": 2, "Non": 12, "Ne se prononce pas": 5}},
    )
    cells = tab("Q29", frame)
    out = apply_disclosure(cells)
    assert list(out.columns[-3:]) == ["small_base", "suppressed", "base_suppressed"]
    assert cell(out, "Élu·e", "oui")["suppressed"]  # 1
    assert cell(out, "Agent", "oui")["suppressed"]  # 2
    assert not cell(out, "Élu·e", "nsp")["suppressed"]  # 0: never suppressed
    assert not out.loc[out["count"] == 0, "suppressed"].any()
    assert check_disclosure(out) == []
    assert single_subtractions(publishable(out)) == []


def test_secondary_a_column_with_one_suppressed_cell_gets_a_second():
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: cat(["Oui"] + ["Non"] * 5 + ["Ne se prononce pas"] * 10, q.labels())})
    cells = tabulate_level(frame, [q], []).cells
    out = apply_disclosure(cells).set_index("answer_key")
    assert out.loc["oui", "suppressed"]  # primary (1)
    assert out.loc["non", "suppressed"]  # secondary: next smallest non-zero (5)
    assert not out.loc["nsp", "suppressed"]  # 10 stays
    # without the secondary cell, base − visible cells would give the 1 back
    assert single_subtractions(publishable(primary_only(cells))) != []
    assert single_subtractions(publishable(out.reset_index())) == []


def test_brute_force_no_single_subtraction_recovers_a_suppressed_cell():
    rng = np.random.default_rng(11)
    q = CB.question("Q15")  # 4 codes + NSP
    n = 70
    p = np.array([0.55, 0.2, 0.12, 0.03, 0.1])
    answers = rng.choice(q.labels(), size=n, p=p)
    frame = pd.DataFrame(
        {
            q.harmonised: cat(answers, q.labels()),
            "collectivity_type": cat(rng.choice(COLL[:4], size=n, p=[0.6, 0.25, 0.1, 0.05]), COLL),
            "role": cat(rng.choice(ROLES, size=n, p=[0.25, 0.75]), ROLES),
        }
    )
    cells = tabulate_level(frame, [q], ["collectivity_type", "role"], permutations=9).cells
    raw_problems = single_subtractions(publishable(primary_only(cells)))
    assert raw_problems  # the primary suppression alone is not enough here
    out = apply_disclosure(cells)
    assert single_subtractions(publishable(out)) == []
    assert check_disclosure(out) == []
    # the Ensemble column is shared by both dimensions: one flag per cell
    ens = out[out["dimension"] == "ensemble"]
    assert ens["answer_key"].is_unique


def test_row_with_only_zeros_beside_a_suppressed_ensemble_cell():
    # two respondents without a role answered « Oui »: the Ensemble cell (2) is
    # suppressed and every role cell of the row is 0, so a zero gets hidden too
    frame = frame_from_counts(
        "Q29", {"Élu·e": {"Non": 10, "Ne se prononce pas": 4}, "Agent": {"Non": 12, "Ne se prononce pas": 6}}
    )
    q = CB.question("Q29")
    extra = pd.DataFrame({q.harmonised: cat(["Oui", "Oui"], q.labels()), "role": cat([None, None], ROLES)})
    frame = pd.concat([frame, extra], ignore_index=True)
    out = apply_disclosure(tab("Q29", frame))
    assert cell(out, "Ensemble", "oui")["suppressed"]
    row = out[(out["answer_key"] == "oui") & (out["dimension"] == "role")]
    assert row["suppressed"].sum() >= 1
    assert check_disclosure(out) == []


def test_multiple_response_complement_rule_and_secondary_across_columns():
    q = CB.question("Q08")
    rows = []
    # transparence chosen by 9 of 10 élus (complement 1) and 15 of 20 agents
    for role, n, chosen in (("Élu·e", 10, 9), ("Agent", 20, 15)):
        for i in range(n):
            rows.append((role, i < chosen, i % 2 == 0))
    frame = pd.DataFrame({"role": cat([r[0] for r in rows], ROLES)})
    for o in q.options:
        col = [r[1] if o.key == "transparence" else (r[2] if o.key == "valoriser" else False) for r in rows]
        frame[f"{q.harmonised}__{o.key}"] = pd.array(col, dtype="boolean")
    cells = tabulate_level(frame, [q], ["role"], permutations=9).cells
    out = apply_disclosure(cells)
    assert cell(out, "Élu·e", "transparence")["suppressed"]  # base − count = 1
    assert cell(out, "Agent", "transparence")["suppressed"]  # secondary, smallest in the row
    assert not cell(out, "Ensemble", "transparence")["suppressed"]
    assert not cell(out, "Élu·e", "valoriser")["suppressed"]  # options are not additive
    assert check_disclosure(out) == []


def test_small_column_is_suppressed_whole_with_its_base_and_a_partner():
    counts = {
        "Commune": {"Oui": 20, "Non": 15},
        "Intercommunalité": {"Oui": 6, "Non": 5},
        "Métropole": {"Oui": 4, "Non": 4},
        "Service de l'État": {"Oui": 1},
    }
    frame = frame_from_counts("Q29", counts, "collectivity_type", COLL)
    out = apply_disclosure(tab("Q29", frame, ("collectivity_type",)))
    etat = out[out["dimension_value"] == "Service de l'État"]
    assert etat["suppressed"].all() and etat["base_suppressed"].all()
    metro = out[out["dimension_value"] == "Métropole"]  # next smallest base: Ensemble − bases would give the 1
    assert metro["base_suppressed"].all()
    pub = publishable(out)
    assert pub.loc[pub["dimension_value"] == "Service de l'État", "base"].isna().all()
    assert check_disclosure(out) == []
    assert single_subtractions(pub) == []


def test_cumulative_hidden_with_its_base_when_nsp_is_suppressed():
    q = CB.question("Q19")
    lab = q.labels()
    counts = {
        "Élu·e": {lab[0]: 6, lab[1]: 5, lab[2]: 4, "Ne se prononce pas": 1},
        "Agent": {lab[0]: 8, lab[1]: 6, lab[2]: 5, "Ne se prononce pas": 2},
    }
    out = apply_disclosure(tab("Q19", frame_from_counts("Q19", counts)), codebook=CB)
    cum = out[(out["statistic"] == "cumulative_share") & (out["dimension_value"] == "Élu·e")]
    assert cum["suppressed"].all() and cum["base_suppressed"].all()
    assert check_disclosure(out, codebook=CB) == []


def test_top2_follows_its_components():
    counts = {
        "Élu·e": {"Peu important": 8, "Assez important": 2, "Très important": 9},
        "Agent": {"Peu important": 9, "Assez important": 1, "Très important": 12},
    }
    out = apply_disclosure(tab("Q09", frame_from_counts("Q09", counts)), codebook=CB)
    assert cell(out, "Élu·e", "assez_important")["suppressed"]
    assert cell(out, "Élu·e", "top2", "top2_share")["suppressed"]
    assert check_disclosure(out, codebook=CB) == []
    ok = {
        "Élu·e": {"Peu important": 8, "Assez important": 5, "Très important": 9},
        "Agent": {"Peu important": 9, "Assez important": 6, "Très important": 12},
    }
    out2 = apply_disclosure(tab("Q09", frame_from_counts("Q09", ok)), codebook=CB)
    assert not out2["suppressed"].any()


def test_numeric_mean_of_two_is_hidden_with_its_base_and_median_follows():
    q = CB.question("Q13")
    frame = pd.DataFrame(
        {
            q.harmonised: pd.array([2010, 2011, 2012, 2013, 2014, 2015, 2016, 2001, 2002], dtype="Int64"),
            "role": cat(["Élu·e"] * 7 + ["Agent"] * 2, ROLES),
        }
    )
    out = apply_disclosure(tabulate_level(frame, [q], ["role"]).cells)
    agent = out[out["dimension_value"] == "Agent"]
    assert agent["suppressed"].all() and agent["base_suppressed"].all()
    assert check_disclosure(out) == []
    pub = publishable(out)
    assert pub.loc[pub["dimension_value"] == "Agent", ["count", "base", "value"]].isna().all().all()


def test_ranking_tables_are_protected():
    q = CB.question("Q07")
    rng = np.random.default_rng(4)
    n = 30
    ranks = np.array([rng.permutation(7) + 1 for _ in range(n)])
    frame = pd.DataFrame({c: pd.array(ranks[:, i], dtype="Int8") for i, c in enumerate(q.columns())})
    frame["role"] = cat(["Élu·e"] * 8 + ["Agent"] * 22, ROLES)
    cells = tabulate_level(frame, [q], ["role"], permutations=9).cells
    assert check_disclosure(cells) != []
    out = apply_disclosure(cells)
    assert check_disclosure(out) == []
    assert single_subtractions(publishable(out)) == []


# ----------------------------------------------------------------- flags, views, checks


def test_small_base_flag_and_publishable_view():
    frame = frame_from_counts("Q29", {"Élu·e": {"Oui": 1, "Non": 10}, "Agent": {"Oui": 20, "Non": 15}})
    cells = tab("Q29", frame)
    out = apply_disclosure(cells, small_base=30)
    assert out.loc[out["dimension_value"] == "Élu·e", "small_base"].all()  # base 11
    assert not out.loc[out["dimension_value"] == "Agent", "small_base"].any()  # base 35
    pd.testing.assert_frame_equal(out[cells.columns], cells)  # figures untouched
    pub = publishable(out)
    hidden = out["suppressed"].to_numpy()
    assert pub.loc[hidden, ["count", "value", "ci_low", "ci_high"]].isna().all().all()
    assert pub.loc[~hidden, "count"].notna().all()
    assert (pub["base"].notna() == ~out["base_suppressed"]).all()
    with pytest.raises(BarometreError):
        publishable(cells)


def test_check_disclosure_reports_raw_cells():
    frame = frame_from_counts("Q29", {"Élu·e": {"Oui": 1, "Non": 10}, "Agent": {"Oui": 20, "Non": 15}})
    problems = check_disclosure(tab("Q29", frame))
    assert any("fewer than 3" in p for p in problems)
    assert check_disclosure(tab("Q29", frame), min_cell=1) == []


def test_apply_disclosure_does_not_mutate_and_is_deterministic():
    frame = frame_from_counts("Q29", {"Élu·e": {"Oui": 1, "Non": 10}, "Agent": {"Oui": 2, "Non": 15}})
    cells = tab("Q29", frame)
    before = cells.copy()
    a = apply_disclosure(cells)
    b = apply_disclosure(cells)
    pd.testing.assert_frame_equal(cells, before)
    pd.testing.assert_frame_equal(a, b)


def test_weighted_cells_use_respondent_counts():
    frame = frame_from_counts("Q29", {"Élu·e": {"Oui": 2, "Non": 10}, "Agent": {"Oui": 20, "Non": 15}})
    frame["w"] = 10.0
    cells = tabulate_level(frame, [CB.question("Q29")], ["role"], weight="w", permutations=9).cells
    out = apply_disclosure(cells)
    assert cell(out, "Élu·e", "oui")["count"] == 20  # weighted count is large…
    assert cell(out, "Élu·e", "oui")["suppressed"]  # …but only 2 respondents


# ----------------------------------------------------------------- merging


def test_merge_small_categories_groups_rare_values():
    values = ["Commune"] * 10 + ["Département"] * 6 + ["Service de l'État"] + ["Autre"] * 2 + [None]
    frame = pd.DataFrame({"collectivity_type": cat(values, COLL), "x": range(20)})
    before = frame.copy()
    out = merge_small_categories(frame, "collectivity_type", min_base=3)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out["collectivity_type"].cat.categories) == [
        "Commune",
        "Intercommunalité",
        "Métropole",
        "Département",
        "Région",
        MERGED_LABEL,
    ]
    counts = out["collectivity_type"].value_counts()
    assert counts[MERGED_LABEL] == 3 and counts["Commune"] == 10
    assert out["collectivity_type"].isna().sum() == 1


def test_merge_small_categories_grows_the_merged_group_until_publishable():
    values = ["Commune"] * 10 + ["Département"] * 6 + ["Service de l'État"]
    out = merge_small_categories(pd.DataFrame({"d": cat(values, COLL)}), "d", min_base=3)
    assert out["d"].value_counts()[MERGED_LABEL] == 7  # 1 + the next smallest (6)
    same = merge_small_categories(pd.DataFrame({"d": cat(["Commune"] * 4, COLL)}), "d")
    assert list(same["d"].cat.categories) == COLL
    with pytest.raises(BarometreError):
        merge_small_categories(pd.DataFrame({"d": cat(["Commune"], COLL)}), "nope")


# ----------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    table=st.lists(st.lists(st.integers(0, 7), min_size=3, max_size=3), min_size=2, max_size=4),
)
def test_property_protected_tables_leak_nothing(table):
    q = CB.question("Q29")
    labels = q.labels()
    dims = COLL[: len(table)]
    answers, dimv = [], []
    for dv, row in zip(dims, table, strict=True):
        for label, n in zip(labels, row, strict=True):
            answers += [label] * n
            dimv += [dv] * n
    if not answers:
        return
    frame = pd.DataFrame({q.harmonised: cat(answers, labels), "collectivity_type": cat(dimv, COLL)})
    cells = tabulate_level(frame, [q], ["collectivity_type"], permutations=9).cells
    out = apply_disclosure(cells)
    counts = out["count"].to_numpy()
    assert out.loc[(counts > 0) & (counts < 3), "suppressed"].all()
    assert check_disclosure(out) == []
    assert single_subtractions(publishable(out)) == []


def test_edition_wide_disclosure_has_no_violation():
    rng = np.random.default_rng(2)
    n = 50
    frames = {}
    df = {}
    for q in CB.at_level("respondent"):
        if q.is_categorical:
            df[q.harmonised] = cat(
                rng.choice([*q.labels(), None], n), q.labels(), ordered=q.type in ("ordinal", "band")
            )
        elif q.type == "multiple":
            for c in q.columns():
                df[c] = pd.array(rng.random(n) < 0.3, dtype="boolean")
        elif q.type == "ranking":
            ranks = np.array([rng.permutation(len(q.codes)) + 1 for _ in range(n)])
            for i, c in enumerate(q.columns()):
                df[c] = pd.array(ranks[:, i], dtype="Int8")
    frames["respondent"] = pd.DataFrame(df)
    cells = tabulate_level(
        frames["respondent"], CB.at_level("respondent"), ["collectivity_type", "role"], codebook=CB, permutations=9
    ).cells
    out = apply_disclosure(cells, codebook=CB)
    assert check_disclosure(out, codebook=CB) == []
    assert single_subtractions(publishable(out)) == []
