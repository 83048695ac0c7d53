from compgen.analysis.dci_choice import dci_key
from compgen.logs import setup_logging
from compgen.summary import collect_scores, load_entries, write_csv
from compgen.summary.published import comparison, read_published, rows_run
from compgen.tasks import model_labels

setup_logging(snakemake.log[0])
published = read_published(snakemake.input.published[0])
if snakemake.params.published_rows == "run":
    runs = {(spec["dataset"], spec["condition"], spec["model_name"]) for spec in snakemake.params.runs}
    published = rows_run(published, runs, snakemake.input.published[0])
tidy = collect_scores(load_entries(snakemake.params.runs, snakemake.input.scores))
compare = comparison(tidy, published, dci_key(snakemake.params.dci))
labels = model_labels(snakemake.params.models)
compare.insert(compare.columns.get_loc("model") + 1, "label", compare["model"].map(labels))
write_csv(compare, snakemake.output.csv)
