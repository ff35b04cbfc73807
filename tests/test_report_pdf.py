"""End-to-end checks of the two documents of edition 2017 (results/2017), as a reader gets them.

These tests read the outputs of the full pipeline run that the suite makes on a
private copy of the project (the ``built_project`` fixture of ``conftest.py``,
``snakemake --cores 2``), so they run in a fresh clone too. They extract the PDF text
with ``pdftotext`` and check the publication (at most 12 pages, chart titles C01–C08 in
published order, key figures against ``figures.csv``) and the technical note (conformity
table); the reader checks of every built document (no internal code, guillemets, no page
under a third full except at the end of a part) are in ``test_reader_checks.py``.
"""
from __future__ import annotations

import html as htmlmod
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

from barometre import fr
from barometre.charts import read_figures

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "references" / "published_2017.yaml"
KEY_FIGURES = ("R05", "F01", "F05", "F09", "B05")
KEY_COUNTS = ("R01", "R02", "B01.territories")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.pdf,
    pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                       reason="poppler-utils (pdftotext, pdftoppm) not installed"),
]


def _norm(text: str) -> str:
    """Whitespace-insensitive form: NBSP/NNBSP as spaces, soft hyphenation at line ends removed."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"[\u2010\u00ad-]\n", "", text)  # hyphenated line breaks
    text = text.replace("\u202f", " ").replace("\u00a0", " ").replace("\u2019", "'")
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def results(built_project) -> Path:
    return built_project / "results" / "2017"


@pytest.fixture(scope="module")
def PDF(results) -> Path:
    return results / "rapport_2017.pdf"


@pytest.fixture(scope="module")
def HTML(results) -> Path:
    return results / "rapport_2017.html"


def _pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def pdf_text(PDF) -> str:
    return _pdftotext(PDF)


@pytest.fixture(scope="module")
def note_text(results) -> str:
    return _pdftotext(results / "note_technique_2017.pdf")


@pytest.fixture(scope="module")
def figures(results):
    return read_figures(results / "figures.csv").set_index("key")


def test_chart_titles_in_published_order(pdf_text):
    text = _norm(pdf_text)
    charts = yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))["charts"]
    toc_end = text.find("À propos")  # after the table of contents
    last = toc_end
    for c in charts:
        pos = text.find(_norm(c["title"]), last + 1)
        assert pos > last, f"chart {c['id']} title not found after the previous one: {c['title']!r}"
        last = pos


def test_key_figures_printed_equal_figures_csv(pdf_text, figures):
    text = _norm(pdf_text)
    start = text.find("Chiffres clés", text.find("Chiffres clés") + 1)  # the section, not the TOC entry
    end = text.find("Contexte", start)
    section = text[start:end]
    assert section, "key figures section not found"
    for key in KEY_FIGURES:
        assert _norm(fr.format_percent(figures.loc[key, "value"], 1)) in section, key
    for key in KEY_COUNTS:
        assert _norm(fr.format_number(figures.loc[key, "value"])) in section, key
    assert _norm(fr.format_large(figures.loc["B01.population", "value"])) in section


def test_key_figures_in_html_match_figures_csv(figures, HTML):
    """Every figure span of the HTML (the same text as the PDF) equals figures.csv."""
    html = HTML.read_text(encoding="utf-8")
    spans = re.findall(r'<span class="fig" data-fig="([^"]+)" data-kind="(pct|n|base)"[^>]*>(.*?)</span>', html)
    assert len(spans) > 40
    for key, kind, text in spans:
        if key.startswith("cell:"):
            continue
        row = figures.loc[htmlmod.unescape(key)]
        if kind == "pct":
            expected = fr.format_percent(row["value"], 1)
        elif kind == "n":
            counted = row["measure"] in ("count", "distinct", "sum")
            expected = fr.format_number(row["value"] if counted else row["numerator"])
        else:
            expected = fr.format_number(row["denominator"])
        assert htmlmod.unescape(text) == expected, key


def test_conformity_table(note_text, figures):
    text = _norm(note_text)
    start = text.find("Conformité avec l'édition publiée", text.find("Conformité avec l'édition publiée") + 1)
    annex = text[start:text.find("Tableaux croisés", text.find("Tableaux croisés") + 1)]
    assert "Formulation publiée" in annex and "Valeur calculée" in annex and "Bornes" in annex
    checked = figures[figures["status"].isin(["pass", "fail"])]
    compact = re.sub(r"\s+", "", annex)  # identifiers may wrap after « . » or « _ »
    for key in checked.index:
        assert key in compact, key
    n_pass = int((checked["status"] == "pass").sum())
    assert f"{n_pass} chiffres sur {len(checked)} comparés" in annex
    assert "conforme" in annex
    for marker in ("X01", "X10", "Contradictions"):
        assert marker in annex


def test_synthetic_banner_and_sections(pdf_text):
    text = _norm(pdf_text)
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    if cfg["editions"]["2017"]["synthetic"]:
        assert "Données synthétiques : reconstruction documentée, ne pas citer comme résultats réels" in text
    assert "du 15 juin au 6 octobre 2017" in text
    for heading in ("Contexte", "Méthodologie", "Les répondants", "Une timide normalisation des usages du numérique",
                    "Des usages tournés vers la communication", "Une relation paradoxale aux acteurs du numérique",
                    "Une connaissance limitée des pratiques et de leurs effets",
                    "Focus sur les budgets participatifs", "À propos"):
        assert heading in text, heading
    assert "indicatifs" in text and "Tours" in text and "Bar-le-Duc, Paris et Rodez" in text
    assert re.search(r"page 1\d? / \d+|page \d+ / \d+", text)


def test_page_count_and_rasterisation(tmp_path, PDF):
    info = subprocess.run(["pdfinfo", str(PDF)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 6 <= pages <= 12, pages  # the 2017 publication: at most 12 A4 pages
    assert "A4" in info
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "3", str(PDF), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == 3 and all(p.stat().st_size > 1000 for p in pngs)


def test_note_holds_every_audit_table(note_text):
    text = _norm(note_text)
    for heading in (
        "Conformité avec l'édition publiée",
        "Calcul de chaque chiffre",
        "Contradictions et ambiguïtés des sources",
        "Nettoyage des données",
        "Secret statistique",
        "Provenance",
        "Tableaux croisés",
        "Glossaire",
    ):
        assert text.count(heading) >= 2, heading  # in the table of contents and as a heading


def test_html_self_contained(HTML):
    html = HTML.read_text(encoding="utf-8").lower()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'\b(src|href)="(https?:)?//', html)
    assert html.count("<svg") >= 8


def test_no_line_left_almost_empty_in_paragraphs(HTML, results):
    """Reader check: no paragraph line is cut short (a WeasyPrint line-breaking pitfall seen on this report)."""
    from weasyprint import HTML as WeasyHTML

    from barometre.render import print_html

    document = WeasyHTML(string=print_html(HTML.read_text(encoding="utf-8")), base_url=str(results)).render()
    short = []

    def walk(box):
        children = getattr(box, "children", [])
        lines = [c for c in children if type(c).__name__ == "LineBox"]
        if getattr(box, "element_tag", "") in ("p", "li") and len(lines) >= 2:
            for line in lines[:-1]:
                if line.width < 0.6 * box.width:
                    text = "".join(getattr(t, "text", "") for t in line.descendants() if hasattr(t, "text"))
                    short.append(text)
        for c in children:
            if type(c).__name__ != "LineBox":
                walk(c)

    for page in document.pages:
        walk(page._page_box)
    assert not short, short
