#!/usr/bin/env python3
"""Deterministic generator of the reconstructed 2017 raw exports.

The microdata of the 2017 « Baromètre de la démocratie locale numérique » is not
public. This script writes a *synthetic* reconstruction of the two raw exports
the pipeline reads, built so that every figure published in 2017
(``references/published_2017.yaml``) comes out of the real pipeline within its
bounds:

``barometre_2017_limesurvey.sav``
    The questionnaire, as LimeSurvey exports it to SPSS: one row per
    submission, metadata and (fake) identifiers first, then every raw column
    named by ``codebooks/2017.yaml``; variable labels, value labels, user-missing
    code 99 and measurement levels included. Eleven « dirty » rows (tests,
    incomplete responses, duplicate submissions) are added to the 121 kept
    respondents, for the cleaning phase to remove.
``inventaire_budgets_participatifs_2017.csv``
    A researcher's spreadsheet inventory of the 61 territories with a
    participatory budget: cp1252, ``;`` separator, decimal comma, CRLF line ends,
    with stray spaces and case in the Oui/Non cells.

Everything is derived from one fixed seed (:data:`SEED`): each component draws
from its own ``numpy`` Generator seeded with ``[SEED, crc32(component name)]``,
so changing one component leaves the others unchanged. Two runs give identical
bytes (the creation time-stamp that ReadStat writes in the SPSS header is pinned,
see :func:`pin_sav_header`).

The generator reads the codebook (wordings, codes, raw column names) with
PyYAML and imports nothing from ``src/barometre``: the data must not depend on
the code that is meant to check it.

Usage::

    python synth/generate_2017.py --out data/raw/2017

The methods note ``data/raw/2017/README.md`` documents the targets and every
reading of an ambiguous published figure.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyreadstat
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "raw" / "2017"
DEFAULT_CODEBOOK = REPO_ROOT / "codebooks" / "2017.yaml"

SEED = 20170615
"""Seed of every random draw (first day of the 2017 fieldwork)."""

SAV_NAME = "barometre_2017_limesurvey.sav"
CSV_NAME = "inventaire_budgets_participatifs_2017.csv"

FIELDWORK_START = pd.Timestamp("2017-06-15")
FIELDWORK_END = pd.Timestamp("2017-10-06 18:00:00")

# Pinned SPSS header time-stamp (end of fieldwork), see pin_sav_header().
SAV_HEADER_DATE = b"06 Oct 17"
SAV_HEADER_TIME = b"18:00:00"
SAV_DATE_OFFSET = 92   # char creation_date[9]  ('dd mmm yy')
SAV_TIME_OFFSET = 101  # char creation_time[8]  ('hh:mm:ss')

NSP = "nsp"
"""Answer key standing for the user-missing code 99 (« ne se prononce pas »)."""
NSP_CODE = 99
NSP_VALUE_LABEL = "Ne sait pas / ne se prononce pas"
MISSING = None
"""Answer value standing for system-missing (question skipped or not shown)."""

LAST_PAGE = 4
"""LimeSurvey pages = questionnaire parts 1 to 4; ``lastpage == 4`` = finished."""

# --------------------------------------------------------------------------- targets
# Respondents kept after cleaning: 121, from 98 distinct collectivities.
COLLECTIVITY_TYPES = {"commune": 65, "intercommunalite": 17, "metropole": 9,
                      "departement": 6, "service_etat": 1}
PAIRED_COLLECTIVITIES = {"commune": 14, "intercommunalite": 4, "metropole": 4, "departement": 1}
"""Collectivities with two respondents (one élu + one agent): 23."""
SINGLE_ELECTED = {"commune": 6, "intercommunalite": 1, "departement": 1}
"""Single-respondent collectivities answered by an élu (8; the other 67 by an agent)."""
TYPED_OTHER = (
    ("departement", "Conseil départemental"),
    ("departement", "Département"),
    ("departement", " conseil departemental"),  # leading space: SPSS pads strings, a trailing one would be lost
    ("commune", "Mairie"),
    ("intercommunalite", "Communauté de communes"),
)
"""Respondents who ticked « Autre » and typed their collectivity type by hand."""
COLLECTIVITY_NAMES = {
    "commune": "Commune fictive {:03d}",
    "intercommunalite": "Intercommunalité fictive {:02d}",
    "metropole": "Métropole fictive {:02d}",
    "departement": "Département fictif {:02d}",
    "service_etat": "Service de l'État fictif {:02d}",
}
POPULATION_WEIGHTS = {
    # population band keys of Q02, in codebook order
    "commune": [0.14, 0.26, 0.36, 0.19, 0.05],
    "intercommunalite": [0.0, 0.12, 0.48, 0.35, 0.05],
    "metropole": [0.0, 0.0, 0.0, 0.0, 1.0],
    "departement": [0.0, 0.0, 0.0, 0.35, 0.65],
    "service_etat": [0.0, 0.0, 0.0, 0.0, 1.0],
}
POPULATION_NSP = 2

FUNCTION_ELECTED = {"maire": 7, "adjoint_maire": 8, "adjoint": 4, "conseiller_delegue": 5,
                    "conseiller": 3, "autre": 1, MISSING: 3}
FUNCTION_STAFF = {"direction_generale": 8, "charge_mission": 38, "directeur": 20,
                  "chef_projet": 12, "technicien": 7, "autre": 5}
STAFF_SERVICE = {"direction_generale": 8, "participation": 30, "communication": 28,
                 "numerique": 12, "amenagement": 5, "autre": 7}

LEVERS_ANSWERED = 110
LEVERS_FIRST_STRATEGY = 58
LEVERS_FIRST_WEIGHTS = {"portage_politique": 0.30, "moyens_financiers": 0.18, "competences": 0.22,
                        "partenariats": 0.05, "open_data": 0.10, "evaluation": 0.15}
LEVERS_REST_WEIGHTS = {"strategie_globale": 3.0, "portage_politique": 2.2, "moyens_financiers": 1.4,
                       "competences": 1.6, "partenariats": 0.5, "open_data": 0.8, "evaluation": 1.0}

CONTRIBUTIONS_ANSWERED = 115
CONTRIBUTIONS_NSP_ONLY = 3
CONTRIBUTIONS = {"transparence": 104, "valoriser": 103, "adhesion": 102, "qualite_decisions": 105,
                 "expertise_citoyenne": 80, "nouveaux_publics": 70, "inclusion": 60}

PARTNERSHIP = {"tres_important": 12, "assez_important": 40, "peu_important": 45,
               "pas_important": 15, NSP: 8, MISSING: 1}

TOOLS_PER_DESCRIBER = {1: 29, 2: 5, 3: 2}
"""36 respondents (one per collectivity) describe 45 tools."""

# Open-data portal, decided per collectivity for pairs (both agree, or the élu
# does not know) and per respondent otherwise: oui 25, non 80, nsp 16.
OPEN_DATA_PAIRS = {("oui", "oui"): 5, ("non", "non"): 15, (NSP, "non"): 3}
OPEN_DATA_SINGLES = {"oui": 15, "non": 47, NSP: 13}

TOOL_TARGETS: dict[str, dict[Any, int]] = {
    "tool_type": {"concertation": 18, "sondage": 8, "budget_participatif": 5,
                  "cartographie_participative": 5, "plateforme_interactive": 1, "forum": 1,
                  "donnees": 1, "autre": 6},
    "tool_launch_year": {2015: 12, 2016: 18, 2017: 13, MISSING: 2},
    "tool_builder": {"prestataire": 34, "interne": 6, "mixte": 3, "association": 1, NSP: 1},
    "tool_animation": {"interne": 28, "prestataire": 7, "partage": 6, "sans_objet": 2, NSP: 2},
    "tool_moderation": {"interne": 26, "prestataire": 8, "partage": 5, "sans_objet": 4, NSP: 2},
    "tool_synthesis": {"interne": 25, "prestataire": 9, "partage": 6, "sans_objet": 3, NSP: 2},
    "tool_managing_service": {"communication": 15, "participation": 13, "numerique": 6,
                              "direction_generale": 5, "amenagement": 4, "autre": 2},
    "tool_cost_band": {"lt1000": 15, "from_1000_to_5000": 3, "from_5000_to_20000": 12,
                       "from_20000_to_50000": 9, "gt50000": 6},
    "tool_lasting": {"oui": 30, "non": 12, NSP: 3},
    "tool_continuity": {"oui": 34, "non": 9, NSP: 2},
    "tool_offline_link": {"oui": 40, "non": 4, NSP: 1},
    "tool_contributors_band": {"lt100": 12, "from_100_to_500": 13, "from_500_to_1000": 8,
                               "from_1000_to_5000": 7, "gt5000": 3, NSP: 2},
    "tool_objectives_reached": {"pas_du_tout": 2, "plutot_pas": 9, "plutot_atteints": 14,
                                "tout_a_fait_atteints": 4, NSP: 16},
    "tool_usage_judgement": {"faible": 14, "normal": 14, "fort": 6, NSP: 7, MISSING: 4},
}
TOOL_OBJECTIVES = {"valoriser": 40, "informer": 38, "recueillir_avis": 30, "remontee_idees": 26,
                   "pedagogie": 22, "sondage_vote": 17, "coconstruction": 8, "evaluation": 5,
                   "echange_arguments": 4, "autre": 3}
LOW_USAGE_NSP_ONLY = 3
LOW_USAGE_REASONS = {"communication": 6, "moyens_animation": 5, "sujet": 4, "fracture_numerique": 3,
                     "ergonomie": 2, "defiance": 2, "autre": 1}

# --------------------------------------------------------------------------- French free text
FIRST_NAMES = ("Camille", "Dominique", "Claude", "Alex", "Sacha", "Charlie", "Morgan", "Lou",
               "Maxime", "Stéphane", "Andréa", "Noa", "Eden", "Jordan", "Gaël", "Yannick")
FUNCTION_ELECTED_OTHER = ("Présidente de commission extra-municipale",)
FUNCTION_STAFF_OTHER = ("Assistante de direction", "Médiateur numérique", "Apprentie",
                        "Coordinateur de quartier", "Responsable de la vie associative")
STAFF_SERVICE_OTHER = ("Vie associative", "Politique de la ville", "Culture", "Jeunesse",
                       "Développement durable", "Relations aux usagers", "Affaires juridiques")
TOOL_TYPE_OTHER = ("Application de signalement", "Pétition en ligne", "Boîte à idées numérique",
                   "Réseau social institutionnel", "Questionnaire papier et en ligne",
                   "Visioconférence citoyenne")
TOOL_SERVICE_OTHER = ("Vie associative", "Environnement")
TOOL_OBJECTIVES_OTHER = ("Mobiliser les jeunes", "Recruter des bénévoles",
                         "Tester un outil avant de le généraliser")
LOW_USAGE_OTHER = ("Période estivale peu propice",)
TOOL_NAME_STEMS = {
    "concertation": "Plateforme de concertation", "sondage": "Sondage en ligne",
    "budget_participatif": "Budget participatif en ligne",
    "cartographie_participative": "Carte participative", "plateforme_interactive": "Plateforme interactive",
    "forum": "Forum citoyen", "donnees": "Portail de données",
}
TOOL_COMMENTS_SPECIAL = (
    'Le nom officiel est "Parlons-en !" ; les habitants disent « la plateforme ».\n'
    "À revoir pour la prochaine édition.",
    "Contact : referent.outil@example.org pour toute question sur le dispositif.",
    "Pour plus d'informations, appeler le service au 01 23 45 67 89.",
    "Bilan mitigé :\n- peu de contributions en ligne ;\n- beaucoup en réunion publique.",
)
TOOL_COMMENTS_PLAIN = (
    'Outil "clé en main" fourni par le prestataire ; licence annuelle.',
    "Modération a posteriori, aucune contribution supprimée.",
    "Couplé à des ateliers dans les mairies de quartier.",
    "Dispositif expérimental, évaluation prévue fin 2017.",
    "Les résultats du vote ont été publiés en ligne.",
    "Difficile de mobiliser les jeunes ; nous testons les réseaux sociaux.",
    "Synthèse rédigée par le service et présentée en conseil.",
    "Outil mutualisé avec les communes voisines.",
    "Nous manquons de recul pour juger.",
    'Le terme "budget participatif" a parfois créé des attentes trop fortes.',
    "Carte collaborative des aménagements cyclables ; environ 300 points signalés.",
    "Participation concentrée sur la première semaine.",
)
OPEN_DATA_COMMENTS_SPECIAL = (
    "Budget primitif <script>alert(1)</script> et {{7*7}} jeux de données",
)
OPEN_DATA_COMMENTS_PLAIN = (
    "Budget, délibérations, équipements sportifs.",
    "Horaires des équipements ; subventions aux associations.",
    "Aucun pour l'instant.",
    "Marchés publics, arbres d'alignement, stationnement.",
    "Nous attendons la mutualisation avec l'intercommunalité.",
    "Données de fréquentation des bibliothèques.",
    'Jeux "budget" et "délibérations" ; le reste à l\'étude.',
    "Points d'apport volontaire, collecte des déchets.",
    "Liste des associations subventionnées.",
    "Équipements publics et leurs horaires\nÉtat civil (statistiques).",
)


# --------------------------------------------------------------------------- helpers
def component_rng(component: str) -> np.random.Generator:
    """Random generator of one component, derived from the fixed seed.

    Parameters
    ----------
    component
        Stable name of the component (e.g. ``"tools"``).

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator seeded with ``[SEED, crc32(component)]``.
    """
    return np.random.default_rng([SEED, zlib.crc32(component.encode("utf-8"))])


def load_codebook(path: str | Path) -> dict:
    """Read the codebook YAML (no validation: the pipeline does that).

    Parameters
    ----------
    path
        Path of ``codebooks/2017.yaml``.

    Returns
    -------
    dict
        The parsed codebook.
    """
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def questions_by_name(codebook: dict) -> dict[str, dict]:
    """Survey questions (respondent and tool level) keyed by harmonised name.

    Parameters
    ----------
    codebook
        The parsed codebook.

    Returns
    -------
    dict
        ``{harmonised: question}`` in questionnaire order.
    """
    return {q["harmonised"]: q for q in codebook["questions"] if q["level"] in ("respondent", "tool")}


def code_of(question: dict, key: Any) -> float:
    """Raw numeric code of an answer key.

    Parameters
    ----------
    question
        Codebook question.
    key
        Answer key, :data:`NSP` or :data:`MISSING`.

    Returns
    -------
    float
        The code, 99 for « ne se prononce pas », NaN for system-missing.
    """
    if key is MISSING:
        return float("nan")
    if key == NSP:
        return float(NSP_CODE)
    for code in question["codes"]:
        if code["key"] == key:
            return float(code["code"])
    raise KeyError(f"{question['id']}: no code with key {key!r}")


def code_keys(question: dict) -> list[str]:
    """Answer keys of a coded question, in codebook order.

    Parameters
    ----------
    question
        Codebook question with ``codes``.

    Returns
    -------
    list of str
        The ``key`` of each code.
    """
    return [c["key"] for c in question["codes"]]


def expand_counts(counts: dict[Any, int]) -> list[Any]:
    """Expand ``{value: count}`` into a list, in the mapping's order.

    Parameters
    ----------
    counts
        Target count of each value.

    Returns
    -------
    list
        Each value repeated ``count`` times.
    """
    return [value for value, n in counts.items() for _ in range(n)]


def shuffled_values(rng: np.random.Generator, counts: dict[Any, int]) -> list[Any]:
    """Values with exact target counts, in random order.

    Parameters
    ----------
    rng
        Random generator.
    counts
        Target count of each value.

    Returns
    -------
    list
        ``sum(counts.values())`` values, shuffled.
    """
    values = expand_counts(counts)
    return [values[i] for i in rng.permutation(len(values))]


def assign_multiple(rng: np.random.Generator, n_rows: int, counts: dict[str, int]) -> list[dict[str, int]]:
    """Tick options of a multiple-response question with exact column totals.

    Every row gets at least one option: each row first receives one option drawn
    in proportion to the ticks still to give, then the remaining ticks of each
    option go to random rows that do not have it yet.

    Parameters
    ----------
    rng
        Random generator.
    n_rows
        Number of answering rows.
    counts
        Number of rows ticking each option (each at most ``n_rows``; the total
        at least ``n_rows``).

    Returns
    -------
    list of dict
        One ``{option key: 0 or 1}`` per row.
    """
    keys = list(counts)
    total = np.array([counts[k] for k in keys], dtype=int)
    if total.sum() < n_rows or (total > n_rows).any():
        raise ValueError(f"infeasible option counts {counts} for {n_rows} rows")
    ticks = np.zeros((n_rows, len(keys)), dtype=int)
    remaining = total.copy()
    for row in rng.permutation(n_rows):
        k = rng.choice(len(keys), p=remaining / remaining.sum())
        ticks[row, k] = 1
        remaining[k] -= 1
    for k in range(len(keys)):
        free = np.flatnonzero(ticks[:, k] == 0)
        ticks[rng.choice(free, size=remaining[k], replace=False), k] = 1
    return [dict(zip(keys, map(int, row), strict=True)) for row in ticks]


def weighted_permutation(rng: np.random.Generator, weights: dict[str, float]) -> list[str]:
    """Order items by successive weighted draws (Plackett-Luce).

    Parameters
    ----------
    rng
        Random generator.
    weights
        Positive weight of each item.

    Returns
    -------
    list of str
        All items, the heavier ones tending to come first.
    """
    items = list(weights)
    p = np.array([weights[i] for i in items], dtype=float)
    order = rng.choice(len(items), size=len(items), replace=False, p=p / p.sum())
    return [items[i] for i in order]


def fake_phone(serial: int) -> str:
    """Obviously fake French mobile number built from a serial.

    Parameters
    ----------
    serial
        Respondent number (0-9999).

    Returns
    -------
    str
        ``06 00 00 00 17`` for serial 17.
    """
    digits = f"{serial:04d}"
    return f"06 00 00 {digits[:2]} {digits[2:]}"


def fake_identity(rng: np.random.Generator, label: str, serial: int) -> dict[str, str]:
    """Fake direct identifiers of one respondent.

    Parameters
    ----------
    rng
        Random generator (first name).
    label
        Suffix of the fake surname and e-mail (``"017"``).
    serial
        Number used for the fake phone number.

    Returns
    -------
    dict
        ``IDENT_NOM``, ``IDENT_PRENOM``, ``IDENT_EMAIL``, ``IDENT_TEL``.
    """
    return {
        "IDENT_NOM": f"FICTIF-{label}",
        "IDENT_PRENOM": FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))],
        "IDENT_EMAIL": f"repondant{label}@example.org",
        "IDENT_TEL": fake_phone(serial),
    }


# --------------------------------------------------------------------------- respondents
def plan_collectivities(rng: np.random.Generator) -> list[dict]:
    """The 98 collectivities of the kept respondents.

    Parameters
    ----------
    rng
        Random generator.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``paired`` (two respondents), ``typed_other`` (text
        typed under « Autre », or ``""``), ``single_role`` (role of the only
        respondent, ``None`` for pairs), ``population`` (band key).
    """
    band_keys = ["lt3500", "from_3500_to_10000", "from_10000_to_50000", "from_50000_to_200000", "gt200000"]
    colls: list[dict] = []
    for ctype, n in COLLECTIVITY_TYPES.items():
        idx = np.arange(n)
        paired = set(rng.choice(idx, size=PAIRED_COLLECTIVITIES.get(ctype, 0), replace=False).tolist())
        singles = [i for i in idx.tolist() if i not in paired]
        texts = [text for t, text in TYPED_OTHER if t == ctype]
        typed = dict(zip(rng.choice(singles, size=len(texts), replace=False).tolist(), texts, strict=True))
        elected = set(rng.choice(singles, size=SINGLE_ELECTED.get(ctype, 0), replace=False).tolist())
        for i in idx.tolist():
            colls.append({
                "name": COLLECTIVITY_NAMES[ctype].format(i + 1),
                "type": ctype,
                "paired": i in paired,
                "typed_other": typed.get(i, ""),
                "single_role": None if i in paired else ("elu" if i in elected else "agent"),
                "population": band_keys[int(rng.choice(5, p=POPULATION_WEIGHTS[ctype]))],
            })
    return colls


def plan_respondents(rng: np.random.Generator, colls: list[dict]) -> list[dict]:
    """The 121 kept respondents, with their collectivity and role.

    Parameters
    ----------
    rng
        Random generator.
    colls
        Output of :func:`plan_collectivities`.

    Returns
    -------
    list of dict
        ``serial`` (1..121, random order), ``coll`` (the collectivity dict),
        ``role`` (``elu`` / ``agent``).
    """
    people = []
    for coll in colls:
        roles = ["elu", "agent"] if coll["paired"] else [coll["single_role"]]
        people.extend({"coll": coll, "role": role} for role in roles)
    order = rng.permutation(len(people))
    return [dict(people[j], serial=k + 1) for k, j in enumerate(order)]


def profile_answers(rng: np.random.Generator, people: list[dict]) -> list[dict]:
    """Part 1 answers about the collectivity and the respondent (Q01-Q06).

    Parameters
    ----------
    rng
        Random generator.
    people
        Output of :func:`plan_respondents`.

    Returns
    -------
    list of dict
        Answers keyed by harmonised name (``__other`` suffix for typed text).
    """
    answers = [dict() for _ in people]
    for a, p in zip(answers, people, strict=True):
        coll = p["coll"]
        a["collectivity_type"] = "autre" if coll["typed_other"] else coll["type"]
        a["collectivity_type__other"] = coll["typed_other"]
        a["population_band"] = coll["population"]
        a["role"] = p["role"]
    single_agents = [i for i, p in enumerate(people) if not p["coll"]["paired"] and p["role"] == "agent"]
    for i in rng.choice(single_agents, size=POPULATION_NSP, replace=False).tolist():
        answers[i]["population_band"] = NSP

    elected = [i for i, p in enumerate(people) if p["role"] == "elu"]
    commune_elected = [i for i in elected if people[i]["coll"]["type"] == "commune"]
    deputies = rng.choice(commune_elected, size=FUNCTION_ELECTED["adjoint_maire"], replace=False).tolist()
    rest = [i for i in elected if i not in deputies]
    rest_values = shuffled_values(rng, {k: v for k, v in FUNCTION_ELECTED.items() if k != "adjoint_maire"})
    other_texts = iter(FUNCTION_ELECTED_OTHER)
    for i, value in list(zip(deputies, ["adjoint_maire"] * len(deputies), strict=True)) + list(
        zip(rest, rest_values, strict=True)
    ):
        answers[i]["function_elected"] = value
        answers[i]["function_elected__other"] = next(other_texts) if value == "autre" else ""

    agents = [i for i, p in enumerate(people) if p["role"] == "agent"]
    heads = rng.choice(agents, size=FUNCTION_STAFF["direction_generale"], replace=False).tolist()
    others = [i for i in agents if i not in heads]
    functions = shuffled_values(rng, {k: v for k, v in FUNCTION_STAFF.items() if k != "direction_generale"})
    services = shuffled_values(rng, {k: v for k, v in STAFF_SERVICE.items() if k != "direction_generale"})
    fn_texts, sv_texts = iter(FUNCTION_STAFF_OTHER), iter(STAFF_SERVICE_OTHER)
    for i in heads:
        answers[i].update(function_staff="direction_generale", staff_service="direction_generale")
    for i, fn, sv in zip(others, functions, services, strict=True):
        answers[i].update(function_staff=fn, staff_service=sv)
    for i in agents:
        answers[i]["function_staff__other"] = next(fn_texts) if answers[i]["function_staff"] == "autre" else ""
        answers[i]["staff_service__other"] = next(sv_texts) if answers[i]["staff_service"] == "autre" else ""
    return answers


def lever_rankings(rng: np.random.Generator, n: int) -> list[list[str] | None]:
    """Rankings of the 7 levers (C01): full permutations, or ``None`` when skipped.

    Parameters
    ----------
    rng
        Random generator.
    n
        Number of respondents.

    Returns
    -------
    list
        ``n`` rankings (item keys from rank 1 to 7); :data:`LEVERS_ANSWERED` are
        given, :data:`LEVERS_FIRST_STRATEGY` of them rank « stratégie globale » first.
    """
    rankings: list[list[str] | None] = []
    for k in range(LEVERS_ANSWERED):
        if k < LEVERS_FIRST_STRATEGY:
            first = "strategie_globale"
        else:
            keys = list(LEVERS_FIRST_WEIGHTS)
            p = np.array([LEVERS_FIRST_WEIGHTS[x] for x in keys])
            first = keys[int(rng.choice(len(keys), p=p / p.sum()))]
        rest = weighted_permutation(rng, {k2: w for k2, w in LEVERS_REST_WEIGHTS.items() if k2 != first})
        rankings.append([first, *rest])
    rankings.extend([None] * (n - LEVERS_ANSWERED))
    return [rankings[i] for i in rng.permutation(n)]


def contribution_answers(rng: np.random.Generator, n: int) -> list[dict[str, int] | None]:
    """Answers to C05 (what digital tools can contribute to), multiple response.

    Parameters
    ----------
    rng
        Random generator.
    n
        Number of respondents.

    Returns
    -------
    list
        ``n`` tick dictionaries (option key → 0/1, ``nsp`` included) or ``None``
        for the respondents who left the question blank.
    """
    substantive = assign_multiple(rng, CONTRIBUTIONS_ANSWERED - CONTRIBUTIONS_NSP_ONLY, CONTRIBUTIONS)
    rows: list[dict[str, int] | None] = [dict(t, nsp=0) for t in substantive]
    rows += [dict({k: 0 for k in CONTRIBUTIONS}, nsp=1) for _ in range(CONTRIBUTIONS_NSP_ONLY)]
    rows += [None] * (n - CONTRIBUTIONS_ANSWERED)
    return [rows[i] for i in rng.permutation(n)]


def open_data_answers(rng: np.random.Generator, people: list[dict]) -> list[Any]:
    """Answers to OD_PORTAIL, consistent within the two-respondent collectivities.

    Parameters
    ----------
    rng
        Random generator.
    people
        Output of :func:`plan_respondents`.

    Returns
    -------
    list
        One answer key (``oui``, ``non`` or :data:`NSP`) per respondent.
    """
    out: list[Any] = [None] * len(people)
    paired_names = sorted({p["coll"]["name"] for p in people if p["coll"]["paired"]})
    pair_values = shuffled_values(rng, OPEN_DATA_PAIRS)
    by_name = dict(zip(paired_names, pair_values, strict=True))
    for i, p in enumerate(people):
        if p["coll"]["paired"]:
            elu_value, agent_value = by_name[p["coll"]["name"]]
            out[i] = elu_value if p["role"] == "elu" else agent_value
    singles = [i for i, p in enumerate(people) if not p["coll"]["paired"]]
    for i, value in zip(singles, shuffled_values(rng, OPEN_DATA_SINGLES), strict=True):
        out[i] = value
    return out


def text_answers(rng: np.random.Generator, n: int, special: Iterable[str], plain: Iterable[str]) -> list[str]:
    """Spread free-text answers over ``n`` rows, the others left empty.

    Parameters
    ----------
    rng
        Random generator.
    n
        Number of rows.
    special, plain
        Texts to place (all of them, each once).

    Returns
    -------
    list of str
        ``n`` texts, ``""`` where nothing was written.
    """
    texts = list(special) + list(plain)
    out = [""] * n
    for i, text in zip(rng.choice(n, size=len(texts), replace=False).tolist(), texts, strict=True):
        out[i] = text
    return out


# --------------------------------------------------------------------------- tools
def tool_answers(rng: np.random.Generator) -> list[dict]:
    """The 45 tools described in parts 2 and 3, with exact target counts.

    Parameters
    ----------
    rng
        Random generator.

    Returns
    -------
    list of dict
        One dictionary per tool, keyed by harmonised name (``__other`` suffix
        for typed text). Exactly one tool judged « normal » also carries a
        low-usage reasons answer: an out-of-filter answer the cleaning must drop.
    """
    n = sum(TOOL_TARGETS["tool_type"].values())
    columns = {name: shuffled_values(rng, counts) for name, counts in TOOL_TARGETS.items()}
    tools = [{name: values[t] for name, values in columns.items()} for t in range(n)]

    type_texts, service_texts = iter(TOOL_TYPE_OTHER), iter(TOOL_SERVICE_OTHER)
    for t, tool in enumerate(tools):
        kind = tool["tool_type"]
        tool["tool_type__other"] = next(type_texts) if kind == "autre" else ""
        stem = TOOL_NAME_STEMS.get(kind, tool["tool_type__other"])
        tool["tool_name"] = f"{stem} (outil fictif {t + 1:02d})"
        tool["tool_managing_service__other"] = next(service_texts) if tool["tool_managing_service"] == "autre" else ""

    objective_texts = iter(TOOL_OBJECTIVES_OTHER)
    for tool, ticks in zip(tools, assign_multiple(rng, n, TOOL_OBJECTIVES), strict=True):
        tool["tool_objectives"] = ticks
        tool["tool_objectives__other"] = next(objective_texts) if ticks["autre"] else ""

    reason_keys = list(LOW_USAGE_REASONS)
    low = [t for t, tool in enumerate(tools) if tool["tool_usage_judgement"] == "faible"]
    substantive = assign_multiple(rng, len(low) - LOW_USAGE_NSP_ONLY, LOW_USAGE_REASONS)
    reason_rows = [dict(r, nsp=0) for r in substantive]
    reason_rows += [dict({k: 0 for k in reason_keys}, nsp=1) for _ in range(LOW_USAGE_NSP_ONLY)]
    reason_texts = iter(LOW_USAGE_OTHER)
    for t, j in zip(low, rng.permutation(len(low)).tolist(), strict=True):
        tools[t]["tool_low_usage_reasons"] = reason_rows[j]
        tools[t]["tool_low_usage_reasons__other"] = next(reason_texts) if reason_rows[j]["autre"] else ""
    for tool in tools:
        tool.setdefault("tool_low_usage_reasons", None)
        tool.setdefault("tool_low_usage_reasons__other", "")
    # Dirt: an answer to C08 although usage was judged « normal » (filter not applied).
    normal = [t for t, tool in enumerate(tools) if tool["tool_usage_judgement"] == "normal"]
    stray = int(rng.choice(normal))
    tools[stray]["tool_low_usage_reasons"] = dict({k: 0 for k in reason_keys}, communication=1, nsp=0)

    for tool, text in zip(tools, text_answers(rng, n, TOOL_COMMENTS_SPECIAL, TOOL_COMMENTS_PLAIN), strict=True):
        tool["tool_comment"] = text
    return tools


def distribute_tools(rng: np.random.Generator, people: list[dict], tools: list[dict]) -> list[list[dict]]:
    """Give the tools to 36 describing respondents, one per collectivity.

    Parameters
    ----------
    rng
        Random generator.
    people
        Output of :func:`plan_respondents`.
    tools
        Output of :func:`tool_answers`.

    Returns
    -------
    list of list of dict
        For each respondent, the tools they describe (block 1, 2, 3 in order).
    """
    names = sorted({p["coll"]["name"] for p in people})
    n_describers = sum(TOOLS_PER_DESCRIBER.values())
    chosen = sorted(rng.choice(len(names), size=n_describers, replace=False).tolist())
    counts = shuffled_values(rng, TOOLS_PER_DESCRIBER)
    out: list[list[dict]] = [[] for _ in people]
    cursor = 0
    for j, n_tools in zip(chosen, counts, strict=True):
        members = [i for i, p in enumerate(people) if p["coll"]["name"] == names[j]]
        if len(members) == 2:
            agent = next(i for i in members if people[i]["role"] == "agent")
            elu = next(i for i in members if people[i]["role"] == "elu")
            who = agent if rng.random() < 0.75 else elu
        else:
            who = members[0]
        out[who] = tools[cursor:cursor + n_tools]
        cursor += n_tools
    assert cursor == len(tools)
    return out


# --------------------------------------------------------------------------- dirty rows
def random_answer(rng: np.random.Generator, question: dict) -> Any:
    """A plausible random answer to one question (used for the dirty rows).

    Parameters
    ----------
    rng
        Random generator.
    question
        Codebook question.

    Returns
    -------
    Any
        Answer in the internal form (key, list, tick dictionary, number, text).
    """
    qtype = question["type"]
    if qtype in ("single", "ordinal", "band"):
        keys = [k for k in code_keys(question) if k not in ("autre", "aucun")]
        return keys[int(rng.integers(len(keys)))]
    if qtype == "ranking":
        keys = code_keys(question)
        return [keys[i] for i in rng.permutation(len(keys))]
    if qtype == "multiple":
        keys = [o["key"] for o in question["options"] if not o.get("exclusive") and o["key"] != "autre"]
        picked = set(rng.choice(keys, size=int(rng.integers(1, 4)), replace=False).tolist())
        return {o["key"]: int(o["key"] in picked) for o in question["options"]}
    if qtype == "numeric":
        return int(rng.integers(2015, 2018))
    return ""


def random_respondent(rng: np.random.Generator, questions: dict[str, dict], ctype: str, role: str,
                      n_tools: int) -> tuple[dict, list[dict]]:
    """Random complete answers of one respondent, filters respected.

    Parameters
    ----------
    rng
        Random generator.
    questions
        Output of :func:`questions_by_name`.
    ctype
        Collectivity type key.
    role
        ``elu`` or ``agent``.
    n_tools
        Number of tools described.

    Returns
    -------
    tuple
        Respondent-level answers and the list of tool answers.
    """
    answers: dict[str, Any] = {}
    tools: list[dict] = [{} for _ in range(n_tools)]
    for name, q in questions.items():
        if q["level"] == "tool":
            for tool in tools:
                tool[name] = random_answer(rng, q)
            continue
        answers[name] = random_answer(rng, q)
    answers.update(collectivity_type=ctype, role=role,
                   tools_described=["aucun", "un", "deux", "trois"][n_tools])
    if role == "elu":
        answers.update(function_staff=MISSING, staff_service=MISSING)
    else:
        answers["function_elected"] = MISSING
    for tool in tools:
        if tool["tool_usage_judgement"] != "faible":
            tool["tool_low_usage_reasons"] = None
    return answers, tools


def dirty_rows(rng: np.random.Generator, questions: dict[str, dict], kept: list[dict]) -> list[dict]:
    """The 11 rows the cleaning must remove: 3 tests, 6 incomplete, 2 duplicates.

    Parameters
    ----------
    rng
        Random generator.
    questions
        Output of :func:`questions_by_name`.
    kept
        The kept rows (see :func:`kept_rows`), whose two duplicated
        respondents are copied.

    Returns
    -------
    list of dict
        Rows in the internal form: ``kind``, ``identity``, ``coll_name``,
        ``answers``, ``tools``, ``lastpage``, ``twin`` (for duplicates).
    """
    rows: list[dict] = []
    tests = (
        ("TEST", "commune", {"IDENT_NOM": "FICTIF-T1", "IDENT_PRENOM": "Camille",
                             "IDENT_EMAIL": "essai.lancement@example.org", "IDENT_TEL": "06 00 00 99 01"}),
        ("test Cap Collectif", "commune", {"IDENT_NOM": "FICTIF-T2", "IDENT_PRENOM": "Dominique",
                                           "IDENT_EMAIL": "equipe.projet@example.org", "IDENT_TEL": "06 00 00 99 02"}),
        ("Collectivité de démonstration", "intercommunalite", {
            "IDENT_NOM": "FICTIF-T3", "IDENT_PRENOM": "Alex",
            "IDENT_EMAIL": "test@example.org", "IDENT_TEL": "06 00 00 99 03"}),
    )
    for coll_name, ctype, identity in tests:
        answers, tools = random_respondent(rng, questions, ctype, "agent", int(rng.integers(0, 2)))
        rows.append({"kind": "test", "coll_name": coll_name, "identity": identity,
                     "answers": answers, "tools": tools, "lastpage": LAST_PAGE})

    incomplete = (("Commune fictive 066", "commune", 1), ("Commune fictive 067", "commune", 1),
                  ("Intercommunalité fictive 18", "intercommunalite", 2), ("Commune fictive 068", "commune", 2),
                  ("Métropole fictive 10", "metropole", 3), ("Commune fictive 069", "commune", 3))
    for k, (coll_name, ctype, lastpage) in enumerate(incomplete):
        role = "elu" if k % 3 == 0 else "agent"
        answers, tools = random_respondent(rng, questions, ctype, role, 1 if lastpage > 1 else int(rng.integers(0, 2)))
        for name, q in questions.items():
            if q.get("part", 1) > lastpage:
                if q["level"] == "tool":
                    for tool in tools:
                        tool[name] = MISSING if q["type"] != "text" else ""
                else:
                    answers[name] = MISSING if q["type"] != "text" else ""
        serial = 122 + k
        rows.append({"kind": "incomplete", "coll_name": coll_name,
                     "identity": fake_identity(rng, f"{serial:03d}", serial),
                     "answers": answers, "tools": tools, "lastpage": lastpage})

    without_tools = [r for r in kept if not r["tools"]]
    with_one_tool = [r for r in kept if len(r["tools"]) == 1]
    twins = [without_tools[int(rng.integers(len(without_tools)))],
             with_one_tool[int(rng.integers(len(with_one_tool)))]]
    changes = (("civictech_partnership_importance", "open_data_portal"),
               ("civictech_partnership_importance",))
    tool_changes = ((), ("tool_cost_band", "tool_objectives_reached"))
    for twin, resp_changes, tchanges in zip(twins, changes, tool_changes, strict=True):
        answers = dict(twin["answers"])
        tools = [dict(t) for t in twin["tools"]]
        for name in resp_changes:
            answers[name] = different_answer(rng, questions[name], answers[name])
        for tool in tools:
            for name in tchanges:
                tool[name] = different_answer(rng, questions[name], tool[name])
        rows.append({"kind": "duplicate", "coll_name": twin["coll_name"], "identity": dict(twin["identity"]),
                     "answers": answers, "tools": tools, "lastpage": LAST_PAGE, "twin": twin["serial"]})
    return rows


def different_answer(rng: np.random.Generator, question: dict, current: Any) -> str:
    """Another substantive answer than ``current`` to a coded question.

    Parameters
    ----------
    rng
        Random generator.
    question
        Codebook question (single, ordinal or band).
    current
        The answer to differ from.

    Returns
    -------
    str
        A different answer key.
    """
    keys = [k for k in code_keys(question) if k != current]
    return keys[int(rng.integers(len(keys)))]


# --------------------------------------------------------------------------- assembly
def kept_rows(questions: dict[str, dict]) -> list[dict]:
    """The 121 respondents the cleaning must keep, with all their answers.

    Parameters
    ----------
    questions
        Output of :func:`questions_by_name` (checked for the keys used).

    Returns
    -------
    list of dict
        Rows in the internal form: ``kind`` (``kept``), ``serial``, ``coll_name``,
        ``identity``, ``answers``, ``tools``, ``lastpage``.
    """
    colls = plan_collectivities(component_rng("collectivities"))
    people = plan_respondents(component_rng("respondents"), colls)
    n = len(people)
    answers = profile_answers(component_rng("profile"), people)
    levers = lever_rankings(component_rng("levers"), n)
    contributions = contribution_answers(component_rng("contributions"), n)
    partnership = shuffled_values(component_rng("partnership"), PARTNERSHIP)
    tools = distribute_tools(component_rng("describers"), people, tool_answers(component_rng("tools")))
    portal = open_data_answers(component_rng("open_data"), people)
    od_comments = text_answers(component_rng("open_data_comments"), n,
                               OPEN_DATA_COMMENTS_SPECIAL, OPEN_DATA_COMMENTS_PLAIN)
    identity_rng = component_rng("identities")
    rows = []
    for i, p in enumerate(people):
        a = answers[i]
        a.update(digital_levers=levers[i], digital_contributions=contributions[i],
                 civictech_partnership_importance=partnership[i],
                 tools_described=["aucun", "un", "deux", "trois"][len(tools[i])],
                 open_data_portal=portal[i], open_data_comment=od_comments[i])
        unknown = {k.split("__")[0] for k in a} - set(questions)
        if unknown:
            raise KeyError(f"answers to questions missing from the codebook: {sorted(unknown)}")
        rows.append({"kind": "kept", "serial": p["serial"], "coll_name": p["coll"]["name"],
                     "identity": fake_identity(identity_rng, f"{p['serial']:03d}", p["serial"]),
                     "answers": a, "tools": tools[i], "lastpage": LAST_PAGE})
    return rows


def schedule(rng: np.random.Generator, rows: list[dict]) -> list[dict]:
    """Give each row its start / submit times and IP, then number them.

    Start times fall in distinct one-hour slots (8 h-18 h) of the fieldwork;
    a questionnaire takes 6 to 50 minutes, so submit times follow the order of
    start times. Each duplicate is moved before the submission it duplicates,
    and the « TEST » row opens the fieldwork.

    Parameters
    ----------
    rng
        Random generator.
    rows
        Kept and dirty rows in the internal form.

    Returns
    -------
    list of dict
        The rows sorted by start time with ``id``, ``startdate``, ``submitdate``
        (``NaT`` when incomplete) and ``ipaddr`` added.
    """
    days = pd.date_range(FIELDWORK_START.normalize(), FIELDWORK_END.normalize(), freq="D")
    slots = [day + pd.Timedelta(hours=h) for day in days for h in range(8, 19)
             if day + pd.Timedelta(hours=h, minutes=59) < FIELDWORK_END - pd.Timedelta(minutes=50)]
    picked = sorted(rng.choice(len(slots), size=len(rows), replace=False).tolist())
    slot_of = {k: picked[j] for k, j in enumerate(rng.permutation(len(rows)).tolist())}
    first = next(k for k, r in enumerate(rows) if r["coll_name"] == "TEST")
    earliest = min(slot_of, key=slot_of.get)
    slot_of[first], slot_of[earliest] = slot_of[earliest], slot_of[first]
    for k, r in enumerate(rows):
        if r["kind"] == "duplicate":
            twin = next(j for j, o in enumerate(rows) if o["kind"] == "kept" and o["serial"] == r["twin"])
            if slot_of[k] > slot_of[twin]:
                slot_of[k], slot_of[twin] = slot_of[twin], slot_of[k]
    out = []
    for k, r in enumerate(rows):
        start = slots[slot_of[k]] + pd.Timedelta(seconds=int(rng.integers(0, 9 * 60)))
        duration = pd.Timedelta(seconds=int(rng.integers(6 * 60, 50 * 60)))
        net = ("192.0.2", "198.51.100")[int(rng.integers(2))]
        out.append(dict(r, startdate=start,
                        submitdate=start + duration if r["lastpage"] == LAST_PAGE else pd.NaT,
                        ipaddr=f"{net}.{int(rng.integers(1, 255))}"))
    out.sort(key=lambda r: r["startdate"])
    return [dict(r, id=k + 1) for k, r in enumerate(out)]


# --------------------------------------------------------------------------- columns
class Column(NamedTuple):
    """One column of the .sav export.

    Attributes
    ----------
    name
        Raw column name.
    kind
        ``id``, ``int``, ``datetime``, ``string``, ``code``, ``option``, ``rank``,
        ``numeric``, ``text`` or ``other`` (typed text of an « Autre » answer).
    question
        Harmonised name of the codebook question, ``None`` for metadata.
    block
        Tool block (1-3) for tool-level columns.
    label
        Variable label (question wording, with the option / rank in brackets).
    detail
        Option key (``option``) or rank number (``rank``).
    """

    name: str
    kind: str
    question: str | None
    block: int | None
    label: str
    detail: Any = None


METADATA_COLUMNS = (
    Column("id", "id", None, None, "ID de la réponse"),
    Column("submitdate", "datetime", None, None, "Date d'envoi"),
    Column("lastpage", "int", None, None, "Dernière page"),
    Column("startlanguage", "string", None, None, "Langue de départ"),
    Column("startdate", "datetime", None, None, "Date de début"),
    Column("ipaddr", "string", None, None, "Adresse IP"),
    Column("IDENT_NOM", "string", None, None, "Nom"),
    Column("IDENT_PRENOM", "string", None, None, "Prénom"),
    Column("IDENT_EMAIL", "string", None, None, "Adresse électronique"),
    Column("IDENT_TEL", "string", None, None, "Téléphone"),
    Column("COLL_NOM", "string", None, None, "Nom de votre collectivité"),
)


def question_columns(question: dict, block: int | None) -> list[Column]:
    """Raw columns of one question, for one tool block.

    Parameters
    ----------
    question
        Codebook question.
    block
        Tool block number (``{i}``) or ``None`` for respondent-level questions.

    Returns
    -------
    list of Column
        Option columns (multiple), rank columns (ranking) or the answer column,
        then the typed-text column when the question has ``other_text``.
    """
    def fmt(pattern: str) -> str:
        return pattern.replace("{i}", str(block)) if block is not None else pattern

    name, wording, qtype = question["harmonised"], question["wording"], question["type"]
    cols: list[Column] = []
    if qtype == "multiple":
        cols += [Column(fmt(o["raw"]), "option", name, block, f"{wording} [{o['label']}]", o["key"])
                 for o in question["options"]]
    elif qtype == "ranking":
        cols += [Column(fmt(question["raw"]).replace("{rank}", str(r)), "rank", name, block,
                        f"{wording} [Rang {r}]", r) for r in range(1, question["ranks"] + 1)]
    else:
        kind = {"numeric": "numeric", "text": "text"}.get(qtype, "code")
        cols.append(Column(fmt(question["raw"]), kind, name, block, wording))
    if question.get("other_text"):
        cols.append(Column(fmt(question["other_text"]), "other", name, block, f"{wording} [Autre]"))
    return cols


def survey_layout(codebook: dict) -> list[Column]:
    """Every column of the .sav export, in LimeSurvey order.

    Metadata and identifiers, then the respondent-level questions preceding the
    tool part, then tool blocks 1, 2 and 3 side by side, then the remaining
    respondent-level questions (part 4).

    Parameters
    ----------
    codebook
        The parsed codebook.

    Returns
    -------
    list of Column
    """
    questions = list(questions_by_name(codebook).values())
    n_blocks = int(codebook["sources"]["survey"]["tool_blocks"]["count"])
    first_tool = next(k for k, q in enumerate(questions) if q["level"] == "tool")
    before = [q for q in questions[:first_tool] if q["level"] == "respondent"]
    tool_qs = [q for q in questions if q["level"] == "tool"]
    after = [q for q in questions[first_tool:] if q["level"] == "respondent"]
    cols = list(METADATA_COLUMNS)
    for q in before:
        cols += question_columns(q, None)
    for block in range(1, n_blocks + 1):
        for q in tool_qs:
            cols += question_columns(q, block)
    for q in after:
        cols += question_columns(q, None)
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise ValueError("duplicate raw column names in the layout")
    return cols


def cell_value(column: Column, question: dict | None, answer: Any, other: str) -> Any:
    """Raw cell of one column from an internal answer.

    Parameters
    ----------
    column
        The column.
    question
        Its codebook question.
    answer
        The internal answer (key, list, tick dictionary, number, text or None).
    other
        Typed text of an « Autre » answer.

    Returns
    -------
    float or str
        Numeric code (NaN when missing) or text (``""`` when empty).
    """
    if column.kind == "other":
        return other or ""
    if column.kind == "text":
        return answer or ""
    if column.kind == "code":
        return code_of(question, answer)
    if column.kind == "option":
        return float("nan") if answer is None else float(answer[column.detail])
    if column.kind == "rank":
        return float("nan") if answer is None else code_of(question, answer[column.detail - 1])
    if column.kind == "numeric":
        return float("nan") if answer is None else float(answer)
    raise ValueError(f"unexpected column kind {column.kind!r}")


def survey_frame(rows: list[dict], layout: list[Column], questions: dict[str, dict]) -> pd.DataFrame:
    """The raw survey table, one row per submission.

    Parameters
    ----------
    rows
        Scheduled rows (see :func:`schedule`).
    layout
        Output of :func:`survey_layout`.
    questions
        Output of :func:`questions_by_name`.

    Returns
    -------
    pandas.DataFrame
        Codes as float64 (NaN = system-missing), texts as strings, dates as
        datetimes, ``id`` and ``lastpage`` as integers.
    """
    records = []
    for r in rows:
        rec: dict[str, Any] = {
            "id": r["id"], "submitdate": r["submitdate"], "lastpage": r["lastpage"], "startlanguage": "fr",
            "startdate": r["startdate"], "ipaddr": r["ipaddr"], "COLL_NOM": r["coll_name"], **r["identity"],
        }
        for col in layout[len(METADATA_COLUMNS):]:
            if col.block is None:
                source = r["answers"]
            else:
                source = r["tools"][col.block - 1] if col.block <= len(r["tools"]) else {}
            rec[col.name] = cell_value(col, questions[col.question], source.get(col.question),
                                       source.get(f"{col.question}__other", ""))
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[c.name for c in layout])
    for col in layout:
        if col.kind in ("id", "int"):
            frame[col.name] = frame[col.name].astype("int64")
        elif col.kind == "datetime":
            frame[col.name] = pd.to_datetime(frame[col.name]).astype("datetime64[us]")
        elif col.kind in ("string", "text", "other"):
            frame[col.name] = frame[col.name].astype(str)
        else:
            frame[col.name] = frame[col.name].astype("float64")
    return frame


def sav_metadata(layout: list[Column], questions: dict[str, dict]) -> dict[str, Any]:
    """Keyword arguments of :func:`pyreadstat.write_sav` for the survey export.

    Parameters
    ----------
    layout
        Output of :func:`survey_layout`.
    questions
        Output of :func:`questions_by_name`.

    Returns
    -------
    dict
        ``column_labels``, ``variable_value_labels``, ``missing_ranges``,
        ``variable_measure``, ``variable_format``, ``file_label`` and ``note``.
    """
    labels, value_labels, missing, measure, formats = {}, {}, {}, {}, {}
    for col in layout:
        labels[col.name] = col.label
        q = questions.get(col.question) if col.question else None
        if col.kind in ("id", "int"):
            measure[col.name] = "scale"
            formats[col.name] = "F5.0" if col.kind == "id" else "F1.0"
        elif col.kind == "datetime":
            measure[col.name] = "scale"
        elif col.kind in ("string", "text", "other"):
            measure[col.name] = "nominal"
        elif col.kind == "numeric":
            measure[col.name] = "scale"
            formats[col.name] = "F4.0"
        elif col.kind == "option":
            measure[col.name] = "nominal"
            formats[col.name] = "F1.0"
            value_labels[col.name] = {0: "Non coché", 1: "Coché"}
        elif col.kind == "rank":
            measure[col.name] = "nominal"
            formats[col.name] = "F1.0"
            value_labels[col.name] = {int(c["code"]): c["label"] for c in q["codes"]}
        elif col.kind == "code":
            measure[col.name] = "ordinal" if q["type"] in ("ordinal", "band") else "nominal"
            formats[col.name] = "F2.0"
            vl = {int(c["code"]): c["label"] for c in q["codes"]}
            if "nsp" in q:
                vl[NSP_CODE] = NSP_VALUE_LABEL
                missing[col.name] = [NSP_CODE]
            value_labels[col.name] = vl
    return {
        "column_labels": labels,
        "variable_value_labels": value_labels,
        "missing_ranges": missing,
        "variable_measure": measure,
        "variable_format": formats,
        "file_label": "Barometre 2017 - reconstitution synthetique",
        # SPSS document lines hold 80 bytes at most.
        "note": [f"Donnees SYNTHETIQUES (synth/generate_2017.py, graine {SEED}).",
                 "Ce ne sont pas les reponses reelles de 2017.",
                 "Voir data/raw/2017/README.md."],
    }


def pin_sav_header(data: bytes) -> bytes:
    """Overwrite the creation date and time of an SPSS system-file header.

    ReadStat (under pyreadstat) stamps the header with the current time and
    pyreadstat offers no parameter to set it. The header record is fixed-size:
    ``rec_type[4]``, ``prod_name[60]``, five int32 fields, the double ``bias``
    (offset 84), then ``creation_date[9]`` (``dd mmm yy``, offset 92) and
    ``creation_time[8]`` (``hh:mm:ss``, offset 101). Both are replaced by the
    end of the 2017 fieldwork, which makes the file byte-for-byte reproducible.

    Parameters
    ----------
    data
        Bytes of a ``.sav`` file.

    Returns
    -------
    bytes
        The same file with the pinned time-stamp.

    Raises
    ------
    ValueError
        If the bytes do not look like an uncompressed-header SPSS file with a
        date and time at the expected offsets.
    """
    date = data[SAV_DATE_OFFSET:SAV_DATE_OFFSET + 9]
    time = data[SAV_TIME_OFFSET:SAV_TIME_OFFSET + 8]
    if data[:4] != b"$FL2" or not re.fullmatch(rb"\d\d [A-Z][a-z]{2} \d\d", date) \
            or not re.fullmatch(rb"\d\d:\d\d:\d\d", time):
        raise ValueError(f"unexpected SPSS header: {data[:4]!r} date {date!r} time {time!r}")
    return (data[:SAV_DATE_OFFSET] + SAV_HEADER_DATE + data[SAV_DATE_OFFSET + 9:SAV_TIME_OFFSET]
            + SAV_HEADER_TIME + data[SAV_TIME_OFFSET + 8:])


def write_sav(frame: pd.DataFrame, metadata: dict[str, Any], path: Path) -> None:
    """Write the survey export with pyreadstat, then pin its header time-stamp.

    Parameters
    ----------
    frame
        Output of :func:`survey_frame`.
    metadata
        Output of :func:`sav_metadata`.
    path
        Destination ``.sav`` file.
    """
    tmp = path.with_name(path.name + ".tmp")
    pyreadstat.write_sav(frame, str(tmp), **metadata)
    data = pin_sav_header(tmp.read_bytes())
    tmp.unlink()
    path.write_bytes(data)


def build_survey(codebook: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build the raw survey table and its SPSS metadata.

    Parameters
    ----------
    codebook
        The parsed codebook.

    Returns
    -------
    tuple
        The frame (132 rows) and the keyword arguments of ``write_sav``.
    """
    questions = questions_by_name(codebook)
    layout = survey_layout(codebook)
    kept = kept_rows(questions)
    rows = schedule(component_rng("schedule"), kept + dirty_rows(component_rng("dirt"), questions, kept))
    return survey_frame(rows, layout, questions), sav_metadata(layout, questions)


# --------------------------------------------------------------------------- BP inventory
BP_COLUMNS = ("N°", "Territoire", "Type de territoire", "Population", "Première édition",
              "Montant alloué (€)", "Montant par habitant (€)", "Réunion publique obligatoire",
              "Articulation avec d'autres instances", "Commentaires avant instruction",
              "Commentaires au moment du vote", "Vote en ligne", "Contrôle de la fraude",
              "Dépôt des projets en ligne", "Budget en open data", "Remarques")
BP_NAMED = (
    # name, kind, population, first edition, amount (EUR); values are synthetic
    ("Paris", "commune", 2_190_000, 2014, 100_000_000),
    ("Bar-le-Duc", "commune", 15_500, 2016, 100_000),
    ("Rodez", "commune", 24_000, 2015, 150_000),
    ("Gers", "département", 191_000, 2017, 1_000_000),
    ("Centre-Val de Loire (lycées)", "région", 110_000, 2017, 1_500_000),
    ("Université de Tours", "université", None, 2017, 50_000),
    ("Bailleur social (Paris)", "bailleur social", None, 2016, 1_200_000),
    ("Plan Climat (national)", "état", None, 2017, 5_000_000),
)
BP_OPEN_BUDGET = ("Bar-le-Duc", "Paris", "Rodez")
BP_PLACEHOLDER_COMMUNES = 51
BP_PLACEHOLDER_INTERCOS = 2
BP_PLACEHOLDER_COMMUNE_POPULATION = 1_450_000
"""Total population given to the 51 placeholder communes (synthetic)."""
BP_TARGETS = {"meeting": 19, "bodies": 20, "comment_before": 8, "comment_vote": 10,
              "online_vote": 26, "fraud": 6, "online_submit": 39}
BP_REMARKS = {
    "Centre-Val de Loire (lycées)": "Population : lycéens et apprentis concernés, pas la population régionale.",
    "Plan Climat (national)": "Budget participatif national (Plan Climat) ; pas de population de référence.",
    "Paris": (
        'Vote "papier" et en ligne ; urnes dans chaque arrondissement.\n'
        "Montant annuel, part des quartiers populaires incluse."
    ),
    "Université de Tours": "Porté par la vie étudiante.",
    "Bailleur social (Paris)": "Locataires du parc social uniquement.",
}
BP_PLAIN_REMARKS = ("Première édition en cours d'instruction.", "Montant reconduit pour 2018.",
                    "Projets limités à l'investissement.", "Ouvert aux jeunes dès 11 ans.",
                    "Vote en mairie uniquement.", "Édition suspendue en 2016.")
YES_VARIANTS = ("OUI", " oui", "oui ", "Oui ")
NO_VARIANTS = ("Non ", "NON", " non", "non")


def decimal_comma(value: float) -> str:
    """Format a number as a French spreadsheet does.

    Parameters
    ----------
    value
        The number.

    Returns
    -------
    str
        Two decimals, decimal comma, no thousands separator (``150000,00``).
    """
    return f"{value:.2f}".replace(".", ",")


def sort_key(name: str) -> str:
    """Alphabetical sort key ignoring case and accents, as a spreadsheet sorts.

    Parameters
    ----------
    name
        Territory name.

    Returns
    -------
    str
        ASCII, case-folded form of ``name``.
    """
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()


def bp_territories(rng: np.random.Generator) -> list[dict]:
    """The 61 territories with a participatory budget, before the yes/no answers.

    Parameters
    ----------
    rng
        Random generator.

    Returns
    -------
    list of dict
        ``name``, ``kind``, ``population`` (int or None), ``year``, ``amount``,
        sorted alphabetically.
    """
    out = [dict(zip(("name", "kind", "population", "year", "amount"), row, strict=True)) for row in BP_NAMED]
    raw = np.clip(rng.lognormal(np.log(18_000), 0.9, size=BP_PLACEHOLDER_COMMUNES), 1_500, 300_000)
    pops = np.round(raw * BP_PLACEHOLDER_COMMUNE_POPULATION / raw.sum()).astype(int)
    years = rng.choice(np.arange(2010, 2018), size=BP_PLACEHOLDER_COMMUNES,
                       p=[0.02, 0.02, 0.03, 0.05, 0.10, 0.18, 0.25, 0.35])
    for k in range(BP_PLACEHOLDER_COMMUNES):
        per_capita = rng.uniform(1.0, 15.0)
        amount = max(10_000, int(round(per_capita * pops[k], -3)))
        out.append({"name": f"Commune BP {k + 1:02d}", "kind": "commune", "population": int(pops[k]),
                    "year": int(years[k]), "amount": amount})
    for k in range(BP_PLACEHOLDER_INTERCOS):
        pop = int(rng.integers(80_000, 300_000))
        out.append({"name": f"Intercommunalité BP {k + 1:02d}", "kind": "intercommunalité", "population": pop,
                    "year": int(rng.integers(2015, 2018)), "amount": int(round(pop * rng.uniform(1, 5), -4))})
    return sorted(out, key=lambda t: sort_key(t["name"]))


def bp_answers(rng: np.random.Generator, territories: list[dict]) -> list[dict]:
    """Yes/no answers of the inventory with exact target counts.

    Online vote (26) includes Paris and the national Plan Climat; fraud control
    (6) is a subset of it, « Non » for the other online votes, empty otherwise
    except for one out-of-filter « Non » (dirt); 24 of the online votes also
    take projects online (39 in all); open data only for the three cities the
    report names.

    Parameters
    ----------
    rng
        Random generator.
    territories
        Output of :func:`bp_territories`.

    Returns
    -------
    list of dict
        Per territory, answer (``"oui"``, ``"non"`` or ``""``) by column name.
    """
    n = len(territories)
    names = [t["name"] for t in territories]

    def pick(pool: list[int], k: int, forced: Iterable[int] = ()) -> set[int]:
        forced = list(forced)
        rest = [i for i in pool if i not in forced]
        return set(forced) | set(rng.choice(rest, size=k - len(forced), replace=False).tolist())

    everyone = list(range(n))
    forced_vote = [names.index("Paris"), names.index("Plan Climat (national)")]
    vote = pick(everyone, BP_TARGETS["online_vote"], forced_vote)
    no_vote = [i for i in everyone if i not in vote]
    fraud = pick(sorted(vote), BP_TARGETS["fraud"], [names.index("Paris")])
    stray_fraud = int(rng.choice(no_vote))
    submit = pick(sorted(vote), 24, forced_vote) | pick(no_vote, BP_TARGETS["online_submit"] - 24)
    before = pick(sorted(submit), BP_TARGETS["comment_before"])
    at_vote = pick(sorted(vote), 8) | pick(no_vote, BP_TARGETS["comment_vote"] - 8)
    meeting = pick(everyone, BP_TARGETS["meeting"])
    bodies = pick(everyone, BP_TARGETS["bodies"])
    out = []
    for i in everyone:
        yn = {
            "Réunion publique obligatoire": i in meeting,
            "Articulation avec d'autres instances": i in bodies,
            "Commentaires avant instruction": i in before,
            "Commentaires au moment du vote": i in at_vote,
            "Vote en ligne": i in vote,
            "Dépôt des projets en ligne": i in submit,
            "Budget en open data": names[i] in BP_OPEN_BUDGET,
        }
        row = {col: "oui" if v else "non" for col, v in yn.items()}
        row["Contrôle de la fraude"] = ("oui" if i in fraud else "non") if i in vote else (
            "non" if i == stray_fraud else "")
        out.append(row)
    return out


def dirty_yes_no(rng: np.random.Generator, answers: list[dict]) -> list[dict]:
    """Write Oui/Non cells as typed by hand: mostly « Oui »/« Non », some dirty.

    Six « oui » and six « non » cells, drawn at random, get stray spaces or
    case (« OUI », « oui », « Non »…); all variants appear.

    Parameters
    ----------
    rng
        Random generator.
    answers
        Output of :func:`bp_answers`.

    Returns
    -------
    list of dict
        Same answers with display strings.
    """
    out = [{col: {"oui": "Oui", "non": "Non", "": ""}[v] for col, v in row.items()} for row in answers]
    cols = list(BP_COLUMNS[7:15])
    for value, variants in (("oui", YES_VARIANTS), ("non", NO_VARIANTS)):
        cells = [(i, c) for i, row in enumerate(answers) for c in cols if row[c] == value]
        chosen = rng.choice(len(cells), size=6, replace=False).tolist()
        for k, j in enumerate(chosen):
            i, c = cells[j]
            out[i][c] = variants[k % len(variants)]
    return out


def bp_rows(rng: np.random.Generator) -> list[list[str]]:
    """The inventory as spreadsheet cells (header excluded).

    Parameters
    ----------
    rng
        Random generator.

    Returns
    -------
    list of list of str
        61 rows of 16 cells, numbers with a decimal comma.
    """
    territories = bp_territories(rng)
    answers = dirty_yes_no(rng, bp_answers(rng, territories))
    plain = [t["name"] for t in territories if t["name"] not in BP_REMARKS and t["kind"] == "commune"]
    remark_of = dict(BP_REMARKS)
    for name, text in zip(
        rng.choice(plain, size=len(BP_PLAIN_REMARKS), replace=False).tolist(), BP_PLAIN_REMARKS, strict=True
    ):
        remark_of[name] = text
    rows = []
    for k, (t, yn) in enumerate(zip(territories, answers, strict=True), start=1):
        pop = t["population"]
        rows.append([
            str(k), t["name"], t["kind"], "" if pop is None else str(pop), str(t["year"]),
            decimal_comma(t["amount"]), "" if pop is None else decimal_comma(t["amount"] / pop),
            *[yn[c] for c in BP_COLUMNS[7:15]], remark_of.get(t["name"], ""),
        ])
    return rows


def bp_csv_bytes(rows: list[list[str]]) -> bytes:
    """Encode the inventory as a French spreadsheet export.

    Parameters
    ----------
    rows
        Output of :func:`bp_rows`.

    Returns
    -------
    bytes
        cp1252 text, ``;`` separator, CRLF line ends, cells quoted only when
        they hold ``;``, a double quote or a line break.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", quotechar='"', lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(BP_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("cp1252")


# --------------------------------------------------------------------------- entry point
def generate(out_dir: str | Path, codebook_path: str | Path = DEFAULT_CODEBOOK) -> dict[str, Path]:
    """Write both raw exports of 2017 into ``out_dir``.

    Parameters
    ----------
    out_dir
        Destination folder (created if needed).
    codebook_path
        The 2017 codebook.

    Returns
    -------
    dict
        ``{"survey": path, "bp_inventory": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame, metadata = build_survey(load_codebook(codebook_path))
    survey_path = out / SAV_NAME
    write_sav(frame, metadata, survey_path)
    bp_path = out / CSV_NAME
    bp_path.write_bytes(bp_csv_bytes(bp_rows(component_rng("bp_inventory"))))
    return {"survey": survey_path, "bp_inventory": bp_path}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(description="Génère la reconstitution synthétique des exports bruts 2017.")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="dossier de sortie (défaut : data/raw/2017)")
    parser.add_argument("--codebook", default=str(DEFAULT_CODEBOOK), help="codebook 2017 (YAML)")
    args = parser.parse_args(argv)
    for name, path in generate(args.out, args.codebook).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
