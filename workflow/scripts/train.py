from compgen.logs import setup_logging
from compgen.training.run import train_run

setup_logging(snakemake.log[0])
# Training pins its own thread count (the run's training.threads), whatever --cores grants.
train_run(
    snakemake.input.data,
    snakemake.input.split,
    snakemake.params.run,
    snakemake.params.out_dir,
    snakemake.params.checkpoint_dir,
    jobs_per_gpu=snakemake.resources.jobs_per_gpu,
)
