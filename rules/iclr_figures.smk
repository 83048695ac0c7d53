# The ICLR 2021 paper's figures of each dataset (compgen.summary.iclr_figures), for a study with
# analysis.iclr_figures: true: D against NLL, D and C bars, and held-out reconstructions of the
# dataset's VAEs and ground-truth decoders (tasks unsupervised, gt_decoder), one panel per condition.
from compgen.summary.iclr_figures import FIGURE_TASKS as ICLR_FIGURE_TASKS, FIGURES as ICLR_FIGURES

ICLR_FIGURE_DATASETS = (
    sorted({r.dataset for r in STUDY.runs if r.spec["model"]["task"] in ICLR_FIGURE_TASKS})
    if config["analysis"]["iclr_figures"]
    else []
)


rule iclr_figure:
    input:
        paths=iclr_figure_paths,
    output:
        png=report(
            "results/summary/iclr/{dataset}_{iclr_figure}.png",
            caption="../workflow/report/iclr_figure.rst",
            category="ICLR 2021 figures",
            labels={"dataset": "{dataset}", "figure": "{iclr_figure}"},
        ),
    log:
        "results/logs/iclr_figure/{dataset}_{iclr_figure}.log",
    wildcard_constraints:
        dataset="|".join(ICLR_FIGURE_DATASETS) or "(?!)",
        iclr_figure="|".join(ICLR_FIGURES),
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("iclr_figure"),
        runs=iclr_figure_runs,
        models=lambda wildcards: models_of(iclr_runs(wildcards)),
        dci=config["analysis"]["dci"],
        data_note=lambda wildcards: data_note(wildcards.dataset),
    script:
        "../workflow/scripts/iclr_figure.py"
