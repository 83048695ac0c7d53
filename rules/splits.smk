rule make_split:
    input:
        data=rules.prepare_dataset.output.data,
    output:
        split="results/splits/{dataset}/{condition}.npz",
        summary="results/splits/{dataset}/{condition}.json",
    params:
        condition=lambda wildcards: STUDY.condition(wildcards.dataset, wildcards.condition).params(),
    log:
        "results/logs/make_split/{dataset}/{condition}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    script:
        "../workflow/scripts/make_split.py"
