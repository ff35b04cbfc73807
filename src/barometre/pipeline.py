"""Entry points of each Snakemake rule: read inputs, call the pure phase functions, write outputs.

The scripts in ``scripts/`` only redirect their output to the rule's log and
call one function of this module.
"""
from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from barometre.codebook import Codebook, load_codebook
from barometre.config import edition_config, resolve_salt

log = logging.getLogger("barometre")


@contextmanager
def logging_to(path: str | Path) -> Iterator[None]:
    """Send logging and stderr of one rule to its log file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        old_err = sys.stderr
        sys.stderr = fh
        try:
            yield
        except Exception:
            logging.getLogger("barometre").exception("rule failed")
            raise
        finally:
            sys.stderr = old_err
            root.removeHandler(handler)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame to parquet, deterministically (no index, fixed row order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a tidy CSV in UTF-8 with ``,`` separator and ``.`` decimals (machine-readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def read_edition_codebook(config: dict, edition: str) -> Codebook:
    """Load the codebook configured for ``edition``."""
    return load_codebook(edition_config(config, edition)["codebook"])


# --------------------------------------------------------------------------- clean
def cleaning_report(result, codebook: Codebook, edition: str, salt_origin: str, synthetic: bool,
                    raw_dir: str | Path | None = None) -> str:
    """The short cleaning report (French markdown): counts by reason, raw = kept + excluded.

    ``raw_dir`` is the edition's raw folder, whose ``README.md`` documents a synthetic reconstruction
    (default: ``data/raw/<edition>``).
    """
    lines = [f"# Rapport de nettoyage — édition {edition}", ""]
    if synthetic:
        readme = (Path(raw_dir) if raw_dir is not None else Path("data/raw") / str(edition)) / "README.md"
        lines += [f"> Données **synthétiques** : reconstruction documentée des exports bruts de {edition} "
                  f"(voir `{readme.as_posix()}`), pas les réponses réelles.", ""]
    lines += ["## Enregistrements", "", "| Fichier | Bruts | Exclus | Gardés |", "|---|---:|---:|---:|"]
    for name, n_raw in result.raw_rows.items():
        n_ex = int((result.exclusions["source"] == name).sum())
        lines.append(f"| {name} | {n_raw} | {n_ex} | {result.kept_rows[name]} |")
    lines += ["", "Chaque fichier vérifie : bruts = gardés + exclus.", "", "## Exclusions par motif", "",
              "| Règle | Motif | Nombre |", "|---|---|---:|"]
    if len(result.exclusions):
        counts = result.exclusions.groupby(["action", "reason"], sort=True).size()
        for (action, reason), n in counts.items():
            lines.append(f"| {action.removeprefix('exclu:')} | {reason} | {n} |")
    lines += ["", "## Autres traitements", "", "| Variable | Traitement | Motif | Lignes |", "|---|---|---|---:|"]
    if len(result.events):
        counts = result.events.groupby(["column", "action", "reason"], sort=True).size()
        for (col, action, reason), n in counts.items():
            lines.append(f"| {col} | {action} | {reason} | {n} |")
    if getattr(result, "notes", ()):
        # What reading the exports noticed: unknown columns, labels differing from the wording, Excel's sep= line.
        lines += ["", "## Remarques sur les exports", "", *(f"- {note}" for note in result.notes)]
    n_coll = result.respondents["collectivity_id"].nunique() if "collectivity_id" in result.respondents else 0
    lines += ["", "## Tables produites", "",
              f"- répondants : {len(result.respondents)} ({n_coll} collectivités distinctes)"]
    # Tables the edition's questionnaire does not have (no tool blocks, no BP inventory) are not listed.
    if codebook.at_level("tool"):
        lines.append(f"- outils : {len(result.tools)}")
    if codebook.at_level("bp"):
        lines.append(f"- inventaire des budgets participatifs : {len(result.bp)} territoires")
    lines += ["", "## Données personnelles", "",
              "Les identifiants directs (" + ", ".join(codebook.identifiers.get("drop", [])) + ") sont supprimés ; "
              "les noms de collectivités sont remplacés par un pseudonyme stable (HMAC-SHA256). "
              f"Origine du sel : {salt_origin} (le sel n'est jamais écrit dans les sorties). "
              "Les courriels, numéros de téléphone et noms trouvés dans les textes libres sont masqués.", ""]
    return "\n".join(lines)


def run_clean(edition: str, config: dict, outputs: dict[str, str]) -> None:
    """Rule ``clean``: raw exports of ``edition`` → processed parquet tables and cleaning log."""
    from barometre.clean import clean_edition
    from barometre.ingest import read_raw

    spec = edition_config(config, edition)
    codebook = load_codebook(spec["codebook"])
    raws = {}
    for name, raw_spec in spec["raw"].items():
        expected = None
        if codebook.sources.get(name, {}).get("level") == "bp":
            expected = [c for q in codebook.at_level("bp") for c in q.raw_columns()]
        raws[name] = read_raw(name, raw_spec, expected)
        log.info("read %s: %d records, %d columns (%s)", raw_spec["path"], len(raws[name].frame),
                 raws[name].frame.shape[1], raws[name].encoding)
    salt, origin = resolve_salt(config, spec["synthetic"], edition)
    log.info("pseudonymisation salt from %s", origin)
    result = clean_edition(raws, codebook, spec.get("exclusions", []), salt)
    write_parquet(result.respondents, outputs["respondents"])
    write_parquet(result.tools, outputs["tools"])
    write_parquet(result.bp, outputs["bp"])
    logframe = pd.concat([result.exclusions, result.events], ignore_index=True)
    write_csv(logframe, outputs["log_table"])
    raw_dir = Path(next(iter(spec["raw"].values()))["path"]).parent
    Path(outputs["report"]).write_text(cleaning_report(result, codebook, edition, origin, spec["synthetic"], raw_dir),
                                       encoding="utf-8")
    for name, n in result.raw_rows.items():
        log.info("%s: %d raw = %d kept + %d excluded", name, n, result.kept_rows[name],
                 int((result.exclusions["source"] == name).sum()))


# --------------------------------------------------------------------------- figures
def read_processed(inputs: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Processed tables of one edition by level."""
    return {
        "respondents": pd.read_parquet(inputs["respondents"]),
        "tools": pd.read_parquet(inputs["tools"]),
        "bp": pd.read_parquet(inputs["bp"]),
    }


def _calibrated(frames: dict[str, pd.DataFrame], calibration: dict | None):
    """Frames with the calibrated weight when the edition is calibrated (config ``calibration.<edition>``)."""
    if not calibration:
        return frames, None
    from barometre.calibration import calibrate_frames

    frames, result = calibrate_frames(frames, calibration)
    log.info("%s", result.summary())
    return frames, result


def run_figures(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``compute_figures``: registry + processed tables → ``figures.csv``."""
    from barometre.calibration import edition_weight
    from barometre.figures import compute_figures, figures_frame, load_published, load_registry

    spec = edition_config(config, edition)
    codebook = load_codebook(inputs["codebook"])
    registry = load_registry(inputs["registry"]) if inputs.get("registry") else []  # registry: is optional
    published = load_published(inputs["published"]) if inputs.get("published") else {}
    calibration = (config.get("calibration") or {}).get(edition)
    frames, _ = _calibrated(read_processed(inputs), calibration)
    figures = compute_figures(registry, frames, codebook, published, config["tabulation"].get("confidence", 0.95),
                              weight=edition_weight(config["tabulation"], calibration))
    table = figures_frame(figures)
    if inputs.get("tables"):  # the publication layer: a figure the tables do not already give away is withheld
        table = _publish_figures(table, edition, config, inputs, codebook)
    table.insert(0, "edition", edition)
    table.insert(1, "synthetic", bool(spec["synthetic"]))
    write_csv(table, outputs["figures"])
    counts = table["status"].value_counts().sort_index()
    log.info("figures: %d computed; status: %s", len(table), dict(counts))


def _publish_figures(table: pd.DataFrame, edition: str, config: dict, inputs: dict[str, str],
                     codebook: Codebook) -> pd.DataFrame:
    """Figures through the publication layer, against the tables as published (cells, tests, merges)."""
    from barometre.audit import read_merges, read_published_cells
    from barometre.figures import load_registry
    from barometre.publication import Policy, publish_figures

    tables = Path(inputs["tables"])
    policy = Policy.from_config(config["disclosure"], edition)
    tests = pd.read_csv(tables / "tests.csv", keep_default_na=False, na_values=[""])
    out = publish_figures(
        table,
        load_registry(inputs["registry"]) if inputs.get("registry") else [],
        codebook,
        policy,
        read_published_cells(tables),
        tests,
        read_merges(tables),
    )
    log.info("figures: %s", dict(out["disclosure_status"].value_counts().sort_index()))
    return out


def run_audit(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``audit_disclosure``: attack the published files; write the audit, fail naming any recoverable cell."""
    from barometre.audit import DisclosureAuditError, audit_published

    policy_cfg = config["disclosure"]
    table = audit_published(inputs["tables"], inputs["figures"], inputs["primary"], load_codebook(inputs["codebook"]),
                            inputs.get("registry") or None, policy_cfg, edition)
    write_csv(table, outputs["audit"])
    failed = table[table["status"] == "échec"]
    log.info("audit: %d masked cells, %d failures", len(table), len(failed))
    if len(failed):
        names = [
            f"{r.question} {r.statistic} « {r.answer} » × {r.dimension} = {r.group}: "
            f"[{r.feasible_min:g} ; {r.feasible_max:g}]"
            for r in failed.itertuples()
        ]
        raise DisclosureAuditError(
            f"edition {edition}: {len(failed)} masked cell(s) recoverable below their protection "
            "level:\n  " + "\n  ".join(names[:40])
        )


def run_conformity(edition: str, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``check_conformity``: fail when a figure falls outside its published bounds."""
    from barometre.figures import assert_conformity

    table = pd.read_csv(inputs["figures"], keep_default_na=False, na_values=[""])
    table["component"] = table["component"].fillna("")
    published = None
    if inputs.get("published"):
        import yaml

        published = yaml.safe_load(Path(inputs["published"]).read_text(encoding="utf-8"))
    assert_conformity(table, edition, published)
    checked = table[table["status"].isin(["pass", "fail"])]
    lines = [
        f"Conformité de l'édition {edition} : {len(checked)} chiffres comparés à leurs bornes, tous conformes.",
        "",
    ]
    for r in checked.itertuples():
        key = f"{r.id}.{r.component}" if r.component else r.id
        lines.append(f"{key}\t{r.value:.4f}\t[{r.bound_low:g} ; {r.bound_high:g}]\t{r.bounds_origin}\t{r.status}")
    Path(outputs["report"]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("conformity: %d figures within bounds", len(checked))


def run_provenance(edition: str, config: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Rule ``write_provenance``: checksums, versions, git state and build date → ``provenance.json``."""
    from barometre.provenance import build_provenance, write_provenance

    spec = edition_config(config, edition)
    record = build_provenance(edition, {k: v for k, v in inputs.items() if k not in ("script", "checked")},
                              bool(spec["synthetic"]))
    write_provenance(record, outputs["provenance"])
    log.info("provenance: %d input files, git %s", len(record["inputs"]), record["git"])


# --------------------------------------------------------------------------- tabulate
LEVEL_FRAMES = {"respondent": "respondents", "tool": "tools", "bp": "bp"}
#: First line of every sheet of the workbook of a synthetic edition.
SYNTHETIC_BANNER = "Données synthétiques : reconstruction documentée, ne pas citer comme résultats réels"


def run_tabulate(edition: str, inputs: dict[str, str], outputs: dict[str, str], *, tabulation: dict, disclosure: dict,
                 design: dict | None = None, comparisons: dict | None = None, calibration: dict | None = None,
                 synthetic: bool = False) -> None:
    """Rule ``tabulate``: every question × each dimension → tidy CSVs, tests, workbook.

    Rare dimension values (fewer than ``disclosure.min_cell`` rows, e.g. « Service de
    l'État », n = 1) are merged before tabulating, then primary and secondary
    suppression hide every cell that could reveal fewer than ``min_cell`` respondents.
    """
    from barometre import comparisons as cmp
    from barometre import publication
    from barometre.calibration import edition_weight
    from barometre.design import COLLECTIVITY, CONFLICT_COLUMNS, Design, collectivity_units, design_of, design_tables
    from barometre.disclosure import check_disclosure, publishable
    from barometre.tabulate import tabulate_level
    from barometre.workbook import write_workbook

    codebook = load_codebook(inputs["codebook"])
    processed = read_processed(inputs)
    processed, calibrated = _calibrated(processed, calibration)
    weight = edition_weight(tabulation, calibration)
    policy = publication.Policy.from_config(disclosure, edition)
    min_cell = policy.min_cell
    dimensions = tabulation["dimensions"]
    present = {lv: [d for d in dimensions.get(lv, []) if d in processed[name].columns]
               for lv, name in LEVEL_FRAMES.items() if not processed[name].empty}
    # One merge map per breakdown variable, the same in every level (« Autres (regroupés) » means one thing).
    exempt_levels = {e.level for e in policy.exemptions if e.level and not (e.question or e.dimension or e.figure)}
    protected_levels = {lv: dims for lv, dims in present.items() if lv not in exempt_levels}
    maps = publication.merge_maps(
        {lv: processed[LEVEL_FRAMES[lv]] for lv in protected_levels}, protected_levels, min_cell
    )
    for dim, members in maps.items():
        log.info("%s: categories merged into « %s » in every table: %s", dim, policy.merge_label, members)
    options = dict(weight=weight, confidence=tabulation.get("confidence", 0.95),
                   min_expected=tabulation.get("min_expected_chi2", 5),
                   permutations=tabulation.get("permutations", 9999), seed=tabulation.get("seed"))
    cells_parts, test_parts, conflicts = [], [], []
    for level, name in LEVEL_FRAMES.items():
        frame = processed[name]
        questions = codebook.at_level(level)
        if frame.empty or not questions:
            continue
        # The dimensions are configured once for every edition: an edition whose questionnaire
        # lacks one (e.g. no tool type) is tabulated by the others only.
        dims = [d for d in dimensions.get(level, []) if d in frame.columns]
        absent = [d for d in dimensions.get(level, []) if d not in frame.columns]
        if absent:
            log.warning("%s: dimension(s) %s absent from the %s questionnaire, not crossed", level, absent, edition)

        # merged(frame, keep=...): this level's merge maps applied to a frame
        merged = functools.partial(publication.apply_merges, maps={d: m for d, m in maps.items() if d in dims},
                                   label=policy.merge_label)

        # A dimension that is itself a question keeps its own categories in its own table
        # (suppression then hides its rare cells); everywhere else it is crossed merged.
        # Attributes of the collectivity (codebook `unit: collectivity`) are tabulated once per
        # collectivity, crossed only with the dimensions that are collectivity attributes too.
        per_coll = [q for q in questions if q.tabulation_unit == COLLECTIVITY]
        plain = [q for q in questions if q.tabulation_unit != COLLECTIVITY]
        # a weight exists on the calibrated levels only (respondents and their tools, not the BP inventory)
        options["weight"] = weight if weight in frame.columns else None
        level_design = design_of({"design": design or {}, "tabulation": {"weight": options["weight"]}}, level)
        groups = [(merged(frame), [q for q in plain if q.harmonised not in dims], dims, level_design)]
        groups += [(merged(frame, keep=q.harmonised), [q], dims, level_design) for q in plain if q.harmonised in dims]
        if per_coll:
            units = collectivity_units(frame, per_coll, **dict((design or {}).get("collectivity") or {}))
            log.info("%s: collectivity attributes %s tabulated once per collectivity (first complete response): %s",
                     level, [q.id for q in per_coll], units.summary())
            conflicts.append(units.conflicts)
            cdims = [d for d in dims if d in {q.harmonised for q in per_coll}]
            cdesign = Design(weight=level_design.weight)  # one row per collectivity: no cluster left
            groups += [(merged(units.frame, keep=q.harmonised if q.harmonised in dims else None), [q], cdims, cdesign)
                       for q in per_coll]
        for sub, qs, gdims, gdesign in groups:
            res = tabulate_level(sub, qs, gdims, codebook=codebook, **options)
            res_cells, res_tests = design_tables(res.cells, res.tests, sub, qs, gdesign, codebook=codebook,
                                                 confidence=tabulation.get("confidence", 0.95))
            cells_parts.append(res_cells)
            test_parts.append(res_tests)
    position = {q.id: i for i, q in enumerate(codebook.questions)}

    def in_order(frame: pd.DataFrame) -> pd.DataFrame:
        key = frame["question_id"].map(position)
        return frame.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)

    result_cells = in_order(pd.concat([c for c in cells_parts if len(c)], ignore_index=True))
    result_tests = in_order(pd.concat([t for t in test_parts if len(t)], ignore_index=True))
    if "unweighted_count" in result_cells.columns:  # unweighted levels of a weighted edition: counts are respondents
        result_cells["unweighted_count"] = result_cells["unweighted_count"].fillna(result_cells["count"])
        result_cells["unweighted_base"] = result_cells["unweighted_base"].fillna(result_cells["base"])
    result_cells = cmp.add_letters(result_cells, {"comparisons": comparisons or {}},
                                   confidence=tabulation.get("confidence", 0.95))
    merges = {d: {policy.merge_label: m} for d, m in maps.items()}
    registry, exempt_figures = _exempt_figures(inputs, policy, processed, codebook, tabulation)
    protected = publication.protect(result_cells, result_tests, codebook, policy, merges, registry, exempt_figures)
    # a letter on or naming a masked cell would tell something about it; a masked cell keeps no design effect
    cells = _without_design_effect_on_masked(cmp.hide_letters(protected.cells))
    # Multiplicity is adjusted over the tests that are published (a withheld test has no p-value left).
    published_tests = cmp.adjust_tests(protected.tests, {"comparisons": comparisons or {}})
    # The audit (rule audit_disclosure) is the check now: the old per-question one also flags masked
    # cells of at least min_cell that a subtraction gives back, which have no protection level of their own.
    problems = check_disclosure(cells, min_cell, codebook=codebook)
    log.info(
        "per-question check: %d masked cell(s) of at least %d, or zero, recoverable by one subtraction",
        len(problems),
        min_cell,
    )
    failed = protected.audit[protected.audit["status"] == "échec"]
    if len(failed):
        raise RuntimeError(f"secondary suppression did not protect {len(failed)} cell(s): "
                           + "; ".join(f"{r.question} {r.answer} × {r.group}" for r in failed.itertuples()))
    out = Path(outputs["tables"])
    out.mkdir(parents=True, exist_ok=True)
    # Published tables: suppressed counts, values and intervals are blanked, the flags stay.
    public = publishable(cells)
    public.insert(0, "edition", edition)
    write_csv(public, out / "cells.csv")
    write_csv(published_tests, out / "tests.csv")
    write_csv(publication.merges_frame(maps, policy.merge_label), out / "regroupements.csv")
    if calibrated is not None:
        write_csv(calibrated.margins, out / "calibration.csv")
    # Answers that differ between respondents of one collectivity: respondent ids and their answers, so
    # kept with the processed data (never in the published tables/); written even when empty.
    write_csv(pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame(columns=CONFLICT_COLUMNS),
              outputs["conflicts"])
    for qid, group in public.groupby("question_id", sort=True):
        harmonised = group["harmonised"].iloc[0]
        write_csv(group, out / f"{qid}_{harmonised}.csv")
    # Which masked cells are primary ones: for the audit only, never published (it would say « 1 or 2 »).
    internal = cells[["question_id", "dimension", "dimension_value", "statistic", "answer_key"]].assign(
        primary=protected.primary
    )
    write_csv(internal[internal["primary"] > 0], outputs["primary"])
    write_workbook(cells, published_tests[published_tests["published"]], codebook, outputs["workbook"],
                   confidence=tabulation.get("confidence", 0.95), min_cell=min_cell,
                   small_base=policy.small_base, note=SYNTHETIC_BANNER if synthetic else None,
                   letters_rule=cmp.rule_text({"comparisons": comparisons or {}}))
    n_tests = int(published_tests["published"].sum())
    log.info("tabulate: %d cells (%d suppressed), %d tests (%d published)", len(cells), int(cells["suppressed"].sum()),
             len(published_tests), n_tests)


def _exempt_figures(inputs: dict[str, str], policy, processed: dict[str, pd.DataFrame], codebook: Codebook,
                    tabulation: dict) -> tuple[list[dict], pd.DataFrame | None]:
    """The registry and the figures published whatever the tables say (exemptions).

    The figures are computed from the processed tables.
    """
    from barometre.audit import figure_key
    from barometre.figures import compute_figures, figures_frame, load_registry
    from barometre.publication import figure_exemption

    if not inputs.get("registry"):
        return [], None
    registry = load_registry(inputs["registry"])
    exempt = [f for f in registry if figure_exemption(figure_key(f), f, policy) is not None]
    if not exempt:
        return registry, None
    return registry, figures_frame(compute_figures(exempt, processed, codebook, {}, tabulation.get("confidence", 0.95)))


def _without_design_effect_on_masked(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` whose masked cells keep no design effect (it is computed from the masked share)."""
    out = cells.copy()
    if "deff" in out.columns:
        hidden = out["suppressed"].astype(bool) | out["base_suppressed"].astype(bool)
        out["deff"] = out["deff"].astype("float64").mask(hidden.to_numpy())
    return out
