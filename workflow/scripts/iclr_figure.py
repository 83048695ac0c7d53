from compgen.logs import setup_logging
from compgen.summary.iclr_plots import draw_iclr_figure
from compgen.tasks import model_labels

setup_logging(snakemake.log[0])
labels = model_labels(snakemake.params.models)
runs = [{**run, "label": labels[run["model"]]} for run in snakemake.params.runs]
draw_iclr_figure(
    snakemake.wildcards.iclr_figure,
    runs,
    list(snakemake.input.paths),
    [snakemake.output.png],
    snakemake.params.dci,
    title=snakemake.wildcards.dataset,
    note=snakemake.params.data_note,
)
