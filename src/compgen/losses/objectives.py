"""Reconstruction terms and the VAE-family objectives (torch): the classes that the loss registry
(`compgen.losses.LOSSES`) names, with their titles, hyper-parameters and defaults.

An objective adds a penalty on the encoder's posterior to the reconstruction; `penalty` returns
that weighted term and the parts to log. Objectives with state of their own (FactorVAE's
discriminator and its optimiser) expose it through `checkpoint_state` and train it in `update`.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from compgen.losses import COMPOSITION_OBJECTIVES, MMD_KINDS, RECON_KINDS


def reconstruction_per_image(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Summed over pixels and channels: shape (N,). Computed in float32 even under autocast."""
    logits, target = logits.float(), target.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "mse":
        per_pixel = (torch.sigmoid(logits) - target) ** 2
    elif kind == "mse_raw":
        per_pixel = (logits - target) ** 2
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}; allowed: {', '.join(RECON_KINDS)}")
    return per_pixel.flatten(1).sum(1)


def to_pixels(output: torch.Tensor, kind: str) -> torch.Tensor:
    """The image a decoder trained with reconstruction `kind` draws: sigmoid of its logits, or for
    `mse_raw` its raw output clipped to [0, 1]."""
    if kind not in RECON_KINDS:
        raise ValueError(f"unknown reconstruction loss {kind!r}; allowed: {', '.join(RECON_KINDS)}")
    return output.clamp(0, 1) if kind == "mse_raw" else torch.sigmoid(output)


def kl_divergence_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent units: shape (N,)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def check_objective(objective: str) -> str:
    if objective not in COMPOSITION_OBJECTIVES:
        raise ValueError(
            f"unknown models.<model>.objective {objective!r}; allowed: {', '.join(COMPOSITION_OBJECTIVES)}"
        )
    return objective


def imq_mmd(x: torch.Tensor, y: torch.Tensor, prior_var: float, scales=MMD_SCALES) -> torch.Tensor:
    """Unbiased MMD² between samples x and y (n x d each) with inverse multiquadratic kernels
    k(a, b) = C / (C + |a - b|²) summed over C = 2 d prior_var s (Tolstikhin et al. 2018)."""
    n, d = x.shape
    if n < 2:  # no pair within a sample (an epoch's last batch can be a single image): nothing to estimate
        return x.new_zeros((), dtype=torch.float32)
    both = torch.cat([x, y]).float()
    sq = torch.cdist(both, both).pow(2)
    kernel = sum(c / (c + sq) for c in (2.0 * d * prior_var * s for s in scales))
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    off_diagonal = n * (n - 1)
    return (
        k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()
    ) / off_diagonal - 2 * k_xy.mean()


def imq_mmd_original(
    x: torch.Tensor, y: torch.Tensor, scales=MMD_SCALES, base_scale: float = 10.0
) -> torch.Tensor:
    """The WAE-MMD term as the original code computes it (mmrl/lost-in-latent-space,
    src/training/math.py `inv_multiquad_sum` and `min_mean_discrepancy`); not an estimate of MMD².

    Row i of x (or y) is one sample, every other axis flattened into it (in the composition task a
    row holds a triplet's three latents). The squared distances of all pairs are summed into one
    scalar per term before the kernel K(Q) = sum_s C_s / (C_s + Q), C_s = base_scale s:
    Q_xx and Q_yy over the pairs i < j within a sample, Q_xy over all n² pairs across (i = j
    included). The result is (K(Q_xx) + K(Q_yy)) / 2 - K(Q_xy): the original divides each kernel
    sum by len() of an index tuple, which is 2, not by the number of pairs. With Q in the
    thousands at batch 64, K and its gradient are near zero: the term cannot see codes shifted or
    spread away from the prior, and only opposes codes squeezed together (K(Q_xx) / 2 -> 3.5 as
    Q_xx -> 0)."""
    n = x.shape[0]
    if n < 2:  # no pair within a sample (the original's index lists cannot even be unpacked)
        return x.new_zeros((), dtype=torch.float32)
    x, y = x.float().flatten(1), y.float().flatten(1)

    def summed(a, b):  # sum over all ordered pairs (i, j) of |a_i - b_j|²
        return (a[:, None] - b[None]).pow(2).sum()

    def kernel(q):
        return sum(c / (c + q) for c in (base_scale * s for s in scales))

    q_xx, q_yy = summed(x, x) / 2, summed(y, y) / 2  # i < j: half of the ordered pairs, i = j adds 0
    return (kernel(q_xx) + kernel(q_yy)) / 2 - kernel(summed(x, y))


class Objective(nn.Module, abc.ABC):
    """Reconstruction plus `penalty`; each hyper-parameter given becomes an attribute. A loss of the
    registry gets the ones its `compgen.losses.Loss` declares (values from the validated config, into
    whose schema the registry writes them with their defaults); an objective a task builds itself
    may name its own in `hyper`, which are then the only ones it takes."""

    hyper: ClassVar[tuple[str, ...] | None] = None
    # Parts that are settings rather than measurements: not summed over a triplet's two inputs.
    settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, recon: str, n_train: int = 0, **hyper):
        super().__init__()
        if recon not in RECON_KINDS:
            raise ValueError(f"unknown reconstruction loss {recon!r}; allowed: {', '.join(RECON_KINDS)}")
        if self.hyper is not None and set(hyper) != set(self.hyper):
            raise ValueError(
                f"{type(self).__name__} takes {sorted(self.hyper) or 'no hyper-parameters'}, "
                f"got {sorted(hyper)}"
            )
        self.recon = recon
        self.n_train = n_train
        for key, value in hyper.items():
            setattr(self, key, value)

    @abc.abstractmethod
    def penalty(self, mu, logvar, z, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The regulariser added to the reconstruction, and its logged parts."""

    def update(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """A step of the objective's own parameters after the model's step; nothing by default."""
        return {}

    def checkpoint_state(self) -> dict:
        """Objects with state_dict/load_state_dict that a checkpoint must hold."""
        return {}

    def single(self, logits, target, mu, logvar, z, step: int) -> dict[str, torch.Tensor]:
        """Batch means for single images: recon, the penalty's parts, and loss."""
        rec = reconstruction_per_image(logits, target, self.recon).mean()
        penalty, parts = self.penalty(mu, logvar, z, step)
        return {"recon": rec, **parts, "loss": rec + penalty}

    def composition_recon(self, out: dict, ref, cmd, target) -> dict[str, torch.Tensor]:
        """Batch means of the target's reconstruction and of both inputs' reconstructions summed."""
        rec_target = reconstruction_per_image(out["recon_target"], target, self.recon).mean()
        rec_inputs = (
            reconstruction_per_image(out["recon_ref"], ref, self.recon)
            + reconstruction_per_image(out["recon_cmd"], cmd, self.recon)
        ).mean()
        return {"recon_target": rec_target, "recon_inputs": rec_inputs}

    def composition_penalty(self, out: dict, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The penalty of a triplet's two encoded inputs: by default each input's, summed. For the
        VAE and the β-VAE this is the originals' term (the KL summed over both inputs' posteriors,
        divided by the number of triplets: `GaussianVAELoss.latent_term`, mmrl/lost-in-latent-space
        `src/training/loss.py` lines 101-106, mmrl/disent-and-gen `src/training/loss.py` lines 74-79)."""
        pen_ref, parts_ref = self.penalty(out["mu_ref"], out["logvar_ref"], out["z_ref"], step)
        pen_cmd, parts_cmd = self.penalty(out["mu_cmd"], out["logvar_cmd"], out["z_cmd"], step)
        parts = {k: v if k in self.settings else v + parts_cmd[k] for k, v in parts_ref.items()}
        return pen_ref + pen_cmd, parts

    def composition(
        self, out: dict, ref, cmd, target, step: int, objective: str = "target_and_inputs"
    ) -> dict[str, torch.Tensor]:
        """The composition loss (`models.<m>.objective`): `target_and_inputs`, the NeurIPS code's,
        reconstructs the target, the reference and the command; `target_only`, the ICLR code's,
        the target alone (its `Composer` decodes nothing else: mmrl/disent-and-gen
        `scripts/ingredients/composers.py` lines 110-125, `AELoss.forward` in `src/training/loss.py`
        lines 41-50). Both add `composition_penalty`."""
        penalty, parts = self.composition_penalty(out, step)
        if check_objective(objective) == "target_only":
            rec_target = reconstruction_per_image(out["recon_target"], target, self.recon).mean()
            return {"recon_target": rec_target, **parts, "loss": rec_target + penalty}
        recon = self.composition_recon(out, ref, cmd, target)
        return {**recon, **parts, "loss": recon["recon_target"] + recon["recon_inputs"] + penalty}


class VAELoss(Objective):
    def penalty(self, mu, logvar, z, step):
        kl = kl_divergence_per_image(mu, logvar).mean()
        return kl, {"kl": kl}


class BetaVAELoss(Objective):
    def penalty(self, mu, logvar, z, step):
        kl = kl_divergence_per_image(mu, logvar).mean()
        return self.beta * kl, {"kl": kl}


class CCIVAELoss(Objective):
    """Burgess et al. (2018): gamma |KL - C|, C rising linearly from 0 to capacity_max."""

    settings = ("capacity",)

    def capacity(self, step: int) -> float:
        return self.capacity_max * min(step / self.capacity_steps, 1.0)

    def penalty(self, mu, logvar, z, step):
        return self.capped(kl_divergence_per_image(mu, logvar).mean(), step)

    def capped(self, kl: torch.Tensor, step: int):
        capacity = self.capacity(step)
        return self.gamma * (kl - capacity).abs(), {"kl": kl, "capacity": torch.full_like(kl, capacity)}

    def composition_penalty(self, out, step):
        """gamma |KL(reference) + KL(command) - C|, one capacity for both inputs together, as both
        originals (`CCIVAE.latent_term`: the KL summed over the inputs' posteriors and divided by the
        triplets, mmrl/lost-in-latent-space `src/training/loss.py` lines 135-140, mmrl/disent-and-gen
        `src/training/loss.py` lines 108-113)."""
        kl = (
            kl_divergence_per_image(out["mu_ref"], out["logvar_ref"])
            + kl_divergence_per_image(out["mu_cmd"], out["logvar_cmd"])
        ).mean()
        return self.capped(kl, step)


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent unit shuffled independently across the batch: samples of prod_k q(z_k)."""
    order = torch.argsort(torch.rand(z.shape, device=z.device), dim=0)
    return torch.gather(z, 0, order)


class FactorVAELoss(Objective):
    """Kim & Mnih (2018): KL + gamma TC, TC from a discriminator of q(z) against prod_k q(z_k).
    The discriminator has six hidden layers of 1000 LeakyReLU units: slope `disc_slope`, 0.2 by
    default as Kim & Mnih, disentanglement_lib and the NeurIPS 2022 code (src/training/loss.py,
    `FactorLoss`); the ICLR 2021 code's `nn.LeakyReLU()` has torch's default 0.01."""

    HIDDEN, LAYERS, BETAS = 1000, 6, (0.5, 0.9)

    def __init__(self, recon: str, n_train: int = 0, *, latent_size: int, **hyper):
        super().__init__(recon, n_train, **hyper)
        layers: list[nn.Module] = []
        width = latent_size
        for _ in range(self.LAYERS):
            layers += [nn.Linear(width, self.HIDDEN), nn.LeakyReLU(self.disc_slope)]
            width = self.HIDDEN
        layers.append(nn.Linear(width, 2))  # logits of (from q(z), from prod_k q(z_k))
        self.discriminator = nn.Sequential(*layers)
        self.disc_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.disc_lr, betas=self.BETAS
        )

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        # Detached weights: the model's loss moves z, never the discriminator.
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        logits = torch.func.functional_call(self.discriminator, frozen, (z,)).float()
        return (logits[:, 0] - logits[:, 1]).mean()

    def penalty(self, mu, logvar, z, step):
        kl = kl_divergence_per_image(mu, logvar).mean()
        tc = self.total_correlation(z)
        return kl + self.gamma * tc, {"kl": kl, "tc": tc}

    def discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(torch.cat([z, permute_dims(z)])).float()
        labels = torch.cat([torch.zeros(len(z)), torch.ones(len(z))]).long().to(z.device)
        return F.cross_entropy(logits, labels)

    def update(self, z):
        loss = self.discriminator_loss(z.detach())
        self.disc_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_optimizer.step()
        return {"disc": loss.detach()}

    def checkpoint_state(self):
        return {"discriminator": self.discriminator, "disc_optimizer": self.disc_optimizer}


class BetaTCVAELoss(Objective):
    """Chen et al. (2018), minibatch-weighted sampling: MI + beta TC + dimension-wise KL."""

    def decomposition(self, mu, logvar, z) -> dict[str, torch.Tensor]:
        mu, logvar, z = mu.float(), logvar.float(), z.float()
        batch = z.shape[0]
        n = max(self.n_train, batch)
        log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
        # [i, j, k] = log q(z_ik | x_j)
        pairwise = gaussian_log_density(z[:, None], mu[None], logvar[None])
        log_norm = math.log(batch * n)
        log_qz = torch.logsumexp(pairwise.sum(2), dim=1) - log_norm
        log_prod_qzk = (torch.logsumexp(pairwise, dim=1) - log_norm).sum(1)
        return {
            "mi": (log_qz_x - log_qz).mean(),
            "tc": (log_qz - log_prod_qzk).mean(),
            "dwkl": (log_prod_qzk - log_pz).mean(),
        }

    def penalty(self, mu, logvar, z, step):
        parts = self.decomposition(mu, logvar, z)
        kl = kl_divergence_per_image(mu, logvar).mean()
        return parts["mi"] + self.beta * parts["tc"] + parts["dwkl"], {"kl": kl, **parts}


class WAELoss(Objective):
    """Tolstikhin et al. (2018) WAE-MMD plus an L1 penalty on log sigma², in two forms (`mmd`):

    - `original`, the numerics the paper trained (mmrl/lost-in-latent-space, src/training/loss.py
      `WAEMMD`): `imq_mmd_original` against a prior sample prior_var * ε (standard deviation
      prior_var, so 2 for the default, not √2), and in the composition task one MMD over each
      triplet's reference, command and composed latents taken together as one sample;
    - `unbiased`: the per-pair unbiased MMD² (`imq_mmd`) against N(0, prior_var I), the penalty of
      each input of a triplet on its own, like the other objectives.
    """

    def __init__(self, recon: str, n_train: int = 0, **hyper):
        super().__init__(recon, n_train, **hyper)
        if self.mmd not in MMD_KINDS:
            raise ValueError(f"unknown mmd {self.mmd!r}; allowed: {', '.join(MMD_KINDS)}")

    def mmd_term(self, z: torch.Tensor) -> torch.Tensor:
        z = z.float()
        if self.mmd == "original":
            return imq_mmd_original(z, self.prior_var * torch.randn_like(z))
        prior = torch.randn_like(z) * math.sqrt(self.prior_var)
        return imq_mmd(z, prior, self.prior_var)

    @staticmethod
    def logvar_l1(logvar: torch.Tensor) -> torch.Tensor:
        return logvar.float().abs().sum(1).mean()

    def penalty(self, mu, logvar, z, step):
        mmd, logvar_l1 = self.mmd_term(z), self.logvar_l1(logvar)
        return self.mmd_weight * mmd + self.logvar_penalty * logvar_l1, {"mmd": mmd, "logvar_l1": logvar_l1}

    def composition_penalty(self, out, step):
        if self.mmd != "original":
            return super().composition_penalty(out, step)
        # The original's CompositionNet returns z of shape (batch, 3, latent): reference, command
        # and composed latent of each triplet, one sample of the MMD.
        mmd = self.mmd_term(torch.stack([out["z_ref"], out["z_cmd"], out["z_target"]], dim=1))
        logvar_l1 = self.logvar_l1(out["logvar_ref"]) + self.logvar_l1(out["logvar_cmd"])
        penalty = self.mmd_weight * mmd + self.logvar_penalty * logvar_l1
        return penalty, {"mmd": mmd, "logvar_l1": logvar_l1}
