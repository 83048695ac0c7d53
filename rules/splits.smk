rule make_split:
    input:
        data=rules.prepare_dataset.output.data,
    output:
        split=RESULTS + "/splits/{dataset}/{condition}.npz",
        summary=RESULTS + "/splits/{dataset}/{condition}.json",
    params:
        condition=lambda wildcards: STUDY.condition(wildcards.dataset, wildcards.condition).params(),
    log:
        RESULTS + "/logs/make_split/{dataset}/{condition}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    script:
        "../workflow/scripts/make_split.py"
