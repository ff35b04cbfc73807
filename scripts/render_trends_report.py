"""Rule render_trends_report: thin entry point (see barometre.trends_report.run_render_trends_report)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to
from barometre.trends_report import run_render_trends_report

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_render_trends_report(snakemake.params.config, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
