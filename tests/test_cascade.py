"""CascadeVAE (task `cascade`): its loss, its discrete-code matching, its schedules, exact resumes,
and training and analysis on the toy grid."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from compgen.analysis.arrays import load_arrays
from compgen.config import ConfigError, complete_model
from compgen.models.cascade import CascadeLoss, CascadeVAE, match_categories
from compgen.tasks import TASKS, model_labels
from compgen.training.run import train_run
from conftest import analyse_toy, assert_same_outputs, train_straight_and_resumed
from test_engine import flatten, make_run

# On the toy grid: 28 training images in batches of 8, 4 steps an epoch. Units fall to beta_low
# after steps 3, 6, 9, 12 and codes are chosen from step 5 on, so both schedules cross epochs.
KEYS = {"n_cat": 3, "disc_warmup": 6, "warmup": 3, "lmbda": 0.5}


class TinyEncoder(nn.Module):
    def __init__(self, latent_size):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2 * latent_size))

    def forward(self, x):
        return self.net(x).chunk(2, dim=1)


def tiny_model(latent_size=2, n_cat=3, disc_warmup=0, lmbda=0.0) -> CascadeVAE:
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(latent_size + n_cat, 16), nn.Unflatten(1, (1, 4, 4)))
    return CascadeVAE(TinyEncoder(latent_size), decoder, latent_size, n_cat, disc_warmup, lmbda)


def tiny_images(n=6) -> torch.Tensor:
    return (torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_loss_is_reconstruction_plus_per_unit_weighted_kl():
    logits = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]], [[[-0.3, 1.5], [0.1, -2.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 1.0], [0.0, 0.0]]]])
    mu = torch.tensor([[0.2, -0.5, 1.0], [0.0, 0.3, -0.7]])
    logvar = torch.tensor([[-0.1, 0.4, -1.2], [0.5, -0.3, 0.0]])
    objective = CascadeLoss("bce", beta_high=10.0, beta_low=2.0, warmup=3)
    parts = objective.single(logits, target, mu, logvar, mu, step=4)  # unit 0 at beta_low

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    def kl(m, lv):
        return 0.5 * (m * m + math.exp(lv) - 1 - lv)

    beta = [2.0, 10.0, 10.0]
    recon, kls, weighted = [], [], []
    for i in range(2):
        pixels = zip(logits[i].flatten().tolist(), target[i].flatten().tolist(), strict=True)
        recon.append(sum(bce(x, t) for x, t in pixels))
        kls.append([kl(m, lv) for m, lv in zip(mu[i].tolist(), logvar[i].tolist(), strict=True)])
        weighted.append(sum(b * k for b, k in zip(beta, kls[i], strict=True)))
    assert float(parts["recon"]) == pytest.approx(sum(recon) / 2, rel=1e-6)
    assert float(parts["kl"]) == pytest.approx(sum(map(sum, kls)) / 2, rel=1e-6)
    assert float(parts["loss"]) == pytest.approx((sum(recon) + sum(weighted)) / 2, rel=1e-6)
    assert float(parts["units_at_beta_low"]) == 1


def brute_force(costs: np.ndarray, lmbda: float) -> tuple[tuple[int, ...], float]:
    """Every assignment, costed as the original's flow network: an item's arc to its category, and
    the category's arcs to the sink, the s-th item through the one costing s * lmbda."""
    n, n_cat = costs.shape
    best, best_cost = None, math.inf
    for assignment in itertools.product(range(n_cat), repeat=n):
        counts = np.bincount(assignment, minlength=n_cat)
        total = costs[np.arange(n), assignment].sum() + sum(lmbda * s for m in counts for s in range(m))
        if total < best_cost:
            best, best_cost = assignment, total
    return best, best_cost


@pytest.mark.parametrize(
    "n, n_cat, lmbda",
    [(4, 2, 0.0), (4, 2, 0.3), (5, 3, 0.2), (6, 3, 0.5), (6, 2, 2.0), (5, 3, 10.0), (6, 3, 0.05)],
)
def test_training_matching_is_the_brute_force_optimum(n, n_cat, lmbda):
    rng = np.random.default_rng(n * 100 + n_cat)
    for _ in range(5):
        costs = rng.uniform(0, 1, size=(n, n_cat))
        chosen = match_categories(costs, lmbda)
        best, best_cost = brute_force(costs, lmbda)
        assert tuple(chosen.tolist()) == best
        counts = np.bincount(chosen, minlength=n_cat)
        cost = costs[np.arange(n), chosen].sum() + lmbda * (counts * (counts - 1) / 2).sum()
        assert cost == pytest.approx(best_cost)
        if lmbda == 0.0:
            assert (chosen == costs.argmin(1)).all()
        if lmbda >= 10.0:  # pairs cost more than any reconstruction gain: a balanced batch
            assert counts.max() - counts.min() <= 1


def test_training_matches_the_batch_and_evaluation_takes_the_cheapest_category():
    x = tiny_images(6)
    model = tiny_model(lmbda=1e6, disc_warmup=4)  # any shared pair costs more than all else
    model.train()
    torch.manual_seed(2)
    _, _, _, z, code = model(x, step=3)  # the 4th step: the original's counter reaches disc_warmup
    costs = model.category_costs(x, z)
    assert torch.equal(code.argmax(1), torch.as_tensor(match_categories(costs.numpy(), 1e6)))
    assert code.sum(0).tolist() == [2.0, 2.0, 2.0] and code.sum(1).tolist() == [1.0] * 6
    _, _, _, _, warm = model(x, step=2)
    assert torch.equal(warm, torch.zeros(6, 3))  # warm-up: no category yet

    model.eval()
    logits, mu, _, z, code = model(x)
    costs = model.category_costs(x, mu)
    assert torch.equal(z, mu) and torch.equal(code.argmax(1), costs.argmin(1))
    representation, logvar = model.encode(x)
    assert representation.shape == logvar.shape == (6, 3)
    assert torch.equal(representation[:, -1], costs.argmin(1).float() - 1)  # 2c / (3 - 1) - 1
    assert torch.equal(model.decode(representation), logits)


def test_beta_schedule_lowers_one_unit_per_warmup_as_the_original():
    objective = CascadeLoss("bce", beta_high=10.0, beta_low=2.0, warmup=100)
    expected = {
        0: [10, 10, 10, 10],
        99: [10, 10, 10, 10],
        100: [2, 10, 10, 10],
        250: [2, 2, 10, 10],
        399: [2, 2, 2, 10],
        400: [2, 2, 2, 2],
        10**6: [2, 2, 2, 2],
    }
    for step, betas in expected.items():
        assert objective.betas(step, 4).tolist() == betas

    # The original: a stateful vector, updated at each iteration's end with that 0-based step
    # (InfoCascadeLoss.update_parameters, called by disent.py on ITERATION_COMPLETED).
    objective = CascadeLoss("bce", beta_high=10.0, beta_low=2.0, warmup=3)
    beta = [10.0] * 4
    for step in range(20):
        assert objective.betas(step, 4).tolist() == beta
        if (step + 1) % 3 == 0 and step // 3 < 4:
            beta[step // 3] = 2.0

    cfg = complete_model({"task": "cascade"})  # the schema's defaults, the original's values
    assert (cfg["n_cat"], cfg["disc_warmup"], cfg["lmbda"], cfg["warmup"]) == (3, 80000, 0.001, 20000)
    assert (cfg["beta_high"], cfg["beta_low"]) == (10.0, 2.0)
    assert TASKS["cascade"].objective(cfg, 10).betas(20000, 6).tolist() == [2, 10, 10, 10, 10, 10]
    assert model_labels({"m": cfg}) == {"m": "CascadeVAE"}
    with pytest.raises(ConfigError, match="applies only when task is 'cascade'"):
        complete_model({"task": "unsupervised", "lmbda": 0.1})


def test_resumed_run_is_bit_identical(data, tmp_path, monkeypatch):
    run = make_run("cascade", epochs=4, model_keys=KEYS)
    straight, resumed = train_straight_and_resumed(data, run, tmp_path, monkeypatch)
    assert_same_outputs(straight, resumed)
    ckpt_a = torch.load(tmp_path / "ckpt_straight" / "ckpt_epoch4.pt", weights_only=True)
    ckpt_b = torch.load(tmp_path / "ckpt_resumed" / "ckpt_epoch4.pt", weights_only=True)
    for key in ("model", "optimizer"):
        flat_a, flat_b = flatten(ckpt_a[key]), flatten(ckpt_b[key])
        assert flat_a.keys() == flat_b.keys() and all(torch.equal(flat_a[k], flat_b[k]) for k in flat_a)
    log_a = pd.read_csv(straight / "train_log.csv")
    # Epoch means of the units at beta_low over steps 0-3, 4-7, 8-11, 12-15.
    assert log_a["units_at_beta_low"].tolist() == pytest.approx([0.25, 1.5, 2.75, 4.0])


def test_trains_on_the_toy_grid_and_is_analysed(data, tmp_path):
    dataset, split = data
    run = make_run("cascade", epochs=6, model_keys=KEYS)
    train_run(dataset, split, run, tmp_path / "run", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert {"recon", "kl", "units_at_beta_low", "loss", "val_recon"} <= set(log.columns)
    assert np.isfinite(log.drop(columns=["images_per_s", "seconds"])).all().all()
    assert log["loss"].iloc[-1] < log["loss"].iloc[0] and log["recon"].iloc[-1] < log["recon"].iloc[0]

    scores = analyse_toy(dataset, split, tmp_path / "run", tmp_path)
    assert np.isfinite(scores["dci_disentanglement"]) and np.isfinite(scores["dci_paper_disentanglement"])
    assert 0 < scores["recon_train"] < np.inf and 0 < scores["recon_test"] < np.inf
    arrays = load_arrays(tmp_path / "arrays.npz")
    latents = arrays["latents"]
    assert latents.shape[1] == 4 + 1  # the continuous means and the category as one scalar
    assert set(np.unique(latents[:, -1])) <= {-1.0, 0.0, 1.0}
    assert arrays["traversal_images"].shape[:2] == (5, 9)
