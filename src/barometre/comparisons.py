"""Column comparisons with letters, and multiplicity control of the global tests.

Convention (as SPSS Custom Tables, Quantipy, R ``expss``): the columns of a table
(the values of its dimension) get the letters A, B, C… in table order; « A » written
under column B means that the value of column B is significantly **higher** than
the value of column A, after the multiplicity adjustment.

* shares (percent statistics): two-sided z-test of two proportions, pooled, on the
  design effective bases of the two cells (``effective_base``: the Kish base for
  weighted data, the clustered design's effective base when the cells carry one);
* means (``mean``, ``mean_rank``): Welch's *t*-test from the cells' means, their
  standard deviations (recovered from the Student interval) and effective bases;
* the p-values of one table (question × dimension × statistic, every answer and
  every pair of columns) are adjusted together: Holm by default, Benjamini–Hochberg
  as an option (config ``comparisons.adjust``), with
  :func:`statsmodels.stats.multitest.multipletests`.

The global tests of an edition (``tests.csv``) are adjusted the same way, all
together: :func:`adjust_tests` adds ``p_adjusted`` and ``adjust_method``.
The narrative may call a difference « significative » only where
:func:`is_significant` says so.
"""
from __future__ import annotations

import gc
import string
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats as _sps
from statsmodels.stats.multitest import multipletests

#: config value → (statsmodels method, French name).
ADJUST_METHODS = {"holm": ("holm", "Holm"), "bh": ("fdr_bh", "Benjamini-Hochberg")}
DEFAULTS = {"alpha": 0.05, "adjust": "holm", "min_base": 2}
PERCENT_STATISTICS = frozenset({"share", "top2_share", "cumulative_share", "first_share", "top3_share"})
MEAN_STATISTICS = frozenset({"mean", "mean_rank"})
_TABLE = ["question_id", "dimension", "statistic"]


def settings(config: Mapping | None) -> dict:
    """The ``comparisons:`` section of the config with its defaults."""
    out = dict(DEFAULTS)
    out.update((config or {}).get("comparisons") or {})
    if out["adjust"] not in ADJUST_METHODS:
        raise ValueError(f"comparisons.adjust: {out['adjust']!r} is not one of {', '.join(ADJUST_METHODS)}")
    return out


def column_letter(position: int) -> str:
    """A, B, …, Z, AA, AB… for the column at ``position`` (0-based)."""
    letters = string.ascii_uppercase
    out = ""
    position += 1
    while position:
        position, rem = divmod(position - 1, 26)
        out = letters[rem] + out
    return out


def _share_pvalues(p1, n1, p2, n2) -> np.ndarray:
    """Two-sided pooled z-test of two proportions (``p`` in [0, 1], ``n`` effective bases)."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p1 - p2) / np.where(se > 0, se, 1.0), 0.0)
    return 2 * _sps.norm.sf(np.abs(z))


def _sd_from_interval(cells: pd.DataFrame, confidence: float) -> np.ndarray:
    """Standard deviation behind the Student interval ``mean ± t(n−1)·sd/√n`` of a cell."""
    n = cells["effective_base_for_test"].to_numpy(dtype=float)
    half = (cells["ci_high"].to_numpy(dtype=float) - cells["ci_low"].to_numpy(dtype=float)) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        q = _sps.t.ppf(0.5 + confidence / 2, np.where(n >= 2, n - 1, np.nan))
        return half * np.sqrt(n) / q


def pairwise_tests(cells: pd.DataFrame, *, confidence: float = 0.95, min_base: float = 2) -> pd.DataFrame:
    """Every pair of columns of every table, with its raw p-value.

    Returns
    -------
    pandas.DataFrame
        ``question_id, dimension, statistic, answer_key, higher, lower, pvalue`` (one row
        per pair whose values differ; ``higher`` / ``lower`` are dimension values).
    """
    keep = cells["dimension"].ne("ensemble") & cells["statistic"].isin(PERCENT_STATISTICS | MEAN_STATISTICS)
    df = cells.loc[keep].copy()
    # the count of a mean rank is the rows that ranked the item: its own base
    eff = df["effective_base"].to_numpy(dtype=float)
    if "unweighted_count" not in df.columns:
        eff = np.where(df["statistic"].eq("mean_rank"), df["count"].to_numpy(dtype=float), eff)
    df["effective_base_for_test"] = eff
    df = df[np.isfinite(df["value"].to_numpy(dtype=float)) & (df["effective_base_for_test"] >= min_base)]
    df["sd"] = _sd_from_interval(df, confidence)
    key = ["question_id", "dimension", "statistic", "answer_key"]
    left = df[[*key, "dimension_value", "value", "effective_base_for_test", "sd"]]
    pairs = left.merge(left, on=key, suffixes=("_1", "_2"))
    pairs = pairs[pairs["value_1"] > pairs["value_2"]]
    if pairs.empty:
        return pd.DataFrame(columns=[*key, "higher", "lower", "pvalue"])
    pct = pairs["statistic"].isin(PERCENT_STATISTICS).to_numpy()
    p = np.full(len(pairs), np.nan)
    v1, v2 = pairs["value_1"].to_numpy(dtype=float), pairs["value_2"].to_numpy(dtype=float)
    n1 = pairs["effective_base_for_test_1"].to_numpy(dtype=float)
    n2 = pairs["effective_base_for_test_2"].to_numpy(dtype=float)
    p[pct] = _share_pvalues(v1[pct] / 100, n1[pct], v2[pct] / 100, n2[pct])
    means = ~pct
    if means.any():
        s1, s2 = pairs["sd_1"].to_numpy(dtype=float)[means], pairs["sd_2"].to_numpy(dtype=float)[means]
        ok = np.isfinite(s1) & np.isfinite(s2) & ((s1 > 0) | (s2 > 0))
        res = np.full(means.sum(), np.nan)
        if ok.any():
            res[ok] = _sps.ttest_ind_from_stats(v1[means][ok], s1[ok], n1[means][ok], v2[means][ok], s2[ok],
                                                n2[means][ok], equal_var=False).pvalue
        p[means] = res
    out = pairs[key].assign(higher=pairs["dimension_value_1"].to_numpy(), lower=pairs["dimension_value_2"].to_numpy(),
                            pvalue=p)
    return out[np.isfinite(out["pvalue"])].reset_index(drop=True)


def add_letters(cells: pd.DataFrame, config: Mapping | None = None, *, confidence: float = 0.95) -> pd.DataFrame:
    """``cells`` with a ``letters`` column: the letters of the columns each cell is significantly higher than.

    Letters are given to the dimension values in their order in the table; the
    p-values of one table (question × dimension × statistic) are adjusted together.
    ``""`` where there is none (and in the « Ensemble » column).
    """
    opts = settings(config)
    method = ADJUST_METHODS[opts["adjust"]][0]
    tests = pairwise_tests(cells, confidence=confidence, min_base=float(opts["min_base"]))
    out = cells.copy()
    out["letters"] = ""
    if tests.empty:
        return out
    adjusted = np.empty(len(tests))
    pvalues = tests["pvalue"].to_numpy()
    # statsmodels' Holm runs a full garbage collection at every call: with a million-row survey in
    # memory that is ~65 ms per table. Objects that exist before the loop are set aside (gc.freeze),
    # which changes no result; the loop's own garbage is still collected.
    gc.freeze()
    try:
        for _, idx in tests.groupby(_TABLE, sort=False).indices.items():
            adjusted[idx] = multipletests(pvalues[idx], method=method)[1]
    finally:
        gc.unfreeze()
    tests = tests.assign(p_adjusted=adjusted)
    sig = tests[tests["p_adjusted"] < float(opts["alpha"])]
    if sig.empty:
        return out
    # letter of each dimension value, in its order of appearance within the question × dimension
    order = _lettered(cells[cells["dimension"].ne("ensemble")]).drop_duplicates(
        ["question_id", "dimension", "dimension_value"])
    pos = order.groupby(["question_id", "dimension"], sort=False).cumcount()
    columns = zip(order["question_id"], order["dimension"], order["dimension_value"], strict=True)
    letter = dict(zip(columns, map(column_letter, pos), strict=True))
    sig = sig.assign(letter=[letter.get(k, "") for k in zip(sig["question_id"], sig["dimension"], sig["lower"],
                                                            strict=True)])
    sig = sig[sig["letter"].ne("")]
    sig = sig.assign(_pos=sig["letter"].map(lambda x: (len(x), x))).sort_values("_pos", kind="stable")
    sep = " " if any(len(x) > 1 for x in letter.values()) else ""  # beyond 26 columns, letters are separated
    by_cell = ["question_id", "dimension", "statistic", "answer_key", "higher"]
    joined = sig.groupby(by_cell, sort=False)["letter"].agg(sep.join)
    idx = pd.MultiIndex.from_frame(out[["question_id", "dimension", "statistic", "answer_key", "dimension_value"]])
    out["letters"] = joined.reindex(idx).fillna("").to_numpy()
    return out


def _lettered(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows of the columns that get a letter: every column but those nobody is in (base 0, not masked)."""
    return cells[pd.to_numeric(cells["base"], errors="coerce").ne(0)]


def column_letters_legend(cells: pd.DataFrame, question_id: str, dimension: str) -> dict[str, str]:
    """Dimension value → its letter, for one table (to write the letters above its columns);
    columns nobody is in get none, as in :func:`add_letters`."""
    sub = _lettered(cells[(cells["question_id"] == question_id) & (cells["dimension"] == dimension)])
    values = list(dict.fromkeys(sub["dimension_value"]))
    return {v: column_letter(i) for i, v in enumerate(values)}


def keep_letters(letters: str, keep: set[str]) -> str:
    """The letters of ``letters`` (« AB », or « AA AB » past 26 columns) that are in ``keep``, same spelling.

    A letter naming a cell that is not printed (statistical secrecy) would tell something
    about it: tables drop it with ``keep`` = the letters of the printed cells of the row.
    """
    sep = " " if " " in letters else ""
    return sep.join(x for x in (letters.split() if sep else letters) if x in keep)


def hide_letters(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` (after disclosure) whose letters tell nothing about a masked cell: none on a cell or column
    that is masked (``suppressed``, ``base_suppressed``), and none naming one in the same row of its table."""
    if "letters" not in cells.columns:
        return cells
    out = cells.copy()
    masked = out["suppressed"].astype(bool)
    if "base_suppressed" in out.columns:
        masked |= out["base_suppressed"].astype(bool)
    out["letters"] = out["letters"].fillna("").astype(str).mask(masked, "")
    lettered = {}
    tables = _lettered(out[out["dimension"].ne("ensemble")])[["question_id", "dimension"]].drop_duplicates()
    for qid, dim in tables.itertuples(index=False):
        lettered.update({(qid, dim, v): x for v, x in column_letters_legend(out, qid, dim).items()})
    keys = zip(out["question_id"], out["dimension"], out["dimension_value"], strict=True)
    letter = pd.Series([lettered.get(k, "") for k in keys], index=out.index)
    row = ["question_id", "dimension", "statistic", "answer_key"]
    for _, idx in out[out["letters"].ne("")].groupby(row, sort=False).groups.items():
        group = out.loc[(out[row] == out.loc[idx[0], row]).all(axis=1)]
        keep = set(letter[group.index[~masked[group.index]]])
        out.loc[idx, "letters"] = [keep_letters(x, keep) for x in out.loc[idx, "letters"]]
    return out


def adjust_tests(tests: pd.DataFrame, config: Mapping | None = None) -> pd.DataFrame:
    """``tests`` with ``p_adjusted`` and ``adjust_method``: every global test of the edition adjusted together."""
    opts = settings(config)
    method, name = ADJUST_METHODS[opts["adjust"]]
    out = tests.copy()
    p = out["pvalue"].to_numpy(dtype=float)
    adj = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        adj[ok] = multipletests(p[ok], method=method)[1]
    out["p_adjusted"] = adj
    out["adjust_method"] = np.where(ok, name, "")
    return out


def is_significant(tests: pd.DataFrame, question_id: str, dimension: str, answer_key: str | None = None,
                   *, alpha: float = 0.05) -> bool:
    """Whether the narrative may call the association of ``question_id`` × ``dimension`` « significative ».

    True only when the **adjusted** p-value of its global test (``answer_key``: the
    option of a multiple-response question) is below ``alpha``.
    """
    if "p_adjusted" not in tests.columns:
        raise KeyError("is_significant: tests without p_adjusted (run comparisons.adjust_tests first)")
    sel = (tests["question_id"] == question_id) & (tests["dimension"] == dimension)
    if answer_key is not None:
        sel &= tests["answer_key"] == answer_key
    p = tests.loc[sel, "p_adjusted"].to_numpy(dtype=float)
    return bool(np.any(p[np.isfinite(p)] < alpha))


def significance_words(tests: pd.DataFrame, question_id: str, dimension: str, answer_key: str | None = None,
                       *, alpha: float = 0.05) -> str:
    """The only French wording of a difference's significance the narrative may use.

    « significative » only when :func:`is_significant` says so, with the adjusted
    p-value and its method; otherwise « non significative après correction pour la
    multiplicité ». Templates never write « significatif » themselves (a test checks it).
    """
    from barometre import fr

    sel = (tests["question_id"] == question_id) & (tests["dimension"] == dimension)
    if answer_key is not None:
        sel &= tests["answer_key"] == answer_key
    rows = tests.loc[sel & np.isfinite(tests["p_adjusted"].to_numpy(dtype=float))]
    if rows.empty:
        return "non testée"
    best = rows.loc[rows["p_adjusted"].astype(float).idxmin()]
    p = fr.format_decimal(float(best["p_adjusted"]), 3)
    if is_significant(tests, question_id, dimension, answer_key, alpha=alpha):
        return f"significative (p ajustée = {p}, correction de {best['adjust_method']})"
    return f"non significative après correction pour la multiplicité (p ajustée = {p})"


def is_higher(cells: pd.DataFrame, question_id: str, dimension: str, answer_key: str, higher: str, lower: str,
              statistic: str = "share") -> bool:
    """Whether column ``higher`` is significantly above column ``lower`` for one answer (its letters say so)."""
    legend = column_letters_legend(cells, question_id, dimension)
    row = cells[(cells["question_id"] == question_id) & (cells["dimension"] == dimension)
                & (cells["answer_key"] == answer_key) & (cells["statistic"] == statistic)
                & (cells["dimension_value"] == higher)]
    if not len(row) or lower not in legend:
        return False
    text = str(row["letters"].iloc[0])
    return legend[lower] in (text.split() if " " in text else set(text))


def rule_text(config: Mapping | None = None) -> str:
    """The comparison rule in French, for the footer of each table."""
    from barometre import fr

    opts = settings(config)
    name = ADJUST_METHODS[opts["adjust"]][1]
    alpha = fr.format_percent(100 * float(opts["alpha"]), 0)
    return (f"Lettres : comparaison des colonnes deux à deux (test z des proportions sur la base effective, "
            f"t de Welch pour les moyennes), seuil de {alpha} après correction de {name} sur l'ensemble "
            "des comparaisons du tableau. « A » sous la colonne B signifie que la valeur de B est "
            "significativement supérieure à celle de la colonne A. Échantillon auto-sélectionné : "
            "tests et intervalles indicatifs.")
