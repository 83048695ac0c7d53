from compgen.datasets.preview import plot_preview
from compgen.datasets.provenance import data_note
from compgen.datasets.store import read_provenance
from compgen.figio import noted
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
with noted(data_note(read_provenance(snakemake.input.data))):
    plot_preview(snakemake.input.data, snakemake.output.preview, title=snakemake.wildcards.dataset)
