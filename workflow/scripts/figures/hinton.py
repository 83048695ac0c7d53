# One script per figure type: Snakemake re-draws a figure when its own script changes.
from compgen.analysis.run_figures import draw_run_figure
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
draw_run_figure(
    "hinton",
    arrays_path=snakemake.input.arrays,
    train_log_path=snakemake.input.train_log,
    out_path=snakemake.output.figure,
)
