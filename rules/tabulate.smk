rule tabulate:
    """Every codebook question × each configured dimension → tidy CSV tables, tests and the editors' workbook."""
    input:
        respondents="data/processed/{edition}/respondents.parquet",
        tools="data/processed/{edition}/tools.parquet",
        bp="data/processed/{edition}/bp_inventory.parquet",
        codebook=codebook_of,
        registry=registry_of,
        code=package_code("tabulate", "stats", "disclosure", "publication", "audit", "figures", "workbook", "codebook"),
        script="scripts/tabulate.py",
    output:
        tables=directory("results/{edition}/tables"),
        workbook="results/{edition}/tableaux.xlsx",
        primary="data/processed/{edition}/disclosure_primary.csv",
    params:
        tabulation=config["tabulation"],
        disclosure=config["disclosure"],
    log:
        "logs/{edition}/tabulate.log",
    resources:
        mem_mb=4000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/tabulate.py"
