# compgen against a paper's own numbers (config `published`, compgen.summary.published): the CSV is
# read and checked against the study's runs while planning; the group tables and scores CSVs take
# it as an input (the paper's values beside compgen's), and the rules below compare the two.
import re

from compgen.summary.published import PublishedError, load_published, published_path

PUBLISHED_FILE = published_path(config, workflow.basedir)
PUBLISHED = None
if PUBLISHED_FILE is not None:
    try:
        PUBLISHED = load_published(PUBLISHED_FILE, STUDY, config["published_rows"])
    except PublishedError as err:
        raise WorkflowError(f"invalid configuration: published: {err}") from None
# An input of the summaries that show the paper's values: a changed CSV remakes them.
PUBLISHED_INPUT = [str(PUBLISHED_FILE)] if PUBLISHED is not None else []
PAPER_DATASETS = [] if PUBLISHED is None else list(dict.fromkeys(PUBLISHED["dataset"]))
# The figures are named after the CSV: results/summary/paper/iclr2021_dsprites.png.
PAPER_NAME = "" if PUBLISHED is None else re.sub(r"[^A-Za-z0-9_]", "_", PUBLISHED_FILE.stem)


if PUBLISHED is not None:

    rule paper_compare:
        input:
            scores=run_paths(f"{ANALYSIS_DIR}/scores.json", paper_runs()),
            published=PUBLISHED_INPUT,
        output:
            csv=report(
                "results/summary/paper/compare.csv",
                caption="../workflow/report/paper_compare.rst",
                category="compgen vs the paper",
                labels={"table": "compgen and the paper, per measure"},
            ),
        log:
            "results/logs/paper_compare.log",
        localrule: True
        conda:
            "../envs/compgen.yaml"
        params:
            code=code_version("paper_compare"),
            data_note=data_notes(PAPER_DATASETS),
            runs=[r.spec for r in paper_runs()],
            dci=config["analysis"]["dci"],
            models=models_of(paper_runs()),
            published_rows=config["published_rows"],
        script:
            "../workflow/scripts/paper_compare.py"

    rule paper_figure:
        input:
            csv=rules.paper_compare.output.csv,
        output:
            png=report(
                f"results/summary/paper/{PAPER_NAME}_{{dataset}}.png",
                caption="../workflow/report/paper_figure.rst",
                category="compgen vs the paper",
                labels={"dataset": "{dataset}"},
            ),
        log:
            f"results/logs/paper_figure/{PAPER_NAME}_{{dataset}}.log",
        wildcard_constraints:
            dataset="|".join(PAPER_DATASETS),
        localrule: True
        conda:
            "../envs/compgen.yaml"
        params:
            code=code_version("paper_figure"),
            data_note=lambda wildcards: data_notes([wildcards.dataset]),
            dci=config["analysis"]["dci"],
            published=str(config["published"]),
        script:
            "../workflow/scripts/paper_figure.py"
