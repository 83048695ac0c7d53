rule make_split:
    input:
        data=rules.prepare_dataset.output.data,
    output:
        split="results/splits/{dataset}/{condition}.npz",
        summary="results/splits/{dataset}/{condition}.json",
    log:
        "results/logs/make_split/{dataset}/{condition}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        condition=lambda wildcards: STUDY.condition(wildcards.dataset, wildcards.condition).params(),
    script:
        "../workflow/scripts/make_split.py"


rule split_figure:
    input:
        data=rules.prepare_dataset.output.data,
        split=rules.make_split.output.split,
        summary=rules.make_split.output.summary,
    output:
        figure=report(
            "results/splits/{dataset}/{condition}.png",
            caption="../workflow/report/split_figure.rst",
            category="Splits",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "condition": "{condition}"},
        ),
    log:
        "results/logs/split_figure/{dataset}/{condition}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("split_figure"),
        data_note=lambda wildcards: data_note(wildcards.dataset),
    script:
        "../workflow/scripts/split_figure.py"
