"""The vectorised code paths (issue 6, « Scale and speed ») give exactly what the simple ones gave.

Each optimisation is checked against a plain reference implementation (the
per-value or per-row code it replaced, kept here) on adversarial inputs, with
fixed seeds: same values, same order, same dtypes.
"""
from __future__ import annotations

import hashlib
import hmac
import random
import re
import unicodedata

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from barometre import clean, ingest, stats, tabulate
from barometre.codebook import load_codebook
from conftest import ROOT

CB = load_codebook(ROOT / "codebooks" / "2017.yaml")


# --------------------------------------------------------------------------- text normalisation
def _normalise_reference(value: object) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", text).strip().casefold()


def test_normalise_texts_equals_normalise_text_on_every_character():
    chars = [chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF]
    rng = random.Random(6)
    pool = chars[:0x250] + list(" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\xa0\u2003") + list("abcXYZ ") * 20
    values = chars + [f" \x1c{c}x\t {c.upper()}É  " for c in chars]
    values += ["", " ", "a  b", " a", "a ", "ÆØß ĳ ŉ ¼ ² µ ſ Ǆ ǅ"]
    values += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    rng.shuffle(values)
    assert clean.normalise_texts(values) == [_normalise_reference(v) for v in values]
    assert [clean.normalise_text(v) for v in values[:500]] == [_normalise_reference(v) for v in values[:500]]


# --------------------------------------------------------------------------- name redaction
_ALPHABET = [*"abcikKsSIJé ÉıİKſßµμ_-.'’[]() \t\u00a0\x1c0123456789@", "\u0301", "ǅ", "ﬀ"]


def _word(rng: random.Random, lo: int = 1, hi: int = 8) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(lo, hi)))


def _redact_reference(values: pd.Series, names: list[str]) -> tuple[pd.Series, pd.Series]:
    """One pass of the single pattern of every name (longest first, then alphabetical)."""
    s = values.astype("string")
    out = s.str.replace(clean.EMAIL_RE, clean.EMAIL_MASK, regex=True).map(clean.mask_phones, na_action="ignore")
    pattern = clean._names_pattern(tuple(names))
    if pattern is not None:
        out = out.str.replace(pattern, clean.NAME_MASK, regex=True)
    return out, (out.fillna("") != s.fillna("")).astype(bool)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redact_text_equals_the_single_pattern_of_every_name(seed):
    rng = random.Random(seed)
    masked = 0
    for _ in range(120):
        names = [_word(rng, 1, 12) for _ in range(rng.randint(0, 25))]
        texts = []
        for _ in range(rng.randint(1, 15)):
            parts = [_word(rng) for _ in range(rng.randint(0, 6))]
            if names and rng.random() < 0.7:  # a name, maybe in another case
                name = rng.choice(names)
                parts.insert(rng.randint(0, len(parts)), rng.choice([name, name.upper(), name.swapcase()]))
            texts.append(rng.choice(["", " ", "; "]).join(parts))
        s = pd.Series([*texts, None, "", clean.NAME_MASK, "écrire à a.b@example.org ou 01 23 45 67 89"],
                      dtype="string")
        expected, expected_changed = _redact_reference(s, names)
        out, changed = clean.redact_text(s, names)
        pd.testing.assert_series_equal(out, expected, check_names=False)
        assert changed.tolist() == expected_changed.tolist()
        masked += int(out.fillna("").str.contains("[nom masqué]", regex=False).sum())
    assert masked > 100  # the comparison did exercise the name masks


def test_name_index_from_arrow_columns_equals_list_of_names():
    frame = pd.DataFrame({"IDENT_NOM": pd.Series(["Dupont", " Martin ", None, "Lü"], dtype="str"),
                          "COLL_NOM": pd.Series(["Commune de Ïle", "Commune de Ïle", "x", "Métropole A"], dtype="str")})
    texts = ["La commune de ïle et M. DUPONT", "martin", "rien", "métropole a!"]
    by_arrow = clean._survey_name_index(frame, CB).candidates(texts)
    by_list = clean._NameIndex(tuple(clean._survey_names(frame, CB))).candidates(texts)
    assert by_arrow == by_list == [("Commune de Ïle", "Dupont"), ("Martin",), (), ("Métropole A",)]


# --------------------------------------------------------------------------- per-value → per-distinct-value
def test_pseudonymise_equals_one_hmac_per_value():
    salt = b"0123456789abcdef"

    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
            return None
        return "COL-" + hmac.new(salt, _normalise_reference(v).encode("utf-8"), hashlib.sha256).hexdigest()[:12]

    rng = random.Random(4)
    choices = ["Commune A", "commune a ", "Métropole É", " ", "", "Région S", "Agglo ı"]
    values = [rng.choice(choices) for _ in range(300)]
    for s in (pd.Series(values, dtype="str"), pd.Series([*values, None], dtype="string"),
              pd.Series([*values, None], dtype=object)):
        pd.testing.assert_series_equal(clean.pseudonymise(s, salt), s.map(one).astype("string"))


def test_decode_ranking_flags_duplicates_as_the_row_loop_did():
    q = CB.question("Q07")
    rng = np.random.default_rng(5)
    codes = rng.integers(1, 8, size=(500, 7)).astype(float)
    codes[rng.random(codes.shape) < 0.3] = np.nan
    frame = pd.DataFrame(codes, columns=q.raw_columns())
    _, dup = clean.decode_ranking(frame, q)
    expected = [len(r[~np.isnan(r)]) != len(set(r[~np.isnan(r)].tolist())) for r in codes]
    assert dup.tolist() == expected and any(expected) and not all(expected)


def test_recode_other_logs_and_recodes_as_before():
    q = CB.question("Q01")
    decoded, _ = clean.decode_categorical(pd.Series([7.0, 7.0, 7.0, 1.0, 7.0, np.nan]), q, 99)
    other = pd.Series(["Conseil Départemental ", "Mairie de X", "Syndicat mixte", "Mairie", None, "Mairie"])
    out, changed = clean.recode_other(decoded, other, q)
    assert out.tolist()[:4] == ["Département", "Commune", "Autre", "Commune"]
    assert changed.tolist() == [True, True, False, False, False, False]


# --------------------------------------------------------------------------- .sav records read with numpy
def _sav(tmp_path, frame: pd.DataFrame, name: str, **kw):
    path = tmp_path / f"{name}.sav"
    pyreadstat.write_sav(frame, str(path), **kw)
    return path


def _sample_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    codes = rng.integers(1, 6, n).astype(float)
    codes[rng.random(n) < 0.1] = 99
    codes[rng.random(n) < 0.1] = np.nan
    words = np.array(["", " lead", "Été", "a b", "x" * 40, "l'État", "ß ü 😀", "tab\there"])
    return pd.DataFrame({
        "id": np.arange(1, n + 1, dtype=float),
        "when": pd.to_datetime("2017-06-15") + pd.to_timedelta(rng.integers(0, 10 ** 7, n), unit="s"),
        "code": codes,
        "text": pd.Series(words[rng.integers(0, len(words), n)], dtype="str"),
        "blank": pd.Series([""] * n, dtype="str"),
        "big": rng.normal(size=n) * 1e300,
    })


def test_fast_sav_reader_equals_pyreadstat(tmp_path):
    frame = _sample_frame()
    path = _sav(tmp_path, frame, "plain", missing_ranges={"code": [99]}, variable_value_labels={"code": {1: "un"}})
    _, meta = pyreadstat.read_sav(str(path), user_missing=True, metadataonly=True)
    fast = ingest.read_sav_records(path, meta)
    assert fast is not None
    expected, _ = pyreadstat.read_sav(str(path), user_missing=True, apply_value_formats=False)
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)
    pd.testing.assert_frame_equal(ingest.read_sav(path).frame, expected, check_exact=True)


@pytest.mark.parametrize("raw", ["2016/barometre_2016_questionnaire.sav", "2017/barometre_2017_limesurvey.sav",
                                 "2018/barometre_2018_questionnaire.sav"])
def test_fast_sav_reader_on_the_editions(raw):
    path = ROOT / "data" / "raw" / raw
    if not path.is_file():
        pytest.skip(f"{path} not present")
    expected, _ = pyreadstat.read_sav(str(path), user_missing=True, apply_value_formats=False)
    _, meta = pyreadstat.read_sav(str(path), user_missing=True, metadataonly=True)
    fast = ingest.read_sav_records(path, meta)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)


@pytest.mark.parametrize("case", ["compressed", "fractional_seconds", "date_format"])
def test_fast_sav_reader_leaves_other_files_to_pyreadstat(tmp_path, case):
    frame = _sample_frame(50)
    kw = {}
    if case == "compressed":
        kw["row_compress"] = True
    elif case == "fractional_seconds":
        frame["when"] = frame["when"] + pd.to_timedelta(0.25, unit="s")
    else:
        frame["day"] = frame["when"].dt.date
    path = _sav(tmp_path, frame, case, **kw)
    _, meta = pyreadstat.read_sav(str(path), user_missing=True, metadataonly=True)
    assert ingest.read_sav_records(path, meta) is None
    expected, _ = pyreadstat.read_sav(str(path), user_missing=True, apply_value_formats=False)
    pd.testing.assert_frame_equal(ingest.read_sav(path).frame, expected, check_exact=True)


def test_parquet_raw_format(tmp_path):
    frame = _sample_frame(20)
    frame.to_parquet(tmp_path / "survey.parquet", index=False)
    raw = ingest.read_raw("survey", {"path": str(tmp_path / "survey.parquet"), "format": "parquet"})
    pd.testing.assert_frame_equal(ingest.widen(raw.frame, raw.compact), frame)  # codes held compact, read as float64
    assert raw.row_numbers == tuple(range(1, 21))
    with pytest.raises(ingest.IngestError, match="not found"):
        ingest.read_raw("survey", {"path": str(tmp_path / "nope.parquet"), "format": "parquet"})


# --------------------------------------------------------------------------- tabulation
def _frames(n: int = 2500, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {}
    for q in CB.at_level("respondent"):
        if q.type in ("single", "ordinal", "band"):
            labels = q.labels()
            values = np.array(labels, dtype=object)[rng.integers(0, len(labels), n)]
            values[rng.random(n) < 0.05] = None
            out[q.harmonised] = pd.Categorical(values, categories=labels, ordered=q.type != "single")
        elif q.type == "multiple":
            ticks = rng.random((n, len(q.options))) < 0.4
            answered = rng.random(n) > 0.1
            for j, col in enumerate(q.columns()):
                a = pd.array(ticks[:, j], dtype="boolean")
                a[~answered] = pd.NA
                out[col] = a
        elif q.type == "ranking":
            ranks = np.argsort(rng.random((n, len(q.codes))), axis=1).astype(float) + 1
            ranks[rng.random(n) < 0.1] = np.nan
            for j, col in enumerate(q.columns()):
                out[col] = pd.array(ranks[:, j], dtype="Float64")
    frame = pd.DataFrame(out)
    frame["w"] = rng.gamma(2.0, 0.5, n)
    return frame


@pytest.mark.parametrize("weight", [None, "w"])
def test_tabulate_level_shares_work_between_dimensions_without_changing_a_bit(weight):
    frame = _frames()
    questions = CB.at_level("respondent")
    dims = ["collectivity_type", "role"]
    res = tabulate.tabulate_level(frame, questions, dims, codebook=CB, weight=weight, permutations=49, seed=3)
    cells, tests = [], []
    for q in questions:
        if q.type not in tabulate.TABULATED_TYPES:
            continue
        for dim in (None, *dims):
            if dim == q.harmonised:
                continue
            qt = tabulate.tabulate_question(frame, q, dim, codebook=CB, weight=weight, permutations=49, seed=3)
            cells.append(qt.cells)
            if dim is not None:
                tests.append(qt.tests_frame())
    pd.testing.assert_frame_equal(res.cells, pd.concat(cells, ignore_index=True), check_exact=True)
    pd.testing.assert_frame_equal(res.tests, pd.concat([t for t in tests if len(t)], ignore_index=True),
                                  check_exact=True)


def test_grouped_moments_unweighted_equals_unit_weights():
    rng = np.random.default_rng(8)
    values, groups = rng.normal(size=5000) * 1e3, rng.integers(0, 9, 5000)
    groups[groups == 4] = 3  # an empty group
    a = stats.grouped_moments(values, groups, 9, None)
    b = stats.grouped_moments(values, groups, 9, np.ones(5000))
    for field in ("n", "weight_sum", "effective_n", "mean", "sd"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_permutation_test_of_a_large_table_draws_tables_directly():
    """Above PERMUTATION_DIRECT_ABOVE respondents: constant memory, same null distribution."""
    table = np.array([[400_000, 300_000], [299_000, 700_996], [3, 1]])
    res = stats.association_test(table, permutations=999, seed=1)
    assert res.test == stats.PERMUTATION and res.pvalue == pytest.approx(1 / 1000)
    # a table drawn under independence (10 550 respondents, an expected count below 5) is not significant
    null = np.array([[300, 200], [330, 220], [3, 2]])
    big = stats.association_test(null * 10, permutations=1999, seed=2)
    assert big.pvalue > 0.5


def _trend_by_permuted_rows(table, a, permutations, seed):
    """The trend test's permutation p-value as below PERMUTATION_DIRECT_ABOVE: the rows' groups permuted."""
    from scipy import stats as sps

    ti = np.asarray(table, dtype=np.int64)
    y = np.repeat(np.tile(a, ti.shape[1]), ti.T.ravel())
    g = np.repeat(np.repeat(np.arange(ti.shape[1]), ti.shape[0]), ti.T.ravel())

    def statistic(groups, axis=-1):
        onehot = np.atleast_2d(groups)[..., None] == np.arange(ti.shape[1])
        n_j, s_j = onehot.sum(axis=-2), (onehot * y[:, None]).sum(axis=-2)
        ybar = y.mean()
        return np.squeeze((y.size - 1) * np.sum((s_j - n_j * ybar) ** 2 / n_j, axis=-1) / np.sum((y - ybar) ** 2))

    res = sps.permutation_test((g,), statistic, permutation_type="pairings", n_resamples=permutations,
                               alternative="greater", vectorized=True, batch=100, rng=np.random.default_rng(seed))
    return float(res.statistic), float(res.pvalue)


@pytest.mark.parametrize("table", [
    [[300, 310, 2], [400, 380, 1], [250, 300, 4]],  # 1 947 rows, a sparse third group: p ≈ 0.3
    [[500, 200, 0], [300, 300, 1], [100, 500, 3]],  # a strong trend: p at its floor
])
def test_trend_test_above_the_threshold_draws_tables_with_the_same_null(table):
    """Above PERMUTATION_DIRECT_ABOVE rows, tables with fixed margins replace permuted rows: same statistic,
    p-values within Monte-Carlo error (two independent 9 999-draw estimates), cost independent of n."""
    t = np.array(table)
    assert t.sum() > stats.PERMUTATION_DIRECT_ABOVE
    res = stats.trend_test(t, permutations=9999, seed=3)
    assert res.test == stats.TREND_PERMUTATION
    q, p = _trend_by_permuted_rows(t, np.arange(1.0, 4.0), 9999, 3)
    assert res.statistic == pytest.approx(q, rel=1e-12)
    assert abs(res.pvalue - p) < 0.03, (res.pvalue, p)
    assert res.pvalue >= 1 / 10000
    assert stats.trend_test(t, permutations=9999, seed=3).pvalue == res.pvalue  # reproducible


# --------------------------------------------------------------------------- tabulation at a million rows (issue 14)
def _kruskal_reference(values, groups, n_groups, min_group=stats.MIN_RANK_GROUP):
    """The code kruskal_test replaced: scipy.stats.kruskal on the samples of the groups large enough."""
    from scipy import stats as sps

    samples = [values[groups == k] for k in range(n_groups)]
    samples = [s for s in samples if s.size >= max(min_group, 1)]
    n = int(sum(s.size for s in samples))
    if len(samples) < 2 or np.unique(np.concatenate(samples)).size < 2:
        return stats.AssociationTest.not_applicable(n)
    res = sps.kruskal(*samples)
    return stats.AssociationTest(stats.KRUSKAL, float(res.statistic), len(samples) - 1, float(res.pvalue), n,
                                 float("nan"))


def _same_test(a, b):
    assert (a.test, a.df, a.n) == (b.test, b.df, b.n)
    for x, y in ((a.statistic, b.statistic), (a.pvalue, b.pvalue)):
        assert (np.isnan(x) and np.isnan(y)) or x == y, (a, b)


@pytest.mark.parametrize("seed", range(8))
def test_kruskal_from_one_sort_equals_scipy_kruskal(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 12, 40, 1000, 200_000]))
    n_groups = int(rng.integers(1, 7))
    # many ties (years, small counts), some continuous values, some groups below the minimum size
    values = rng.choice([rng.integers(1990, 2020, n).astype(float), rng.normal(size=n), rng.integers(0, 3, n) * 0.5])
    groups = rng.integers(0, n_groups, n)
    if n_groups > 2:
        groups[groups == 1] = rng.choice([1, 0], size=(groups == 1).sum(), p=[0.001, 0.999])
    expected = _kruskal_reference(values, groups, n_groups)
    _same_test(stats.kruskal_test(values, groups, n_groups), expected)
    order = np.argsort(values, kind="stable")
    _same_test(stats.kruskal_test(values, groups, n_groups, value_order=order), expected)


def test_kruskal_without_variation_is_not_applicable():
    values, groups = np.full(20, 3.0), np.repeat([0, 1], 10)
    _same_test(stats.kruskal_test(values, groups, 2), _kruskal_reference(values, groups, 2))


@pytest.mark.parametrize("weighted", [False, True])
def test_grouped_median_from_one_sort_equals_lexsort(weighted):
    rng = np.random.default_rng(3)
    values = rng.integers(0, 50, 100_000).astype(float)
    groups = rng.integers(0, 5, 100_000)
    groups[groups == 2] = 1  # an empty group
    w = rng.gamma(2.0, 0.5, values.size) if weighted else None
    order = np.argsort(values, kind="stable")
    np.testing.assert_array_equal(stats.sorted_by_group(values, groups, 5, order), np.lexsort((values, groups)))
    np.testing.assert_array_equal(stats.grouped_median(values, groups, 5, w, value_order=order),
                                  stats.grouped_median(values, groups, 5, w))


def _trend_reference(table, min_expected=5):
    """The code the χ² branch of trend_test replaced: the statistic over one row per respondent."""
    t = np.asarray(table, dtype=float)
    a = np.arange(1, t.shape[0] + 1, dtype=float)
    keep_r, keep_c = t.sum(axis=1) > 0, t.sum(axis=0) > 0
    t, a = t[keep_r][:, keep_c], a[keep_r]
    ti = np.rint(t).astype(np.int64)
    y = np.repeat(np.tile(a, t.shape[1]), ti.T.ravel())
    g = np.repeat(np.repeat(np.arange(t.shape[1]), t.shape[0]), ti.T.ravel())
    onehot = np.atleast_2d(g)[..., None] == np.arange(t.shape[1])
    n_j = onehot.sum(axis=-2)
    s_j = (onehot * y[:, None]).sum(axis=-2)
    ybar = y.mean()
    between = np.sum(np.where(n_j > 0, (s_j - n_j * ybar) ** 2 / np.where(n_j > 0, n_j, 1), 0.0), axis=-1)
    return float(np.squeeze((y.size - 1) * between / np.sum((y - ybar) ** 2)))


@pytest.mark.parametrize("seed", range(6))
def test_trend_statistic_from_the_table_equals_one_row_per_respondent(seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 200_000 if seed % 2 else 300, size=(int(rng.integers(2, 7)), int(rng.integers(2, 6))))
    table[0] += 10  # no empty row
    res = stats.trend_test(table)
    assert res.test == stats.TREND
    assert res.statistic == _trend_reference(table)


def _count_reference(rows_ok, gcodes, g_n, w):
    """Counting the selected rows alone (the code _table_counts replaced)."""
    sel = rows_ok & (gcodes >= 0)
    u = np.bincount(gcodes[sel], minlength=g_n).astype(float)
    return u, (u if w is None else np.bincount(gcodes[sel], weights=w[sel], minlength=g_n))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("g_n", [1, 4])
def test_table_counts_over_every_row_equal_counting_the_kept_rows(weighted, g_n):
    rng = np.random.default_rng(g_n)
    n, k = 50_000, 5
    a = rng.integers(-1, k, n)
    gcodes = rng.integers(-1 if g_n > 1 else 0, g_n, n)
    w = rng.gamma(2.0, 0.5, n) if weighted else None
    u, c = tabulate._table_counts(np.where(a >= 0, a, k), k, tabulate._Groups(gcodes, g_n), w)
    for j in range(k):
        eu, ec = _count_reference(a == j, gcodes, g_n, w)
        np.testing.assert_array_equal(u[j], eu)
        np.testing.assert_array_equal(c[j], ec)
    hits = [rng.random(n) < 0.3 for _ in range(3)]
    u, c = tabulate._count_columns(hits, tabulate._Groups(gcodes, g_n), w)
    for j, hit in enumerate(hits):
        eu, ec = _count_reference(hit, gcodes, g_n, w)
        np.testing.assert_array_equal(u[j], eu)
        np.testing.assert_array_equal(c[j], ec)


@pytest.mark.parametrize("g_n", [1, 3])
def test_rank_tables_equal_counts_and_moments_item_by_item(g_n):
    rng = np.random.default_rng(9)
    n, k = 60_000, 7
    m = np.argsort(rng.random((n, k)), axis=1).astype(float) + 1
    m[rng.random((n, k)) < 0.3] = np.nan  # partial rankings
    m[rng.random(n) < 0.1] = np.nan  # not answered
    m = np.asfortranarray(m)
    gcodes = rng.integers(-1 if g_n > 1 else 0, g_n, n)
    answered = ~np.isnan(m).all(axis=1)
    ranks = tabulate._rank_codes(m)
    assert ranks is not None
    first, top3, mom = tabulate._rank_tables(ranks, tabulate._Groups(gcodes, g_n))
    ok = answered & (gcodes >= 0)
    for j in range(k):
        np.testing.assert_array_equal(first[j], _count_reference(m[:, j] == 1, gcodes, g_n, None)[0])
        np.testing.assert_array_equal(top3[j], _count_reference(m[:, j] <= 3, gcodes, g_n, None)[0])
        sel = ok & ~np.isnan(m[:, j])
        ref = stats.grouped_moments(m[sel, j], gcodes[sel], g_n, None)
        for f in ("n", "weight_sum", "effective_n", "mean", "sd"):
            np.testing.assert_array_equal(getattr(mom, f)[j * g_n:(j + 1) * g_n], getattr(ref, f))
    assert tabulate._rank_codes(np.array([[1.0, 2.5]])) is None and tabulate._rank_codes(np.array([[0.0, 1.0]])) is None


def _cells_frame_reference(blocks, weighted):
    columns = tabulate.CELL_COLUMNS + (tabulate.WEIGHTED_COLUMNS if weighted else [])
    return pd.concat([pd.DataFrame(b, columns=columns) for b in blocks], ignore_index=True)


@pytest.mark.parametrize("weight", [None, "w"])
def test_one_frame_per_level_equals_one_frame_per_table(weight):
    frame = _frames(800, seed=4)
    q = CB.question("Q07")
    blocks, _, _ = tabulate._tabulate_question(
        frame, q, "role" if "role" in frame else None, codebook=CB, filter_question=None, weight=weight,
        confidence=0.95, min_expected=5, permutations=49, seed=3, test=False, cache={})
    pd.testing.assert_frame_equal(tabulate._cells_frame(blocks, weight is not None),
                                  _cells_frame_reference(blocks, weight is not None), check_exact=True)


@pytest.mark.parametrize("g_n", [1, 3])
def test_bit_counts_equal_counting_each_column(g_n):
    rng = np.random.default_rng(g_n + 20)
    n = 40_000
    gcodes = rng.integers(-1 if g_n > 1 else 0, g_n, n)
    columns = [rng.random(n) < p for p in (0.9, 0.05, 0.4, 0.5, 0.01)]
    groups = tabulate._Groups(gcodes, g_n)
    counts = tabulate._bit_counts(tabulate._packed_bits([columns[0], None, *columns[1:]]), len(columns) + 1, groups)
    np.testing.assert_array_equal(counts[1], np.zeros(g_n))
    for j, col in enumerate([columns[0], None, *columns[1:]]):
        if col is not None:
            np.testing.assert_array_equal(counts[j], _count_reference(col, gcodes, g_n, None)[0])


# --------------------------------------------------------------------------- compact parquet codes (issue 14)
def test_parquet_compact_codes_widen_to_the_exact_float64_columns(tmp_path):
    """Whole-number float64 columns are held as small nullable integers and come back bit for bit."""
    n = 1000
    rng = np.random.default_rng(14)
    codes = rng.integers(1, 6, n).astype(float)
    codes[rng.random(n) < 0.2] = np.nan
    frame = pd.DataFrame({
        "codes": codes,  # → Int8
        "wide": np.where(np.isnan(codes), np.nan, codes * 1000),  # → Int16
        "huge": np.where(np.isnan(codes), np.nan, codes * 1e6),  # → Int32
        "beyond": codes * 1e10,  # beyond Int32: stays float64
        "fraction": codes + 0.5,  # stays float64
        "negzero": np.where(np.arange(n) == 3, -0.0, codes),  # -0.0 would come back as 0.0: stays float64
        "inf": np.where(np.arange(n) == 5, np.inf, codes),  # stays float64
        "empty": np.full(n, np.nan),  # no value: stays float64
        "text": pd.array([f"t{i}" if i % 3 else None for i in range(n)], dtype="string"),
        "when": pd.date_range("2017-01-01", periods=n, freq="h"),
    })
    frame.loc[7, "codes"] = -1.0  # negative codes are integers too
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    raw = ingest.read_parquet(tmp_path / "s.parquet")
    assert raw.compact == {"codes", "wide", "huge"}
    assert str(raw.frame["codes"].dtype) == "Int8" and str(raw.frame["wide"].dtype) == "Int16"
    assert str(raw.frame["huge"].dtype) == "Int32"
    expected = pd.read_parquet(tmp_path / "s.parquet", engine="pyarrow")
    pd.testing.assert_frame_equal(ingest.widen(raw.frame, raw.compact), expected, check_exact=True)
    for c in expected.columns:  # same bits (signs of zeros included), NaN where NaN
        if expected[c].dtype == "float64":
            a, b = ingest.widen(raw.frame, raw.compact)[c].to_numpy(), expected[c].to_numpy()
            assert np.array_equal(np.isnan(a), np.isnan(b))
            assert np.array_equal(a[~np.isnan(a)].view(np.int64), b[~np.isnan(b)].view(np.int64))


def test_cleaning_a_compact_parquet_export_equals_cleaning_the_float64_one(tmp_path):
    """The cleaned tables, exclusions and events are the same whether the codes are held compact or not."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    import yaml

    import generate

    frame, _ = generate.survey_frame(3000, seed=5)
    frame.to_parquet(tmp_path / "survey.parquet", index=False)
    compact = ingest.read_parquet(tmp_path / "survey.parquet")
    assert len(compact.compact) > 100  # the code columns
    plain = ingest.RawTable(name="survey", path=compact.path, frame=pd.read_parquet(tmp_path / "survey.parquet"),
                            row_numbers=compact.row_numbers)
    spec = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["editions"]["2017"]
    a = clean.clean_edition({"survey": compact}, CB, spec.get("exclusions", []), b"salt")
    b = clean.clean_edition({"survey": plain}, CB, spec.get("exclusions", []), b"salt")
    assert len(a.exclusions) and len(a.events)
    for name in ("respondents", "tools", "exclusions", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


# --------------------------------------------------------------------------- design-based tables (issue 14)
def _psu_totals_reference(scores, arrays):
    """PSU totals of each column (np.unique of the pairs, np.add.at) and each PSU's stratum."""
    pair = arrays.stratum * (arrays.cluster.max(initial=0) + 1) + arrays.cluster
    psu, inv = np.unique(pair, return_inverse=True)
    totals = np.zeros((psu.size, scores.shape[1]))
    np.add.at(totals, inv, scores)
    psu_stratum = np.zeros(psu.size, dtype=np.int64)
    psu_stratum[inv] = arrays.stratum
    return totals, psu_stratum


def _variances_reference(y, domain, arrays):
    w = arrays.weight[:, None] * domain
    total = w.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, (w * y).sum(axis=0) / np.where(total > 0, total, 1.0), np.nan)
        z = np.where(total > 0, w * (y - p) / np.where(total > 0, total, 1.0), 0.0)
    totals, psu_stratum = _psu_totals_reference(z, arrays)
    var = np.zeros(y.shape[1])
    for h in np.unique(psu_stratum):
        t = totals[psu_stratum == h]
        if t.shape[0] >= 2:
            var += t.shape[0] / (t.shape[0] - 1) * ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    return p, var, domain.sum(axis=0).astype(float)


def _design_tables_reference(cells, tests, frame, questions, design_, *, codebook=None, confidence=0.95):
    """The cell-by-cell pass that design.design_tables replaced (one group, one statistic, one test at a time)."""
    from barometre import design as dz

    cells = cells.copy()
    if "deff" not in cells.columns:
        cells["deff"] = np.nan
    if (design_.cluster and design_.stratum is None and design_.weight is None and design_.cluster in frame.columns
            and not frame[design_.cluster].duplicated().any()):
        design_ = dz.Design()
    if design_.is_simple or cells.empty:
        return cells, tests
    tests = tests.copy()
    for q in questions:
        mask = tabulate.filter_mask(frame, q, codebook)
        sub = frame.loc[mask]
        arrays = dz.DesignArrays.from_frame(sub, design_)
        defs = dz._row_definitions(q, sub)
        qsel = cells["question_id"].eq(q.id)
        for dim in cells.loc[qsel, "dimension"].unique():
            if dim == "ensemble":
                gcodes, values = np.zeros(len(sub), dtype=np.int64), ["Ensemble"]
            else:
                cat = pd.Categorical(sub[dim].astype(object).where(sub[dim].notna(), None).map(
                    lambda v: None if v is None else str(v)))
                gcodes, values = np.asarray(cat.codes, dtype=np.int64), [str(c) for c in cat.categories]
            for stat, (keys, y, dom, _) in defs.items():
                y_f = np.asarray(y, dtype=float)
                for gi, value in enumerate(values):
                    d = dom & (gcodes == gi)[:, None]
                    p, var, n = _variances_reference(y_f, d, arrays)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        srs = p * (1 - p) / (n - 1)
                        deff = np.where(srs > 0, var / np.where(srs > 0, srs, 1.0), np.nan)
                        eff = np.where(var > 0, p * (1 - p) / np.where(var > 0, var, 1.0), n)
                    eff = np.minimum(eff, n)
                    low, high = stats.wilson_interval(p * eff, eff, confidence)
                    sel = (qsel & cells["dimension"].eq(dim) & cells["statistic"].eq(stat)
                           & cells["dimension_value"].eq(value))
                    idx = cells.index[sel]
                    pos = {k: i for i, k in enumerate(keys)}
                    j = np.array([pos.get(k, -1) for k in cells.loc[idx, "answer_key"]])
                    ok = j >= 0
                    cells.loc[idx[ok], "ci_low"] = 100 * low[j[ok]]
                    cells.loc[idx[ok], "ci_high"] = 100 * high[j[ok]]
                    cells.loc[idx[ok], "deff"] = deff[j[ok]]
            if dim == "ensemble":
                continue
            for ti in tests.index[tests["question_id"].eq(q.id) & tests["dimension"].eq(dim)]:
                key = tests.at[ti, "answer_key"]
                if q.type == "multiple":
                    keys, y, dom, _ = defs["share"]
                    if key not in keys:
                        continue
                    col = keys.index(key)
                    rows = np.where(dom[:, col], y[:, col].astype(np.int64), -1)
                elif q.is_categorical and "share" in defs:
                    rows = defs["share"][3]
                elif q.type == "ranking":
                    rows = defs["first_share"][3]
                else:
                    continue
                if rows is None:
                    continue
                if q.type in ("ordinal", "band"):
                    res = dz.design_trend(np.where(rows >= 0, rows + 1.0, np.nan), gcodes, arrays)
                else:
                    res = dz.rao_scott(rows, gcodes, arrays)
                if not np.isfinite(res.pvalue):
                    continue
                tests.loc[ti, ["test", "statistic", "pvalue", "n", "min_expected"]] = [
                    res.test, res.statistic, res.pvalue, res.n, np.nan]
                tests.loc[ti, "df"] = pd.NA
    return cells, tests


@pytest.mark.parametrize("case", ["clustered", "weighted", "stratified"])
def test_design_tables_in_one_pass_per_breakdown_equal_the_cell_by_cell_pass(case):
    from barometre import design as dz

    rng = np.random.default_rng({"clustered": 31, "weighted": 32, "stratified": 33}[case])
    frame = _frames(1500, seed=len(case))
    n = len(frame)
    # clusters of 1 to ~12 rows (some singletons), rows of a cluster scattered through the frame
    frame["collectivity_id"] = np.array([f"K{i:04d}" for i in rng.integers(0, 260, n)], dtype=object)
    frame["stratum"] = rng.integers(0, 3, n)
    frame.loc[frame.index[:4], "stratum"] = 3  # a stratum with (at most) a few clusters
    design_ = {"clustered": dz.Design(cluster="collectivity_id"),
               "weighted": dz.Design(cluster="collectivity_id", weight="w"),
               "stratified": dz.Design(cluster="collectivity_id", stratum="stratum", weight="w")}[case]
    weight = design_.weight
    questions = CB.at_level("respondent")
    dims = ["collectivity_type", "role"]
    groups = [[q for q in questions if q.harmonised not in dims]] + [[q] for q in questions if q.harmonised in dims]
    checked = 0
    for qs in groups:
        res = tabulate.tabulate_level(frame, qs, dims, codebook=CB, weight=weight, permutations=49, seed=3)
        expected = _design_tables_reference(res.cells, res.tests, frame, qs, design_, codebook=CB)
        got = dz.design_tables(res.cells, res.tests, frame, qs, design_, codebook=CB)
        pd.testing.assert_frame_equal(got[0], expected[0], check_exact=True)
        pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)
        checked += int(np.isfinite(got[0]["deff"]).sum()) + int(got[1]["test"].eq(dz.RAO_SCOTT).sum())
    assert checked > 500  # the comparison did reach design effects and Rao–Scott tests


def _cluster_totals_variance_reference(scores, arrays):
    scores = scores.reshape(len(scores), -1)
    totals, psu_stratum = _psu_totals_reference(scores, arrays)
    var = np.zeros((scores.shape[1], scores.shape[1]))
    for h in np.unique(psu_stratum):
        t = totals[psu_stratum == h]
        if t.shape[0] >= 2:
            c = t - t.mean(axis=0)
            var += t.shape[0] / (t.shape[0] - 1) * c.T @ c
    return var


@pytest.mark.parametrize("strata", [1, 4])
def test_cluster_totals_by_bincount_equal_add_at(strata):
    from barometre import design as dz

    rng = np.random.default_rng(strata)
    n = 5000
    cluster = rng.integers(0, 700, n)
    cluster[cluster == 5] = 6  # a code with no row
    arrays = dz.DesignArrays(cluster, rng.integers(0, strata, n), rng.gamma(2.0, 0.5, n))
    for k in (1, 2, 7):
        scores = rng.normal(size=(n, k)) * 1e-3
        np.testing.assert_array_equal(dz._cluster_totals_variance(scores, arrays),
                                      _cluster_totals_variance_reference(scores, arrays))
    pairs = np.unique(np.stack([arrays.stratum, arrays.cluster]), axis=1)
    assert arrays.degrees_of_freedom == pairs.shape[1] - np.unique(arrays.stratum).size
    codes = rng.integers(0, 9, n)
    for c in (codes, codes * 10**6, codes - 3):  # a presence table, a sort, negative codes
        inverse, count = dz._distinct(c)
        uniq, ref = np.unique(c, return_inverse=True)
        np.testing.assert_array_equal(inverse, ref)
        assert count == uniq.size
