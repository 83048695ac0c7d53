"""Re-run semantics on one finished tiny study: what `snakemake -n` plans after each kind of change.

The workflow is copied to a temporary folder (with `src` linked back), so editing a figure script
never touches the repository; every change is undone after its test.
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
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "config", "profiles", "envs")
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
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", done.stdout):
        match = re.match(r"(?:local)?rule (\w+):\n", block)
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
            shutil.copytree(source, copy_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy_dir / name)
    (copy_dir / "src").symlink_to(ROOT / "src")
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
