rule prepare_dataset:
    input:
        official=official_file,
    output:
        data="results/data/{dataset}.h5",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    conda:
        "../envs/compgen.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=lambda wildcards: config["datasets"][wildcards.dataset],
        # A new renderer version rebuilds the dataset (params changes trigger a rerun).
        generator=lambda wildcards: family(wildcards.dataset).generator_version,
    script:
        "../workflow/scripts/prepare_dataset.py"


rule dataset_preview:
    input:
        data=rules.prepare_dataset.output.data,
    output:
        preview=report(
            "results/data/{dataset}_preview.png",
            caption="../workflow/report/dataset_preview.rst",
            category="Datasets",
            labels={"dataset": "{dataset}", "figure": "factor sweeps"},
        ),
    log:
        "results/logs/dataset_preview/{dataset}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        code=code_version("dataset_preview"),
        data_note=lambda wildcards: data_note(wildcards.dataset),
    script:
        "../workflow/scripts/dataset_preview.py"
