"""Verbal quantifiers (barometre.quantifiers): the text can never contradict the data."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barometre.quantifiers import (
    DEFAULT_CHOICES,
    FAMILIES,
    QUANTIFIERS,
    Interval,
    UnknownQuantifierError,
    normalize_phrase,
    quantifier_holds,
    quantifier_interval,
    quantify,
    typeset,
)

GRID = [i / 20 for i in range(0, 2001)]  # 0 .. 100 step 0.05


# --------------------------------------------------------------------------
# The guarantee
# --------------------------------------------------------------------------
def test_every_value_of_the_grid_gets_a_true_phrase():
    for value in GRID:
        phrase = quantify(value)
        assert quantifier_holds(phrase, value), (value, phrase)


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_any_value_gets_a_true_phrase(value):
    assert quantifier_holds(quantify(value), value)


@settings(max_examples=500, deadline=None)
@given(
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.lists(st.sampled_from(sorted(QUANTIFIERS) + list(FAMILIES)), max_size=4),
)
def test_preferences_never_make_a_false_phrase(value, prefer):
    assert quantifier_holds(quantify(value, prefer=prefer), value)


def test_exact_percent_computations_from_counts():
    """Percentages as the pipeline computes them: 100 * k / n for every base up to 200."""
    for n in range(1, 201):
        for k in range(0, n + 1):
            value = 100 * k / n
            assert quantifier_holds(quantify(value), value), (k, n)


# --------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "aucun"),
        (0.5, "moins de 1 %"),
        (8.9, "moins de 10 %"),
        (25.6, "un quart"),
        (24.0, "près d'un quart"),
        (32.0, "près d'un tiers"),
        (100 / 3, "un tiers"),
        (34.1, "un tiers"),
        (36.0, "plus d'un tiers"),
        (38.0, "près de 40 %"),
        (40.0, "4 sur 10"),
        (47.0, "près de la moitié"),
        (50.0, "la moitié"),
        (52.7, "plus de la moitié"),
        (200 / 3, "2 sur 3"),
        (75.6, "3 sur 4"),
        (88.9, "9 sur 10"),
        (86.0, "près de 90 %"),
        (97.0, "la quasi-totalité"),
        (100, "la totalité"),
    ],
)
def test_known_answers(value, expected):
    assert quantify(value) == typeset(expected)
    assert quantifier_holds(expected, value)


def test_25_6_is_not_pres_d_un_quart():
    """« Près de » means at or just below: 25,6 % is above a quarter."""
    assert not quantifier_holds("près d'un quart", 25.6)
    assert not quantifier_holds("près de 25 %", 25.6)
    assert quantifier_holds("un quart", 25.6)
    assert quantifier_holds("1 sur 4", 25.6)


def test_fallback_is_the_exact_figure():
    assert quantify(15.8) == "15,8\u202f%"
    assert quantifier_holds("15,8 %", 15.8)
    assert quantifier_holds("15,8\u202f%", 15.84)
    assert not quantifier_holds("15,8 %", 15.850000001)
    # the float 15.85 is 15.8499999…: it prints « 15,8 % » and the phrase holds
    assert quantify(15.85) == "15,8\u202f%" and quantifier_holds("15,8 %", 15.85)


# --------------------------------------------------------------------------
# Bounds rules of references/published_2017.yaml
# --------------------------------------------------------------------------
def _iv(low, high, lc=True, hc=True):
    return Interval(Fraction(low), Fraction(high), lc, hc)


@pytest.mark.parametrize(
    ("phrase", "reference"),
    [
        ("près de 40 %", _iv(35, "40.5", True, False)),  # [X-5, X+0.5)
        ("près de 90 %", _iv(85, "90.5", True, False)),
        ("près d'un quart", _iv(20, "25.5", True, False)),
        ("plus de la moitié", _iv(50, 100, False, True)),  # (50, 100]
        ("moins de 10 %", _iv(0, 10, True, False)),  # [0, 10)
        ("1 sur 3", _iv(30, "36.7")),
        ("un tiers", _iv(30, "36.7")),
        ("2 sur 3", _iv("63.3", 70)),
        ("3 sur 4", _iv(72, 78)),
        ("4 sur 10", _iv(37, 43)),
        ("9 sur 10", _iv(87, 93)),
    ],
)
def test_intervals_follow_the_reference_rules(phrase, reference):
    """Each interval equals the reference one, or (thirds) lies inside it."""
    ours = quantifier_interval(phrase)
    assert ours.issubset(reference), (phrase, str(ours), str(reference))
    assert reference.width - ours.width < Fraction(1, 10)


@pytest.mark.parametrize(
    ("phrase", "inside", "outside"),
    [
        ("près de 40 %", [35, 40, 40.49], [34.99, 40.5]),
        ("plus de la moitié", [50.0001, 100], [50, 49]),
        ("moins de 10 %", [0, 9.99], [10, 10.01]),
        ("un tiers", [30, 33.3, 36.66], [29.99, 36.7]),
        ("2 sur 3", [63.34, 70], [63.3, 70.01]),
        ("3 sur 4", [72, 78], [71.99, 78.01]),
        ("4 sur 10", [37, 43], [36.99, 43.01]),
        ("9 sur 10", [87, 93], [86.99, 93.01]),
        ("la quasi-totalité", [95, 99.99], [94.99, 100]),
        ("la totalité", [100], [99.99]),
        ("aucun", [0], [0.01]),
        ("43 %", [42.5, 43.49], [42.49, 43.5]),
        ("25,6 %", [25.55, 25.64], [25.54, 25.650000001]),
        ("25,7 %", [25.650000001, 25.74], [25.65, 25.75]),  # float 25.65 is 25.6499999…
    ],
)
def test_interval_edges(phrase, inside, outside):
    for v in inside:
        assert quantifier_holds(phrase, v), (phrase, v)
    for v in outside:
        assert not quantifier_holds(phrase, v), (phrase, v)


@pytest.mark.parametrize(
    ("quote", "value"),
    [  # published 2017 wordings, checked against values inside their bounds
        ("9 répondants sur 10", 90),
        ("3 dispositifs sur 4", 75),
        ("2 dispositifs sur 3", 66),
        ("Dans 3 cas sur 4", None),  # not a bare quantifier: must be rejected
    ],
)
def test_published_wordings(quote, value):
    if value is None:
        with pytest.raises(UnknownQuantifierError):
            quantifier_interval(quote)
    else:
        assert quantifier_holds(quote, value)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def test_default_choices_lie_inside_their_phrase_and_do_not_overlap():
    for choice in DEFAULT_CHOICES:
        assert choice.range.issubset(QUANTIFIERS[choice.phrase].interval), choice
    for a, b in itertools.pairwise(DEFAULT_CHOICES):
        assert a.range.high <= b.range.low
        if a.range.high == b.range.low:
            assert not (a.range.high_closed and b.range.low_closed), (a, b)


def test_default_choices_cover_the_brief_phrases():
    used = {c.phrase for c in DEFAULT_CHOICES}
    for phrase in [
        "moins de 10 %", "près d'un quart", "un quart", "près d'un tiers", "un tiers",
        "plus d'un tiers", "4 sur 10", "près de la moitié", "la moitié",
        "plus de la moitié", "2 sur 3", "3 sur 4", "9 sur 10", "près de 90 %",
        "la quasi-totalité",
    ]:
        assert phrase in used, phrase


def test_table_phrases_are_normalised_and_parse_to_themselves():
    for phrase, q in QUANTIFIERS.items():
        assert normalize_phrase(phrase) == phrase
        assert quantifier_interval(phrase) == q.interval
        assert q.family in FAMILIES
        assert 0 <= q.interval.low <= q.interval.high <= 100


def test_fraction_words_agree_with_ratios():
    assert quantifier_interval("un quart") == quantifier_interval("1 sur 4")
    assert quantifier_interval("un tiers") == quantifier_interval("1 sur 3")
    assert quantifier_interval("la moitié") == quantifier_interval("1 sur 2")
    assert quantifier_interval("les deux tiers") == quantifier_interval("2 sur 3")
    assert quantifier_interval("trois quarts") == quantifier_interval("3 sur 4")
    assert quantifier_interval("près de la moitié") == quantifier_interval("près de 50 %")


# --------------------------------------------------------------------------
# Parsing and errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant",
    ["Près d’un quart", "PRÈS D'UN QUART", "près\u00a0d'un  quart", " près d'un quart "],
)
def test_typographic_variants(variant):
    assert quantifier_interval(variant) == quantifier_interval("près d'un quart")


@pytest.mark.parametrize("variant", ["près de 40%", "près de 40\u202f%", "près de 40\u00a0%", "Près de 40 %"])
def test_percent_sign_variants(variant):
    assert quantifier_holds(variant, 38)


def test_open_forms():
    assert quantifier_holds("près de 55 %", 52.7)
    assert quantifier_holds("plus de 4,5 %", 4.6)
    assert not quantifier_holds("moins de 4,5 %", 4.5)
    assert quantifier_holds("25.6 %", 25.6)


@pytest.mark.parametrize("phrase", ["beaucoup", "la plupart", "4 sur 3", "1 sur 0", "près de 120 %", "130 %", ""])
def test_unknown_phrases_raise(phrase):
    with pytest.raises(UnknownQuantifierError):
        quantifier_interval(phrase)
    with pytest.raises(UnknownQuantifierError):
        quantifier_holds(phrase, 50)


@pytest.mark.parametrize("bad", [math.nan, -1, 100.5, 1e9])
def test_quantify_rejects_impossible_values(bad):
    with pytest.raises(ValueError):
        quantify(bad)
    assert not quantifier_holds("la moitié", bad)


def test_quantify_rejects_non_numbers():
    with pytest.raises(TypeError):
        quantify("50")  # type: ignore[arg-type]


def test_float_noise_at_the_ends_is_clamped():
    assert quantify(100 + 1e-12) == "la totalité"
    assert quantifier_holds("la totalité", 100 + 1e-12)
    assert quantify(-1e-12) == "aucun"


# --------------------------------------------------------------------------
# Preferences
# --------------------------------------------------------------------------
def test_prefer_published_wording_when_true():
    assert quantify(34.1, prefer="un tiers") == "un tiers"
    assert quantify(34.1, prefer=["plus d'un tiers", "un tiers"]) == "plus d'un tiers"
    assert quantify(40.0, prefer="un tiers") == "4 sur 10"  # false -> default


def test_prefer_family():
    assert quantify(25.6, prefer="ratio") == "1 sur 4"
    assert quantify(75.6, prefer="fraction") == "les trois quarts"
    assert quantify(88.9, prefer="percent") == "près de 90\u202f%"
    assert quantify(52.7, prefer="exact") == "plus de la moitié"  # no exact phrase -> default


def test_prefer_unknown_phrase_raises():
    with pytest.raises(UnknownQuantifierError):
        quantify(50, prefer="beaucoup")


def test_printed_phrases_have_a_narrow_no_break_space_before_percent():
    assert typeset("moins de 10 %") == "moins de 10\u202f%"
    assert quantify(7.0) == "moins de 10\u202f%"
    assert quantify(15.8) == "15,8\u202f%"
    assert "\u202f%" not in quantify(52.7)  # no « % », nothing to change
    assert quantifier_holds(quantify(7.0), 7.0)  # the printed form is understood back


@pytest.mark.parametrize(("k", "n"), [(15, 45), (1, 3), (2, 6), (40, 120), (333_333, 999_999)])
def test_a_float_share_of_one_third_is_exactly_one_third(k, n):
    """100·k/n as a float lands on either side of 100/3; the phrase must not depend on which."""
    for value in (100 * k / n, k / n * 100, 100 * (k / n)):
        assert quantifier_holds("un tiers", value), value
        assert not quantifier_holds("plus d'un tiers", value), value
        assert not quantifier_holds("moins d'un tiers", value), value
        assert quantify(value) == "un tiers"


@pytest.mark.parametrize(("k", "n"), [(30, 45), (2, 3), (666_666, 999_999)])
def test_a_float_share_of_two_thirds_is_exactly_two_thirds(k, n):
    for value in (100 * k / n, k / n * 100):
        assert not quantifier_holds("plus des deux tiers", value), value
        assert not quantifier_holds("moins des deux tiers", value), value
        assert quantifier_holds("2 sur 3", value), value


def test_terminating_values_keep_their_float_meaning():
    """15.35 as a float is 15.3499…: printed « 15,3 % », and judged so (not snapped to 307/20)."""
    assert quantify(15.35) == "15,3\u202f%" and quantifier_holds("15,3 %", 15.35)
    assert not quantifier_holds("15,4 %", 15.35)
