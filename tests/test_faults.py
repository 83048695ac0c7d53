"""Faults: a training job or the whole snakemake run killed mid-way recovers to identical results;
an output folder that cannot be written stops the run with a clear message; a killed dataset
generation leaves no file that a later step could read."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from compgen.conditions import load_split
from compgen.datasets.store import DatasetError, check_dataset
from compgen.training.engine import latest_checkpoint
from conftest import ROOT

pytestmark = pytest.mark.workflow

EPOCHS = 6
CONFIG = {
    "datasets": {"circles": {"subsample": {"x": 2, "y": 2}}},
    "models": {"vae": {"task": "unsupervised", "encoder": "kim", "decoder": "kim"}},
    "training": {"epochs": EPOCHS, "batch_size": 16, "lr": 1e-3, "max_steps_per_epoch": 10},
    "resources": {"train": {"gpu": 0, "cpus": 1, "mem_mb": 1000, "runtime": 10}},
    "experiments": [{"name": "faults", "dataset": "circles", "conditions": ["shape2px"], "models": ["vae"], "seeds": [0]}],
    "analysis": {"preset": "fast", "n_images": 4},
}
RUN = "circles/shape2px/vae/seed0"
TARGET = f"results/runs/{RUN}/model.pt"
TIMING_COLUMNS = ["images_per_s", "seconds"]  # wall-clock measurements, not results


def command(workdir: Path, *extra: str) -> list[str]:
    # The README's command, pointed at the test's directory; the default profile adds --rerun-incomplete.
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"), "--cores", "2", *extra, TARGET,
    ]


def start(workdir: Path) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return subprocess.Popen(
        command(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def run(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(workdir, *extra), capture_output=True, text=True, timeout=600)


def finish(workdir: Path) -> None:
    done = run(workdir)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def kill_point(proc: subprocess.Popen, workdir: Path, rng: random.Random) -> str:
    """Wait until a random epoch has been checkpointed, then a random part of the next epoch."""
    epoch, delay = rng.randint(1, EPOCHS - 2), rng.uniform(0.0, 0.8)
    folder = workdir / "results/checkpoints" / RUN
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        latest = latest_checkpoint(folder) if folder.exists() else None
        if latest is not None and int(latest.stem.rsplit("epoch", 1)[1]) >= epoch:
            time.sleep(delay)
            return f"after epoch {epoch} + {delay:.2f} s"
        assert proc.poll() is None, f"snakemake ended before epoch {epoch}: {proc.stdout.read()[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"epoch {epoch} was never checkpointed in {folder}")


def training_pids(workdir: Path) -> list[int]:
    """Processes running the train rule's script inside `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if "train.py" in cmdline and cwd == str(workdir):
            pids.append(int(proc.name))
    return pids


def assert_no_corrupt_output(workdir: Path) -> None:
    """Everything the killed run left is either absent or complete; no model for an unfinished run."""
    results = workdir / "results"
    grid = check_dataset(results / "data/circles.h5")
    for split in (results / "splits").rglob("*.npz"):
        load_split(split, grid, json.loads(split.with_suffix(".json").read_text()))
    assert not (workdir / TARGET).exists() and not (workdir / f"results/runs/{RUN}/run.json").exists()
    for checkpoint in (results / "checkpoints").rglob("ckpt_*.pt"):
        torch.load(checkpoint, weights_only=True)


def assert_same_result(workdir: Path, reference: Path, when: str) -> None:
    ours, theirs = (torch.load(d / TARGET, weights_only=True)["state_dict"] for d in (workdir, reference))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), f"weights differ (killed {when})"
    logs = [pd.read_csv(d / f"results/runs/{RUN}/train_log.csv").drop(columns=TIMING_COLUMNS) for d in (workdir, reference)]
    pd.testing.assert_frame_equal(*logs)
    assert len(logs[0]) == EPOCHS
    leftovers = [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = start(workdir)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return workdir


def test_training_job_killed_by_sigkill_resumes_to_the_same_weights(tmp_path, reference):
    proc = start(tmp_path)
    when = kill_point(proc, tmp_path, random.Random())
    pids = training_pids(tmp_path)
    assert pids, f"the training job is not running {when}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-3000:]
    assert_no_corrupt_output(tmp_path)
    finish(tmp_path)  # the same command: snakemake sees the failed job's outputs missing and reruns it
    info = json.loads((tmp_path / f"results/runs/{RUN}/run.json").read_text())
    assert 1 <= info["resumed_from_epoch"] < EPOCHS, when
    assert_same_result(tmp_path, reference, when)


def test_whole_snakemake_killed_recovers_after_unlock(tmp_path, reference):
    proc = start(tmp_path)
    when = kill_point(proc, tmp_path, random.Random())
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its jobs, as a lost node or power cut would
    proc.communicate(timeout=60)
    assert not training_pids(tmp_path), "a training job outlived its snakemake"
    assert_no_corrupt_output(tmp_path)
    # A killed snakemake cannot remove its lock; the same command says so and runs nothing ...
    locked = run(tmp_path)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert not (tmp_path / TARGET).exists()
    # ... and after `--unlock` the same command resumes (rerun-incomplete, from the profile).
    unlocked = run(tmp_path, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    finish(tmp_path)
    info = json.loads((tmp_path / f"results/runs/{RUN}/run.json").read_text())
    assert 1 <= info["resumed_from_epoch"] < EPOCHS, when
    assert_same_result(tmp_path, reference, when)


def test_results_in_the_way_fails_before_any_job_with_a_clear_message(tmp_path):
    # A file where the folder should be: refused for every user (root ignores permission bits).
    (tmp_path / "results").write_text("not a folder")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    done = run(tmp_path)
    assert done.returncode != 0
    assert f"{tmp_path}/results: exists but is not a folder; every output goes under results/" in done.stderr
    assert "Job stats" not in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_results_folder_fails_before_any_job_with_a_clear_message(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results").chmod(0o500)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    try:
        done = run(tmp_path)
    finally:
        (tmp_path / "results").chmod(0o700)
    assert done.returncode != 0
    assert f"{tmp_path}/results: not writable; every output goes under results/" in done.stderr


def test_killed_dataset_generation_leaves_no_readable_file(tmp_path):
    """SIGKILL mid-write (no cleanup runs): only a hidden temporary file remains, never the dataset."""
    target = tmp_path / "circles.h5"
    script = textwrap.dedent(f"""
        import sys, time
        from compgen.datasets import dataset_grid, family
        from compgen.datasets.store import write_dataset
        grid = dataset_grid("circles", {{"x": 2, "y": 2}})
        def render(classes):
            print("rendered", flush=True)
            time.sleep(0.5)
            return family("circles").render(grid, classes)
        write_dataset({str(target)!r}, grid, render, {{}}, batch=32)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(2):  # the first batch is written, the second is being rendered
        assert proc.stdout.readline().strip() == "rendered"
    proc.kill()
    proc.wait(timeout=30)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [f".circles.h5.tmp-{proc.pid}"]
    with pytest.raises(DatasetError, match="prepared dataset not found"):
        check_dataset(target)
    np.testing.assert_equal(proc.returncode, -signal.SIGKILL)
