"""Editorial prose: Markdown files written by people, with figures by reference.

Each edition's text lives in ``editorial/<edition>/<name>.md`` (an edition
without its own file gets ``editorial/generique/<name>.md``). Numbers are never
typed: they are placeholders filled from ``figures.csv``:

``{{ F05 }}``
    the value, formatted by its measure (« 88,9 % », « 45 », « 4,3 millions »);
``{{ F05.base }}`` / ``{{ F05.n }}`` / ``{{ F05.intervalle }}``
    the base (denominator), the count (numerator), the 95 % interval;
``{{ F05 | quantificateur }}``
    the true verbal quantifier of the value (« près de 9 sur 10 »);
``{{ F05 | quantificateur : près de neuf sur dix }}``
    a quantifier chosen by the author, checked against the value;
``{{ F12 | effectif faible }}``
    the value with its « effectif faible » mark, required when the base is
    under ``disclosure.small_base``;
``{{ edition }}``, ``{{ collecte }}``…
    variables of the edition (see :func:`render_editorial`);
``{{ graphique C01 }}`` (alone on its line)
    a chart of ``charts.json``, with its title, source line and reading note.

The renderer **refuses to build** (:class:`EditorialError`, naming the file
and the line) when a placeholder names an unknown figure, a figure masked by
the disclosure policy (``disclosure_status == "suppressed"``), a quantifier
that contradicts its value, or a value whose base is under the small-base
threshold without the « effectif faible » mark.

Markdown: only the subset the texts use is read — ``#``/``##`` headings,
paragraphs, ``-`` lists, ``>`` notes, ``**gras**`` and ``*italique*``. It is
converted here because none of the pinned packages converts Markdown and
five constructs do not justify a new dependency.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from markupsafe import Markup, escape

from barometre import fr
from barometre.errors import BarometreError
from barometre.quantifiers import UnknownQuantifierError, quantifier_holds, quantify

__all__ = ["EditorialError", "EditorialSection", "Figures", "editorial_file", "render_editorial", "GENERIC"]

ROOT = Path(__file__).resolve().parents[2]
EDITORIAL_DIR = ROOT / "editorial"
GENERIC = "generique"
SMALL_BASE_MARK = "effectif faible"
QUANTIFIER = "quantificateur"

_PLACEHOLDER_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_CHART_RE = re.compile(r"^\{\{\s*graphique\s+(\w+)\s*\}\}$")
_ATTRIBUTES = ("base", "n", "intervalle")


class EditorialError(BarometreError):
    """An editorial file cannot be rendered (the message names the file and the line)."""


@dataclass(frozen=True)
class EditorialSection:
    """One rendered editorial file: its title (first ``#`` heading), anchor and HTML body."""

    name: str
    title: str
    anchor: str
    html: Markup
    source: str


def editorial_file(name: str, edition: str, root: str | Path = EDITORIAL_DIR) -> Path:
    """``editorial/<edition>/<name>.md`` if it exists, else the generic text ``editorial/generique/<name>.md``."""
    own = Path(root) / str(edition) / f"{name}.md"
    if own.exists():
        return own
    generic = Path(root) / GENERIC / f"{name}.md"
    if generic.exists():
        return generic
    raise EditorialError(f"texte éditorial introuvable : ni {own} ni {generic}")


class Figures:
    """The figures registry as placeholders see it: value, base, count, interval and disclosure status."""

    def __init__(self, figures: pd.DataFrame, small_base: int):
        frame = figures.copy()
        comp = frame["component"].fillna("").astype(str) if "component" in frame else pd.Series("", index=frame.index)
        frame["key"] = [f"{i}.{c}" if c else str(i) for i, c in zip(frame["id"], comp, strict=True)]
        if "disclosure_status" not in frame:  # issue-10 column; absent = every figure published
            frame["disclosure_status"] = "published"
        self.rows = {r["key"]: r for r in frame.to_dict("records")}
        self.small_base = small_base

    def resolve(self, expr: str) -> tuple[str, str | None]:
        """``"F07.transparence.base"`` → (``"F07.transparence"``, ``"base"``); raises KeyError when unknown."""
        if expr in self.rows:
            return expr, None
        head, _, attr = expr.rpartition(".")
        if attr in _ATTRIBUTES and head in self.rows:
            return head, attr
        raise KeyError(expr)

    def base_of(self, key: str) -> float:
        d = self.rows[key].get("denominator")
        return float(d) if d is not None and not pd.isna(d) else math.nan


def _format_value(row: Mapping) -> str:
    value = float(row["value"])
    measure = row["measure"]
    if measure == "share":
        return fr.format_percent(value, 1)
    if measure in ("mean", "median"):
        return fr.format_decimal(value, 2)
    if measure == "difference":
        return f"{fr.format_decimal(abs(value), 1)}{fr.NBSP}point{'s' if abs(value) >= 2 else ''}"
    if measure == "sum" and abs(value) >= 1_000_000:
        return fr.format_large(value)
    return fr.format_number(value)


@dataclass(frozen=True)
class Filled:
    """A filled placeholder: the printed value (``text``, in a ``span.fig`` of ``kind``) and what follows it."""

    key: str
    text: str
    kind: str = "value"
    after: str = ""
    phrase: str = ""


_KINDS = {"share": "pct", "count": "n", "distinct": "n", "sum": "n", "mean": "average", "median": "average",
          "difference": "points"}


def _placeholder(expr: str, figures: Figures, variables: Mapping[str, str], where: str) -> Filled:
    """One placeholder (``expr`` is what is between the braces), filled; or EditorialError."""
    head, *filters = [p.strip() for p in expr.split("|")]
    if head in variables and not filters:
        return Filled(key="", text=str(variables[head]), kind="variable")
    try:
        key, attr = figures.resolve(head)
    except KeyError:
        raise EditorialError(f"{where} : le chiffre « {head} » n'existe pas dans figures.csv "
                             f"(ni comme variable de l'édition : {', '.join(sorted(variables))})") from None
    row = figures.rows[key]
    status = str(row.get("disclosure_status") or "published")
    if status == "suppressed":
        reason = row.get("disclosure_reason")
        raise EditorialError(
            f"{where} : le chiffre « {key} » est masqué par la règle de secret statistique"
            + (f" ({reason})" if isinstance(reason, str) and reason else "")
            + " ; il ne peut être cité"
        )
    value = row.get("value")
    if value is None or pd.isna(value):
        raise EditorialError(f"{where} : le chiffre « {key} » n'a pas de valeur calculée")
    quantifier, marked = None, False
    for f in filters:
        name, _, arg = (s.strip() for s in f.partition(":"))
        if name == QUANTIFIER:
            quantifier = arg or ""
        elif name == SMALL_BASE_MARK and not arg:
            marked = True
        else:
            raise EditorialError(
                f"{where} : filtre inconnu « {f} » "
                f"(connus : « {QUANTIFIER} », « {QUANTIFIER} : … », « {SMALL_BASE_MARK} »)"
            )
    if attr == "base":
        return Filled(key, fr.format_number(figures.base_of(key)), "base")
    if attr == "n":
        return Filled(key, fr.format_number(float(row["numerator"])), "n")
    base = figures.base_of(key)
    small = not math.isnan(base) and base < figures.small_base
    if small and not marked:
        raise EditorialError(f"{where} : le chiffre « {key} » repose sur une base de {fr.format_number(base)} "
                             f"(moins de {figures.small_base}) ; ajoutez la marque « | {SMALL_BASE_MARK} »")
    after = f" (effectif faible{fr.NBSP}: n{fr.NBSP}={fr.NBSP}{fr.format_number(base)})" if marked else ""
    if attr == "intervalle":
        return Filled(key, fr.format_range(row["ci_low"], row["ci_high"]), "ci", after)
    elif quantifier is not None:
        if row["measure"] != "share":
            raise EditorialError(
                f"{where} : « {QUANTIFIER} » ne s'applique qu'à une part ; « {key} » est un {row['measure']}"
            )
        if quantifier:
            try:
                holds = quantifier_holds(quantifier, float(value))
            except UnknownQuantifierError as exc:
                raise EditorialError(f"{where} : quantificateur non reconnu « {quantifier} » ({exc})") from None
            if not holds:
                raise EditorialError(
                    f"{where} : « {quantifier} » contredit la valeur de « {key} » "
                    f"({fr.format_percent(float(value), 1)}) ; formulation juste : « {quantify(float(value))} »"
                )
            text = quantifier
        else:
            text = quantify(float(value))
        return Filled(key, text, "quant", after, phrase=text)
    text = _format_value(row)
    kind = (
        "large" if row["measure"] == "sum" and abs(float(value)) >= 1_000_000 else _KINDS.get(row["measure"], "value")
    )
    if kind == "points":
        text, unit = text.split(fr.NBSP, 1)
        after = f"{fr.NBSP}{unit}{after}"
    return Filled(key, text, kind, after)


def _inline(text: str, figures: Figures, variables: Mapping[str, str], where: str) -> str:
    """One line of prose → HTML: escaped, placeholders filled (each in a ``span.fig``), emphasis."""
    out, last = [], 0
    for m in _PLACEHOLDER_RE.finditer(text):
        out.append(str(escape(text[last:m.start()])))
        expr = m.group(1)
        f = _placeholder(expr, figures, variables, where)
        if f.kind == "variable":
            out.append(str(escape(f.text)))
        else:
            phrase = f' data-phrase="{escape(f.phrase)}"' if f.phrase else ""
            out.append(
                f'<span class="fig" data-fig="{escape(f.key)}" data-kind="{f.kind}"{phrase}>{escape(f.text)}</span>'
                f"{escape(f.after)}"
            )
        last = m.end()
    out.append(str(escape(text[last:])))
    html = "".join(out)
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", html)


def slug(title: str) -> str:
    """« Une timide normalisation » → ``une-timide-normalisation`` (anchors, ASCII only)."""
    import unicodedata

    ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")[:60]


def render_editorial(
    name: str,
    edition: str,
    figures: pd.DataFrame,
    *,
    small_base: int,
    variables: Mapping[str, str] | None = None,
    chart: Callable[[str], str] | None = None,
    root: str | Path = EDITORIAL_DIR,
) -> EditorialSection:
    """Render ``editorial/<edition>/<name>.md`` (or the generic text) to HTML.

    Parameters
    ----------
    name
        File name without ``.md`` (``contexte``, ``analyse``…).
    edition
        Edition rendered.
    figures
        ``figures.csv`` of the edition (with ``disclosure_status`` when the publication layer adds it).
    small_base
        ``disclosure.small_base``: a value on a smaller base needs the « effectif faible » mark.
    variables
        Values a placeholder may name besides figures (``edition``, ``collecte``…), already formatted.
    chart
        Called with a chart id for each ``{{ graphique … }}`` line; returns its HTML.
    root
        Folder of the editorial tree.

    Raises
    ------
    EditorialError
        On any refused placeholder, with the file and the line.
    """
    path = editorial_file(name, edition, root)
    figs = Figures(figures, small_base)
    variables = dict(variables or {})
    try:
        shown = path.relative_to(ROOT)
    except ValueError:
        shown = path
    lines = path.read_text(encoding="utf-8").splitlines()
    title = ""
    blocks: list[str] = []
    para: list[tuple[int, str]] = []  # (line number, text)
    items: list[tuple[int, str]] = []
    heading_level = 2

    def flush() -> None:
        if para:
            note = para[0][1].startswith("> ")
            html = " ".join(_inline(t[2:] if t.startswith("> ") else t, figs, variables, f"{shown}, ligne {n}")
                            for n, t in para)
            if note and blocks and blocks[-1].rstrip().endswith("</figure>"):  # a reading note stays with its chart
                figure = blocks[-1].rstrip()
                blocks[-1] = figure[:-len("</figure>")] + f'<p class="note reading-note">{html}</p>\n</figure>'
            elif note:
                blocks.append(f'<p class="note">{html}</p>')
            elif re.sub(r"<[^>]+>", "", html).strip():  # a paragraph made only of an empty hook is dropped
                blocks.append(f"<p>{html}</p>")
            para.clear()
        if items:
            lis = "".join(f"<li>{_inline(t, figs, variables, f'{shown}, ligne {n}')}</li>" for n, t in items)
            blocks.append(f'<ul class="compact">{lis}</ul>')
            items.clear()

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        where = f"{shown}, ligne {number}"
        if not line:
            flush()
            continue
        if line.startswith("<!--"):
            continue
        m = _CHART_RE.match(line)
        if m:
            flush()
            if chart is None:
                raise EditorialError(
                    f"{where} : graphique « {m.group(1)} » demandé, mais aucun graphique n'est disponible"
                )
            try:
                blocks.append(str(chart(m.group(1))))
            except KeyError:
                raise EditorialError(f"{where} : le graphique « {m.group(1)} » n'existe pas dans charts.json") from None
            continue
        if line.startswith("# "):
            flush()
            title = _inline(line[2:], figs, variables, where)
            continue
        if line.startswith("## "):
            flush()
            text = line[3:]
            level = heading_level + 1
            blocks.append(f'<h{level} id="{slug(text)}">{_inline(text, figs, variables, where)}</h{level}>')
            continue
        if line.startswith("- "):
            if para:
                flush()
            items.append((number, line[2:]))
            continue
        if items and raw.startswith("  "):
            items[-1] = (items[-1][0], items[-1][1] + " " + line)
            continue
        if items:
            flush()
        para.append((number, line))
    flush()
    if not title:
        raise EditorialError(f"{shown}, ligne 1 : le fichier doit commencer par un titre « # … »")
    return EditorialSection(name=name, title=Markup(title), anchor=slug(re.sub(r"<[^>]+>", "", title)),
                            html=Markup("\n".join(blocks)), source=str(shown))
