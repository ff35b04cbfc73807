"""Command line: ``python -m barometre explain F05 --edition 2017``, ``python -m barometre codebook draft``.

``explain`` prints how a figure is computed, from the question wording and raw
columns down to the value, its interval and the published comparison.
``codebook draft <export.sav> --like codebooks/2017.yaml`` drafts a codebook from an
export's metadata (see :mod:`barometre.codebook_draft`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from barometre.codebook import load_codebook
from barometre.config import edition_config, load_config
from barometre.errors import BarometreError
from barometre.figures import compute_figures, explanation, load_published, load_registry, units_note


def _processed_frames(edition: str) -> dict[str, pd.DataFrame]:
    base = Path("data/processed") / edition
    names = {"respondents": "respondents.parquet", "tools": "tools.parquet", "bp": "bp_inventory.parquet"}
    missing = [str(base / f) for f in names.values() if not (base / f).is_file()]
    if missing:
        raise BarometreError(
            f"processed tables missing ({', '.join(missing)}): run `snakemake` (or `make report`) first"
        )
    return {k: pd.read_parquet(base / f) for k, f in names.items()}


def explain_text(figure_id: str, edition: str, config_path: str = "config.yaml") -> str:
    """The explanation of one figure (or of every component of a multi-valued figure), in French."""
    config = load_config(config_path)
    spec = edition_config(config, edition)
    codebook = load_codebook(spec["codebook"])
    registry = load_registry(spec["registry"])
    wanted_id, _, wanted_comp = figure_id.partition(".")
    entries = [f for f in registry if f["id"] == wanted_id and (not wanted_comp or f.get("component") == wanted_comp)]
    if not entries:
        known = sorted({f["id"] for f in registry})
        raise BarometreError(f"figure {figure_id!r} is not in {spec['registry']} (known ids: {', '.join(known)})")
    frames = _processed_frames(edition)
    published = load_published(spec["published"]) if spec.get("published") else {}
    calibration = (config.get("calibration") or {}).get(edition)
    if calibration:  # a calibrated edition: the figures are weighted, as in figures.csv
        from barometre.calibration import calibrate_frames

        frames, _ = calibrate_frames(frames, calibration)
    from barometre.calibration import edition_weight

    figures = compute_figures(entries, frames, codebook, published, config["tabulation"].get("confidence", 0.95),
                              weight=edition_weight(config["tabulation"], calibration))
    log_path = Path("data/processed") / edition / "cleaning_log.csv"
    exclusions = pd.read_csv(log_path) if log_path.is_file() else pd.DataFrame(columns=["action", "reason", "column"])
    out: list[str] = []
    if spec.get("synthetic"):
        out.append("Données synthétiques : reconstruction documentée des exports de cette édition.")
    blocks = codebook.sources.get("survey", {}).get("tool_blocks", {}).get("count")
    for entry, fig in zip(entries, figures, strict=True):
        out.append("")
        out.append(f"== {fig.key} — {fig.definition}")
        out += [f"{label} : {text}" for label, text in explanation(asdict(fig), entry, codebook, exclusions,
                                                                     tool_blocks=blocks,
                                                                     units_note=units_note(frames, codebook, fig.unit))]
    return "\n".join(out).lstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m barometre", description="Baromètre de la démocratie locale numérique"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("explain", help="explique le calcul d'un chiffre du registre (ex. F05)")
    p.add_argument("figure", help="identifiant du chiffre, ex. F05 ou R03.commune")
    p.add_argument("--edition", required=True)
    p.add_argument("--config", default="config.yaml")
    c = sub.add_parser("codebook", help="outils du codebook").add_subparsers(dest="action", required=True)
    d = c.add_parser(
        "draft", help="brouillon de codebook tiré d'un export SPSS, chaque supposition marquée « À VÉRIFIER »"
    )
    d.add_argument("export", help="l'export .sav")
    d.add_argument("--like", help="codebook d'une édition précédente (noms harmonisés, clés, types, filtres)")
    d.add_argument("--output", help="fichier YAML à écrire (par défaut : la sortie standard)")
    args = parser.parse_args(argv)
    try:
        if args.command == "codebook":
            from barometre.codebook_draft import write_draft

            text = write_draft(args.export, args.like, args.output)
            if not args.output:
                sys.stdout.write(text)
            return 0
        sys.stdout.write(explain_text(args.figure, args.edition, args.config))
    except BarometreError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
