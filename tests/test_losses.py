import math

import pytest
import torch

from compgen.config import ConfigError, complete_model, load_schema
from compgen.losses import (
    LOSSES,
    FactorVAELoss,
    VAELoss,
    build_objective,
    imq_mmd,
    kl_divergence_per_image,
    permute_dims,
    reconstruction_per_image,
)


def make(loss: str, n_train: int = 0, **keys):
    """The objective a study builds for a model with this loss and these keys (schema defaults)."""
    return build_objective(complete_model({"task": "unsupervised", "loss": loss, **keys}), n_train=n_train)


def test_bce_of_zero_logits_is_log2_per_pixel():
    logits, target = torch.zeros(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert torch.allclose(reconstruction_per_image(logits, target, "bce"), torch.full((3,), 16 * math.log(2)))


def test_mse_compares_sigmoid_of_logits():
    logits, target = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    assert torch.allclose(reconstruction_per_image(logits, target, "mse"), torch.full((2,), 12 * 0.25))


def test_unknown_reconstruction_is_refused():
    with pytest.raises(ValueError, match="bce"):
        reconstruction_per_image(torch.zeros(1, 1), torch.zeros(1, 1), "l1")
    with pytest.raises(ValueError, match="bce"):
        VAELoss(recon="l1")


def test_kl_known_values():
    assert torch.equal(kl_divergence_per_image(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))
    # KL(N(1, 1) || N(0, 1)) = 1/2 per unit
    assert torch.allclose(kl_divergence_per_image(torch.ones(1, 4), torch.zeros(1, 4)), torch.tensor([2.0]))
    # KL(N(0, e) || N(0, 1)) = (e - 1 - 1) / 2
    assert torch.allclose(
        kl_divergence_per_image(torch.zeros(1, 1), torch.ones(1, 1)), torch.tensor([(math.e - 2) / 2])
    )


def test_vae_and_beta_vae_parts():
    logits, target = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    parts = make("vae").single(logits, target, mu, logvar, mu, step=0)
    assert torch.allclose(parts["recon"], torch.tensor(4 * math.log(2)))
    assert torch.allclose(parts["kl"], torch.tensor(1.5))
    assert torch.allclose(parts["loss"], parts["recon"] + parts["kl"])
    beta = make("betavae", beta=4.0).single(logits, target, mu, logvar, mu, step=0)
    assert list(beta) == ["recon", "kl", "loss"]
    assert torch.allclose(beta["loss"], beta["recon"] + 4 * beta["kl"])


def composition_outputs(mu_ref):
    z = torch.zeros(2, 1, 2, 2)
    out = {
        "recon_ref": z,
        "recon_cmd": z,
        "recon_target": z,
        "mu_ref": mu_ref,
        "logvar_ref": torch.zeros(2, 2),
        "z_ref": mu_ref,
        "mu_cmd": torch.zeros(2, 2),
        "logvar_cmd": torch.zeros(2, 2),
        "z_cmd": torch.zeros(2, 2),
    }
    return out, z


def test_composition_sums_penalties_of_both_inputs():
    out, z = composition_outputs(torch.ones(2, 2))
    parts = make("betavae", beta=2.0).composition(out, z, z, z, step=0)
    assert torch.allclose(parts["recon_target"], torch.tensor(4 * math.log(2)))
    assert torch.allclose(parts["recon_inputs"], torch.tensor(8 * math.log(2)))
    assert torch.allclose(parts["kl"], torch.tensor(1.0))  # 1.0 from the reference, 0 from the command
    assert torch.allclose(parts["loss"], parts["recon_target"] + parts["recon_inputs"] + 2 * parts["kl"])


def test_cci_capacity_rises_linearly_then_holds():
    loss = make("ccivae", gamma=10.0, capacity_max=20.0, capacity_steps=100)
    assert [loss.capacity(s) for s in (0, 25, 100, 1000)] == [0.0, 5.0, 20.0, 20.0]
    mu, logvar = torch.ones(4, 6), torch.zeros(4, 6)  # KL = 3 per image
    penalty, parts = loss.penalty(mu, logvar, mu, step=50)  # C = 10
    assert torch.allclose(penalty, torch.tensor(10.0 * abs(3.0 - 10.0)))
    assert float(parts["capacity"]) == 10.0 and torch.allclose(parts["kl"], torch.tensor(3.0))
    # The capacity is a setting: a triplet's two inputs do not double it.
    out, z = composition_outputs(torch.ones(2, 2))
    assert float(loss.composition(out, z, z, z, step=50)["capacity"]) == 10.0


def test_mmd_hand_computed_value():
    # d = 1, prior_var = 0.5, one scale: C = 1 and k(a, b) = 1 / (1 + (a - b)²)
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [2.0]])
    # within x: k(0, 1) = 0.5; within y: k(0, 2) = 0.2; across: (1 + 0.2 + 0.5 + 0.5) / 4 = 0.55
    assert torch.allclose(imq_mmd(x, y, 0.5, scales=(1.0,)), torch.tensor(0.5 + 0.2 - 2 * 0.55))


def test_mmd_near_zero_for_one_distribution_and_positive_for_shifted():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g)
    same, shifted = imq_mmd(a, b, 1.0), imq_mmd(a, b + 1.5, 1.0)
    assert abs(float(same)) < 0.02 and float(shifted) > 0.5
    assert float(imq_mmd(a[:1], b[:1], 1.0)) == 0.0  # a single sample has no pair to compare


def test_wae_penalty_parts():
    torch.manual_seed(0)
    loss = make("wae", mmd_weight=10.0, prior_var=2.0, logvar_penalty=0.5)
    assert loss.recon == "mse"  # WAE-MMD's default reconstruction
    mu, logvar = torch.zeros(8, 3), torch.full((8, 3), -2.0)
    z = torch.randn(8, 3) * math.sqrt(2.0)
    penalty, parts = loss.penalty(mu, logvar, z, step=0)
    assert torch.allclose(parts["logvar_l1"], torch.tensor(6.0))
    assert torch.allclose(penalty, 10 * parts["mmd"] + 0.5 * 6.0)


def test_permute_dims_shuffles_each_unit_separately():
    torch.manual_seed(0)
    z = torch.arange(200.0).reshape(100, 2)
    p = permute_dims(z)
    assert torch.equal(p.sort(0).values, z)  # same values per unit
    assert not torch.equal(p[:, 0] + 100, p[:, 1])  # units no longer paired


def test_factorvae_discriminator_step_changes_only_the_discriminator():
    torch.manual_seed(0)
    loss = make("factorvae", latent_size=3, gamma=5.0)
    encoder = torch.nn.Linear(4, 3)
    z = encoder(torch.randn(16, 4))
    penalty, parts = loss.penalty(z, torch.zeros_like(z), z, step=0)
    penalty.backward()
    assert encoder.weight.grad is not None
    assert all(p.grad is None for p in loss.discriminator.parameters())  # the model's loss never trains D
    before_d = [p.detach().clone() for p in loss.discriminator.parameters()]
    before_e = [p.detach().clone() for p in encoder.parameters()]
    assert set(loss.update(z)) == {"disc"}
    assert all(not torch.equal(a, b) for a, b in zip(before_d, loss.discriminator.parameters(), strict=False))
    assert all(torch.equal(a, b) for a, b in zip(before_e, encoder.parameters(), strict=False))
    assert set(loss.checkpoint_state()) == {"discriminator", "disc_optimizer"}
    assert loss.disc_optimizer.defaults["betas"] == (0.5, 0.9)
    widths = [m.out_features for m in loss.discriminator if isinstance(m, torch.nn.Linear)]
    assert widths == [1000] * 5 + [2]


def test_factorvae_discriminator_learns_dependent_latents():
    torch.manual_seed(0)
    loss = make("factorvae", latent_size=2)
    losses = []
    for _ in range(30):
        u = torch.randn(64, 1)
        z = torch.cat([u, u + 0.05 * torch.randn(64, 1)], dim=1)  # strongly dependent units
        losses.append(float(loss.update(z)["disc"]))
    assert losses[0] > 0.6 and sum(losses[-5:]) / 5 < 0.4
    assert float(loss.total_correlation(z)) > 0.5  # D now sees the dependence as total correlation


def test_btcvae_decomposition():
    torch.manual_seed(0)
    loss = make("btcvae", n_train=1000, beta=6.0)
    mu, logvar = torch.randn(512, 3) * 0.5, torch.full((512, 3), -1.0)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    parts = loss.decomposition(mu, logvar, z)
    # mi + tc + dwkl is a one-sample estimate of KL(q(z|x) || p(z)); over 512 images it is close to the exact KL
    exact = kl_divergence_per_image(mu, logvar).mean()
    assert abs(float(parts["mi"] + parts["tc"] + parts["dwkl"] - exact)) < 0.15
    penalty, reported = loss.penalty(mu, logvar, z, step=0)
    assert torch.allclose(penalty, parts["mi"] + 6.0 * parts["tc"] + parts["dwkl"])
    assert set(reported) == {"kl", "mi", "tc", "dwkl"}
    # Copies of one unit have far more total correlation than independent units.
    tied_mu = mu[:, :1].repeat(1, 3)
    tied_z = tied_mu + 0.01 * torch.randn_like(tied_mu)
    tied = loss.decomposition(tied_mu, torch.full_like(tied_mu, -9.0), tied_z)
    assert float(tied["tc"]) > float(parts["tc"]) + 2.0


def test_schema_defaults_reach_the_objective_and_foreign_keys_are_refused():
    cfg = complete_model({"task": "unsupervised", "loss": "ccivae", "gamma": 500})
    assert cfg["gamma"] == 500 and cfg["capacity_max"] == 25.0 and cfg["recon"] == "bce"
    assert complete_model({"task": "unsupervised", "loss": "wae"})["recon"] == "mse"
    with pytest.raises(ConfigError, match="beta"):
        complete_model({"task": "unsupervised", "loss": "vae", "beta": 4.0})
    with pytest.raises(ConfigError, match="allowed"):
        complete_model({"task": "unsupervised", "loss": "nope"})
    objective = make("factorvae", latent_size=4, n_train=10)
    assert isinstance(objective, FactorVAELoss) and objective.discriminator[0].in_features == 4
    assert objective.gamma == 40.0  # the schema's default, the only place it is written


def schema_hyper_parameters() -> dict[str, set[str]]:
    """Per loss, the keys the schema accepts only with that loss."""
    model = load_schema()["properties"]["models"]["additionalProperties"]
    found = {}
    for entry in model["allOf"]:
        loss = entry.get("if", {}).get("properties", {}).get("loss", {}).get("const")
        keys = set(entry.get("then", {}).get("properties", {})) - {"recon"}
        if loss is not None and keys:
            found[loss] = found.get(loss, set()) | keys
    return found


def test_schema_names_exactly_each_losss_hyper_parameters():
    declared = schema_hyper_parameters()
    assert {name: set(cls.hyper) for name, cls in LOSSES.items() if cls.hyper} == declared
