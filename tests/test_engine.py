import json

import numpy as np
import pandas as pd
import pytest
import torch

from compgen.config import complete_model, complete_training
from compgen.tasks import TASKS, build_model, load_trained
from compgen.training.checkpoints import latest_checkpoint
from compgen.training.run import fit, setup_run, train_run, write_outputs
from conftest import assert_same_outputs, train_straight_and_resumed


def make_run(task="unsupervised", epochs=3, lr=1e-3, model_keys=None, **training):
    """A run spec as the study builds it: model and training completed with the schema's defaults."""
    model = {"task": task, "latent_size": 4, **{part: "kim" for part in TASKS[task].parts}}
    if task == "composition":
        model["op"] = "fixint"
    model.update(model_keys or {})
    return {
        "run_id": f"toy-{task}",
        "dataset": "toy",
        "condition": "corner",
        "model_name": "kim",
        "seed": 3,
        "model": complete_model(model),
        "training": complete_training(
            {"epochs": epochs, "batch_size": 8, "lr": lr, "device": "cpu", **training}
        ),
    }


def test_unsupervised_run_learns_and_writes_outputs(data, tmp_path):
    dataset, split = data
    out = tmp_path / "out"
    training = setup_run(dataset, split, make_run(epochs=4))
    summary = write_outputs(training, out, fit(training, tmp_path / "ckpt"))
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["epoch", "recon", "kl", "loss", "val_recon", "images_per_s", "seconds"]
    assert log["epoch"].tolist() == [1, 2, 3, 4]
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    # validation: train_sample (the default, as the original): all 28 training images are fitted and
    # a seeded 20 % of them (round(5.6) = 6) also select the best epoch; 8 per batch, 4 steps.
    assert summary["n_train"] == 28 and summary["n_val"] == 6 and summary["steps_per_epoch"] == 4
    assert summary["validation"] == {"kind": "train_sample", "n": 6, "fraction": 0.2, "trained_on": True}
    assert summary["rebalance"] is None
    assert summary["best_epoch"] == int(log["val_recon"].idxmin()) + 1

    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["image_shape"] == [64, 64, 1] and payload["factor_sizes"] == [4, 4, 2]
    assert payload["factor_names"] == ["x", "y", "size"] and payload["best_epoch"] == summary["best_epoch"]
    model, _ = load_trained(out / "model.pt")
    rebuilt = build_model(payload["model_config"], payload["image_shape"], 3)
    rebuilt.load_state_dict(payload["last_state_dict"])
    rebuilt.eval()
    training.model.eval()
    x = torch.rand(2, 1, 64, 64)
    assert model(x)[0].shape == (2, 1, 64, 64)
    # The saved last weights rebuild the model exactly as training left it.
    assert torch.equal(rebuilt(x)[0], training.model(x)[0])

    info = json.loads((out / "run.json").read_text())
    assert info["seed"] == 3 and info["run"]["training"]["device"] == "cpu"
    assert {"python", "torch", "ignite", "numpy", "compgen"} <= set(info["versions"])
    assert latest_checkpoint(tmp_path / "ckpt").name == "ckpt_epoch4.pt"


def test_composition_fixint_learns(data, tmp_path):
    dataset, split = data
    train_run(dataset, split, make_run("composition", epochs=4), tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    assert list(log.columns[:5]) == ["epoch", "recon_target", "recon_inputs", "kl", "loss"]
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert np.isfinite(log["val_recon_target"]).all()


@pytest.mark.parametrize(
    "loss, parts",
    [
        ("betavae", ["recon", "kl"]),
        ("ccivae", ["recon", "kl", "capacity"]),
        ("factorvae", ["recon", "kl", "tc", "loss", "disc"]),
        ("btcvae", ["recon", "kl", "mi", "tc", "dwkl"]),
        ("wae", ["recon", "mmd", "logvar_l1"]),
    ],
)
def test_every_loss_trains_and_logs_its_parts(data, tmp_path, loss, parts):
    dataset, split = data
    keys = {"loss": loss, "recon": "bce"}  # every loss on the same reconstruction, so they compare
    if loss == "ccivae":
        keys.update(gamma=10.0, capacity_max=5.0, capacity_steps=8)
    train_run(dataset, split, make_run(epochs=3, model_keys=keys), tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    assert set(parts) <= set(log.columns) and np.isfinite(log[parts]).all().all()
    assert log["recon"].iloc[-1] < log["recon"].iloc[0]
    if loss == "ccivae":  # capacity averaged over each epoch's steps 0-3, 4-7, 8-11 of 8
        assert log["capacity"].tolist() == pytest.approx([5 * 1.5 / 8, 5 * 5.5 / 8, 5.0])


@pytest.mark.parametrize("task, part", [("supervised", "mse"), ("gt_decoder", "recon")])
def test_supervised_controls_learn(data, tmp_path, task, part):
    dataset, split = data
    summary = train_run(dataset, split, make_run(task, epochs=3), tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    assert list(log.columns) == ["epoch", part, "loss", f"val_{part}", "images_per_s", "seconds"]
    assert log[part].iloc[-1] < log[part].iloc[0]
    assert (
        summary["selected_by"] == f"val_{part}"
        and summary["best_epoch"] == int(log[f"val_{part}"].idxmin()) + 1
    )
    model, payload = load_trained(tmp_path / "out" / "model.pt")
    assert payload["model_config"]["task"] == task


@pytest.mark.parametrize(
    "task, loss, rebalance",
    [
        ("composition", "vae", None),
        ("composition", "factorvae", None),
        ("composition", "vae", "size"),  # references drawn by weight (training.rebalance)
        ("unsupervised", "vae", "x"),  # rows drawn by weight
    ],
)
def test_resumed_run_matches_uninterrupted_run(data, tmp_path, monkeypatch, task, loss, rebalance):
    run = make_run(task, epochs=3, model_keys={"loss": loss}, rebalance=rebalance)
    assert_same_outputs(*train_straight_and_resumed(data, run, tmp_path, monkeypatch))


def flatten(state, prefix="") -> dict:
    """The tensors of a (nested) state dict by path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    items = (
        state.items()
        if isinstance(state, dict)
        else enumerate(state)
        if isinstance(state, (list, tuple))
        else []
    )
    out = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}/{k}"))
    return out


def test_non_finite_loss_stops_with_step_and_parts(data, tmp_path, monkeypatch):
    dataset, split = data
    task_class = type(TASKS["unsupervised"])
    real_loss, calls = task_class.training_loss, []

    def goes_nan(*args):
        calls.append(1)
        parts, z = real_loss(*args)
        if len(calls) == 6:
            parts["loss"] = parts["loss"] * float("nan")
        return parts, z

    monkeypatch.setattr(task_class, "training_loss", goes_nan)
    with pytest.raises(RuntimeError, match=r"iteration 6 \(epoch 2\).*recon=.*loss=nan"):
        train_run(dataset, split, make_run(), tmp_path / "out", tmp_path / "ckpt")
    assert latest_checkpoint(tmp_path / "ckpt").name == "ckpt_epoch1.pt"
    assert not (tmp_path / "out" / "model.pt").exists()


def test_batch_norm_models_train_when_an_epoch_would_end_with_a_lone_row(data, tmp_path):
    """28 training rows in batches of 27: the last row is left out, not a batch of one (which
    batch norm refuses in training)."""
    dataset, split = data
    run = make_run(epochs=2, model_keys={"encoder": "kim_bn", "decoder": "kim_bn"}, batch_size=27)
    training = setup_run(dataset, split, run)
    assert training.data.fit.size == 28 and training.steps_per_epoch == 1
    summary = write_outputs(training, tmp_path / "out", fit(training, tmp_path / "ckpt"))
    assert summary["epochs"] == 2 and np.isfinite(summary["best_val"])
