from compgen.figio import noted
from compgen.logs import setup_logging
from compgen.summary.figure import plot_gap_curves
from compgen.tasks import model_labels

setup_logging(snakemake.log[0])
labels = model_labels(snakemake.params.models)
runs = [
    {**run, "model": labels[run["model"]], "train_log": path}
    for run, path in zip(snakemake.params.runs, snakemake.input.train_logs, strict=True)
]
with noted(snakemake.params.data_note):
    plot_gap_curves(runs, [snakemake.output.png], title=snakemake.params.title)
