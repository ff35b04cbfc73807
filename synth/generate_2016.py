#!/usr/bin/env python3
"""Deterministic generator of the reconstructed 2016 raw export.

The microdata of the 1st edition (2016) of the « Baromètre de la démocratie
locale numérique » is not public. This script writes a *synthetic*
reconstruction of the survey export, built so that every numeric figure
published in 2016 (``references/published_2016.yaml``) comes out of the real
pipeline within its bounds, once the contradictions of the published figures are
resolved as the methods note says (``data/raw/2016/README.md``):

``barometre_2016_questionnaire.sav``
    One row per submission, metadata and fake identifiers first, then every raw
    column named by ``codebooks/2016.yaml`` (three tool blocks side by side);
    variable labels, value labels, user-missing code 99, measurement levels.
    Eight « dirty » rows (2 tests, 4 unfinished questionnaires, 2 duplicate
    submissions) are added to the 194 kept respondents for the cleaning to remove.

The 2016 edition has no participatory-budget inventory.

Everything is derived from one fixed seed (:data:`SEED`, first day of the 2016
fieldwork): each component draws from its own generator seeded with
``[SEED, crc32(component name)]``. Two runs give identical bytes (the SPSS
header time-stamp is pinned to the end of the fieldwork). The generator reads
the codebook with PyYAML and imports nothing from ``src/barometre``.

Usage::

    python synth/generate_2016.py --out data/raw/2016
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sav_export import (
    MISSING,
    NSP,
    blank_after,
    component_rng,
    different_answer,
    fake_identity,
    load_codebook,
    multiple_rows,
    questions_by_name,
    random_answer,
    sav_metadata,
    schedule,
    shuffled_values,
    survey_frame,
    survey_layout,
    text_answers,
    write_sav,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "raw" / "2016"
DEFAULT_CODEBOOK = REPO_ROOT / "codebooks" / "2016.yaml"

SEED = 20160117
"""Seed of every random draw (first day of the 2016 fieldwork)."""

SAV_NAME = "barometre_2016_questionnaire.sav"
FIELDWORK_START = pd.Timestamp("2016-01-17")
FIELDWORK_END = pd.Timestamp("2016-03-04 18:00:00")
SAV_HEADER_DATE = b"04 Mar 16"
SAV_HEADER_TIME = b"18:00:00"
LAST_PAGE = 4
"""Pages = the four parts of the questionnaire; ``lastpage == 4`` = finished."""

# --------------------------------------------------------------------------- targets
# 194 kept respondents, one per collectivity (« 194 collectivités »).
COLLECTIVITY_TYPES = {"commune": 99, "intercommunalite": 52, "departement": 23, "region": 10,
                      "metropole": 8, "autre": 2}
"""R02: 51 / 27 / 12 / 5 / 4 % of 194; the 2 « autres » (1 %) are regional nature parks (PNR)."""
TYPED_OTHER = (
    ("autre", "Parc naturel régional"),
    ("autre", "Syndicat mixte de parc naturel régional"),
    ("commune", "Mairie"),
    ("region", "Conseil régional"),
    ("departement", " conseil departemental"),  # leading space: a trailing one would not survive SPSS padding
)
"""Respondents who ticked « Autre » and typed their collectivity type (the last three are recoded)."""
COLLECTIVITY_NAMES = {
    "commune": "Commune fictive {:03d}",
    "intercommunalite": "Intercommunalité fictive {:02d}",
    "departement": "Département fictif {:02d}",
    "region": "Région fictive {:02d}",
    "metropole": "Métropole fictive {:02d}",
    "autre": "Parc naturel régional fictif {:02d}",
}
POPULATION_WEIGHTS = {
    "commune": [0.08, 0.30, 0.40, 0.17, 0.05],
    "intercommunalite": [0.0, 0.10, 0.50, 0.35, 0.05],
    "departement": [0.0, 0.0, 0.0, 0.30, 0.70],
    "region": [0.0, 0.0, 0.0, 0.0, 1.0],
    "metropole": [0.0, 0.0, 0.0, 0.0, 1.0],
    "autre": [0.0, 0.20, 0.50, 0.30, 0.0],
}
POPULATION_NSP = 2
ROLES = {"elu": 58, "agent": 136}

TOOLS_PER_COLLECTIVITY = {1: 34, 2: 9, 3: 1}
"""44 equipped collectivities, 55 tools: 34 × 1 + 9 × 2 + 1 × 3 (see the README on « 10 × 2 + 1 × 3 »)."""
TOOL_TARGETS: dict[str, dict[Any, int]] = {
    "tool_type": {"donnees": 24, "concertation": 10, "sondage": 7, "budget_participatif": 3,
                  "cartographie_participative": 4, "application_signalement": 4, "autre": 3},
    "tool_launch_year": {2009: 1, 2010: 2, 2011: 3, 2012: 4, 2013: 8, 2014: 12, 2015: 15, 2016: 8, MISSING: 2},
}
TOOL_TYPE_OTHER = ("Pétition en ligne", "Réseau social institutionnel", "Visioconférence citoyenne")
TOOL_NAME_STEMS = {
    "donnees": "Portail open data", "concertation": "Plateforme de concertation", "sondage": "Consultation en ligne",
    "budget_participatif": "Budget participatif en ligne", "cartographie_participative": "Carte participative",
    "application_signalement": "Application de signalement",
}
TOOL_COMMENTS = (
    "Contact : referent.opendata@example.org pour les jeux de données.",
    "Renseignements au 01 23 45 67 89 (service communication).",
    'Portail "clé en main" ; mise à jour mensuelle ; 40 jeux publiés.',
    "Lancé avec la refonte du site internet.\nPeu de retours des habitants.",
    "Outil testé sur un quartier avant extension.",
    "Mutualisé avec l'intercommunalité.",
    "Nous testons un questionnaire en ligne pour le budget 2017.",
    "Consultation ouverte pendant un mois sur le PLU.",
)

SATISFACTION = {"oui": 22, "non": 17, NSP: 4, MISSING: 1}
"""F03 among the 44 equipped: 22 / 43 who answered = 51,2 % (one left it blank)."""
STRENGTHENS_EQUIPPED = {"oui": 36, "non": 3, NSP: 1, MISSING: 4}
STRENGTHENS_OTHERS = {"oui": 116, "non": 22, NSP: 12}
"""F01: 152 / 190 = 80,0 % of all who answered; 36 / 40 = 90,0 % of the equipped who answered."""
EFFECTS_ANSWERED = 158
EFFECTS_NSP_ONLY = 3
EFFECTS = {"cout_supplementaire": 89, "gain_de_temps": 92, "support_communication": 125,
           "charge_travail": 64, "competences": 58}
"""F02 on the 158 who ticked at least one box: 89 → 56,3 %, 92 → 58,2 %, 125 → 79,1 %."""
LEVERS_ANSWERED = 171
LEVERS = {"strategie_globale": 98, "portage_politique": 84, "moyens_financiers": 77, "competences": 69,
          "partenariats": 31, "open_data": 52}
BARRIERS_ANSWERED = 168
BARRIERS = {"manque_moyens": 101, "manque_competences": 72, "faible_mobilisation": 66,
            "fracture_numerique": 49, "risques_juridiques": 18}
OPEN_DATA = {"oui": 46, "non": 131, NSP: 17}
"""Open-data portal (not published); every collectivity describing an open-data tool answers « oui »."""
DATASETS = {"lt10": 15, "from_10_to_50": 17, "from_50_to_100": 6, "gt100": 4, NSP: 4}


# --------------------------------------------------------------------------- respondents
def rng(component: str) -> np.random.Generator:
    """Generator of one component (see :func:`sav_export.component_rng`)."""
    return component_rng(SEED, component)


def plan_collectivities(r: np.random.Generator) -> list[dict]:
    """The 194 collectivities (one respondent each), in random order.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``typed_other`` (text typed under « Autre » or ``""``),
        ``population`` (band key), ``role``, ``serial`` (1..194).
    """
    band_keys = ["lt3500", "from_3500_to_10000", "from_10000_to_50000", "from_50000_to_200000", "gt200000"]
    colls = []
    for ctype, n in COLLECTIVITY_TYPES.items():
        texts = [text for t, text in TYPED_OTHER if t == ctype]
        typed = dict(zip(r.choice(n, size=len(texts), replace=False).tolist(), texts, strict=True))
        for i in range(n):
            colls.append({
                "name": COLLECTIVITY_NAMES[ctype].format(i + 1), "type": ctype,
                "typed_other": typed.get(i, ""),
                "population": band_keys[int(r.choice(5, p=POPULATION_WEIGHTS[ctype]))],
            })
    roles = shuffled_values(r, ROLES)
    for c, role in zip(colls, roles, strict=True):
        c["role"] = role
    for i in r.choice(len(colls), size=POPULATION_NSP, replace=False).tolist():
        colls[i]["population"] = NSP
    order = r.permutation(len(colls))
    return [dict(colls[j], serial=k + 1) for k, j in enumerate(order)]


def tool_answers(r: np.random.Generator) -> list[dict]:
    """The 55 tools (type, name, launch year, comment) with exact target counts."""
    n = sum(TOOL_TARGETS["tool_type"].values())
    columns = {name: shuffled_values(r, counts) for name, counts in TOOL_TARGETS.items()}
    tools = [{name: values[t] for name, values in columns.items()} for t in range(n)]
    other_texts = iter(TOOL_TYPE_OTHER)
    for t, tool in enumerate(tools):
        kind = tool["tool_type"]
        tool["tool_type__other"] = next(other_texts) if kind == "autre" else ""
        tool["tool_name"] = f"{TOOL_NAME_STEMS.get(kind, tool['tool_type__other'])} (outil fictif {t + 1:02d})"
    for tool, text in zip(tools, text_answers(r, n, list(TOOL_COMMENTS)), strict=True):
        tool["tool_comment"] = text
    return tools


def distribute_tools(r: np.random.Generator, n_colls: int, tools: list[dict]) -> list[list[dict]]:
    """Give the 55 tools to 44 collectivities (34 describe one, 9 two, 1 three)."""
    chosen = sorted(r.choice(n_colls, size=sum(TOOLS_PER_COLLECTIVITY.values()), replace=False).tolist())
    counts = shuffled_values(r, TOOLS_PER_COLLECTIVITY)
    out: list[list[dict]] = [[] for _ in range(n_colls)]
    cursor = 0
    for i, k in zip(chosen, counts, strict=True):
        out[i] = tools[cursor:cursor + k]
        cursor += k
    assert cursor == len(tools)
    return out


def by_group(r: np.random.Generator, members: list[int], counts: dict[Any, int], n: int) -> list[Any]:
    """Answers with exact counts for the rows ``members`` of ``n`` rows (``MISSING`` elsewhere)."""
    out: list[Any] = [MISSING] * n
    for i, value in zip(members, shuffled_values(r, counts), strict=True):
        out[i] = value
    return out


def open_data_answers(r: np.random.Generator, tools: list[list[dict]]) -> list[Any]:
    """Open-data portal: « oui » for every collectivity describing an open-data tool, exact totals."""
    n = len(tools)
    forced = [i for i in range(n) if any(t["tool_type"] == "donnees" for t in tools[i])]
    rest = [i for i in range(n) if i not in forced]
    counts = dict(OPEN_DATA, oui=OPEN_DATA["oui"] - len(forced))
    out: list[Any] = ["oui" if i in forced else None for i in range(n)]
    for i, value in zip(rest, shuffled_values(r, counts), strict=True):
        out[i] = value
    return out


def kept_rows(questions: dict[str, dict]) -> list[dict]:
    """The 194 respondents the cleaning must keep, with all their answers (internal form)."""
    colls = plan_collectivities(rng("collectivities"))
    n = len(colls)
    tools = distribute_tools(rng("describers"), n, tool_answers(rng("tools")))
    equipped = [i for i in range(n) if tools[i]]
    others = [i for i in range(n) if not tools[i]]
    satisfaction = by_group(rng("satisfaction"), equipped, SATISFACTION, n)
    strengthens = by_group(rng("strengthens"), equipped, STRENGTHENS_EQUIPPED, n)
    for i, value in zip(others, shuffled_values(rng("strengthens_others"), STRENGTHENS_OTHERS), strict=True):
        strengthens[i] = value
    effects = multiple_rows(rng("effects"), n, EFFECTS_ANSWERED, EFFECTS, EFFECTS_NSP_ONLY)
    levers = multiple_rows(rng("levers"), n, LEVERS_ANSWERED, LEVERS, nsp_key=None)
    barriers = multiple_rows(rng("barriers"), n, BARRIERS_ANSWERED, BARRIERS, nsp_key=None)
    portal = open_data_answers(rng("open_data"), tools)
    with_portal = [i for i in range(n) if portal[i] == "oui"]
    datasets = by_group(rng("datasets"), with_portal, DATASETS, n)
    identity_rng = rng("identities")
    rows = []
    for i, c in enumerate(colls):
        a = {
            "collectivity_type": "autre" if c["typed_other"] else c["type"],
            "collectivity_type__other": c["typed_other"],
            "population_band": c["population"], "role": c["role"],
            "tools_described": ["aucun", "un", "deux", "trois"][len(tools[i])],
            "citizen_involvement_satisfaction": satisfaction[i],
            "open_data_portal": portal[i], "open_data_datasets_band": datasets[i],
            "digital_strengthens_participation": strengthens[i], "digital_effects": effects[i],
            "digital_levers": levers[i], "digital_barriers": barriers[i],
        }
        unknown = {k.split("__")[0] for k in a} - set(questions)
        if unknown:
            raise KeyError(f"answers to questions missing from the codebook: {sorted(unknown)}")
        rows.append({"kind": "kept", "serial": c["serial"], "coll_name": c["name"],
                     "identity": fake_identity(identity_rng, f"{c['serial']:03d}", c["serial"]),
                     "answers": a, "tools": tools[i], "lastpage": LAST_PAGE})
    add_out_of_filter(rng("out_of_filter"), rows)
    return rows


def add_out_of_filter(r: np.random.Generator, rows: list[dict]) -> None:
    """Dirt the cleaning must erase: answers given outside a question's filter, in place.

    One respondent without tools answers the satisfaction question (asked only
    of equipped collectivities); one respondent without an open-data portal
    gives a number of datasets.
    """
    no_tools = [k for k, row in enumerate(rows) if not row["tools"]]
    rows[int(r.choice(no_tools))]["answers"]["citizen_involvement_satisfaction"] = "non"
    no_portal = [k for k, row in enumerate(rows) if row["answers"]["open_data_portal"] == "non"]
    rows[int(r.choice(no_portal))]["answers"]["open_data_datasets_band"] = "lt10"


# --------------------------------------------------------------------------- dirty rows
def random_respondent(
    r: np.random.Generator, questions: dict[str, dict], ctype: str, n_tools: int
) -> tuple[dict, list[dict]]:
    """Random complete answers of one respondent, filters respected."""
    answers: dict[str, Any] = {}
    tools: list[dict] = [{} for _ in range(n_tools)]
    for name, q in questions.items():
        if q["level"] == "tool":
            for tool in tools:
                tool[name] = random_answer(r, q)
        else:
            answers[name] = random_answer(r, q)
    answers.update(collectivity_type=ctype, tools_described=["aucun", "un", "deux", "trois"][n_tools])
    if not n_tools:
        answers["citizen_involvement_satisfaction"] = MISSING
    if answers["open_data_portal"] != "oui":
        answers["open_data_datasets_band"] = MISSING
    for tool in tools:
        tool["tool_launch_year"] = int(r.integers(2010, 2017))
    return answers, tools


def dirty_rows(r: np.random.Generator, questions: dict[str, dict], kept: list[dict]) -> list[dict]:
    """The 8 rows the cleaning must remove: 2 tests, 4 unfinished questionnaires, 2 duplicates."""
    rows: list[dict] = []
    tests = (
        ("TEST", "commune", {"IDENT_NOM": "FICTIF-T1", "IDENT_PRENOM": "Camille",
                             "IDENT_EMAIL": "essai.lancement@example.org", "IDENT_TEL": "06 00 00 99 01"}),
        ("Collectivité de démonstration", "intercommunalite", {
            "IDENT_NOM": "FICTIF-T2", "IDENT_PRENOM": "Alex",
            "IDENT_EMAIL": "test@example.org", "IDENT_TEL": "06 00 00 99 02"}),
    )
    for coll_name, ctype, identity in tests:
        answers, tools = random_respondent(r, questions, ctype, int(r.integers(0, 2)))
        answers["role"] = "agent"
        rows.append({"kind": "test", "coll_name": coll_name, "identity": identity,
                     "answers": answers, "tools": tools, "lastpage": LAST_PAGE})
    incomplete = (("Commune fictive 100", "commune", 1), ("Commune fictive 101", "commune", 2),
                  ("Département fictif 24", "departement", 2), ("Commune fictive 102", "commune", 3))
    for k, (coll_name, ctype, lastpage) in enumerate(incomplete):
        answers, tools = random_respondent(r, questions, ctype, 1 if lastpage > 1 else 0)
        answers["role"] = "elu" if k % 2 == 0 else "agent"
        blank_after(answers, tools, questions, lastpage)
        serial = 195 + k
        rows.append({"kind": "incomplete", "coll_name": coll_name,
                     "identity": fake_identity(r, f"{serial:03d}", serial),
                     "answers": answers, "tools": tools, "lastpage": lastpage})
    without_tools = [row for row in kept if not row["tools"]]
    with_one_tool = [row for row in kept if len(row["tools"]) == 1]
    twins = [without_tools[int(r.integers(len(without_tools)))], with_one_tool[int(r.integers(len(with_one_tool)))]]
    changes = (("digital_strengthens_participation", "open_data_portal"), ("digital_strengthens_participation",))
    tool_changes = ((), ("tool_type",))
    for twin, resp_changes, tchanges in zip(twins, changes, tool_changes, strict=True):
        answers = dict(twin["answers"])
        tools = [dict(t) for t in twin["tools"]]
        for name in resp_changes:
            answers[name] = different_answer(r, questions[name], answers[name])
        if answers["open_data_portal"] != "oui":
            answers["open_data_datasets_band"] = MISSING
        for tool in tools:
            for name in tchanges:
                tool[name] = different_answer(r, questions[name], tool[name])
                tool["tool_type__other"] = ""
        rows.append({"kind": "duplicate", "coll_name": twin["coll_name"], "identity": dict(twin["identity"]),
                     "answers": answers, "tools": tools, "lastpage": LAST_PAGE, "twin": twin["serial"]})
    return rows


# --------------------------------------------------------------------------- assembly
def build_survey(codebook: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The raw survey table (202 rows) and the keyword arguments of ``write_sav``."""
    questions = questions_by_name(codebook)
    layout = survey_layout(codebook)
    kept = kept_rows(questions)
    rows = schedule(rng("schedule"), kept + dirty_rows(rng("dirt"), questions, kept),
                    FIELDWORK_START, FIELDWORK_END, LAST_PAGE, first_coll="TEST")
    metadata = sav_metadata(
        layout, questions, "Barometre 2016 - reconstitution synthetique",
        [f"Donnees SYNTHETIQUES (synth/generate_2016.py, graine {SEED}).",
         "Ce ne sont pas les reponses reelles de 2016.",
         "Voir data/raw/2016/README.md."])
    return survey_frame(rows, layout, questions), metadata


def generate(out_dir: str | Path, codebook_path: str | Path = DEFAULT_CODEBOOK) -> dict[str, Path]:
    """Write the 2016 raw export into ``out_dir`` (created if needed); returns ``{"survey": path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame, metadata = build_survey(load_codebook(codebook_path))
    path = out / SAV_NAME
    write_sav(frame, metadata, path, SAV_HEADER_DATE, SAV_HEADER_TIME)
    return {"survey": path}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Génère la reconstitution synthétique de l'export brut 2016.")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="dossier de sortie (défaut : data/raw/2016)")
    parser.add_argument("--codebook", default=str(DEFAULT_CODEBOOK), help="codebook 2016 (YAML)")
    args = parser.parse_args(argv)
    for name, path in generate(args.out, args.codebook).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
