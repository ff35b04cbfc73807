"""Tests of barometre.workbook: content, French headers, secrecy marks, identical bytes."""
from __future__ import annotations

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
from barometre.workbook import SECRET, fixed_datetime, sheet_title, write_workbook

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
        assert {i.date_time for i in z.infolist()} == {(2017, 10, 6, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    assert "2017-10-06T00:00:00Z" in core
    wb = openpyxl.load_workbook(a)
    assert wb.properties.created == wb.properties.modified == pd.Timestamp("2017-10-06").to_pydatetime()


def test_source_date_epoch_is_honoured(tables, tmp_path, monkeypatch):
    cells, tests = tables
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1507248000")  # 2017-10-06T00:00:00Z
    assert fixed_datetime() == pd.Timestamp("2017-10-06").to_pydatetime()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    path = write_workbook(cells, tests, CB, tmp_path / "c.xlsx")
    with zipfile.ZipFile(path) as z:
        assert {i.date_time for i in z.infolist()} == {(2020, 9, 13, 12, 26, 40)}
        assert "2020-09-13T12:26:40Z" in z.read("docProps/core.xml").decode()


def test_sheets_headers_wording_and_secret_marks(tables, tmp_path):
    cells, tests = tables
    path = write_workbook(cells, tests, CB, tmp_path / "t.xlsx", note="Données synthétiques", min_cell=3, small_base=30)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Lisez-moi", "Q08", "Q09", "Q29", "Tests"]  # codebook order
    assert wb.sheetnames[0] == "Lisez-moi" and wb.sheetnames[-1] == "Tests"
    assert all(len(s) <= 31 for s in wb.sheetnames)
    readme = " ".join(str(c.value) for c in wb["Lisez-moi"]["A"] if c.value)
    assert "Secret statistique" in readme and "Données synthétiques" in readme and "moins de 3 répondants" in readme

    ws = wb["Q29"]
    assert ws["A1"].value.startswith("Q29 — Votre collectivité dispose-t-elle")
    headers = [c.value for c in ws[6]]
    assert headers == ["Question", "Dimension", "Catégorie", "Indicateur", "Modalité", "Effectif", "Base", "%",
                       "IC 95 % bas", "IC 95 % haut", "Effectif faible", "Secret statistique"]
    rows = [r for r in ws.iter_rows(min_row=7, values_only=True)]
    frame = pd.DataFrame(rows, columns=headers)
    assert len(frame) == int((cells["question_id"] == "Q29").sum())
    oui = frame[(frame["Catégorie"] == "Ensemble") & (frame["Modalité"] == "Oui")].iloc[0]
    assert oui["Effectif"] == SECRET and oui["%"] == SECRET and oui["Secret statistique"] == "oui"
    non = frame[(frame["Catégorie"] == "Ensemble") & (frame["Modalité"] == "Non")].iloc[0]
    if non["Secret statistique"] != "oui":
        assert non["Effectif"] == 25 and non["%"] == pytest.approx(62.5)
    # every suppressed cell shows « s », every visible count is a number
    sec = frame["Secret statistique"] == "oui"
    assert (frame.loc[sec, "Effectif"] == SECRET).all()
    assert frame.loc[~sec, "Effectif"].map(lambda v: isinstance(v, (int, float))).all()
    assert (frame.loc[frame["Catégorie"] == "Élu·e", "Effectif faible"] == "oui").all()  # base 12 < 30
    # percentages formatted with one decimal
    pct_col = headers.index("%") + 1
    fmts = {ws.cell(row=r, column=pct_col).number_format for r in range(7, ws.max_row + 1)
            if isinstance(ws.cell(row=r, column=pct_col).value, float)}
    assert fmts == {"0.0"}

    wt = wb["Tests"]
    theaders = [c.value for c in wt[1]]
    assert theaders[:4] == ["Question", "Dimension", "Modalité", "Test"] and "p-valeur" in theaders
    assert wt.max_row - 1 == len(tests)


def test_q08_sheet_shows_indicator_and_option_labels(tables, tmp_path):
    cells, tests = tables
    wb = openpyxl.load_workbook(write_workbook(cells, tests, CB, tmp_path / "m.xlsx"))
    ws = wb["Q08"]
    assert "plusieurs réponses possibles" in ws["A3"].value
    labels = {r[4] for r in ws.iter_rows(min_row=7, values_only=True)}
    assert "Renforcer la transparence de l'action publique" in labels


def test_refuses_cells_without_disclosure(tables, tmp_path):
    cells, tests = tables
    raw = cells.drop(columns=["suppressed", "small_base", "base_suppressed"])
    with pytest.raises(BarometreError):
        write_workbook(raw, tests, CB, tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()


def test_weighted_workbook_has_effective_base_column(tmp_path):
    q = CB.question("Q29")
    frame = pd.DataFrame({q.harmonised: cat(["Oui"] * 10 + ["Non"] * 10, q.labels()), "w": np.linspace(0.5, 2, 20)})
    res = tabulate_level(frame, [q], [], weight="w")
    path = write_workbook(apply_disclosure(res.cells), res.tests, CB, tmp_path / "w.xlsx")
    headers = [c.value for c in openpyxl.load_workbook(path)["Q29"][6]]
    assert "Base effective" in headers


def test_sheet_title_rules():
    assert sheet_title("Q01") == "Q01"
    assert sheet_title("a/b:c*d?e[f]g\\h") == "a_b_c_d_e_f_g_h"
    long = "X" * 40
    assert len(sheet_title(long)) == 31
    assert sheet_title("Q01", ["q01"]) == "Q01~2"
