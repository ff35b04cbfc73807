"""Rule tabulate: thin entry point (see barometre.pipeline.run_tabulate)."""
from barometre.pipeline import logging_to, run_tabulate

with logging_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_tabulate(
        snakemake.wildcards.edition,  # noqa: F821
        dict(snakemake.input),  # noqa: F821
        dict(snakemake.output),  # noqa: F821
        tabulation=snakemake.params.tabulation,  # noqa: F821
        disclosure=snakemake.params.disclosure,  # noqa: F821
        synthetic=snakemake.params.synthetic,  # noqa: F821
    )
