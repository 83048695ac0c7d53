from compgen.datasets.prepare import prepare_dataset
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
prepare_dataset(snakemake.wildcards.dataset, snakemake.params.settings, snakemake.output.data)
