import torch

from compgen.analysis.evaluate import analyse_run
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.params.threads)
analyse_run(
    snakemake.input.data,
    snakemake.input.split,
    snakemake.input.split_summary,
    snakemake.input.model,
    snakemake.output.scores,
    snakemake.output.arrays,
    preset=snakemake.params.preset,
    run_info_path=snakemake.input.run,
)
