"""Load: the full study and a generated 1,000-run study plan, with every job they should have.

How long planning takes is measured by bench/plan.py, not asserted here: a wall-clock limit
fails on a loaded machine for reasons that have nothing to do with the code."""

import pytest

from compgen.study import Study
from conftest import ROOT, load_config, run_snakemake

pytestmark = pytest.mark.workflow

THOUSAND_RUNS = ROOT / "tests/configs/load.yaml"  # 4 conditions x 25 models x 10 seeds


def plan(workdir, *config) -> dict[str, int]:
    """Jobs planned per rule (and `total`) by a dry run in the empty folder `workdir`."""
    done = run_snakemake(workdir, *config, "--cores", "2", "-n", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    counts = {}
    for line in lines[next(i for i, line in enumerate(lines) if line.startswith("Job stats")) + 1 :]:
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
            if fields[0] == "total":
                return counts
    raise AssertionError(f"no job stats in the plan:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_the_full_study_plans_every_run(tmp_path):
    jobs = plan(tmp_path)  # config/config.yaml, the default study
    runs = len(Study(load_config(ROOT / "config/config.yaml")).runs)
    assert jobs["train"] == runs
    assert jobs["total"] > 3 * runs


def test_a_study_of_1000_runs_plans_every_run(tmp_path):
    assert len(Study(load_config(THOUSAND_RUNS)).runs) == 1000
    jobs = plan(tmp_path, "--configfile", str(THOUSAND_RUNS))
    assert jobs["train"] == 1000
    assert jobs["total"] > 7 * 1000  # train, analyse and five figures per run
