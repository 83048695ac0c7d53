"""LieGroupVAE (task `lievae`): each loss term by hand, the group structure of the matrix
exponential, the seeded raw-feature draws, the analysis projection, resume, and a run end to end."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from compgen.analysis.arrays import load_arrays
from compgen.config import ConfigError, complete_model
from compgen.models.lie import (
    LieGroupVAE,
    LieLoss,
    LieOutput,
    basis_products,
    commutator_penalty,
    exp_map,
    hessian_penalty,
)
from compgen.tasks import TASKS
from compgen.tasks.lie import raw_features_drawn
from compgen.training.run import fit, setup_run, write_outputs
from conftest import analyse_toy, assert_same_outputs, train_straight_and_resumed
from test_engine import make_run

SMALL = {"subgroup_size": 16, "subspace_size": 4, "latent_size": 4, "recon": "mse_raw"}
# A pair of 2 x 2 bases that do not commute: A1 A2 = diag(1, 0), A2 A1 = diag(0, 1).
A1 = [[0.0, 1.0], [0.0, 0.0]]
A2 = [[0.0, 0.0], [1.0, 0.0]]


def tiny_model(bases) -> LieGroupVAE:
    """A 2 x 2 subgroup (4 features) with two latents and the given bases; identity layers around."""
    model = LieGroupVAE(nn.Flatten(), 4, nn.Identity(), [4], [2])
    with torch.no_grad():
        model.bases[0].copy_(torch.tensor(bases))
    return model


def loss(**weights) -> LieLoss:
    hyper = {"kl_gamma": 1.0, "group_recon_weight": 0.0, "hessian_weight": 0.0, "commutator_weight": 0.0}
    return LieLoss("mse_raw", 0, **{**hyper, **weights}, decoder_raw_prob=0.2)


def test_every_loss_term_matches_a_value_computed_by_hand():
    model = tiny_model([A1, A2])
    # Hessian: (|A2 A1|² + |A1 A2|²) / 2² = 2 / 4. Commutator: |[A1, A2]|² = |diag(1, -1)|² = 2 for
    # both ordered pairs, 4 / 4. (The original's transpose form, A_j A_i - (A_j A_i)^T, is 0 here.)
    assert hessian_penalty(model.bases[0]).item() == pytest.approx(0.5)
    assert commutator_penalty(model.bases[0]).item() == pytest.approx(1.0)
    products = basis_products(model.bases[0])
    assert torch.equal(products[0, 1], torch.tensor(A2) @ torch.tensor(A1)) and not products[0, 0].any()
    assert (products - products.transpose(2, 3)).abs().sum() == 0

    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    features = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    group = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    target = torch.zeros(2, 1, 2, 2)
    logits = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0]).reshape(2, 1, 2, 2)
    out = LieOutput(logits, features, mu, logvar, mu, group)
    # KL per image: 0.5 (1 + 1 - 1 + 2 - 1 - ln 2) and 0.5 (4 + 1 - 1); mean 1.5 - ln 2 / 4.
    kl = 1.5 - math.log(2.0) / 4
    # group reconstruction: sum of squares 1 and 2, mean 1.5; recon: sums 2 and 9, mean 5.5.
    parts = loss(kl_gamma=3.0, group_recon_weight=0.1, hessian_weight=40.0, commutator_weight=2.0).lie(
        out, target, model
    )
    expected = {"recon": 5.5, "kl": kl, "group_recon": 1.5, "hessian": 0.5, "commutator": 1.0}
    assert {k: parts[k].item() for k in expected} == pytest.approx(expected)
    assert parts["loss"].item() == pytest.approx(5.5 + 3 * kl + 0.1 * 1.5 + 40 * 0.5 + 2 * 1.0)
    # |KL - C| with C = 0: the term is kl_gamma KL.
    assert loss(kl_gamma=2.0).penalty(mu, logvar, mu, 0)[0].item() == pytest.approx(2 * kl)


def test_hessian_penalty_penalises_the_mixed_second_derivatives_of_the_group_map():
    """d²G / dz_i dz_j at z = 0 is (A_i A_j + A_j A_i) / 2: the products the penalty drives to zero."""
    bases = torch.randn(2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = 1e-4

    def g(a, b):
        return exp_map(torch.tensor([[a, b]], dtype=torch.float64), bases)[0]

    mixed = (g(h, h) - g(h, -h) - g(-h, h) + g(-h, -h)) / (4 * h * h)
    a, b = bases
    assert torch.allclose(mixed, (a @ b + b @ a) / 2, atol=1e-5)


def test_group_features_are_invertible_orthogonal_for_skew_bases_and_homomorphic_for_commuting_ones():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    w = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    free = torch.randn(3, 4, 4, dtype=torch.float64, generator=gen)
    # Any bases (the original's are unconstrained): det G(z) = exp(sum_k z_k tr A_k) > 0.
    det = torch.linalg.det(exp_map(z, free))
    assert torch.allclose(det, torch.exp(z @ free.diagonal(dim1=1, dim2=2).sum(1)))
    # Skew-symmetric bases: G(z) is orthogonal.
    skew = free - free.transpose(1, 2)
    m = exp_map(z, skew)
    assert torch.allclose(
        m @ m.transpose(1, 2), torch.eye(4, dtype=torch.float64).expand(5, 4, 4), atol=1e-10
    )
    # Commuting bases (polynomials of one matrix): G(z + w) = G(z) G(w), i.e. exp(A + B) = exp(A) exp(B).
    p = free[0] / 2
    commuting = torch.stack([p, p @ p, torch.eye(4, dtype=torch.float64) + p @ p @ p])
    assert torch.allclose(exp_map(z + w, commuting), exp_map(z, commuting) @ exp_map(w, commuting), atol=1e-8)
    # ... which generic bases do not satisfy.
    assert not torch.allclose(exp_map(z + w, free), exp_map(z, free) @ exp_map(w, free), atol=1e-3)


def test_group_features_change_with_z_and_start_near_the_identity():
    torch.manual_seed(0)
    model = LieGroupVAE(nn.Flatten(), 4, nn.Identity(), [9], [3])
    assert 0.0005 < model.bases[0].std().item() < 0.002  # N(0, 0.001²): std 0.001
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    g = model.group_features(z)
    assert torch.equal(g[0], torch.eye(3).flatten())
    assert (g[1] - g[0]).abs().max() > 1e-4 and (g[2] - g[1]).abs().max() > 1e-4
    assert torch.allclose(g[1].reshape(3, 3), torch.linalg.matrix_exp(model.bases[0][0]))


def test_decoder_input_draws_are_seeded_per_step_with_probability_raw_prob():
    draws = [raw_features_drawn(3, step, 0.2) for step in range(4000)]
    assert draws == [raw_features_drawn(3, step, 0.2) for step in range(4000)]
    assert 0.18 < np.mean(draws) < 0.22
    assert draws != [raw_features_drawn(4, step, 0.2) for step in range(4000)]
    assert not any(raw_features_drawn(3, s, 0.0) for s in range(50))
    assert all(raw_features_drawn(3, s, 1.0) for s in range(50))
    # The draw decides for the whole batch: the decoder gets the encoder's features in training only.
    torch.manual_seed(0)
    model = LieGroupVAE(nn.Flatten(), 4, nn.Identity(), [4], [2]).train()
    x = torch.randn(3, 1, 2, 2)
    out = model(x, raw_features=True)
    assert torch.equal(out.logits, out.features) and not torch.equal(out.logits, out.group)
    out = model.eval()(x, raw_features=True)
    assert torch.equal(out.logits, out.group)


def test_projection_is_each_blocks_first_principal_component_fitted_in_slices():
    torch.manual_seed(0)
    model = LieGroupVAE(nn.Flatten(), 4, nn.Identity(), [16], [3])  # 5 blocks of 3 columns, 1 left out
    rows = torch.randn(40, 16) @ torch.randn(16, 16)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.project(rows)
    model.start_projection()
    for part in (rows[:7], rows[7:8], rows[8:]):
        model.add_to_projection(part)
    assert model.projection_rows == 40
    model.finish_projection()
    projected = model.project(rows).double()
    assert projected.shape == (40, 5)
    for b in range(5):
        block = rows[:, 3 * b : 3 * b + 3].double().numpy()
        expected = PCA(n_components=3, svd_solver="full").fit(block).transform(block)[:, 0]
        assert np.allclose(projected[:, b].numpy(), expected, atol=1e-4)


def test_config_defaults_are_the_originals_and_misfits_are_named():
    cfg = complete_model({"task": "lievae"})
    assert {k: cfg[k] for k in LieLoss.hyper} == {
        "kl_gamma": 1.0,
        "group_recon_weight": 0.1,
        "hessian_weight": 40.0,
        "commutator_weight": 0.0,
        "decoder_raw_prob": 0.2,
    }
    assert (cfg["subgroup_size"], cfg["subspace_size"], cfg["latent_size"]) == (100, 10, 10)
    task = TASKS["lievae"]
    assert task.check_model(cfg, None) is None and task.label({**cfg, "recon": "mse_raw"}) == "LieGroupVAE"
    assert task.label(cfg) == "LieGroupVAE (bce)"
    assert task.check_model({**cfg, "subgroup_size": 50}, None)[0] == "subgroup_size"
    assert task.check_model({**cfg, "subspace_size": 4}, None)[0] == "latent_size"
    with pytest.raises(ConfigError, match="hessian_weight"):
        complete_model({"task": "unsupervised", "hessian_weight": 20})


def test_resumed_run_is_bit_identical_with_the_raw_feature_draws(data, tmp_path, monkeypatch):
    run = make_run("lievae", epochs=4, model_keys=SMALL)
    straight, resumed = train_straight_and_resumed(data, run, tmp_path, monkeypatch)
    raw = pd.read_csv(straight / "train_log.csv")["raw_features"]
    assert 0 < raw.mean() < 1  # both decoder inputs were drawn
    assert_same_outputs(straight, resumed)
    saved = torch.load(straight / "model.pt", weights_only=True)["state_dict"]
    assert torch.isfinite(saved["pca_axis_0"]).all()


def test_trains_on_the_toy_grid_and_is_analysed_through_the_projection(data, tmp_path):
    dataset, split = data
    training = setup_run(dataset, split, make_run("lievae", epochs=8, model_keys=SMALL))
    write_outputs(training, tmp_path / "run", fit(training, None))
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    parts = ["recon", "kl", "group_recon", "hessian", "commutator", "loss", "raw_features"]
    assert list(log.columns[1:8]) == parts and np.isfinite(log[parts + ["val_recon"]]).all().all()
    assert (
        log["loss"].iloc[-1] < log["loss"].iloc[0]
        and log["group_recon"].iloc[-1] < log["group_recon"].iloc[0]
    )

    # The saved projection is the PCA of the validation images' group features at z = mu.
    model, data_ = training.model.eval(), training.data
    with torch.no_grad():
        group = model.group_features(model.encode(data_.images(torch.as_tensor(data_.val)))[0])
        saved = model.pca_axis_0.clone()
        model.fit_projection(group)
    assert torch.allclose(model.pca_axis_0, saved, atol=1e-5)

    scores = analyse_toy(dataset, split, tmp_path / "run", tmp_path)
    for key in (
        "recon_train",
        "recon_test",
        "dci_disentanglement",
        "dci_completeness",
        "dci_paper_disentanglement",
    ):
        assert np.isfinite(scores[key]), key
    assert 0 <= scores["dci_disentanglement"] <= 1 and scores["recon_train"] < scores["recon_test"]
    arrays = load_arrays(tmp_path / "arrays.npz")
    assert arrays["latents"].shape[1] == 4  # 16 group features in 4 blocks of 4, one component each
    assert arrays["recon_test_outputs"].shape == (3, 64, 64, 1)
    assert arrays["traversal_images"].shape[:2] == (4, 9)  # the 4 latents z swept
