"""Training on a real SLURM scheduler through profiles/slurm, on a single-node cluster on localhost,
and the GPU each training job takes.

The cluster comes from Debian's packages (tests/slurm_cluster.py); its tests skip, saying why, where
that cannot run (not root, no apt-get, ports taken). Training on the CPU is deterministic, so a
SLURM run must give exactly the weights and losses of a local run, also after a cancelled job resumed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from compgen.training import device as training_device
from conftest import ROOT, load_test_config, snakemake_command
from slurm_cluster import ClusterUnavailable, LocalSlurm, install_packages

PARTITION = "compgen"
RUNS = ["circles/shape2px/vae/seed0", "circles/shape2px/vae_fixint/seed0"]
RESUMED_RUN = "circles/shape2px/vae/seed0"
SMALL = load_test_config("slurm_small")  # two training jobs, one (stand-in) GPU each
RESUMABLE = load_test_config("slurm_resumable")  # one CPU-only run, long enough to be cancelled
TIMING_COLUMNS = {"images_per_s", "seconds"}
# Without slurmdbd, sacct fails and the executor would wait forever: job states come from squeue.
SLURM_ARGS = [
    "--profile",
    str(ROOT / "profiles/slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
]
SLURM_TIMEOUT_S = 240


UUIDS = ["GPU-0a1b", "GPU-2c3d"]


@pytest.fixture
def two_gpus(monkeypatch, tmp_path):
    """Two stand-in GPUs whose lock files live in tmp_path; yields the list of held claims (open
    lock files), closed at the end."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(UUIDS))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(uuid=UUIDS[index]))
    monkeypatch.setattr(training_device, "GPU_LOCK_DIR", tmp_path)
    claims = []
    monkeypatch.setattr(training_device, "_gpu_claims", claims)
    yield claims
    for fd in claims:
        os.close(fd)


def test_concurrent_training_jobs_claim_different_gpus(two_gpus, tmp_path, caplog):
    claims = two_gpus
    # flock locks of separate open() calls exclude each other, as those of separate jobs do.
    assert training_device.resolve_device("auto") == torch.device("cuda", 0)
    assert training_device.resolve_device("cuda") == torch.device("cuda", 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"compgen-gpu-{u}.lock" for u in UUIDS]
    assert training_device.resolve_device("cuda:1") == torch.device("cuda", 1)  # named: no claim
    assert len(claims) == 2 and not caplog.records
    # All held: share, and say so.
    assert training_device.resolve_device("auto") == torch.device("cuda", 0)
    assert "every slot of every visible GPU is claimed" in caplog.text
    os.close(claims.pop(0))  # the job on GPU 0 ends
    assert training_device.resolve_device("auto") == torch.device("cuda", 0)


def test_jobs_pack_onto_gpus_slot_by_slot(two_gpus, tmp_path, caplog):
    claims = two_gpus
    # Three slots per GPU: spread over both GPUs first, then pack.
    got = [training_device.resolve_device("cuda", jobs_per_gpu=3).index for _ in range(6)]
    assert got == [0, 1, 0, 1, 0, 1] and not caplog.records
    assert len(list(tmp_path.iterdir())) == 6
    # A seventh job finds every slot taken.
    assert training_device.resolve_device("cuda", jobs_per_gpu=3) == torch.device("cuda", 0)
    assert "every slot of every visible GPU is claimed" in caplog.text
    os.close(claims.pop(3))  # the second job on GPU 1 ends: its slot is free again
    assert training_device.resolve_device("cuda", jobs_per_gpu=3) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="resources.jobs_per_gpu must be at least 1"):
        training_device.claim_gpu(0)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    try:
        install_packages()
        slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"), PARTITION)
        try:
            slurm.start()
        except BaseException:
            slurm.stop()
            raise
    except ClusterUnavailable as reason:
        pytest.skip(f"no local SLURM cluster: {reason}")
    yield slurm
    slurm.stop()


def study_dir(tmp_path_factory, name: str, config: dict) -> Path:
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    return workdir


@pytest.fixture(scope="session")
def start_snakemake(cluster):
    """Starts snakemake in the background; any still running at the end is killed before the cluster stops."""
    started = []

    def start(workdir: Path, *args: str, slurm: bool) -> subprocess.Popen:
        started.append(snakemake(workdir, *args, slurm=slurm))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def snakemake(workdir: Path, *args: str, slurm: bool) -> subprocess.Popen:
    """Snakemake on the study in workdir in its own session; output goes to workdir/snakemake.log."""
    env = {key: val for key, val in os.environ.items() if not key.startswith(("SLURM_", "COMPGEN_SLURM_"))}
    # Jobs start `python -m snakemake` from the submitting environment (sbatch --export=ALL).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = snakemake_command(workdir, "--configfile", str(workdir / "study.yaml"))
    if slurm:
        env["COMPGEN_SLURM_PARTITION"] = PARTITION
        # SIGKILL after SIGTERM: a snakemake that cannot resolve a job's state ignores SIGTERM.
        cmd = ["timeout", "-k", "10", str(SLURM_TIMEOUT_S), *cmd, *SLURM_ARGS]
    else:
        cmd += ["--cores", "2"]
    log = open(workdir / "snakemake.log", "w")
    with log:
        return subprocess.Popen(
            [*cmd, *args], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def finished(process: subprocess.Popen, workdir: Path) -> None:
    returncode = process.wait(timeout=SLURM_TIMEOUT_S + 30)
    log = (workdir / "snakemake.log").read_text(errors="replace")
    assert returncode == 0, f"snakemake in {workdir} exited {returncode}:\n{log[-6000:]}"


def targets(runs):
    return [f"results/runs/{run}/model.pt" for run in runs]


def run_info(workdir: Path, run: str) -> dict:
    return json.loads((workdir / "results/runs" / run / "run.json").read_text())


def assert_same_training(workdir: Path, reference: Path, run: str) -> None:
    ours = torch.load(workdir / "results/runs" / run / "model.pt", weights_only=True)
    theirs = torch.load(reference / "results/runs" / run / "model.pt", weights_only=True)
    for key in ("state_dict", "last_state_dict"):
        assert ours[key].keys() == theirs[key].keys()
        for name, tensor in ours[key].items():
            assert torch.equal(tensor, theirs[key][name]), f"{run}: {key}[{name}] differs from the local run"
    log = pd.read_csv(workdir / "results/runs" / run / "train_log.csv")
    reference_log = pd.read_csv(reference / "results/runs" / run / "train_log.csv")
    assert list(log.columns) == list(reference_log.columns)
    losses = [column for column in log.columns if column not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(log[losses], reference_log[losses], check_exact=True)


@pytest.fixture(scope="module")
def small_study(start_snakemake, tmp_path_factory):
    """The small study trained through SLURM and, alongside, locally."""
    on_slurm = study_dir(tmp_path_factory, "on_slurm", SMALL)
    local = study_dir(tmp_path_factory, "local", SMALL)
    local_run = start_snakemake(local, *targets(RUNS), slurm=False)
    slurm_run = start_snakemake(on_slurm, *targets(RUNS), slurm=True)
    finished(slurm_run, on_slurm)
    finished(local_run, local)
    return on_slurm, local


@pytest.mark.slurm
def test_every_training_job_ran_in_its_own_slurm_job(cluster, small_study):
    on_slurm, _ = small_study
    job_ids = [run_info(on_slurm, run)["slurm_job_id"] for run in RUNS]
    assert all(job_id and job_id.isdigit() for job_id in job_ids), job_ids
    assert len(set(job_ids)) == len(RUNS)
    records = [cluster.job_record(job_id) for job_id in job_ids]
    for record in records:
        assert record["JobState"] == "COMPLETED" and record["Partition"] == PARTITION, record
        # The config's resources.train: gpu 1, cpus 1 (per GPU), mem_mb 1000, runtime 10 minutes.
        assert record["TresPerJob"] == "gres:gpu:1" and record["CpusPerTres"] == "gres:gpu:1", record
        assert "mem=1000M" in record["TRES"] and record["TimeLimit"] == "00:10:00", record
    # The workstation limit (profiles/default: gpu=1) must not hold the second GPU job back.
    assert max(r["SubmitTime"] for r in records) < min(r["EndTime"] for r in records), records


@pytest.mark.slurm
def test_slurm_outputs_equal_a_local_run(small_study):
    on_slurm, local = small_study
    for run in RUNS:
        assert run_info(local, run)["slurm_job_id"] is None
        assert_same_training(on_slurm, local, run)


@pytest.mark.slurm
def test_cancelled_training_job_resumes_from_its_checkpoint(cluster, start_snakemake, tmp_path_factory):
    on_slurm = study_dir(tmp_path_factory, "cancelled", RESUMABLE)
    local = study_dir(tmp_path_factory, "uninterrupted", RESUMABLE)
    local_run = start_snakemake(local, *targets([RESUMED_RUN]), slurm=False)
    slurm_run = start_snakemake(on_slurm, *targets([RESUMED_RUN]), slurm=True)
    checkpoints = on_slurm / "results/checkpoints" / RESUMED_RUN

    deadline = time.monotonic() + SLURM_TIMEOUT_S
    while not any(checkpoints.glob("*.pt")):
        assert slurm_run.poll() is None, (on_slurm / "snakemake.log").read_text()[-6000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    # The executor comments each job with its rule.
    training = [job for job, comment in cluster.running_jobs().items() if comment.startswith("rule_train")]
    assert len(training) == 1, cluster.job_states()
    cancelled = training[0]
    subprocess.run(["scancel", cancelled], check=True)

    finished(slurm_run, on_slurm)
    finished(local_run, local)
    record = cluster.job_record(cancelled)
    assert record["JobState"] == "CANCELLED", record
    # gpu: 0 in the config asks for no GPU.
    assert "gpu" not in record.get("TresPerJob", "") + record["TRES"] and "cpu=1," in record["TRES"], record
    info = run_info(on_slurm, RESUMED_RUN)
    assert info["slurm_job_id"] not in (None, cancelled)
    assert 0 < info["resumed_from_epoch"] < RESUMABLE["training"]["epochs"]
    assert run_info(local, RESUMED_RUN)["resumed_from_epoch"] == 0
    assert_same_training(on_slurm, local, RESUMED_RUN)
