"""How a chart looks: palette, matplotlib style and the horizontal bars every chart of the report uses.

Conventions: Okabe–Ito colour-blind-safe palette, French number formats (:mod:`barometre.fr`),
labels wrapped without cutting a word or a number, text kept as SVG text, deterministic SVG
(fixed hash salt and id per chart, no date), and a check that no text is clipped.
"""
from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.text import Text
from matplotlib.typing import RcKeyType

from barometre import fr
from barometre.errors import BarometreError

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
MAIN_COLOUR = OKABE_ITO["blue"]
SECOND_COLOUR = OKABE_ITO["sky_blue"]
NSP_COLOUR = "#9A9A9A"  # neutral grey for « ne se prononce pas » (distinct in lightness)
TEXT_COLOUR = "#1A1A1A"
MUTED_COLOUR = "#555555"

FIG_WIDTH_IN = 6.3  # ≈ 160 mm, the text width of an A4 page with 25 mm margins
LABEL_WRAP = 38  # characters per line of a category label
FONT_FAMILY = "DejaVu Sans"
SECRET_MARK = "s"

BASE_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY, "Liberation Sans", "Arial"],
    "font.size": 8.5,
    "axes.edgecolor": "#888888",
    "axes.linewidth": 0.6,
    "axes.labelcolor": TEXT_COLOUR,
    "xtick.color": TEXT_COLOUR,
    "ytick.color": TEXT_COLOUR,
    "text.color": TEXT_COLOUR,
    "legend.frameon": False,
    "path.simplify": False,
    "figure.dpi": 72,
}


class ChartError(BarometreError):
    """A chart cannot be drawn (missing cells, clipped text…)."""


@dataclass
class BarRow:
    """One category of a bar chart: its value and secrecy flag in each series."""

    key: str
    label: str
    values: list[float]
    suppressed: list[bool]
    muted: bool = False  # NSP / « autre »: drawn in grey, kept last


def wrap_label(label: str, width: int = LABEL_WRAP) -> str:
    """Wrap a category label on several lines (never cutting a word nor a number such as « 1 000 »)."""
    label = fr.nbsp_thousands(label)
    return "\n".join(textwrap.wrap(label, width=width, break_long_words=False, break_on_hyphens=False)) or label


def _last_rank(key: str) -> int:
    """0 for ordinary answers, 1 for « autre », 2 for « ne se prononce pas » (always at the bottom)."""
    return {"autre": 1, "nsp": 2}.get(key, 0)


def sort_rows(rows: list[BarRow], by: int = 0) -> list[BarRow]:
    """Decreasing value (suppressed cells count as 0), « autre » and NSP last; stable."""
    def k(r: BarRow) -> tuple:
        v = r.values[by]
        v = 0.0 if (r.suppressed[by] or v is None or math.isnan(v)) else v
        return (_last_rank(r.key), -v)
    return sorted(rows, key=k)


def _fmt_value(v: float, suppressed: bool) -> str:
    if suppressed:
        return SECRET_MARK
    return fr.format_percent(v, 1)


def _style(chart_id: str, edition: str) -> dict[RcKeyType, Any]:
    return {**BASE_STYLE, "svg.hashsalt": f"barometre-{edition}-{chart_id}", "svg.id": f"chart-{chart_id}-svg"}


def draw_hbars(
    rows: list[BarRow], series: list[tuple[str, str]], footnote: str, chart_id: str, edition: str,
    counts: bool = False,
) -> str:
    """Horizontal bars, one group per row and one bar per series; returns the SVG text.

    Parameters
    ----------
    rows
        Categories, top to bottom.
    series
        (name, colour) of each series; a name is shown in a legend when there are several.
    footnote
        Small text under the chart (base, notes, « Données synthétiques »).
    counts
        Values are counts (labels « 65 »), not percentages; the axis runs to the largest count.
    """
    n_series = len(series)
    labels = [wrap_label(r.label) for r in rows]
    bar_h = 0.78 / n_series
    group_in = 0.2 * n_series + 0.06  # inches per category
    height = 0.45 + sum(max(group_in, 0.15 * (lab.count("\n") + 1) + 0.05) for lab in labels) + 0.25 * (n_series > 1)
    height += 0.18 * (footnote.count("\n") + 1)
    if n_series > 1 and sum(len(n) for n, _ in series) >= 60:
        height += 0.18 * (n_series - 1)
    finite = [v for r in rows for v in r.values if v is not None and not math.isnan(v)]
    xmax = max([*finite, 1.0]) if counts else 100.0
    with plt.rc_context(_style(chart_id, edition)):
        fig, ax = plt.subplots(figsize=(FIG_WIDTH_IN, height), layout="constrained")
        for s, (name, colour) in enumerate(series):
            offset = (s - (n_series - 1) / 2) * bar_h
            for i, r in enumerate(rows):
                v, sup = r.values[s], r.suppressed[s]
                y = i + offset
                if v is None and not sup:  # no bar of this series for this row (e.g. NSP has no cumulative share)
                    continue
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                if sup or missing:
                    ax.text(0.006 * xmax, y, SECRET_MARK if sup else fr.MISSING, va="center", ha="left",
                            fontsize=8, fontstyle="italic", color=MUTED_COLOUR)
                    continue
                c = NSP_COLOUR if r.muted else colour
                ax.barh(y, v, height=bar_h * 0.92, color=c, edgecolor="none", label=name if i == 0 else None)
                ax.text(v + 0.008 * xmax, y, fr.format_number(v) if counts else _fmt_value(v, False),
                        va="center", ha="left", fontsize=8, color=TEXT_COLOUR)
        ax.set_yticks(range(len(rows)), labels=labels)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(0, xmax * 1.13)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="y", length=0, pad=4)
        if n_series > 1:
            handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, c in series]
            ax.legend(handles, [n for n, _ in series], loc="lower left", bbox_to_anchor=(0, 1.0),
                      ncol=n_series if sum(len(n) for n, _ in series) < 60 else 1,
                      fontsize=8, handlelength=1.2, borderaxespad=0.2)
        fig.supxlabel(footnote, x=0.005, ha="left", fontsize=7, color=MUTED_COLOUR, linespacing=1.4)
        check_layout(fig, chart_id)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "barometre (matplotlib)"})
        plt.close(fig)
    return buf.getvalue()


def check_layout(fig, chart_id: str, tolerance: float = 0.5) -> None:
    """Fail when any text of ``fig`` extends beyond the figure (clipped label).

    Raises
    ------
    ChartError
        Naming the chart and the clipped text.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if (bb.x0 < box.x0 - tolerance or bb.x1 > box.x1 + tolerance
                or bb.y0 < box.y0 - tolerance or bb.y1 > box.y1 + tolerance):
            raise ChartError(f"chart {chart_id}: text {t.get_text()!r} is clipped (extends beyond the figure)")

