"""Bad input: every way a raw export or the configuration can be wrong stops the pipeline with a
message that names the file, the column and the row, and leaves no partial output behind.

Promises covered elsewhere (referenced, not duplicated — see ``test_promises_covered_elsewhere``):

* tests/test_ingest.py: cp1252 / BOM / wrong separator / quoted newlines on tiny CSVs, unreadable
  tiny ``.sav`` files;
* tests/test_config.py: misspelt key (schema error naming it), missing configured file, empty edition
  folder at the ``check_files`` level, both through ``snakemake -n``.

Here the same promises are checked on the real 2017 exports, through the real cleaning path
(``read_raw`` + ``clean_edition`` / ``run_clean``) and through Snakemake in a copy of the project.
"""
from __future__ import annotations

import copy
import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from barometre.clean import clean_bp, clean_edition
from barometre.codebook import NSP_LABEL, load_codebook
from barometre.config import load_config
from barometre.errors import IngestError, ValidationError
from barometre.ingest import read_raw
from barometre.pipeline import run_clean
from conftest import EDITION, ROOT, copy_project, run_snakemake

RAW_DIR = ROOT / "data" / "raw" / EDITION
SAV = RAW_DIR / "barometre_2017_limesurvey.sav"
BP_CSV = RAW_DIR / "inventaire_budgets_participatifs_2017.csv"
CONFIG = load_config(ROOT / "config.yaml")
SPEC = CONFIG["editions"][EDITION]
CODEBOOK = load_codebook(ROOT / SPEC["codebook"])
SALT = b"test-salt"
PAYLOAD = '<script>alert(1)</script> {{7*7}} <img src="file:///etc/passwd">'


# --------------------------------------------------------------------------- helpers


def read_real_sav() -> tuple[pd.DataFrame, object]:
    """The shipped .sav as pyreadstat reads it, code 99 kept (user-missing)."""
    return pyreadstat.read_sav(str(SAV), user_missing=True)


def write_sav_like(frame: pd.DataFrame, meta, path: Path) -> Path:
    """Write ``frame`` as a .sav with the labels, value labels and missing ranges of ``meta``."""
    keep = set(frame.columns)
    pyreadstat.write_sav(
        frame, str(path), file_label=meta.file_label,
        column_labels=[meta.column_names_to_labels.get(c) for c in frame.columns],
        note=meta.notes or None,
        variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in keep},
        missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in keep},
        variable_measure={k: v for k, v in meta.variable_measure.items() if k in keep},
        variable_display_width={k: v for k, v in meta.variable_display_width.items() if k in keep},
        variable_format={k: v for k, v in meta.original_variable_types.items() if k in keep},
    )
    return path


def raws_with(survey: Path = SAV, bp: Path = BP_CSV, **bp_options) -> dict:
    """Raw tables of the edition as ``run_clean`` reads them, with some files replaced."""
    bp_spec = dict(SPEC["raw"]["bp_inventory"], path=str(bp), **bp_options)
    expected = [c for q in CODEBOOK.at_level("bp") for c in q.raw_columns()]
    return {
        "survey": read_raw("survey", dict(SPEC["raw"]["survey"], path=str(survey))),
        "bp_inventory": read_raw("bp_inventory", bp_spec, expected),
    }


def clean(raws: dict):
    return clean_edition(raws, CODEBOOK, SPEC["exclusions"], SALT)


def job_output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def kept_records() -> list[int]:
    """Positions (0-based) in the .sav of records kept by the cleaning (not test, incomplete, duplicate)."""
    raw, _ = read_real_sav()
    kept = set(clean(raws_with()).respondents["respondent_id"])
    return [i for i, v in enumerate(raw["id"]) if f"R{int(v):04d}" in kept]


# --------------------------------------------------------------------------- 1. unreadable .sav


def _broken_sav(kind: str, path: Path) -> Path:
    data = SAV.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not_spss":
        path.write_bytes(BP_CSV.read_bytes())
    elif kind == "wrong_encoding":
        # the file declares UTF-8, but its « é » are written as Latin-1 bytes (same length, offsets kept)
        assert b"\xc3\xa9" in data
        path.write_bytes(data.replace(b"\xc3\xa9", b"\xe9 "))
    return path


@pytest.mark.parametrize("kind,cause", [
    ("truncated", "truncated"),
    ("not_spss", "not an SPSS .sav file"),
    ("wrong_encoding", "character encoding"),
])
def test_unreadable_real_sav_error_names_file_and_cause(tmp_path, kind, cause):
    """A truncated, non-SPSS or wrongly encoded copy of the real export is refused by an IngestError
    that names the file and says what is wrong with it (and, for the encoding, what to set)."""
    bad = _broken_sav(kind, tmp_path / f"{kind}.sav")
    with pytest.raises(IngestError) as err:
        read_raw("survey", dict(SPEC["raw"]["survey"], path=str(bad)))
    msg = str(err.value)
    assert str(bad) in msg and "'survey'" in msg
    assert cause in msg, msg
    if kind == "wrong_encoding":
        assert "encoding" in msg and "config.yaml" in msg


@pytest.mark.slow
def test_pipeline_on_truncated_sav_fails_leaving_no_report_nor_partial_file(tmp_path):
    """Snakemake on a copy whose .sav is truncated fails in ``clean``; the log names the file and the
    cause; no report (HTML, PDF), no table and no processed file — not even a partial one — is left."""
    proj = copy_project(tmp_path / "proj")
    sav = proj / "data/raw/2017" / SAV.name
    sav.write_bytes(SAV.read_bytes()[: SAV.stat().st_size // 2])
    res = run_snakemake(proj, "--cores", "2")
    assert res.returncode != 0
    out = job_output(res)
    assert "Error in rule clean" in out
    log = (proj / "logs/2017/clean.log").read_text(encoding="utf-8")
    assert "data/raw/2017/barometre_2017_limesurvey.sav: cannot read as an SPSS .sav file" in log
    assert "truncated" in log
    for name in ("rapport_2017.html", "rapport_2017.pdf", "tableaux.xlsx", "figures.csv"):
        assert not (proj / "results/2017" / name).exists(), name
    assert not (proj / "results/2017/tables").exists()
    processed = proj / "data/processed/2017"
    assert not processed.exists() or not any(processed.iterdir()), sorted(processed.iterdir())


# --------------------------------------------------------------------------- 2-5. the BP inventory CSV


@pytest.fixture(scope="module")
def bp_reference():
    """The BP inventory cleaned from the shipped file, and its records parsed independently."""
    raws = raws_with()
    bp, _ = clean_bp(raws["bp_inventory"], CODEBOOK)
    text = BP_CSV.read_bytes().decode("cp1252")
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    return bp, records[0], records[1:], text


def test_cp1252_inventory_is_decoded_without_mojibake(bp_reference):
    """The cp1252 inventory goes through cleaning with its accents intact: every territory name equals
    the file decoded as cp1252, the accented types map to their labels, and no « Ã » / U+FFFD appears."""
    bp, header, records, _ = bp_reference
    assert header[0] == "N°" and "Première édition" in header
    strings = pd.concat([bp[c].astype("string") for c in bp.columns if bp[c].dtype != "Float64"]).dropna()
    assert not strings.str.contains("Ã|Â|\ufffd", regex=True).any(), strings[strings.str.contains("Ã|\ufffd")].tolist()
    by_id = bp.set_index("bp_id")
    for rec in records:
        assert by_id.loc[rec[0].strip(), "bp_territory_name"] == rec[1].strip()
    kinds = set(bp["bp_territory_kind"].dropna())
    assert {"Intercommunalité", "Région", "Département", "Université", "État (échelle nationale)"} <= kinds
    assert any("é" in name for name in bp["bp_territory_name"])


def test_utf8_bom_inventory_reads_like_the_original(tmp_path, bp_reference):
    """The same inventory saved as UTF-8 with a BOM (config still says cp1252): the BOM wins, the
    first column is named exactly « N° » (its codebook name, no « \\ufeff »), and cleaning gives the
    same table as the cp1252 original."""
    bp, _, _, text = bp_reference
    p = tmp_path / "bp_bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    raw = raws_with(bp=p)["bp_inventory"]
    assert raw.frame.columns[0] == CODEBOOK.sources["bp_inventory"]["id_column"] == "N°"
    assert raw.encoding == "utf-8"
    again, _ = clean_bp(raw, CODEBOOK)
    pd.testing.assert_frame_equal(again, bp)


def test_semicolon_and_decimal_comma_give_the_right_numbers(bp_reference):
    """« ; » separated cells with a decimal comma are parsed to the exact numbers: « 6,45 » → 6.45 in
    bp_amount_per_capita_eur, « 1200000,00 » → 1 200 000 in bp_amount_eur, for every record."""
    bp, header, records, _ = bp_reference
    by_id = bp.set_index("bp_id")
    columns = {"Population": "bp_population", "Montant alloué (€)": "bp_amount_eur",
               "Montant par habitant (€)": "bp_amount_per_capita_eur", "Première édition": "bp_first_year"}
    checked = 0
    for rec in records:
        for raw_col, col in columns.items():
            cell = rec[header.index(raw_col)].strip()
            got = by_id.loc[rec[0].strip(), col]
            if cell == "":
                assert pd.isna(got)
            else:
                assert float(got) == pytest.approx(float(cell.replace(",", ".")), abs=1e-9), (rec[0], raw_col, cell)
                checked += 1
    assert checked > 150
    bar_le_duc = by_id[by_id["bp_territory_name"] == "Bar-le-Duc"].iloc[0]
    assert bar_le_duc["bp_amount_per_capita_eur"] == pytest.approx(6.45)
    assert bar_le_duc["bp_amount_eur"] == pytest.approx(100000.0)


def test_decimal_point_in_a_decimal_comma_file_is_an_error_not_a_number(tmp_path):
    """A « 6.45 » in a file configured with decimal « , » is not silently read as 645: validation
    fails naming the file, the column and the line, and says which decimal mark was expected."""
    text = BP_CSV.read_bytes().decode("cp1252")
    assert ";6,45;" in text
    p = tmp_path / "bp_dot.csv"
    p.write_bytes(text.replace(";6,45;", ";6.45;").encode("cp1252"))
    with pytest.raises(ValidationError) as err:
        clean(raws_with(bp=p))
    problems = err.value.problems
    assert [(x["column"], x["row"], x["value"]) for x in problems] == [("Montant par habitant (€)", 3, "6.45")]
    assert (
        f"{p}: column 'Montant par habitant (€)', line 3: nombre illisible (marque décimale attendue : « , »)"
        in str(err.value)
    )


def test_configured_decimal_point_is_honoured(tmp_path, bp_reference):
    """The ``decimal`` option of config.yaml is used: the inventory rewritten with « . » decimals and
    configured ``decimal: "."`` gives the same numbers as the original."""
    bp, _, _, text = bp_reference
    p = tmp_path / "bp_point.csv"
    p.write_bytes(re.sub(r"(?<=\d),(?=\d)", ".", text).encode("cp1252"))
    again, _ = clean_bp(raws_with(bp=p, decimal=".")["bp_inventory"], CODEBOOK)
    pd.testing.assert_frame_equal(again, bp)


@pytest.mark.parametrize("case", ["config_says_comma", "file_uses_comma"])
def test_wrong_separator_fails_naming_the_columns(tmp_path, case, bp_reference):
    """Separator and file disagree: ``run_clean`` stops with an IngestError naming the file, the
    codebook columns it could not find and the separator to use — never a one-column frame."""
    _, header, records, _ = bp_reference
    config = copy.deepcopy(CONFIG)
    spec = config["editions"][EDITION]
    for raw in spec["raw"].values():
        raw["path"] = str(ROOT / raw["path"])
    spec["codebook"] = str(ROOT / spec["codebook"])
    if case == "config_says_comma":
        spec["raw"]["bp_inventory"]["sep"] = ","
        bad, right = BP_CSV, ";"
    else:
        bad, right = tmp_path / "bp_commas.csv", ","
        buf = io.StringIO(newline="")
        csv.writer(buf, delimiter=",", lineterminator="\r\n").writerows([header, *records])
        bad.write_bytes(buf.getvalue().encode("cp1252"))
        spec["raw"]["bp_inventory"]["path"] = str(bad)
    outputs = {k: str(tmp_path / "out" / f"{k}.x") for k in ("respondents", "tools", "bp", "log_table", "report")}
    with pytest.raises(IngestError) as err:
        run_clean(EDITION, config, outputs)
    msg = str(err.value)
    assert str(bad) in msg and "N°" in msg and "Territoire" in msg
    assert "separator" in msg and f"try sep: {right!r}" in msg
    assert not (tmp_path / "out").exists()


def test_free_text_with_newlines_quotes_and_semicolons_keeps_one_row_per_record(bp_reference):
    """Remarks holding « ; », doubled quotes and line breaks stay inside their cell: the cleaned
    inventory has exactly one row per record (61), while the file has more physical lines, and the
    Paris remark keeps its « ; », its quotes and its line break."""
    bp, _, records, text = bp_reference
    physical_lines = text.count("\n")  # CRLF record ends plus the LF inside the Paris remark
    assert len(bp) == len(records) == 61
    assert physical_lines > len(records) + 1
    paris = bp.loc[bp["bp_territory_name"] == "Paris", "bp_remarks"].iloc[0]
    assert ";" in paris and '"' in paris and "\n" in paris
    raw = raws_with()["bp_inventory"]
    assert raw.row_numbers[-1] == physical_lines  # the last record starts on the last physical line


# --------------------------------------------------------------------------- 6. validation problems


@pytest.fixture(scope="module")
def invalid_sav(tmp_path_factory, kept_records) -> tuple[Path, dict]:
    """A copy of the real .sav with four kinds of problems, and where they are (1-based records)."""
    raw, meta = read_real_sav()
    r_code, r_role, r_a, r_b = kept_records[4], kept_records[9], kept_records[19], kept_records[20]
    raw = raw.drop(columns=["PARTENARIAT"])  # codebook column Q09 missing from the export
    raw.loc[r_code, "OD_PORTAIL"] = 5.0  # unknown answer code (Oui = 1, Non = 2, NSP = 99)
    raw.loc[r_role, "ROLE"] = 3.0  # neither élu (1) nor agent (2)
    raw.loc[r_b, "id"] = raw.loc[r_a, "id"]  # duplicated respondent id
    path = write_sav_like(raw, meta, tmp_path_factory.mktemp("invalid") / "barometre_2017_limesurvey.sav")
    expected = {
        ("PARTENARIAT", None), ("OD_PORTAIL", r_code + 1), ("ROLE", r_role + 1), ("id", r_a + 1), ("id", r_b + 1),
    }
    return path, {"expected": expected, "dup_id": int(raw.loc[r_a, "id"])}


def test_every_validation_problem_is_listed_at_once_with_file_column_and_row(invalid_sav):
    """A missing codebook column, an unknown code, ROLE = 3 and a duplicated id are all reported by
    one ValidationError; each problem names the file, the column and the 1-based record number."""
    path, info = invalid_sav
    with pytest.raises(ValidationError) as err:
        clean(raws_with(survey=path))
    problems = err.value.problems
    assert {(p["column"], p["row"]) for p in problems} == info["expected"]
    assert all(p["file"] == str(path) for p in problems)
    msg = str(err.value)
    lines = msg.splitlines()
    assert lines[0] == f"{path}: 5 validation problem(s):"
    for column, row in info["expected"]:
        where = "every row" if row is None else f"row {row}"
        assert any(line.strip().startswith(f"{path}: column {column!r}, {where}: ") for line in lines[1:]), (
            column,
            row,
        )
    assert "(question Q09)" in msg and "code hors du codebook" in msg and "(valeur : 3)" in msg
    assert f"identifiant en double (valeur : {info['dup_id']})" in msg



@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_validation_by_positions_in_column_groups_finds_what_the_copied_frame_finds(invalid_sav, monkeypatch, chunk):
    """``validate_raw(..., positions=...)`` (columns a few at a time, rows by position, as the cleaning
    of a large export does) reports exactly what validating a copy of those rows reports."""
    from barometre import clean as cleaning

    path, info = invalid_sav
    raw = read_raw("survey", {"path": str(path), "format": "sav"})
    frame = raw.frame.assign(**{cleaning.ROW: list(raw.row_numbers)})

    def problems(data, **kw) -> list[dict]:
        with pytest.raises(ValidationError) as err:
            cleaning.validate_raw(raw, data, CODEBOOK, "respondent", **kw)
        return err.value.problems

    monkeypatch.setattr(cleaning, "VALIDATE_CHUNK", chunk)
    whole = problems(frame)
    assert {(p["column"], p["row"]) for p in whole} == info["expected"]
    assert problems(frame, positions=np.arange(len(frame))) == whole
    some = np.flatnonzero(np.arange(len(frame)) % 3 != 1)  # a third of the records left out
    assert problems(frame, positions=some) == problems(frame.iloc[some])

def test_problems_of_both_files_and_of_exclusion_columns_come_in_one_error(tmp_path, kept_records):
    """A column an exclusion rule needs (``submitdate``), an item ranked twice and a bad number in the
    other file are listed together in one ValidationError, not one at a time."""
    raw, meta = read_real_sav()
    r = kept_records[3]
    raw = raw.drop(columns=["submitdate"])
    raw.loc[r, "LEVIERS_R2"] = raw.loc[r, "LEVIERS_R1"]
    sav = write_sav_like(raw, meta, tmp_path / "survey.sav")
    bp = tmp_path / "bp.csv"
    bp.write_bytes(BP_CSV.read_bytes().replace(b";6,45;", b";6,45x;"))
    with pytest.raises(ValidationError) as err:
        clean(raws_with(survey=sav, bp=bp))
    found = {(Path(p["file"]).name, p["column"], p["row"]) for p in err.value.problems}
    assert ("survey.sav", "submitdate", None) in found
    assert ("survey.sav", "LEVIERS_R1, LEVIERS_R2", r + 1) in found
    assert ("bp.csv", "Montant par habitant (€)", 3) in found
    assert "nécessaire à la règle d'exclusion 'incomplete'" in str(err.value)
    assert "Q07 : le même item est classé à deux rangs" in str(err.value)


@pytest.mark.slow
def test_pipeline_stops_at_clean_before_tabulate(tmp_path, invalid_sav):
    """Snakemake on a copy holding the invalid .sav fails in ``clean``: its log lists every problem,
    ``tabulate`` never runs (no results/2017/tables, no workbook, no tabulate log) and no processed
    file is left."""
    path, info = invalid_sav
    proj = copy_project(tmp_path / "proj")
    shutil.copyfile(path, proj / "data/raw/2017" / SAV.name)
    res = run_snakemake(proj, "--cores", "2")
    assert res.returncode != 0
    assert "Error in rule clean" in job_output(res)
    log = (proj / "logs/2017/clean.log").read_text(encoding="utf-8")
    assert "data/raw/2017/barometre_2017_limesurvey.sav: 5 validation problem(s):" in log
    for column, row in info["expected"]:
        assert f"column {column!r}, {'every row' if row is None else f'row {row}'}" in log
    assert not (proj / "results/2017/tables").exists()
    assert not (proj / "results/2017/tableaux.xlsx").exists()
    assert not (proj / "logs/2017/tabulate.log").exists()
    processed = proj / "data/processed/2017"
    assert not processed.exists() or not any(processed.iterdir())


# --------------------------------------------------------------------------- 7. « ne sait pas » (99)


def test_nsp_99_becomes_non_response_and_is_logged_where_not_shown(tmp_path, kept_records):
    """Code 99 in questions that do not show « Ne se prononce pas » (Q01 COLL_TYPE, Q06 SERVICE:
    ``nsp: drop``) becomes a non-response — never a category, never counted as an answer — and each
    record is logged (file, row, column) as « ne sait pas → non-réponse »."""
    raw, meta = read_real_sav()
    agents = [i for i in kept_records if raw.loc[i, "ROLE"] == 2 and raw.loc[i, "SERVICE"] == raw.loc[i, "SERVICE"]]
    r1, r2, r3 = kept_records[2], kept_records[7], agents[5]
    raw.loc[[r1, r2], "COLL_TYPE"] = 99.0
    raw.loc[r3, "SERVICE"] = 99.0
    sav = write_sav_like(raw, meta, tmp_path / "nsp.sav")
    result = clean(raws_with(survey=sav))
    resp = result.respondents.set_index("respondent_id")
    ids = {r: f"R{int(raw.loc[r, 'id']):04d}" for r in (r1, r2, r3)}
    assert resp.loc[[ids[r1], ids[r2]], "collectivity_type"].isna().all()
    assert pd.isna(resp.loc[ids[r3], "staff_service"])
    for col in ("collectivity_type", "staff_service"):
        assert NSP_LABEL not in list(resp[col].cat.categories)
    ev = result.events[result.events["action"] == "ne sait pas → non-réponse"]
    assert {(c, int(r)) for c, r in zip(ev["column"], ev["row"], strict=True)} == {
        ("collectivity_type", r1 + 1), ("collectivity_type", r2 + 1), ("staff_service", r3 + 1)}
    assert set(ev["file"]) == {str(sav)}
    # the tools of those respondents carry the non-response too (never a substantive type)
    tools = result.tools.set_index("respondent_id")
    for r in (r1, r2):
        if ids[r] in tools.index:
            assert tools.loc[[ids[r]], "collectivity_type"].isna().all()


@pytest.mark.e2e
def test_nsp_99_shown_as_its_own_category_and_never_counted_as_a_substantive_answer(built_project):
    """In questions that show it (``nsp: show``), each raw 99 of a kept record becomes « Ne se
    prononce pas » in the processed table, every substantive category keeps exactly its raw count,
    and the published Ensemble cells count the NSP in the base but in no other category."""
    raw, _ = pyreadstat.read_sav(str(built_project / "data/raw/2017" / SAV.name), user_missing=True)
    raw = raw.assign(respondent_id=raw["id"].map(lambda v: f"R{int(v):04d}"))
    processed = built_project / "data/processed/2017"
    resp = pd.read_parquet(processed / "respondents.parquet")
    tools = pd.read_parquet(processed / "tools.parquet")
    cells = pd.read_csv(built_project / "results/2017/tables/cells.csv")
    ens = cells[(cells["dimension"] == "ensemble") & (cells["statistic"] == "share")]
    shown = [q for q in CODEBOOK.questions if q.is_categorical and q.shows_nsp and q.level in ("respondent", "tool")]
    assert len(shown) >= 10
    n_nsp_total = 0
    for q in shown:
        if q.level == "respondent":
            kept = raw.set_index("respondent_id").loc[resp["respondent_id"]]
            codes = kept[q.raw].to_numpy()
            values = resp[q.harmonised]
        else:
            by_rid = raw.set_index("respondent_id")
            codes = np.array([by_rid.loc[rid, q.raw.replace("{i}", str(int(i)))]
                              for rid, i in zip(tools["respondent_id"], tools["tool_index"], strict=True)])
            values = tools[q.harmonised]
        if q.filter is not None:  # out-of-filter answers are blanked by cleaning: compare within the filter
            target = CODEBOOK.question(q.filter.question)
            inside = values.index[(resp if q.level == "respondent" else tools)[target.harmonised].isin(
                [target.label_of(k) for k in q.filter.keys])]
            codes, values = codes[inside], values.loc[inside]
        n99 = int((codes == 99).sum())
        n_nsp_total += n99
        assert int((values == NSP_LABEL).sum()) == n99, q.id
        for c in q.codes:
            assert int((values == c.label).sum()) == int((codes == c.code).sum()), (q.id, c.key)
        qcells = ens[ens["question_id"] == q.id].set_index("answer_key")
        # a collectivity attribute is tabulated once per collectivity (recounted in test_personal_data.py)
        if q.unit != "collectivity" and not qcells["count"].isna().any():
            assert qcells.loc["nsp", "count"] == n99, q.id
            assert qcells["base"].iloc[0] == qcells["count"].sum()
            assert qcells.drop(index="nsp")["count"].sum() == qcells["base"].iloc[0] - n99
    assert n_nsp_total >= 40  # the 2017 file has 99s in these questions (e.g. F10: 16 tools)


# --------------------------------------------------------------------------- 10. injection in text fields


@pytest.fixture(scope="module")
def injected_report(built_project, tmp_path_factory):
    """The real report rendered again (public functions of barometre.render) after putting the
    payload into every kind of text that reaches it: a figure's definition and reading, an answer
    label of the tables, a chart caption, an exclusion reason of the cleaning log, the edition title."""
    render = pytest.importorskip("barometre.render", reason="barometre.render (report renderer) is not there yet")
    import json

    out = tmp_path_factory.mktemp("inject")
    res = built_project / "results/2017"
    figures = pd.read_csv(res / "figures.csv", keep_default_na=False, na_values=[""], dtype={"component": str})
    figures.loc[figures["id"] == "F01", ["definition", "reading"]] = PAYLOAD
    figures.to_csv(out / "figures.csv", index=False)
    cells = pd.read_csv(res / "tables/cells.csv")
    cells.loc[(cells["question_id"] == "Q01") & (cells["answer_key"] == "commune"), "answer_label"] = PAYLOAD
    cells.to_csv(out / "cells.csv", index=False)
    shutil.copytree(res / "charts", out / "charts")
    manifest = json.loads((out / "charts/charts.json").read_text(encoding="utf-8"))
    manifest["charts"][0]["caption"] = PAYLOAD
    (out / "charts/charts.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    log = pd.read_csv(built_project / "data/processed/2017/cleaning_log.csv", dtype=str, keep_default_na=False)
    log.loc[log["action"] == "exclu:test", "reason"] = PAYLOAD
    log.to_csv(out / "cleaning_log.csv", index=False)
    config = load_config(built_project / "config.yaml")
    config["editions"][EDITION]["title"] = PAYLOAD
    html, pdf_text = "", ""
    for document in ("rapport", "note"):  # the publication and the technical note, read together
        page = render.render_report(
            EDITION, figures=out / "figures.csv", cells=out / "cells.csv", charts_dir=out / "charts",
            provenance=res / "provenance.json", cleaning_log=out / "cleaning_log.csv", config=config,
            codebook=built_project / SPEC["codebook"], published=built_project / SPEC["published"], document=document,
        )
        (out / f"{document}.html").write_text(page, encoding="utf-8")
        render.write_pdf(page, out / f"{document}.pdf", base_url=out, root=out)
        html += page
        pdf_text += subprocess.run(["pdftotext", "-enc", "UTF-8", str(out / f"{document}.pdf"), "-"],
                                   capture_output=True, text=True, check=True).stdout
    return render, html, pdf_text, out


@pytest.mark.e2e
@pytest.mark.pdf
def test_injected_markup_and_template_code_stay_literal_and_inert(injected_report):
    """``<script>``, ``{{7*7}}`` and ``<img src="file:///etc/passwd">`` put into any text that reaches
    the report appear escaped in the HTML (no script, no image element) and literally in the PDF text;
    ``{{7*7}}`` is never evaluated to 49; nothing of /etc/passwd reaches the PDF."""
    _, html, pdf_text, _ = injected_report
    low = html.lower()
    assert "<script" not in low and "<img" not in low and "file:///etc/passwd\"" not in html.replace("&#34;", "")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}} &lt;img src=&#34;file:///etc/passwd&#34;&gt;"
    # every place, whole and unevaluated: title, chart caption, exclusion reason, figure row, table label
    assert f"<title>{escaped}" in html
    assert f'<p class="chart-caption">{escaped}' in html
    assert f"<td>réponse de test</td><td>{escaped}</td>" in html
    assert escaped in re.search(r'<tr data-figure="F01">.*?</tr>', html, re.S).group(0)
    assert f"<tr><td>{escaped}</td>" in html
    assert html.count(escaped) == html.count("alert(1)") >= 6  # never a partial or evaluated copy
    flat = re.sub(r"\s+", " ", pdf_text)
    assert "<script>alert(1)</script>" in flat and "{{7*7}}" in flat
    assert '<img src="file:///etc/passwd">' in flat or 'src="file:///etc/passwd">' in flat
    for m in re.finditer(r"alert\(1\)</script> (\S+)", flat):
        assert m.group(1) == "{{7*7}}", m.group(0)
    assert "root:x:0:0" not in flat and "root:x:0:0" not in html


@pytest.mark.e2e
def test_raw_free_text_payload_is_kept_as_data_and_never_reaches_the_report(built_project):
    """The 2017 export's OD_COMMENT holding ``<script>alert(1)</script>`` and ``{{7*7}}`` is kept
    literally (as inert data) in the processed table, and the real report has no script and no trace
    of that free text."""
    resp = pd.read_parquet(built_project / "data/processed/2017/respondents.parquet")
    comments = resp["open_data_comment"].dropna()
    assert comments.str.contains("<script>alert(1)</script> et {{7*7}}", regex=False).sum() == 1
    html = (built_project / "results/2017/rapport_2017.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "alert(1)" not in html and "{{7*7}}" not in html


@pytest.mark.e2e
@pytest.mark.pdf
def test_pdf_url_fetcher_refuses_local_files_outside_the_project(injected_report, tmp_path):
    """The WeasyPrint URL fetcher of the report refuses file:///etc/passwd; a real ``<img>`` pointing
    there stops the PDF rendering instead of embedding the file."""
    from weasyprint.urls import FatalURLFetchingError

    render, _, _, out = injected_report
    with pytest.raises(render.URLRefusedError):
        render.project_url_fetcher(out).fetch("file:///etc/passwd")
    with pytest.raises(FatalURLFetchingError) as err:
        render.write_pdf('<html><body><img src="file:///etc/passwd"></body></html>', tmp_path / "x.pdf",
                         base_url=out, root=out)
    assert "refusée" in str(err.value) + str(err.value.__cause__)
    assert not (tmp_path / "x.pdf").exists() or b"root:x:0:0" not in (tmp_path / "x.pdf").read_bytes()


# --------------------------------------------------------------------------- 12-13. configuration


@pytest.mark.slow
def test_empty_edition_folder_stops_snakemake_before_any_job(tmp_path):
    """An edition folder holding only its README: Snakemake stops at start-up with one message naming
    each missing file (with its config key) and the empty folder; no job runs, no log or output is made."""
    proj = copy_project(tmp_path / "proj")
    folder = proj / "data/raw/2017"
    for f in folder.iterdir():
        if f.suffix != ".md":
            f.unlink()
    res = run_snakemake(proj, "--cores", "1")
    assert res.returncode != 0
    out = job_output(res)
    assert "configuration points to missing data" in out
    assert "editions/2017/raw/survey/path: file not found: data/raw/2017/barometre_2017_limesurvey.sav" in out
    assert (
        "editions/2017/raw/bp_inventory/path: file not found: data/raw/2017/inventaire_budgets_participatifs_2017.csv"
        in out
    )
    assert "editions/2017: raw folder data/raw/2017 holds no data file" in out
    assert "Job stats" not in out
    assert not (proj / "logs").exists() and not (proj / "results").exists() and not (proj / "data/processed").exists()


def test_promises_covered_elsewhere():
    """Misspelt key (schema error naming it), missing configured file and unit-level CSV/.sav reading
    are tested in test_config.py and test_ingest.py; this guards that those tests still exist."""
    import test_config
    import test_ingest

    for name in ("test_misspelt_top_level_key_is_named", "test_misspelt_nested_key_is_named",
                 "test_missing_raw_file_is_named", "test_empty_edition_folder_is_an_error",
                 "test_snakemake_stops_on_typo_before_any_job", "test_snakemake_stops_on_missing_file_before_any_job"):
        assert callable(getattr(test_config, name, None)), name
    for name in (
        "test_cp1252_accents_decoded_without_mojibake",
        "test_utf8_bom_first_column_name_matches",
        "test_wrong_separator_is_an_error_naming_columns",
        "test_quoted_newlines_quotes_and_semicolons_keep_row_count",
        "test_unreadable_sav_names_the_file",
    ):
        assert callable(getattr(test_ingest, name, None)), name


@pytest.mark.e2e
def test_failed_cleaning_leaves_the_previous_results_byte_identical(built_project, tmp_path, invalid_sav):
    """A complete build, then an invalid export dropped in its place: the run fails at ``clean`` and
    ``results/2017/`` is byte for byte what it was, provenance.json included (it no longer vouches for
    the new, rejected files)."""
    from conftest import sha256_tree

    proj = tmp_path / "proj"
    shutil.copytree(built_project, proj, symlinks=True)
    before = sha256_tree(proj / "results" / EDITION)
    assert "provenance.json" in before
    path, _ = invalid_sav
    shutil.copyfile(path, proj / "data/raw/2017" / SAV.name)
    res = run_snakemake(proj, "--cores", "2")
    assert res.returncode != 0 and "Error in rule clean" in job_output(res)
    assert sha256_tree(proj / "results" / EDITION) == before
