# The study table built from the validated config, wildcard constraints and input helpers.
from pathlib import Path

from compgen.datasets import family
from compgen.datasets.official import resolve_source
from compgen.datasets.provenance import STAND_IN, is_stand_in
from compgen.codeversion import stage_version
from compgen.study import OutputFolderError, Study, StudyError, check_output_folder
from compgen.analysis.run_figures import FIGURES, figure_caption
from compgen.tasks import TASKS, get_task

try:
    STUDY = Study(config)
except StudyError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
try:
    check_output_folder("results")
except OutputFolderError as err:
    raise WorkflowError(str(err)) from None

RUN_DIR = "results/runs/{dataset}/{condition}/{model}/seed{seed}"
ANALYSIS_DIR = "results/analysis/{dataset}/{condition}/{model}/seed{seed}"
CHECKPOINT_DIR = "results/checkpoints/{dataset}/{condition}/{model}/seed{seed}"
# Every figure some task draws per run (each task says which apply to it).
PER_RUN_FIGURES = sorted({figure for task in TASKS.values() for figure in task.figures})


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    condition=r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    group=r"[A-Za-z0-9_]+",
    figure="|".join(PER_RUN_FIGURES),


def code_version(script):
    """A hash of the package code that workflow/scripts/<script>.py runs (compgen.codeversion): a
    rule's `code` param, so that a change to that code reruns the rule (Snakemake's params trigger),
    and a change elsewhere in the package does not."""
    return stage_version(script, Path(workflow.basedir) / "workflow" / "scripts")


def official_file(wildcards):
    """The official file when it is the source (so Snakemake tracks it), else nothing."""
    source, path = resolve_source(wildcards.dataset, config["datasets"][wildcards.dataset])
    return [str(path)] if source == "official" else []


def data_note(dataset):
    """ "procedural stand-in" when the dataset's generator stands in for its official file: the
    decision prepare_dataset makes, and records in the dataset's provenance."""
    source, _ = resolve_source(dataset, config["datasets"][dataset])
    return STAND_IN if is_stand_in(dataset, source) else ""


def data_notes(datasets):
    """The stand-in notes of several datasets, as one line ("" when all are official)."""
    marked = sorted({d for d in datasets if data_note(d)})
    return f"{STAND_IN}: {', '.join(marked)}" if marked else ""


def run_of(wildcards):
    return STUDY.run(wildcards.dataset, wildcards.condition, wildcards.model, wildcards.seed)


def base_model(wildcards):
    """A retrain run's base model (the DAG edge that re-runs it when the base changes); else nothing."""
    base = run_of(wildcards).spec.get("base")
    if base is None:
        return {}
    base_wildcards = {**dict(wildcards.items()), "model": run_of(wildcards).spec["model"]["base"]}
    return {"base": f"{RUN_DIR}/model.pt".format(**base_wildcards)}


def training_spec(wildcards):
    """The run spec the training job gets: a retrain run's also names its base's model.pt."""
    spec = run_of(wildcards).spec
    if "base" not in spec:
        return spec
    return {**spec, "base": {**spec["base"], "model_path": base_model(wildcards)["base"]}}


def run_paths(pattern, runs=None):
    return [
        pattern.format(dataset=r.dataset, condition=r.condition, model=r.model, seed=r.seed)
        for r in (STUDY.runs if runs is None else runs)
    ]


def run_figure_input(wildcards):
    """What the figure is drawn from: the training log (and run.json, for the data's provenance)
    for the curves, else the analysis arrays."""
    if FIGURES[wildcards.figure].source == "train_log":
        return {
            "train_log": rules.train.output.train_log.format(**wildcards),
            "run": rules.train.output.run.format(**wildcards),
        }
    return {"arrays": rules.analyse.output.arrays.format(**wildcards)}


def figure_settings(figure):
    """The `analysis` settings a per-run figure reads (its RunFigure.settings) and their values:
    the figure job's params, so that a setting another figure reads redraws this one not."""
    return {key: config["analysis"][key] for key in FIGURES[figure].settings}


def models_of(runs):
    """The config sections of these runs' models (what their tables and figures label them by): a
    summary takes only its own runs' models, so a model it does not show changes nothing it draws."""
    return {r.model: config["models"][r.model] for r in runs}


def group_models(wildcards):
    return models_of(STUDY.groups[wildcards.group].runs)


def group_scores(wildcards):
    return run_paths(f"{ANALYSIS_DIR}/scores.json", STUDY.groups[wildcards.group].runs)


def group_first_runs(group):
    """One run per (condition, model) of a group: its lowest seed, in the group's order."""
    first = {}
    for run in STUDY.groups[group].runs:
        key = (run.dataset, run.condition, run.model)
        if key not in first or run.seed < first[key].seed:
            first[key] = run
    return list(first.values())


def group_first_seed_arrays(wildcards):
    return run_paths(f"{ANALYSIS_DIR}/analysis.npz", group_first_runs(wildcards.group))


def group_panels(wildcards):
    """Per panel, its run and model name; the figure job labels models (compgen.tasks.model_labels)."""
    return [
        {"run": f"{r.dataset}/{r.condition}", "model": r.model} for r in group_first_runs(wildcards.group)
    ]


def group_train_logs(wildcards):
    return run_paths(f"{RUN_DIR}/train_log.csv", STUDY.groups[wildcards.group].runs)


def group_curve_runs(wildcards):
    """Per run of the group (every seed), what its gap curve is labelled by; the job labels models."""
    return [
        {
            "panel": f"{r.dataset}/{r.condition}",
            "family": STUDY.condition(r.dataset, r.condition).family,
            "model": r.model,
            "seed": r.seed,
        }
        for r in STUDY.groups[wildcards.group].runs
    ]


# Groups with a run that logs the gap probe (training.fit_probe > 0) get a gap-curve figure; the
# constraint keeps its files apart from group_figure's {group}.png.
GAP_CURVE_GROUP_NAMES = sorted(
    name
    for name, group in STUDY.groups.items()
    if any(r.spec["training"]["fit_probe"] > 0 for r in group.runs)
)
GAP_CURVE_GROUPS = "|".join(GAP_CURVE_GROUP_NAMES) or "(?!)"
# The study's group names exactly: group_figure's {group}.png never matches another rule's file.
GROUPS = "|".join(STUDY.groups) or "(?!)"


def all_outputs():
    targets = expand("results/data/{dataset}_preview.png", dataset=STUDY.datasets_used())
    targets += [f"results/splits/{d}/{c}.png" for d, c in STUDY.splits_used()]
    # Named, not only implied by the summaries: a deleted one is analysed again, not left missing.
    targets += run_paths(f"{ANALYSIS_DIR}/scores.json") + run_paths(f"{ANALYSIS_DIR}/analysis.npz")
    for run in STUDY.runs:
        for figure in get_task(run.spec["model"]["task"]).figures:
            targets += run_paths(f"{ANALYSIS_DIR}/{figure}.png", [run])
    targets += expand("results/summary/groups/{group}.{ext}", group=sorted(STUDY.groups), ext=("tex", "png"))
    targets += expand("results/summary/groups/{group}_gap_curves.png", group=GAP_CURVE_GROUP_NAMES)
    targets.append("results/summary/scores.csv")
    targets += paper_targets()  # rules/paper.smk; none unless the study declares `published`
    targets += iclr_figure_targets()  # rules/iclr_figures.smk; none unless analysis.iclr_figures
    return targets


# The comparison with a paper's published values (rules/paper.smk).
def paper_runs():
    """The study's runs (every seed) of the published (dataset, condition, model) rows."""
    keys = set(zip(PUBLISHED["dataset"], PUBLISHED["condition"], PUBLISHED["model"]))
    return [r for r in STUDY.runs if (r.dataset, r.condition, r.model) in keys]


def paper_targets():
    """The comparison's outputs; none unless the study declares `published`."""
    if PUBLISHED is None:
        return []
    return ["results/summary/paper/compare.csv"] + [
        f"results/summary/paper/{PAPER_NAME}_{dataset}.png" for dataset in PAPER_DATASETS
    ]


# The ICLR 2021 figures (rules/iclr_figures.smk).
def iclr_figure_targets():
    return expand(
        "results/summary/iclr/{dataset}_{iclr_figure}.png",
        dataset=ICLR_FIGURE_DATASETS,
        iclr_figure=ICLR_FIGURES,
    )


def iclr_runs(wildcards):
    """The dataset's runs of the VAEs and ground-truth decoders (ICLR_FIGURE_TASKS): every seed for
    the scores' figures, each model's first seed for the reconstructions."""
    runs = [
        r
        for r in STUDY.runs
        if r.dataset == wildcards.dataset and r.spec["model"]["task"] in ICLR_FIGURE_TASKS
    ]
    if wildcards.iclr_figure != "recon_panels":
        return runs
    first = {}
    for run in runs:
        key = (run.condition, run.model)
        if key not in first or run.seed < first[key].seed:
            first[key] = run
    return list(first.values())


def iclr_figure_paths(wildcards):
    name = "analysis.npz" if wildcards.iclr_figure == "recon_panels" else "scores.json"
    return run_paths(f"{ANALYSIS_DIR}/{name}", iclr_runs(wildcards))


def iclr_figure_runs(wildcards):
    """Per run (in the order of its input file), what the figure groups and labels it by."""
    return [
        {
            "condition": r.condition,
            "family": STUDY.condition(r.dataset, r.condition).family,
            "model": r.model,
            "task": r.spec["model"]["task"],
            "seed": r.seed,
        }
        for r in iclr_runs(wildcards)
    ]
