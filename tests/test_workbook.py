"""Tests of barometre.workbook: content, French headers, secrecy marks, identical bytes.

The workbook is written with XlsxWriter and read back here with openpyxl, an independent reader.
"""
from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from barometre.codebook import load_codebook
from barometre.disclosure import apply_disclosure
from barometre.errors import BarometreError
from barometre.tabulate import tabulate_level
from barometre.workbook import fixed_datetime, sheet_title, write_workbook

ROOT = Path(__file__).resolve().parents[1]
CB = load_codebook(ROOT / "codebooks" / "2017.yaml")
ROLES = ["Élu·e", "Agent"]


def cat(values, labels, ordered=False):
    return pd.Categorical(list(values), categories=list(labels), ordered=ordered)


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(3)
    n = 40
    q29, q09, q08 = CB.question("Q29"), CB.question("Q09"), CB.question("Q08")
    frame = pd.DataFrame(
        {
            q29.harmonised: cat(["Oui"] + ["Non"] * 25 + ["Ne se prononce pas"] * 14, q29.labels()),
            q09.harmonised: cat(rng.choice(q09.labels(), n), q09.labels(), ordered=True),
            "role": cat(["Élu·e"] * 12 + ["Agent"] * 28, ROLES),
        }
    )
    for c in q08.columns():
        frame[c] = pd.array(rng.random(n) < 0.5, dtype="boolean")
    res = tabulate_level(frame, [q29, q09, q08], ["role"], codebook=CB, permutations=99)
    cells = apply_disclosure(res.cells, codebook=CB)
    return cells, res.tests


def test_two_writes_give_identical_bytes(tables, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    cells, tests = tables
    a = write_workbook(cells, tests, CB, tmp_path / "a.xlsx")
    time.sleep(1.1)  # a clock-dependent writer would now differ
    b = write_workbook(cells, tests, CB, tmp_path / "b.xlsx")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}  # XlsxWriter's fixed entry date
        core = z.read("docProps/core.xml").decode()
    assert "2017-10-06T00:00:00Z" in core
    wb = openpyxl.load_workbook(a)
    assert wb.properties.created == wb.properties.modified == pd.Timestamp("2017-10-06").to_pydatetime()
    assert wb.properties.creator == "barometre" and wb.properties.title.endswith("tableaux détaillés")
    umask = os.umask(0)
    os.umask(umask)
    assert a.stat().st_mode & 0o777 == 0o666 & ~umask  # as every other output, not a private temporary file


def test_source_date_epoch_is_honoured(tables, tmp_path, monkeypatch):
    cells, tests = tables
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1507248000")  # 2017-10-06T00:00:00Z
    assert fixed_datetime() == pd.Timestamp("2017-10-06").to_pydatetime()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    path = write_workbook(cells, tests, CB, tmp_path / "c.xlsx")
    with zipfile.ZipFile(path) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}  # never the clock
        core = z.read("docProps/core.xml").decode()
    assert "<dcterms:created" in core and core.count("2020-09-13T12:26:40Z") == 2  # created and modified


def _table(ws) -> tuple[list, dict[str, list]]:
    """(column headers, {answer label: row values}) of a question sheet's cross-table."""
    header_row = next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=1).value == "Réponse")
    headers = [c.value for c in ws[header_row]]
    rows = {}
    for r in range(header_row + 1, ws.max_row + 1):
        label = ws.cell(row=r, column=1).value
        if label:
            rows[label] = [ws.cell(row=r, column=j) for j in range(1, len(headers) + 1)]
    return headers, rows


def test_sommaire_banner_and_cross_tables(tables, tmp_path):
    cells, tests = tables
    path = write_workbook(cells, tests, CB, tmp_path / "t.xlsx", note="Données synthétiques", min_cell=3, small_base=30)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Sommaire", "Lisez-moi", "Q08", "Q09", "Q29", "Tests"]  # codebook order
    assert all(len(s) <= 31 for s in wb.sheetnames)
    readme = " ".join(str(c.value) for c in wb["Lisez-moi"]["A"] if c.value)
    assert "Secret statistique" in readme and "Données synthétiques" in readme and "moins de 3 répondants" in readme
    index = wb["Sommaire"]
    assert index["A1"].value == "Données synthétiques"
    links = {c.value: c.hyperlink.location for c in index["A"] if c.hyperlink is not None}
    assert links["Q29"] == "'Q29'!A1" and links["Lisez-moi"] == "'Lisez-moi'!A1"
    assert any(str(c.value).startswith("Votre collectivité dispose-t-elle") for c in index["B"] if c.value)

    ws = wb["Q29"]
    assert ws["A1"].value == "Données synthétiques"  # the banner heads every sheet
    assert ws["A3"].value.startswith("Q29 — Votre collectivité dispose-t-elle")
    headers, rows = _table(ws)
    assert headers == ["Réponse", "Ensemble", "Élu·e", "Agent"]
    base = [c.value for c in rows["Base (effectif)"][1:]]
    assert base == [40, 12, 28]
    sel = cells[(cells["question_id"] == "Q29") & (cells["statistic"] == "share")]
    for label, row in rows.items():
        if label == "Base (effectif)" or label.startswith(("Case grisée", "En italique")):
            continue
        for cell, value in zip(row[1:], ("Ensemble", "Élu·e", "Agent"), strict=True):
            rec = sel[(sel["answer_label"] == label) & (sel["dimension_value"] == value)].iloc[0]
            if rec["suppressed"]:  # a masked cell is empty (no number, no text) and grey
                assert cell.value is None and cell.fill.fill_type == "darkGray", (label, value)
            else:  # a real Excel percentage
                assert cell.value == pytest.approx(rec["value"] / 100) and cell.number_format.endswith("%")
        assert (rows[label][2].font.italic or rows[label][2].value is None)  # Élu·e: base 12 < 30, in italics
    assert rows["Oui"][1].value is None  # 1 « Oui » in 40: under secrecy
    legend = [c.value for c in ws["A"] if c.value and str(c.value).startswith("Case grisée")]
    assert legend and "moins de 3 réponses" in legend[0]

    wt = wb["Tests"]
    theaders = [c.value for c in wt[1]]
    assert theaders[:4] == ["Question", "Dimension", "Modalité", "Test"] and "p-valeur" in theaders
    assert wt.max_row - 1 == len(tests)


def test_no_empty_category_and_letters_hook(tables, tmp_path):
    cells, tests = tables
    cells = cells.copy()
    empty = cells[(cells["question_id"] == "Q29") & (cells["dimension_value"] == "Agent")].copy()
    empty["dimension_value"], empty["base"], empty["count"], empty["value"] = "Région", 0, 0, np.nan
    cells = pd.concat([cells, empty], ignore_index=True)
    cells["letters"] = np.where(cells["dimension_value"] == "Agent", "A", None)  # Agent above Élu·e (column A)
    wb = openpyxl.load_workbook(write_workbook(cells, tests, CB, tmp_path / "e.xlsx", letters_rule="Lettres : règle."))
    headers, rows = _table(wb["Q29"])
    assert "Région" not in headers  # nobody in it: no column
    agent, elu = headers.index("Agent"), headers.index("Élu·e")
    shown = [r for label, r in rows.items() if label != "Base (effectif)" and r[agent].value is not None]
    assert shown and all(r[agent].number_format.endswith('" A"') == (r[elu].value is not None) for r in shown)
    notes = [str(c.value) for c in wb["Q29"]["A"] if c.value]
    assert "Lettres : règle." in notes  # the rule of the configuration, as given
    assert any(n.startswith("Colonnes : ") and "A = Élu·e, B = Agent" in n for n in notes), notes


def test_letters_rule_defaults_to_the_comparison_settings(tables, tmp_path):
    from barometre.comparisons import rule_text

    cells, tests = tables
    cells = cells.assign(letters="")
    wb = openpyxl.load_workbook(write_workbook(cells, tests, CB, tmp_path / "d.xlsx"))
    assert rule_text(None) in [c.value for c in wb["Q29"]["A"]]


def test_q08_sheet_shows_option_labels(tables, tmp_path):
    cells, tests = tables
    wb = openpyxl.load_workbook(write_workbook(cells, tests, CB, tmp_path / "m.xlsx"))
    ws = wb["Q08"]
    assert "plusieurs réponses possibles" in ws["A3"].value
    _, rows = _table(ws)
    assert "Renforcer la transparence de l'action publique" in rows


def test_refuses_cells_without_disclosure(tables, tmp_path):
    cells, tests = tables
    raw = cells.drop(columns=["suppressed", "small_base", "base_suppressed"])
    with pytest.raises(BarometreError):
        write_workbook(raw, tests, CB, tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()


def test_weighted_workbook_shows_the_weighted_base(tmp_path):
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: cat(["Oui"] * 10 + ["Non"] * 10, q.labels()), "w": np.linspace(0.5, 2, 20)})
    res = tabulate_level(frame, [q], [], weight="w")
    path = write_workbook(apply_disclosure(res.cells), res.tests, CB, tmp_path / "w.xlsx")
    headers, rows = _table(openpyxl.load_workbook(path)["Q29"])
    assert headers == ["Réponse", "Ensemble"] and rows["Base (effectif)"][1].value == pytest.approx(25)  # Σw


def test_sheet_title_rules():
    assert sheet_title("Q01") == "Q01"
    assert sheet_title("a/b:c*d?e[f]g\\h") == "a_b_c_d_e_f_g_h"
    long = "X" * 40
    assert len(sheet_title(long)) == 31
    assert sheet_title("Q01", ["q01"]) == "Q01~2"


def test_layout_read_back_with_openpyxl(tables, tmp_path):
    """What a reader of the workbook gets beyond the values: frozen headers, widths, percent and
    decimal formats, the merged breakdown header, hatched masked cells, the banner's fill."""
    cells, tests = tables
    path = write_workbook(cells, tests, CB, tmp_path / "l.xlsx", note="Données synthétiques", min_cell=3)
    wb = openpyxl.load_workbook(path)
    assert wb.properties.description == "Données synthétiques"  # the note is in the file's properties too
    assert wb.active.title == "Sommaire"
    index = wb["Sommaire"]
    assert index.freeze_panes == "A6" and [c.value for c in index[5]] == ["Feuille", "Question", "Type",
                                                                          "Base (Ensemble)"]
    assert index["A5"].font.bold and index["A5"].fill.fgColor.rgb.endswith("DDDDDD")
    assert index["A1"].fill.fgColor.rgb.endswith("FBEEE6") and index["D1"].fill.fgColor.rgb.endswith("FBEEE6")
    assert index["A1"].font.color.rgb.endswith("7A2E00")
    assert index.column_dimensions["B"].width == pytest.approx(90, abs=1)

    ws = wb["Q29"]
    header = next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=1).value == "Réponse")
    assert ws.freeze_panes == f"B{header + 1}"  # answers and the base row stay in view
    assert ws.cell(row=header - 1, column=3).value == "Élu·e ou agent"
    assert f"C{header - 1}:D{header - 1}" in {str(m) for m in ws.merged_cells.ranges}
    assert ws.column_dimensions["A"].width == pytest.approx(48, abs=1)
    base = ws.cell(row=header + 1, column=2)
    assert base.value == 40 and base.font.bold
    shares = [ws.cell(row=r, column=j) for r in range(header + 2, ws.max_row + 1) for j in (2, 3, 4)
              if isinstance(ws.cell(row=r, column=j).value, float)]
    assert shares and {c.number_format for c in shares} <= {"0.0\\ %"}
    masked = [ws.cell(row=r, column=j) for r in range(header + 2, ws.max_row + 1) for j in (2, 3, 4)
              if ws.cell(row=r, column=j).fill.fill_type == "darkGray"]
    assert masked and all(c.value is None for c in masked)

    wt = wb["Tests"]
    assert wt.freeze_panes == "A2"
    pvalues = [c for c in wt["G"][1:] if c.value is not None]
    assert pvalues and {c.number_format for c in pvalues} == {"0.0000"}
    infinite = tests["statistic"].astype(float).map(np.isinf)
    assert infinite.any()  # Fisher's odds ratio with a zero cell: an empty cell, never a broken number
    statistics = [c.value for c in wt["E"][1:]]
    assert len(statistics) == len(tests) and statistics.count(None) == int((infinite | tests["statistic"].isna()).sum())


def test_labels_are_written_as_text_never_as_formulas_or_links(tables, tmp_path):
    """An answer label from an export that looks like a formula or a web address stays plain text:
    opening the workbook computes nothing and follows nothing."""
    cells, tests = tables
    cells = cells.copy()
    tricky = ("=HYPERLINK(\"http://example.org\";\"x\")", "http://example.org/")
    q29 = cells["question_id"] == "Q29"
    for label, key in zip(tricky, cells.loc[q29, "answer_key"].drop_duplicates()[:2], strict=True):
        cells.loc[q29 & (cells["answer_key"] == key), "answer_label"] = label
    path = write_workbook(cells, tests, CB, tmp_path / "x.xlsx")
    with zipfile.ZipFile(path) as z:
        sheets = {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")}
        assert not any("<f>" in x or "<f " in x for x in sheets.values())
        assert not any(n.startswith("xl/worksheets/_rels/") and "example.org" in z.read(n).decode()
                       for n in z.namelist())
    _, rows = _table(openpyxl.load_workbook(path)["Q29"])
    assert set(tricky) <= set(rows)
