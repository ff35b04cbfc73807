"""Publish phase: the Frictionless data package of one edition (``results/<e>/datapackage.json``).

Every published CSV of the edition (``tables/cells.csv``, ``tables/tests.csv``, the
per-question tables and ``figures.csv``) becomes a tabular data resource whose schema
is derived from the file's actual header: each column takes its type, French title
and French description from :data:`FIELDS`. A column absent from :data:`FIELDS` is
still described (type inferred from its values) but without a title or description,
and :func:`undocumented_fields` names it, so that a new published column cannot go
out undocumented unnoticed (``tests/test_datapackage.py`` fails on it).

The JSON is written by hand from the Data Package specification (it is a plain
document; the ``frictionless`` library validates it in the tests, it is not needed
to write it). Output bytes are stable: sorted keys, files in sorted order, the date
from ``SOURCE_DATE_EPOCH``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from barometre import __version__
from barometre.config import edition_config
from barometre.provenance import build_date, sha256_file, write_json
from barometre.typography import typeset

log = logging.getLogger("barometre")

#: Licence of every published output (data and report): the French open-data licence.
OUTPUT_LICENSE = {
    "name": "etalab-2.0",
    "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "title": "Licence Ouverte / Open Licence version 2.0",
}

#: Cells written empty, or « s » (secret statistique), mean « not published ».
MISSING_VALUES = ["", "s"]


@dataclass(frozen=True)
class FieldDoc:
    """How a published column is described: Table Schema type, French title and description."""

    type: str
    title: str
    description: str


_STRING, _NUMBER, _BOOLEAN = "string", "number", "boolean"

#: Every published column the project documents, by name (a column means the same in every file).
FIELDS: dict[str, FieldDoc] = {
    # --- tables/cells.csv and the per-question tables ---------------------------------------
    "edition": FieldDoc(_STRING, "Édition", "Édition du baromètre (année de l'enquête)."),
    "question_id": FieldDoc(_STRING, "Question",
        "Identifiant de la question dans le questionnaire de l'édition (Q01, T03, B_KIND…)."),
    "harmonised": FieldDoc(_STRING, "Nom harmonisé",
        "Nom stable de la question d'une édition à l'autre : deux éditions qui posent la même question lui "
        "donnent le même nom."),
    "question_type": FieldDoc(_STRING, "Type de question",
        "single : choix unique ; ordinal : échelle ordonnée ; band : tranches ; multiple : réponses multiples"
        " ; ranking : classement ; numeric : valeur numérique."),
    "level": FieldDoc(_STRING, "Unité statistique",
        "Ce que compte la ligne : respondent (répondants), tool (outils numériques décrits), bp (territoires "
        "ayant un budget participatif)."),
    "dimension": FieldDoc(_STRING, "Variable de croisement",
        "Variable selon laquelle la question est ventilée ; ensemble pour l'ensemble des répondants."),
    "dimension_value": FieldDoc(_STRING, "Modalité de croisement",
        "Colonne du tableau croisé : modalité de la variable de croisement, ou « Ensemble »."),
    "answer_key": FieldDoc(_STRING, "Code de la réponse",
        "Code stable de la modalité de réponse (top2 pour la somme des deux premières modalités d'une "
        "échelle, all pour l'ensemble)."),
    "answer_label": FieldDoc(_STRING, "Réponse",
        "Libellé de la modalité de réponse, tel que le questionnaire le présente."),
    "statistic": FieldDoc(_STRING, "Statistique",
        "share : part en % ; top2_share : part des deux premières modalités ; cumulative_share : part cumulée"
        " ; first_share : part classée en premier ; top3_share : part classée dans les trois premières ; "
        "mean_rank : rang moyen ; mean : moyenne ; median : médiane."),
    "count": FieldDoc(_NUMBER, "Effectif",
        "Nombre de réponses de la cellule (somme pondérée si l'enquête est pondérée). Vide ou « s » : non "
        "publié (secret statistique)."),
    "base": FieldDoc(_NUMBER, "Base",
        "Nombre de réponses sur lequel la part est calculée. Vide ou « s » : non publié (secret statistique)."),
    "effective_base": FieldDoc(_NUMBER, "Base effective",
        "Base effective de Kish, utilisée pour l'intervalle de confiance ; égale à la base sans pondération."),
    "value": FieldDoc(_NUMBER, "Valeur",
        "Valeur de la statistique : pourcentage de 0 à 100 pour les parts, rang, moyenne ou médiane sinon. "
        "Vide ou « s » : non publié (secret statistique)."),
    "ci_low": FieldDoc(_NUMBER, "Borne basse de l'intervalle",
        "Borne basse de l'intervalle de confiance à 95 % (Wilson pour une part, Student pour une moyenne ou "
        "un rang moyen) ; vide quand il n'y en a pas ou qu'elle n'est pas publiée."),
    "ci_high": FieldDoc(_NUMBER, "Borne haute de l'intervalle",
        "Borne haute de l'intervalle de confiance à 95 % ; vide quand il n'y en a pas ou qu'elle n'est pas "
        "publiée."),
    "small_base": FieldDoc(_BOOLEAN, "Petite base",
        "Vrai quand la base est inférieure au seuil de lecture prudente fixé par la configuration : la valeur"
        " est à lire avec précaution."),
    "suppressed": FieldDoc(_BOOLEAN, "Cellule masquée",
        "Vrai quand l'effectif, la valeur et l'intervalle sont masqués au titre du secret statistique "
        "(masquage primaire ou secondaire)."),
    "base_suppressed": FieldDoc(_BOOLEAN, "Base masquée",
        "Vrai quand la base de la colonne est elle aussi masquée, parce qu'elle révélerait une cellule "
        "masquée."),
    "unweighted_count": FieldDoc(_NUMBER, "Effectif non pondéré",
        "Nombre de répondants de la cellule, sans pondération (utilisé par les règles de secret statistique)."),
    "unweighted_base": FieldDoc(_NUMBER, "Base non pondérée", "Nombre de répondants de la base, sans pondération."),
    "letters": FieldDoc(_STRING, "Colonnes significativement inférieures",
        "Lettres des colonnes (modalités de croisement) dont la part ou la moyenne est significativement "
        "inférieure à celle de cette colonne, après correction pour comparaisons multiples (règle sous "
        "chaque tableau de la note technique) ; vide quand aucune, ou quand la cellule est masquée."),
    "deff": FieldDoc(_NUMBER, "Effet de plan",
        "Rapport de la variance sous le plan de sondage déclaré (grappes, poids) à celle d'un tirage "
        "aléatoire simple de même taille ; 1 quand le plan ne change rien."),
    # --- tables/tests.csv ---------------------------------------------------------------------
    "test": FieldDoc(_STRING, "Test",
        "Test d'association appliqué entre la question et la variable de croisement, ou « non applicable »."),
    "df": FieldDoc(_NUMBER, "Degrés de liberté", "Degrés de liberté du test du khi2 ; vide pour les autres tests."),
    "pvalue": FieldDoc(_NUMBER, "Valeur p",
        "Probabilité d'observer une association au moins aussi forte si la question et la variable de "
        "croisement étaient indépendantes."),
    "n": FieldDoc(_NUMBER, "Effectif du test", "Nombre de réponses prises en compte par le test."),
    "min_expected": FieldDoc(_NUMBER, "Effectif théorique minimal",
        "Plus petit effectif attendu sous l'hypothèse d'indépendance ; il décide entre le khi2 et un test "
        "exact ou par permutation."),
    "p_adjusted": FieldDoc(_NUMBER, "Valeur p ajustée",
        "Valeur p corrigée pour comparaisons multiples sur l'ensemble des tests de l'édition (méthode dans "
        "la colonne suivante)."),
    "adjust_method": FieldDoc(_STRING, "Méthode d'ajustement",
        "Correction pour comparaisons multiples : Holm (par défaut) ou Benjamini-Hochberg."),
    "suppression_reason": FieldDoc(_STRING, "Motif du masquage",
        "« secret statistique » quand la cellule ou sa base est masquée ; vide sinon."),
    "exempt": FieldDoc(_BOOLEAN, "Publiée par exception",
        "Vrai quand le compte est publié tel quel au titre d'une exception motivée de la politique de "
        "diffusion (compte qui ne porte pas sur des personnes, ou chiffre imprimé par l'édition elle-même)."),
    "published": FieldDoc(_BOOLEAN, "Test publié",
        "Faux quand le test n'est pas publié parce que son tableau contient une cellule masquée."),
    "withheld_reason": FieldDoc(_STRING, "Motif de non-publication",
        "« test non publié : secret statistique » pour un test retenu ; vide sinon."),
    "disclosure_status": FieldDoc(_STRING, "Diffusion",
        "published : publié ; exempt : publié au titre d'une exception motivée ; suppressed : retenu au titre"
        " du secret statistique (valeur vide)."),
    "disclosure_reason": FieldDoc(_STRING, "Motif de diffusion",
        "Motif de l'exception ou du secret statistique ; vide pour un chiffre publié normalement."),
    # --- tables/regroupements.csv ---------------------------------------------------------------
    "label": FieldDoc(_STRING, "Catégorie regroupée",
        "Libellé de la catégorie qui regroupe, dans tous les tableaux, les modalités trop rares."),
    "categories": FieldDoc(_STRING, "Modalités regroupées", "Modalités réunies dans la catégorie, séparées par « | »."),
    # --- tables/calibration.csv (calibrated editions only) ---------------------------------------
    "variable": FieldDoc(_STRING, "Variable de calage",
        "Variable dont la répartition connue sert de marge au calage des poids."),
    "category": FieldDoc(_STRING, "Modalité de calage", "Modalité de la variable de calage."),
    "target": FieldDoc(_NUMBER, "Effectif cible", "Total connu de la modalité, que le calage doit atteindre."),
    "weighted": FieldDoc(_NUMBER, "Effectif pondéré",
        "Somme des poids calés des répondants de la modalité (égale à la cible quand le calage a convergé)."),
    "respondents": FieldDoc(_NUMBER, "Répondants", "Nombre de répondants de la modalité, sans pondération."),
    # --- figures.csv ----------------------------------------------------------------------------
    "synthetic": FieldDoc(_BOOLEAN, "Données synthétiques",
        "Vrai quand les réponses brutes de l'édition sont la reconstitution documentée et non les "
        "microdonnées réelles."),
    "id": FieldDoc(_STRING, "Chiffre",
        "Identifiant du chiffre dans le registre (R01…B09 reprennent les numéros de l'édition publiée ; X… "
        "sont propres au projet)."),
    "component": FieldDoc(_STRING, "Composante",
        "Composante d'un chiffre à plusieurs valeurs (par exemple un type de collectivité) ; vide pour un "
        "chiffre unique."),
    "definition": FieldDoc(_STRING, "Définition", "Ce que mesure le chiffre, en une phrase."),
    "reading": FieldDoc(_STRING, "Lecture retenue",
        "Lecture retenue quand les sources publiées se contredisent ou sont ambiguës."),
    "unit": FieldDoc(_STRING, "Unité",
        "Ce que compte le chiffre : respondents (répondants), collectivities (collectivités), tools (outils),"
        " bp (territoires à budget participatif)."),
    "measure": FieldDoc(_STRING, "Mesure",
        "count : effectif ; distinct : nombre de valeurs distinctes ; share : part en % ; difference : écart "
        "en points ; sum : somme."),
    "question": FieldDoc(_STRING, "Question ou colonne",
        "Question (nom harmonisé) ou colonne des tables nettoyées dont le chiffre est tiré."),
    "numerator_rule": FieldDoc(_STRING, "Règle du numérateur", "Quelles réponses sont comptées au numérateur."),
    "base_rule": FieldDoc(_STRING, "Règle de la base",
        "Quelles réponses forment le dénominateur ; vide pour un effectif."),
    "numerator": FieldDoc(_NUMBER, "Numérateur", "Effectif (ou somme) au numérateur."),
    "denominator": FieldDoc(_NUMBER, "Dénominateur", "Effectif du dénominateur ; vide pour un effectif ou une somme."),
    "published_quote": FieldDoc(_STRING, "Citation publiée", "Phrase de l'édition publiée qui donne ce chiffre."),
    "published_value": FieldDoc(_STRING, "Valeur publiée", "Valeur telle que l'édition publiée l'écrit."),
    "bound_low": FieldDoc(_NUMBER, "Borne basse publiée",
        "Plus petite valeur compatible avec le chiffre publié (arrondi compris)."),
    "bound_high": FieldDoc(_NUMBER, "Borne haute publiée",
        "Plus grande valeur compatible avec le chiffre publié (arrondi compris) ; inf quand le chiffre publié"
        " n'est qu'un minimum."),
    "bounds_origin": FieldDoc(_STRING, "Origine des bornes",
        "publié : bornes tirées du chiffre publié ; lecture du projet : bornes déduites par le projet d'une "
        "formulation non chiffrée ; vide sans bornes."),
    "status": FieldDoc(_STRING, "Conformité",
        "pass : dans les bornes publiées ; fail : hors des bornes ; non publié : chiffre propre au projet, "
        "sans bornes."),
    "published_key": FieldDoc(_STRING, "Chiffre publié comparé",
        "Identifiant (et composante) du chiffre publié auquel ce chiffre est comparé ; vide s'il n'y en a "
        "pas."),
}

#: Row identity of each kind of table (every listed column is present and never missing).
PRIMARY_KEYS = {
    "cells": ["question_id", "dimension", "dimension_value", "answer_key", "statistic"],
    "tests": ["question_id", "dimension", "answer_key"],
    "figures": ["id", "component"],
}

#: Columns whose empty cell is a value (the empty string), not a missing one.
EMPTY_IS_VALUE = {"component"}

_TITLES = {
    "cells": ("Tableaux croisés (toutes les questions)",
              "Chaque question croisée par chaque variable de croisement : effectifs, bases, parts en %,"
              " intervalles de confiance à 95 % et indicateurs de secret statistique. Une ligne par question,"
              " variable et modalité de croisement, statistique et réponse."),
    "tests": ("Tests d'association",
              "Un test d'association par question et variable de croisement (par option pour une question à"
              " réponses multiples)."),
    "merges": ("Regroupements de modalités",
               "Pour chaque variable de croisement, la catégorie « Autres (regroupés) » et les modalités trop"
               " rares qu'elle réunit, les mêmes dans tous les tableaux de l'édition."),
    "calibration": ("Marges de calage",
                    "Pour chaque modalité des variables de calage : effectif cible, effectif pondéré après calage"
                    " et nombre de répondants."),
    "figures": ("Chiffres nommés et conformité",
                "Chaque chiffre du rapport : définition, numérateur, dénominateur, valeur, intervalle, citation et"
                " bornes de l'édition publiée, statut de conformité."),
}


def _infer_type(series: pd.Series) -> str:
    """Table Schema type of an undocumented column, from its values as pandas reads them."""
    if pd.api.types.is_bool_dtype(series):
        return _BOOLEAN
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return _NUMBER
    return _STRING


def table_schema(path: str | Path, kind: str) -> dict:
    """Table Schema of one published CSV, from its header and :data:`FIELDS`.

    Parameters
    ----------
    path
        The CSV file.
    kind
        ``cells``, ``tests`` or ``figures``: chooses the primary key.
    """
    frame = pd.read_csv(path, dtype=None, keep_default_na=True, na_values=["s"])
    fields = []
    for name in frame.columns:
        doc = FIELDS.get(name)
        field: dict[str, object] = {"name": name}
        if doc is None:
            field["type"] = _infer_type(frame[name])
            log.warning("%s: column %r has no description in barometre.datapackage.FIELDS", path, name)
        else:
            field.update(type=doc.type, title=typeset(doc.title), description=typeset(doc.description))
        if name in EMPTY_IS_VALUE:
            field["missingValues"] = []
        fields.append(field)
    schema: dict[str, object] = {"fields": fields, "missingValues": MISSING_VALUES}
    key = [k for k in PRIMARY_KEYS.get(kind, []) if k in frame.columns]
    if key and len(key) == len(PRIMARY_KEYS[kind]):
        schema["primaryKey"] = key
    return schema


def _resource(path: Path, root: Path, kind: str, title: str, description: str) -> dict:
    rel = path.relative_to(root).as_posix()
    return {
        "name": re.sub(r"[^a-z0-9.-]+", "-", path.relative_to(root).with_suffix("").as_posix().lower()),
        "path": rel,
        "profile": "tabular-data-resource",
        "title": typeset(title),
        "description": typeset(description),
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "bytes": path.stat().st_size,
        "hash": f"sha256:{sha256_file(path)}",
        "schema": table_schema(path, kind),
    }


def question_tables(tables: Path) -> list[Path]:
    """The per-question tables of ``tables/`` (every CSV but cells, tests and calibration), sorted."""
    return sorted(
        p
        for p in tables.glob("*.csv")
        if p.name not in ("cells.csv", "tests.csv", "calibration.csv", "regroupements.csv")
    )


def build_datapackage(edition: str, tables: str | Path, figures: str | Path, root: str | Path,
                      synthetic: bool) -> dict:
    """The data package descriptor of one edition.

    Parameters
    ----------
    edition
        Edition described.
    tables, figures
        The ``tables/`` folder and ``figures.csv`` of the edition.
    root
        Folder of ``datapackage.json`` (``results/<edition>``): resource paths are relative to it.
    synthetic
        Whether the raw data is the documented reconstruction (carried as ``synthetic``).
    """
    root, tables = Path(root), Path(tables)
    resources = [
        _resource(tables / "cells.csv", root, "cells", *_TITLES["cells"]),
        _resource(tables / "tests.csv", root, "tests", *_TITLES["tests"]),
    ]
    for path in question_tables(tables):
        qid = path.stem.split("_", 1)[0]
        resources.append(_resource(path, root, "cells", f"Tableau croisé de la question {qid}",
                                   f"Les lignes de cells.csv de la question {qid}, dans un fichier à part."))
    if (tables / "regroupements.csv").exists():
        resources.append(_resource(tables / "regroupements.csv", root, "merges", *_TITLES["merges"]))
    if (tables / "calibration.csv").exists():  # calibrated editions only
        resources.append(_resource(tables / "calibration.csv", root, "calibration", *_TITLES["calibration"]))
    resources.append(_resource(Path(figures), root, "figures", *_TITLES["figures"]))
    warning = (" Les réponses brutes de cette édition sont une reconstitution synthétique documentée"
               " (les microdonnées réelles ne sont pas publiques) : les tableaux en sont tirés, seuls les"
               " chiffres publiés de l'édition originale sont réels.") if synthetic else ""
    return {
        "profile": "tabular-data-package",
        "name": f"barometre-democratie-locale-numerique-{edition}".lower(),
        "title": typeset(f"Baromètre de la démocratie locale numérique, édition {edition} : tableaux et chiffres"),
        "description": typeset("Tableaux croisés, tests d'association et chiffres nommés de l'édition, produits par"
                               " la chaîne de traitement reproductible barometre. Une cellule vide ou « s » n'est"
                               " pas publiée (secret statistique ou valeur sans objet)." + warning),
        "version": __version__,
        "created": build_date(),
        "keywords": ["démocratie locale numérique", "collectivités territoriales", "participation citoyenne",
                     "enquête"],
        "licenses": [OUTPUT_LICENSE],
        "contributors": [{"title": "Équipe du projet barometre", "role": "author"}],
        "sources": [{"title": typeset("Décider ensemble, « Le baromètre de la démocratie locale numérique »"
                                      " (édition originale)"),
                     "path": "https://www.deciderensemble.com"}],
        "synthetic": bool(synthetic),
        "resources": resources,
    }


def undocumented_fields(package: dict) -> dict[str, list[str]]:
    """Columns of each resource published without a description (none is allowed)."""
    out = {}
    for res in package["resources"]:
        missing = [f["name"] for f in res["schema"]["fields"] if not f.get("description")]
        if missing:
            out[res["path"]] = missing
    return out


write_datapackage = write_json


def run_datapackage(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``describe_datapackage``: published CSVs of an edition → ``datapackage.json``."""
    out = Path(outputs["datapackage"])
    package = build_datapackage(edition, inputs["tables"], inputs["figures"], out.parent,
                                synthetic=bool(edition_config(config, edition)["synthetic"]))
    for where, names in undocumented_fields(package).items():
        log.warning("%s: published without a description: %s", where, ", ".join(names))
    write_datapackage(package, out)
    log.info("datapackage: %d resources → %s", len(package["resources"]), out)
