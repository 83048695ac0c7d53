from compgen.logs import setup_logging
from compgen.summary import write_group_table
from compgen.summary.published import read_published
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
    dci=snakemake.params.dci,
    published=read_published(snakemake.input.published[0]) if snakemake.input.published else None,
)
