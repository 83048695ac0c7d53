"""Nothing stale: what a run resumes, what it sets aside, and who may train it. Runs are killed at
a fixed step by a patched task; every outcome is deterministic."""

import errno
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compgen.atomic import DiskFullError
from compgen.tasks import TASKS
from compgen.training.checkpoints import RunLock, RunLockedError, checkpoints
from compgen.training.run import train_run
from conftest import load_test_config, run_snakemake
from test_engine import make_run

STEPS_PER_EPOCH = 4  # 25 fitted images of the toy grid, batches of 8


class Killed(Exception):
    pass


@pytest.fixture
def kill_at(monkeypatch):
    """kill_at(n): the next run dies at its n-th training step (before the step)."""
    task_class = type(TASKS["unsupervised"])
    real = task_class.training_loss

    def arm(n: int) -> None:
        calls = []

        def dies(*args):
            calls.append(1)
            if len(calls) == n:
                monkeypatch.setattr(task_class, "training_loss", real)
                raise Killed
            return real(*args)

        monkeypatch.setattr(task_class, "training_loss", dies)

    return arm


def weights(out: Path) -> dict:
    return torch.load(out / "model.pt", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_leaves_no_checkpoint_so_running_it_again_starts_afresh(data, tmp_path):
    dataset, split = data
    first = train_run(dataset, split, make_run(epochs=2), tmp_path / "a", tmp_path / "ckpt")
    assert first["resumed_from_epoch"] == 0 and checkpoints(tmp_path / "ckpt") == []
    again = train_run(
        dataset, split, make_run(epochs=2), tmp_path / "b", tmp_path / "ckpt"
    )  # --forcerun train
    assert again["resumed_from_epoch"] == 0 and again["epochs"] == 2
    assert same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_a_changed_split_sets_the_checkpoint_aside_and_trains_afresh(data, tmp_path, kill_at, caplog):
    dataset, split = data
    with pytest.raises(Killed):
        kill_at(2 * STEPS_PER_EPOCH + 1)
        train_run(dataset, split, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")
    assert [p.name for p in checkpoints(tmp_path / "ckpt")] == ["ckpt_epoch2.pt", "ckpt_epoch1.pt"]
    # The same run on another split: the held-out corner moves, the settings do not.
    with np.load(split) as f:
        train, test = f["train"], f["test"]
    moved = tmp_path / "moved.npz"
    np.savez(moved, train=np.sort(np.concatenate([train[:-3], test])), test=np.sort(train[-3:]))
    with caplog.at_level(logging.WARNING, logger="compgen.training"):
        summary = train_run(dataset, moved, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")
    assert summary["resumed_from_epoch"] == 0 and summary["data"]["split_sha256"] != ""
    aside = sorted(p.name for p in (tmp_path / "ckpt" / "set-aside").iterdir())
    assert aside == ["ckpt_epoch1.pt", "ckpt_epoch2.pt"]
    warnings = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(warnings) == 2 and all("belongs to another run" in w for w in warnings)
    assert str(tmp_path / "ckpt" / "ckpt_epoch2.pt") in warnings[0]


def test_changed_data_sets_the_checkpoint_aside(data, tmp_path, kill_at):
    dataset, split = data
    with pytest.raises(Killed):
        kill_at(STEPS_PER_EPOCH + 1)
        train_run(dataset, split, make_run(epochs=2), tmp_path / "out", tmp_path / "ckpt")
    changed = tmp_path / "toy.h5"
    changed.write_bytes(dataset.read_bytes())
    import h5py

    with h5py.File(changed, "r+") as f:
        f["images"][0] = 255 - f["images"][0]  # one image differs
    summary = train_run(changed, split, make_run(epochs=2), tmp_path / "out", tmp_path / "ckpt")
    assert summary["resumed_from_epoch"] == 0
    assert (tmp_path / "ckpt" / "set-aside" / "ckpt_epoch1.pt").exists()


def test_a_truncated_checkpoint_is_set_aside_and_the_previous_one_resumed(data, tmp_path, kill_at, caplog):
    dataset, split = data
    straight = train_run(
        dataset, split, make_run(epochs=3), tmp_path / "straight", tmp_path / "ckpt_straight"
    )
    with pytest.raises(Killed):
        kill_at(2 * STEPS_PER_EPOCH + 1)
        train_run(dataset, split, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")
    newest = tmp_path / "ckpt" / "ckpt_epoch2.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # e.g. a node lost mid-copy
    with caplog.at_level(logging.WARNING, logger="compgen.training"):
        summary = train_run(dataset, split, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")
    assert summary["resumed_from_epoch"] == 1
    (warning,) = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert f"checkpoint {newest} cannot be read" in warning and "set-aside" in warning
    assert same_weights(weights(tmp_path / "out"), weights(tmp_path / "straight"))
    assert straight["epochs"] == summary["epochs"] == 3


def test_a_second_process_cannot_train_a_run_that_is_training(data, tmp_path):
    dataset, split = data
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom compgen.training.checkpoints import RunLock\n"
            "with RunLock(sys.argv[1], 'r'):\n    print('held', flush=True)\n    time.sleep(600)\n",
            str(tmp_path / "ckpt"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            RunLockedError, match=rf"run toy-unsupervised is already training in process {holder.pid} "
        ):
            train_run(dataset, split, make_run(epochs=1), tmp_path / "out", tmp_path / "ckpt")
        assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()
    finally:
        holder.kill()
        holder.wait()
    # Released by the kernel when its holder dies: the run trains now.
    assert train_run(dataset, split, make_run(epochs=1), tmp_path / "out", tmp_path / "ckpt")["epochs"] == 1
    with RunLock(tmp_path / "ckpt", "again"):
        pass


def test_a_full_disk_is_named_and_leaves_no_partial_file(data, tmp_path, monkeypatch):
    dataset, split = data
    real_write = Path.write_bytes

    def disk_full_for_checkpoints(self, payload):
        if self.name.startswith(".ckpt_epoch2.pt.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, payload)

    monkeypatch.setattr(Path, "write_bytes", disk_full_for_checkpoints)
    target = tmp_path / "ckpt" / "ckpt_epoch2.pt"
    with pytest.raises(DiskFullError, match=f"no space left on device while writing {target}$"):
        train_run(dataset, split, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")
    assert [p.name for p in (tmp_path / "ckpt").iterdir() if not p.name.startswith(".lock")] == [
        "ckpt_epoch1.pt"
    ]
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert (
        train_run(dataset, split, make_run(epochs=3), tmp_path / "out", tmp_path / "ckpt")[
            "resumed_from_epoch"
        ]
        == 1
    )


def test_a_retrain_whose_base_was_trained_again_sets_its_checkpoint_aside(data, tmp_path, kill_at, caplog):
    """Issue 22, case 1: a retrain killed mid-training, its base trained again (e.g. with another
    thread count: same settings in the retrain's spec, other weights), then rerun. Resuming would
    keep the old base's frozen half; the base's SHA-256 in the fingerprint sets the checkpoint aside."""
    from compgen.tasks import load_trained
    from compgen.training.checkpoints import file_sha256

    dataset, split = data
    base_path = tmp_path / "base" / "model.pt"
    train_run(dataset, split, make_run("composition", epochs=2), tmp_path / "base", tmp_path / "base_ckpt")
    run = make_run("retrain", epochs=3, model_keys={"base": "kim", "retrain": "decoder"})
    run["base"] = {"run_id": "toy-composition", "model_path": str(base_path)}
    with pytest.raises(Killed):
        kill_at(2 * STEPS_PER_EPOCH + 1)  # Retrain trains as Unsupervised does
        train_run(dataset, split, run, tmp_path / "out", tmp_path / "ckpt")
    assert [p.name for p in checkpoints(tmp_path / "ckpt")] == ["ckpt_epoch2.pt", "ckpt_epoch1.pt"]
    # The base trained again at the same path, to other weights (here one more epoch; in a study
    # e.g. another thread count, which the retrain's spec does not carry).
    train_run(dataset, split, make_run("composition", epochs=3), tmp_path / "base", tmp_path / "base_ckpt")
    with caplog.at_level(logging.WARNING, logger="compgen.training"):
        summary = train_run(dataset, split, run, tmp_path / "out", tmp_path / "ckpt")
    assert summary["resumed_from_epoch"] == 0 and summary["epochs"] == 3
    assert summary["base"] == {
        "run_id": "toy-composition",
        "model_path": str(base_path),
        "sha256": file_sha256(base_path),
    }
    assert json.loads((tmp_path / "out" / "run.json").read_text())["base"]["sha256"] == file_sha256(base_path)
    new_base, _ = load_trained(base_path)
    model, _ = load_trained(tmp_path / "out" / "model.pt")
    for name, tensor in new_base.vae.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], tensor), (
            name
        )  # the frozen half is the new base's
    aside = sorted(p.name for p in (tmp_path / "ckpt" / "set-aside").iterdir())
    assert aside == ["ckpt_epoch1.pt", "ckpt_epoch2.pt"]
    warnings = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert warnings[0] == (
        f"checkpoint {tmp_path / 'ckpt' / 'ckpt_epoch2.pt'} belongs to another run (its base "
        f"{base_path} differs: the base was trained again since); set aside as "
        f"{tmp_path / 'ckpt' / 'set-aside' / 'ckpt_epoch2.pt'}"
    )


@pytest.mark.workflow
def test_weights_do_not_depend_on_the_cores_snakemake_grants(tmp_path):
    """training.threads: 2 in the config; --cores 1 and --cores 2: the run pins its own two threads
    either way (resources.train.cpus, the scheduler request, stays 1)."""
    config = load_test_config("faults")
    config["training"]["threads"] = 2
    config["training"]["epochs"] = 2
    target = "results/runs/circles/shape2px/vae/seed0/model.pt"
    outputs = []
    for cores in ("1", "2"):
        workdir = tmp_path / f"cores{cores}"
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        done = run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "--cores", cores, target)
        assert done.returncode == 0, done.stderr[-3000:]
        info = json.loads((workdir / "results/runs/circles/shape2px/vae/seed0/run.json").read_text())
        assert info["threads"] == 2 and info["run"]["training"]["threads"] == 2
        outputs.append(weights(workdir / "results/runs/circles/shape2px/vae/seed0"))
    assert same_weights(*outputs)
