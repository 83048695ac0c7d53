rule train:
    input:
        unpack(base_model),
        data=rules.prepare_dataset.output.data,
        split=rules.make_split.output.split,
    output:
        model=f"{RUN_DIR}/model.pt",
        train_log=f"{RUN_DIR}/train_log.csv",
        run=f"{RUN_DIR}/run.json",
    log:
        "results/logs/train/{dataset}/{condition}/{model}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{condition}/{model}/seed{seed}.tsv"
    conda:
        "../envs/compgen.yaml"
    threads: lambda wildcards: run_of(wildcards).resources["cpus"]
    # Names the SLURM executor reads: gpu -> --gpus (none when 0, then --cpus-per-task={threads}),
    # cpus_per_gpu -> --cpus-per-gpu (threads shared out per GPU, rounded up), mem_mb -> --mem,
    # runtime (minutes) -> --time. On a workstation gpu counts against --resources gpu=N.
    resources:
        gpu=lambda wildcards: run_of(wildcards).resources["gpu"],
        cpus_per_gpu=lambda wildcards: -(
            -run_of(wildcards).resources["cpus"] // max(run_of(wildcards).resources["gpu"], 1)
        ),
        mem_mb=lambda wildcards: run_of(wildcards).resources["mem_mb"],
        runtime=lambda wildcards: run_of(wildcards).resources["runtime"],
        # Runs sharing one GPU (resources.jobs_per_gpu); with it, --resources gpu counts slots. A
        # resource, not a param: how jobs share a GPU changes no result, so it retrains nothing.
        jobs_per_gpu=config["resources"]["jobs_per_gpu"],
    params:
        code=code_version("train"),
        run=lambda wildcards: training_spec(wildcards),
        out_dir=lambda wildcards: RUN_DIR.format(**wildcards),
        # Checkpoints live beside the outputs, not among them, so a failed job keeps them for resuming.
        checkpoint_dir=lambda wildcards: CHECKPOINT_DIR.format(**wildcards),
    script:
        "../workflow/scripts/train.py"
