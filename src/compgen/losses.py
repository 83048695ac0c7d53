"""Reconstruction and KL terms (per image), and the VAE / composition objectives (batch means)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RECON_KINDS = ("bce", "mse")
LOSSES = ("vae", "betavae")


def reconstruction_per_image(logits: torch.Tensor, target: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Summed over pixels and channels: shape (N,). Computed in float32 even under autocast."""
    logits, target = logits.float(), target.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "mse":
        per_pixel = (torch.sigmoid(logits) - target) ** 2
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}; allowed: {', '.join(RECON_KINDS)}")
    return per_pixel.flatten(1).sum(1)


def kl_divergence_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent units: shape (N,)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def kl_weight(model_cfg: dict) -> float:
    """beta: 1 for the plain VAE, the configured value for beta-VAE."""
    kind = model_cfg.get("loss", "vae")
    if kind == "vae":
        return 1.0
    if kind == "betavae":
        return float(model_cfg["beta"])
    raise ValueError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")


def vae_loss(logits, target, mu, logvar, recon: str = "bce", beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Batch means of the reconstruction and KL terms, and loss = recon + beta * kl."""
    rec = reconstruction_per_image(logits, target, recon).mean()
    kl = kl_divergence_per_image(mu, logvar).mean()
    return {"recon": rec, "kl": kl, "loss": rec + beta * kl}


def composition_loss(out: dict, ref, cmd, target, recon: str = "bce", beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Target reconstruction plus, as in the original, reconstruction and KL of both encoded inputs."""
    rec_target = reconstruction_per_image(out["recon_target"], target, recon).mean()
    rec_inputs = (
        reconstruction_per_image(out["recon_ref"], ref, recon) + reconstruction_per_image(out["recon_cmd"], cmd, recon)
    ).mean()
    kl = (
        kl_divergence_per_image(out["mu_ref"], out["logvar_ref"])
        + kl_divergence_per_image(out["mu_cmd"], out["logvar_cmd"])
    ).mean()
    return {
        "recon_target": rec_target,
        "recon_inputs": rec_inputs,
        "kl": kl,
        "loss": rec_target + rec_inputs + beta * kl,
    }
