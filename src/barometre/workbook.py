"""Excel workbook of the tables (« tableaux détaillés »), byte-for-byte reproducible.

One sheet per question (named by its id), preceded by a « Lisez-moi » sheet and
followed by a « Tests » sheet. Suppressed figures are written as ``s`` (secret
statistique), never as numbers. Two runs on the same cells give identical bytes:
the document properties carry a fixed date (``SOURCE_DATE_EPOCH`` when set,
else 2017-10-06) and the zip container is rewritten with fixed entry dates.
"""
from __future__ import annotations

import io
import math
import os
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from barometre.codebook import TYPE_LABELS, Codebook, Question
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
    "band": "Base : répondants ayant répondu (NSP inclus) ; parts cumulées : réponses exprimées seulement (NSP exclus).",
    "multiple": "Base : répondants ayant répondu à la question ; plusieurs réponses possibles, le total peut dépasser 100 %.",
    "ranking": "Base : répondants ayant classé au moins un item ; rang moyen parmi ceux qui ont classé l'item.",
    "numeric": "Base : réponses renseignées.",
}

HEADER_FONT = Font(bold=True)
TITLE_FONT = Font(bold=True, size=12)
HEADER_FILL = PatternFill("solid", fgColor="DDDDDD")


def fixed_datetime() -> datetime:
    """Date written in the workbook: ``SOURCE_DATE_EPOCH`` (UTC) if set, else 2017-10-06."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            return datetime.fromtimestamp(int(sde), tz=timezone.utc).replace(tzinfo=None)
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
    if x is None:
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _count_value(x: object) -> float | int | None:
    f = _num(x)
    if f is None:
        return None
    return int(f) if f.is_integer() else f


def _write_header(ws, row: int, headers: Sequence[str]) -> None:
    for j, h in enumerate(headers, start=1):
        c = ws.cell(row=row, column=j, value=h)
        c.font = HEADER_FONT
        c.fill = HEADER_FILL
        c.alignment = Alignment(wrap_text=True, vertical="top")


def _widths(ws, widths: Sequence[float]) -> None:
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


def _readme(
    ws, confidence_label: str, weighted: bool, note: str | None, min_cell: int | None, small_base: int | None
) -> None:
    lines = [
        ("Baromètre de la démocratie locale numérique — tableaux détaillés", TITLE_FONT),
        (note or "", None),
        ("", None),
        ("Organisation du classeur", HEADER_FONT),
        ("Une feuille par question (nom = identifiant de la question), puis la feuille « Tests ».", None),
        ("En tête de chaque feuille : le libellé exact de la question, son type, son filtre éventuel et la définition de la base.", None),
        ("", None),
        ("Colonnes", HEADER_FONT),
        ("Question : identifiant de la question.", None),
        ("Dimension : variable de croisement (« Ensemble » = tous les répondants concernés, y compris ceux dont la dimension n'est pas renseignée).", None),
        ("Catégorie : modalité de la dimension (sous-population).", None),
        ("Indicateur : part, part cumulée, total des deux modalités hautes, classé 1er / dans les 3 premiers, rang moyen, moyenne, médiane.", None),
        ("Modalité : réponse à la question.", None),
        ("Effectif : nombre de réponses dans la case" + (" (pondéré)." if weighted else "."), None),
        ("Base : nombre de répondants sur lequel le pourcentage est calculé (voir la définition en tête de feuille).", None),
        *([("Base effective : base de Kish (Σw)²/Σw², utilisée pour les intervalles de confiance.", None)] if weighted else []),
        ("% : pourcentage (0 à 100) ; pour « Rang moyen », « Moyenne » et « Médiane », la valeur elle-même.", None),
        (f"{confidence_label} bas / haut : intervalle de confiance (Wilson pour les pourcentages, Student pour les moyennes).", None),
        (
            "Effectif faible : « oui » quand la base est inférieure à "
            + (f"{small_base}" if small_base is not None else "au seuil configuré")
            + " ; le chiffre est fragile, à lire avec prudence.",
            None,
        ),
        (
            "Secret statistique : « oui » quand la case est masquée ; les valeurs masquées sont remplacées par « s ». "
            + (f"Aucune case publiée ne repose sur moins de {min_cell} répondants" if min_cell is not None else "Les petites cases sont masquées")
            + ", et des cases complémentaires sont masquées pour qu'aucune soustraction ne permette de les retrouver.",
            None,
        ),
        ("", None),
        ("Règles de calcul", HEADER_FONT),
        ("« Ne se prononce pas » : quand il est affiché, c'est une modalité à part entière, comprise dans la base ; il n'est jamais ajouté à une autre modalité.", None),
        ("Parts cumulées (tranches) : calculées sur les réponses exprimées, hors « Ne se prononce pas ».", None),
        ("Questions à réponses multiples : la somme des parts peut dépasser 100 %.", None),
        ("Questions filtrées : la base ne comprend que les répondants à qui la question a été posée.", None),
        ("", None),
        ("Tests", HEADER_FONT),
        ("Khi2 de Pearson quand tous les effectifs attendus sont suffisants ; sinon test exact de Fisher (tableau 2×2) ou test de permutation du khi2 (graine fixe, p-value reproductible).", None),
        ("Réponses multiples : un test par modalité (cochée / non cochée). Classement : test sur l'item classé en 1re position. Valeurs numériques : test de Kruskal-Wallis.", None),
        ("Les tests ne portent que sur les colonnes de la dimension (hors « Ensemble ») et ne sont pas corrigés pour la multiplicité.", None),
    ]
    for i, (text, font) in enumerate(lines, start=1):
        c = ws.cell(row=i, column=1, value=text if text else None)
        if font is not None:
            c.font = font
    ws.column_dimensions["A"].width = 140


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

    wb = Workbook()
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "barometre"
    wb.properties.lastModifiedBy = None
    readme = wb.active
    readme.title = "Lisez-moi"
    _readme(readme, ci, weighted, note, min_cell, small_base)

    headers = ["Question", "Dimension", "Catégorie", "Indicateur", "Modalité", "Effectif", "Base"]
    if weighted:
        headers.append("Base effective")
    headers += ["%", f"{ci} bas", f"{ci} haut", "Effectif faible", "Secret statistique"]

    one_decimal = {"%", f"{ci} bas", f"{ci} haut", "Base effective", "Effectif", "Base"}
    qids = list(dict.fromkeys(cells["question_id"].astype(str)))
    order = {q.id: i for i, q in enumerate(codebook.questions)}
    qids.sort(key=lambda q: (order.get(q, len(order)), q))
    if "base_suppressed" in cells.columns:
        base_supp_all = cells["base_suppressed"]
    else:
        base_supp_all = pd.Series(False, index=cells.index)
    taken: list[str] = ["Lisez-moi", "Tests"]
    for qid in qids:
        sub = cells[cells["question_id"].astype(str) == qid]
        q = _question(codebook, qid)
        title = sheet_title(qid, taken)
        taken.append(title)
        ws = wb.create_sheet(title)
        wording = q.wording if q else qid
        ws.cell(row=1, column=1, value=f"{qid} — {wording}").font = TITLE_FONT
        if q is not None:
            kind = TYPE_LABELS.get(q.type, q.type)
            level = LEVEL_LABELS.get(q.level, q.level)
            ws.cell(row=2, column=1, value=f"Type : {kind} · niveau : {level} · {_filter_text(q, codebook)}")
            ws.cell(row=3, column=1, value=BASE_NOTES.get(q.type, ""))
        ws.cell(row=4, column=1, value="« s » : secret statistique (case masquée). Voir la feuille « Lisez-moi ».")
        hrow = 6
        _write_header(ws, hrow, headers)
        supp = sub["suppressed"].to_numpy(dtype=bool)
        bsupp = base_supp_all.loc[sub.index].to_numpy(dtype=bool)
        small = sub["small_base"].to_numpy(dtype=bool)
        records = sub.to_dict("records")
        for i, rec in enumerate(records):
            r = hrow + 1 + i
            row: list[object] = [
                qid,
                _dimension_label(str(rec["dimension"]), codebook),
                rec["dimension_value"],
                STATISTIC_LABELS.get(str(rec["statistic"]), str(rec["statistic"])),
                rec["answer_label"],
                SECRET if supp[i] else _count_value(rec["count"]),
                SECRET if bsupp[i] else _count_value(rec["base"]),
            ]
            if weighted:
                row.append(SECRET if bsupp[i] else _num(rec.get("effective_base")))
            row += [
                SECRET if supp[i] else _num(rec["value"]),
                SECRET if supp[i] else _num(rec["ci_low"]),
                SECRET if supp[i] else _num(rec["ci_high"]),
                "oui" if small[i] else None,
                "oui" if supp[i] else None,
            ]
            for j, v in enumerate(row, start=1):
                c = ws.cell(row=r, column=j, value=v)
                if isinstance(v, float):
                    header = headers[j - 1]
                    c.number_format = "0.0" if header in one_decimal else "General"
                elif v == SECRET:
                    c.alignment = Alignment(horizontal="right")
        ws.freeze_panes = ws.cell(row=hrow + 1, column=1)
        last = hrow + len(records)
        ws.auto_filter.ref = f"A{hrow}:{get_column_letter(len(headers))}{max(last, hrow)}"
        _widths(ws, [10, 22, 26, 30, 50, 10, 10, *([12] if weighted else []), 9, 12, 12, 10, 12])

    wt = wb.create_sheet("Tests")
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
            c = wt.cell(row=i, column=j, value=v)
            if j in (5, 9) and isinstance(v, float):
                c.number_format = "0.00"
            elif j == 7 and isinstance(v, float):
                c.number_format = "0.0000"
    wt.freeze_panes = "A2"
    _widths(wt, [10, 22, 40, 28, 12, 6, 10, 10, 14])

    raw = io.BytesIO()
    archive = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(wb, archive).save()  # not save_workbook(): it would stamp "modified" with now
    data = _normalise_zip(raw.getvalue(), stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _normalise_zip(data: bytes, stamp: datetime) -> bytes:
    """Rewrite a zip with a fixed date, mode and compression for every entry."""
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = 3
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename), compresslevel=6)
    return out.getvalue()
