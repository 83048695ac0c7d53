"""Faults: a training job or the whole snakemake run killed mid-way recovers to identical results;
an output folder that cannot be written stops the run with a clear message; a killed dataset
generation leaves no file that a later step could read.

Every kill happens at a fixed point: training pauses at a named iteration when the environment asks
it to (compgen.training.pause), the test waits for its marker file and kills it there. Nothing
depends on how fast the machine is; a failure replays exactly."""

import json
import os
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
from compgen.training.checkpoints import latest_checkpoint
from compgen.training.pause import PAUSE_AT, PAUSE_MARKER
from conftest import ROOT, snakemake_command

pytestmark = pytest.mark.workflow

CONFIG_FILE = ROOT / "tests/configs/faults.yaml"
CONFIG = yaml.safe_load(CONFIG_FILE.read_text())
EPOCHS = CONFIG["training"]["epochs"]  # 6
# 10 steps per epoch (a cap; the reference checks that every epoch reaches it)
STEPS = CONFIG["training"]["max_steps_per_epoch"]
RUN = "circles/shape2px/vae/seed0"
TARGET = f"results/runs/{RUN}/model.pt"
CHECKPOINTS = f"results/checkpoints/{RUN}"
TIMING_COLUMNS = ["images_per_s", "seconds"]  # wall-clock measurements, not results
SAFETY_TIMEOUT = 600  # seconds; only ever reached when something is broken, never a limit on speed


def command(workdir: Path, *extra: str) -> list[str]:
    # The README's command, pointed at the test's directory; the default profile adds --rerun-incomplete.
    return snakemake_command(workdir, "--configfile", str(CONFIG_FILE), "--cores", "2", *extra, TARGET)


def environment(pause_at: int | None = None, marker: Path | None = None) -> dict:
    """This process's environment, asking training to pause after iteration `pause_at` (or not at all)."""
    env = {k: v for k, v in os.environ.items() if k not in (PAUSE_AT, PAUSE_MARKER)}
    if pause_at is not None:
        env.update({PAUSE_AT: str(pause_at), PAUSE_MARKER: str(marker)})
    return env


def start(workdir: Path, pause_at: int | None = None) -> subprocess.Popen:
    """Snakemake in its own session (so that its process group is snakemake and its jobs), output to a file."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "snakemake.out", "w") as out:
        return subprocess.Popen(
            command(workdir),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=environment(pause_at, workdir / "paused.json"),
        )


def output(workdir: Path) -> str:
    return (workdir / "snakemake.out").read_text()[-4000:]


def run(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(workdir, *extra), capture_output=True, text=True, timeout=SAFETY_TIMEOUT, env=environment()
    )


def finish(workdir: Path) -> None:
    done = run(workdir)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def wait_for_pause(proc: subprocess.Popen, workdir: Path) -> dict:
    """The marker the paused training job wrote: its pid, epoch and iteration."""
    marker = workdir / "paused.json"
    deadline = time.monotonic() + SAFETY_TIMEOUT
    while not marker.exists():
        assert proc.poll() is None, (
            f"snakemake ended (exit {proc.returncode}) before training paused:\n{output(workdir)}"
        )
        assert time.monotonic() < deadline, (
            f"training did not pause within {SAFETY_TIMEOUT} s:\n{output(workdir)}"
        )
        time.sleep(0.1)
    return json.loads(marker.read_text())  # written atomically: complete once it exists


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


@pytest.fixture
def started():
    """Snakemake processes a test starts; whatever of them and their paused jobs is left is killed."""
    procs: list[tuple[subprocess.Popen, Path]] = []
    yield procs
    for proc, workdir in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in training_pids(workdir):
            os.kill(pid, signal.SIGKILL)


def latest_epoch(workdir: Path) -> int:
    path = latest_checkpoint(workdir / CHECKPOINTS)
    assert path is not None, f"no checkpoint in {workdir / CHECKPOINTS}"
    return int(path.stem.rsplit("epoch", 1)[1])


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
    logs = [
        pd.read_csv(d / f"results/runs/{RUN}/train_log.csv").drop(columns=TIMING_COLUMNS)
        for d in (workdir, reference)
    ]
    pd.testing.assert_frame_equal(*logs)
    assert len(logs[0]) == EPOCHS
    leftovers = [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = start(workdir)
    try:
        proc.wait(timeout=SAFETY_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output(workdir)
    info = json.loads((workdir / f"results/runs/{RUN}/run.json").read_text())
    assert (
        info["steps_per_epoch"] == STEPS and info["resumed_from_epoch"] == 0
    )  # the pause points below rely on it
    return workdir


# Pause points, as iterations counted over the whole run (epoch e holds iterations (e-1)*STEPS+1 .. e*STEPS).
MID_EPOCH_4 = 3 * STEPS + 5  # epoch 3 is checkpointed; resumes from epoch 3
END_OF_EPOCH_2 = 2 * STEPS  # the last step of epoch 2, before its checkpoint is written; resumes from epoch 1


def test_training_job_killed_by_sigkill_resumes_to_the_same_weights(tmp_path, reference, started):
    proc = start(tmp_path, pause_at=MID_EPOCH_4)
    started.append((proc, tmp_path))
    paused = wait_for_pause(proc, tmp_path)
    assert (paused["epoch"], paused["iteration"]) == (4, MID_EPOCH_4)
    assert paused["pid"] in training_pids(tmp_path)
    assert latest_epoch(tmp_path) == 3
    os.kill(paused["pid"], signal.SIGKILL)
    proc.wait(timeout=SAFETY_TIMEOUT)
    assert proc.returncode != 0, output(tmp_path)
    assert_no_corrupt_output(tmp_path)
    finish(tmp_path)  # the same command: snakemake sees the failed job's outputs missing and reruns it
    info = json.loads((tmp_path / f"results/runs/{RUN}/run.json").read_text())
    assert info["resumed_from_epoch"] == 3
    assert_same_result(tmp_path, reference, f"at iteration {MID_EPOCH_4}")


def test_whole_snakemake_killed_recovers_after_unlock(tmp_path, reference, started):
    proc = start(tmp_path, pause_at=END_OF_EPOCH_2)
    started.append((proc, tmp_path))
    paused = wait_for_pause(proc, tmp_path)
    assert (paused["epoch"], paused["iteration"]) == (2, END_OF_EPOCH_2)
    assert latest_epoch(tmp_path) == 1
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its jobs, as a lost node or power cut would
    proc.wait(timeout=SAFETY_TIMEOUT)
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
    assert info["resumed_from_epoch"] == 1
    assert_same_result(tmp_path, reference, f"at iteration {END_OF_EPOCH_2}")


def test_results_in_the_way_fails_before_any_job_with_a_clear_message(tmp_path):
    # A file where the folder should be: refused for every user (root ignores permission bits).
    (tmp_path / "results").write_text("not a folder")
    done = run(tmp_path)
    assert done.returncode != 0
    assert f"{tmp_path}/results: exists but is not a folder; every output goes under results/" in done.stderr
    assert "Job stats" not in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_results_folder_fails_before_any_job_with_a_clear_message(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results").chmod(0o500)
    try:
        done = run(tmp_path)
    finally:
        (tmp_path / "results").chmod(0o700)
    assert done.returncode != 0
    assert f"{tmp_path}/results: not writable; every output goes under results/" in done.stderr


def test_killed_dataset_generation_leaves_no_readable_file(tmp_path):
    """SIGKILL mid-write (no cleanup runs): only a hidden temporary file remains, never the dataset."""
    target = tmp_path / "circles.h5"
    # 256 images in batches of 32: the first batch is written, then rendering the second blocks
    # until the kill, so the kill always lands mid-write however slow the machine is.
    script = textwrap.dedent(f"""
        import time
        from compgen.datasets import dataset_grid, family
        from compgen.datasets.store import write_dataset
        grid = dataset_grid("circles", {{"x": 2, "y": 2}})
        calls = []
        def render(classes):
            calls.append(len(classes))
            if len(calls) == 2:
                print("blocked in batch 2", flush=True)
                while True:
                    time.sleep(3600)
            return family("circles").render(grid, classes)
        write_dataset({str(target)!r}, grid, render, {{}}, batch=32)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # EOF (an empty line) if the script fails first
        assert line.strip() == "blocked in batch 2", line
        proc.kill()
        proc.wait(timeout=SAFETY_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == [f".circles.h5.tmp-{proc.pid}"]
    with pytest.raises(DatasetError, match="prepared dataset not found"):
        check_dataset(target)
    np.testing.assert_equal(proc.returncode, -signal.SIGKILL)
