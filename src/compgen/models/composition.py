"""The composition task (Montero et al. 2022): render a reference with factor d taken from a command."""

from __future__ import annotations

import torch
from torch import nn

from compgen.models.blocks import kaiming_init
from compgen.models.vae import VAE


class FixedInterpolation(nn.Module):
    """`fixint`: latent unit d of the result comes from the command, every other unit from the reference."""

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        if n_factors > latent_size:
            raise ValueError(
                f"op 'fixint' maps factor d to latent unit d, so it needs n_factors ({n_factors}) "
                f"<= latent_size ({latent_size})"
            )
        self.pad = latent_size - n_factors

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        take_cmd = nn.functional.pad(action.to(z_ref.dtype), (0, self.pad))
        return take_cmd * z_cmd + (1 - take_cmd) * z_ref


class LearnedInterpolation(nn.Module):
    """`interp`: a per-unit sigmoid gate computed from both latents and the action."""

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        self.gate = nn.Linear(2 * latent_size + n_factors, latent_size)

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(torch.cat([z_ref, z_cmd, action.to(z_ref.dtype)], dim=1)))
        return g * z_cmd + (1 - g) * z_ref


class LinearComposition(nn.Module):
    """`linear`: the result is an affine map of both latents and the action."""

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        self.map = nn.Linear(2 * latent_size + n_factors, latent_size)

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.map(torch.cat([z_ref, z_cmd, action.to(z_ref.dtype)], dim=1))


class MLPComposition(nn.Module):
    """`mlp`: the result is a two-hidden-layer ReLU network of both latents and the action."""

    HIDDEN = 256

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * latent_size + n_factors, self.HIDDEN),
            nn.ReLU(),
            nn.Linear(self.HIDDEN, self.HIDDEN),
            nn.ReLU(),
            nn.Linear(self.HIDDEN, latent_size),
        )
        kaiming_init(self)

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z_ref, z_cmd, action.to(z_ref.dtype)], dim=1))


COMPOSITION_OPS = {
    "fixint": FixedInterpolation,
    "interp": LearnedInterpolation,
    "linear": LinearComposition,
    "mlp": MLPComposition,
}


class CompositionModel(nn.Module):
    """A backbone VAE plus a latent composition op; `encode`/`decode` are the backbone's."""

    def __init__(self, vae: VAE, op: str, n_factors: int, latent_size: int):
        super().__init__()
        if op not in COMPOSITION_OPS:
            raise ValueError(f"unknown composition op {op!r}; allowed: {', '.join(sorted(COMPOSITION_OPS))}")
        self.vae = vae
        self.n_factors = n_factors
        self.op = COMPOSITION_OPS[op](n_factors, latent_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)

    def compose(self, ref: torch.Tensor, cmd: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode both inputs once (one batch), mix their latents, decode reference, command and target."""
        n = ref.shape[0]
        mu, logvar = self.vae.encode(torch.cat([ref, cmd]))
        z = self.vae.sample(mu, logvar)
        z_ref, z_cmd = z[:n], z[n:]
        z_target = self.op(z_ref, z_cmd, action)
        logits = self.vae.decode(torch.cat([z, z_target]))
        return {
            "recon_ref": logits[:n],
            "recon_cmd": logits[n : 2 * n],
            "recon_target": logits[2 * n :],
            "mu_ref": mu[:n],
            "logvar_ref": logvar[:n],
            "mu_cmd": mu[n:],
            "logvar_cmd": logvar[n:],
            "z_ref": z_ref,
            "z_cmd": z_cmd,
            "z_target": z_target,
        }

    def forward(self, ref: torch.Tensor, cmd: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.compose(ref, cmd, action)
