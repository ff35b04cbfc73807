"""Excel workbook of the tables (« tableaux détaillés »), byte-for-byte reproducible.

A « Sommaire » sheet (each question with a link to its sheet), a « Lisez-moi »
sheet, one readable cross-table per question (answers in rows; « Ensemble » and
each breakdown in columns; a base row; percentages as real Excel percentages),
then a « Tests » sheet. The synthetic-data banner heads every sheet. A masked
cell is an empty grey cell (never a number, never text in a numeric column),
explained by the legend under each table; empty categories (base 0) are left
out. The tidy long form stays in ``cells.csv``. Two runs on the same cells give identical bytes,
through XlsxWriter's public API alone: the document properties carry a fixed creation date
(``SOURCE_DATE_EPOCH`` when set, else 2017-10-06) and, built in memory, every zip entry carries
XlsxWriter's fixed date (1980-01-01).
"""
from __future__ import annotations

import io
import itertools
import math
import numbers
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from barometre.codebook import TYPE_LABELS, Codebook, Question
from barometre.comparisons import column_letters_legend, keep_letters, rule_text
from barometre.errors import BarometreError, CodebookError

SECRET = "s"
DEFAULT_DATE = datetime(2017, 10, 6)
FORBIDDEN_SHEET_CHARS = set('[]:*?/\\')

DIMENSION_LABELS = {
    "ensemble": "Ensemble",
    "collectivity_type": "Type de collectivité",
    "role": "Élu·e ou agent",
    "tool_type": "Type d'outil",
    "bp_territory_kind": "Type de territoire",
}
STATISTIC_LABELS = {
    "share": "Part (%)",
    "top2_share": "Total des deux modalités hautes (%)",
    "cumulative_share": "Part cumulée (%)",
    "first_share": "Classé en 1re position (%)",
    "top3_share": "Classé dans les 3 premiers (%)",
    "mean_rank": "Rang moyen",
    "mean": "Moyenne",
    "median": "Médiane",
}
TEST_KEY_LABELS = {"all": "Toutes les modalités", "first": "Item classé en 1re position"}
LEVEL_LABELS = {"respondent": "répondant", "tool": "outil (dispositif décrit)", "bp": "budget participatif"}
BASE_NOTES = {
    "single": "Base : répondants ayant répondu à la question (« Ne se prononce pas » inclus quand il est affiché).",
    "ordinal": "Base : répondants ayant répondu à la question (« Ne se prononce pas » inclus quand il est affiché).",
    "band": ("Base : répondants ayant répondu (NSP inclus) ; "
             "parts cumulées : réponses exprimées seulement (NSP exclus)."),
    "multiple": ("Base : répondants ayant répondu à la question ; plusieurs réponses possibles, le total peut "
                 "dépasser 100 %."),
    "ranking": "Base : répondants ayant classé au moins un item ; rang moyen parmi ceux qui ont classé l'item.",
    "numeric": "Base : réponses renseignées.",
}

#: A cell style: XlsxWriter format properties; a cell's style is the union of the parts it is given.
Style = dict[str, Any]
HEADER_FONT: Style = {"bold": True}
TITLE_FONT: Style = {"bold": True, "font_size": 12}
HEADER_FILL: Style = {"pattern": 1, "bg_color": "#DDDDDD"}
BANNER_FONT: Style = {"bold": True, "font_color": "#7A2E00"}
BANNER_FILL: Style = {"pattern": 1, "bg_color": "#FBEEE6"}
SECRET_FILL: Style = {"pattern": 3, "fg_color": "#BFBFBF", "bg_color": "#FFFFFF"}  # 3 = « darkGray » hatching
SMALL_FONT: Style = {"italic": True, "font_color": "#555555"}
LINK_FONT: Style = {"font_color": "#0563C1", "underline": 1}
WRAP_TOP: Style = {"text_wrap": True, "valign": "top"}
#: Statistics that are shares: written as fractions with a percent format (Excel shows « 25,6 % » in French).
PERCENT_STATISTICS = ("share", "top2_share", "cumulative_share", "first_share", "top3_share")
PERCENT_FORMAT = '0.0\\ %'
SECRET_LEGEND = ("Case grisée et vide : secret statistique (moins de {min_cell} réponses, ou valeur qu'une "
                 "soustraction permettrait de retrouver).")
SMALL_LEGEND = "En italique : effectif faible (base inférieure à {small_base}), à lire avec prudence."


def fixed_datetime() -> datetime:
    """Date written in the workbook: ``SOURCE_DATE_EPOCH`` (UTC) if set, else 2017-10-06."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            return datetime.fromtimestamp(int(sde), tz=UTC).replace(tzinfo=None)
        except ValueError as exc:
            raise BarometreError(f"SOURCE_DATE_EPOCH must be an integer, got {sde!r}") from exc
    return DEFAULT_DATE


def sheet_title(name: str, taken: Sequence[str] = ()) -> str:
    """Valid, unique Excel sheet name (≤ 31 characters, no ``[]:*?/\\``)."""
    clean = "".join("_" if ch in FORBIDDEN_SHEET_CHARS else ch for ch in name).strip("'")[:31] or "Feuille"
    title, i = clean, 2
    lowered = {t.lower() for t in taken}
    while title.lower() in lowered:
        suffix = f"~{i}"
        title = clean[: 31 - len(suffix)] + suffix
        i += 1
    return title


def _dimension_label(dimension: str, codebook: Codebook) -> str:
    if dimension in DIMENSION_LABELS:
        return DIMENSION_LABELS[dimension]
    try:
        return codebook.question(dimension).wording.rstrip(" :")
    except CodebookError:
        return dimension


def _question(codebook: Codebook, qid: str) -> Question | None:
    try:
        return codebook.question(qid)
    except CodebookError:
        return None


def _filter_text(q: Question, codebook: Codebook) -> str:
    if q.filter is None:
        return "Posée à tous."
    try:
        fq = codebook.question(q.filter.question)
        labels = " ou ".join(f"« {fq.label_of(k)} »" for k in q.filter.keys)
    except CodebookError:
        return f"Question filtrée ({q.filter.question})."
    return f"Posée seulement si {fq.id} = {labels}."


def _num(x: object) -> float | None:
    """``x`` as a finite float, else ``None`` (an empty cell: e.g. Fisher's odds ratio is infinite with a zero cell)."""
    if x is None:
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _count_value(x: object) -> float | int | None:
    f = _num(x)
    if f is None:
        return None
    return int(f) if f.is_integer() else f


class _Sheet:
    """A worksheet addressed as Excel shows it (rows and columns counted from 1).

    XlsxWriter wants one format object per distinct style, made by the workbook: the sheets share
    a cache of them, keyed by the style's properties, so each combination is registered once.
    """

    def __init__(self, ws: Worksheet, formats: dict[tuple, Any], workbook: Workbook) -> None:
        self.ws, self._formats, self._workbook = ws, formats, workbook

    def style(self, *parts: Style) -> Any:
        """The shared format of the union of ``parts`` (``None`` for no style)."""
        merged: Style = {}
        for part in parts:
            merged.update(part)
        if not merged:
            return None
        key = tuple(sorted(merged.items()))
        if key not in self._formats:
            self._formats[key] = self._workbook.add_format(merged)
        return self._formats[key]

    def put(self, row: int, col: int, value: object = None, *style: Style) -> None:
        """Write ``value`` (text, number or nothing) with ``style`` in one cell; an unstyled empty cell is left out."""
        fmt, r, c = self.style(*style), row - 1, col - 1
        if value is None or (isinstance(value, str) and not value):
            if fmt is not None:
                self.ws.write_blank(r, c, None, fmt)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            self.ws.write_number(r, c, float(value) if not isinstance(value, numbers.Integral) else int(value), fmt)
        else:  # text stays text: never read as a formula or a web address
            self.ws.write_string(r, c, str(value), fmt)

    def link(self, row: int, col: int, sheet: str) -> None:
        """An internal link showing ``sheet``, to its cell A1."""
        self.ws.write_url(row - 1, col - 1, f"internal:'{sheet}'!A1", self.style(LINK_FONT), string=sheet)

    def merge(self, row: int, first: int, last: int, value: object, *style: Style) -> None:
        """``value`` over columns ``first`` to ``last`` of ``row`` (one cell when they are equal)."""
        if last > first:
            self.ws.merge_range(row - 1, first - 1, row - 1, last - 1, "" if value is None else str(value),
                                self.style(*style))
        else:
            self.put(row, first, value, *style)

    def freeze(self, row: int, col: int) -> None:
        """Freeze the rows above ``row`` and the columns left of ``col``."""
        self.ws.freeze_panes(row - 1, col - 1)

    def widths(self, widths: Sequence[float]) -> None:
        """Column widths in characters, from column A."""
        for j, w in enumerate(widths):
            self.ws.set_column(j, j, w)


def _write_header(ws: _Sheet, row: int, headers: Sequence[str]) -> None:
    for j, h in enumerate(headers, start=1):
        ws.put(row, j, h, HEADER_FONT, HEADER_FILL, WRAP_TOP)


def _readme(
    ws: _Sheet, confidence_label: str, weighted: bool, note: str | None, min_cell: int | None, small_base: int | None
) -> None:
    lines: list[tuple[str, Style | None]] = [
        ("Baromètre de la démocratie locale numérique — tableaux détaillés", TITLE_FONT),
        (note or "", None),
        ("", None),
        ("Organisation du classeur", HEADER_FONT),
        ("« Sommaire » : chaque question, avec un lien vers sa feuille. Puis une feuille par question (nom = "
         "identifiant de la question), et la feuille « Tests ».", None),
        ("En tête de chaque feuille : le libellé exact de la question, son type, son filtre éventuel et la "
         "définition de la base.", None),
        ("", None),
        ("Lecture d'un tableau", HEADER_FONT),
        ("Une ligne par réponse ; en colonnes, « Ensemble » (tous les répondants concernés, y compris ceux dont le "
         "critère de croisement n'est pas renseigné) puis chaque catégorie de chaque critère de croisement.", None),
        ("Ligne « Base (effectif) » : nombre d'unités sur lequel les pourcentages de la colonne sont calculés"
         + (" (pondéré)." if weighted else "."), None),
        ("Les pourcentages sont de vrais pourcentages Excel (affichés « 25,6 % » en français) ; rang moyen, moyenne "
         "et médiane sont donnés tels quels.", None),
        ("Une question à plusieurs indicateurs (parts cumulées, classement) a un bloc par indicateur, titré.", None),
        (
            "Effectif faible : en italique quand la base est inférieure à "
            + (f"{small_base}" if small_base is not None else "au seuil configuré")
            + " ; le chiffre est fragile, à lire avec prudence.",
            None,
        ),
        (
            "Secret statistique : une case masquée est laissée vide et grisée. "
            + (f"Aucune case publiée ne repose sur moins de {min_cell} répondants" if min_cell is not None
               else "Les petites cases sont masquées")
            + ", et des cases complémentaires sont masquées pour qu'aucune soustraction ne permette de les retrouver.",
            None,
        ),
        (f"Les effectifs, bases, {confidence_label} et indicateurs de chaque case, sous forme de liste, sont dans le "
         "fichier cells.csv livré avec le classeur.", None),
        ("", None),
        ("Règles de calcul", HEADER_FONT),
        ("« Ne se prononce pas » : quand il est affiché, c'est une modalité à part entière, comprise dans la base ; "
         "il n'est jamais ajouté à une autre modalité.", None),
        ("Parts cumulées (tranches) : calculées sur les réponses exprimées, hors « Ne se prononce pas ».", None),
        ("Questions à réponses multiples : la somme des parts peut dépasser 100 %.", None),
        ("Questions filtrées : la base ne comprend que les répondants à qui la question a été posée.", None),
        ("", None),
        ("Tests", HEADER_FONT),
        ("Khi2 de Pearson quand tous les effectifs attendus sont suffisants ; sinon test exact de Fisher (tableau "
         "2×2) ou test de permutation du khi2 (graine fixe, p-value reproductible).", None),
        ("Réponses multiples : un test par modalité (cochée / non cochée). Classement : test sur l'item classé en "
         "1re position. Valeurs numériques : test de Kruskal-Wallis.", None),
        ("Les tests ne portent que sur les colonnes de la dimension (hors « Ensemble ») et ne sont pas corrigés pour "
         "la multiplicité.", None),
    ]
    for i, (text, font) in enumerate(lines, start=1):
        ws.put(i, 1, text, *([font] if font is not None else []))
    ws.widths([140])


def write_workbook(
    cells: pd.DataFrame,
    tests: pd.DataFrame,
    codebook: Codebook,
    path: str | Path,
    *,
    confidence: float = 0.95,
    note: str | None = None,
    min_cell: int | None = None,
    small_base: int | None = None,
    letters_rule: str | None = None,
) -> Path:
    """Write the tables as an ``.xlsx`` workbook with identical bytes on every run.

    Parameters
    ----------
    cells
        Cells after :func:`barometre.disclosure.apply_disclosure` (with the
        ``suppressed``, ``base_suppressed`` and ``small_base`` columns).
    tests
        Tests of association (:data:`barometre.tabulate.TEST_COLUMNS`).
    codebook
        Gives the wording, type and filter of each question.
    path
        Output file (written atomically).
    confidence
        Confidence level, for the headers (« IC 95 % »).
    note
        Optional line under the title of « Lisez-moi » (e.g. synthetic data).
    min_cell, small_base
        Disclosure thresholds, quoted in « Lisez-moi ».
    letters_rule
        Rule line under each table with column-comparison letters
        (:func:`barometre.comparisons.rule_text` of the configuration; its defaults when ``None``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    for col in ("suppressed", "small_base"):
        if col not in cells.columns:
            raise BarometreError(f"write_workbook: cells have no {col!r} column; run apply_disclosure first")
    path = Path(path)
    weighted = "unweighted_count" in cells.columns
    ci = f"IC {confidence * 100:g} %"
    stamp = fixed_datetime()

    raw = io.BytesIO()
    # in_memory: each zip entry gets XlsxWriter's fixed date (on disk it would depend on the time zone).
    # Neither constant_memory (the Sommaire is filled last) nor use_zip64 (a few hundred kB) is needed.
    wb = Workbook(raw, {"in_memory": True})
    # the creation date is also written as the « modified » one; the synthetic-data note goes in the comments
    wb.set_properties({"title": "Baromètre de la démocratie locale numérique — tableaux détaillés",
                       "author": "barometre", "created": stamp, **({"comments": note} if note else {})})
    formats: dict[tuple, Any] = {}

    def sheet(name: str) -> _Sheet:
        return _Sheet(wb.add_worksheet(name), formats, wb)

    index = sheet("Sommaire")
    _readme(sheet("Lisez-moi"), ci, weighted, note, min_cell, small_base)

    qids = list(dict.fromkeys(cells["question_id"].astype(str)))
    order = {q.id: i for i, q in enumerate(codebook.questions)}
    qids.sort(key=lambda q: (order.get(q, len(order)), q))
    taken: list[str] = ["Sommaire", "Lisez-moi", "Tests"]
    index_rows = []
    legends = (SECRET_LEGEND.format(min_cell=min_cell if min_cell is not None else "quelques"),
               SMALL_LEGEND.format(small_base=small_base if small_base is not None else "au seuil configuré"))
    letters_rule = letters_rule if letters_rule is not None else rule_text(None)
    for qid in qids:
        sub = cells[cells["question_id"].astype(str) == qid]
        q = _question(codebook, qid)
        title = sheet_title(qid, taken)
        taken.append(title)
        wording = q.wording if q else qid
        base = _cross_table(sheet(title), sub, q, qid, wording, codebook, note, legends, letters_rule)
        index_rows.append((title, wording, TYPE_LABELS.get(q.type, q.type) if q else "", base))
    _sommaire(index, index_rows, note)

    wt = sheet("Tests")
    theaders = [
        "Question", "Dimension", "Modalité", "Test", "Statistique", "ddl", "p-valeur", "Effectif",
        "Effectif attendu minimal",
    ]
    _write_header(wt, 1, theaders)
    trecs = tests.to_dict("records") if tests is not None else []
    trecs.sort(key=lambda t: order.get(str(t["question_id"]), len(order)))
    for i, t in enumerate(trecs, start=2):
        q = _question(codebook, str(t["question_id"]))
        key = str(t["answer_key"])
        if key in TEST_KEY_LABELS:
            mod = TEST_KEY_LABELS[key]
        else:
            try:
                mod = q.label_of(key) if q else key
            except CodebookError:
                mod = key
        df = t.get("df")
        row = [
            t["question_id"],
            _dimension_label(str(t["dimension"]), codebook),
            mod,
            t["test"],
            _num(t["statistic"]),
            None if df is None or df is pd.NA or (isinstance(df, float) and math.isnan(df)) else int(df),
            _num(t["pvalue"]),
            _count_value(t["n"]),
            _num(t["min_expected"]),
        ]
        for j, v in enumerate(row, start=1):
            number_format = {5: "0.00", 7: "0.0000", 9: "0.00"}.get(j) if isinstance(v, float) else None
            wt.put(i, j, v, *([{"num_format": number_format}] if number_format else []))
    wt.freeze(2, 1)
    wt.widths([10, 22, 40, 28, 12, 6, 10, 10, 14])

    wb.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its mode 0600 would hide a published file from other readers; this one follows the umask
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _banner(ws: _Sheet, note: str | None, width: int) -> int:
    """The synthetic-data banner on row 1 (when ``note`` is given); returns the next free row."""
    if not note:
        return 1
    ws.put(1, 1, note, BANNER_FONT, BANNER_FILL)
    for j in range(2, width + 1):
        ws.put(1, j, None, BANNER_FILL)
    return 3


def _sommaire(ws: _Sheet, rows: list[tuple[str, str, str, object]], note: str | None) -> None:
    """The « Sommaire » sheet: each question, a link to its sheet, its type and its base."""
    r = _banner(ws, note, 4)
    ws.put(r, 1, "Baromètre de la démocratie locale numérique — tableaux détaillés", TITLE_FONT)
    r += 2
    _write_header(ws, r, ["Feuille", "Question", "Type", "Base (Ensemble)"])
    for i, (title, wording, kind, base) in enumerate(rows, start=r + 1):
        ws.link(i, 1, title)
        ws.put(i, 2, wording, WRAP_TOP)
        ws.put(i, 3, kind)
        ws.put(i, 4, base)
    last = r + len(rows) + 2
    for j, (title, text) in enumerate((("Lisez-moi", "Organisation du classeur et règles de calcul"),
                                       ("Tests", "Tests d'association")), start=last):
        ws.link(j, 1, title)
        ws.put(j, 2, text)
    ws.freeze(r + 1, 1)
    ws.widths([12, 90, 28, 16])


def table_columns(sub: pd.DataFrame) -> list[tuple[str, str]]:
    """(dimension, value) of the cross-table columns: Ensemble first, then each breakdown in cell order,
    leaving out the categories nobody is in (base 0, not masked)."""
    cols = []
    for (dim, val), grp in sub.groupby(["dimension", "dimension_value"], sort=False):
        masked = bool(grp["base_suppressed"].any()) if "base_suppressed" in grp else False
        if not masked and (pd.to_numeric(grp["base"], errors="coerce").fillna(0) <= 0).all():
            continue
        cols.append((str(dim), str(val)))
    cols.sort(key=lambda c: c[0] != "ensemble")  # stable: breakdowns keep their order
    return cols


def _cross_table(ws: _Sheet, sub: pd.DataFrame, q: Question | None, qid: str, wording: str, codebook: Codebook,
                 note: str | None, legends: tuple[str, str], letters_rule: str = "") -> object:
    """One question as a cross-table; returns the « Ensemble » base (for the Sommaire)."""
    columns = table_columns(sub)
    width = 1 + len(columns)
    r = _banner(ws, note, width)
    ws.put(r, 1, f"{qid} — {wording}", TITLE_FONT)
    if q is not None:
        kind = TYPE_LABELS.get(q.type, q.type)
        ws.put(r + 1, 1, f"{kind} · unité : {LEVEL_LABELS.get(q.level, q.level)} · {_filter_text(q, codebook)}")
        ws.put(r + 2, 1, BASE_NOTES.get(q.type, ""))
    r += 4
    # two header rows: the breakdown (merged over its categories), then the category
    j = 2
    for dim, group in itertools.groupby(c[0] for c in columns):
        span = len(list(group))
        ws.merge(r, j, j + span - 1, None if dim == "ensemble" else _dimension_label(dim, codebook),
                 HEADER_FONT, HEADER_FILL, {"align": "center", "text_wrap": True})
        j += span
    _write_header(ws, r + 1, ["Réponse", *[v for _, v in columns]])
    r += 2
    has_letters = "letters" in sub.columns  # column-comparison letters (issue 12), shown after the value
    letters_of = {dim: {v: x for v, x in column_letters_legend(sub, qid, dim).items() if (dim, v) in columns}
                  for dim in dict.fromkeys(d for d, _ in columns) if dim != "ensemble"} if has_letters else {}
    small_cols, ensemble_base = set(), None
    base_row = r
    ws.put(base_row, 1, "Base (effectif)", HEADER_FONT)
    for j, (dim, val) in enumerate(columns, start=2):
        sel = sub[(sub["dimension"] == dim) & (sub["dimension_value"] == val)]
        masked = bool(sel["base_suppressed"].any()) if "base_suppressed" in sel else False
        base = None if masked else _count_value(pd.to_numeric(sel["base"], errors="coerce").max())
        small = bool(sel["small_base"].any()) and not masked
        if small:
            small_cols.add(j)
        ws.put(base_row, j, base, HEADER_FONT, *([SECRET_FILL] if masked else []), *([SMALL_FONT] if small else []))
        if dim == "ensemble":
            ensemble_base = base
    r += 1
    statistics = list(dict.fromkeys(sub["statistic"].astype(str)))
    for stat in statistics:
        ssub = sub[sub["statistic"].astype(str) == stat]
        if len(statistics) > 1:
            ws.put(r, 1, STATISTIC_LABELS.get(stat, stat), HEADER_FONT)
            r += 1
        for _key, arow in ssub.groupby("answer_key", sort=False):
            counts = pd.to_numeric(arow["count"], errors="coerce")
            if stat in PERCENT_STATISTICS and not arow["suppressed"].any() and (counts.fillna(0) == 0).all():
                continue  # an answer nobody gave, in any column
            ws.put(r, 1, str(arow["answer_label"].iloc[0]), {"text_wrap": True})
            printed: dict[str, set[str]] = {}  # letters of the cells this row prints, by breakdown
            for other in arow.itertuples():
                hidden = other.suppressed or getattr(other, "base_suppressed", False)
                if not hidden and (other.dimension, other.dimension_value) in columns:
                    letter = letters_of.get(other.dimension, {}).get(other.dimension_value, "")
                    printed.setdefault(other.dimension, set()).add(letter)
            for j, (dim, val) in enumerate(columns, start=2):
                cell = arow[(arow["dimension"] == dim) & (arow["dimension_value"] == val)]
                if cell.empty:
                    continue
                rec = cell.iloc[0]
                masked = bool(rec["suppressed"]) or bool(rec.get("base_suppressed", False))
                if masked:
                    ws.put(r, j, None, SECRET_FILL)
                    continue
                value = _num(rec["value"])
                if value is None:
                    continue
                letters = str(rec["letters"]) if has_letters and isinstance(rec.get("letters"), str) else ""
                letters = keep_letters(letters, printed.get(dim, set()))
                suffix = f'" {letters}"' if letters else ""
                percent = stat in PERCENT_STATISTICS
                ws.put(r, j, value / 100 if percent else value,
                       {"num_format": (PERCENT_FORMAT if percent else "0.0") + suffix},
                       *([SMALL_FONT] if j in small_cols else []))
            r += 1
    r += 1
    for text in legends:
        ws.put(r, 1, text, SMALL_FONT)
        r += 1
    if has_letters:
        named = [f"{_dimension_label(dim, codebook)} : " + ", ".join(f"{x} = {v}" for v, x in legend.items())
                 for dim, legend in letters_of.items() if legend]
        for text in ([f"Colonnes : {' ; '.join(named)}."] if named else []) + [letters_rule]:
            ws.put(r, 1, text, SMALL_FONT)
            r += 1
    ws.freeze(base_row, 2)
    ws.widths([48, *([14] * len(columns))])
    return ensemble_base

