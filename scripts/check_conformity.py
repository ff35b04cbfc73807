"""Rule check_conformity: thin entry point (see barometre.pipeline.run_conformity)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to, run_conformity

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_conformity(snakemake.wildcards.edition, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
