"""Load: planning the full study and a generated 1,000-run study stays fast."""

import subprocess
import sys
import time

import pytest
import yaml

from compgen.study import Study
from conftest import ROOT, load_config

pytestmark = pytest.mark.workflow

CONDITIONS = ["sqr2tx", "ell2tx", "blank_side", "sqr2scl"]
N_MODELS, N_SEEDS = 25, 10  # 4 conditions x 25 models x 10 seeds = 1,000 runs


def thousand_runs() -> dict:
    models = {}
    for i in range(N_MODELS):
        if i % 2:
            models[f"m{i}"] = {"task": "composition", "op": ("interp", "linear", "mlp")[i % 3], "latent_size": 10 + i}
        else:
            models[f"m{i}"] = {"task": "unsupervised", "loss": "betavae", "beta": 1.0 + i}
    return {
        "datasets": {"dsprites": {"source": "procedural"}},
        "models": models,
        "experiments": [
            {"name": "load", "dataset": "dsprites", "conditions": CONDITIONS, "models": list(models), "seeds": list(range(N_SEEDS))}
        ],
    }


def timed_plan(workdir, *config) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           *config, "--cores", "2", "-n"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, done


def planned_jobs(done: subprocess.CompletedProcess) -> int:
    for line in done.stdout.splitlines():
        if line.startswith("total"):
            return int(line.split()[1])
    raise AssertionError(f"no job stats in the plan:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_the_full_study_plans_in_under_10_seconds(tmp_path):
    seconds, done = timed_plan(tmp_path)  # config/config.yaml, the default study
    assert done.returncode == 0, done.stderr[-3000:]
    runs = len(Study(load_config(ROOT / "config/config.yaml")).runs)
    assert planned_jobs(done) > 3 * runs
    assert seconds < 10, f"planning {runs} runs took {seconds:.1f} s"


def test_a_study_of_1000_runs_plans_in_under_60_seconds(tmp_path):
    (tmp_path / "load.yaml").write_text(yaml.safe_dump(thousand_runs()))
    assert len(Study(load_config(tmp_path / "load.yaml")).runs) == 1000
    seconds, done = timed_plan(tmp_path, "--configfile", str(tmp_path / "load.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert planned_jobs(done) > 7 * 1000  # train, analyse and five figures per run
    assert seconds < 60, f"planning 1,000 runs took {seconds:.1f} s"
