"""Rule plot_trends: thin entry point (see barometre.trends.run_plot_trends)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to
from barometre.trends import run_plot_trends

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_plot_trends(dict(snakemake.input), dict(snakemake.output))  # noqa: F821
