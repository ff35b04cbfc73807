"""Editorial Markdown: placeholders filled from figures.csv, and the four refusals.

The fixture ``tests/fixtures/editorial/figures_disclosure.csv`` carries the publication layer's
``disclosure_status`` column (issue 10), with one suppressed figure.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from barometre.editorial import EditorialError, editorial_file, render_editorial

FIGURES = Path(__file__).parent / "fixtures" / "editorial" / "figures_disclosure.csv"


@pytest.fixture()
def figures() -> pd.DataFrame:
    return pd.read_csv(FIGURES, keep_default_na=False, na_values=[""])


def _render(tmp_path: Path, text: str, figures: pd.DataFrame, **kwargs):
    (tmp_path / "2017").mkdir(exist_ok=True)
    (tmp_path / "2017" / "analyse.md").write_text(text, encoding="utf-8")
    return render_editorial("analyse", "2017", figures, small_base=30, root=tmp_path, **kwargs)


def test_placeholders_are_filled(tmp_path, figures):
    text = (
        "# Titre\n\nValoriser : {{ F05 }} des outils (base : {{ F05.base }}), soit {{ F05 | quantificateur }} ;"
        " {{ F05 | quantificateur : près de 90 % }}. {{ R01 }} collectivités, {{ B01.population }}"
        " d'habitants, édition {{ edition }}.\n\n- un point *en italique*\n- un autre **en gras**\n\n"
        "> Lecture : note.\n"
    )
    s = _render(tmp_path, text, figures, variables={"edition": "2017"})
    html = str(s.html)
    assert s.title == "Titre" and s.anchor == "titre"
    assert 'data-fig="F05" data-kind="pct">88,9\u202f%</span>' in html
    assert 'data-kind="base">45</span>' in html
    assert 'data-phrase="9 sur 10"' in html and "près de 90 %" in html
    assert ">98</span> collectivités" in html and "4,3\u00a0millions" in html and "édition 2017" in html
    assert "<li>un point <em>en italique</em></li>" in html and "<strong>en gras</strong>" in html
    assert '<p class="note">Lecture : note.</p>' in html


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("# Titre\n\nUn chiffre : {{ F99 }}.\n",
                 r"2017/analyse\.md, ligne 3 : le chiffre « F99 » n'existe pas", id="unknown figure"),
    pytest.param("# Titre\n\nPremière ligne,\nseconde : {{ F20 | effectif faible }}.\n",
                 r"ligne 4 : le chiffre « F20 » est masqué .*case de moins de 3 réponses", id="masked figure"),
    pytest.param("# Titre\n\n{{ F05 | quantificateur : la moitié }} des outils.\n",
                 r"ligne 3 : « la moitié » contredit la valeur de « F05 » \(88,9\u202f%\)",
                 id="quantifier contradicting its value"),
])
def test_refuses(tmp_path, figures, text, message):
    with pytest.raises(EditorialError, match=message):
        _render(tmp_path, text, figures)


def test_refuses_a_small_base_without_its_mark(tmp_path, figures):
    with pytest.raises(EditorialError, match=r"ligne 3 : le chiffre « F12 » repose sur une base de 14 \(moins de 30\)"):
        _render(tmp_path, "# Titre\n\nRaisons inconnues pour {{ F12 }} des outils.\n", figures)
    html = str(
        _render(tmp_path, "# Titre\n\nRaisons inconnues pour {{ F12 | effectif faible }} des outils.\n", figures).html
    )
    assert ">21,4\u202f%</span> (effectif faible\u00a0: n\u00a0=\u00a014)" in html
    # the base itself is no estimate: it needs no mark
    assert ">14</span>" in str(_render(tmp_path, "# Titre\n\nBase : {{ F12.base }}.\n", figures).html)


def test_without_disclosure_column_every_figure_is_published(tmp_path, figures):
    html = str(
        _render(tmp_path, "# Titre\n\n{{ F20 | effectif faible }}\n", figures.drop(columns=["disclosure_status"])).html
    )
    assert "50,0\u202f%" in html


def test_unknown_filter_and_missing_title_are_refused(tmp_path, figures):
    with pytest.raises(EditorialError, match="filtre inconnu « arrondi »"):
        _render(tmp_path, "# Titre\n\n{{ F05 | arrondi }}\n", figures)
    with pytest.raises(EditorialError, match="doit commencer par un titre"):
        _render(tmp_path, "Pas de titre.\n", figures)


def test_generic_text_when_the_edition_has_none(tmp_path):
    (tmp_path / "generique").mkdir()
    (tmp_path / "generique" / "contexte.md").write_text("# Contexte\n", encoding="utf-8")
    assert editorial_file("contexte", "2018", tmp_path) == tmp_path / "generique" / "contexte.md"
    with pytest.raises(EditorialError, match="texte éditorial introuvable"):
        editorial_file("analyse", "2018", tmp_path)


def test_shipped_texts_have_no_sentence_twice():
    """Within one edition's publication (own texts + the generic ones it falls back on), no sentence repeats."""
    import re

    root = Path(__file__).resolve().parents[1] / "editorial"
    for edition in ("2016", "2017", "2018"):
        names = {p.stem for p in (root / "generique").glob("*.md")} | {p.stem for p in (root / edition).glob("*.md")}
        sentences = []
        for name in sorted(names):
            text = editorial_file(name, edition, root).read_text(encoding="utf-8")
            text = re.sub(r"\{\{.*?\}\}", "X", text)
            sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 30]
        assert len(sentences) == len(set(sentences)), edition


def test_a_reading_note_stays_inside_its_chart(tmp_path, figures):
    text = "# Titre\n\n{{ graphique C01 }}\n\n> Lecture : {{ F05 }} des outils.\n\nSuite.\n"
    html = str(
        _render(tmp_path, text, figures, chart=lambda cid: f'<figure class="chart" data-chart="{cid}"></figure>').html
    )
    assert '<p class="note reading-note">Lecture : <span' in html
    assert html.index("reading-note") < html.index("</figure>") < html.index("<p>Suite.</p>")
