import json

from compgen.conditions.figure import plot_split
from compgen.datasets.provenance import data_note
from compgen.datasets.store import read_grid, read_provenance
from compgen.figio import noted
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
with open(snakemake.input.summary) as fh:
    factors = json.load(fh)["main_factors"]
with noted(data_note(read_provenance(snakemake.input.data))):
    plot_split(
        read_grid(snakemake.input.data),
        snakemake.input.split,
        tuple(factors),
        snakemake.output.figure,
        title=f"{snakemake.wildcards.dataset} / {snakemake.wildcards.condition}",
    )
