"""The composition task (Montero et al. 2022): render a reference with factor d taken from a command."""

from __future__ import annotations

import torch
from torch import nn

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
    """`linear`: the sum of two affine maps, one of the reference's latent and the action, one of the
    command's latent and the action, as the original's (`LinearComp`, mmrl/lost-in-latent-space
    `src/models/compnet.py` lines 24-38; the ICLR code's `LinearMixer`, mmrl/disent-and-gen
    `scripts/ingredients/composers.py` lines 48-62). One map of both latents computes the same
    functions, but the action weights and biases would be one parameter each instead of a sum of
    two, with another initial scale (fan-in 2L + F, not L + F) and another Adam step size."""

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        self.ref_map = nn.Linear(latent_size + n_factors, latent_size)
        self.cmd_map = nn.Linear(latent_size + n_factors, latent_size)

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        action = action.to(z_ref.dtype)
        return self.ref_map(torch.cat([z_ref, action], dim=1)) + self.cmd_map(
            torch.cat([z_cmd, action], dim=1)
        )


class MLPComposition(nn.Module):
    """`mlp`: one hidden layer of 128 ReLU units on both latents and the action, torch's default
    initialisation, as the original's `MLPComp` (`src/models/compnet.py` lines 56-69). As stored,
    its forward pass concatenates the (2 x batch, latent) codes with the (batch, factors) actions
    and fails; the layer sizes (2 x latent + factors inputs) say each row was meant to hold a
    triplet's reference and command latents, which is what this op is fed."""

    HIDDEN = 128

    def __init__(self, n_factors: int, latent_size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * latent_size + n_factors, self.HIDDEN),
            nn.ReLU(),
            nn.Linear(self.HIDDEN, latent_size),
        )

    def forward(self, z_ref: torch.Tensor, z_cmd: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z_ref, z_cmd, action.to(z_ref.dtype)], dim=1))


class CompositionModel(nn.Module):
    """A backbone VAE plus a latent composition op; `encode`/`decode` are the backbone's."""

    def __init__(self, vae: VAE, op: str, n_factors: int, latent_size: int):
        super().__init__()
        from compgen.models import COMPOSITION_OPS

        op_class = COMPOSITION_OPS.get_or_error(op)
        self.vae = vae
        self.n_factors = n_factors
        self.op = op_class(n_factors, latent_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z)

    def compose(
        self, ref: torch.Tensor, cmd: torch.Tensor, action: torch.Tensor, decode_inputs: bool = True
    ) -> dict[str, torch.Tensor]:
        """Encode both inputs once (one batch), mix their latents, decode reference, command and
        target in one batch; without `decode_inputs` the target alone, as the ICLR code's `Composer`
        (mmrl/disent-and-gen `scripts/ingredients/composers.py` lines 120-123): a batch-norm decoder
        then normalises over the targets only."""
        n = ref.shape[0]
        mu, logvar = self.vae.encode(torch.cat([ref, cmd]))
        z = self.vae.sample(mu, logvar)
        z_ref, z_cmd = z[:n], z[n:]
        z_target = self.op(z_ref, z_cmd, action)
        out = {"mu_ref": mu[:n], "logvar_ref": logvar[:n], "mu_cmd": mu[n:], "logvar_cmd": logvar[n:]}
        out.update(z_ref=z_ref, z_cmd=z_cmd, z_target=z_target)
        if not decode_inputs:
            return {"recon_target": self.vae.decode(z_target), **out}
        logits = self.vae.decode(torch.cat([z, z_target]))
        return {
            "recon_ref": logits[:n],
            "recon_cmd": logits[n : 2 * n],
            "recon_target": logits[2 * n :],
            **out,
        }

    def forward(self, ref: torch.Tensor, cmd: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.compose(ref, cmd, action)
