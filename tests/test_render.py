"""Unit tests of the report rendering (barometre.render) on small fixture data.

The fixture (see ``test_charts.build_fixture``) is tabulated and computed by the
project's own code; these tests check that every printed figure equals
``figures.csv``, that autoescape is really on, that the HTML is self-contained,
that the PDF fetcher refuses anything outside the project, and that two
renders are byte-identical.
"""
from __future__ import annotations

import html as htmlmod
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from barometre import fr
from barometre.charts import draw_charts, read_cells, read_figures, write_charts
from barometre.codebook import load_codebook
from barometre.figures import load_registry
from barometre.quantifiers import quantifier_holds
from barometre.render import (
    MAIN_TEMPLATE,
    RenderError,
    URLRefusedError,
    check_url,
    cross_tables,
    date_period,
    disclosure_hooks,
    format_bound,
    make_environment,
    nbsp_thousands,
    pdf_identifier,
    print_html,
    project_url_fetcher,
    protect_inclusive_words,
    quantified_phrase,
    render_report,
    run_render_report,
    write_pdf,
)
from test_charts import CODEBOOK, FREE_TEXT, PUBLISHED, REGISTRY, build_fixture

KEY_FIGURES = ("R01", "R02", "R05", "F01", "F05", "F09", "B01.territories", "B01.population", "B05")
SECTION_ORDER = [
    "Chiffres clés", "Contexte", "Méthodologie", "Les répondants", "Analyse des résultats",
    "Une timide normalisation des usages du numérique", "Des usages tournés vers la communication",
    "Une relation paradoxale aux acteurs du numérique", "Une connaissance limitée des pratiques et de leurs effets",
    "Focus sur les budgets participatifs", "À propos",
]
NOTE_ORDER = ["Conformité avec l'édition publiée", "Calcul de chaque chiffre",
              "Contradictions et ambiguïtés des sources", "Nettoyage des données", "Secret statistique",
              "Provenance", "Tableaux croisés", "Glossaire"]


def _prepare(root: Path, synthetic: bool = True, figures_hook=None) -> dict:
    fx = build_fixture(root, synthetic=synthetic)
    if figures_hook is not None:
        table = pd.read_csv(fx["figures"], keep_default_na=False, na_values=[""])
        figures_hook(table)
        table.to_csv(fx["figures"], index=False)
    codebook = load_codebook(CODEBOOK)
    published = yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))
    charts = draw_charts(cells=read_cells(fx["cells"]), figures=read_figures(fx["figures"]), codebook=codebook,
                         published=published, edition="2017", synthetic=synthetic)
    write_charts(charts, fx["results"] / "charts", "2017", synthetic)
    fx["charts"] = fx["results"] / "charts"
    return fx


def _render(fx: dict, document: str = "rapport") -> str:
    return render_report(
        "2017", figures=fx["figures"], cells=fx["cells"], charts_dir=fx["charts"], provenance=fx["provenance"],
        cleaning_log=fx["cleaning_log"], config=fx["config"], codebook=fx["codebook"], published=fx["published"],
        registry=REGISTRY, document=document,
        hooks=disclosure_hooks("2017", fx["config"], {}),  # as the rule entry point fills them
    )


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> dict:
    return _prepare(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def report(fx) -> str:
    return _render(fx)


@pytest.fixture(scope="module")
def note(fx) -> str:
    return _render(fx, "note")


def _spans(html: str) -> list[dict]:
    out = []
    for m in re.finditer(r'<span class="fig" ([^>]*)>(.*?)</span>', html):
        attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1)))
        attrs = {k: htmlmod.unescape(v) for k, v in attrs.items()}
        attrs["text"] = htmlmod.unescape(m.group(2))
        out.append(attrs)
    return out


def _visible_text(html: str) -> str:
    body = re.sub(r"<svg\b.*?</svg>", " ", html, flags=re.S)
    body = re.sub(r"<head\b.*?</head>", " ", body, flags=re.S)
    return _plain(htmlmod.unescape(re.sub(r"<[^>]+>", "", body)))


def _plain(text: str) -> str:
    """Text with the typographic spaces and apostrophe as typed (to compare with source strings)."""
    return text.replace("\u202f", " ").replace("\xa0", " ").replace("’", "'")


# --------------------------------------------------------------------------- figures printed = figures.csv


def test_every_printed_figure_equals_figures_csv(fx, report):
    table = read_figures(fx["figures"]).set_index("key")
    spans = _spans(report)
    assert len(spans) > 40
    for s in spans:
        key, kind, text = s["fig"], s["kind"], s["text"]
        if key.startswith("cell:"):
            continue
        row = table.loc[key]
        if kind == "pct":
            assert text == fr.format_percent(row["value"], int(s.get("decimals", 1))), key
        elif kind == "n":
            expected = row["value"] if row["measure"] in ("count", "distinct", "sum") else row["numerator"]
            assert text == fr.format_number(expected), key
        elif kind == "base":
            assert text == fr.format_number(row["denominator"]), key
        elif kind == "large":
            assert text == fr.format_large(row["value"]), key
        elif kind == "points":
            assert text == fr.format_decimal(abs(row["value"]), int(s.get("decimals", 1))), key
        elif kind == "quant":
            assert quantifier_holds(s["phrase"], row["value"]), (key, s["phrase"], row["value"])
            assert _plain(s["phrase"]) in _plain(text)
        elif kind == "ci":
            assert text == fr.format_range(row["ci_low"], row["ci_high"]), key
        elif kind == "average":
            assert text.startswith(fr.format_decimal(row["value"], 2)), key
        else:
            pytest.fail(f"unknown span kind {kind}")


def test_cell_figures_equal_cells_csv(fx, report):
    cells = read_cells(fx["cells"])
    for s in _spans(report):
        if not s["fig"].startswith("cell:"):
            continue
        _, harmonised, key, stat = s["fig"].split(":")
        c = cells[(cells.harmonised == harmonised) & (cells.answer_key == key) & (cells.statistic == stat)
                  & (cells.dimension == "ensemble")].iloc[0]
        assert s["text"] == ("s" if c["suppressed"] else fr.format_percent(c["value"], 1))


def test_key_figures_section(fx, report):
    section = re.search(r'<section id="chiffres-cles".*?</section>', report, re.S).group(0)
    table = read_figures(fx["figures"]).set_index("key")
    keys = {s["fig"] for s in _spans(section)}
    assert set(KEY_FIGURES) <= keys
    text = _visible_text(section)
    assert _plain(fr.format_number(table.loc["R01", "value"])) in text
    for key in ("R05", "F01", "F05", "F09", "B05"):
        assert _plain(fr.format_percent(table.loc[key, "value"], 1)) in text, key
    assert _plain(fr.format_large(table.loc["B01.population", "value"])) in text


def test_sections_in_order_with_charts(fx, report):
    text = _visible_text(report)
    positions = [text.find(f"\n{h}") if text.find(f"\n{h}") >= 0 else text.find(h) for h in SECTION_ORDER]
    body_positions = []
    toc_end = _visible_text(report[:report.index("</nav>")]).__len__()
    for h in SECTION_ORDER:  # skip the table of contents: search after it
        body_positions.append(text.find(h, toc_end))
    assert all(p >= 0 for p in positions) and all(p > 0 for p in body_positions), list(
        zip(SECTION_ORDER, body_positions, strict=True)
    )
    assert body_positions == sorted(body_positions)
    chart_ids = re.findall(r'data-chart="([A-Z0-9]+)"', report)
    published = [c for c in chart_ids if c.startswith("C")]
    assert published == [f"C0{i}" for i in range(1, 9)]
    pub = yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))
    last = -1
    for c in pub["charts"]:
        pos = text.find(_plain(c["title"]))
        assert pos > last, c["id"]
        last = pos


def test_synthetic_banner_and_french_formats(fx, report, note):
    assert "\u202f%" in report and "«\u202f" in report
    text = _visible_text(report)
    assert "Données synthétiques : reconstruction documentée, ne pas citer comme résultats réels" in text
    assert "du 15 juin au 6 octobre 2017" in text
    assert re.search(r"\d\.\d\s*%", text) is None  # decimal comma, never a point
    assert "indicatifs" in text and "auto-sélection" in text  # the methodology says what the sample is
    text = _visible_text(note)
    assert "0123456789ab" in text  # commit, shortened
    assert "aaaaaaaaaaaaaaaa…" in text  # sha256 of a raw file, shortened
    assert "Réponse de test" in text  # exclusions by reason


def test_not_synthetic_has_no_banner(tmp_path):
    fx = _prepare(tmp_path, synthetic=False)
    text = _visible_text(_render(fx))
    assert "ne pas citer comme résultats réels" not in text
    assert "Données synthétiques" not in text


def test_conformity_and_contradictions(fx, note):
    table = read_figures(fx["figures"])
    annex = re.search(r'<section id="annexe-conformite".*?</section>', note, re.S).group(0)
    for key in table["key"]:
        assert f'data-figure="{key}"' in annex, key
    text = _visible_text(annex + re.search(r'<section id="contradictions".*?</section>', note, re.S).group(0))
    pub = yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))
    r03 = next(f for f in pub["figures"] if f["id"] == "R03")
    t01 = next(f for f in pub["figures"] if f["id"] == "T01")
    assert fr.format_number(sum(r03["value"].values())) in text  # 92, computed from the reference, not typed
    assert fr.format_number(sum(t01["value"].values())) in text  # 39
    for marker in ("X01", "X10", "F01", "F03", "F13", "F02", "près d'un tiers", "plus d'un tiers"):
        assert marker in text


def test_note_sections_in_order(note):
    text = _visible_text(note)
    toc_end = len(_visible_text(note[:note.index("</nav>")]))
    positions = [text.find(h, toc_end) for h in NOTE_ORDER]
    assert all(p > 0 for p in positions) and positions == sorted(positions), list(
        zip(NOTE_ORDER, positions, strict=True)
    )


def test_cross_tables_publishable_only(fx, report, note):
    cells = read_cells(fx["cells"])
    annex = re.search(r'<section id="annexe-tableaux".*?</section>', note, re.S).group(0)
    assert annex.count("<table") >= 20
    assert "s</td>" in annex  # some secret cells in the fixture
    assert "small-base" in annex
    # a suppressed cell value is never printed in its table
    supp = cells[(cells["suppressed"]) & (cells["dimension"] != "ensemble")]
    assert len(supp) > 0
    # free text never enters the report
    assert "TEXTE-LIBRE" not in report and FREE_TEXT not in report
    assert "TEXTE-LIBRE" not in note and FREE_TEXT not in note


def _with_letters(fx: dict) -> tuple[pd.DataFrame, str, str, str]:
    """The fixture cells with comparison letters on one question × role: every « Élu·e » value above « Agent »
    (B), except that one « Agent » cell is made secret; returns (cells, question, answer key of a visible
    letter, answer key of the secret cell)."""
    cells = read_cells(fx["cells"])
    cells["letters"] = ""
    for qid in dict.fromkeys(cells["question_id"]):
        sel = (cells["question_id"] == qid) & (cells["dimension"] == "role") & (cells["statistic"] == "share")
        open_ = sel & ~cells["suppressed"] & ~cells["base_suppressed"] & cells["count"].gt(0)
        keys = [k for k in cells.loc[open_ & (cells["dimension_value"] == "Élu·e"), "answer_key"]
                if k in set(cells.loc[open_ & (cells["dimension_value"] == "Agent"), "answer_key"])]
        if len(keys) >= 2:
            break
    else:
        pytest.fail("no question of the fixture has two visible answers in both role columns")
    cells.loc[sel & (cells["dimension_value"] == "Élu·e"), "letters"] = "B"
    cells.loc[sel & (cells["dimension_value"] == "Agent") & (cells["answer_key"] == keys[1]), "suppressed"] = True
    return cells, qid, keys[0], keys[1]


def test_cross_tables_letters_per_column_next_to_values_and_rule_line(fx):
    cells, qid, visible, secret = _with_letters(fx)
    codebook = load_codebook(CODEBOOK)
    table = {t["id"]: t for t in cross_tables(cells, codebook, 30, letters_rule="Lettres : la règle.")}[qid]
    cols = table["columns"]
    assert [c["letter"] for c in cols if c["dim"] == "role"] == ["A", "B"]
    assert cols[0]["dim"] == "ensemble" and cols[0]["letter"] == ""
    elu = next(i for i, c in enumerate(cols) if c["label"] == "Élu·e")
    mine = cells[cells["question_id"] == qid]
    label = {k: nbsp_thousands(str(mine.loc[mine["answer_key"] == k, "answer_label"].iloc[0]))
             for k in (visible, secret)}
    rows = {r["label"]: r["cells"] for r in table["rows"]}
    assert rows[label[visible]][elu]["letters"] == "B"
    assert rows[label[secret]][elu]["letters"] == ""  # « B » would name a cell printed « s »
    assert table["letters_rule"] == "Lettres : la règle."
    plain = {t["id"]: t for t in cross_tables(cells.drop(columns="letters"), codebook, 30, letters_rule="x")}[qid]
    assert plain["letters_rule"] == "" and not any(c["letter"] for c in plain["columns"])


def test_note_prints_the_letters_and_the_rule_from_the_config(fx, tmp_path):
    from barometre.comparisons import rule_text

    cells, qid, _, _ = _with_letters(fx)
    path = tmp_path / "cells.csv"
    cells.to_csv(path, index=False)
    html = render_report("2017", figures=fx["figures"], cells=path, charts_dir=fx["charts"],
                         provenance=fx["provenance"],
                         cleaning_log=fx["cleaning_log"], config=fx["config"], codebook=fx["codebook"],
                         published=fx["published"], registry=REGISTRY, document="note")
    block = re.search(rf'<div class="cross-block" id="tableau-{qid}">.*?</div>', html, re.S).group(0)
    assert '<span class="col-letter">(B)</span>' in block and '<span class="letters">B</span>' in block
    assert _plain(htmlmod.unescape(re.sub(r"<[^>]+>", "", block))).count(_plain(rule_text(fx["config"]))[:40]) == 1


# --------------------------------------------------------------------------- safety


def test_autoescape_on_for_template_names():
    env = make_environment()
    for name in (MAIN_TEMPLATE, "base.html.j2", "_cover.html.j2", "x.html", "y.j2", "z.txt"):
        assert env.autoescape(name) is True, name
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_injected_definition_renders_inertly(tmp_path):
    evil = "<script>alert(1)</script> {{7*7}} {% raw %}"

    def hook(table):
        table.loc[table["id"] == "F01", "definition"] = evil
        table.loc[table["id"] == "F01", "reading"] = evil

    fx = _prepare(tmp_path, figures_hook=hook)
    html = _render(fx, "note")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    row = re.search(r'<tr data-figure="F01">.*?</tr>', html, re.S).group(0)
    row = _plain(row)
    assert "{{7*7}}" in row and "{% raw %}" in row and "49" not in row
    assert "&lt;script&gt;" in row


def test_html_self_contained(report):
    low = report.lower()
    assert "<script" not in low
    assert "<link" not in low and "@import" not in low
    assert not re.search(r'\b(src|href)="(https?:)?//', report)
    assert "url(http" not in low and "@font-face" not in low
    assert report.count("<svg") >= 8 and 'role="img"' in report and "<desc" in report
    assert '<html lang="fr">' in report


def test_url_checks(tmp_path):
    root = tmp_path / "proj"
    (root / "results").mkdir(parents=True)
    inside = root / "results" / "a.svg"
    inside.write_text("<svg/>")
    check_url("data:image/png;base64,AAAA", root)
    check_url(inside.as_uri(), root)
    for bad in ("http://example.com/a.png", "https://example.com/a.css", "file:///etc/passwd", "ftp://x/y",
                (root.parent / "outside.txt").as_uri(), "file://remote-host/etc/passwd",
                (root / "results" / ".." / ".." / "escape").as_uri()):
        with pytest.raises(URLRefusedError, match="refusée"):
            check_url(bad, root)


def test_pdf_fetcher_refuses_external_resources(tmp_path):
    from weasyprint.urls import FatalURLFetchingError

    fetcher = project_url_fetcher(tmp_path)
    with pytest.raises(URLRefusedError):
        fetcher.fetch("file:///etc/passwd")
    with pytest.raises(URLRefusedError):
        fetcher.fetch("https://example.com/x.png")
    ok = fetcher.fetch("data:text/plain;base64,b2s=")
    assert ok.read() == b"ok"
    for src in ("http://example.com/x.png", "file:///etc/passwd"):
        html = f'<html><body><p>x</p><img src="{src}"></body></html>'
        with pytest.raises(FatalURLFetchingError) as info:
            write_pdf(html, tmp_path / "x.pdf", base_url=tmp_path, root=tmp_path)
        assert "refusée" in str(info.value.__cause__)


# --------------------------------------------------------------------------- determinism and helpers


def test_two_renders_identical_html_and_pdf(fx, report, tmp_path, monkeypatch):
    """The rule entry point, run twice: identical HTML and PDF bytes, stable /ID, dates from SOURCE_DATE_EPOCH."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1507248000")
    inputs = {"figures": str(fx["figures"]), "tables": str(fx["tables"]), "charts": str(fx["charts"]),
              "provenance": str(fx["provenance"]), "cleaning_log": str(fx["cleaning_log"]),
              "codebook": str(CODEBOOK), "published": str(PUBLISHED), "registry": str(REGISTRY)}
    outs = []
    for run in ("a", "b"):
        out = {"html": str(tmp_path / run / "rapport_2017.html"), "pdf": str(tmp_path / run / "rapport_2017.pdf")}
        run_render_report("2017", fx["config"], inputs, out)
        outs.append(out)
    html_a, html_b = (Path(o["html"]).read_text(encoding="utf-8") for o in outs)
    assert html_a == html_b == report
    da, db = (Path(o["pdf"]).read_bytes() for o in outs)
    assert da == db
    assert da.startswith(b"%PDF")
    assert b"/ID" in da and pdf_identifier(report) in da
    if shutil.which("pdfinfo"):  # created / modified from SOURCE_DATE_EPOCH
        info = subprocess.run(
            ["pdfinfo", "-isodates", outs[0]["pdf"]], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r"CreationDate:\s+2017-10-06T00:00:00", info), info
        assert re.search(r"ModDate:\s+2017-10-06T00:00:00", info), info


def test_helpers():
    assert date_period("2017-06-15", "2017-10-06") == "du 15 juin au 6 octobre 2017"
    assert date_period("2016-12-01", "2017-01-31") == "du 1er décembre 2016 au 31 janvier 2017"
    assert format_bound(25.55, True) == "25,55\u202f%"
    assert format_bound(98.0, False) == "98"
    assert format_bound(float("inf"), False) == "+\u221e"
    assert quantified_phrase("3 sur 4", "outil", "outils") == "3 outils sur 4"
    assert quantified_phrase("1 sur 10", "outil", "outils") == "1 outil sur 10"
    assert quantified_phrase("plus de la moitié", "outil", "outils") == "plus de la moitié des outils"
    assert quantified_phrase("aucun", "outil", "outils") == "aucun outil"
    html = (
        '<head><title>élu·es</title></head><body><p title="élu·es">Les élu·es</p><svg><text>élu·e</text></svg></body>'
    )
    assert nbsp_thousands("De 1 000 à 5 000 €") == "De 1\u202f000 à 5\u202f000 €"
    assert print_html('a <span class="fig" data-fig="F05" data-kind="pct">88,9\u202f%</span>.') == "a 88,9\u202f%."
    out = protect_inclusive_words(html)
    assert '<p title="élu·es">Les <span class="nw">élu·es</span></p>' in out
    assert "<title>élu·es</title>" in out and "<text>élu·e</text>" in out


def test_appendix_explains_every_figure_as_explain_does(fx, note):
    """The technical note holds, for every figure of figures.csv, what ``explain`` prints: question, raw columns,
    numerator and denominator, value, interval and published comparison, with the numbers of figures.csv."""
    report = note
    start = report.index('<h2 id="annexe-calculs-titre">')
    annex = htmlmod.unescape(re.sub(r"<[^>]+>", "", report[start:report.index("</section>", start)]))
    figures = pd.read_csv(fx["figures"], keep_default_na=False, na_values=[""])
    items = re.findall(r'<div class="explain-item" data-figure="([^"]+)">(.*?)</div>', report[start:], re.S)
    keys = [
        f"{r.id}.{r.component}" if isinstance(r.component, str) and r.component else r.id for r in figures.itertuples()
    ]
    assert [k for k, _ in items] == keys
    by_key = dict(items)
    for r, key in zip(figures.itertuples(), keys, strict=True):
        text = _plain(htmlmod.unescape(re.sub(r"<[^>]+>", "", by_key[key])))
        if r.measure not in ("mean", "median"):
            assert re.search(rf"Numérateur : .* → {re.escape(_plain(fr.format_number(r.numerator)))}\b", text), key
        if pd.notna(r.denominator):
            assert re.search(rf"Dénominateur : .* → {re.escape(_plain(fr.format_number(r.denominator)))}\b", text), key
        if r.measure == "share":
            assert "IC 95 % Wilson" in text, key
    f05 = _plain(htmlmod.unescape(re.sub(r"<[^>]+>", "", by_key["F05"])))
    assert "« Quel est ou quels sont les objectifs de ce dispositif numérique ? »" in f05
    assert "O{i}_OBJ_SQ002" in f05 and "(bloc outil {i} = 1 à 3)" in f05
    assert "Bornes (publié) : [87 ; 90,5] → conforme" in f05
    # the exclusions, the same for every base, are said once above the list
    assert annex.count("Réponse de test") == 1


def test_appendix_refuses_a_figure_the_registry_does_not_define(fx):
    with pytest.raises(RenderError, match=r"figure F05 of figures.csv is not in the registry"):
        render_report(
            "2017", figures=fx["figures"], cells=fx["cells"], charts_dir=fx["charts"], provenance=fx["provenance"],
            cleaning_log=fx["cleaning_log"], config=fx["config"], codebook=fx["codebook"], published=fx["published"],
            registry=[e for e in load_registry(REGISTRY) if e["id"] != "F05"],
        )


def test_design_hook_reads_the_processed_frames(fx, tmp_path):
    """The note's design paragraph comes from the processed frames the rule passes; none passed, none written."""
    from barometre.render import design_hook
    from test_charts import _frames

    frames = _frames(load_codebook(CODEBOOK), 0)
    inputs = {"codebook": str(CODEBOOK)}
    for level, name in (("respondent", "respondents"), ("tool", "tools"), ("bp", "bp")):
        inputs[name] = str(tmp_path / f"{name}.parquet")
        frames[level].to_parquet(inputs[name])
    text = design_hook("2017", fx["config"], inputs, fx["cells"])
    assert text.startswith("Échantillon auto-sélectionné")
    assert f"pour {fr.format_number(len(frames['respondent']))} répondants" in text
    assert design_hook("2017", fx["config"], {"codebook": str(CODEBOOK)}, fx["cells"]) == ""
