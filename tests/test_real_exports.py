"""An analyst's real export goes in without surprises (issue 13, points 1 to 6).

Each test takes the shipped 2017 exports, changes them the way a real export differs
(a re-labelled answer list, a « ne sait pas » 99 in a count, an identifier « 30bis », a
CSV saved by Excel, a phone number typed into a public name…) and checks that cleaning
says so or handles it, never silently.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barometre.clean import EMAIL_MASK, PHONE_MASK, clean_bp, clean_edition, redact_text
from barometre.codebook import load_codebook
from barometre.errors import IngestError, ValidationError
from barometre.ingest import read_raw
from test_bad_input import BP_CSV, CODEBOOK, SALT, SPEC, clean, raws_with, read_real_sav, write_sav_like

BP_TEXT = BP_CSV.read_bytes().decode("cp1252")


@pytest.fixture(scope="module")
def real():
    """The shipped .sav (code 99 kept) and its metadata, and the positions of the kept records."""
    raw, meta = read_real_sav()
    kept = set(clean(raws_with()).respondents["respondent_id"])
    return raw, meta, [i for i, v in enumerate(raw["id"]) if f"R{int(v):04d}" in kept]


def sav_with(tmp_path, frame, meta, name="survey.sav", **meta_changes) -> Path:
    """``frame`` written as a .sav with the metadata of ``meta`` (some of it replaced)."""
    class Meta:
        pass

    m = Meta()
    m.__dict__.update(
        {
            k: getattr(meta, k)
            for k in (
                "file_label",
                "column_names_to_labels",
                "notes",
                "variable_value_labels",
                "missing_ranges",
                "variable_measure",
                "variable_display_width",
                "original_variable_types",
            )
        }
    )
    m.__dict__.update(meta_changes)
    return write_sav_like(frame, m, tmp_path / name)


# --------------------------------------------------------------------------- 1. value labels
def test_swapped_value_labels_stop_the_cleaning_naming_file_column_code_and_both_labels(tmp_path, real):
    """Codes 1 and 2 of COLL_TYPE labelled the other way round in the export: an error names the file,
    the column, each code and both labels (the data would otherwise be published under the wrong ones)."""
    raw, meta, _ = real
    labels = dict(meta.variable_value_labels)
    labels["COLL_TYPE"] = {**labels["COLL_TYPE"], 1.0: "Intercommunalité", 2.0: "Commune"}
    sav = sav_with(tmp_path, raw, meta, variable_value_labels=labels)
    with pytest.raises(ValidationError) as err:
        clean(raws_with(survey=sav))
    found = [p for p in err.value.problems if p["column"] == "COLL_TYPE"]
    assert {p["value"] for p in found} == {1, 2}
    assert all(p["file"] == str(sav) for p in found)
    msg = str(err.value)
    assert "libellé du code 1 : « Intercommunalité » dans l'export, « Commune » dans le codebook" in msg
    assert "libellé du code 2 : « Commune » dans l'export, « Intercommunalité » dans le codebook" in msg


def test_label_differing_only_by_case_accents_spaces_passes_and_an_accepted_change_too(tmp_path, real):
    """« INTERCOMMUNALITE  » is the same label once normalised; « Ville » for code 1 is refused until the
    codebook accepts it for this edition (``export_labels``); then cleaning gives the same tables."""
    raw, meta, _ = real
    labels = dict(meta.variable_value_labels)
    labels["COLL_TYPE"] = {**labels["COLL_TYPE"], 2.0: " INTERCOMMUNALITE  "}
    clean(raws_with(survey=sav_with(tmp_path, raw, meta, name="case.sav", variable_value_labels=labels)))
    labels["COLL_TYPE"] = {**labels["COLL_TYPE"], 1.0: "Ville"}
    sav = sav_with(tmp_path, raw, meta, name="ville.sav", variable_value_labels=labels)
    with pytest.raises(ValidationError, match="« Ville » dans l'export"):
        clean(raws_with(survey=sav))
    data = yaml.safe_load((Path(CODEBOOK.path)).read_text(encoding="utf-8"))
    q01 = next(q for q in data["questions"] if q["id"] == "Q01")
    q01["codes"][0]["export_labels"] = ["Ville"]
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    accepted = clean_edition(raws_with(survey=sav), load_codebook(path), SPEC["exclusions"], SALT)
    pd.testing.assert_frame_equal(accepted.respondents, clean(raws_with()).respondents)


def test_variable_label_differing_from_the_wording_is_a_warning_in_the_cleaning_report(tmp_path, real):
    from barometre.pipeline import cleaning_report

    raw, meta, _ = real
    col_labels = dict(meta.column_names_to_labels, ROLE="Quel est votre statut ?")
    sav = sav_with(tmp_path, raw, meta, column_names_to_labels=col_labels)
    result = clean(raws_with(survey=sav))
    assert any("ROLE" in n and "« Quel est votre statut ? » dans l'export, « Vous êtes : » dans le codebook" in n
               for n in result.notes), result.notes
    report = cleaning_report(result, CODEBOOK, "2017", "test", True)
    assert "## Remarques sur les exports" in report and "Quel est votre statut ?" in report
    assert clean(raws_with()).notes == ()  # the shipped exports agree with their codebook


# --------------------------------------------------------------------------- 2. codes are codes (99)
def test_nb_outils_99_invents_no_tool_and_is_logged(tmp_path, real):
    """NB_OUTILS = 99 (« ne sait pas ») for a respondent who described tools: no tool block is read for
    them (99 is not « 99 tools »), the count of tools drops by theirs only, and both are logged."""
    raw, meta, kept = real
    r = next(i for i in kept if raw.loc[i, "NB_OUTILS"] == 1)
    before = clean(raws_with())
    raw = raw.copy()
    raw.loc[r, "NB_OUTILS"] = 99.0
    result = clean(raws_with(survey=sav_with(tmp_path, raw, meta)))
    assert len(result.tools) == len(before.tools) - 1
    ev = result.events
    assert ((ev["column"] == "NB_OUTILS") & (ev["row"] == r + 1) & ev["action"].str.contains("code manquant")).any()
    assert ((ev["action"] == "bloc ignoré") & (ev["row"] == r + 1)).any()


@pytest.mark.parametrize("qtype,column,expect", [
    ("band", "COLL_POP", "nsp"),              # shown as « Ne se prononce pas » (single: test_bad_input)
    ("multiple", "CONTRIB_SQ001", "blank"),   # a check box holding 99: not checked, logged
    ("ranking", "LEVIERS_R7", "blank"),       # 99 at a rank: nothing ranked there
    ("numeric", "O1_ANNEE", "blank"),         # a year declared user-missing 99 in the export: not a number
])
def test_99_in_each_question_type_is_a_missing_code_not_a_value(tmp_path, real, qtype, column, expect):
    raw, meta, kept = real
    raw = raw.copy()
    candidates = [i for i in kept if raw.loc[i, "NB_OUTILS"] in (1, 2, 3)] if column.startswith("O1_") else kept
    r = candidates[4]
    raw.loc[r, column] = 99.0
    ranges = dict(meta.missing_ranges)
    if qtype == "numeric":
        ranges[column] = [{"lo": 99.0, "hi": 99.0}]
    result = clean(raws_with(survey=sav_with(tmp_path, raw, meta, missing_ranges=ranges)))
    rid = f"R{int(raw.loc[r, 'id']):04d}"
    q = CODEBOOK.question({"COLL_POP": "Q02", "CONTRIB_SQ001": "Q08", "LEVIERS_R7": "Q07", "O1_ANNEE": "Q13"}[column])
    assert q.type == qtype
    table = result.tools if q.level == "tool" else result.respondents
    row = table[table["respondent_id"] == rid].iloc[0]
    if expect == "nsp":
        assert row[q.harmonised] == "Ne se prononce pas"
    elif qtype == "multiple":
        assert row[f"{q.harmonised}__transparence"] is not True
    elif qtype == "ranking":
        assert all(pd.isna(row[c]) or row[c] != 7 for c in q.columns())
    else:
        assert pd.isna(row[q.harmonised])
        ev = result.events
        assert (
            (ev["column"] == q.harmonised) & (ev["row"] == r + 1) & (ev["action"] == "code manquant → non-réponse")
        ).any()


# --------------------------------------------------------------------------- 3. identifiers are strings
def _bp_csv(tmp_path, ids: list[str], name="bp.csv") -> Path:
    lines = BP_TEXT.split("\r\n") if "\r\n" in BP_TEXT else BP_TEXT.split("\n")
    body = [ln for ln in lines[1:] if ln.strip()]
    # The first len(ids) records take the given identifiers; the rest keep theirs.
    out = [lines[0], *(i + ln[ln.index(";"):] for i, ln in zip(ids, body, strict=False)), *body[len(ids):]]
    p = tmp_path / name
    p.write_bytes("\n".join(out).encode("cp1252"))
    return p


def test_bp_identifiers_stay_text(tmp_path):
    """« 30bis » and « 07 » are kept as typed, never turned into numbers (or into nothing)."""
    p = _bp_csv(tmp_path, ["30bis", "07"])  # the shipped file has a « 7 » (line 8) and a « 30 »
    bp, _ = clean_bp(raws_with(bp=p)["bp_inventory"], CODEBOOK)
    ids = list(bp["bp_id"])
    assert {"30bis", "07", "7"} <= set(ids) and len(ids) == 61 and bp["bp_id"].notna().all()
    assert ids.index("07") + 1 == ids.index("7") and ids.index("30") + 1 == ids.index("30bis")  # numbered order


def test_duplicate_and_malformed_identifiers_name_their_lines(tmp_path):
    p = _bp_csv(tmp_path, ["7", "7 ", ""])
    with pytest.raises(ValidationError) as err:
        clean_bp(raws_with(bp=p)["bp_inventory"], CODEBOOK)
    found = {(p["row"], p["problem"]) for p in err.value.problems}
    assert (3, "identifiant en double (déjà ligne 2)") in found
    assert (4, "identifiant vide") in found
    # with a format declared in the codebook, « 30bis » passes and « 3O » (a letter O) is refused
    data = yaml.safe_load(Path(CODEBOOK.path).read_text(encoding="utf-8"))
    data["sources"]["bp_inventory"]["id_pattern"] = r"[0-9]+(bis|ter)?"
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        clean_bp(raws_with(bp=_bp_csv(tmp_path, ["30bis", "3O"], "f.csv"))["bp_inventory"], load_codebook(path))
    assert [(p["row"], p["value"]) for p in err.value.problems] == [(3, "3O")]
    assert "line 3" in str(err.value)


# --------------------------------------------------------------------------- 4. CSV and XLSX as saved
def test_excel_sep_line_is_recognised_and_logged(tmp_path):
    p = tmp_path / "bp_excel.csv"
    p.write_bytes(b"sep=;\r\n" + BP_CSV.read_bytes())
    raw = raws_with(bp=p)["bp_inventory"]
    reference = raws_with()["bp_inventory"]
    pd.testing.assert_frame_equal(raw.frame, reference.frame)
    assert raw.row_numbers == tuple(n + 1 for n in reference.row_numbers)  # lines as the file numbers them
    assert any("sep=;" in n and "Excel" in n for n in raw.notes)
    bad = tmp_path / "bp_comma.csv"
    bad.write_bytes(b"sep=,\r\n" + BP_CSV.read_bytes())
    with pytest.raises(IngestError, match="annonce le séparateur ','"):
        raws_with(bp=bad)


def test_utf8_file_declared_cp1252_is_diagnosed_as_an_encoding_mismatch(tmp_path):
    p = tmp_path / "bp_utf8.csv"
    p.write_bytes(BP_TEXT.encode("utf-8"))
    with pytest.raises(IngestError) as err:
        raws_with(bp=p)  # the configuration says cp1252
    msg = str(err.value)
    assert "ce fichier semble être en UTF-8, la configuration dit cp1252" in msg and str(p) in msg
    assert "colonne absente" not in msg


def test_unknown_extra_column_is_listed_in_the_cleaning_report(tmp_path):
    lines = BP_TEXT.splitlines()
    p = tmp_path / "bp_extra.csv"
    p.write_bytes("\n".join([lines[0] + ";Contact élu"] + [ln + ";x" for ln in lines[1:] if ln]).encode("cp1252"))
    result = clean(raws_with(bp=p))
    assert any("bp_extra.csv" in n and "Contact élu" in n and "inconnue" in n for n in result.notes), result.notes


def test_xlsx_inventory_is_read_with_the_rules_of_the_csv(tmp_path):
    """The same inventory saved as a workbook (numbers as numbers, « 30bis » as text) cleans to the same
    table as the CSV: « 7 » stays « 7 » (never « 7.0 »), decimals are the cells' numbers."""
    ref = clean_bp(raws_with()["bp_inventory"], CODEBOOK)[0]
    wb = openpyxl.Workbook()
    ws = wb.active
    rows = [r for r in csv.reader(io.StringIO(BP_TEXT, newline=""), delimiter=";") if any(c.strip() for c in r)]
    ws.append(rows[0])
    for r in rows[1:]:
        cells = []
        for c in r:
            c = c.strip()
            if re.fullmatch(r"-?\d+(,\d+)?", c):
                c = float(c.replace(",", ".")) if "," in c else int(c)
            cells.append(c if c != "" else None)
        ws.append(cells)
    ws.append([None] * len(rows[0]))  # a blank row, as spreadsheets end
    path = tmp_path / "inventaire.xlsx"
    wb.save(path)
    expected = [c for q in CODEBOOK.at_level("bp") for c in q.raw_columns()]
    raw = read_raw("bp_inventory", {"path": str(path), "format": "xlsx"}, expected)
    assert raw.row_numbers[:2] == (2, 3)
    bp, _ = clean_bp(raw, CODEBOOK)
    pd.testing.assert_frame_equal(bp, ref, check_dtype=False)


# --------------------------------------------------------------------------- 6. personal data
def test_public_name_keeps_the_name_but_not_the_email_or_phone_inside_and_logs_it(tmp_path):
    """A territory name (public) with an e-mail and « +33 (0)6 98 76 54 32 » typed into it: the name
    stays, both are masked in the BP table, and the masking is logged with column and row."""
    text = BP_TEXT.replace(";Bar-le-Duc;", ";Bar-le-Duc (contact : jean.martin@exemple.fr, +33 (0)6 98 76 54 32);")
    p = tmp_path / "bp.csv"
    p.write_bytes(text.encode("cp1252"))
    bp, log = clean_bp(raws_with(bp=p)["bp_inventory"], CODEBOOK)
    name = bp.loc[bp["bp_id"] == "2", "bp_territory_name"].iloc[0]
    assert name.startswith("Bar-le-Duc") and EMAIL_MASK in name and PHONE_MASK in name
    assert "jean.martin" not in name and "98 76" not in name
    hit = log[log["action"] == "texte masqué"]
    assert hit[["column", "row"]].values.tolist() == [["bp_territory_name", 3]]


def test_masking_in_autre_fields_is_logged(tmp_path, real):
    raw, meta, kept = real
    raw = raw.copy()
    r = kept[1]
    raw.loc[r, "COLL_TYPE"] = 7.0
    raw.loc[r, "COLL_TYPE_other"] = "syndicat mixte, écrire à a.b@exemple.fr"
    result = clean(raws_with(survey=sav_with(tmp_path, raw, meta)))
    ev = result.events
    assert ((ev["column"] == "collectivity_type_other") & (ev["row"] == r + 1) & (ev["action"] == "texte masqué")).any()


#: A phone number written as people write it, in French and international notations.
def _notations(digits: str) -> st.SearchStrategy[str]:
    national = "0" + digits
    pairs = " ".join(national[i:i + 2] for i in range(0, 10, 2))
    return st.sampled_from([
        national, pairs, pairs.replace(" ", "."), pairs.replace(" ", "-"), "+33" + digits, "+33 " + pairs[1:],
        "+33 (0)" + pairs[1:], "0033 " + pairs[1:], "(+33) " + pairs[1:],
    ])


PHONES = st.builds(lambda first, rest: first + rest, st.sampled_from("1234567"),
                   st.text("0123456789", min_size=8, max_size=8)).flatmap(_notations)
INTERNATIONAL = st.sampled_from(["+44 20 7946 0958", "+1 415 555 2671", "+32 2 555 12 12", "+49 30 901820"])
EMAILS = st.builds(
    lambda user, host, tld: f"{user}@{host}.{tld}",
    st.from_regex(r"[a-z][a-z0-9._-]{1,12}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{1,10}[a-z0-9]", fullmatch=True),
    st.sampled_from(["fr", "org", "com"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(phone=st.one_of(PHONES, INTERNATIONAL), email=EMAILS, words=st.sampled_from(["Voir", "Contact :", "", "tél."]))
def test_generated_identifiers_never_survive_redaction(phone, email, words):
    """Any phone number in any notation and any e-mail, typed into free text, is masked."""
    texts = pd.Series([f"{words} {phone}", f"{email} {words}", f"{words} {email}, {phone}."], dtype="string")
    for public in (False, True):
        out, changed = redact_text(texts, None if public else ["Nom Inconnu"])
        assert changed.all()
        joined = " ".join(out)
        assert email not in joined and phone not in joined
        assert not re.search(r"\d{2}[\s.-]?\d{2}[\s.-]?\d{2}[\s.-]?\d{2}", joined), joined


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(phone=PHONES, email=EMAILS)
def test_generated_identifiers_reach_no_processed_file(tmp_path_factory, real, phone, email):
    """Identifiers typed into every kind of free text of both exports (« autre » fields, tool comments,
    a public territory name) are in none of the files the cleaning writes."""
    from barometre.pipeline import run_clean

    raw, meta, kept = real
    raw = raw.copy()
    for k, col in enumerate(["COLL_TYPE_other", "O1_COMMENT", "OD_COMMENT", "O1_NOM", "SERVICE_other"]):
        raw.loc[kept[k], col] = f"joindre {email} ou {phone}"
    raw.loc[kept[0], "COLL_TYPE"] = 7.0
    d = tmp_path_factory.mktemp("pii")
    sav = sav_with(d, raw, meta)
    bp = d / "bp.csv"
    bp.write_bytes(BP_TEXT.replace(";Bar-le-Duc;", f";Bar-le-Duc {phone} {email};").encode("cp1252"))
    config = {"editions": {"2017": dict(SPEC, raw={"survey": dict(SPEC["raw"]["survey"], path=str(sav)),
                                                   "bp_inventory": dict(SPEC["raw"]["bp_inventory"], path=str(bp))},
                                        codebook=str(CODEBOOK.path))},
              "pseudonymisation": {"salt_env": "BAROMETRE_TEST_NO_SALT", "salt_file": str(d / "no_salt")}}
    outputs = {k: str(d / "out" / f) for k, f in [("respondents", "r.parquet"), ("tools", "t.parquet"),
                                                  ("bp", "b.parquet"), ("log_table", "log.csv"), ("report", "rep.md")]}
    run_clean("2017", config, outputs)
    for f in outputs.values():
        if f.endswith(".parquet"):
            frame = pd.read_parquet(f)
            text = "\n".join(frame[c].astype("string").fillna("").str.cat(sep="\n") for c in frame.columns)
        else:
            text = Path(f).read_text(encoding="utf-8")
        assert email not in text and phone not in text, f


@pytest.mark.e2e
@pytest.mark.pdf
@settings(max_examples=1, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.nested_given])
@given(phones=st.lists(st.one_of(PHONES, INTERNATIONAL), min_size=4, max_size=4, unique=True),
       emails=st.lists(EMAILS, min_size=4, max_size=4, unique=True))
def test_generated_identifiers_reach_no_output_of_a_full_build_pdf_included(tmp_path_factory, phones, emails):
    """Generated e-mails and phone numbers typed into the free text of a copy of the 2017 exports (« autre »
    fields, tool names and comments, a public territory name) are in none of the files a full build of
    the edition writes, read as a person reads them: parquet cells, CSV, XLSX cells, HTML, SVG, the PDF's text."""
    import pyreadstat

    from conftest import copy_project, run_snakemake
    from test_personal_data import read_as_text

    proj = copy_project(tmp_path_factory.mktemp("pii_build") / "proj")
    sav = proj / "data/raw/2017" / "barometre_2017_limesurvey.sav"
    raw, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    tools = [i for i in range(len(raw)) if raw.loc[i, "NB_OUTILS"] in (1, 2, 3)]
    for k, (col, row) in enumerate(
        [("O1_NOM", tools[0]), ("O1_COMMENT", tools[1]), ("OD_COMMENT", 5), ("SERVICE_other", 7)]
    ):
        raw.loc[row, col] = f"contact {emails[k]} / {phones[k]}"
    write_sav_like(raw, meta, sav)
    bp = proj / "data/raw/2017" / BP_CSV.name
    bp.write_bytes(BP_TEXT.replace(";Bar-le-Duc;", f";Bar-le-Duc {emails[0]} {phones[0]};").encode("cp1252"))
    res = run_snakemake(proj, "--cores", "2", "results/2017/rapport_2017.pdf", "results/2017/tableaux.xlsx",
                        "results/2017/provenance.json")
    assert res.returncode == 0, res.stderr[-4000:]
    files = sorted(p for d in ("data/processed/2017", "results/2017") for p in (proj / d).rglob("*") if p.is_file())
    assert any(p.suffix == ".pdf" for p in files)
    for p in files:
        text = read_as_text(p)
        for secret in (*emails, *phones):
            assert secret not in text, (p, secret)
