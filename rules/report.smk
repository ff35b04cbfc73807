REPORT_TEMPLATES = sorted(str(p) for p in Path(workflow.basedir, "report_templates").glob("*") if p.is_file())
REPORT_TEMPLATES = [str(Path(p).relative_to(workflow.basedir)) for p in REPORT_TEMPLATES]


rule plot_charts:
    """Tables (« Ensemble » cells) + named figures → one SVG per chart and charts.json (title, alt text, caption)."""
    input:
        tables="results/{edition}/tables",
        figures="results/{edition}/figures.csv",
        codebook=codebook_of,
        published=published_of,
        code=package_code("charts", "chart_drawing", "chart_svg", "fr", "quantifiers", "codebook"),
        script="scripts/plot_charts.py",
    output:
        charts=directory("results/{edition}/charts"),
    params:
        config=config,
    log:
        "logs/{edition}/plot_charts.log",
    resources:
        mem_mb=1500,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/plot_charts.py"


rule render_report:
    """Figures, tables, charts, provenance, cleaning log, editorial text → the publication and the technical note (HTML + PDF)."""
    input:
        figures="results/{edition}/figures.csv",
        conformity="results/{edition}/conformity.txt",
        disclosure_audit="results/{edition}/disclosure_audit.csv",
        tables="results/{edition}/tables",
        charts="results/{edition}/charts",
        provenance="results/{edition}/provenance.json",
        cleaning_log="data/processed/{edition}/cleaning_log.csv",
        respondents="data/processed/{edition}/respondents.parquet",
        tools="data/processed/{edition}/tools.parquet",
        bp="data/processed/{edition}/bp_inventory.parquet",
        codebook=codebook_of,
        published=published_of,
        registry=registry_of,
        templates=REPORT_TEMPLATES,
        editorial=editorial_of,
        code=package_code("render", "report_data", "technical_note", "report_hooks", "pdf", "charts", "editorial",
                          "typography", "fr", "quantifiers", "codebook", "figures", "design", "calibration",
                          "comparisons", "publication", "audit"),
        script="scripts/render_report.py",
    output:
        html=report("results/{edition}/rapport_{edition}.html", category="Édition {edition}", subcategory="Publication",
                    labels={"Fichier": "rapport_{edition}.html", "Contenu": "Publication (HTML)"}),
        pdf=report("results/{edition}/rapport_{edition}.pdf", category="Édition {edition}", subcategory="Publication",
                   labels={"Fichier": "rapport_{edition}.pdf", "Contenu": "Publication (PDF)"}),
        note_html=report("results/{edition}/note_technique_{edition}.html", category="Édition {edition}",
                         subcategory="Note technique",
                         labels={"Fichier": "note_technique_{edition}.html", "Contenu": "Note technique (HTML)"}),
        note_pdf=report("results/{edition}/note_technique_{edition}.pdf", category="Édition {edition}",
                        subcategory="Note technique",
                        labels={"Fichier": "note_technique_{edition}.pdf", "Contenu": "Note technique (PDF)"}),
    params:
        config=config,
    log:
        "logs/{edition}/render_report.log",
    resources:
        mem_mb=3000,
    threads: 1
    conda:
        "../environment.yml"
    script:
        "../scripts/render_report.py"
