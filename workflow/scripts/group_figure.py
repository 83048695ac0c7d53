from compgen.composites import plot_group_composite
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
panels = [dict(panel, arrays=path) for panel, path in zip(snakemake.params.panels, snakemake.input.arrays)]
plot_group_composite(panels, [snakemake.output.png, snakemake.output.pdf], title=snakemake.params.title)
