"""Reading raw exports: encodings, BOM, separators, quoted free text, unreadable .sav files."""
from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest

from barometre.errors import IngestError
from barometre.ingest import read_csv, read_sav

HEADER = ["N°", "Territoire", "Type de territoire", "Montant par habitant (€)"]


def write(path, text: str, encoding: str, bom: bool = False) -> None:
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def test_cp1252_accents_decoded_without_mojibake(tmp_path):
    p = tmp_path / "bp.csv"
    write(
        p,
        "N°;Territoire;Type de territoire;Montant par habitant (€)\r\n1;Collectivité Évry;département;2,5\r\n",
        "cp1252",
    )
    t = read_csv(p, "bp", encoding="cp1252", sep=";", expected_columns=HEADER)
    assert list(t.frame.columns) == HEADER
    assert t.frame.loc[0, "Territoire"] == "Collectivité Évry"
    assert "Ã" not in "".join(t.frame.astype(str).to_numpy().ravel())


def test_utf8_bom_first_column_name_matches(tmp_path):
    p = tmp_path / "bp.csv"
    write(p, "N°;Territoire;Type de territoire;Montant par habitant (€)\n1;Paris;commune;1,5\n", "utf-8", bom=True)
    # declared cp1252 but the BOM says UTF-8: the BOM wins and is removed
    t = read_csv(p, "bp", encoding="cp1252", sep=";", expected_columns=HEADER)
    assert t.frame.columns[0] == "N°"
    assert t.encoding == "utf-8"


def test_wrong_separator_is_an_error_naming_columns(tmp_path):
    p = tmp_path / "bp.csv"
    write(p, "N°;Territoire;Type de territoire;Montant par habitant (€)\n1;Paris;commune;1,5\n", "utf-8")
    with pytest.raises(IngestError) as err:
        read_csv(p, "bp", encoding="utf-8", sep=",", expected_columns=HEADER)
    msg = str(err.value)
    assert str(p) in msg and "separator" in msg and "Territoire" in msg


def test_quoted_newlines_quotes_and_semicolons_keep_row_count(tmp_path):
    p = tmp_path / "bp.csv"
    text = ('N°;Territoire;Type de territoire;Montant par habitant (€)\r\n'
            '1;"Ville ""A""; centre\r\nsuite";commune;1,5\r\n'
            '2;B;commune;2\r\n')
    write(p, text, "cp1252")
    t = read_csv(p, "bp", encoding="cp1252", sep=";", expected_columns=HEADER)
    assert len(t.frame) == 2
    assert t.frame.loc[0, "Territoire"] == 'Ville "A"; centre\r\nsuite'
    assert t.row_numbers == (2, 4)  # the second record starts on physical line 4


def test_ragged_row_names_line(tmp_path):
    p = tmp_path / "bp.csv"
    write(p, "N°;Territoire;Type de territoire;Montant par habitant (€)\n1;A;commune\n", "utf-8")
    with pytest.raises(IngestError, match="line 2"):
        read_csv(p, "bp", encoding="utf-8", sep=";", expected_columns=HEADER)


def test_undecodable_names_file_and_line(tmp_path):
    p = tmp_path / "bp.csv"
    p.write_bytes("N°;Territoire;Type de territoire;Montant par habitant (€)\n1;Évry;commune;1\n".encode("cp1252"))
    with pytest.raises(IngestError) as err:
        read_csv(p, "bp", encoding="utf-8", sep=";")
    assert str(p) in str(err.value) and "line" in str(err.value)


def _small_sav(path) -> None:
    df = pd.DataFrame({"id": [1.0, 2.0], "ROLE": [1.0, 99.0], "TXT": ["é", "x"]})
    pyreadstat.write_sav(df, str(path), column_labels=["id", "Vous êtes :", "texte"],
                         variable_value_labels={"ROLE": {1.0: "Élu", 2.0: "Agent", 99.0: "Ne sait pas"}},
                         missing_ranges={"ROLE": [99.0]})


def test_sav_keeps_labels_and_user_missing(tmp_path):
    p = tmp_path / "s.sav"
    _small_sav(p)
    t = read_sav(p)
    assert t.frame["ROLE"].tolist() == [1.0, 99.0]  # 99 kept as a value, declared missing
    assert t.value_labels["ROLE"][99.0] == "Ne sait pas"
    assert t.column_labels["ROLE"] == "Vous êtes :"
    assert t.missing_ranges["ROLE"]


@pytest.mark.parametrize("kind", ["truncated", "not_spss", "empty"])
def test_unreadable_sav_names_the_file(tmp_path, kind):
    good = tmp_path / "good.sav"
    _small_sav(good)
    bad = tmp_path / f"{kind}.sav"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[:300])
    elif kind == "not_spss":
        bad.write_text("Ceci n'est pas un fichier SPSS;\n1;2\n", encoding="utf-8")
    else:
        bad.write_bytes(b"")
    with pytest.raises(IngestError) as err:
        read_sav(bad)
    assert str(bad) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="not found"):
        read_sav(tmp_path / "absent.sav")
