rule clean:
    """Raw exports → processed tables (respondents, tools, BP inventory) + cleaning log."""
    input:
        unpack(raw_inputs),
        codebook=codebook_of,
        code=package_code("ingest", "clean", "codebook", "config"),
        script="scripts/clean.py",
    output:
        respondents="data/processed/{edition}/respondents.parquet",
        tools="data/processed/{edition}/tools.parquet",
        bp="data/processed/{edition}/bp_inventory.parquet",
        log_table="data/processed/{edition}/cleaning_log.csv",
        report="data/processed/{edition}/cleaning_report.md",
    params:
        config=config,
    log:
        "logs/{edition}/clean.log",
    resources:
        mem_mb=2000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/clean.py"
