"""Re-run semantics on one finished tiny study: what `snakemake -n` plans after each kind of change
(README, "What reruns when"): an edit reruns the jobs whose results it can change, and no others.

The workflow and the package are copied to a temporary folder, so editing a figure script or the
package never touches the repository; every change is undone after its test.
"""

import copy
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, load_test_config, snakemake_command

pytestmark = pytest.mark.workflow

CONFIG = load_test_config("rerun")  # two ground-truth decoders, dec_a and dec_b: the cheapest runs
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "config", "profiles", "envs", "src")
SUMMARY_RULES = {"group_table", "group_figure", "study_csv", "claims", "all"}  # rules over all runs


def snakemake(study: Path, *args: str, config: str = "config.yaml") -> subprocess.CompletedProcess:
    cmd = snakemake_command(
        study,
        "--configfile",
        str(study / config),
        "--cores",
        "2",
        *args,
        snakefile=study / "workflow_copy/Snakefile",
    )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def plan(study: Path, config: str = "config.yaml") -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job `snakemake -n` would run."""
    done = snakemake(study, "-n", config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = []
    # A group's jobs (a run's analysis and figures) are listed indented under "Group job …".
    for block in re.split(r"\n(?=[ \t]*(?:local)?rule \w+:\n)", done.stdout):
        match = re.match(r"[ \t]*(?:local)?rule (\w+):\n", block)
        if match:
            found = re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)
            wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
            jobs.append((match.group(1), wildcards))
    return jobs


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rerun")
    copy_dir = folder / "workflow_copy"
    copy_dir.mkdir()
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, copy_dir / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, copy_dir / name)
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    done = snakemake(folder)
    assert done.returncode == 0, done.stderr[-5000:]
    return folder


def test_a_finished_study_has_nothing_to_do(study):
    done = snakemake(study, "-n")
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr
    assert plan(study) == []


def test_changing_one_models_hyperparameter_reruns_only_that_model(study):
    changed = copy.deepcopy(CONFIG)
    changed["models"]["dec_b"]["training"] = {"lr": 5e-4}
    (study / "changed.yaml").write_text(yaml.safe_dump(changed))
    jobs = plan(study, config="changed.yaml")
    per_run = {(rule, w["model"]) for rule, w in jobs if "model" in w}
    assert {("train", "dec_b"), ("analyse", "dec_b"), ("run_figure", "dec_b")} == per_run
    assert sum(rule == "run_figure" for rule, _ in jobs) == 2  # both figures of dec_b, none of dec_a
    assert {rule for rule, w in jobs if "model" not in w} <= SUMMARY_RULES


def test_editing_the_run_figure_script_redraws_the_run_figures_only(study):
    """Snakemake's code trigger watches the script file: every per-run figure, nothing upstream."""
    script = study / "workflow_copy/workflow/scripts/run_figure.py"
    before = script.stat()
    try:
        script.write_text(script.read_text() + "# edited\n")
        os.utime(script, (time.time() + 5, time.time() + 5))  # surely newer than every figure
        jobs = plan(study)
    finally:
        script.write_text(script.read_text().removesuffix("# edited\n"))
        os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    figures = sorted((w["figure"], w["model"]) for rule, w in jobs if rule == "run_figure")
    drawn = sorted((png.stem, png.parent.parent.name) for png in (study / "results/analysis").rglob("*.png"))
    assert len(drawn) == 4 and figures == drawn  # two figures of each ground-truth decoder
    assert {rule for rule, _ in jobs} == {"run_figure", "all"}
    assert plan(study) == []  # the edit undone, nothing is left to do


def test_deleting_one_runs_analysis_reruns_only_it_and_what_reads_it(study):
    folder = study / "results/analysis/circles/shape2px/dec_a/seed0"  # scores, arrays and figures
    kept = folder.with_name("seed0.kept")
    folder.rename(kept)
    try:
        jobs = plan(study)
    finally:
        kept.rename(folder)
    per_run = {(rule, w["model"]) for rule, w in jobs if "model" in w}
    assert per_run == {("analyse", "dec_a"), ("run_figure", "dec_a")}
    assert {rule for rule, w in jobs if "model" not in w} <= SUMMARY_RULES
    assert plan(study) == []


def test_a_deleted_scores_file_is_analysed_again(study):
    """Issue 22, case 5: the final target names every run's scores.json, so deleting one (as a
    corrupted one's error message says to) re-analyses that run, not "Nothing to be done"."""
    scores = study / "results/analysis/circles/shape2px/dec_a/seed0/scores.json"
    kept = scores.with_name("scores.json.kept")
    scores.rename(kept)
    try:
        jobs = plan(study)
    finally:
        kept.rename(scores)
    per_run = {(rule, w["model"]) for rule, w in jobs if "model" in w}
    assert ("analyse", "dec_a") in per_run and all(model == "dec_a" for _, model in per_run)
    assert {"study_csv", "claims"} <= {rule for rule, _ in jobs}
    assert plan(study) == []


def plan_with(study: Path, edit) -> list[tuple[str, dict]]:
    """The plan under a copy of the config that `edit` (a function of the config) changes."""
    changed = copy.deepcopy(CONFIG)
    edit(changed)
    (study / "changed.yaml").write_text(yaml.safe_dump(changed))
    return plan(study, config="changed.yaml")


def per_run(jobs) -> set[tuple[str, str]]:
    return {(rule, w["model"]) for rule, w in jobs if "model" in w}


def test_training_threads_retrain_every_run_they_apply_to(study):
    """training.threads is part of what a run trains: reductions over other threads give other weights."""
    jobs = plan_with(study, lambda c: c["training"].update(threads=2))
    assert {("train", "dec_a"), ("train", "dec_b"), ("analyse", "dec_a"), ("analyse", "dec_b")} <= per_run(
        jobs
    )


def test_a_scheduler_request_reruns_nothing(study):
    """resources.train asks the scheduler for cores, memory and time; no result depends on it."""
    jobs = plan_with(study, lambda c: c["resources"]["train"].update(cpus=3, mem_mb=2000, runtime=20))
    assert jobs == []
    assert plan_with(study, lambda c: c["resources"].update(jobs_per_gpu=4)) == []


def test_how_many_images_a_figure_shows_redraws_those_figures_only(study):
    """analysis.n_images picks among the reconstructions the analysis kept: no scoring, no claims."""
    jobs = plan_with(study, lambda c: c["analysis"].update(n_images=3))
    assert {rule for rule, _ in jobs} == {"run_figure", "all"}
    assert sorted((w["figure"], w["model"]) for rule, w in jobs if rule == "run_figure") == [
        ("reconstructions", "dec_a"),
        ("reconstructions", "dec_b"),
    ]


def test_the_dci_variant_redraws_no_figure_that_shows_none(study):
    """analysis.dci is read by the Hinton matrices (none here: ground-truth decoders have no
    latents) and the summaries; the curves and reconstructions stay."""
    jobs = plan_with(study, lambda c: c["analysis"].update(dci="iclr"))
    assert jobs and {rule for rule, _ in jobs} <= SUMMARY_RULES


def test_a_model_no_experiment_uses_reruns_nothing(study):
    """Group tables and figures take their own runs' models only, not every declared one."""
    jobs = plan_with(study, lambda c: c["models"].update(dec_unused={"task": "gt_decoder", "decoder": "kim"}))
    assert jobs == []


def test_a_new_label_redraws_the_summaries_that_show_it_only(study):
    """A model's label is read by the group's tables and figures; its runs are the same runs."""
    jobs = plan_with(study, lambda c: c["models"]["dec_b"].update(label="decoder B"))
    assert per_run(jobs) == set() and {rule for rule, _ in jobs} <= SUMMARY_RULES | {"group_gap_curves"}
    assert {"group_table", "group_figure"} <= {rule for rule, _ in jobs}


def edited_package(study: Path, module: str):
    """A context in which package module `module` (a path below src/compgen) has one more line."""
    import contextlib

    @contextlib.contextmanager
    def edited():
        path = study / "workflow_copy/src/compgen" / module
        before = path.read_text()
        path.write_text(before + "\nEDITED_FOR_A_TEST = True\n")
        try:
            yield
        finally:
            path.write_text(before)

    return edited()


def test_a_fixed_metric_rescores_every_run_and_retrains_none(study):
    """compgen.metrics.representation (DCI, MIG, R²) is the analysis' code, not training's."""
    with edited_package(study, "metrics/representation.py"):
        jobs = plan(study)
    rules = {rule for rule, _ in jobs}
    assert "train" not in rules
    assert {("analyse", "dec_a"), ("analyse", "dec_b")} <= per_run(jobs)
    assert {"study_csv", "claims"} <= rules
    assert plan(study) == []  # the edit undone (the same code again), nothing is left to do


def test_a_change_to_training_code_retrains_every_run(study):
    with edited_package(study, "training/engine.py"):
        jobs = plan(study)
    assert {("train", "dec_a"), ("train", "dec_b")} <= per_run(jobs)


def test_a_change_to_figure_code_redraws_figures_only(study):
    """compgen.analysis.figures draws the per-run figures (and the group figures' panels)."""
    with edited_package(study, "analysis/figures.py"):
        jobs = plan(study)
    rules = {rule for rule, _ in jobs}
    assert "run_figure" in rules and rules <= {"run_figure", "group_figure", "all"}


def test_a_comment_in_the_package_reruns_nothing(study):
    """A stage's code version hashes syntax trees: comments and formatting are no change."""
    path = study / "workflow_copy/src/compgen/training/engine.py"
    before = path.read_text()
    try:
        path.write_text(before + "\n# a comment\n")
        jobs = plan(study)
    finally:
        path.write_text(before)
    assert jobs == []


def test_under_the_slurm_profile_a_runs_analysis_and_figures_are_one_job(tmp_path):
    """profiles/slurm: each run's analysis and all its figures (the curves too) are one cluster job,
    so no per-run figure runs on the submitting machine. Planned only: no scheduler is asked."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    cmd = snakemake_command(
        tmp_path,
        "--configfile",
        str(tmp_path / "config.yaml"),
        "--profile",
        str(ROOT / "profiles/slurm"),
        "-n",
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    groups = re.split(r"\n(?=.*Group job )", done.stdout)[1:]
    names = sorted(re.search(r"Group job (\S+)", g).group(1) for g in groups)
    assert names == ["run_circles_shape2px_dec_a_seed0", "run_circles_shape2px_dec_b_seed0"]
    for group in groups:
        group = re.split(r"\n(?:local)?rule \w+:", group)[0]  # up to the next job outside it
        model = re.search(r"Group job \S+_(dec_\w)_seed0", group).group(1)
        rules = re.findall(r"^[ \t]+rule (\w+):$", group, re.MULTILINE)  # a group's jobs are indented
        wildcards = re.findall(r"^[ \t]+wildcards: (.*)$", group, re.MULTILINE)
        assert sorted(rules) == ["analyse", "run_figure", "run_figure"]
        assert len(wildcards) == 3 and all(f"model={model}," in w for w in wildcards)
        assert sorted(w.rsplit("figure=", 1)[-1] for w in wildcards if "figure=" in w) == [
            "curves",
            "reconstructions",
        ]
    assert not re.search(r"^localrule run_figure:", done.stdout, re.MULTILINE)
