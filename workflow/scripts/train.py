import torch

from compgen.logs import setup_logging
from compgen.training.run import train_run

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train_run(
    snakemake.input.data,
    snakemake.input.split,
    snakemake.params.run,
    snakemake.params.out_dir,
    snakemake.params.checkpoint_dir,
)
