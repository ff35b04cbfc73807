# Editions over time: the editions listed under `trends` in config.yaml, compared on the
# harmonised indicators of registry/trends.yaml (see src/barometre/trends.py).



rule compare_questionnaires:
    """Codebooks of the compared editions → questionnaire_differences.csv (presence, wording, codes, comparability)."""
    input:
        codebooks=trend_codebooks,
        code=package_code("trends", "codebook"),
        script="scripts/compare_questionnaires.py",
    output:
        differences="results/trends/questionnaire_differences.csv",
    params:
        editions=TREND_EDITIONS,
    log:
        "logs/trends/compare_questionnaires.log",
    resources:
        mem_mb=500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/compare_questionnaires.py"


rule compute_trends:
    """Processed tables and figures of each conformant edition + trends registry → trends.csv (value, interval, comparability)."""
    input:
        respondents=trend_files("data/processed/{edition}/respondents.parquet"),
        tools=trend_files("data/processed/{edition}/tools.parquet"),
        bp=trend_files("data/processed/{edition}/bp_inventory.parquet"),
        figures=trend_files("results/{edition}/figures.csv"),
        # Trends are only computed on editions that pass their own conformity check.
        conformity=trend_files("results/{edition}/conformity.txt"),
        codebooks=trend_codebooks,
        registry=config.get("trends", {}).get("registry", "registry/trends.yaml"),
        code=package_code("trends", "figures", "codebook"),
        script="scripts/compute_trends.py",
    output:
        trends="results/trends/trends.csv",
    params:
        editions=TREND_EDITIONS,
        synthetic={e: bool(config["editions"][e]["synthetic"]) for e in TREND_EDITIONS},
        confidence=config["tabulation"]["confidence"],
    log:
        "logs/trends/compute_trends.log",
    resources:
        mem_mb=1500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/compute_trends.py"


rule plot_trends:
    """trends.csv → one SVG per indicator comparable in at least two editions, and charts.json."""
    input:
        trends="results/trends/trends.csv",
        code=package_code("trends", "charts", "chart_drawing", "chart_svg", "fr"),
        script="scripts/plot_trends.py",
    output:
        charts=directory("results/trends/charts"),
    log:
        "logs/trends/plot_trends.log",
    resources:
        mem_mb=1500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/plot_trends.py"


rule render_trends_report:
    """trends.csv, questionnaire differences and trend charts → self-contained HTML trends report and its PDF (WeasyPrint)."""
    input:
        trends="results/trends/trends.csv",
        differences="results/trends/questionnaire_differences.csv",
        charts="results/trends/charts",
        templates=REPORT_TEMPLATES,
        code=package_code("trends_report", "render", "pdf", "trends", "charts", "chart_svg", "fr"),
        script="scripts/render_trends_report.py",
    output:
        html=report("results/trends/rapport_tendances.html", category="Tendances", subcategory="Publication",
                    labels={"Fichier": "rapport_tendances.html", "Contenu": "Rapport des tendances (HTML)"}),
        pdf=report("results/trends/rapport_tendances.pdf", category="Tendances", subcategory="Publication",
                   labels={"Fichier": "rapport_tendances.pdf", "Contenu": "Rapport des tendances (PDF)"}),
    params:
        config=config,
    log:
        "logs/trends/render_trends_report.log",
    resources:
        mem_mb=3000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/render_trends_report.py"
