"""Rule plot_charts: thin entry point (see barometre.charts.run_plot_charts)."""
# mypy: disable-error-code="name-defined"
from barometre.charts import run_plot_charts
from barometre.pipeline import logging_to

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_plot_charts(snakemake.wildcards.edition, snakemake.params.config, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
