from compgen.claims import write_claims_table
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
write_claims_table(
    snakemake.params.claims,
    snakemake.params.runs,
    snakemake.input.scores,
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.output.html,
    sources=snakemake.params.sources,
    groups=snakemake.params.groups,
)
