# Open data: what an edition publishes, described for data portals (data.gouv.fr reads
# Frictionless Table Schema).


rule describe_datapackage:
    """Published CSVs (tables, figures) → Frictionless data package (fields, types, French descriptions, licence)."""
    input:
        tables="results/{edition}/tables",
        figures="results/{edition}/figures.csv",
        code=package_code("datapackage", "provenance", "typography", "fr", "config", "__init__"),
        script="scripts/describe_datapackage.py",
    output:
        datapackage=report(
            "results/{edition}/datapackage.json",
            category="Édition {edition}",
            subcategory="Données ouvertes",
            labels={"Fichier": "datapackage.json", "Contenu": "Paquet de données Frictionless"},
        ),
    params:
        config=config,
    log:
        "logs/{edition}/describe_datapackage.log",
    resources:
        mem_mb=500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/describe_datapackage.py"


# Publication: the disclosure audit attacks what an edition publishes before the report and the
# workbook count as done (src/barometre/audit.py).


rule audit_disclosure:
    """Published tables, tests, merges and figures → disclosure_audit.csv (feasible interval of every masked cell); fails naming any recoverable cell."""
    input:
        tables="results/{edition}/tables",
        figures="results/{edition}/figures.csv",
        primary="data/processed/{edition}/disclosure_primary.csv",
        codebook=codebook_of,
        registry=registry_of,
        code=package_code("audit", "publication", "disclosure", "codebook", "figures"),
        script="scripts/audit_disclosure.py",
    output:
        audit="results/{edition}/disclosure_audit.csv",
    params:
        config=config,
    log:
        "logs/{edition}/audit_disclosure.log",
    resources:
        mem_mb=1500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/audit_disclosure.py"
