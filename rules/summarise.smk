rule group_table:
    input:
        scores=group_scores,
        published=PUBLISHED_INPUT,
    output:
        table=report(
            "results/summary/groups/{group}.tex",
            caption="../workflow/report/group_table.rst",
            category="Tables",
            labels={"group": "{group}"},
        ),
        csv="results/summary/groups/{group}.csv",
    log:
        "results/logs/group_table/{group}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("group_table"),
        data_note=lambda wildcards: data_notes(r.dataset for r in STUDY.groups[wildcards.group].runs),
        runs=lambda wildcards: [r.spec for r in STUDY.groups[wildcards.group].runs],
        title=lambda wildcards: STUDY.groups[wildcards.group].title,
        models=group_models,
        dci=config["analysis"]["dci"],
    script:
        "../workflow/scripts/group_table.py"


rule study_csv:
    input:
        scores=run_paths(f"{ANALYSIS_DIR}/scores.json"),
        published=PUBLISHED_INPUT,
    output:
        csv=report(
            "results/summary/scores.csv",
            caption="../workflow/report/study_csv.rst",
            category="Tables",
            labels={"table": "all scores (tidy)"},
        ),
        aggregated="results/summary/scores_by_model.csv",
    log:
        "results/logs/study_csv.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("study_csv"),
        data_note=data_notes(r.dataset for r in STUDY.runs),
        runs=[r.spec for r in STUDY.runs],
        dci=config["analysis"]["dci"],
    script:
        "../workflow/scripts/study_csv.py"


rule group_figure:
    input:
        arrays=group_first_seed_arrays,
    output:
        png=report(
            "results/summary/groups/{group}.png",
            caption="../workflow/report/group_figure.rst",
            category="Figure groups",
            labels={"group": "{group}"},
        ),
        pdf="results/summary/groups/{group}.pdf",
    log:
        "results/logs/group_figure/{group}.log",
    wildcard_constraints:
        group=GROUPS,
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("group_figure"),
        data_note=lambda wildcards: data_notes(r.dataset for r in STUDY.groups[wildcards.group].runs),
        panels=lambda wildcards: group_panels(wildcards),
        models=group_models,
        title=lambda wildcards: STUDY.groups[wildcards.group].title,
    script:
        "../workflow/scripts/group_figure.py"


rule group_gap_curves:
    input:
        train_logs=group_train_logs,
    output:
        png=report(
            "results/summary/groups/{group}_gap_curves.png",
            caption="../workflow/report/gap_curves.rst",
            category="Gap curves",
            labels={"group": "{group}"},
        ),
    log:
        "results/logs/group_gap_curves/{group}.log",
    wildcard_constraints:
        group=GAP_CURVE_GROUPS,
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("gap_curves"),
        data_note=lambda wildcards: data_notes(r.dataset for r in STUDY.groups[wildcards.group].runs),
        runs=lambda wildcards: group_curve_runs(wildcards),
        models=group_models,
        title=lambda wildcards: STUDY.groups[wildcards.group].title,
    script:
        "../workflow/scripts/gap_curves.py"
