"""French formatting of every number, date and interval a reader sees.

All functions are pure (no locale, no global state, no I/O) and return ``str``.
The conventions, decided once for the whole report:

* **Decimal mark** — comma: ``25,6``.
* **Thousands separator** — narrow no-break space U+202F (*espace fine
  insécable*), from 1 000 up: ``4 120 350``, ``1 000`` (the published 2017
  texts write « 1 000 euros », « 5 000 euros »). Do not use these functions
  for years.
* **Percent sign** — preceded by U+202F: ``25,6 %``. French typography
  requires a non-breaking space before « % »; U+202F is the thin variant used
  by CLDR for ``fr`` and by the Imprimerie nationale rules, and it keeps the
  number and its sign on the same line.
* **Number + word unit** (``4 millions``) — no-break space U+00A0.
* **Minus sign** — U+2212 ``−`` (typographic minus), never a hyphen.
* **Missing values** — ``None``, NaN, ``pandas.NA`` and ``pandas.NaT`` are
  shown as an en dash ``–`` (U+2013). Infinite values raise ``ValueError``:
  a reader should never see one, it is always a bug upstream.
* **Rounding** — half away from zero, applied to the *exact* binary value of
  the float (not to its shortest ``repr``). This is the rule of the published
  bounds (« 25,6 % » means a value in [25.55, 25.65)), so a printed figure
  and the conformity check on the same float can never disagree: the float
  ``25.65`` is really 25.6499999…, it prints « 25,6 % » and does lie in
  [25.55, 25.65).

Examples
--------
>>> format_percent(25.6)
'25,6\\u202f%'
>>> format_number(4120350)
'4\\u202f120\\u202f350'
>>> format_large(4_200_000)
'4,2\\xa0millions'
>>> format_date("2017-06-15")
'15 juin 2017'
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from numbers import Integral, Rational, Real

__all__ = [
    "NNBSP",
    "NBSP",
    "MINUS",
    "MISSING",
    "MONTHS",
    "format_decimal",
    "format_number",
    "format_percent",
    "format_large",
    "format_date",
    "format_range",
    "is_missing",
]

#: Narrow no-break space (espace fine insécable): thousands and before « % ».
NNBSP = "\u202f"
#: No-break space (espace insécable): between a number and a word unit.
NBSP = "\u00a0"
#: Typographic minus sign.
MINUS = "\u2212"
#: What a missing value looks like (en dash).
MISSING = "\u2013"
#: French month names, index 1 to 12 (index 0 unused).
MONTHS = (
    "",
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

# ``float`` named as well as ``Real``: type checkers do not see float (nor int) as a numbers.Real.
Number = float | Decimal | Real
DateLike = _dt.date | str

_PRECISION = 80  # digits of the decimal context; ample for any float


_THOUSANDS_RE = re.compile(r"(?<=\d) (?=\d{3}\b)")


def nbsp_thousands(text: str) -> str:
    """« 1 000 € » typed with an ordinary space → U+202F, so that a number is never split over two lines."""
    return _THOUSANDS_RE.sub(NNBSP, text)


def is_missing(value: object) -> bool:
    """Tell whether ``value`` is a missing value.

    Parameters
    ----------
    value : object
        Anything.

    Returns
    -------
    bool
        True for ``None``, NaN (float, NumPy or ``Decimal``), ``pandas.NA``
        and ``pandas.NaT``; False otherwise.
    """
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except TypeError:  # pandas.NA: bool(NA != NA) is ambiguous
        return True


def _to_decimal(value: Number) -> Decimal:
    """Exact decimal value of a real number (floats are not re-rounded)."""
    if isinstance(value, bool):
        raise TypeError("expected a number, got a bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, Integral):
        result = Decimal(int(value))
    elif isinstance(value, Rational):  # Fraction
        frac = Fraction(int(value.numerator), int(value.denominator))
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            result = Decimal(frac.numerator) / Decimal(frac.denominator)
    elif isinstance(value, Real):
        as_float = float(value)
        if math.isinf(as_float):
            raise ValueError(f"cannot format an infinite value ({value!r})")
        result = Decimal(as_float)  # exact binary value
    else:
        raise TypeError(f"expected a number, got {type(value).__name__}: {value!r}")
    if result.is_infinite():
        raise ValueError(f"cannot format an infinite value ({value!r})")
    return result


def _round(value: Decimal, decimals: int) -> Decimal:
    """Round half away from zero to ``decimals`` places."""
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _group(digits: str) -> str:
    """Insert U+202F every three digits from the right."""
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return NNBSP.join(parts)


def _render(rounded: Decimal, strip_zeros: bool = False) -> str:
    """French rendering of an already rounded decimal."""
    text = f"{abs(rounded):f}"
    integer, _, fraction = text.partition(".")
    if strip_zeros:
        fraction = fraction.rstrip("0")
    out = _group(integer) + ("," + fraction if fraction else "")
    if rounded < 0 and not rounded.is_zero():
        out = MINUS + out  # "-0,0" is shown as "0,0"
    return out


def format_decimal(x: Number | None, decimals: int = 1) -> str:
    """Format a number with a decimal comma and a fixed number of decimals.

    Parameters
    ----------
    x : real number or None
        The value. Missing values give ``"–"``.
    decimals : int, default 1
        Number of decimals, kept even when they are zeros (``"3,0"``).

    Returns
    -------
    str
        E.g. ``"3,1"``, ``"1 234,5"`` (U+202F between thousands), ``"−0,4"``.

    Raises
    ------
    ValueError
        If ``x`` is infinite or ``decimals`` is negative.
    TypeError
        If ``x`` is not a number.

    Examples
    --------
    >>> format_decimal(3.14159, 2)
    '3,14'
    """
    if is_missing(x):
        return MISSING
    return _render(_round(_to_decimal(x), decimals))  # type: ignore[arg-type]


def format_number(n: Number | None, decimals: int = 0) -> str:
    """Format a count or amount with thousands separated by U+202F.

    Parameters
    ----------
    n : real number or None
        The value; floats are rounded (half away from zero).
    decimals : int, default 0
        Number of decimals.

    Returns
    -------
    str
        E.g. ``"4 120 350"``, ``"1 000"``, ``"98"``; ``"–"`` when missing.

    Examples
    --------
    >>> format_number(4120350) == "4\\u202f120\\u202f350"
    True
    """
    return format_decimal(n, decimals)


def format_percent(value: Number | None, decimals: int = 1) -> str:
    """Format a percentage the French way: ``"25,6 %"``.

    Parameters
    ----------
    value : real number or None
        The percentage **on the 0–100 scale** (25.6, not 0.256).
    decimals : int, default 1
        Number of decimals.

    Returns
    -------
    str
        Number, U+202F, ``%``; ``"–"`` when missing.

    Notes
    -----
    The printed figure ``X`` with ``d`` decimals guarantees that ``value``
    lies in ``[X - 0.5·10^-d, X + 0.5·10^-d)``, the bounds rule of the
    published references.

    Examples
    --------
    >>> format_percent(25.6) == "25,6\\u202f%"
    True
    >>> format_percent(43, decimals=0) == "43\\u202f%"
    True
    """
    if is_missing(value):
        return MISSING
    return f"{format_decimal(value, decimals)}{NNBSP}%"


_SCALES = ((10**9, "milliard"), (10**6, "million"))


def format_large(n: Number | None, decimals: int = 1) -> str:
    """Format a large quantity in words: ``"4 millions"``, ``"1,5 milliard"``.

    Rules
    -----
    1. Below one million (after rounding to a whole number), the number is
       written in full with :func:`format_number`: ``"120 000"``.
    2. From one million, the value is expressed in millions, from one
       billion (10⁹) in *milliards*, rounded to ``decimals`` decimals (half
       away from zero, on the exact value); a rounding that reaches 1 000
       millions switches to milliards (``999 960 000`` → ``"1 milliard"``).
    3. Trailing zero decimals are dropped: ``"4 millions"``, not ``"4,0 millions"``.
    4. Agreement (Académie française): the noun is plural from 2 up, singular
       below — ``"1 million"``, ``"1,5 milliard"``, ``"2 millions"``.
    5. Number and word are joined by a no-break space U+00A0.

    The result is an *approximation*: « 4 millions » is printed for
    4 040 000. A claim such as « plus de 4 millions » must be checked on the
    exact value, not derived from this text.

    Parameters
    ----------
    n : real number or None
        The quantity. Missing values give ``"–"``.
    decimals : int, default 1
        Maximum number of decimals of the millions / milliards.

    Returns
    -------
    str

    Examples
    --------
    >>> format_large(4_000_000) == "4\\xa0millions"
    True
    >>> format_large(1_500_000_000) == "1,5\\xa0milliard"
    True
    """
    if is_missing(n):
        return MISSING
    exact = _to_decimal(n)  # type: ignore[arg-type]
    magnitude = abs(exact)
    if _round(magnitude, 0) < 10**6:
        return format_number(exact)
    for index, (scale, word) in enumerate(_SCALES):  # noqa: B007 - word is read after the loop
        if magnitude >= scale or index == len(_SCALES) - 1:
            break
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        amount = _round(magnitude / scale, decimals)
        if word == "million" and amount >= 1000:
            scale, word = _SCALES[0]
            amount = _round(magnitude / scale, decimals)
    plural = "s" if amount >= 2 else ""
    sign = MINUS if exact < 0 else ""
    return f"{sign}{_render(amount, strip_zeros=True)}{NBSP}{word}{plural}"


def _to_date(value: object) -> _dt.date:
    if isinstance(value, _dt.datetime):  # also pandas.Timestamp
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) > 10:
                return _dt.datetime.fromisoformat(text).date()
            return _dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 date: {value!r}") from exc
    raise TypeError(f"expected a date, datetime or ISO string, got {type(value).__name__}")


def format_date(date: DateLike | None) -> str:
    """Format a date as French prose: ``"15 juin 2017"``.

    Parameters
    ----------
    date : datetime.date, datetime.datetime, pandas.Timestamp, ISO str or None
        The date; the time of day, if any, is ignored. Missing → ``"–"``.

    Returns
    -------
    str
        Day without leading zero (the first of the month is ``"1er"``, as
        French usage requires), month in lower case, four-digit year:
        ``"1er juin 2017"``, ``"6 octobre 2017"``.

    Examples
    --------
    >>> format_date("2017-10-06")
    '6 octobre 2017'
    """
    if is_missing(date):
        return MISSING
    d = _to_date(date)
    day = "1er" if d.day == 1 else str(d.day)
    return f"{day} {MONTHS[d.month]} {d.year}"


def format_range(
    low: Number | None,
    high: Number | None,
    decimals: int = 1,
    unit: str | None = "%",
) -> str:
    """Format an interval (e.g. a confidence interval): ``"[21,3 % ; 27,9 %]"``.

    Parameters
    ----------
    low, high : real number or None
        The bounds, ``low <= high``. If either is missing the result is ``"–"``.
    decimals : int, default 1
        Decimals of both bounds.
    unit : {"%", None}, default "%"
        ``"%"`` formats the bounds with :func:`format_percent` (0–100 scale);
        ``None`` with :func:`format_decimal`.

    Returns
    -------
    str
        French interval notation: square brackets, bounds separated by a
        semicolon (the comma is the decimal mark), U+202F before the
        semicolon and an ordinary space after it.

    Raises
    ------
    ValueError
        If ``low > high`` or ``unit`` is not ``"%"`` or ``None``.

    Examples
    --------
    >>> format_range(21.3, 27.9) == "[21,3\\u202f%\\u202f; 27,9\\u202f%]"
    True
    """
    if unit not in ("%", None):
        raise ValueError(f"unit must be '%' or None, got {unit!r}")
    if is_missing(low) or is_missing(high):
        return MISSING
    if _to_decimal(low) > _to_decimal(high):  # type: ignore[arg-type]
        raise ValueError(f"interval bounds out of order: {low!r} > {high!r}")
    fmt = format_percent if unit == "%" else format_decimal
    return f"[{fmt(low, decimals)}{NNBSP}; {fmt(high, decimals)}]"

