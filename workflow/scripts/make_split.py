from compgen.conditions import Condition, write_split
from compgen.datasets.store import read_grid
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
write_split(
    read_grid(snakemake.input.data),
    Condition.from_params(snakemake.params.condition),
    snakemake.wildcards.dataset,
    snakemake.output.split,
    snakemake.output.summary,
)
