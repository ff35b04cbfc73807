"""What the report's templates print: every figure and cell goes through :class:`ReportData`.

The templates never format a number themselves: they call the helpers of :class:`ReportData`
(``pct('F05')``, ``n('R01')``, ``base('F05')``, ``quant('F09', 'outil', 'outils')``…), which
read ``figures.csv`` and ``cells.csv``, format in French (:mod:`barometre.fr`) and wrap each
printed figure in ``<span class="fig" data-fig="F05" data-kind="pct">`` so that tests can
check it against ``figures.csv``. The small formatting helpers they share live here too.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from markupsafe import Markup, escape

from barometre import fr
from barometre.errors import BarometreError
from barometre.quantifiers import quantify


class RenderError(BarometreError):
    """The report cannot be rendered (unknown figure, missing chart…)."""


# --------------------------------------------------------------------------- small formatting helpers


def date_period(start: Any, end: Any) -> str:
    """« du 15 juin au 6 octobre 2017 » (the year once when both dates share it)."""
    s, e = fr.format_date(start), fr.format_date(end)
    s_year, e_year = s.rsplit(" ", 1)[-1], e.rsplit(" ", 1)[-1]
    if s_year == e_year:
        s = s.rsplit(" ", 1)[0]
    return f"du {s} au {e}"


def format_bound(value: float, percent: bool) -> str:
    """A conformity bound: integers without decimals, others with up to 2 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fr.MISSING
    if math.isinf(value):
        return "+\u221e" if value > 0 else fr.MINUS + "\u221e"
    if float(value).is_integer():
        text = fr.format_number(value)
    else:
        text = fr.format_decimal(value, 2)
        text = text.rstrip("0").rstrip(",") if "," in text else text
    return f"{text}\u202f%" if percent else text


def _span(text: str, key: str, kind: str, **attrs: str) -> Markup:
    extra = "".join(f' data-{k}="{escape(v)}"' for k, v in attrs.items())
    return Markup(f'<span class="fig" data-fig="{escape(key)}" data-kind="{escape(kind)}"{extra}>{escape(text)}</span>')


_RATIO_RE = re.compile(r"^(\d+) sur (\d+)$")


def quantified_phrase(phrase: str, singular: str, plural: str) -> str:
    """Put a quantifier before a noun: « 3 outils sur 4 », « plus de la moitié des outils », « aucun outil »."""
    m = _RATIO_RE.match(phrase)
    if m:
        n, d = int(m.group(1)), m.group(2)
        return f"{n} {singular if n < 2 else plural} sur {d}"
    if phrase == "aucun":
        return f"aucun {singular}"
    return f"{phrase} des {plural}"


#: Measures printed as a decimal number (« 1,82 € »), never rounded to an integer.
AVERAGE_MEASURES = ("mean", "median")
AVERAGE_DECIMALS = 2


def is_euro(row: Mapping) -> bool:
    """Whether a mean / median figure is an amount in euros (variable ``*_eur`` or « euros » in its definition)."""
    variable = str(row.get("question") or "")
    return variable.endswith("_eur") or "euro" in str(row.get("definition") or "").lower()


def average_text(value: float, row: Mapping, decimals: int = AVERAGE_DECIMALS) -> str:
    """« 1,82 € » / « 3,50 »: a mean or median with its decimals and, for an amount, the euro sign."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fr.MISSING
    text = fr.format_decimal(value, decimals)
    return f"{text}{fr.NBSP}€" if is_euro(row) else text

# --------------------------------------------------------------------------- the data given to templates


@dataclass
class ReportData:
    """Lookup of figures and cells for the templates; every printed number goes through here."""

    figures: pd.DataFrame
    cells: pd.DataFrame

    def __post_init__(self) -> None:
        if "key" not in self.figures.columns:
            comp = self.figures["component"].fillna("").astype(str)
            keys = [f"{i}.{c}" if c else str(i) for i, c in zip(self.figures["id"], comp, strict=True)]
            self.figures = self.figures.assign(component=comp, key=keys)
        self._by_key = {r["key"]: r for r in self.figures.to_dict("records")}

    # -- figures ---------------------------------------------------------------
    def row(self, key: str) -> dict:
        try:
            return self._by_key[key]
        except KeyError:
            known = ", ".join(sorted(self._by_key))
            raise RenderError(f"figure {key!r} is not in figures.csv (known: {known})") from None

    def has(self, key: str) -> bool:
        return key in self._by_key

    def val(self, key: str) -> float:
        """Raw value of a figure (for conditions in templates, never printed as is)."""
        v = self.row(key)["value"]
        return float(v) if v is not None and not pd.isna(v) else math.nan

    def pct(self, key: str, decimals: int = 1) -> Markup:
        """« 88,9 % »: the value of a share figure (« secret statistique » when the publication layer withholds it)."""
        r = self.row(key)
        if r["measure"] not in ("share",):
            raise RenderError(f"pct({key!r}): figure is a {r['measure']}, not a share")
        if r.get("disclosure_status") == "suppressed":
            return _span("secret statistique", key, "secret")
        return _span(fr.format_percent(self.val(key), decimals), key, "pct", decimals=str(decimals))

    def n(self, key: str) -> Markup:
        """A count: the value of a count / distinct / sum figure, the numerator of a share."""
        r = self.row(key)
        v = self.val(key) if r["measure"] in ("count", "distinct", "sum") else float(r["numerator"])
        return _span(fr.format_number(v), key, "n")

    def base(self, key: str) -> Markup:
        """The denominator (base) of a share figure."""
        return _span(fr.format_number(float(self.row(key)["denominator"])), key, "base")

    def points(self, key: str, decimals: int = 1) -> Markup:
        """A difference in points, as an absolute value (« 2,3 »)."""
        return _span(fr.format_decimal(abs(self.val(key)), decimals), key, "points", decimals=str(decimals))

    def average(self, key: str, decimals: int = AVERAGE_DECIMALS) -> Markup:
        """A mean or median with its decimals (« 1,82 € »): never rounded to an integer."""
        r = self.row(key)
        if r["measure"] not in AVERAGE_MEASURES:
            raise RenderError(f"average({key!r}): figure is a {r['measure']}, not a mean or median")
        return _span(average_text(self.val(key), r, decimals), key, "average", decimals=str(decimals))

    def value(self, key: str) -> Markup:
        """The value of any figure, formatted by its measure (share, count, mean, median, difference)."""
        measure = self.row(key)["measure"]
        if measure == "share":
            return self.pct(key)
        if measure in AVERAGE_MEASURES:
            return self.average(key)
        if measure == "difference":
            return self.points(key) + Markup("\u00a0pt")
        return self.n(key)

    def measure(self, key: str) -> str:
        return str(self.row(key)["measure"])

    def unit_label(self, key: str) -> str:
        """French noun of the figure's unit (« répondants », « outils »…)."""
        from barometre.figures import UNIT_LABELS

        return UNIT_LABELS.get(str(self.row(key).get("unit")), "")

    def large(self, key: str) -> Markup:
        """A large quantity in words (« 4 millions »)."""
        return _span(fr.format_large(self.val(key)), key, "large")

    def ci(self, key: str) -> Markup:
        """The 95 % Wilson interval of a share, « [81,2 % ; 95,1 %] »."""
        r = self.row(key)
        return _span(fr.format_range(r["ci_low"], r["ci_high"]), key, "ci")

    def quant(self, key: str, singular: str | None = None, plural: str | None = None) -> Markup:
        """The true verbal quantifier of a share (:func:`barometre.quantifiers.quantify`), optionally before a noun."""
        phrase = quantify(self.val(key))
        text = quantified_phrase(phrase, singular, plural) if singular and plural else phrase
        return _span(text, key, "quant", phrase=phrase)

    def soit(self, key: str) -> Markup:
        """« , soit 3 sur 4 »: the quantifier after a percentage (empty when it would only repeat the figure)."""
        if self.row(key).get("disclosure_status") == "suppressed":
            return Markup("")
        phrase = quantify(self.val(key))
        if re.fullmatch(r"[\d\s\u202f,]+%", phrase):
            return Markup("")
        return Markup(", soit ") + _span(phrase, key, "quant", phrase=phrase)

    def count_of(self, key: str, singular: str, plural: str) -> Markup:
        """« 65 communes » / « 1 service de l'État »: a count with its noun, agreed in number."""
        v = self.val(key)
        noun = singular if (not math.isnan(v) and abs(v) < 2) else plural
        return self.n(key) + Markup(" ") + escape(noun)

    def definition(self, key: str) -> str:
        return str(self.row(key)["definition"])

    def reading(self, key: str) -> str:
        r = self.row(key).get("reading")
        return r if isinstance(r, str) else ""

    def status(self, key: str) -> str:
        return str(self.row(key)["status"])

    def published_sum(self, published: dict, fid: str) -> float:
        """Sum of the components of a published count (e.g. R03: 65 + 9 + 1 + 17)."""
        value = published[fid]["value"]
        return float(sum(value.values())) if isinstance(value, dict) else float(value)

    def sum_of(self, fid: str) -> float:
        """Sum of the computed components of a figure id."""
        rows = self.figures[self.figures["id"] == fid]
        return float(rows["value"].sum())

    # -- cells -------------------------------------------------------------------
    def cell(self, harmonised: str, answer_key: str, statistic: str = "share", dimension: str = "ensemble",
             value: str = "Ensemble") -> dict:
        sel = self.cells[(self.cells["harmonised"] == harmonised) & (self.cells["answer_key"] == answer_key)
                         & (self.cells["statistic"] == statistic) & (self.cells["dimension"] == dimension)
                         & (self.cells["dimension_value"] == value)]
        if len(sel) != 1:
            raise RenderError(f"cell {harmonised}/{answer_key}/{statistic}/{dimension}={value}: {len(sel)} rows")
        return sel.iloc[0].to_dict()

    def cell_pct(self, harmonised: str, answer_key: str, statistic: str = "share") -> Markup:
        """Share of one « Ensemble » cell of the tables (« s » when it is under statistical secrecy)."""
        c = self.cell(harmonised, answer_key, statistic)
        text = "s" if bool(c.get("suppressed")) else fr.format_percent(c["value"], 1)
        return _span(text, f"cell:{harmonised}:{answer_key}:{statistic}", "cell")

    def is_top(self, harmonised: str, answer_key: str, statistic: str = "share") -> bool:
        """Whether ``answer_key`` has the largest « Ensemble » value of the question (for wording choices)."""
        sel = self.cells[(self.cells["harmonised"] == harmonised) & (self.cells["statistic"] == statistic)
                         & (self.cells["dimension"] == "ensemble") & (self.cells["answer_key"] != "nsp")]
        if sel.empty or sel["value"].isna().all():
            return False
        best = sel["value"].max()
        mine = sel[sel["answer_key"] == answer_key]["value"]
        return bool(len(mine) and mine.iloc[0] == best)

    def ensemble_base(self, level: str) -> float:
        """Largest « Ensemble » base of a level (all respondents, all tools…)."""
        sel = self.cells[(self.cells["level"] == level) & (self.cells["dimension"] == "ensemble")]
        return float(sel["base"].max()) if len(sel) else math.nan

