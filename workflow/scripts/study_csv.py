from compgen.logs import setup_logging
from compgen.summary import write_study_csv
from compgen.summary.published import read_published

setup_logging(snakemake.log[0])
write_study_csv(
    snakemake.params.runs,
    snakemake.input.scores,
    snakemake.output.csv,
    snakemake.output.aggregated,
    published=read_published(snakemake.input.published[0]) if snakemake.input.published else None,
    dci=snakemake.params.dci,
)
