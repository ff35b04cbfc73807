"""Rule compare_questionnaires: thin entry point (see barometre.trends.run_compare_questionnaires)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to
from barometre.trends import run_compare_questionnaires

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_compare_questionnaires(snakemake.params.editions, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
