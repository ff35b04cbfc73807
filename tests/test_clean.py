"""Unit tests of the cleaning functions, on tiny hand-built frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from barometre.clean import (
    EMAIL_MASK,
    NAME_MASK,
    PHONE_MASK,
    ROW,
    apply_exclusions,
    apply_filters,
    decode_categorical,
    decode_multiple,
    decode_ranking,
    normalise_text,
    parse_decimal,
    pseudonymise,
    recode_other,
    redact_text,
)
from barometre.codebook import NSP_LABEL, Code, Filter, Option, Question
from barometre.errors import ValidationError

ROLE = Question(id="Q03", harmonised="role", level="respondent", type="single", wording="Vous êtes :", raw="ROLE",
                codes=(Code(1, "elu", "Élu·e"), Code(2, "agent", "Agent")), nsp="drop")
USAGE = Question(id="Q26", harmonised="usage", level="tool", type="ordinal", wording="Usage", raw="U",
                 codes=(Code(1, "faible", "Faible"), Code(2, "normal", "Normal"), Code(3, "fort", "Fort")), nsp="show")
TYPE = Question(id="Q01", harmonised="ctype", level="respondent", type="single", wording="Type", raw="T",
                other_text="T_other",
                codes=(Code(1, "commune", "Commune"), Code(4, "departement", "Département"),
                       Code(7, "autre", "Autre")),
                recode_other=({"pattern": "d[eé]partement", "to": "departement"},
                              {"pattern": "^mairie", "to": "commune"}))
OBJ = Question(id="Q23", harmonised="obj", level="tool", type="multiple", wording="Objectifs",
               options=(Option("a", "A", "O{i}_A"), Option("b", "B", "O{i}_B"), Option("nsp", "NSP", "O{i}_N", True)))
RANK = Question(id="Q07", harmonised="lev", level="respondent", type="ranking", wording="Classez", raw="R{rank}",
                ranks=3, codes=(Code(1, "x", "X"), Code(2, "y", "Y"), Code(3, "z", "Z")))


def frame_with_rows(**cols) -> pd.DataFrame:
    df = pd.DataFrame(cols)
    return df.assign(**{ROW: np.arange(1, len(df) + 1)})


class TestExclusions:
    def test_match_missing_duplicate_in_order(self):
        raw = frame_with_rows(
            id=[1, 2, 3, 4, 5, 6],
            name=["TEST", "Commune A", "Commune A", "Commune B", "Commune C", "commune c "],
            email=[
                "x@example.org",
                "a@example.org",
                "a@example.org",
                "b@example.org",
                "c@example.org",
                "C@example.org",
            ],
            submitdate=pd.to_datetime(["2017-07-01", "2017-07-01", "2017-07-03", None, "2017-07-02", "2017-07-05"]),
        )
        rules = [
            {
                "id": "test",
                "reason": "test",
                "source": "s",
                "rule": "match",
                "columns": ["name"],
                "pattern": r"(?i)^\s*test\b",
            },
            {"id": "incomplete", "reason": "incomplet", "source": "s", "rule": "missing", "columns": ["submitdate"]},
            {
                "id": "duplicate",
                "reason": "doublon",
                "source": "s",
                "rule": "duplicate",
                "columns": ["email", "name"],
                "order_by": "submitdate",
                "keep": "last",
            },
        ]
        kept, log = apply_exclusions(raw, rules, source="s", file="f.sav", id_column="id")
        assert kept["id"].tolist() == [3, 6]  # latest of each duplicate pair, case/space-insensitive
        assert log["record_id"].tolist() == ["1", "4", "2", "5"]
        assert log["action"].tolist() == ["exclu:test", "exclu:incomplete", "exclu:duplicate", "exclu:duplicate"]
        assert log["row"].tolist() == [1, 4, 2, 5]
        assert len(kept) + len(log) == len(raw)
        assert list(raw["id"]) == [1, 2, 3, 4, 5, 6]  # input untouched

    def test_rule_on_missing_column_names_it(self):
        raw = frame_with_rows(id=[1])
        with pytest.raises(ValidationError, match="absent"):
            apply_exclusions(raw, [{"id": "t", "reason": "r", "source": "s", "rule": "missing", "columns": ["nope"]}],
                             source="s", file="f.sav", id_column="id")


class TestDecode:
    def test_nsp_dropped_when_not_shown(self):
        out, dropped = decode_categorical(pd.Series([1.0, 2.0, 99.0, np.nan]), ROLE, 99)
        assert out.tolist()[:2] == ["Élu·e", "Agent"]
        assert out.isna().tolist() == [False, False, True, True]
        assert dropped.tolist() == [False, False, True, False]
        assert list(out.cat.categories) == ["Élu·e", "Agent"]

    def test_nsp_shown_is_its_own_last_category(self):
        out, dropped = decode_categorical(pd.Series([1.0, 99.0, 3.0]), USAGE, 99)
        assert out.tolist() == ["Faible", NSP_LABEL, "Fort"]
        assert list(out.cat.categories) == ["Faible", "Normal", "Fort", NSP_LABEL]
        assert out.cat.ordered
        assert not dropped.any()
        # NSP never inflates a substantive category
        assert (out == "Faible").sum() == 1

    def test_string_codes_are_normalised(self):
        q = Question(id="B", harmonised="b", level="bp", type="single", wording="w", raw="B",
                     codes=(Code("oui", "oui", "Oui"), Code("non", "non", "Non")))
        out, _ = decode_categorical(pd.Series([" OUI", "Non ", "oui", None], dtype="string"), q, 99)
        assert out.tolist()[:3] == ["Oui", "Non", "Oui"]
        assert pd.isna(out.iloc[3])

    def test_recode_other(self):
        decoded, _ = decode_categorical(pd.Series([7.0, 7.0, 7.0, 1.0]), TYPE, 99)
        other = pd.Series(["Conseil Départemental ", "Mairie de X", "Syndicat mixte", ""])
        out, changed = recode_other(decoded, other, TYPE)
        assert out.tolist() == ["Département", "Commune", "Autre", "Commune"]
        assert changed.tolist() == [True, True, False, False]

    def test_multiple_base_is_answered(self):
        raw = pd.DataFrame({"O1_A": [1, 0, np.nan, 0], "O1_B": [1, 1, np.nan, 0], "O1_N": [0, 0, np.nan, 0]})
        out, conflict = decode_multiple(raw, OBJ, 1)
        assert out["obj__a"].tolist()[:2] == [True, False]
        assert out["obj__b"].tolist()[:2] == [True, True]
        assert out["obj__a"].isna().tolist() == [False, False, True, True]  # row 4: nothing ticked = no answer
        assert not conflict.any()

    def test_multiple_exclusive_conflict_flagged(self):
        raw = pd.DataFrame({"O1_A": [1], "O1_B": [0], "O1_N": [1]})
        _, conflict = decode_multiple(raw, OBJ, 1)
        assert conflict.tolist() == [True]

    def test_ranking_from_rank_columns(self):
        raw = pd.DataFrame({"R1": [2, np.nan], "R2": [3, np.nan], "R3": [1, np.nan]})
        out, dup = decode_ranking(raw, RANK)
        assert out.loc[0].tolist() == [3, 1, 2]  # x at rank 3, y at rank 1, z at rank 2
        assert out.loc[1].isna().all()
        assert not dup.any()

    def test_ranking_duplicate_item_detected(self):
        raw = pd.DataFrame({"R1": [2], "R2": [2], "R3": [1]})
        _, dup = decode_ranking(raw, RANK)
        assert dup.tolist() == [True]

    def test_parse_decimal_french(self):
        out = parse_decimal(pd.Series(["150 000,50", "2,35", "", None, "1\u202f234"], dtype="string"))
        assert out.tolist()[:2] == [150000.5, 2.35]
        assert out.isna().tolist() == [False, False, True, True, False]
        assert out.iloc[4] == 1234


class TestFilters:
    def test_out_of_filter_answers_blanked_and_logged(self):
        from barometre.codebook import Codebook

        reasons = Question(id="Q27", harmonised="reasons", level="tool", type="multiple", wording="Raisons",
                           options=(Option("a", "A", "X"),), filter=Filter("Q26", ("faible",)))
        cb = Codebook(edition="t", title="t", questions=(USAGE, reasons), sources={}, identifiers={})
        usage, _ = decode_categorical(pd.Series([1.0, 2.0, 1.0]), USAGE, 99)
        frame = pd.DataFrame({"usage": usage, "reasons__a": pd.array([True, True, pd.NA], dtype="boolean"),
                              ROW: [1, 2, 3], "id": [10, 11, 12]})
        out, log = apply_filters(frame, [USAGE, reasons], cb, source="s", file="f", id_col="id")
        assert out["reasons__a"].isna().tolist() == [False, True, True]
        erased = log[log["action"] == "réponse hors filtre effacée"]
        assert erased["record_id"].tolist() == ["11"]
        assert frame["reasons__a"].tolist()[1] is True  # input untouched

    def test_unanswered_inside_filter_is_logged_with_its_row_and_base(self):
        """Both directions: row 3 (usage « faible », no reason given) is inside the filter but unanswered:
        it is logged with its row, and the reason names the question whose base it shrinks."""
        from barometre.codebook import Codebook

        reasons = Question(id="Q27", harmonised="reasons", level="tool", type="multiple", wording="Raisons",
                           options=(Option("a", "A", "X"),), filter=Filter("Q26", ("faible",)))
        cb = Codebook(edition="t", title="t", questions=(USAGE, reasons), sources={}, identifiers={})
        usage, _ = decode_categorical(pd.Series([1.0, 2.0, 1.0, 3.0]), USAGE, 99)
        frame = pd.DataFrame({"usage": usage, "reasons__a": pd.array([True, pd.NA, pd.NA, pd.NA], dtype="boolean"),
                              ROW: [1, 2, 3, 4], "id": [10, 11, 12, 13]})
        out, log = apply_filters(frame, [USAGE, reasons], cb, source="s", file="f", id_col="id")
        silent = log[log["action"] == "non-réponse dans le filtre"]
        assert silent["row"].tolist() == [3] and silent["column"].tolist() == ["reasons"]
        assert "base de Q27" in silent["reason"].iloc[0] and "Raisons" in silent["reason"].iloc[0]
        assert out["reasons__a"].isna().tolist() == [False, True, True, True]


class TestPersonalData:
    def test_redact_email_phone_and_names(self):
        s = pd.Series(["Écrire à jean.dupont@example.org ou au 06 12 34 56 78", "Commune fictive 012 ; rien", None])
        out, changed = redact_text(s, ["Commune fictive 012"])
        assert EMAIL_MASK in out[0] and PHONE_MASK in out[0] and "@" not in out[0]
        assert out[1] == f"{NAME_MASK} ; rien"
        assert changed.tolist() == [True, True, False]

    def test_phone_formats(self):
        for phone in ["01 23 45 67 89", "+33 6 12 34 56 78", "0612345678", "01.23.45.67.89"]:
            out, _ = redact_text(pd.Series([f"tel {phone} merci"]))
            assert out[0] == f"tel {PHONE_MASK} merci", phone
        out, _ = redact_text(pd.Series(["budget 2017 de 15000 euros"]))
        assert PHONE_MASK not in out[0]

    def test_pseudonymise_is_stable_and_salted(self):
        s = pd.Series(["Commune A", "commune a ", "Commune B", None])
        a = pseudonymise(s, b"salt1")
        b = pseudonymise(s, b"salt2")
        assert a[0] == a[1] != a[2]
        assert a[0] != b[0]
        assert pd.isna(a[3])
        assert a[0].startswith("COL-") and "Commune" not in a[0]


def test_normalise_text():
    assert normalise_text("  Conseil   DÉPARTEMENTAL ") == "conseil departemental"


def test_name_redaction_respects_word_boundaries():
    out, changed = redact_text(pd.Series(["nous testons l'outil", "un TEST ici"]), ["TEST"])
    assert out[0] == "nous testons l'outil" and not changed[0]
    assert out[1] == f"un {NAME_MASK} ici"
