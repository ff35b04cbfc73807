rule tabulate:
    """Every codebook question × each configured dimension → tidy CSV tables, tests and the editors' workbook."""
    input:
        respondents="data/processed/{edition}/respondents.parquet",
        tools="data/processed/{edition}/tools.parquet",
        bp="data/processed/{edition}/bp_inventory.parquet",
        codebook=codebook_of,
        registry=registry_of,
        code=package_code("tabulate", "stats", "disclosure", "publication", "audit", "figures", "workbook", "codebook",
                          "design", "comparisons", "calibration"),
        script="scripts/tabulate.py",
    output:
        tables=directory("results/{edition}/tables"),
        conflicts="data/processed/{edition}/collectivity_conflicts.csv",
        workbook=report("results/{edition}/tableaux.xlsx", category="Édition {edition}", subcategory="Tableaux",
                        labels={"Fichier": "tableaux.xlsx", "Contenu": "Classeur des tableaux croisés"}),
        primary="data/processed/{edition}/disclosure_primary.csv",
    params:
        tabulation=config["tabulation"],
        disclosure=config["disclosure"],
        design=config.get("design", {}),
        comparisons=config.get("comparisons", {}),
        calibration=lambda wildcards: (config.get("calibration") or {}).get(wildcards.edition),
        synthetic=lambda wildcards: bool(config["editions"][wildcards.edition].get("synthetic", False)),
    log:
        "logs/{edition}/tabulate.log",
    resources:
        mem_mb=4000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/tabulate.py"
