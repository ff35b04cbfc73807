"""Verbal quantifiers (« près d'un quart », « 3 sur 4 »…) chosen from the data.

The report never types a quantifier by hand: it asks :func:`quantify` for the
phrase that fits a percentage, so the text cannot contradict the figures. The
inverse check :func:`quantifier_holds` tells whether a given phrase (including
the wording published in 2017) is true of a value; the pipeline uses it to
test published wordings against recomputed figures.

Two explicit tables drive this module:

``QUANTIFIERS``
    What each phrase *means*: the interval of percentages (0–100 scale) for
    which it is true. They follow the bounds rules of
    ``references/published_2017.yaml`` and extend them by analogy:

    ===================================  ==========================  ================
    phrase                               interval                    rule
    ===================================  ==========================  ================
    « près de X % »                      [X − 5, X + 0,5)            reference
    « près d'un quart / d'un tiers /      same, X = 25, 33,33…,       reference rule,
    de la moitié / des deux tiers /       50, 66,67…, 75              X = the fraction
    des trois quarts »
    « moins de X % », « moins d'un …»    [0, X)                      reference
    « plus de X % », « plus d'un … »,     (X, 100]                    reference
    « plus de la moitié »
    « N sur D »                          [100·N/D − h, 100·N/D + h]  reference:
                                         h = 3 points,               1 sur 3, 2 sur 3,
                                         h = 10/3 for thirds         3 sur 4, 4 sur 10,
                                                                     9 sur 10
    « un quart », « un tiers »,          as « 1 sur 4 », « 1 sur 3 »,  reference
    « la moitié », « les deux tiers »,   « 1 sur 2 », « 2 sur 3 »,    (« 1 sur 3 /
    « les trois quarts »                 « 3 sur 4 »                 un tiers »)
    « la quasi-totalité »                [95, 100)                   près de 100 %, not all
    « la totalité »                      [100, 100]                  exact
    « aucun »                            [0, 0]                      exact
    « 25,6 % » (a bare figure)           [25,55 ; 25,65)             reference rounding
    ===================================  ==========================  ================

    « Près de » means *at or just below*: 25,6 % is **not** « près d'un
    quart » ([20 ; 25,5)), it is « un quart » ([22 ; 28]). Thirds use exact
    fractions (100/3, 200/3), so every interval here lies inside the
    published one (e.g. « 2 sur 3 » = [63,33… ; 70] ⊂ [63,3 ; 70]): a phrase
    this module accepts is also accepted by the reference bounds.

``DEFAULT_CHOICES``
    Which phrase :func:`quantify` writes for each range of values: an
    explicit, ordered partition of [0, 100] (editorial choice of the most
    specific natural phrase: an anchor within about three points of the
    value, « près de » only just below its anchor, « plus de » just above a
    threshold). Each range lies inside the truth interval of its phrase —
    checked when the module is imported and by the tests. Values in no range
    (currently [15 ; 17)) get the exact figure, « 15,8 % », which is always
    true: the fallback makes the mapping gap-free.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from numbers import Real
from typing import Any, cast

from barometre.fr import format_percent

__all__ = [
    "Interval",
    "Quantifier",
    "Choice",
    "QUANTIFIERS",
    "DEFAULT_CHOICES",
    "FAMILIES",
    "UnknownQuantifierError",
    "quantify",
    "quantifier_holds",
    "quantifier_interval",
    "normalize_phrase",
]

Bound = int | Fraction

#: Half-width (points) of « N sur D » and bare fractions; thirds use THIRD_HALF_WIDTH.
RATIO_HALF_WIDTH = Fraction(3)
THIRD_HALF_WIDTH = Fraction(10, 3)
#: « près de X % » covers [X − NEAR_BELOW, X + NEAR_ABOVE).
NEAR_BELOW = Fraction(5)
NEAR_ABOVE = Fraction(1, 2)


class UnknownQuantifierError(ValueError):
    """The phrase is neither in the table nor of a recognised form."""


@dataclass(frozen=True)
class Interval:
    """An interval of percentages, closed or open at each end, within [0, 100].

    Bounds are exact (``int`` or ``Fraction``) so that membership of a float
    is decided exactly, without rounding error.
    """

    low: Bound
    high: Bound
    low_closed: bool = True
    high_closed: bool = True

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"empty interval: {self.low} > {self.high}")

    def __contains__(self, x: object) -> bool:
        if not isinstance(x, (Real, Decimal)) or isinstance(x, bool):
            return False
        if isinstance(x, float) and math.isnan(x):
            return False
        v = cast(Any, x)  # numbers.Real declares no comparison operators to a type checker
        above = v >= self.low if self.low_closed else v > self.low
        below = v <= self.high if self.high_closed else v < self.high
        return bool(above and below)

    @property
    def width(self) -> Fraction:
        """Length of the interval (0 for a single point)."""
        return Fraction(self.high) - Fraction(self.low)

    def clamp(self) -> Interval:
        """Intersection with [0, 100] (percentages cannot leave it)."""
        low, low_closed = (self.low, self.low_closed) if self.low >= 0 else (0, True)
        high, high_closed = (self.high, self.high_closed) if self.high <= 100 else (100, True)
        return Interval(low, high, low_closed, high_closed)

    def issubset(self, other: Interval) -> bool:
        """True when every point of ``self`` lies in ``other``."""
        low_ok = self.low > other.low or (
            self.low == other.low and (other.low_closed or not self.low_closed)
        )
        high_ok = self.high < other.high or (
            self.high == other.high and (other.high_closed or not self.high_closed)
        )
        return low_ok and high_ok

    def __str__(self) -> str:
        def num(b: Bound) -> str:
            return str(b) if Fraction(b).denominator == 1 else f"{float(b):.4g}"

        left = "[" if self.low_closed else "("
        right = "]" if self.high_closed else ")"
        return f"{left}{num(self.low)}, {num(self.high)}{right}"


@dataclass(frozen=True)
class Quantifier:
    """A phrase, what it means, and where it is anchored.

    Attributes
    ----------
    phrase : str
        The French wording, lower case, as written in a sentence.
    interval : Interval
        Percentages (0–100) for which the phrase is true.
    anchor : Fraction
        The value the phrase names (25 for « un quart », 40 for « près de 40 % »).
    family : str
        ``"exact"``, ``"fraction"``, ``"ratio"``, ``"percent"`` (see ``FAMILIES``).
    rule : str
        The bounds rule it comes from, for the record.
    """

    phrase: str
    interval: Interval
    anchor: Fraction
    family: str
    rule: str


#: Families of phrases, usable as ``quantify(..., prefer=<family>)``.
FAMILIES = ("exact", "fraction", "ratio", "percent")


# --------------------------------------------------------------------------
# Interval rules
# --------------------------------------------------------------------------
def _near(x: Fraction) -> Interval:
    return Interval(x - NEAR_BELOW, x + NEAR_ABOVE, True, False).clamp()


def _less(x: Fraction) -> Interval:
    return Interval(0, x, True, False)


def _more(x: Fraction) -> Interval:
    return Interval(x, 100, False, True)


def _ratio(n: int, d: int) -> Interval:
    h = THIRD_HALF_WIDTH if d == 3 else RATIO_HALF_WIDTH
    a = Fraction(100 * n, d)
    return Interval(a - h, a + h).clamp()


def _figure(text: str) -> Interval:
    """Rounding interval of a printed figure: '25,6' -> [25.55, 25.65)."""
    value = Fraction(Decimal(text.replace(",", ".")))
    decimals = len(text.partition(",")[2])
    half = Fraction(1, 2 * 10**decimals)
    return Interval(value - half, value + half, True, False).clamp()


# Fractions in words: noun phrase with its article, value.
_FRACTION_WORDS: dict[str, Fraction] = {
    "un cinquième": Fraction(1, 5),
    "un quart": Fraction(1, 4),
    "un tiers": Fraction(1, 3),
    "la moitié": Fraction(1, 2),
    "les deux tiers": Fraction(2, 3),
    "les trois quarts": Fraction(3, 4),
}


def _with(preposition: str, noun_phrase: str) -> str:
    """« près de » + « un quart » -> « près d'un quart »; + « les … » -> « près des … »."""
    if noun_phrase.startswith("un "):
        return f"{preposition[:-3]} d'{noun_phrase}"
    if noun_phrase.startswith("les "):
        return f"{preposition[:-3]} des {noun_phrase[4:]}"
    return f"{preposition} {noun_phrase}"


def _build_table() -> dict[str, Quantifier]:
    table: dict[str, Quantifier] = {}

    def add(phrase: str, interval: Interval, anchor: Fraction, family: str, rule: str) -> None:
        table[phrase] = Quantifier(phrase, interval, Fraction(anchor), family, rule)

    add("aucun", Interval(0, 0), Fraction(0), "exact", "exactly 0")
    add("la totalité", Interval(100, 100), Fraction(100), "exact", "exactly 100")
    add("la quasi-totalité", Interval(95, 100, True, False), Fraction(100), "fraction",
        "près de 100 % but not all: [95, 100)")
    for words, frac in _FRACTION_WORDS.items():
        a = frac * 100
        ratio = _ratio(frac.numerator, frac.denominator)
        add(words, ratio, a, "fraction", f"= {frac.numerator} sur {frac.denominator}")
        if words.startswith("les "):
            add(words[4:], ratio, a, "fraction", f"= {frac.numerator} sur {frac.denominator}")
        add(_with("près de", words), _near(a), a, "fraction", "près de X %: [X-5, X+0.5)")
        add(_with("plus de", words), _more(a), a, "fraction", "plus de X: (X, 100]")
        add(_with("moins de", words), _less(a), a, "fraction", "moins de X: [0, X)")
    for d, numerators in ((2, (1,)), (3, (1, 2)), (4, (1, 3)), (5, (1, 2, 3, 4)),
                          (10, (1, 3, 4, 6, 7, 8, 9))):
        for n in numerators:
            add(f"{n} sur {d}", _ratio(n, d), Fraction(100 * n, d), "ratio",
                "N sur D: 100N/D ± 3 (± 10/3 for thirds)")
    for x in (10, 15, 20, 30, 40, 60, 70, 80, 90):
        add(f"près de {x} %", _near(Fraction(x)), Fraction(x), "percent",
            "près de X %: [X-5, X+0.5)")
    for x in (1, 5, 10, 20):
        add(f"moins de {x} %", _less(Fraction(x)), Fraction(x), "percent", "moins de X %: [0, X)")
    for x in (10, 20, 30, 40, 60, 70, 80, 90):
        add(f"plus de {x} %", _more(Fraction(x)), Fraction(x), "percent", "plus de X %: (X, 100]")
    return table


#: Every named phrase and what it means (see the module docstring).
QUANTIFIERS: dict[str, Quantifier] = _build_table()


@dataclass(frozen=True)
class Choice:
    """One row of ``DEFAULT_CHOICES``: values in ``range`` are written ``phrase``."""

    range: Interval
    phrase: str


def _c(low: Bound, high: Bound, closed: str, phrase: str) -> Choice:
    return Choice(Interval(low, high, closed[0] == "[", closed[1] == "]"), phrase)


_THIRD, _TWO_THIRDS = Fraction(100, 3), Fraction(200, 3)

#: What :func:`quantify` writes, range by range (ordered, non-overlapping).
#: Values in no range get the exact figure (``format_percent(value, 1)``).
DEFAULT_CHOICES: tuple[Choice, ...] = (
    _c(0, 0, "[]", "aucun"),
    _c(0, 1, "()", "moins de 1 %"),
    _c(1, 5, "[)", "moins de 5 %"),
    _c(5, 10, "[)", "moins de 10 %"),
    _c(10, 12, "[)", "1 sur 10"),
    _c(12, 15, "[)", "près de 15 %"),
    # [15, 17): no phrase close enough -> exact figure
    _c(17, 20, "[)", "près de 20 %"),
    _c(20, 22, "[)", "1 sur 5"),
    _c(22, 25, "[)", "près d'un quart"),
    _c(25, 28, "[]", "un quart"),
    _c(28, 31, "()", "3 sur 10"),
    _c(31, _THIRD, "[)", "près d'un tiers"),
    _c(_THIRD, 35, "[]", "un tiers"),
    _c(35, 37, "()", "plus d'un tiers"),
    _c(37, 39, "[)", "près de 40 %"),
    _c(39, 42, "[]", "4 sur 10"),
    _c(42, 45, "()", "plus de 40 %"),
    _c(45, 50, "[)", "près de la moitié"),
    _c(50, 50, "[]", "la moitié"),
    _c(50, 58, "()", "plus de la moitié"),
    _c(58, 62, "[]", "6 sur 10"),
    _c(62, _TWO_THIRDS, "()", "près des deux tiers"),
    _c(_TWO_THIRDS, 69, "[]", "2 sur 3"),
    _c(69, 72, "()", "7 sur 10"),
    _c(72, 75, "[)", "près des trois quarts"),
    _c(75, 78, "[]", "3 sur 4"),
    _c(78, 82, "(]", "8 sur 10"),
    _c(82, 85, "()", "plus de 80 %"),
    _c(85, 88, "[)", "près de 90 %"),
    _c(88, 92, "[]", "9 sur 10"),
    _c(92, 95, "()", "plus de 90 %"),
    _c(95, 100, "[)", "la quasi-totalité"),
    _c(100, 100, "[]", "la totalité"),
)


def _check_tables() -> None:
    """Each default range must lie inside its phrase's truth interval; no overlap."""
    previous: Interval | None = None
    for choice in DEFAULT_CHOICES:
        meaning = QUANTIFIERS[choice.phrase].interval
        if not choice.range.issubset(meaning):
            raise AssertionError(
                f"DEFAULT_CHOICES: {choice.phrase!r} is used on {choice.range} "
                f"but only true on {meaning}"
            )
        if previous is not None:
            touching = previous.high == choice.range.low
            if previous.high > choice.range.low or (
                touching and previous.high_closed and choice.range.low_closed
            ):
                raise AssertionError(f"DEFAULT_CHOICES overlap at {choice.range}")
        previous = choice.range


_check_tables()


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------
_NUM = r"(\d+(?:,\d+)?)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^{_NUM} %$"), "figure"),
    (re.compile(rf"^près de {_NUM} %$"), "near"),
    (re.compile(rf"^moins de {_NUM} %$"), "less"),
    (re.compile(rf"^plus de {_NUM} %$"), "more"),
    # « 3 sur 4 », « 9 répondants sur 10 », « 3 dispositifs sur 4 »
    (re.compile(r"^(\d+)(?: [^\d]+?)? sur (\d+)$"), "ratio"),
)


def normalize_phrase(phrase: str) -> str:
    """Canonical spelling of a phrase, so that typographic variants compare equal.

    Lower case; typographic apostrophe → ``'``; every kind of space (U+00A0,
    U+202F…) → one ordinary space; a space before ``%`` (``"40%"`` →
    ``"40 %"``); decimal point → comma.

    Parameters
    ----------
    phrase : str

    Returns
    -------
    str
    """
    text = phrase.strip().lower().replace("\u2019", "'").replace("\u02bc", "'")
    text = re.sub(r"\s+", " ", text)  # \s covers U+00A0 and U+202F
    text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)
    text = re.sub(r"\s*%", " %", text)
    return text


def quantifier_interval(phrase: str) -> Interval:
    """The interval of percentages on which ``phrase`` is true.

    Parameters
    ----------
    phrase : str
        A phrase of ``QUANTIFIERS`` or one of the open forms « X % »,
        « près de X % », « moins de X % », « plus de X % », « N sur D »,
        « N <mot> sur D » (any typographic variant, see :func:`normalize_phrase`).

    Returns
    -------
    Interval

    Raises
    ------
    UnknownQuantifierError
        If the phrase is not understood (never guess: an unknown phrase is an error).
    """
    text = normalize_phrase(phrase)
    if text in QUANTIFIERS:
        return QUANTIFIERS[text].interval
    for pattern, kind in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if kind == "ratio":
            n, d = int(match.group(1)), int(match.group(2))
            if d == 0 or n > d:
                raise UnknownQuantifierError(f"not a proportion: {phrase!r}")
            return _ratio(n, d)
        if kind == "figure":
            if Fraction(Decimal(match.group(1).replace(",", "."))) > 100:
                raise UnknownQuantifierError(f"not a percentage: {phrase!r}")
            return _figure(match.group(1))
        x = Fraction(Decimal(match.group(1).replace(",", ".")))
        if x > 100:
            raise UnknownQuantifierError(f"not a percentage: {phrase!r}")
        if kind == "near":
            return _near(x)
        if kind == "less":
            return _less(x)
        return _more(x)
    raise UnknownQuantifierError(f"unknown quantifier: {phrase!r}")


#: Largest denominator of the exact value a float percentage stands for (see :func:`_check_percent`).
EXACT_DENOMINATOR = 10**6


def _terminates(q: Fraction) -> bool:
    """Whether ``q`` has a finite decimal expansion (its denominator divides a power of 10)."""
    d = q.denominator
    for prime in (2, 5):
        while d % prime == 0:
            d //= prime
    return d == 1


def _check_percent(percent: float) -> float | Fraction:
    """The percentage, clamped to [0, 100]; a float standing for a third, a seventh… made exact.

    A share computed from counts is 100·k/n, but as a float it lands a little
    above or below the exact value: 100 × 15 / 45 is 33.333333333333336, just
    *above* one third, so « plus d'un tiers » would be wrongly true. When the
    nearest fraction of denominator at most :data:`EXACT_DENOMINATOR` has no
    finite decimal expansion (15/45 → 100/3) and lies within 10⁻¹³ (relative) of the
    float — a few units in the last place, the error of computing 100·k/n —, that
    fraction is used: such values
    are the only bounds of the phrase table (thirds) a float can never hit. Values
    with a finite expansion stay the float they are, so that a printed figure
    (« 15,3 % » for the float 15.35, which is 15.3499…) is judged as
    :func:`~barometre.fr.format_percent` prints it.
    """
    if isinstance(percent, bool) or not isinstance(percent, (Real, Decimal)):
        raise TypeError(f"percent must be a number, got {type(percent).__name__}")
    value = float(percent)
    if math.isnan(value):
        raise ValueError("percent is NaN: no phrase can describe a missing value")
    if not -1e-9 <= value <= 100 + 1e-9:
        raise ValueError(f"percent must be on the 0-100 scale, got {percent!r}")
    value = min(max(value, 0.0), 100.0)
    exact = Fraction(value).limit_denominator(EXACT_DENOMINATOR)
    if not _terminates(exact) and abs(float(exact) - value) <= 1e-13 * max(1.0, value):
        return exact
    return value


def typeset(phrase: str) -> str:
    """A phrase kept as the registry writes it (straight apostrophe, so that it matches the published
    wording), with only a narrow no-break space (U+202F) before « % »; the page it lands in gets the
    full French typography (:func:`barometre.typography.typeset_html`)."""
    return re.sub(r" %", "\u202f%", phrase)


def quantifier_holds(phrase: str, percent: float) -> bool:
    """Tell whether ``phrase`` is a true description of ``percent``.

    Parameters
    ----------
    phrase : str
        See :func:`quantifier_interval` for the accepted phrases.
    percent : float
        The value on the 0–100 scale (values within 1e-9 outside are
        clamped, as in :func:`quantify`). NaN, a non-number or a value
        outside [0, 100] is never described truly: the result is False.

    Returns
    -------
    bool

    Raises
    ------
    UnknownQuantifierError
        If the phrase is not understood.

    Examples
    --------
    >>> quantifier_holds("près d'un quart", 25.6)
    False
    >>> quantifier_holds("un quart", 25.6)
    True
    >>> quantifier_holds("3 dispositifs sur 4", 75.6)
    True
    """
    interval = quantifier_interval(phrase)
    try:
        value = _check_percent(percent)
    except (TypeError, ValueError):
        return False
    return value in interval


def _default_phrase(value: float | Fraction) -> str:
    for choice in DEFAULT_CHOICES:
        if value in choice.range:
            return choice.phrase
    return format_percent(float(value), 1)


def _most_specific(candidates: Iterable[str], value: float | Fraction) -> str | None:
    """Narrowest truth interval first, then closest anchor, then table order."""
    holding = [QUANTIFIERS[p] for p in candidates if value in QUANTIFIERS[p].interval]
    if not holding:
        return None
    best = min(
        enumerate(holding),
        key=lambda item: (item[1].interval.width, abs(item[1].anchor - Fraction(value)), item[0]),
    )
    return best[1].phrase


def quantify(percent: float, prefer: str | Sequence[str] | None = None) -> str:
    """The French phrase describing ``percent``, guaranteed true.

    Parameters
    ----------
    percent : float
        Percentage on the 0–100 scale (values within 1e-9 outside are clamped).
    prefer : str or sequence of str, optional
        Wordings to use when they are true, tried in order. Each item is
        either a phrase (e.g. the 2017 published wording ``"un tiers"``,
        or ``"près de 40 %"``) or a family name from ``FAMILIES``
        (``"ratio"`` for « N sur D », ``"fraction"`` for « un quart »…,
        ``"percent"`` for « près de X % »…, ``"exact"``), which stands for
        the most specific true phrase of that family (narrowest interval,
        then closest anchor). The first item that holds wins; if none holds,
        the default choice applies.

    Returns
    -------
    str
        The preferred phrase if one holds; otherwise the phrase of
        ``DEFAULT_CHOICES`` for this value; otherwise the exact figure
        (« 15,8 % »). Printed French style (:func:`typeset`: U+202F before
        « % »). In every case ``quantifier_holds(result, percent)`` is True.

    Raises
    ------
    ValueError
        If ``percent`` is NaN or outside [0, 100].
    UnknownQuantifierError
        If a preferred phrase is not understood.

    Examples
    --------
    >>> quantify(52.7)
    'plus de la moitié'
    >>> quantify(75.6)
    '3 sur 4'
    >>> quantify(34.1, prefer="un tiers")
    'un tiers'
    >>> quantify(40.0, prefer="un tiers")
    '4 sur 10'
    """
    value = _check_percent(percent)
    if isinstance(prefer, str):
        prefer = (prefer,)
    for item in prefer or ():
        if item in FAMILIES:
            phrase = _most_specific((q.phrase for q in QUANTIFIERS.values() if q.family == item), value)
            if phrase is not None:
                return typeset(phrase)
        elif value in quantifier_interval(item):
            return typeset(item)
    return typeset(_default_phrase(value))
