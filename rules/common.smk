# Helpers and config validation, run before any job.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# Rule scripts run in fresh Python processes, where an editable install of the package would
# import another checkout's src/. PYTHONPATH comes first on sys.path: every job imports the
# barometre code of this tree, so a run depends only on the files of its own project.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        dict.fromkeys([str(Path(workflow.basedir) / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    )
)

from barometre.config import check_files, validate_schema  # noqa: E402
from barometre.provenance import run_source_date_epoch  # noqa: E402

# Schema validation: an unknown key, a wrong type or a missing required key stops here. The
# project's own check comes first: it lists every problem in a few lines, an unknown key with the
# nearest allowed one (Snakemake's own message prints the whole schema and configuration).
validate_schema(config, (getattr(workflow, "configfiles", None) or ["config.yaml"])[0])
validate(config, schema="../schemas/config.schema.json")
# Every configured file must exist and every edition folder must hold data.
check_files(config, workflow.basedir)

EDITIONS = sorted(str(e) for e in config["editions"])

# One date for every output of the run (PDF and workbook metadata, report, provenance.json), chosen
# as `make` chooses it: the environment's SOURCE_DATE_EPOCH, else the last commit's date, else
# report.source_date_epoch. Jobs inherit it, so `snakemake` run directly builds the same bytes.
# (SOURCE_DATE_EPOCH is optional, hence no `envvars:` directive; on a cluster node the job reads
# this file again and gets the same value from the same commit.)
os.environ.update(
    SOURCE_DATE_EPOCH=str(run_source_date_epoch(workflow.basedir, config.get("report", {}).get("source_date_epoch", 0)))
)


def package_code(*modules):
    """Package modules run by a job, declared as inputs so that a code change reruns it."""
    return [f"src/barometre/{m}.py" for m in ("pipeline", *modules)]


def edition_spec(wildcards):
    return config["editions"][wildcards.edition]


def raw_inputs(wildcards):
    """Every raw file of the edition, by its config key."""
    return {name: spec["path"] for name, spec in edition_spec(wildcards)["raw"].items()}


def codebook_of(wildcards):
    return edition_spec(wildcards)["codebook"]


def registry_of(wildcards):
    """The edition's figures registry; none (an empty input) when the edition has no registry."""
    return edition_spec(wildcards).get("registry") or []


def published_of(wildcards):
    """The edition's published reference; none (an empty input) for an edition not yet published."""
    return edition_spec(wildcards).get("published") or []


def editorial_of(wildcards):
    """The edition's editorial Markdown files and the generic ones they fall back on."""
    base = Path(workflow.basedir, "editorial")
    files = sorted(base.glob(f"{wildcards.edition}/*.md")) + sorted(base.glob("generique/*.md"))
    return [str(p.relative_to(workflow.basedir)) for p in files]


def all_outputs():
    outs = []
    for e in EDITIONS:
        outs += [
            f"data/processed/{e}/respondents.parquet",
            f"results/{e}/tableaux.xlsx",
            f"results/{e}/figures.csv",
            f"results/{e}/conformity.txt",
            f"results/{e}/provenance.json",
            f"results/{e}/datapackage.json",
            f"results/{e}/disclosure_audit.csv",
        ]
        if config["editions"][e].get("report", True):
            outs += [f"results/{e}/rapport_{e}.{fmt}" for fmt in config["report"]["formats"]]
            outs += [f"results/{e}/note_technique_{e}.{fmt}" for fmt in config["report"]["formats"]]
    if "trends" in config:
        outs += trends_outputs()
    return outs


TREND_EDITIONS = [str(e) for e in config.get("trends", {}).get("editions", [])]


def trend_files(pattern):
    """One file per compared edition, in the configured (chronological) order."""
    return [pattern.format(edition=e) for e in TREND_EDITIONS]


def trend_codebooks(wildcards):
    """Codebooks of the compared editions, in the configured order."""
    return [config["editions"][e]["codebook"] for e in TREND_EDITIONS]


def trends_outputs():
    """Outputs of rules/trends.smk: comparison of the editions listed under ``trends`` in config.yaml."""
    return [
        "results/trends/trends.csv",
        "results/trends/questionnaire_differences.csv",
        "results/trends/charts",
        "results/trends/rapport_tendances.html",
        "results/trends/rapport_tendances.pdf",
    ]


onstart:
    # On a SLURM cluster, once before the first sbatch: the partition, account and QOS the
    # profiles ask for must exist (src/barometre/cluster.py), else one clear error, not a wall
    # of refused jobs. Other executors (local, the jobs' own slurm-jobstep) skip it.
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        from barometre.cluster import check_slurm_site

        check_slurm_site(workflow)
