import math
from itertools import combinations, product

import numpy as np
import pytest
import torch

from compgen.config import ConfigError, complete_model, load_schema
from compgen.losses import (
    LOSSES,
    FactorVAELoss,
    VAELoss,
    build_objective,
    imq_mmd,
    imq_mmd_original,
    kl_divergence_per_image,
    loss_class,
    loss_label,
    permute_dims,
    reconstruction_per_image,
    to_pixels,
)

# The original code: github.com/mmrl/lost-in-latent-space at commit 1dbaf35 (January 2023).


def make(loss: str, n_train: int = 0, **keys):
    """The objective a study builds for a model with this loss and these keys (schema defaults)."""
    return build_objective(complete_model({"task": "unsupervised", "loss": loss, **keys}), n_train=n_train)


def test_bce_of_zero_logits_is_log2_per_pixel():
    logits, target = torch.zeros(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert torch.allclose(reconstruction_per_image(logits, target, "bce"), torch.full((3,), 16 * math.log(2)))


def test_mse_compares_sigmoid_of_logits():
    logits, target = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    assert torch.allclose(reconstruction_per_image(logits, target, "mse"), torch.full((2,), 12 * 0.25))


def test_mse_raw_compares_the_raw_output():
    """The original's AELoss (src/training/loss.py:46-55) takes mse_loss(reconstruction, target,
    reduction='sum') / batch on the decoder's output, which has no output non-linearity."""
    output, target = torch.full((2, 3, 2, 2), 0.25), torch.ones(2, 3, 2, 2)
    assert torch.allclose(reconstruction_per_image(output, target, "mse_raw"), torch.full((2,), 12 * 0.75**2))
    assert torch.equal(to_pixels(torch.tensor([-1.0, 0.25, 2.0]), "mse_raw"), torch.tensor([0.0, 0.25, 1.0]))
    assert torch.equal(to_pixels(torch.zeros(2), "bce"), torch.full((2,), 0.5))


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
    loss = make("wae", mmd_weight=10.0, prior_var=2.0, logvar_penalty=0.5, mmd="unbiased")
    assert loss.recon == "mse_raw"  # WAE-MMD's default reconstruction, the original's
    mu, logvar = torch.zeros(8, 3), torch.full((8, 3), -2.0)
    z = torch.randn(8, 3) * math.sqrt(2.0)
    penalty, parts = loss.penalty(mu, logvar, z, step=0)
    assert torch.allclose(parts["logvar_l1"], torch.tensor(6.0))
    assert torch.allclose(penalty, 10 * parts["mmd"] + 0.5 * 6.0)


SCALES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


def original_mmd_by_hand(z: np.ndarray, prior: np.ndarray) -> float:
    """The original's MMD, step by step as its code does it (src/training/math.py):
    mmd_idxs (lines 49-56) lists the pairs i < j and all (i, j), each as a tuple of two index lists;
    inv_multiquad_sum (lines 15-21) sums (x - y)² over every listed pair and every axis into one
    scalar Q and returns the vector (10 s) / (10 s + Q) over the scales s of loss.py:400-404;
    min_mean_discrepancy (lines 30-46) sums that vector, divides by len(index tuple) = 2, and returns
    intra - 2 cross. `min_mean_discrepancy(z, z_prior, ...)` is called at loss.py:427."""
    n = z.shape[0]
    intra = tuple(map(list, zip(*combinations(range(n), r=2), strict=True)))
    cross = tuple(map(list, zip(*product(range(n), repeat=2), strict=True)))
    assert len(intra) == len(cross) == 2  # the divisor the original uses

    def kernel(x, y):
        quadratic = np.sum((x - y) ** 2)
        scale = np.array(SCALES) * 10.0
        return scale / (scale + quadratic)

    i, j = cross
    cross_score = kernel(z[i], prior[j]).sum() / len(cross)
    i, j = intra
    intra_score = (kernel(prior[i], prior[j]) + kernel(z[i], z[j])).sum() / len(intra)
    return float(intra_score - 2 * cross_score)


def test_original_mmd_matches_the_original_formula_by_hand():
    """3 latents of dimension 2 against a fixed prior sample; formula of src/training/math.py:15-56."""
    z = np.array([[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0]])
    prior = np.array([[1.0, 1.0], [-2.0, 0.5], [0.0, -3.0]])
    expected = original_mmd_by_hand(z, prior)
    got = imq_mmd_original(torch.tensor(z, dtype=torch.float32), torch.tensor(prior, dtype=torch.float32))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # The same by the closed form: Q_zz = 1+1 + 1+9 + 4+4 = 20 over i < j; K(Q) = sum_s 10s / (10s + Q).
    q_zz, q_pp = 20.0, sum(((prior[a] - prior[b]) ** 2).sum() for a, b in combinations(range(3), 2))
    q_zp = sum(((z[a] - prior[b]) ** 2).sum() for a, b in product(range(3), repeat=2))

    def k(q):
        return sum(10 * s / (10 * s + q) for s in SCALES)

    assert expected == pytest.approx((k(q_zz) + k(q_pp)) / 2 - k(q_zp))
    assert float(imq_mmd_original(torch.zeros(1, 2), torch.ones(1, 2))) == 0.0  # no pair: nothing


def test_original_mmd_misses_shift_and_spread_and_only_opposes_collapse():
    """With all pairs summed before the kernel, Q is in the thousands at batch 64 unless the codes
    collapse: the term and its gradient nearly vanish for codes shifted or spread far from the prior
    (which the unbiased MMD sees), and only a code squeezed to a point (Q_zz -> 0) is penalised."""
    torch.manual_seed(0)
    prior = 2.0 * torch.randn(64, 10)
    for z in (torch.randn(64, 10) + 5.0, 10.0 * torch.randn(64, 10)):
        z.requires_grad_()
        mmd = imq_mmd_original(z, prior)
        (grad,) = torch.autograd.grad(mmd, z)
        assert abs(float(mmd.detach())) < 0.01 and float(grad.norm()) < 1e-3
        assert float(imq_mmd(z.detach(), math.sqrt(2.0) * torch.randn(64, 10), 2.0)) > 1.0
    collapsed = 0.01 * torch.randn(64, 10)
    assert float(imq_mmd_original(collapsed, prior)) > 1.0  # K(Q_zz) / 2 -> 3.5 as Q_zz -> 0


def test_wae_original_penalty_as_the_original_computes_it():
    """src/training/loss.py:416-435 (WAEMMD.latent_term) with the study's parameters of
    scripts/configs/training.py:91-97 (lambda1 10, lambda2 0.001, prior_var 2.0):
    z_prior = prior_var * randn_like(z) (standard deviation 2), lambda1 MMD + lambda2 |logvar|.sum() / n."""
    loss = make("wae")
    assert (loss.mmd, loss.recon, loss.prior_var, loss.mmd_weight, loss.logvar_penalty) == (
        "original",
        "mse_raw",
        2.0,
        10.0,
        1e-3,
    )
    z = torch.tensor([[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0]])
    logvar = torch.tensor([[-1.0, 0.5], [-2.0, 0.0], [0.25, -0.25]])
    torch.manual_seed(3)
    prior = 2.0 * torch.randn_like(z)  # the draw the objective will make after the same seed
    torch.manual_seed(3)
    penalty, parts = loss.penalty(z, logvar, z, step=0)
    mmd = original_mmd_by_hand(z.numpy(), prior.numpy())
    l1 = 0.001 * float(logvar.abs().sum()) / 3
    assert float(parts["mmd"]) == pytest.approx(mmd, rel=1e-5)
    assert float(penalty) == pytest.approx(10 * mmd + l1, rel=1e-5)


def test_wae_original_composition_includes_the_composed_latent():
    """The original's CompositionNet (src/models/compnet.py:96-115) returns z of shape
    (batch, 3, latent), reference, command and composed latent, and the WAE loss
    (src/training/loss.py:416-435) takes one MMD of it against prior_var * randn_like(z): each
    triplet is one sample, its three latents summed in its squared distances. Its z_params are those
    of the 2 batch encoded images, and |logvar|.sum() is divided by z.size(0), the triplets. The
    reconstruction (loss.py:46-55) is the summed MSE of the raw outputs of reference, command and
    target (the dataset's target stacks the three, src/dataset/tuples.py:199-205) over the triplets."""
    loss = make("wae")
    z_ref = torch.tensor([[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0]])
    z_cmd = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    z_target = torch.tensor([[1.0, -1.0], [0.0, 0.0], [2.0, 2.0]])
    logvar_ref, logvar_cmd = torch.full((3, 2), -1.0), torch.full((3, 2), 0.5)
    images = torch.zeros(3, 1, 2, 2)
    out = {
        "recon_ref": torch.full((3, 1, 2, 2), 0.5),
        "recon_cmd": torch.full((3, 1, 2, 2), -1.0),
        "recon_target": torch.full((3, 1, 2, 2), 2.0),
        "mu_ref": z_ref,
        "logvar_ref": logvar_ref,
        "mu_cmd": z_cmd,
        "logvar_cmd": logvar_cmd,
        "z_ref": z_ref,
        "z_cmd": z_cmd,
        "z_target": z_target,
    }
    triplet_z = torch.stack([z_ref, z_cmd, z_target], dim=1)  # (3, 3, 2) as the original's z
    torch.manual_seed(5)
    prior = 2.0 * torch.randn_like(triplet_z)
    torch.manual_seed(5)
    parts = loss.composition(out, images, images, images, step=0)
    mmd = original_mmd_by_hand(triplet_z.numpy(), prior.numpy())
    l1 = 0.001 * float(torch.cat([logvar_ref, logvar_cmd]).abs().sum()) / 3
    recon_inputs, recon_target = 4 * 0.25 + 4 * 1.0, 4 * 4.0
    assert float(parts["mmd"]) == pytest.approx(mmd, rel=1e-5)
    assert float(parts["recon_inputs"]) == pytest.approx(recon_inputs)
    assert float(parts["recon_target"]) == pytest.approx(recon_target)
    assert float(parts["loss"]) == pytest.approx(recon_target + recon_inputs + 10 * mmd + l1, rel=1e-5)
    # The composed latent counts: another z_target, another MMD.
    torch.manual_seed(5)
    moved = loss.composition({**out, "z_target": z_target + 3.0}, images, images, images, step=0)
    assert float(moved["mmd"]) != pytest.approx(mmd, rel=1e-3)
    # The unbiased form penalises each input on its own and ignores the composed latent.
    unbiased = make("wae", mmd="unbiased")
    torch.manual_seed(5)
    a = unbiased.composition(out, images, images, images, step=0)
    torch.manual_seed(5)
    b = unbiased.composition({**out, "z_target": z_target + 3.0}, images, images, images, step=0)
    assert torch.equal(a["mmd"], b["mmd"]) and set(a) == set(parts)


def test_wae_variants_in_config_and_labels():
    assert complete_model({"task": "unsupervised", "loss": "wae"})["mmd"] == "original"
    with pytest.raises(ConfigError, match="unbiased"):
        complete_model({"task": "unsupervised", "loss": "wae", "mmd": "biased"})
    with pytest.raises(ValueError, match="original"):
        loss_class("wae")("mse", mmd_weight=1.0, prior_var=1.0, logvar_penalty=0.0, mmd="biased")
    cfg = {"task": "composition", "op": "interp", "loss": "wae"}
    assert loss_label(complete_model(cfg)) == "WAE-MMD"
    assert loss_label(complete_model({**cfg, "mmd": "unbiased"})) == "WAE-MMD (unbiased MMD)"


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


def test_factorvae_discriminator_has_six_hidden_layers_of_1000():
    """The original's FactorLoss (src/training/loss.py:174-205): Linear(latent, 1000) prepended at
    first use (lines 199-204) to five Linear(1000, 1000), each followed by LeakyReLU(0.2), then
    Linear(1000, 2): six hidden layers, as Kim & Mnih (2018) and disentanglement_lib."""
    loss = make("factorvae", latent_size=7)
    linear = [m for m in loss.discriminator if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(7, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    activations = [m for m in loss.discriminator if isinstance(m, torch.nn.LeakyReLU)]
    assert len(activations) == 6 and all(m.negative_slope == 0.2 for m in activations)
    kinds = [type(m).__name__ for m in loss.discriminator]
    assert kinds == ["Linear", "LeakyReLU"] * 6 + ["Linear"]


def test_factorvae_discriminator_slope_is_a_key():
    """`disc_slope` reproduces the ICLR 2021 code's discriminator (disent-and-gen
    src/training/loss.py:150-164, `nn.LeakyReLU()`: torch's default slope 0.01); the layers are
    those of the default, and the slope changes the discriminator's output."""
    torch.manual_seed(0)
    neurips = make("factorvae", latent_size=3)
    torch.manual_seed(0)
    iclr = make("factorvae", latent_size=3, disc_slope=0.01)
    slopes = {m.negative_slope for m in iclr.discriminator if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.01} and len(iclr.discriminator) == len(neurips.discriminator) == 13
    for a, b in zip(neurips.discriminator.parameters(), iclr.discriminator.parameters(), strict=True):
        assert torch.equal(a, b)  # same seed, same weights: only the activation differs
    z = torch.randn(32, 3)
    assert not torch.allclose(neurips.discriminator(z), iclr.discriminator(z))


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
    assert complete_model({"task": "unsupervised", "loss": "wae"})["recon"] == "mse_raw"
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
    assert {name: set(loss.hyper) for name, loss in LOSSES.items() if loss.hyper} == declared
