"""Rule render_report: thin entry point (see barometre.render.run_render_report)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to
from barometre.render import run_render_report

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_render_report(snakemake.wildcards.edition, snakemake.params.config,  # noqa: F821
                      dict(snakemake.input), dict(snakemake.output))  # noqa: F821
