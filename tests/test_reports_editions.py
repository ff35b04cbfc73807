"""The report of every edition (2016, 2018: generic narrative) and the trends report.

The end-to-end checks read the outputs of the session's single full pipeline run
(``built_project`` of conftest.py): the 2016 and 2018 reports exist as HTML and PDF,
every figure they print equals that edition's ``figures.csv``, the conformity annex
formats means and medians with their decimals, the contradictions of the registry are
listed; the trends report shows every indicator of ``trends.csv`` with its values and
marks the non-comparable ones with their reason. A few fast unit tests come first.
"""
from __future__ import annotations

import html as htmlmod
import math
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
import yaml

from barometre import fr
from barometre.charts import chart_specs, read_figures
from barometre.codebook import load_codebook
from barometre.quantifiers import quantifier_holds
from barometre.render import ReportData, average_text, conformity_rows, narrative_of
from barometre.trends import read_trends

ROOT = Path(__file__).resolve().parents[1]
GENERIC_EDITIONS = ("2016", "2018")


# --------------------------------------------------------------------------- unit tests (no pipeline run)


def _figures(rows: list[dict]) -> pd.DataFrame:
    base = {"component": "", "reading": "", "unit": "collectivities", "question": "", "numerator": math.nan,
            "denominator": math.nan, "ci_low": math.nan, "ci_high": math.nan, "published_quote": "",
            "bound_low": math.nan, "bound_high": math.nan, "bounds_origin": "", "status": "pass"}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_conformity_formats_means_and_medians_with_decimals():
    figures = _figures([
        {"id": "M01", "definition": "Budget moyen, en euros par habitant", "measure": "mean",
         "question": "participation_budget_eur", "value": 1.820000235820271, "denominator": 28.0},
        {"id": "M02", "definition": "Durée médiane", "measure": "median", "question": "duree", "value": 0.44,
         "denominator": 28.0},
        {"id": "R01", "definition": "Nombre", "measure": "count", "value": 70.0},
    ])
    rows = {r["key"]: r for r in conformity_rows(ReportData(figures=figures, cells=pd.DataFrame()))}
    assert rows["M01"]["value"] == f"1,82{fr.NBSP}€"
    assert rows["M02"]["value"] == "0,44"
    assert rows["M01"]["base"] == "28"
    assert rows["R01"]["value"] == "70"
    data = ReportData(figures=figures, cells=pd.DataFrame())
    assert f">1,82{fr.NBSP}€<" in str(data.value("M01")) and 'data-kind="average"' in str(data.value("M01"))
    assert average_text(math.nan, {}) == fr.MISSING


def test_narrative_chosen_per_edition():
    templates = ROOT / "report_templates"
    assert narrative_of("2017", templates) == "2017"
    assert narrative_of("2016", templates) == "generic"
    assert narrative_of("2018", templates) == "generic"
    for name in ("_themes_generic.html.j2", "_key_figures_generic.html.j2", "_contradictions_generic.html.j2"):
        assert (templates / name).is_file()


def test_chart_specs_2017_unchanged_and_generic_editions():
    cb17 = load_codebook(ROOT / "codebooks" / "2017.yaml")
    pub17 = yaml.safe_load((ROOT / "references" / "published_2017.yaml").read_text(encoding="utf-8"))
    ids17 = [s.id for s in chart_specs(cb17, pub17)]
    assert ids17[:8] == [f"C0{i}" for i in range(1, 9)]
    assert set(ids17[8:]) == {"E01", "E02", "E03", "E04", "E05", "E06", "E07", "E08"}
    for edition in GENERIC_EDITIONS:
        cb = load_codebook(ROOT / "codebooks" / f"{edition}.yaml")
        pub = yaml.safe_load((ROOT / "references" / f"published_{edition}.yaml").read_text(encoding="utf-8"))
        figures = pd.DataFrame({"key": ["R01"]})
        specs = chart_specs(cb, pub, figures)
        ids = [s.id for s in specs]
        assert "E01" not in ids and "E07" not in ids  # their figures are 2017's
        drawn = {cb.question(s.question).id for s in specs if s.question}
        closed = {q.id for q in cb.questions if q.type in ("single", "ordinal", "band", "multiple", "ranking")}
        assert closed <= drawn, closed - drawn


# --------------------------------------------------------------------------- end-to-end (built_project)


def _spans(html: str) -> list[dict]:
    out = []
    for m in re.finditer(r'<span class="fig" ([^>]*)>(.*?)</span>', html):
        attrs = {k: htmlmod.unescape(v) for k, v in re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1))}
        attrs["text"] = htmlmod.unescape(m.group(2))
        out.append(attrs)
    return out


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[\u2010\u00ad-]\n", "", text)
    text = text.replace("\u202f", " ").replace("\u00a0", " ").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text)


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("edition", GENERIC_EDITIONS)
def test_generic_report_figures_equal_figures_csv(built_project, edition):
    res = built_project / "results" / edition
    html = (res / f"rapport_{edition}.html").read_text(encoding="utf-8")
    assert (res / f"rapport_{edition}.pdf").stat().st_size > 10_000
    table = read_figures(res / "figures.csv").set_index("key")
    spans = _spans(html)
    assert len(spans) >= len(table)
    for s in spans:
        key, kind, text = s["fig"], s["kind"], s["text"]
        if key.startswith("cell:"):
            continue
        row = table.loc[key]
        if row.get("disclosure_status") == "suppressed":  # withheld by the publication layer: no number at all
            assert text in ("secret statistique", "s", "–"), (key, text)
            continue
        if kind == "pct":
            assert text == fr.format_percent(row["value"], int(s.get("decimals", 1))), key
        elif kind == "n":
            expected = row["value"] if row["measure"] in ("count", "distinct", "sum") else row["numerator"]
            assert text == fr.format_number(expected), key
        elif kind == "base":
            assert text == fr.format_number(row["denominator"]), key
        elif kind == "average":
            assert text.startswith(fr.format_decimal(row["value"], int(s["decimals"]))), key
        elif kind == "points":
            assert text == fr.format_decimal(abs(row["value"]), int(s.get("decimals", 1))), key
        elif kind == "quant":
            assert quantifier_holds(s["phrase"], row["value"]), (key, s["phrase"], row["value"])
        elif kind == "ci":
            assert text == fr.format_range(row["ci_low"], row["ci_high"]), key
        else:
            pytest.fail(f"unknown span kind {kind}")
    # every figure of the registry is printed in the publication, and listed in the technical note's conformity table
    printed = {s["fig"] for s in spans}
    assert set(table.index) <= printed, set(table.index) - printed
    note = (res / f"note_technique_{edition}.html").read_text(encoding="utf-8")
    assert set(table.index) <= set(re.findall(r'<tr data-figure="([^"]+)"', note))


@pytest.mark.parametrize("edition", GENERIC_EDITIONS)
def test_generic_report_reads_as_a_report(built_project, edition):
    proj = built_project
    res = proj / "results" / edition
    html = (res / f"rapport_{edition}.html").read_text(encoding="utf-8")
    note = (res / f"note_technique_{edition}.html").read_text(encoding="utf-8")
    text = _norm(_pdf_text(res / f"rapport_{edition}.pdf"))
    note_text = _norm(_pdf_text(res / f"note_technique_{edition}.pdf"))
    assert "Données synthétiques : reconstruction documentée" in text
    for heading in ("Chiffres clés", "Contexte", "Méthodologie", "À propos", "indicatifs"):
        assert heading in text, heading
    for heading in (
        "Conformité avec l'édition publiée",
        "Tableaux croisés",
        "Glossaire",
        "Contradictions et ambiguïtés des sources",
    ):
        assert heading in note_text, heading
    # one chart per chart of charts.json, each printed with its title
    manifest = yaml.safe_load((res / "charts" / "charts.json").read_text(encoding="utf-8"))
    assert manifest["charts"] and html.count("<svg") >= len(manifest["charts"])
    for c in manifest["charts"]:
        assert f'data-chart="{c["id"]}"' in html
    # fieldwork: dates when configured, an explicit statement otherwise
    config = yaml.safe_load((proj / "config.yaml").read_text(encoding="utf-8"))
    fw = config["editions"][edition].get("fieldwork")
    if fw:
        assert _norm(fr.format_date(fw["end"])) in text
    else:
        assert f"les dates de collecte de l'édition {edition} ne sont pas publiées" in text
    # contradictions: every figure id with a reading in the registry is listed
    figures = read_figures(res / "figures.csv")
    section = note[note.index("Contradictions et ambiguïtés des sources"):]
    for fid in figures[figures["reading"].fillna("").astype(str).str.strip() != ""]["id"].unique():
        assert f"({fid}).</strong>" in section, fid
    # no 2017 wording leaks into another edition
    assert "Cap Collectif" not in html and "C01" not in re.sub(r"<svg\b.*?</svg>", "", html, flags=re.S)


def test_2018_mean_and_median_in_conformity(built_project):
    html = (built_project / "results" / "2018" / "note_technique_2018.html").read_text(encoding="utf-8")
    for key, value in (("M01", "1,82"), ("M02", "0,44")):
        row = re.search(rf'<tr data-figure="{key}">(.*?)</tr>', html, re.S).group(1)
        cells = re.findall(r'<td class="num">(.*?)</td>', row)
        assert cells[0] == f"{value}{fr.NBSP}€", cells


def test_trends_report_shows_every_indicator(built_project):
    res = built_project / "results" / "trends"
    html = (res / "rapport_tendances.html").read_text(encoding="utf-8")
    assert (res / "rapport_tendances.pdf").stat().st_size > 10_000
    trends = read_trends(res / "trends.csv")
    for r in trends.itertuples():
        m = re.search(
            rf'<span class="trend" data-indicator="{r.indicator}" data-edition="{r.edition}">(.*?)</span>', html
        )
        assert m, (r.indicator, r.edition)
        expected = r.value_label if pd.notna(r.value) else fr.MISSING
        assert htmlmod.unescape(m.group(1)) == expected, (r.indicator, r.edition)
    for ind, rows in trends.groupby("indicator", sort=False):
        comparable = int((rows["comparable"] & rows["value"].notna()).sum()) >= 2
        block = re.search(
            rf'<div class="trend-block" id="indicateur-{ind}" data-indicator="{ind}"'
            rf' data-comparable="(oui|non)">(.*?)</div>\n',
            html,
            re.S,
        )
        assert block, ind
        assert block.group(1) == ("oui" if comparable else "non"), ind
        if not comparable:
            assert "Indicateur non comparable entre éditions" in block.group(2)
        shown = _norm(htmlmod.unescape(re.sub(r"<[^>]+>", "", block.group(2))))
        for r in rows[~rows["comparable"]].itertuples():  # the reason of each non-comparable value
            assert _norm(r.note)[:60] in shown, (ind, r.edition)
    diffs = pd.read_csv(res / "questionnaire_differences.csv", keep_default_na=False)
    table = html[html.index('<table class="differences"'):]
    assert table.count("<tr>") - 1 == int((diffs["difference"] != "identique").sum())
    text = _norm(_pdf_text(res / "rapport_tendances.pdf"))
    assert "Données synthétiques : reconstruction documentée" in text
    for heading in ("Synthèse", "Méthode", "Indicateurs harmonisés", "Différences entre questionnaires"):
        assert heading in text
    assert "<script" not in html.lower() and not re.search(r'\b(src|href)="(https?:)?//', html)


def test_part_titles_from_the_codebook_then_the_published_reference(tmp_path):
    """Section titles: the codebook's ``parts`` first (2018), else the published list of parts (2016),
    else « Partie n du questionnaire »; integer YAML keys are accepted."""
    from barometre.errors import CodebookError
    from barometre.render import part_titles

    def published(e):
        return yaml.safe_load((ROOT / "references" / f"published_{e}.yaml").read_text(encoding="utf-8"))

    cb2018 = load_codebook(ROOT / "codebooks/2018.yaml")
    assert part_titles(cb2018, published("2018")) == {
        1: "La collectivité et le répondant",
        2: "Les dispositifs de participation",
        3: "L'organisation de la participation",
        4: "Le budget de la participation",
    }
    cb2016 = load_codebook(ROOT / "codebooks/2016.yaml")
    assert cb2016.parts == {}
    titles = part_titles(cb2016, published("2016"))
    assert titles[1] == "Présentation du répondant et de sa collectivité"
    assert part_titles(cb2016, {}) == {p: f"Partie {p} du questionnaire" for p in (1, 2, 3, 4)}
    text = (ROOT / "codebooks/2018.yaml").read_text(encoding="utf-8")
    unquoted = tmp_path / "2018.yaml"
    unquoted.write_text(re.sub(r'^  "(\d)": ', r"  \1: ", text, flags=re.M), encoding="utf-8")
    assert load_codebook(unquoted).parts == cb2018.parts
    empty = tmp_path / "empty_title.yaml"
    empty.write_text(text.replace('"4": "Le budget de la participation"', '"4": ""'), encoding="utf-8")
    with pytest.raises(CodebookError, match="parts"):
        load_codebook(empty)
