"""Rule compute_trends: thin entry point (see barometre.trends.run_compute_trends)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to
from barometre.trends import run_compute_trends

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_compute_trends(snakemake.params.editions, snakemake.params.synthetic, snakemake.params.confidence,  # noqa: F821
                       dict(snakemake.input), dict(snakemake.output))  # noqa: F821
