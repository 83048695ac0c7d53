from compgen.datasets.preview import plot_preview
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
plot_preview(snakemake.input.data, snakemake.output.preview, title=snakemake.wildcards.dataset)
