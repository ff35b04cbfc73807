"""Rule compute_figures: thin entry point (see barometre.pipeline.run_figures)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to, run_figures

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_figures(snakemake.wildcards.edition, snakemake.params.config, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
