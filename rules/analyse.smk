# The cluster job (Snakemake group) of a run's analysis and figures; profiles/slurm names it too.
RUN_GROUP = "run_{dataset}_{condition}_{model}_seed{seed}"


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
    # On a cluster, one job per run: its analysis and its figures (profiles/slurm's group-components
    # joins in the curves, which read the training log only). Locally, groups change nothing.
    group:
        RUN_GROUP
    conda:
        "../envs/compgen.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        code=code_version("analyse"),
        # Pinned (not snakemake.threads, which --cores may lower): scores must not depend on --cores.
        threads=2,
        preset=config["analysis"]["preset"],
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
    # In its run's cluster job (with the analysis): not a local rule, or its group would run locally.
    group:
        RUN_GROUP
    conda:
        "../envs/compgen.yaml"
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        code=code_version("run_figure"),
        data_note=lambda wildcards: data_note(wildcards.dataset),
        # The figure's own caption (compgen.analysis.run_figures.FIGURES), for the report.
        caption=lambda wildcards: figure_caption(
            wildcards.figure, wildcards.model, wildcards.seed, wildcards.dataset, wildcards.condition
        ),
        # analysis.dci, analysis.n_images: only those the figure reads (the Hinton matrix's DCI
        # variant, how many of the kept reconstructions a strip shows).
        settings=lambda wildcards: figure_settings(wildcards.figure),
    script:
        "../workflow/scripts/run_figure.py"
