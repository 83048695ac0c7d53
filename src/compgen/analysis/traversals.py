"""Latent traversals: each latent swept over its range while the others stay at one image's code."""

from __future__ import annotations

import numpy as np
import torch

from compgen.losses import to_pixels

N_STEPS = 9
QUANTILES = (0.02, 0.98)  # the sweep covers the latent's spread over real images, whatever the prior


@torch.no_grad()
def latent_traversals(model, images: torch.Tensor, recon: str, n_steps: int = N_STEPS) -> dict:
    """Decoded sweeps of every latent, ordered by mean KL to the prior (most informative first).

    `images` are float NCHW in [0, 1]; the first one is the reference whose code is held fixed;
    `recon` is the model's reconstruction loss, which says how its outputs become pixels.
    Returns uint8 images (latents x steps x H x W x C), the latent order, its KL and the swept values.
    """
    mu, logvar = model.encode(images)
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0)
    order = torch.argsort(kl, descending=True)
    low, high = torch.quantile(mu, torch.tensor(QUANTILES, dtype=mu.dtype), dim=0)
    steps = torch.linspace(0, 1, n_steps, dtype=mu.dtype)
    sweeps = low[:, None] + (high - low)[:, None] * steps[None, :]  # latents x steps
    rows = []
    for latent in order.tolist():
        codes = mu[:1].repeat(n_steps, 1)
        codes[:, latent] = sweeps[latent]
        decoded = to_pixels(model.decode(codes), recon).permute(0, 2, 3, 1)
        rows.append((decoded.numpy() * 255).round().astype(np.uint8))
    return {
        "traversal_images": np.stack(rows),
        "traversal_latents": order.numpy(),
        "traversal_kl": kl[order].numpy().astype(np.float64),
        "traversal_values": sweeps[order].numpy().astype(np.float64),
    }
