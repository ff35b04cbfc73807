"""Rule audit_disclosure: thin entry point (see barometre.pipeline.run_audit)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to, run_audit

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_audit(snakemake.wildcards.edition, snakemake.params.config, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
