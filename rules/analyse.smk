rule analyse:
    input:
        data=rules.prepare_dataset.output.data,
        split=rules.make_split.output.split,
        split_summary=rules.make_split.output.summary,
        model=rules.train.output.model,
        run=rules.train.output.run,
    output:
        scores=f"{ANALYSIS_DIR}/scores.json",
        arrays=f"{ANALYSIS_DIR}/analysis.npz",
    log:
        "results/logs/analyse/{dataset}/{condition}/{model}/seed{seed}.log",
    conda:
        "../envs/compgen.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        # Pinned (not snakemake.threads, which --cores may lower): scores must not depend on --cores.
        threads=2,
        preset=config["analysis"]["preset"],
        n_images=config["analysis"]["n_images"],
    script:
        "../workflow/scripts/analyse.py"


rule run_figure:
    input:
        unpack(run_figure_input),
    output:
        figure=report(
            f"{ANALYSIS_DIR}/{{figure}}.png",
            caption="../workflow/report/run_figure.rst",
            category="{dataset}",
            subcategory="{condition}",
            labels={"model": "{model}", "seed": "{seed}", "figure": "{figure}"},
        ),
    log:
        "results/logs/run_figure/{dataset}/{condition}/{model}/seed{seed}/{figure}.log",
    localrule: True
    conda:
        "../envs/compgen.yaml"
    params:
        data_note=lambda wildcards: data_note(wildcards.dataset),
        dci=config["analysis"]["dci"],
    script:
        "../workflow/scripts/run_figure.py"
