from compgen.analysis.run_figures import draw_run_figure
from compgen.logs import setup_logging

setup_logging(snakemake.log[0])
draw_run_figure(
    snakemake.wildcards.figure,
    arrays_path=snakemake.input.get("arrays"),
    train_log_path=snakemake.input.get("train_log"),
    run_info_path=snakemake.input.get("run"),
    out_path=snakemake.output.figure,
    # The `analysis` settings the figure reads (dci, n_images); the defaults for those it does not.
    **snakemake.params.settings,
)
