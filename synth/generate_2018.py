#!/usr/bin/env python3
"""Deterministic generator of the reconstructed 2018 raw export.

The microdata of the 3rd edition (2018) of the « Baromètre de la démocratie
locale numérique » is not public. This script writes a *synthetic*
reconstruction of the survey export, built so that every numeric figure
published for 2018 (``references/published_2018.yaml``) comes out of the real
pipeline within its bounds, once the contradictions of the published figures are
resolved as the methods note says (``data/raw/2018/README.md``):

``barometre_2018_questionnaire.sav``
    One row per submission, metadata and fake identifiers first, then every raw
    column named by ``codebooks/2018.yaml`` (no tool blocks: the 2018
    questionnaire inventories the participation devices of the collectivity);
    variable labels, value labels, user-missing code 99, measurement levels.
    Five « dirty » rows (1 test, 3 unfinished questionnaires, 1 duplicate
    submission) are added to the 70 kept respondents for the cleaning to remove.

The budget per inhabitant (M01 mean 1,82 €, M02 median 0,44 €) is not a column
of the export: the pipeline derives it from the budget and the population each
collectivity gives, as the published figures were.

Everything is derived from one fixed seed (:data:`SEED`): each component draws
from its own generator seeded with ``[SEED, crc32(component name)]``. Two runs
give identical bytes (the SPSS header time-stamp is pinned). The generator reads
the codebook with PyYAML and imports nothing from ``src/barometre``.

Usage::

    python synth/generate_2018.py --out data/raw/2018
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
DEFAULT_OUT = REPO_ROOT / "data" / "raw" / "2018"
DEFAULT_CODEBOOK = REPO_ROOT / "codebooks" / "2018.yaml"

SEED = 20181001
"""Seed of every random draw (first day of the assumed 2018 fieldwork)."""

SAV_NAME = "barometre_2018_questionnaire.sav"
# The 2018 fieldwork dates are not published: autumn 2018 is an assumption
# (results presented on 30 January 2019), see the README.
FIELDWORK_START = pd.Timestamp("2018-10-01")
FIELDWORK_END = pd.Timestamp("2018-12-14 18:00:00")
SAV_HEADER_DATE = b"14 Dec 18"
SAV_HEADER_TIME = b"18:00:00"
LAST_PAGE = 4

# --------------------------------------------------------------------------- targets
COLLECTIVITY_TYPES = {"commune": 50, "intercommunalite_metropole": 16, "departement": 3, "region": 1}
"""R01 70 collectivities, R02 50 / 70 = 71,4 % communes."""
TYPED_OTHER = (("intercommunalite_metropole", "Métropole"), ("commune", "Ville"))
"""Typed under « Autre », recoded by the codebook's patterns."""
COLLECTIVITY_NAMES = {
    "commune": "Commune fictive {:03d}",
    "intercommunalite_metropole": "Intercommunalité fictive {:02d}",
    "departement": "Département fictif {:02d}",
    "region": "Région fictive {:02d}",
}
COMMUNES_OVER_50000 = 30
"""« principalement des communes de plus de 50 000 habitants » (S2): 30 of the 50 communes."""
ROLES = {"elu": 18, "agent": 52}

DEVICES_ANSWERED = 66
DEVICES = {"urbanisme_ponctuel": 46, "conseils_de_quartier": 39, "plateformes_numeriques": 38,
           "conseils_citoyens": 33, "applications_signalement": 28, "budget_participatif": 20,
           "conseil_developpement": 24, "autre": 6}
"""D01 on the 66 collectivities that ticked at least one box: 69,7 / 59,1 / 57,6 / 50,0 / 42,4 %."""
DEDICATED_SERVICE = {"oui": 37, "non": 33}
"""O01: 37 / 70 = 52,9 %."""
SERVICE_NAMES = (
    "Démocratie participative", "Participation citoyenne", "Vie des quartiers", "Citoyenneté et vie locale",
    "Mission participation", "Démocratie locale", "Relations aux habitants", "Concertation",
    "Direction de la participation et de la vie associative", "Politique de la ville et participation",
    "Service « Ville ouverte »", "Dialogue citoyen; démocratie de proximité",
    "Contact : participation@example.org",
)
COMMUNICATION_ROLE = {"oui": 56, "non": 14}
"""O02: 56 / 70 = 80,0 %."""
STAFF_FTE = {"lt1": 15, "from_1_to_2": 20, "from_2_to_5": 22, "gt5": 11, NSP: 2}
"""O03: 15 / 68 who gave a number = 22,1 % (the 2 « ne sait pas » are non-responses)."""
BUDGET_CONSOLIDATED = {"oui": 28, "non": 42}
"""« Budgets non consolidés dans six collectivités sur dix » : 42 / 70 = 60 %."""
BUDGET_MEAN = 1.82
BUDGET_MEDIAN = 0.44
"""M01 / M02: mean and median of budget / population over the 28 consolidated budgets."""
COMMENTS = (
    "Pour en savoir plus : 01 23 45 67 89 (mission participation).",
    "Budget participatif lancé cette année ; premier bilan en 2019.",
    'Le terme "démocratie participative" recouvre chez nous des pratiques très diverses.',
    "Budget non consolidé : il est réparti entre plusieurs directions.\nChiffres à prendre avec prudence.",
    "Nous testons une plateforme numérique ; les réunions publiques restent la règle.",
)


def rng(component: str) -> np.random.Generator:
    """Generator of one component (see :func:`sav_export.component_rng`)."""
    return component_rng(SEED, component)


# --------------------------------------------------------------------------- collectivities
def populations(r: np.random.Generator, ctype: str, n: int) -> list[int]:
    """Plausible populations of ``n`` collectivities of one type (synthetic)."""
    if ctype == "commune":
        big = np.clip(r.lognormal(np.log(110_000), 0.6, size=COMMUNES_OVER_50000), 50_001, 900_000)
        small = r.uniform(3_000, 49_000, size=n - COMMUNES_OVER_50000)
        values = np.concatenate([big, small])
        values = values[r.permutation(n)]
    elif ctype == "intercommunalite_metropole":
        values = np.clip(r.lognormal(np.log(180_000), 0.9, size=n), 20_000, 1_400_000)
    elif ctype == "departement":
        values = r.uniform(250_000, 1_600_000, size=n)
    else:
        values = r.uniform(2_500_000, 6_000_000, size=n)
    return [round(v) for v in values]


def plan_collectivities(r: np.random.Generator) -> list[dict]:
    """The 70 collectivities (one respondent each), in random order.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``typed_other``, ``population`` (inhabitants),
        ``role``, ``serial`` (1..70).
    """
    colls = []
    for ctype, n in COLLECTIVITY_TYPES.items():
        texts = [text for t, text in TYPED_OTHER if t == ctype]
        typed = dict(zip(r.choice(n, size=len(texts), replace=False).tolist(), texts, strict=True))
        for i, pop in enumerate(populations(r, ctype, n)):
            colls.append({"name": COLLECTIVITY_NAMES[ctype].format(i + 1), "type": ctype,
                          "typed_other": typed.get(i, ""), "population": pop})
    for c, role in zip(colls, shuffled_values(r, ROLES), strict=True):
        c["role"] = role
    order = r.permutation(len(colls))
    return [dict(colls[j], serial=k + 1) for k, j in enumerate(order)]


def budget_ratios(r: np.random.Generator) -> list[float]:
    """28 budgets per inhabitant (€) with median :data:`BUDGET_MEDIAN` and mean :data:`BUDGET_MEAN`.

    13 small values (0,04–0,40 €), the two middle ones 0,42 € and 0,46 € (median
    0,44 €), 12 larger ones (0,50–6 €) and one last value that brings the mean to
    1,82 €: a skewed distribution, as the gap between mean and median says.
    """
    n = BUDGET_CONSOLIDATED["oui"]
    low = sorted(np.round(r.uniform(0.04, 0.40, size=13), 3).tolist())
    high = sorted(np.round(r.uniform(0.50, 6.0, size=12), 3).tolist())
    last = round(BUDGET_MEAN * n - sum(low) - 0.42 - 0.46 - sum(high), 3)
    if not high[-1] <= last <= 20:
        raise ValueError(f"budget tail out of range: {last}")
    return [*low, 0.42, 0.46, *high, last]


def budget_amounts(r: np.random.Generator, pops: list[int]) -> list[int]:
    """Budgets in euros for collectivities of populations ``pops`` (mean and median per inhabitant exact).

    Ratios are given to collectivities at random; each budget is rounded to the
    euro, and the last one absorbs the rounding so the mean stays 1,82 €.
    """
    ratios = budget_ratios(r)
    order = r.permutation(len(pops)).tolist()
    amounts = [round(ratios[k] * pops[i]) for k, i in enumerate(order)]
    out = [0] * len(pops)
    for k, i in enumerate(order):
        out[i] = amounts[k]
    last = order[-1]
    others = sum(out[i] / pops[i] for i in range(len(pops)) if i != last)
    out[last] = round((BUDGET_MEAN * len(pops) - others) * pops[last])
    return out


def kept_rows(questions: dict[str, dict]) -> list[dict]:
    """The 70 respondents the cleaning must keep, with all their answers (internal form)."""
    colls = plan_collectivities(rng("collectivities"))
    n = len(colls)
    devices = multiple_rows(rng("devices"), n, DEVICES_ANSWERED, DEVICES, nsp_key=None)
    dedicated = shuffled_values(rng("dedicated_service"), DEDICATED_SERVICE)
    with_service = [i for i in range(n) if dedicated[i] == "oui"]
    names: list[str] = [""] * n
    for i, text in zip(
        with_service, text_answers(rng("service_names"), len(with_service), list(SERVICE_NAMES)), strict=True
    ):
        names[i] = text
    communication = shuffled_values(rng("communication"), COMMUNICATION_ROLE)
    # Less than one FTE only where there is no dedicated service.
    r = rng("staff")
    without = [i for i in range(n) if dedicated[i] == "non"]
    small = set(r.choice(without, size=STAFF_FTE["lt1"], replace=False).tolist())
    fte: list[Any] = ["lt1" if i in small else None for i in range(n)]
    rest = [i for i in range(n) if i not in small]
    for i, value in zip(rest, shuffled_values(r, {k: v for k, v in STAFF_FTE.items() if k != "lt1"}), strict=True):
        fte[i] = value
    consolidated = shuffled_values(rng("budget_consolidated"), BUDGET_CONSOLIDATED)
    with_budget = [i for i in range(n) if consolidated[i] == "oui"]
    amounts: list[Any] = [MISSING] * n
    for i, amount in zip(
        with_budget, budget_amounts(rng("budgets"), [colls[i]["population"] for i in with_budget]), strict=True
    ):
        amounts[i] = amount
    comments = text_answers(rng("comments"), n, list(COMMENTS))
    identity_rng = rng("identities")
    rows = []
    for i, c in enumerate(colls):
        a = {
            "collectivity_type": "autre" if c["typed_other"] else c["type"],
            "collectivity_type__other": c["typed_other"],
            "population_inhabitants": c["population"], "role": c["role"],
            "participation_devices": devices[i], "dedicated_service": dedicated[i],
            "dedicated_service_name": names[i], "communication_service_role": communication[i],
            "staff_fte_band": fte[i], "budget_consolidated": consolidated[i],
            "participation_budget_eur": amounts[i], "participation_comment": comments[i],
        }
        unknown = {k.split("__")[0] for k in a} - set(questions)
        if unknown:
            raise KeyError(f"answers to questions missing from the codebook: {sorted(unknown)}")
        rows.append({"kind": "kept", "serial": c["serial"], "coll_name": c["name"],
                     "identity": fake_identity(identity_rng, f"{c['serial']:03d}", c["serial"]),
                     "answers": a, "tools": [], "lastpage": LAST_PAGE})
    add_out_of_filter(rng("out_of_filter"), rows)
    return rows


def add_out_of_filter(r: np.random.Generator, rows: list[dict]) -> None:
    """Dirt the cleaning must erase, in place: a budget amount given although the budget is
    not consolidated (left in, it would move M01 and M02), and a service name without a
    dedicated service."""
    not_consolidated = [k for k, row in enumerate(rows) if row["answers"]["budget_consolidated"] == "non"]
    k = int(r.choice(not_consolidated))
    rows[k]["answers"]["participation_budget_eur"] = round(12.5 * rows[k]["answers"]["population_inhabitants"])
    no_service = [k for k, row in enumerate(rows) if row["answers"]["dedicated_service"] == "non"]
    rows[int(r.choice(no_service))]["answers"]["dedicated_service_name"] = "Cabinet du maire"


# --------------------------------------------------------------------------- dirty rows
def random_respondent(r: np.random.Generator, questions: dict[str, dict], ctype: str) -> dict:
    """Random complete answers of one respondent, filters respected."""
    answers = {name: random_answer(r, q) for name, q in questions.items()}
    answers.update(collectivity_type=ctype, population_inhabitants=int(r.integers(5_000, 300_000)))
    if answers["budget_consolidated"] == "oui":
        answers["participation_budget_eur"] = round(answers["population_inhabitants"] * r.uniform(0.1, 3))
    else:
        answers["participation_budget_eur"] = MISSING
    answers["dedicated_service_name"] = "Service participation" if answers["dedicated_service"] == "oui" else ""
    return answers


def dirty_rows(r: np.random.Generator, questions: dict[str, dict], kept: list[dict]) -> list[dict]:
    """The 5 rows the cleaning must remove: 1 test, 3 unfinished questionnaires, 1 duplicate."""
    rows: list[dict] = []
    answers = random_respondent(r, questions, "commune")
    answers["role"] = "agent"
    rows.append({"kind": "test", "coll_name": "TEST", "answers": answers, "tools": [], "lastpage": LAST_PAGE,
                 "identity": {"IDENT_NOM": "FICTIF-T1", "IDENT_PRENOM": "Camille",
                              "IDENT_EMAIL": "test.observatoire@example.org", "IDENT_TEL": "06 00 00 99 01"}})
    incomplete = (("Commune fictive 051", "commune", 1), ("Commune fictive 052", "commune", 2),
                  ("Intercommunalité fictive 17", "intercommunalite_metropole", 3))
    for k, (coll_name, ctype, lastpage) in enumerate(incomplete):
        answers = random_respondent(r, questions, ctype)
        answers["role"] = "elu" if k % 2 == 0 else "agent"
        blank_after(answers, [], questions, lastpage)
        serial = 71 + k
        rows.append({"kind": "incomplete", "coll_name": coll_name,
                     "identity": fake_identity(r, f"{serial:03d}", serial),
                     "answers": answers, "tools": [], "lastpage": lastpage})
    with_budget = [row for row in kept if row["answers"]["budget_consolidated"] == "oui"]
    twin = with_budget[int(r.integers(len(with_budget)))]
    answers = dict(twin["answers"])
    # The first submission gave another budget and another staff band: keeping it would move M01 / O03.
    answers["participation_budget_eur"] = round(answers["population_inhabitants"] * 4.0)
    answers["staff_fte_band"] = different_answer(r, questions["staff_fte_band"], answers["staff_fte_band"])
    rows.append({"kind": "duplicate", "coll_name": twin["coll_name"], "identity": dict(twin["identity"]),
                 "answers": answers, "tools": [], "lastpage": LAST_PAGE, "twin": twin["serial"]})
    return rows


# --------------------------------------------------------------------------- assembly
def build_survey(codebook: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The raw survey table (75 rows) and the keyword arguments of ``write_sav``."""
    questions = questions_by_name(codebook)
    layout = survey_layout(codebook)
    kept = kept_rows(questions)
    rows = schedule(rng("schedule"), kept + dirty_rows(rng("dirt"), questions, kept),
                    FIELDWORK_START, FIELDWORK_END, LAST_PAGE, first_coll="TEST")
    metadata = sav_metadata(
        layout, questions, "Barometre 2018 - reconstitution synthetique",
        [f"Donnees SYNTHETIQUES (synth/generate_2018.py, graine {SEED}).",
         "Ce ne sont pas les reponses reelles de 2018.",
         "Voir data/raw/2018/README.md."])
    return survey_frame(rows, layout, questions), metadata


def generate(out_dir: str | Path, codebook_path: str | Path = DEFAULT_CODEBOOK) -> dict[str, Path]:
    """Write the 2018 raw export into ``out_dir`` (created if needed); returns ``{"survey": path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame, metadata = build_survey(load_codebook(codebook_path))
    path = out / SAV_NAME
    write_sav(frame, metadata, path, SAV_HEADER_DATE, SAV_HEADER_TIME)
    return {"survey": path}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Génère la reconstitution synthétique de l'export brut 2018.")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="dossier de sortie (défaut : data/raw/2018)")
    parser.add_argument("--codebook", default=str(DEFAULT_CODEBOOK), help="codebook 2018 (YAML)")
    args = parser.parse_args(argv)
    for name, path in generate(args.out, args.codebook).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
