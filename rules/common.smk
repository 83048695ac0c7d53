# The study table built from the validated config, wildcard constraints and input helpers.
from compgen.study import Study, StudyError

try:
    STUDY = Study(config)
except StudyError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None

RUN_DIR = "results/runs/{dataset}/{condition}/{model}/seed{seed}"
ANALYSIS_DIR = "results/analysis/{dataset}/{condition}/{model}/seed{seed}"
CHECKPOINT_DIR = "results/checkpoints/{dataset}/{condition}/{model}/seed{seed}"
PER_RUN_FIGURES = ("curves", "reconstructions", "hinton", "latents")


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    condition=r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*",
    model=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    group=r"[A-Za-z0-9_]+",
    figure="|".join(PER_RUN_FIGURES),


def run_of(wildcards):
    return STUDY.run(wildcards.dataset, wildcards.condition, wildcards.model, wildcards.seed)


def run_paths(pattern, runs=None):
    return [
        pattern.format(dataset=r.dataset, condition=r.condition, model=r.model, seed=r.seed)
        for r in (STUDY.runs if runs is None else runs)
    ]


def group_scores(wildcards):
    return run_paths(f"{ANALYSIS_DIR}/scores.json", STUDY.groups[wildcards.group].runs)


def all_outputs():
    targets = expand("results/data/{dataset}_preview.png", dataset=STUDY.datasets_used())
    targets += [f"results/splits/{d}/{c}.png" for d, c in STUDY.splits_used()]
    for figure in PER_RUN_FIGURES:
        targets += run_paths(f"{ANALYSIS_DIR}/{figure}.png")
    targets += expand("results/summary/groups/{group}.tex", group=sorted(STUDY.groups))
    targets.append("results/summary/scores.csv")
    return targets
