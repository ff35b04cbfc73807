"""Rule describe_datapackage: thin entry point (see barometre.datapackage.run_datapackage)."""
# mypy: disable-error-code="name-defined"
from barometre.datapackage import run_datapackage
from barometre.pipeline import logging_to

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_datapackage(snakemake.wildcards.edition, snakemake.params.config, dict(snakemake.input), dict(snakemake.output))  # noqa: F821
