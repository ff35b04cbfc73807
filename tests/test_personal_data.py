"""Personal data and statistical secrecy in everything the pipeline writes.

* No identifier of the raw files (names, e-mails, phone numbers, IP addresses, collectivity names)
  appears in any processed or result file, read the way a person or a program would read it
  (parquet cells, CSV/JSON/SVG/HTML/Markdown text, XLSX cells, the PDF's text).
* Free text is redacted before any output.
* No published cell comes from 1 or 2 respondents, in ``cells.csv`` and in ``tableaux.xlsx``, and no
  subtraction of published numbers gives a suppressed one back.

All checks read the outputs of the session's full run (``built_project``).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import openpyxl
import pandas as pd
import pyreadstat
import pytest
import yaml

from barometre.clean import EMAIL_MASK, PHONE_MASK
from barometre.codebook import NSP_LABEL, load_codebook
from conftest import EDITION, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.pdf]

CODEBOOK = load_codebook(ROOT / "codebooks" / f"{EDITION}.yaml")
MIN_CELL = 3

# Independent of barometre.clean's own patterns on purpose.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_FR = re.compile(r"(?<![\w.,])(?:(?:\+|00)33[\s.-]?|0)[1-9](?:[\s.-]?\d{2}){4}(?![\w,])")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IDENTIFIER_COLUMNS = ("IDENT_NOM", "IDENT_PRENOM", "IDENT_EMAIL", "IDENT_TEL", "COLL_NOM", "ipaddr")
TEXT_SUFFIXES = {".csv", ".json", ".svg", ".html", ".md", ".txt"}


def read_as_text(path: Path) -> str:
    """What a reader of the file sees, as text."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        return "\n".join(map(str, frame.columns)) + "\n" + frame.astype(str).to_csv(index=False)
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        parts = [ws.title for ws in wb.worksheets]
        props = wb.properties
        parts += [
            str(v) for v in (props.creator, props.title, props.subject, props.description, props.lastModifiedBy) if v
        ]
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                parts += [str(v) for v in row if v is not None]
        return "\n".join(parts)
    if path.suffix == ".pdf":
        return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                              check=True).stdout
    if path.suffix in TEXT_SUFFIXES or path.name == ".snakemake_timestamp":
        return path.read_text(encoding="utf-8")
    raise AssertionError(f"{path}: no reader for this kind of output — add one so that it is scanned too")


@pytest.fixture(scope="module")
def outputs(built_project) -> dict[str, str]:
    """Every file under data/processed/ and results/, as text."""
    files = sorted(p for d in ("data/processed", "results") for p in (built_project / d).rglob("*") if p.is_file())
    assert any(p.suffix == ".pdf" for p in files) and any(p.suffix == ".xlsx" for p in files)
    return {str(p.relative_to(built_project)): read_as_text(p) for p in files}


@pytest.fixture(scope="module")
def raw_identifiers(built_project) -> dict[str, set[str]]:
    """Identifier values of the raw survey export of every configured edition, by column: the
    columns each codebook drops or pseudonymises (first names only where distinctive)."""
    config = yaml.safe_load((built_project / "config.yaml").read_text(encoding="utf-8"))
    out: dict[str, set[str]] = {}
    for edition, spec in sorted(config["editions"].items()):
        codebook = load_codebook(built_project / spec["codebook"])
        columns = [*codebook.identifiers.get("drop", []), *codebook.identifiers.get("pseudonymise", {})]
        if str(edition) == EDITION:
            assert set(IDENTIFIER_COLUMNS) <= set(columns)
        for raw_spec in spec["raw"].values():
            if raw_spec["format"] != "sav":
                continue
            raw, _ = pyreadstat.read_sav(str(built_project / raw_spec["path"]), user_missing=True)
            for c in columns:
                if c in raw.columns and (pd.api.types.is_string_dtype(raw[c]) or raw[c].dtype == object):
                    out.setdefault(c, set()).update(str(v).strip() for v in raw[c].dropna() if str(v).strip())
    if "IDENT_PRENOM" in out:
        out["IDENT_PRENOM"] = {v for v in out["IDENT_PRENOM"] if len(v) >= 5}  # « Lou », « Noa »… are not distinctive
    if "IDENT_TEL" in out:
        out["IDENT_TEL digits"] = {re.sub(r"\D", "", v) for v in out["IDENT_TEL"]}
    assert set(IDENTIFIER_COLUMNS) <= set(out) and all(out.values()) and len(out["IDENT_EMAIL"]) > 100
    return out


def test_every_output_is_read(outputs):
    """The scan covers parquet, CSV, XLSX, SVG, HTML, JSON and the PDF of every edition (a new kind of
    output fails above)."""
    suffixes = {Path(p).suffix for p in outputs}
    assert {".parquet", ".csv", ".xlsx", ".svg", ".html", ".pdf", ".json"} <= suffixes
    assert len(outputs["results/2017/rapport_2017.pdf"]) > 5000  # the PDF's text was really extracted


@pytest.mark.parametrize("kind,pattern", [("e-mail", EMAIL), ("French phone number", PHONE_FR), ("IPv4 address", IPV4)])
def test_no_identifier_pattern_in_any_output(outputs, kind, pattern):
    """No e-mail address, French phone number or IPv4 address appears in any processed or result file."""
    hits = {f: sorted(set(pattern.findall(t)))[:5] for f, t in outputs.items() if pattern.search(t)}
    assert not hits, f"{kind} found in {hits}"


def test_no_raw_identifier_value_in_any_output(outputs, raw_identifiers):
    """No raw value of IDENT_NOM, IDENT_PRENOM (distinctive ones), IDENT_EMAIL, IDENT_TEL (as written
    or as digits), COLL_NOM or ipaddr appears as a whole word in any processed or result file."""
    hits = []
    for column, values in raw_identifiers.items():
        pattern = re.compile(
            r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(values, key=len, reverse=True))) + r")(?!\w)"
        )
        for f, text in outputs.items():
            found = sorted(set(pattern.findall(text)))
            if found:
                hits.append((column, f, found[:5]))
    assert not hits, hits


def test_identifier_columns_are_dropped_or_pseudonymised(built_project, raw_identifiers):
    """The processed tables keep no identifier column; collectivities are known only by a salted
    pseudonym that is not the name."""
    resp = pd.read_parquet(built_project / "data/processed/2017/respondents.parquet")
    assert not set(IDENTIFIER_COLUMNS) & set(resp.columns)
    assert resp["collectivity_id"].str.fullmatch(r"COL-[0-9a-f]{12}").all()
    assert resp["collectivity_id"].nunique() == 98


# --------------------------------------------------------------------------- 9. free text


TEXT_COLUMNS = {
    "respondents": [q.harmonised for q in CODEBOOK.at_level("respondent") if q.type == "text"],
    "tools": [q.harmonised for q in CODEBOOK.at_level("tool") if q.type == "text"],
}


def test_free_text_is_redacted_before_any_output(built_project):
    """The tool comments that held « referent.outil@example.org » and « 01 23 45 67 89 » are written
    with « [courriel masqué] » / « [téléphone masqué] » in their place; no text column (nor any
    « autre » answer) of the processed tables holds an e-mail or a phone number; each redaction is
    in the cleaning log; « testons » (not a name) is left alone."""
    processed = built_project / "data/processed/2017"
    texts = []
    for name in ("respondents", "tools"):
        frame = pd.read_parquet(processed / f"{name}.parquet")
        cols = TEXT_COLUMNS[name] + [c for c in frame.columns if c.endswith("_other")]
        assert set(TEXT_COLUMNS[name]) <= set(frame.columns)
        for c in cols:
            texts += frame[c].dropna().astype(str).tolist()
    assert texts
    assert not [t for t in texts if EMAIL.search(t) or PHONE_FR.search(t)]
    comments = pd.read_parquet(processed / "tools.parquet")["tool_comment"].dropna()
    assert comments.str.contains(f"appeler le service au {PHONE_MASK}", regex=False).sum() == 1
    assert comments.str.contains(f"Contact : {EMAIL_MASK} pour toute question", regex=False).sum() == 1
    assert comments.str.contains(r"\btestons\b", regex=True).any()
    log = pd.read_csv(processed / "cleaning_log.csv", dtype=str)
    masked = log[log["action"] == "texte masqué"]
    assert set(masked["column"]) >= {"tool_comment"} and len(masked) >= 2
    assert masked["row"].notna().all() and (masked["file"] == "data/raw/2017/barometre_2017_limesurvey.sav").all()


# --------------------------------------------------------------------------- 11. statistical secrecy


def _true_ensemble_counts(built_project) -> list[tuple[str, str, int, int]]:
    """(question id, answer key, count, base) of every Ensemble share, counted from the processed
    tables independently of the tabulation code (filters already applied by cleaning)."""
    processed = built_project / "data/processed/2017"
    frames = {"respondent": pd.read_parquet(processed / "respondents.parquet"),
              "tool": pd.read_parquet(processed / "tools.parquet"),
              "bp": pd.read_parquet(processed / "bp_inventory.parquet")}
    # collectivity attributes: one row per collectivity, the first respondent (by id) among those who
    # answered the most attributes, « ne se prononce pas » not counted as an answer
    attrs = [q.harmonised for q in CODEBOOK.questions if q.unit == "collectivity"]
    resp = frames["respondent"]
    n_answered = (resp[attrs].notna() & resp[attrs].astype(object).ne(NSP_LABEL)).sum(axis=1)
    per_coll = (resp.assign(_n=-n_answered).sort_values(["collectivity_id", "_n", "respondent_id"])
                .drop_duplicates("collectivity_id"))
    out = []
    for q in CODEBOOK.questions:
        frame = per_coll if q.unit == "collectivity" else frames[q.level]
        if q.filter is not None:
            target = CODEBOOK.question(q.filter.question)
            frame = frame[frame[target.harmonised].isin([target.label_of(k) for k in q.filter.keys])]
        if q.is_categorical:
            values = frame[q.harmonised].dropna()
            for c, label in zip([c.key for c in q.codes] + (["nsp"] if q.shows_nsp else []), q.labels(), strict=True):
                out.append((q.id, c, int((values == label).sum()), len(values)))
        elif q.type == "multiple":
            m = frame[q.columns()]
            answered = m.notna().any(axis=1)
            # an exclusive « ne se prononce pas » leaves the base of every other option
            excl = [col for o, col in zip(q.options, q.columns(), strict=True) if o.exclusive]
            nsp = m[excl].fillna(False).astype(bool).any(axis=1) if excl else pd.Series(False, index=m.index)
            for o, col in zip(q.options, q.columns(), strict=True):
                rows = answered if o.exclusive else answered & ~nsp
                out.append((q.id, o.key, int(m.loc[rows, col].fillna(False).astype(bool).sum()), int(rows.sum())))
    return out


@pytest.fixture(scope="module")
def published_cells(built_project) -> pd.DataFrame:
    return pd.read_csv(built_project / "results/2017/tables/cells.csv")


def test_cells_of_one_or_two_respondents_are_suppressed_in_cells_csv_and_workbook(built_project, published_cells):
    """Every Ensemble share whose true count (recounted from the processed tables) is 1 or 2 — or,
    for a multiple-response option, whose complement is — is blank in cells.csv (flagged
    ``suppressed``) and written « s » in tableaux.xlsx."""
    cells = published_cells
    ens = cells[(cells["dimension"] == "ensemble") & (cells["statistic"] == "share")].set_index(
        ["question_id", "answer_key"]
    )
    wb = openpyxl.load_workbook(built_project / "results/2017/tableaux.xlsx")
    small = []
    for qid, key, n, base in _true_ensemble_counts(built_project):
        if (qid, key) not in ens.index:
            continue
        row = ens.loc[(qid, key)]
        assert not pd.notna(row["count"]) or row["count"] == n, (qid, key, row["count"], n)
        q = CODEBOOK.question(qid)
        if 0 < n < MIN_CELL or (q.type == "multiple" and 0 < base - n < MIN_CELL):
            small.append((qid, key))
            if bool(row.get("exempt", False)):  # a count the policy publishes as it is, with its reason
                assert row["count"] == n, (qid, key, n)
                continue
            assert bool(row["suppressed"]) and pd.isna(row["count"]) and pd.isna(row["value"]), (qid, key, n)
            label = q.label_of(key)
            shown = [c for stat, lab, dim, _, c in workbook_cells(wb[qid], cells[cells["question_id"] == qid])
                     if stat == "share" and lab == label and dim == "ensemble"]
            assert len(shown) == 1, (qid, key, shown)
            assert shown[0].value is None and shown[0].fill.fill_type == "darkGray", (qid, key)  # empty, grey
    assert ("Q01", "service_etat") in small  # « Service de l'État », one respondent
    assert len(small) >= 5


def test_no_published_number_comes_from_fewer_than_three_respondents(published_cells):
    """In cells.csv no published count and no published base is 1 or 2 (for multiple-response
    options, no published complement base − count either)."""
    c = published_cells[
        ~published_cells["exempt"].astype(bool)
    ]  # exemptions: counts not about persons, or printed by the edition
    counting = c["statistic"].isin(["share", "first_share", "top3_share", "top2_share", "cumulative_share"])
    assert not c.loc[counting, "count"].between(1, MIN_CELL - 1).any()
    assert not c["base"].between(1, MIN_CELL - 1).any()
    binary = counting & (c["question_type"] == "multiple")
    comp = c.loc[binary, "base"] - c.loc[binary, "count"]
    assert not comp.between(1, MIN_CELL - 1).any()
    assert c["suppressed"].any()


def test_no_cell_of_one_or_two_respondents_is_recovered_from_the_published_files(built_project):
    """The attacker of the publication layer, run again here on the files as published (tables,
    tests, merges, figures), leaves every cell of 1 or 2 respondents an interval that reaches 0 and
    3: no combination of published numbers — one subtraction or many — narrows it."""
    from barometre.audit import audit_published

    result = audit_published(
        built_project / "results/2017/tables",
        built_project / "results/2017/figures.csv",
        built_project / "data/processed/2017/disclosure_primary.csv",
        CODEBOOK,
        registry=built_project / "registry/figures_2017.yaml",
        disclosure=yaml.safe_load((built_project / "config.yaml").read_text(encoding="utf-8"))["disclosure"],
        edition="2017",
    )
    primary = result[result["rule"].astype(str).str.startswith("primaire")]
    assert len(primary) >= 5
    assert (result["status"] == "protégé").all(), result[result["status"] != "protégé"].head().to_dict("records")
    assert (
        (primary["feasible_min"] <= primary["protection_lower"])
        & (primary["feasible_max"] >= primary["protection_upper"])
    ).all()


def workbook_cells(ws, sub: pd.DataFrame) -> list[tuple[str, str, str, str, object]]:
    """(statistic, answer label, dimension, dimension value, cell) of every value cell of a question's cross-table."""
    from barometre.workbook import STATISTIC_LABELS, table_columns

    cols = table_columns(sub)
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=1).value == "Réponse")
    stats = list(dict.fromkeys(sub["statistic"].astype(str)))
    titles = {STATISTIC_LABELS.get(st, st): st for st in stats}
    stat, out = stats[0], []
    for r in range(header + 2, ws.max_row + 1):  # after the base row
        label = ws.cell(row=r, column=1).value
        if label is None:
            break  # the blank row before the legend
        row = [ws.cell(row=r, column=j) for j in range(2, len(cols) + 2)]
        if len(stats) > 1 and label in titles and all(c.value is None and c.fill.fill_type is None for c in row):
            stat = titles[label]
            continue
        out += [(stat, str(label), dim, val, c) for (dim, val), c in zip(cols, row, strict=True)]
    return out


def _shown_cells(group: pd.DataFrame) -> int:
    """How many cells of one question the workbook shows: all but those of an empty category (base 0)
    and those of an answer nobody gave in any column."""
    from barometre.workbook import PERCENT_STATISTICS, table_columns

    columns = set(table_columns(group))
    n = 0
    for (stat, _), answer in group.groupby(["statistic", "answer_key"], sort=False):
        counts = pd.to_numeric(answer["count"], errors="coerce").fillna(0)
        if stat in PERCENT_STATISTICS and not answer["suppressed"].any() and (counts == 0).all():
            continue
        n += sum((d, v) in columns for d, v in zip(answer["dimension"], answer["dimension_value"], strict=True))
    return n


def test_workbook_and_csv_publish_the_same_numbers(built_project, published_cells):
    """Every value of tableaux.xlsx equals cells.csv (shares as Excel percentages), every cell cells.csv
    hides is an empty grey cell (the workbook never shows a number the CSV hides), and only answers
    nobody gave are left out."""
    wb = openpyxl.load_workbook(built_project / "results/2017/tableaux.xlsx")
    n_checked = n_expected = 0
    for qid, group in published_cells.groupby("question_id", sort=False):
        keyed = group.set_index(["statistic", "answer_label", "dimension", "dimension_value"])
        for stat, label, dim, val, cell in workbook_cells(wb[qid], group):
            rec = keyed.loc[(stat, label, dim, val)]
            rec = rec.iloc[0] if isinstance(rec, pd.DataFrame) else rec
            if bool(rec["suppressed"]) or bool(rec.get("base_suppressed", False)):
                assert cell.value is None and cell.fill.fill_type == "darkGray", (qid, label, val)
            elif pd.notna(rec["value"]):
                percent = stat in ("share", "top2_share", "cumulative_share", "first_share", "top3_share")
                assert cell.value == pytest.approx(rec["value"] / 100 if percent else rec["value"]), (qid, label, val)
            n_checked += 1
        n_expected += _shown_cells(group)
    assert n_checked == n_expected
