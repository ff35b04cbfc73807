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
