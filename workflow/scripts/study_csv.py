from compgen.logs import setup_logging
from compgen.summary import write_study_csv

setup_logging(snakemake.log[0])
write_study_csv(
    snakemake.params.runs, snakemake.input.scores, snakemake.output.csv, snakemake.output.aggregated
)
