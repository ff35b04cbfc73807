"""French formats (barometre.fr): typography, rounding, missing values."""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barometre import fr
from barometre.fr import (
    MINUS,
    MISSING,
    NBSP,
    NNBSP,
    format_date,
    format_decimal,
    format_large,
    format_number,
    format_percent,
    format_range,
    is_missing,
)


def test_typographic_constants():
    assert NNBSP == "\u202f"
    assert NBSP == "\u00a0"
    assert MINUS == "\u2212"
    assert MISSING == "\u2013"


# --------------------------------------------------------------------------
# format_percent
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (25.6, 1, "25,6\u202f%"),
        (74.4, 1, "74,4\u202f%"),
        (43, 0, "43\u202f%"),
        (100, 1, "100,0\u202f%"),
        (0, 1, "0,0\u202f%"),
        (8.94, 1, "8,9\u202f%"),
        (8.95, 1, "8,9\u202f%"),  # float 8.95 is 8.9499999999999992894…
        (8.75, 1, "8,8\u202f%"),  # exact binary tie: half away from zero
        (25.55, 1, "25,6\u202f%"),  # float 25.55 is just above 25.55
        (25.65, 1, "25,6\u202f%"),  # float 25.65 is 25.6499999… : still in [25.55, 25.65)
        (0.125, 2, "0,13\u202f%"),  # exact binary tie: half away from zero
        (100 / 3, 1, "33,3\u202f%"),
        (np.float64(56.25), 1, "56,3\u202f%"),
        (Decimal("12.35"), 1, "12,4\u202f%"),
        (Fraction(200, 3), 2, "66,67\u202f%"),
        (-0.04, 1, "0,0\u202f%"),  # no "−0,0"
        (-2.5, 1, "\u22122,5\u202f%"),
    ],
)
def test_format_percent(value, decimals, expected):
    assert format_percent(value, decimals) == expected


def test_percent_uses_narrow_no_break_space_only():
    text = format_percent(12345.678, 2)
    assert text == "12\u202f345,68\u202f%"
    assert " " not in text and "." not in text


@pytest.mark.parametrize("missing", [None, math.nan, float("nan"), np.nan, pd.NA, pd.NaT, Decimal("NaN")])
def test_missing_values_are_an_en_dash(missing):
    assert is_missing(missing)
    assert format_percent(missing) == "–"
    assert format_decimal(missing) == "–"
    assert format_number(missing) == "–"
    assert format_large(missing) == "–"
    assert format_range(missing, 10) == "–"
    assert format_range(10, missing) == "–"


@pytest.mark.parametrize("value", [0, 0.0, "", "abc", 12.5, dt.date(2017, 1, 1)])
def test_is_missing_false(value):
    assert not is_missing(value)


@pytest.mark.parametrize("func", [format_percent, format_decimal, format_number, format_large])
@pytest.mark.parametrize("value", [math.inf, -math.inf, np.inf])
def test_infinite_values_raise(func, value):
    with pytest.raises(ValueError, match="infinite"):
        func(value)


@pytest.mark.parametrize("func", [format_percent, format_decimal, format_number])
def test_non_numbers_raise(func):
    with pytest.raises(TypeError):
        func("12")
    with pytest.raises(TypeError):
        func(True)


def test_negative_decimals_raise():
    with pytest.raises(ValueError):
        format_decimal(1.5, -1)


def _parse(text: str) -> Decimal:
    text = text.replace("\u202f%", "").replace("\u202f", "").replace(",", ".").replace(MINUS, "-")
    return Decimal(text)


@settings(max_examples=500, deadline=None)
@given(
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.integers(min_value=0, max_value=3),
)
def test_printed_percent_satisfies_the_published_bounds_rule(value, decimals):
    """« 25,6 % » must mean a value in [25.55, 25.65): printing and bounds agree."""
    printed = _parse(format_percent(value, decimals))
    half = Fraction(1, 2 * 10**decimals)
    assert Fraction(printed) - half <= Fraction(value) < Fraction(printed) + half


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_decimal_format_shape(value):
    text = format_decimal(value, 2)
    assert re.fullmatch(r"\u2212?\d{1,3}(\u202f\d{3})*,\d{2}", text), text


# --------------------------------------------------------------------------
# format_number / format_decimal
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4120350, "4\u202f120\u202f350"),
        (1000, "1\u202f000"),
        (5000, "5\u202f000"),
        (999, "999"),
        (98, "98"),
        (0, "0"),
        (1234.5, "1\u202f235"),
        (-1234567, "\u22121\u202f234\u202f567"),
        (np.int64(4000001), "4\u202f000\u202f001"),
        (10**15, "1\u202f000\u202f000\u202f000\u202f000\u202f000"),
    ],
)
def test_format_number(value, expected):
    assert format_number(value) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (1.82, 2, "1,82"),
        (0.44, 2, "0,44"),
        (3, 1, "3,0"),
        (3.14159, 3, "3,142"),
        (1234.5, 1, "1\u202f234,5"),
        (-0.25, 1, "\u22120,3"),  # half away from zero
        (2.5, 0, "3"),
    ],
)
def test_format_decimal(value, decimals, expected):
    assert format_decimal(value, decimals) == expected


def test_format_number_with_decimals():
    assert format_number(1234.567, decimals=1) == "1\u202f234,6"


# --------------------------------------------------------------------------
# format_large
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (120_000, "120\u202f000"),
        (999_999.4, "999\u202f999"),
        (999_999.6, "1\u00a0million"),  # rounds to one million
        (1_000_000, "1\u00a0million"),
        (1_500_000, "1,5\u00a0million"),  # singular below 2
        (1_960_000, "2\u00a0millions"),
        (4_000_000, "4\u00a0millions"),
        (4_040_000, "4\u00a0millions"),
        (4_200_000, "4,2\u00a0millions"),
        (4_250_000, "4,3\u00a0millions"),
        (999_960_000, "1\u00a0milliard"),  # 1 000,0 millions -> milliards
        (1_000_000_000, "1\u00a0milliard"),
        (1_500_000_000, "1,5\u00a0milliard"),
        (2_250_000_000, "2,3\u00a0milliards"),
        (3_400_000_000_000, "3\u202f400\u00a0milliards"),
        (-4_200_000, "\u22124,2\u00a0millions"),
    ],
)
def test_format_large(value, expected):
    assert format_large(value) == expected


def test_format_large_decimals():
    assert format_large(4_123_456, decimals=2) == "4,12\u00a0millions"
    assert format_large(4_123_456, decimals=0) == "4\u00a0millions"


# --------------------------------------------------------------------------
# format_date
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2017, 6, 15), "15 juin 2017"),
        (dt.date(2017, 10, 6), "6 octobre 2017"),
        (dt.date(2017, 6, 1), "1er juin 2017"),
        (dt.datetime(2017, 8, 15, 23, 59), "15 août 2017"),
        (pd.Timestamp("2016-03-22"), "22 mars 2016"),
        ("2017-06-15", "15 juin 2017"),
        ("2017-02-01T10:30:00", "1er février 2017"),
        (None, "–"),
        (pd.NaT, "–"),
    ],
)
def test_format_date(value, expected):
    assert format_date(value) == expected


def test_all_months():
    names = [format_date(dt.date(2017, m, 2)).split(" ")[1] for m in range(1, 13)]
    assert names == [
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ]


def test_format_date_errors():
    with pytest.raises(ValueError):
        format_date("15/06/2017")
    with pytest.raises(TypeError):
        format_date(20170615)


# --------------------------------------------------------------------------
# format_range
# --------------------------------------------------------------------------
def test_format_range_percent():
    assert format_range(21.3, 27.9) == "[21,3\u202f%\u202f; 27,9\u202f%]"


def test_format_range_plain_and_decimals():
    assert format_range(1.815, 1.825, decimals=3, unit=None) == "[1,815\u202f; 1,825]"
    assert format_range(21.26, 27.94, decimals=0) == "[21\u202f%\u202f; 28\u202f%]"


def test_format_range_errors():
    with pytest.raises(ValueError, match="out of order"):
        format_range(30, 20)
    with pytest.raises(ValueError, match="unit"):
        format_range(1, 2, unit="€")


def test_module_is_pure():
    """No locale dependence: the module never imports locale."""
    import inspect

    assert "import locale" not in inspect.getsource(fr)
