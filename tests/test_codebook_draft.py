"""``python -m barometre codebook draft``: a codebook drafted from each shipped export.

The drafts of the 2016, 2017 and 2018 exports validate against the schema, and differ
from the shipped codebooks only where the export cannot decide: review marks, wordings
and names chosen by a person (answer keys, harmonised names of questions new to the
edition), the kind of closed question (single, ordinal or band), and what the codebook
adds to the export (filters, charts, parts, « nsp » display, recoding, bounds, notes).
Everything the export states is the same: every raw column and the question it belongs
to, its level and question family, every code with its label (after normalisation),
every option with its label, the « autre » text columns, ranks, tool blocks and
identifiers. Harmonised names of questions the earlier edition has are proposed the same.
"""
from __future__ import annotations

import pytest
import yaml

from barometre.__main__ import main
from barometre.clean import normalise_text
from barometre.codebook import CATEGORICAL_TYPES, load_codebook
from barometre.codebook_draft import REVIEW, draft_codebook, write_draft
from conftest import ROOT

EXPORTS = {
    "2016": ("data/raw/2016/barometre_2016_questionnaire.sav", "codebooks/2017.yaml"),
    "2017": ("data/raw/2017/barometre_2017_limesurvey.sav", "codebooks/2016.yaml"),
    "2018": ("data/raw/2018/barometre_2018_questionnaire.sav", "codebooks/2017.yaml"),
}


def _family(qtype: str) -> str:
    return "closed" if qtype in CATEGORICAL_TYPES else qtype


def _stated(q) -> dict:
    """What the export states about a question (the comparison ignores everything else)."""
    return {
        "level": q.level,
        "family": _family(q.type),
        "raw": q.raw,
        "codes": {c.code: normalise_text(c.label) for c in q.codes},
        "options": {o.raw: normalise_text(o.label) for o in q.options},
        "exclusive": sorted(o.raw for o in q.options if o.exclusive),
        "other_text": q.other_text,
        "ranks": q.ranks,
    }


@pytest.mark.parametrize("edition", sorted(EXPORTS))
def test_draft_differs_from_the_shipped_codebook_only_where_the_export_cannot_decide(tmp_path, edition):
    export, like = EXPORTS[edition]
    out = tmp_path / f"{edition}.yaml"
    assert main(["codebook", "draft", str(ROOT / export), "--like", str(ROOT / like), "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert REVIEW in text
    drafted = load_codebook(out)  # the schema and the cross-references hold
    shipped = load_codebook(ROOT / f"codebooks/{edition}.yaml")
    survey = [q for q in shipped.questions if q.level in ("respondent", "tool")]
    by_columns = {tuple(q.raw_columns()): q for q in drafted.questions}
    assert set(by_columns) == {tuple(q.raw_columns()) for q in survey}
    earlier = {q["harmonised"] for q in yaml.safe_load((ROOT / like).read_text(encoding="utf-8"))["questions"]}
    for q in survey:
        d = by_columns[tuple(q.raw_columns())]
        assert _stated(d) == _stated(q), q.id
        if q.harmonised in earlier:
            assert d.harmonised == q.harmonised, q.id
    assert drafted.sources["survey"] == {k: v for k, v in shipped.sources["survey"].items()}
    for key in ("drop", "pseudonymise", "metadata"):
        assert sorted(drafted.identifiers[key]) == sorted(shipped.identifiers.get(key, [])), key
    assert drafted.missing_code == shipped.missing_code


def test_each_guess_is_marked_for_review():
    export, like = EXPORTS["2017"]
    draft = draft_codebook(ROOT / export, ROOT / like)
    assert all(draft.reviews[q["id"]] for q in draft.data["questions"])
    new = next(q for q in draft.data["questions"] if q.get("raw") == "FONCTION_ELU")  # not asked in 2016
    assert any("aucune question proche" in n for n in draft.reviews[new["id"]])
    assert write_draft(ROOT / export, ROOT / like, None).count(f"# {REVIEW} :") >= len(draft.data["questions"])
