from compgen.logs import setup_logging
from compgen.summary import write_group_table
from compgen.tasks import model_labels

setup_logging(snakemake.log[0])
write_group_table(
    snakemake.params.runs,
    snakemake.input.scores,
    snakemake.output.table,
    snakemake.output.csv,
    title=snakemake.params.title,
    labels=model_labels(snakemake.params.models),
    label=f"tab:{snakemake.wildcards.group}",
)
