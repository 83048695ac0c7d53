from compgen.logs import setup_logging
from compgen.summary.figure import plot_group_composite
from compgen.tasks import model_labels

setup_logging(snakemake.log[0])
labels = model_labels(snakemake.params.models)
panels = [
    {"label": f"{panel['run']} · {labels[panel['model']]}", "arrays": path}
    for panel, path in zip(snakemake.params.panels, snakemake.input.arrays, strict=True)
]
plot_group_composite(panels, [snakemake.output.png, snakemake.output.pdf], title=snakemake.params.title)
