import math

import pytest
import torch

from compgen.losses import (
    composition_loss,
    kl_divergence_per_image,
    kl_weight,
    reconstruction_per_image,
    vae_loss,
)


def test_bce_of_zero_logits_is_log2_per_pixel():
    logits, target = torch.zeros(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert torch.allclose(reconstruction_per_image(logits, target, "bce"), torch.full((3,), 16 * math.log(2)))


def test_mse_compares_sigmoid_of_logits():
    logits, target = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    assert torch.allclose(reconstruction_per_image(logits, target, "mse"), torch.full((2,), 12 * 0.25))


def test_unknown_reconstruction_is_refused():
    with pytest.raises(ValueError, match="bce"):
        reconstruction_per_image(torch.zeros(1, 1), torch.zeros(1, 1), "l1")


def test_kl_known_values():
    assert torch.equal(kl_divergence_per_image(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))
    # KL(N(1, 1) || N(0, 1)) = 1/2 per unit
    assert torch.allclose(kl_divergence_per_image(torch.ones(1, 4), torch.zeros(1, 4)), torch.tensor([2.0]))
    # KL(N(0, e) || N(0, 1)) = (e - 1 - 1) / 2
    assert torch.allclose(kl_divergence_per_image(torch.zeros(1, 1), torch.ones(1, 1)), torch.tensor([(math.e - 2) / 2]))


def test_vae_loss_parts_and_beta():
    logits, target = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    parts = vae_loss(logits, target, mu, logvar, "bce", beta=4.0)
    assert torch.allclose(parts["recon"], torch.tensor(4 * math.log(2)))
    assert torch.allclose(parts["kl"], torch.tensor(1.5))
    assert torch.allclose(parts["loss"], parts["recon"] + 4 * parts["kl"])


def test_kl_weight_from_config():
    assert kl_weight({"loss": "vae", "beta": 8}) == 1.0
    assert kl_weight({"loss": "betavae", "beta": 8}) == 8.0
    with pytest.raises(ValueError, match="allowed"):
        kl_weight({"loss": "factorvae"})


def test_composition_loss_parts():
    z = torch.zeros(2, 1, 2, 2)
    out = {"recon_ref": z, "recon_cmd": z, "recon_target": z,
           "mu_ref": torch.ones(2, 2), "logvar_ref": torch.zeros(2, 2),
           "mu_cmd": torch.zeros(2, 2), "logvar_cmd": torch.zeros(2, 2)}
    parts = composition_loss(out, z, z, z, "bce", beta=2.0)
    assert torch.allclose(parts["recon_target"], torch.tensor(4 * math.log(2)))
    assert torch.allclose(parts["recon_inputs"], torch.tensor(8 * math.log(2)))
    assert torch.allclose(parts["kl"], torch.tensor(1.0))
    assert torch.allclose(parts["loss"], parts["recon_target"] + parts["recon_inputs"] + 2 * parts["kl"])
