"""The publication layer against the disclosure audit: each leak of issue 10 on a tiny frame.

Every test builds a tiny edition, publishes it the old way (suppression question by
question, tests as computed) and checks that the attacker of :mod:`barometre.audit`
recovers a cell of fewer than three respondents; then publishes it through
:func:`barometre.publication.protect` and checks that no masked cell can be narrowed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barometre import audit
from barometre.codebook import load_codebook
from barometre.disclosure import apply_disclosure, publishable
from barometre.publication import (
    REASON_TEST,
    Policy,
    apply_merges,
    merge_maps,
    policy_summary,
    primary_codes,
    protect,
    publish_figures,
    publish_tests,
)
from barometre.tabulate import tabulate_level

ROOT = Path(__file__).resolve().parents[1]
CB = load_codebook(ROOT / "codebooks" / "2017.yaml")
POLICY = Policy()


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Respondents from (collectivity type, role, Q29 answer, Q05 answer or None) tuples."""
    cols = ["collectivity_type", "role", "open_data_portal", "function_staff"]
    out = pd.DataFrame(rows, columns=cols)
    for c in cols:
        q = CB.question(c)
        out[c] = pd.Categorical(out[c], categories=q.labels())
    return out


def tabulate(f: pd.DataFrame, questions=("Q01", "Q03", "Q05", "Q29")) -> tuple[pd.DataFrame, pd.DataFrame]:
    dims = ["collectivity_type", "role"]
    parts, tests = [], []
    for qid in questions:
        q = CB.question(qid)
        res = tabulate_level(f, [q], [d for d in dims if d != q.harmonised], codebook=CB, permutations=9)
        parts.append(res.cells)
        tests.append(res.tests)
    return pd.concat(parts, ignore_index=True), pd.concat(tests, ignore_index=True)


def attack(flags: pd.DataFrame, tests: pd.DataFrame | None, cells: pd.DataFrame,
           figures: pd.DataFrame | None = None, registry=()) -> pd.DataFrame:
    """The audit of what would be published: one row per masked cell."""
    public = publishable(flags)
    model, units = audit.build_model(CB, public, tests, figures, list(registry), {}, [])
    return audit.audit_cells(model, units, public, primary_codes(cells, 3), 0, 3)


def old_way(cells: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Per-question suppression, tests published as computed: what the pipeline did before."""
    return attack(apply_disclosure(cells, codebook=CB), tests, cells)


def failures(result: pd.DataFrame) -> int:
    return int((result["status"] == audit.FAILED).sum())


def base_rows() -> list[tuple]:
    rows = [("Commune", "Élu·e", "Oui", None)] * 9 + [("Commune", "Élu·e", "Non", None)] * 8
    rows += [("Commune", "Agent", "Oui", "Directeur·rice ou chef·fe de service")] * 7
    rows += [("Commune", "Agent", "Non", "Chargé·e de mission")] * 9
    rows += [("Intercommunalité", "Élu·e", "Oui", None)] * 5 + [
        ("Intercommunalité", "Agent", "Non", "Chargé·e de mission")
    ] * 6
    return rows


def labels_ok() -> None:
    assert "Chargé·e de mission" in CB.question("Q05").labels()


# ----------------------------------------------------------------- one test per leak


def test_tests_n_gives_back_the_masked_nsp_before_and_not_after():
    labels_ok()
    rows = [*base_rows(), ("Commune", "Agent", "Ne se prononce pas", "Chargé·e de mission")]
    cells, tests = tabulate(frame(rows), ("Q29",))
    assert failures(old_way(cells, tests)) > 0  # base − n = the one « ne se prononce pas »
    done = protect(cells, tests, CB, POLICY, {})
    assert failures(attack(done.cells, done.tests, cells)) == 0
    withheld = done.tests[~done.tests["published"]]
    assert (withheld["withheld_reason"] == REASON_TEST).all() and withheld["n"].isna().all()


def test_filter_bases_and_the_cross_published_twice():
    rows = (
        base_rows()
        + [("Métropole", "Élu·e", "Oui", None)] * 2
        + [("Métropole", "Agent", "Oui", "Chargé·e de mission")] * 5
    )
    cells, tests = tabulate(frame(rows))
    assert failures(old_way(cells, tests)) > 0  # Métropole élus = Q01 × role − Q05 base (agents)
    done = protect(cells, tests, CB, POLICY, {})
    assert failures(attack(done.cells, done.tests, cells)) == 0


def test_the_same_cross_twice_alone():
    rows = (
        base_rows() + [("Métropole", "Élu·e", "Oui", None)] + [("Métropole", "Agent", "Non", "Chargé·e de mission")] * 6
    )
    cells, tests = tabulate(frame(rows), ("Q01", "Q03"))
    done = protect(cells, tests, CB, POLICY, {})
    assert failures(attack(done.cells, done.tests, cells)) == 0
    pub = publishable(done.cells)
    # the élu·e of a Métropole is masked in both tables that print it
    q01 = pub[(pub.question_id == "Q01") & (pub.dimension_value == "Élu·e") & (pub.answer_label == "Métropole")]
    q03 = pub[(pub.question_id == "Q03") & (pub.dimension_value == "Métropole") & (pub.answer_label == "Élu·e")]
    assert q01["count"].isna().all() and q03["count"].isna().all()


def test_merges_are_the_same_in_every_level():
    resp = pd.DataFrame(
        {"collectivity_type": ["Commune"] * 5 + ["Département"] * 2 + ["Service de l'État"] + ["Métropole"] * 4}
    )
    tools = pd.DataFrame({"collectivity_type": ["Commune"] * 6 + ["Métropole"] * 2 + ["Département"] * 3})
    maps = merge_maps(
        {"respondent": resp, "tool": tools}, {"respondent": ["collectivity_type"], "tool": ["collectivity_type"]}, 3
    )
    assert set(maps) == {"collectivity_type"}
    assert set(maps["collectivity_type"]) == {"Département", "Service de l'État", "Métropole"}
    merged = [apply_merges(f, maps)["collectivity_type"].value_counts() for f in (resp, tools)]
    assert all(((vc == 0) | (vc >= 3)).all() for vc in merged)


def test_a_figure_that_would_give_a_cell_back_is_withheld():
    rows = (
        base_rows()
        + [("Métropole", "Élu·e", "Oui", None)] * 2
        + [("Métropole", "Agent", "Non", "Chargé·e de mission")] * 5
    )
    cells, tests = tabulate(frame(rows), ("Q01", "Q03"))
    done = protect(cells, tests, CB, POLICY, {})
    spec = {"id": "Z01", "definition": "élus de métropole", "unit": "respondents", "measure": "count",
            "question": "role", "keys": ["elu"], "filter": {"question": "collectivity_type", "keys": ["metropole"]}}
    fig = pd.DataFrame([{"id": "Z01", "component": "", "unit": "respondents", "measure": "count",
                         "numerator": 2.0, "denominator": np.nan, "value": 2.0, "ci_low": np.nan, "ci_high": np.nan}])
    before = attack(done.cells, done.tests, cells, fig, [spec])
    assert failures(before) > 0
    out = publish_figures(fig, [spec], CB, POLICY, publishable(done.cells), done.tests, {})
    assert out.loc[0, "disclosure_status"] == "suppressed" and np.isnan(out.loc[0, "value"])
    assert out.loc[0, "disclosure_reason"]


def test_tests_are_published_only_on_fully_published_tables():
    cells, tests = tabulate(frame(base_rows()), ("Q29",))
    flags = apply_disclosure(cells, codebook=CB)
    out = publish_tests(flags, tests)
    assert out["published"].all()  # nothing masked: every test stays
    flags.loc[(flags["dimension"] == "role") & (flags["answer_key"] == "oui"), "suppressed"] = True
    assert not publish_tests(flags, tests).set_index("dimension").loc["role", "published"]


def test_policy_summary_is_french_and_names_the_threshold():
    text = policy_summary(Policy.from_config({"min_cell": 3, "small_base": 30,
                                              "exemptions": [{"level": "bp", "reason": "faits publics"}]}))
    assert "moins de 3 répondants" in text and "exception" in text and "_" not in text


# ----------------------------------------------------------------- property


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["Commune", "Intercommunalité", "Métropole", "Département"]),
                          st.sampled_from(["Élu·e", "Agent"]),
                          st.sampled_from(["Oui", "Non", "Ne se prononce pas"])), min_size=8, max_size=40))
def test_random_small_editions_never_publish_a_recoverable_cell(draws):
    rows = [(c, r, a, "Chargé·e de mission" if r == "Agent" else None) for c, r, a in draws]
    cells, tests = tabulate(frame(rows))
    done = protect(cells, tests, CB, POLICY, {})
    assert failures(attack(done.cells, done.tests, cells)) == 0


def test_audit_summary_is_one_french_line(tmp_path):
    table = pd.DataFrame({c: [] for c in audit.AUDIT_COLUMNS})
    table.loc[0] = [
        "Q01",
        "respondent",
        "role",
        "Élu·e",
        "Métropole",
        "share",
        "",
        0,
        7,
        0,
        3,
        audit.RULE_PRIMARY,
        audit.PROTECTED,
    ]
    table.loc[1] = [
        "Q01",
        "respondent",
        "role",
        "Agent",
        "Métropole",
        "share",
        "",
        4,
        11,
        np.nan,
        np.nan,
        audit.RULE_SECONDARY,
        audit.PROTECTED,
    ]
    path = tmp_path / "disclosure_audit.csv"
    table.to_csv(path, index=False)
    line = audit.audit_summary(path)
    assert "\n" not in line and "2 cellules masquées" in line and "dont 1 sous le seuil" in line
    assert "couvrent encore tout l'intervalle protégé" in line  # no failure
    table.loc[0, "status"] = audit.FAILED
    table.to_csv(path, index=False)
    assert "1 peut être resserrée en deçà" in audit.audit_summary(path)
