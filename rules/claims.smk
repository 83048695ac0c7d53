# The papers' claims (config/claims.yaml, and any a study adds): one verdict per claim, run target
# and model, read off every run's scores (compgen.claims). The report opens with the table.
from compgen.claims import claim_sources, figure_links, run_record

# The config file each claim came from, and the runs each figure group shows (the rows link them).
CLAIM_SOURCES = claim_sources(config["claims"], workflow.configfiles, workflow.basedir)
CLAIM_GROUPS = {
    name: [[r.dataset, r.condition, r.model] for r in group.runs] for name, group in STUDY.groups.items()
}


rule claims:
    input:
        scores=run_paths(f"{ANALYSIS_DIR}/scores.json"),
    output:
        html=report(
            "results/summary/claims.html",
            caption="../workflow/report/claims.rst",
            category="Paper claims",
            labels={"table": "claims"},
        ),
        csv=report(
            "results/summary/claims.csv",
            caption="../workflow/report/claims.rst",
            category="Paper claims",
            labels={"table": "claims (CSV)"},
        ),
        md=report(
            "results/summary/claims.md",
            caption="../workflow/report/claims.rst",
            category="Paper claims",
            labels={"table": "claims (Markdown)"},
        ),
    log:
        "results/logs/claims.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("claims"),
        claims=config["claims"],
        runs=[r.spec for r in STUDY.runs],
        sources=CLAIM_SOURCES,
        groups=CLAIM_GROUPS,
        links=figure_links(config["claims"], [run_record(r.spec) for r in STUDY.runs], CLAIM_GROUPS),
    script:
        "../workflow/scripts/claims.py"
