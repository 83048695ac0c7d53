import pandas as pd

from compgen.analysis.dci_choice import DCI_LABELS
from compgen.figio import noted
from compgen.logs import setup_logging
from compgen.summary.paper_figure import plot_paper_comparison

setup_logging(snakemake.log[0])
dataset = snakemake.wildcards.dataset
compare = pd.read_csv(snakemake.input.csv, keep_default_na=False, na_values=[""])
compare = compare[compare["dataset"] == dataset]
title = f"{dataset}: compgen (y) against the paper's published values (x, {snakemake.params.published})"
with noted(snakemake.params.data_note):
    plot_paper_comparison(
        compare, [snakemake.output.png], title=title, d_label=DCI_LABELS[snakemake.params.dci]
    )
