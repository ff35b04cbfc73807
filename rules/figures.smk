rule compute_figures:
    """Processed tables + figures registry → figures.csv (value, interval, published bounds, pass/fail)."""
    input:
        respondents="data/processed/{edition}/respondents.parquet",
        tools="data/processed/{edition}/tools.parquet",
        bp="data/processed/{edition}/bp_inventory.parquet",
        codebook=codebook_of,
        registry=registry_of,
        published=published_of,
        tables="results/{edition}/tables",
        code=package_code("figures", "codebook", "design", "calibration", "publication", "audit", "disclosure"),
        script="scripts/compute_figures.py",
    output:
        figures=report("results/{edition}/figures.csv", category="Édition {edition}", subcategory="Chiffres et conformité",
                       labels={"Fichier": "figures.csv", "Contenu": "Chiffres nommés et bornes publiées"}),
    params:
        config=config,
    log:
        "logs/{edition}/compute_figures.log",
    resources:
        mem_mb=1000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/compute_figures.py"


rule check_conformity:
    """Fails the pipeline when a computed figure falls outside its published bounds, or a published one is not computed."""
    input:
        figures="results/{edition}/figures.csv",
        published=published_of,
        code=package_code("figures"),
        script="scripts/check_conformity.py",
    output:
        report=report("results/{edition}/conformity.txt", category="Édition {edition}", subcategory="Chiffres et conformité",
                      labels={"Fichier": "conformity.txt", "Contenu": "Conformité aux chiffres publiés"}),
    log:
        "logs/{edition}/check_conformity.log",
    resources:
        mem_mb=500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/check_conformity.py"


rule write_provenance:
    """Checksums of every input, package versions, git state, build date → provenance.json."""
    input:
        unpack(raw_inputs),
        codebook=codebook_of,
        registry=registry_of,
        published=published_of,
        config="config.yaml",
        # After the checks only: a failed cleaning or conformity leaves the previous provenance with its report.
        # Not ancient(): Snakemake then skips this job when an input of its own changes (registry, codebook,
        # raw data) while the check reruns too, and provenance.json keeps the old checksums. A rerun check
        # (e.g. after a code change) rewrites it with the new git state, which the report prints.
        checked="results/{edition}/conformity.txt",
        code=package_code("provenance", "__init__"),
        script="scripts/write_provenance.py",
    output:
        provenance="results/{edition}/provenance.json",
    params:
        config=config,
    log:
        "logs/{edition}/write_provenance.log",
    resources:
        mem_mb=500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/write_provenance.py"
