"""Rule tabulate: thin entry point (see barometre.pipeline.run_tabulate)."""
# mypy: disable-error-code="name-defined"
from barometre.pipeline import logging_to, run_tabulate

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_tabulate(
        snakemake.wildcards.edition,  # noqa: F821
        dict(snakemake.input),  # noqa: F821
        dict(snakemake.output),  # noqa: F821
        tabulation=snakemake.params.tabulation,  # noqa: F821
        disclosure=snakemake.params.disclosure,  # noqa: F821
        design=snakemake.params.design,  # noqa: F821
        comparisons=snakemake.params.comparisons,  # noqa: F821
        calibration=snakemake.params.calibration,  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
    )
