"""The ICLR 2021 composition task as options of the composition task (`models.<m>.objective`,
`command`, `select_on`), the originals' composition ops, and the ICLR study's composition runs.

Originals: mmrl/disent-and-gen (ICLR 2021, "the ICLR code") and mmrl/lost-in-latent-space at
1dbaf35 (NeurIPS 2022, "the NeurIPS code")."""

import itertools
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from compgen.batches import CodeTables, TripletSampler, heldout_triplets
from compgen.config import ConfigError, complete_model
from compgen.losses import build_objective
from compgen.models import COMPOSITION_OPS
from compgen.study import Study
from compgen.tasks import TASKS, build_model
from compgen.training.run import setup_run, train_run, validation_floor
from conftest import ROOT, load_config


def objective(loss: str, **keys):
    """The objective a study builds for a composition model with this loss (schema defaults)."""
    model = complete_model({"task": "composition", "op": "linear", "loss": loss, **keys})
    return build_objective(model, n_train=0)


def kl_by_hand(mu: float, logvar: float) -> float:
    """One latent unit's KL to N(0, 1): -0.5 (1 + logvar - mu² - exp(logvar)), `_gaussian_kl`."""
    return -0.5 * (1 + logvar - mu**2 - math.exp(logvar))


def iclr_outputs():
    """Two triplets, two latent units, 2-pixel images; the target's logits are 0 (BCE log 2 a
    pixel whatever the target). No input reconstructions: the ICLR Composer decodes none."""
    mu_ref, logvar_ref = (
        torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
        torch.tensor([[0.0, math.log(2)], [0.0, 0.0]]),
    )
    mu_cmd, logvar_cmd = torch.tensor([[0.0, 2.0], [0.5, 0.0]]), torch.zeros(2, 2)
    out = {
        "recon_target": torch.zeros(2, 1, 1, 2),
        "mu_ref": mu_ref,
        "logvar_ref": logvar_ref,
        "z_ref": mu_ref,
        "mu_cmd": mu_cmd,
        "logvar_cmd": logvar_cmd,
        "z_cmd": mu_cmd,
        "z_target": torch.zeros(2, 2),
    }
    # KL of every unit of every input, summed: the reference's (1, 0; ln 2), the command's (0, 2; 0.5, 0).
    kl_sum = kl_by_hand(1.0, 0.0) + kl_by_hand(0.0, math.log(2)) + kl_by_hand(2.0, 0.0) + kl_by_hand(0.5, 0.0)
    return out, torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]]), kl_sum


def test_target_only_loss_by_hand():
    """The ICLR code's composition loss for a β-VAE, recomputed by hand.

    `Composer.forward` (mmrl/disent-and-gen `scripts/ingredients/composers.py` lines 110-125)
    returns the decoded transformation, z and the (mu, logvar) of the 2 x batch encoded inputs;
    `AELoss.forward` (`src/training/loss.py` lines 41-50) takes the BCE of the transformation
    against the target, summed, over the batch of triplets; `GaussianVAELoss.latent_term` (lines
    74-79) adds beta times the KL (`_gaussian_kl`, line 293-294) summed over both inputs' posteriors
    and divided by `z_sample.size(0)`, the number of triplets. Nothing reconstructs the inputs.
    """
    out, target, kl_sum = iclr_outputs()
    parts = objective("betavae", beta=4.0).composition(
        out, None, None, target, step=0, objective="target_only"
    )
    recon = 2 * 2 * math.log(2) / 2  # two triplets of two pixels at log 2, over two triplets
    assert set(parts) == {"recon_target", "kl", "loss"}
    assert float(parts["recon_target"]) == pytest.approx(recon)
    assert float(parts["kl"]) == pytest.approx(kl_sum / 2)
    assert float(parts["loss"]) == pytest.approx(recon + 4.0 * kl_sum / 2)


def test_target_only_cci_pools_both_inputs_under_one_capacity():
    """CCI-VAE: gamma |KL - C| with the KL summed over both inputs and over the triplets (`CCIVAE.
    latent_term`, mmrl/disent-and-gen `src/training/loss.py` lines 108-113; the NeurIPS code's
    lines 135-140 likewise): one capacity for the reference and the command together, not one each."""
    out, target, kl_sum = iclr_outputs()
    loss = objective("ccivae", gamma=10.0, capacity_max=4.0, capacity_steps=100)
    parts = loss.composition(out, None, None, target, step=50, objective="target_only")  # C = 2
    recon = 2 * math.log(2)
    assert float(parts["capacity"]) == 2.0
    assert float(parts["loss"]) == pytest.approx(recon + 10.0 * abs(kl_sum / 2 - 2.0))
    # Each input against its own capacity would differ: the reference's KL is below C, the command's above.
    kl_ref = (kl_by_hand(1.0, 0.0) + kl_by_hand(0.0, math.log(2))) / 2
    kl_cmd = (kl_by_hand(2.0, 0.0) + kl_by_hand(0.5, 0.0)) / 2
    separate = 10.0 * (abs(kl_ref - 2.0) + abs(kl_cmd - 2.0))
    assert abs(float(parts["loss"]) - recon - separate) > 1.0


def test_default_objective_still_reconstructs_all_three():
    """`target_and_inputs` (the NeurIPS code: its target stacks reference, command and transformed
    image, `src/dataset/tuples.py` lines 203-205): the loss adds both inputs' reconstructions."""
    out, target, kl_sum = iclr_outputs()
    out = {**out, "recon_ref": torch.zeros(2, 1, 1, 2), "recon_cmd": torch.zeros(2, 1, 1, 2)}
    parts = objective("vae").composition(out, target, target, target, step=0)
    assert float(parts["recon_inputs"]) == pytest.approx(2 * 2 * math.log(2))
    assert float(parts["loss"]) == pytest.approx(3 * 2 * math.log(2) + kl_sum / 2)
    with pytest.raises(ValueError, match="models.<model>.objective"):
        objective("vae").composition(out, target, target, target, step=0, objective="iclr")


# A 2 x 3 grid with one code missing from the training images.
GRID = (2, 3)
TRAIN = np.array([c for c in itertools.product(range(2), range(3)) if c != (1, 2)])


@pytest.mark.parametrize(
    "target, d, expected",
    [
        # d = 1, target's value 1: the training images with factor 1 == 1 are (0,1) and (1,1).
        ((0, 1), 1, {(0, 1): 1 / 2, (1, 1): 1 / 2}),
        # d = 0, value 1: (1,0) and (1,1) ((1,2) is not a training image); the target itself counts.
        ((1, 0), 0, {(1, 0): 1 / 2, (1, 1): 1 / 2}),
        # d = 1, value 2: only (0,2) has it, so the command is the target.
        ((0, 2), 1, {(0, 2): 1.0}),
        # d = 0, value 0: every image with factor 0 == 0, whatever its factor 1.
        ((0, 0), 0, {(0, 0): 1 / 3, (0, 1): 1 / 3, (0, 2): 1 / 3}),
    ],
)
def test_same_value_command_by_hand(target, d, expected):
    """The ICLR code's command (`Triplets.__getitem__`, mmrl/disent-and-gen
    `src/dataset/transforms.py` lines 41-44): `idx = latents[:, dim] == latents[target_idx, dim]`
    over the training images, then `np.random.choice` of those rows, uniformly; the target is one
    of them. 200k seeded draws against the enumerated distribution."""
    row = {code: i for i, code in enumerate(map(tuple, TRAIN.tolist()))}
    n = 200_000
    cmd = CodeTables(TRAIN, GRID).command_same_value(
        torch.full((n,), row[target]), torch.full((n,), d), torch.Generator().manual_seed(0)
    )
    counts = Counter(map(tuple, TRAIN[cmd.numpy()].tolist()))
    assert set(counts) == set(expected)
    for code, p in expected.items():
        assert abs(counts[code] / n - p) < 0.005  # 4.5 sigma at p = 1/2


def test_sampler_draws_the_iclr_triplets():
    """`command="same_value"`: target differs from the reference in d alone, the command has the
    target's value of d and is otherwise free (it may equal the reference in other factors, or the
    target), and d is uniform over the factors when every image has another value of each (the
    ICLR code's `dim = np.random.choice(range(latent_size))`, `transforms.py` line 27)."""
    full = np.array(list(itertools.product(range(3), range(4), range(2))))
    t = TripletSampler(full, (3, 4, 2), torch.Generator().manual_seed(1), command="same_value").sample(60_000)
    ref, cmd, target = (full[x.numpy()] for x in t[:3])
    d, rows = t.d.numpy(), np.arange(len(t.d))
    differs = ref != target
    assert (differs.sum(1) == 1).all() and differs[rows, d].all()
    assert (cmd[rows, d] == target[rows, d]).all()
    assert (cmd == target).all(1).any()  # the target itself is among the candidates
    assert np.abs(np.bincount(d, minlength=3) / len(d) - 1 / 3).max() < 0.01
    # Given (target, d) the command is uniform over the images with the target's value of d:
    # target (0, 0, 0), d = 1 -> the 3 x 2 = 6 images with factor 1 == 0.
    chosen = (target == 0).all(1) & (d == 1)
    assert Counter(map(tuple, cmd[chosen].tolist())).keys() == {(a, 0, c) for a in range(3) for c in range(2)}
    with pytest.raises(ValueError, match="models.<model>.command"):
        TripletSampler(full, (3, 4, 2), torch.Generator(), command="iclr")


def test_heldout_triplets_use_the_run_command():
    """Scoring triplets follow the command the model was trained with: with `same_value` a command
    need not differ from the reference in any factor but d."""
    full = np.array(list(itertools.product(range(3), range(4), range(2))))
    test = full[(full[:, 0] == 2) & (full[:, 1] > 1)]
    train = full[~((full[:, 0] == 2) & (full[:, 1] > 1))]
    flat = heldout_triplets((3, 4, 2), train, test, 5000, torch.Generator().manual_seed(2), "same_value")
    ref, cmd, target = (np.stack(np.unravel_index(x, (3, 4, 2)), axis=1) for x in flat[:3])
    rows = np.arange(len(flat.d))
    assert (cmd[rows, flat.d] == target[rows, flat.d]).all()
    same_elsewhere = ((cmd == ref) | (np.arange(3) == flat.d[:, None])).all(1)
    assert same_elsewhere.any()
    # Under resample_others never: on this pool every factor of every code has another value.
    flat = heldout_triplets((3, 4, 2), train, test, 5000, torch.Generator().manual_seed(2))
    ref, cmd = (np.stack(np.unravel_index(x, (3, 4, 2)), axis=1) for x in flat[:2])
    assert not ((cmd == ref) | (np.arange(3) == flat.d[:, None])).all(1).any()


def test_linear_op_is_the_originals_sum_of_two_maps():
    """The NeurIPS code's `LinearComp` (`src/models/compnet.py` lines 24-38) and the ICLR code's
    `LinearMixer` (`scripts/ingredients/composers.py` lines 48-62): ref_proj([z_ref, a]) +
    trans_proj([z_cmd, a]), two Linear(latent + factors -> latent) at torch's default init."""
    op = COMPOSITION_OPS["linear"](n_factors=2, latent_size=3)
    assert op.ref_map.weight.shape == (3, 5) and op.cmd_map.weight.shape == (3, 5)
    bound = 1 / math.sqrt(5)  # torch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3 + 2
    assert all(float(p.detach().abs().max()) <= bound for p in op.parameters())
    z_ref, z_cmd, a = (
        torch.tensor([[1.0, 2.0, 3.0]]),
        torch.tensor([[-1.0, 0.5, 0.0]]),
        torch.tensor([[0.0, 1.0]]),
    )
    with torch.no_grad():
        for m, scale in ((op.ref_map, 1.0), (op.cmd_map, 2.0)):
            m.weight.copy_(scale * torch.arange(15.0).reshape(3, 5) / 10)
            m.bias.copy_(torch.tensor([scale, 0.0, -scale]))
    w = torch.arange(15.0).reshape(3, 5) / 10
    by_hand = (
        w @ torch.tensor([1.0, 2.0, 3.0, 0.0, 1.0])
        + torch.tensor([1.0, 0.0, -1.0])
        + 2 * w @ torch.tensor([-1.0, 0.5, 0.0, 0.0, 1.0])
        + torch.tensor([2.0, 0.0, -2.0])
    )
    assert torch.allclose(op(z_ref, z_cmd, a)[0], by_hand)


def test_mlp_op_is_the_originals():
    """The NeurIPS code's `MLPComp` (`src/models/compnet.py` lines 56-69): Linear(2 latent +
    factors -> 128), ReLU, Linear(128 -> latent), torch's default init (biases not zero)."""
    torch.manual_seed(0)
    op = COMPOSITION_OPS["mlp"](n_factors=5, latent_size=10)
    layers = list(op.net)
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (25, 128, 10)
    assert (
        float(layers[0].bias.detach().abs().max()) > 0
        and float(layers[0].weight.detach().abs().max()) <= 1 / 5
    )


def test_target_only_decodes_the_target_alone():
    """`decode_inputs=False` (the ICLR Composer decodes only the transformation): the same target
    logits as decoding all three at evaluation, and no input reconstructions."""
    torch.manual_seed(0)
    cfg = complete_model({"task": "composition", "op": "linear", "encoder": "kim", "decoder": "kim"})
    model = build_model(cfg, (64, 64, 1), 3)
    model.eval()
    ref, cmd, action = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64), torch.eye(3)[:2]
    alone = model.compose(ref, cmd, action, decode_inputs=False)
    assert "recon_ref" not in alone and "recon_cmd" not in alone
    assert torch.allclose(alone["recon_target"], model.compose(ref, cmd, action)["recon_target"], atol=1e-5)


def test_keys_are_composition_only_and_checked():
    assert complete_model({"task": "composition", "op": "fixint"})["objective"] == "target_and_inputs"
    assert complete_model({"task": "composition", "op": "fixint"})["command"] == "resample_others"
    assert complete_model({"task": "composition", "op": "fixint"})["select_on"] == "target"
    with pytest.raises(ConfigError, match="models.model.command"):
        complete_model({"task": "unsupervised", "command": "same_value"})
    with pytest.raises(ConfigError, match="models.model.select_on"):
        complete_model({"task": "composition", "op": "fixint", "select_on": "reference"})
    label = TASKS["composition"].label(
        complete_model(
            {"task": "composition", "op": "linear", "objective": "target_only", "command": "same_value"}
        )
    )
    assert label == "VAE (linear, target only, same-value command)"


def make_run(epochs=3, **model_keys):
    """A toy composition run spec, completed with the schema's defaults (as tests/test_engine.py)."""
    from compgen.config import complete_training

    model = complete_model(
        {"task": "composition", "latent_size": 4, "encoder": "kim", "decoder": "kim", **model_keys}
    )
    return {
        "run_id": "toy-composition",
        "dataset": "toy",
        "condition": "corner",
        "model_name": "kim",
        "seed": 3,
        "model": model,
        "training": complete_training({"epochs": epochs, "batch_size": 8, "lr": 1e-3, "device": "cpu"}),
    }


def test_iclr_protocol_trains_and_logs_the_target_only(data, tmp_path):
    dataset, split = data
    run = make_run(op="linear", objective="target_only", command="same_value", loss="betavae", beta=4.0)
    summary = train_run(dataset, split, run, tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    assert list(log.columns[:4]) == ["epoch", "recon_target", "kl", "loss"] and "recon_inputs" not in log
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert summary["selected_by"] == "val_recon_target"
    assert summary["best_epoch"] == int(log["val_recon_target"].idxmin()) + 1


def test_select_on_all_selects_on_the_three_reconstructions(data, tmp_path):
    """`select_on: all`, the NeurIPS code's selection: `score_fn` takes its first metric,
    `recons_nll` (`scripts/experiments/composition.py` lines 177-178, `scripts/configs/training.py`
    line 36), on the stacked reference, command and transformed images (`src/dataset/tuples.py`
    lines 203-205; `ReconstructionNLL`, `src/training/loss.py` lines 552-558)."""
    dataset, split = data
    run = make_run(op="fixint", select_on="all")
    summary = train_run(dataset, split, run, tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    assert summary["selected_by"] == "val_recon_all"
    assert summary["best_epoch"] == int(log["val_recon_all"].idxmin()) + 1
    # The score is the sum of the three per-triplet losses, each above the target's alone.
    training = setup_run(dataset, split, run)
    task, data_ = training.task, training.data
    batch = task.validation_set(data_)
    with torch.no_grad():
        training.model.eval()
        everything = task.validation_loss(training.model, batch, data_, training.objective)
        target_only = TASKS["composition"].validation_loss(
            training.model, batch, type(data_)(**{**vars(data_), "model_cfg": {}}), training.objective
        )
    assert bool((everything > target_only).all())
    # Early stopping's floor: the three images' mean floors, summed.
    from compgen.metrics.excess import batched_floors

    expected = sum(float(batched_floors(data_.images, r, "bce", 8).mean()) for r in batch[:3])
    assert validation_floor(task, data_, 8) == pytest.approx(expected)


def test_iclr_study_composition_runs():
    """config/iclr2021.yaml: the runs of run-composition.sh (mmrl/disent-and-gen
    `scripts/bin/run-composition.sh`: burgess_v2 as VAE and as beta-VAE with beta 4 and 8, higgins
    as VAE), 30 epochs of `n_samples // batch_size` steps (`scripts/experiments/composition.py`
    lines 69, 172-173; `scripts/configs/training.py` lines 25-26: epochs 30, batch 64)."""
    study = Study(load_config(ROOT / "config/iclr2021.yaml"))
    runs = [r for r in study.runs if r.spec["model"]["task"] == "composition"]
    assert len(runs) == 4 * 4 * 3  # none + 3 conditions, 4 models, 3 seeds
    assert {r.condition for r in runs} == {"none", "blank_side", "sqr2tx", "leave1out"}
    assert {r.dataset for r in runs} == {"dsprites"}
    for r in runs:
        model, training = r.spec["model"], r.spec["training"]
        assert (model["op"], model["objective"], model["command"], model["select_on"]) == (
            "linear",
            "target_only",
            "same_value",
            "target",
        )
        assert training["max_steps_per_epoch"] == 10_000 // training["batch_size"] == 156
        assert (training["epochs"], training["lr"]) == (30, 1e-4)
    by_model = {r.model: r.spec["model"] for r in runs}
    assert by_model["comp_betavae_beta4"]["beta"] == 4 and by_model["comp_betavae_beta8"]["beta"] == 8
    assert (
        by_model["comp_vae"]["encoder"] == "burgess_v2"
        and by_model["comp_vae_higgins"]["decoder"] == "higgins"
    )


def test_iclr_demo_plans_a_composition_run():
    demo = Study(load_config(ROOT / "config/iclr2021_demo.yaml"))
    runs = [r for r in demo.runs if r.spec["model"]["task"] == "composition"]
    assert runs and all(r.spec["model"]["command"] == "same_value" for r in runs)
