"""Unit tests of the charts (barometre.charts) on small fixture tables built here.

``build_fixture`` makes a small, seeded processed dataset that follows the
codebook, tabulates it with the project's own tabulation and disclosure code,
computes the named figures, and writes a fake provenance and cleaning log: the
same inputs as the report rules, without running the pipeline. ``test_render``
reuses it.
"""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from barometre import fr
from barometre.charts import (
    MULTIPLE_NOTE,
    OKABE_ITO,
    SYNTHETIC_NOTE,
    ChartError,
    ChartSpec,
    accessible_svg,
    chart_specs,
    check_layout,
    draw_chart,
    draw_charts,
    load_manifest,
    read_cells,
    read_figures,
    run_plot_charts,
    wrap_label,
    write_charts,
)
from barometre.codebook import NSP_LABEL, load_codebook

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "codebooks" / "2017.yaml"
PUBLISHED = ROOT / "references" / "published_2017.yaml"
REGISTRY = ROOT / "registry" / "figures_2017.yaml"
FREE_TEXT = "TEXTE-LIBRE-NE-JAMAIS-PUBLIER <b>x</b>"


# --------------------------------------------------------------------------- fixture builder


def _frames(codebook, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Small processed frames (respondents, tools, BP inventory) following the codebook."""
    rng = np.random.default_rng(seed)

    def cat(q, n, p=None):
        labels = q.labels()
        p = np.ones(len(labels)) if p is None else np.asarray(p, float)
        return pd.Categorical(rng.choice(labels, size=n, p=p / p.sum()), categories=labels)

    def fill(level, df):
        n = len(df)
        for q in codebook.at_level(level):
            if q.harmonised in df:
                continue
            if q.is_categorical:
                df[q.harmonised] = cat(q, n)
            elif q.type == "multiple":
                for o in q.options:
                    share = 0.05 if o.key == "nsp" else rng.uniform(0.1, 0.9)
                    df[f"{q.harmonised}__{o.key}"] = pd.array(rng.random(n) < share, dtype="boolean")
            elif q.type == "ranking":
                ranks = np.array([rng.permutation(len(q.codes)) + 1 for _ in range(n)])
                for i, c in enumerate(q.codes):
                    df[f"{q.harmonised}__{c.key}"] = pd.array(ranks[:, i], dtype="Int8")
            elif q.type == "numeric":
                if q.harmonised.endswith("_year"):
                    df[q.harmonised] = rng.integers(2014, 2018, n).astype(float)
                else:
                    df[q.harmonised] = rng.integers(1000, 200000, n).astype(float)
            else:  # text: free answers, which must never reach the report
                df[q.harmonised] = FREE_TEXT
        return df

    resp = pd.DataFrame({"respondent_id": [f"R{i:04d}" for i in range(80)],
                         "collectivity_id": [f"COL-{i % 70:03d}" for i in range(80)]})
    resp["collectivity_type"] = cat(codebook.question("collectivity_type"), 80, [40, 12, 8, 6, 1e-9, 4, 1e-9])
    resp["role"] = cat(codebook.question("role"), 80, [1, 3])
    resp = fill("respondent", resp)
    resp.loc[resp["role"] != "Élu·e", "function_elected"] = np.nan
    resp.loc[resp["role"] != "Agent", ["function_staff", "staff_service"]] = np.nan
    tools = pd.DataFrame(
        {"tool_id": [f"T{i:03d}" for i in range(40)], "respondent_id": resp["respondent_id"].iloc[:40].to_numpy()}
    )
    tools["collectivity_type"] = (
        tools["respondent_id"]
        .map(resp.set_index("respondent_id")["collectivity_type"])
        .astype(resp["collectivity_type"].dtype)
    )
    tools["role"] = tools["respondent_id"].map(resp.set_index("respondent_id")["role"]).astype(resp["role"].dtype)
    tools = fill("tool", tools)
    low = [c for c in tools if c.startswith("tool_low_usage_reasons__")]
    tools.loc[tools["tool_usage_judgement"] != "Faible", low] = pd.NA
    bp = pd.DataFrame({"bp_id": range(50)})
    bp["bp_territory_kind"] = cat(codebook.question("bp_territory_kind"), 50, [40, 4, 2, 2, 1, 1, 1])
    bp = fill("bp", bp)
    bp.loc[bp["bp_online_vote"] != "Oui", "bp_fraud_control"] = np.nan
    return {"respondent": resp, "tool": tools, "bp": bp}


def build_fixture(root: Path, *, synthetic: bool = True, seed: int = 7) -> dict:
    """Write the report's inputs for edition 2017 under ``root`` and return their paths and the config.

    Returns
    -------
    dict
        ``config``, ``tables`` (folder), ``cells``, ``figures``, ``provenance``,
        ``cleaning_log``, ``codebook``, ``published``, ``frames``.
    """
    from barometre.disclosure import apply_disclosure, publishable
    from barometre.figures import compute_figures, figures_frame, load_published, load_registry
    from barometre.tabulate import tabulate_edition

    codebook = load_codebook(CODEBOOK)
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["editions"]["2017"]["synthetic"] = synthetic
    frames = _frames(codebook, seed)
    res = tabulate_edition(frames, codebook, config["tabulation"]["dimensions"], permutations=49, seed=1)
    cells = publishable(apply_disclosure(res.cells, min_cell=3, small_base=30, codebook=codebook))
    cells.insert(0, "edition", "2017")
    results = root / "results" / "2017"
    (results / "tables").mkdir(parents=True, exist_ok=True)
    cells.to_csv(results / "tables" / "cells.csv", index=False, float_format="%.6g")
    figs = figures_frame(compute_figures(
        load_registry(REGISTRY),
        {"respondents": frames["respondent"], "tools": frames["tool"], "bp": frames["bp"]},
        codebook, load_published(PUBLISHED)))
    figs.insert(0, "edition", "2017")
    figs.insert(1, "synthetic", synthetic)
    figs.to_csv(results / "figures.csv", index=False, float_format="%.6g")
    raw = config["editions"]["2017"]["raw"]
    provenance = {
        "edition": "2017", "synthetic_data": synthetic, "build_date": "2017-10-06T00:00:00+00:00",
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "python": "3.11.0", "packages": {"weasyprint": "70.0"},
        "inputs": {
            raw["survey"]["path"]: {"role": "survey", "sha256": "a" * 64, "bytes": 1234567},
            raw["bp_inventory"]["path"]: {"role": "bp_inventory", "sha256": "b" * 64, "bytes": 5950},
            "codebooks/2017.yaml": {"role": "codebook", "sha256": "c" * 64, "bytes": 100},
        },
    }
    (results / "provenance.json").write_text(json.dumps(provenance), encoding="utf-8")
    log = pd.DataFrame(
        {
            "source": ["survey"] * 6,
            "file": raw["survey"]["path"],
            "row": [1, 2, 3, 4, 5, 6],
            "record_id": ["1", "2", "3", "4", "5", "6"],
            "column": ["COLL_NOM"] * 6,
            "action": [
                "exclu:test",
                "exclu:test",
                "exclu:incomplete",
                "exclu:duplicate",
                "recodage « Autre »",
                "texte masqué",
            ],
            "reason": [
                "Réponse de test",
                "Réponse de test",
                "Questionnaire non terminé (pas de date d'envoi)",
                "Doublon : même répondant et même collectivité",
                "recodé",
                "courriel masqué",
            ],
        }
    )
    processed = root / "data" / "processed" / "2017"
    processed.mkdir(parents=True, exist_ok=True)
    log.to_csv(processed / "cleaning_log.csv", index=False)
    return {
        "config": config, "tables": results / "tables", "cells": results / "tables" / "cells.csv",
        "figures": results / "figures.csv", "provenance": results / "provenance.json",
        "cleaning_log": processed / "cleaning_log.csv", "codebook": CODEBOOK, "published": PUBLISHED,
        "results": results, "frames": frames,
    }


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> dict:
    return build_fixture(tmp_path_factory.mktemp("charts"))


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="module")
def published() -> dict:
    return yaml.safe_load(PUBLISHED.read_text(encoding="utf-8"))


def _cells(rows: list[dict], harmonised: str, qid: str, qtype: str, level: str = "tool") -> pd.DataFrame:
    """Hand-made « Ensemble » cells of one question."""
    out = []
    for r in rows:
        out.append({
            "question_id": qid, "harmonised": harmonised, "question_type": qtype, "level": level,
            "dimension": "ensemble", "dimension_value": "Ensemble", "statistic": r.get("statistic", "share"),
            "answer_key": r["key"], "answer_label": r["label"], "count": r.get("count", 1), "base": r.get("base", 45),
            "value": r["value"], "ci_low": math.nan, "ci_high": math.nan,
            "small_base": r.get("base", 45) < 30, "suppressed": r.get("suppressed", False),
        })
    return pd.DataFrame(out)


def _texts(svg: str) -> list[str]:
    """Text content of every SVG <text> element (XML entities decoded)."""
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in re.findall(r"<text\b[^>]*>(.*?)</text>", svg, re.S)]


# --------------------------------------------------------------------------- unit tests


def test_published_charts_keep_titles_and_order(codebook, published):
    specs = chart_specs(codebook, published)
    pub = [s for s in specs if s.published]
    assert [s.id for s in pub] == [c["id"] for c in published["charts"]]
    assert [s.title for s in pub] == [c["title"] for c in published["charts"]]
    for s in pub:  # same question as the published chart
        assert codebook.question(s.question).chart == s.id
    extra = {s.question for s in specs if not s.published}
    assert {"collectivity_type", "role", "function_elected", "function_staff", "staff_service", "tool_type"} <= extra
    assert any(s.kind == "figures" and "B02" in s.figure_keys for s in specs)


def test_single_choice_chart_french_values_base_and_accessibility(codebook):
    cells = _cells([
        {"key": "faible", "label": "Faible", "value": 34.1463},
        {"key": "normal", "label": "Normal", "value": 25.6},
        {"key": "fort", "label": "Fort", "value": 14.6341},
        {"key": "nsp", "label": NSP_LABEL, "value": 25.6196},
    ], "tool_usage_judgement", "Q26", "ordinal")
    spec = ChartSpec("C07", "bars", "Q26", "Considérez-vous … est :", published=True)
    chart = draw_chart(spec, cells=cells, figures=None, codebook=codebook, edition="2017", synthetic=True)
    texts = _texts(chart.svg)
    assert fr.format_percent(25.6) in texts and "25,6\u202f%" in texts
    assert "34,1\u202f%" in texts
    assert NSP_LABEL in " ".join(texts)  # « ne se prononce pas » shown
    assert chart.caption.startswith("n\u00a0=\u00a045 outils")
    assert "n\u00a0=\u00a045 outils" in " ".join(texts)
    assert SYNTHETIC_NOTE in " ".join(texts)
    # accessible, text kept as text, no glyph paths
    assert 'role="img"' in chart.svg and "<title" in chart.svg and "<desc" in chart.svg
    assert "34,1\u202f%" in chart.alt and chart.alt in chart.svg.replace("&apos;", "'")
    assert "<text" in chart.svg and "glyph" not in chart.svg and "<use xlink:href=\"#DejaVu" not in chart.svg
    # ordinal: codebook order kept, NSP last
    labels = [t for t in texts if t in ("Faible", "Normal", "Fort", NSP_LABEL)]
    assert labels == ["Faible", "Normal", "Fort", NSP_LABEL]


def test_not_synthetic_has_no_footnote(codebook):
    cells = _cells([{"key": "oui", "label": "Oui", "value": 60.0}, {"key": "non", "label": "Non", "value": 40.0},
                    {"key": "nsp", "label": NSP_LABEL, "value": 0.0}], "tool_lasting", "Q20", "single")
    chart = draw_chart(ChartSpec("X1", "bars", "Q20", "Pérenne ?"), cells=cells, figures=None, codebook=codebook,
                       edition="2017", synthetic=False)
    assert SYNTHETIC_NOTE not in chart.svg


def test_suppressed_cells_are_never_plotted_as_numbers(codebook):
    cells = _cells(
        [
            {"key": "prestataire", "label": "Par un prestataire extérieur", "value": 75.5556},
            {"key": "interne", "label": "En interne, par les services de la collectivité", "value": 13.3333},
            # suppressed but with a value left in the table: it must still not be shown
            {
                "key": "mixte",
                "label": "Conjointement, en interne et avec un prestataire",
                "value": 4.44444,
                "suppressed": True,
            },
            {
                "key": "association",
                "label": "Par une association ou un collectif citoyen",
                "value": math.nan,
                "suppressed": True,
            },
            {"key": "nsp", "label": NSP_LABEL, "value": 6.66667},
        ],
        "tool_builder",
        "Q14",
        "single",
    )
    chart = draw_chart(ChartSpec("C06", "bars", "Q14", "L'outil a été créé :", sort=True), cells=cells, figures=None,
                       codebook=codebook, edition="2017", synthetic=True)
    texts = _texts(chart.svg)
    assert "4,4\u202f%" not in chart.svg and "4,4\u202f%" not in chart.alt
    assert texts.count("s") == 2
    assert "secret statistique" in chart.alt and "secret statistique" in chart.caption
    assert chart.suppressed == 2


def test_multiple_response_sorted_with_note(codebook):
    cells = _cells([
        {"key": "communication", "label": "Un manque de communication sur le dispositif", "value": 42.9, "base": 14},
        {"key": "ergonomie", "label": "Un outil peu adapté ou peu ergonomique", "value": 7.1, "base": 14},
        {"key": "sujet", "label": "Un sujet peu mobilisateur", "value": 28.6, "base": 14},
        {"key": "autre", "label": "Autre raison", "value": 50.0, "base": 14},
        {"key": "nsp", "label": NSP_LABEL, "value": 21.4, "base": 14},
    ], "tool_low_usage_reasons", "Q27", "multiple")
    spec = chart_specs(load_codebook(CODEBOOK), yaml.safe_load(PUBLISHED.read_text(encoding="utf-8")))[7]
    assert spec.id == "C08"
    chart = draw_chart(spec, cells=cells, figures=None, codebook=codebook, edition="2017", synthetic=True)
    texts = _texts(chart.svg)
    order = [t.replace("\n", " ") for t in texts if t.startswith(("Un ", "Autre", NSP_LABEL))]
    assert order[0].startswith("Un manque") and order[1].startswith("Un sujet") and order[2].startswith("Un outil")
    assert order[-2] == "Autre raison" and order[-1] == NSP_LABEL
    assert MULTIPLE_NOTE in chart.caption and "total > 100\u202f%" in " ".join(texts)
    assert "outils à l'usage jugé faible" in chart.caption  # filtered base named
    assert chart.small_base and "effectif faible" in chart.caption


def test_ranking_shows_first_and_top3(codebook):
    q = codebook.question("C01")
    rows = []
    for i, c in enumerate(q.codes):
        rows.append({"key": c.key, "label": c.label, "value": 40.0 - 5 * i, "statistic": "first_share", "base": 110})
        rows.append({"key": c.key, "label": c.label, "value": 80.0 - 5 * i, "statistic": "top3_share", "base": 110})
    cells = _cells(rows, q.harmonised, q.id, "ranking", "respondent")
    chart = draw_chart(ChartSpec("C01", "ranking", q.id, "Classement"), cells=cells, figures=None, codebook=codebook,
                       edition="2017", synthetic=False)
    texts = _texts(chart.svg)
    assert "40,0\u202f%" in texts and "80,0\u202f%" in texts
    assert "Classé en 1re position" in texts and "Classé parmi les 3 premiers" in texts
    assert "n\u00a0=\u00a0110 répondants" in chart.caption


def test_bands_show_cumulative_reading(codebook):
    q = codebook.question("C03")
    shares = [33.3, 6.7, 26.7, 20.0, 13.3]
    rows = [{"key": c.key, "label": c.label, "value": v} for c, v in zip(q.codes, shares, strict=True)]
    rows.append({"key": "nsp", "label": NSP_LABEL, "value": 0.0})
    cum = np.cumsum(shares)
    rows += [{"key": c.key, "label": f"Cumul jusqu'à « {c.label} »", "value": v, "statistic": "cumulative_share"}
             for c, v in zip(q.codes, cum, strict=True)]
    cells = _cells(rows, q.harmonised, q.id, "band")
    chart = draw_chart(ChartSpec("C03", "bands", q.id, "Quel est le coût du dispositif ?"), cells=cells, figures=None,
                       codebook=codebook, edition="2017", synthetic=True)
    texts = _texts(chart.svg)
    assert "40,0\u202f%" in texts  # cumulative « moins de 5 000 € »
    assert "100,0\u202f%" in texts
    assert any(t.startswith("Cumul jusqu'à cette tranche") for t in texts)
    # one base for the shares and the cumulative shares, « ne se prononce pas » included
    assert "ne se prononce pas" in chart.caption and "compris" in chart.caption and "En cumulé" in chart.alt


def test_missing_cells_raise(codebook):
    with pytest.raises(ChartError, match="no « Ensemble » cells"):
        draw_chart(
            ChartSpec("C02", "bars", "Q18", "Quel service gère le dispositif ?"),
            cells=_cells([{"key": "a", "label": "A", "value": 1.0}], "other", "Q99", "single"),
            figures=None,
            codebook=codebook,
            edition="2017",
            synthetic=False,
        )


def test_wrap_label_never_cuts_words():
    label = "Une stratégie globale, le numérique comme ressource transversale"
    wrapped = wrap_label(label, 20)
    assert wrapped.replace("\n", " ") == label
    assert all(len(line) <= 20 for line in wrapped.split("\n"))


def test_check_layout_detects_clipped_text():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.text(1.3, 0.5, "un libellé qui déborde largement de la figure", transform=ax.transAxes)
    with pytest.raises(ChartError, match="clipped"):
        check_layout(fig, "T")
    plt.close(fig)


def test_accessible_svg_escapes_and_prefixes_ids():
    svg = ('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg" id="chart-Z-svg">'
           '<defs><clipPath id="p1"><rect/></clipPath></defs><g clip-path="url(#p1)"/></svg>')
    out = accessible_svg(svg, "Z", "Titre <b>", 'Alt "x" & <y>')
    assert out.startswith("<svg") and "<?xml" not in out and "DOCTYPE" not in out
    assert "<title id=\"chart-Z-title\">Titre &lt;b&gt;</title>" in out
    assert "&lt;y&gt;" in out and "<y>" not in out
    assert 'id="chart-Z-p1"' in out and "url(#chart-Z-p1)" in out


def test_all_charts_deterministic_palette_and_manifest(fixture, codebook, published, tmp_path):
    cells = read_cells(fixture["cells"])
    figures = read_figures(fixture["figures"])
    a = draw_charts(
        cells=cells, figures=figures, codebook=codebook, published=published, edition="2017", synthetic=True
    )
    b = draw_charts(
        cells=cells, figures=figures, codebook=codebook, published=published, edition="2017", synthetic=True
    )
    assert [c.svg for c in a] == [c.svg for c in b]
    allowed = {v.lower() for v in OKABE_ITO.values()} | {
        "#9a9a9a",
        "#ffffff",
        "#555555",
        "#1a1a1a",
        "#888888",
        "#000000",
    }
    for c in a:
        assert "<dc:date>" not in c.svg  # no date in the metadata
        colours = {m.lower() for m in re.findall(r"fill(?::\s*|=\")(#[0-9a-fA-F]{6})", c.svg)}
        assert colours <= allowed, (c.id, colours - allowed)
        assert "Données synthétiques" in c.svg
        assert "n\u00a0=" in c.caption
    # C01–C08 in published order first
    assert [c.id for c in a[:8]] == [f"C0{i}" for i in range(1, 9)]
    path = write_charts(a, tmp_path / "charts", "2017", True)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert manifest["synthetic"] is True
    for entry in manifest["charts"]:
        assert {"id", "title", "alt", "caption", "file"} <= set(entry)
        assert (tmp_path / "charts" / entry["file"]).is_file()
    assert load_manifest(tmp_path / "charts")["charts"][0]["svg"].startswith("<svg")


def test_charts_read_only_the_ensemble_rows(fixture, codebook, published):
    """The values drawn are exactly the « Ensemble » share cells (no recount)."""
    cells = read_cells(fixture["cells"])
    charts = {c.id: c for c in draw_charts(cells=cells, figures=read_figures(fixture["figures"]), codebook=codebook,
                                           published=published, edition="2017", synthetic=True)}
    sel = cells[
        (cells["harmonised"] == "tool_builder") & (cells["dimension"] == "ensemble") & (cells["statistic"] == "share")
    ]
    texts = _texts(charts["C06"].svg)
    for r in sel.itertuples():
        if r.suppressed:
            continue
        assert fr.format_percent(r.value, 1) in texts


def test_run_plot_charts_writes_outputs(fixture, tmp_path):
    out = tmp_path / "charts"
    run_plot_charts("2017", fixture["config"], {
        "tables": str(fixture["tables"]), "figures": str(fixture["figures"]), "codebook": str(CODEBOOK),
        "published": str(PUBLISHED)}, {"charts": str(out)})
    manifest = json.loads((out / "charts.json").read_text(encoding="utf-8"))
    assert len(list(out.glob("*.svg"))) == len(manifest["charts"]) >= 8
