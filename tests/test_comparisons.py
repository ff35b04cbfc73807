"""Tests of barometre.comparisons: letters, multiplicity adjustment, the « significative » check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest

from barometre.comparisons import (
    add_letters,
    adjust_tests,
    column_letter,
    column_letters_legend,
    hide_letters,
    is_higher,
    is_significant,
    pairwise_tests,
    rule_text,
)


def _cells(values: dict[str, tuple[float, float]], *, statistic="share", answer="oui") -> pd.DataFrame:
    """One table: dimension value → (count, base), plus its « Ensemble » column."""
    rows = []
    for dim, dval in [("ensemble", "Ensemble")] + [("type", v) for v in values]:
        count, base = (
            (sum(c for c, _ in values.values()), sum(b for _, b in values.values()))
            if dim == "ensemble"
            else values[dval]
        )
        rows.append(
            dict(question_id="Q1", dimension=dim, dimension_value=dval, answer_key=answer, statistic=statistic,
                 count=count, base=base, effective_base=base, value=100 * count / base, ci_low=0.0, ci_high=100.0)
        )
    return pd.DataFrame(rows)


def test_column_letters():
    assert [column_letter(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]


def test_pairwise_z_test_is_the_pooled_two_proportion_test():
    cells = _cells({"A": (10, 50), "B": (30, 50)})
    t = pairwise_tests(cells)
    assert len(t) == 1 and (t["higher"].iloc[0], t["lower"].iloc[0]) == ("B", "A")
    assert t["pvalue"].iloc[0] == pytest.approx(proportions_ztest([30, 10], [50, 50])[1])


def test_letters_mark_the_higher_column_under_holm():
    cells = _cells({"A": (10, 50), "B": (30, 50), "C": (12, 50)})
    out = add_letters(cells)
    letters = out.set_index("dimension_value")["letters"]
    # B (60 %) is above A (20 %) and C (24 %); A and C do not differ
    assert letters["B"] == "AC" and letters["A"] == "" and letters["C"] == "" and letters["Ensemble"] == ""
    assert column_letters_legend(out, "Q1", "type") == {"A": "A", "B": "B", "C": "C"}
    assert is_higher(out, "Q1", "type", "oui", "B", "C") and not is_higher(out, "Q1", "type", "oui", "C", "A")


def test_holm_can_remove_a_letter_that_bh_keeps():
    # B (34 %) against A and C (20 % each): two raw p-values of 0.026 (A = C is not a test).
    # Holm: 2 × 0.026 > 0.05, no letter; Benjamini–Hochberg: 0.026 < 0.05, both letters.
    cells = _cells({"A": (20, 100), "B": (34, 100), "C": (20, 100)})
    raw = pairwise_tests(cells)
    assert raw["pvalue"].tolist() == pytest.approx([0.0258] * 2, abs=1e-4)
    holm = add_letters(cells, {"comparisons": {"adjust": "holm"}}).set_index("dimension_value")["letters"]
    bh = add_letters(cells, {"comparisons": {"adjust": "bh"}}).set_index("dimension_value")["letters"]
    assert (holm == "").all()
    assert bh["B"] == "AC" and (bh.drop("B") == "").all()


def test_means_use_welch_t_test_from_the_intervals():
    mean, sd, n = np.array([3.0, 4.0]), np.array([1.0, 1.5]), np.array([20.0, 25.0])
    q = sps.t.ppf(0.975, n - 1)
    rows = [dict(question_id="Q1", dimension="type", dimension_value=v, answer_key="mean", statistic="mean",
                 count=n[i], base=n[i], effective_base=n[i], value=mean[i],
                 ci_low=mean[i] - q[i] * sd[i] / np.sqrt(n[i]), ci_high=mean[i] + q[i] * sd[i] / np.sqrt(n[i]))
            for i, v in enumerate("AB")]
    t = pairwise_tests(pd.DataFrame(rows))
    expected = sps.ttest_ind_from_stats(4.0, 1.5, 25, 3.0, 1.0, 20, equal_var=False).pvalue
    assert t["pvalue"].iloc[0] == pytest.approx(expected)


def test_adjusted_global_tests_and_the_significance_check():
    tests = pd.DataFrame({"question_id": ["Q1", "Q2", "Q3", "Q4"], "dimension": ["type"] * 4,
                          "answer_key": ["all"] * 4, "pvalue": [0.001, 0.02, 0.04, np.nan]})
    out = adjust_tests(tests)
    assert out["p_adjusted"].tolist()[:3] == pytest.approx([0.003, 0.04, 0.04])
    assert out["adjust_method"].tolist() == ["Holm", "Holm", "Holm", ""]
    assert is_significant(out, "Q1", "type") and is_significant(out, "Q2", "type")
    assert not is_significant(out, "Q4", "type")
    assert not is_significant(
        adjust_tests(tests, {"comparisons": {"alpha": 0.05, "adjust": "holm"}}), "Q3", "type", alpha=0.01
    )
    with pytest.raises(KeyError):
        is_significant(tests, "Q1", "type")


def test_rule_text_is_french_and_names_the_method():
    assert "Holm" in rule_text({}) and "Benjamini-Hochberg" in rule_text({"comparisons": {"adjust": "bh"}})
    assert "« A » sous la colonne B" in rule_text({})
    with pytest.raises(ValueError):
        rule_text({"comparisons": {"adjust": "bonferroni"}})


def test_significance_words_follow_the_adjusted_test():
    from barometre.comparisons import significance_words

    tests = adjust_tests(pd.DataFrame({"question_id": ["Q1", "Q2", "Q3"], "dimension": ["type"] * 3,
                                       "answer_key": ["all"] * 3, "pvalue": [0.001, 0.03, 0.04]}))
    assert significance_words(tests, "Q1", "type").startswith("significative (p ajustée = 0,003, correction de Holm)")
    # p = 0.03 is below 5 % before the correction, not after: the narrative may not call it significant
    assert significance_words(tests, "Q2", "type").startswith("non significative après correction")
    assert significance_words(tests, "Q9", "type") == "non testée"


def test_templates_never_write_significant_themselves():
    """« significatif / significative » in a report comes from significance_words() only, never from a template."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "report_templates"
    offenders = [f"{p.name}:{i}" for p in sorted(root.rglob("*")) if p.is_file()
                 for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if re.search(r"(?i)significati", line) and "significance_words" not in line]
    assert offenders == [], f"templates calling a difference significant by themselves: {offenders}"


def test_a_column_nobody_is_in_gets_no_letter():
    """An empty category (base 0) is no column of the printed tables: the letters skip it, A B C not A B D."""
    cells = _cells({"A": (10, 50), "B": (30, 50), "C": (12, 50)})
    empty = cells.iloc[[1]].assign(dimension_value="Vide", count=0, base=0, effective_base=0, value=float("nan"))
    out = add_letters(pd.concat([cells.iloc[:2], empty, cells.iloc[2:]], ignore_index=True))
    assert column_letters_legend(out, "Q1", "type") == {"A": "A", "B": "B", "C": "C"}
    assert out.set_index("dimension_value")["letters"]["B"] == "AC"


def test_no_letter_on_or_naming_a_masked_cell():
    """After disclosure: the masked cell loses its letters, and a letter naming it is dropped elsewhere."""
    out = add_letters(_cells({"A": (10, 50), "B": (30, 50), "C": (12, 50), "D": (45, 50)}))
    assert out.set_index("dimension_value")["letters"].to_dict() == {"Ensemble": "", "A": "", "B": "AC", "C": "",
                                                                      "D": "ABC"}
    out["suppressed"] = out["dimension_value"].eq("C")
    out["base_suppressed"] = False
    hidden = hide_letters(out).set_index("dimension_value")["letters"].to_dict()
    assert hidden == {"Ensemble": "", "A": "", "B": "A", "C": "", "D": "AB"}
    out["suppressed"] = out["dimension_value"].eq("D")
    assert hide_letters(out).set_index("dimension_value")["letters"]["D"] == ""
