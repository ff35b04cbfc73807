"""Rule clean: thin entry point (see barometre.pipeline.run_clean)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to, run_clean

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_clean(snakemake.wildcards.edition, snakemake.params.config, dict(snakemake.output))  # noqa: F821
