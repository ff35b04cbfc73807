"""Properties of the tables the pipeline publishes, checked at pipeline level.

tests/test_tabulate.py has the unit-level property on one question (Q29). Here the properties run on
every categorical question of the real codebook, from raw answer codes (99 « ne sait pas »
included) through the cleaning's decoding and ``tabulate_question``, with the codebook's filters,
NSP rules, top-2 and cumulative bands — and once on the real published ``cells.csv``:

* counts add up to bases (single-answer questions), and each Ensemble count is the sum of the
  dimension columns plus the rows without a dimension value;
* « ne sait pas » is counted only as « Ne se prononce pas » (shown) or not at all (dropped);
* percentages are within [0, 100] and ci_low ≤ value ≤ ci_high;
* a multiple-response share is never below the matching single-answer share.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barometre.clean import decode_categorical
from barometre.codebook import NSP_LABEL, Option, Question, load_codebook
from barometre.tabulate import PERCENT_STATISTICS, tabulate_question
from conftest import EDITION, ROOT

CB = load_codebook(ROOT / "codebooks" / f"{EDITION}.yaml")
ROLE = CB.question("Q03")
ROLES = ROLE.labels()
#: Categorical questions whose filter (if any) is on the dimension used here (role).
QUESTIONS = [q for q in CB.questions if q.is_categorical and q.level in ("respondent", "tool")
             and (q.filter is None or q.filter.question == ROLE.id) and q.harmonised != ROLE.harmonised]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raw_rows(q: Question):
    """(raw answer code or NaN, role label or None) per row: codes of the question, 99, blanks."""
    codes = [float(c.code) for c in q.codes] + [float(CB.missing_code), np.nan]
    return st.lists(st.tuples(st.sampled_from(codes), st.sampled_from([*ROLES, None])), min_size=0, max_size=30)


def frame_from(q: Question, rows) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    codes = np.array([r[0] for r in rows], dtype=float)
    roles = [r[1] for r in rows]
    decoded, _ = decode_categorical(pd.Series(codes, name=q.raw), q, CB.missing_code)
    frame = pd.DataFrame({q.harmonised: decoded, ROLE.harmonised: pd.Categorical(roles, categories=ROLES)})
    return frame, codes, np.array(roles, dtype=object)


def by_column(cells: pd.DataFrame, statistic: str = "share") -> dict[str, pd.DataFrame]:
    sel = cells[cells["statistic"] == statistic]
    return {v: g.set_index("answer_key") for v, g in sel.groupby("dimension_value", sort=False)}


@SETTINGS
@given(data=st.data())
def test_single_answer_tables_from_raw_codes(data):
    """For any codebook question and any raw answers (codes, 99, blanks) and roles (some missing):
    in every column the answer counts add up to the base; the base holds the substantive answers plus
    the 99s only when the question shows « Ne se prononce pas »; 99 is never counted in a substantive
    answer; each Ensemble count is the sum of the role columns plus the rows without a role; shares
    are in [0, 100] within their Wilson interval; top-2 is the sum of its two shares; cumulative
    shares never decrease and end at 100 % minus the NSP share (same base)."""
    q = data.draw(st.sampled_from(QUESTIONS), label="question")
    rows = data.draw(raw_rows(q), label="rows")
    frame, codes, roles = frame_from(q, rows)
    asked = np.ones(len(rows), dtype=bool)
    if q.filter is not None:
        asked = np.isin(roles, [ROLE.label_of(k) for k in q.filter.keys])
    ensemble = tabulate_question(frame, q, None, codebook=CB, test=False).cells
    crossed = tabulate_question(frame, q, ROLE.harmonised, codebook=CB, test=False).cells
    cells = pd.concat([ensemble, crossed], ignore_index=True)

    keys = [c.key for c in q.codes] + (["nsp"] if q.shows_nsp else [])
    for column, table in {**by_column(ensemble), **by_column(crossed)}.items():
        in_col = asked & (np.ones(len(rows), dtype=bool) if column == "Ensemble" else (roles == column))
        assert list(table.index) == keys
        assert table["count"].sum() == pytest.approx(table["base"].iloc[0])
        for c in q.codes:
            assert table.loc[c.key, "count"] == int(np.sum(in_col & (codes == c.code))), (q.id, column, c.key)
        n99 = int(np.sum(in_col & (codes == CB.missing_code)))
        expected_base = int(np.sum(in_col & np.isin(codes, [c.code for c in q.codes]))) + (n99 if q.shows_nsp else 0)
        assert table["base"].iloc[0] == expected_base
        if q.shows_nsp:
            assert table.loc["nsp", "count"] == n99
    ens = by_column(ensemble)["Ensemble"]["count"]
    cols = by_column(crossed)
    no_role = asked & np.array([r is None for r in roles], dtype=bool)
    for key in keys:
        label = q.label_of(key)
        missing_dim = int(np.sum(no_role & (frame[q.harmonised] == label).to_numpy(dtype=bool)))
        assert ens[key] == sum(t.loc[key, "count"] for t in cols.values()) + missing_dim

    pct = cells[cells["statistic"].isin(PERCENT_STATISTICS)]
    pos = pct[pct["base"] > 0]
    assert pos["value"].between(0, 100).all()
    assert (pos["ci_low"] <= pos["value"] + 1e-9).all() and (pos["value"] <= pos["ci_high"] + 1e-9).all()
    assert (pos["ci_low"] >= 0).all() and (pos["ci_high"] <= 100 + 1e-9).all()
    assert pct.loc[pct["base"] == 0, "value"].isna().all()
    if q.top2:
        for column, table in by_column(cells, "top2_share").items():
            shares = by_column(cells)[column]
            assert table["count"].iloc[0] == shares.loc[list(q.top2), "count"].sum()
    if q.cumulative:
        for column, table in by_column(cells, "cumulative_share").items():
            values = table["value"].to_numpy()
            if table["base"].iloc[0] > 0:
                # one base with the shares: the last band reaches 100 % minus the « ne se prononce pas » share
                nsp = by_column(cells)[column]["value"].get("nsp", 0.0)
                assert np.all(np.diff(values) >= -1e-9) and values[-1] + nsp == pytest.approx(100)


@SETTINGS
@given(data=st.data())
def test_multiple_response_share_is_never_below_the_single_share(data):
    """Asking the same question as « several answers possible » (each row keeps its single answer
    and may tick others) never lowers a share below the single-answer share, in any column; with no
    extra tick both tables are equal."""
    q = data.draw(st.sampled_from([q for q in QUESTIONS if q.filter is None]), label="question")
    rows = data.draw(raw_rows(q), label="rows")
    frame, _, _ = frame_from(q, rows)
    keys = [c.key for c in q.codes] + (["nsp"] if q.shows_nsp else [])
    labels = q.labels()
    multi = Question(
        id=q.id + "M",
        harmonised=q.harmonised + "_multi",
        level=q.level,
        type="multiple",
        wording=q.wording,
        options=tuple(Option(k, lab, f"M_{k}") for k, lab in zip(keys, labels, strict=True)),
    )
    extra = data.draw(st.lists(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)),
                               min_size=len(rows), max_size=len(rows)), label="extra ticks")
    answers = frame[q.harmonised].astype(object)
    for j, (key, label) in enumerate(zip(keys, labels, strict=True)):
        col = [None if pd.isna(a) else (a == label) or extra[i][j] for i, a in enumerate(answers)]
        frame[f"{multi.harmonised}__{key}"] = pd.array(col, dtype="boolean")
    for dim in (None, ROLE.harmonised):
        single = tabulate_question(frame, q, dim, codebook=CB, test=False).cells
        several = tabulate_question(frame, multi, dim, codebook=CB, test=False).cells
        s = single[single["statistic"] == "share"].set_index(["dimension_value", "answer_key"])["value"]
        m = several.set_index(["dimension_value", "answer_key"])["value"]
        both = pd.concat({"single": s, "multiple": m}, axis=1).dropna()
        assert (both["multiple"] >= both["single"] - 1e-9).all()
        if not any(any(e) for e in extra):
            np.testing.assert_allclose(both["multiple"], both["single"])


@pytest.mark.e2e
def test_published_cells_respect_the_same_properties(built_project):
    """On the real results/2017/tables/cells.csv: where nothing is suppressed, single-answer counts add
    up to their base; every published percentage is in [0, 100]; every published value lies within
    its interval."""
    cells = pd.read_csv(built_project / "results/2017/tables/cells.csv")
    single = cells[(cells["statistic"] == "share") & cells["question_type"].isin(["single", "ordinal", "band"])]
    n_tables = 0
    for _, t in single.groupby(["question_id", "dimension", "dimension_value"], sort=False):
        if t["count"].notna().all() and t["base"].notna().all():
            assert t["count"].sum() == t["base"].iloc[0]
            n_tables += 1
    assert n_tables > 50
    pct = cells[cells["statistic"].isin(PERCENT_STATISTICS) & cells["value"].notna()]
    assert pct["value"].between(0, 100).all()
    with_ci = cells[cells["value"].notna() & cells["ci_low"].notna()]
    assert ((with_ci["ci_low"] <= with_ci["value"] + 1e-9) & (with_ci["value"] <= with_ci["ci_high"] + 1e-9)).all()
    assert len(with_ci) > 500
    assert not (cells["answer_label"] == NSP_LABEL).any() or set(
        cells.loc[cells["answer_label"] == NSP_LABEL, "answer_key"]) == {"nsp"}
