# Baromètre de la démocratie locale numérique — the pipeline, as a table of contents.
#
#   raw exports (data/raw/<edition>/)  →  clean  →  tabulate  →  figures  →  report
#   figures of every edition listed under `trends`  →  trends (results/trends/)
#
# Every rule is defined per edition (wildcard {edition}); config.yaml lists the editions.

configfile: "config.yaml"


report: "docs/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    edition="|".join(EDITIONS),


include: "rules/clean.smk"
include: "rules/tabulate.smk"
include: "rules/figures.smk"
include: "rules/publish.smk"
include: "rules/report.smk"
include: "rules/trends.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
