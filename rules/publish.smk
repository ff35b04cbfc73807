# Open data: what an edition publishes, described for data portals (data.gouv.fr reads
# Frictionless Table Schema).


rule describe_datapackage:
    """Published CSVs (tables, figures) → Frictionless data package (fields, types, French descriptions, licence)."""
    input:
        tables="results/{edition}/tables",
        figures="results/{edition}/figures.csv",
        code=package_code("datapackage", "provenance", "__init__"),
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
