"""LieGroupVAE (Zhu, Xu and Tao 2021, "Commutative Lie Group VAE"), as the NeurIPS code has it.

Original: mmrl/lost-in-latent-space `src/models/lievae.py` (model), `src/training/loss.py`
`LieVAELoss` with `src/training/math.py` (loss), `scripts/ingredients/models.py` `init_lgm` for
gm_type 'lie' (encoder and decoder), `scripts/ingredients/analysis.py` `project_subspaces` (the
analysis' PCA). Per subgroup i (sizes g_i = m_i², s_i):

- encoder: the architecture's convolutional and dense layers, then Linear(., sum g_i) with no
  non-linearity (`init_lgm`: `encoder_layers += [('linear', [total_group_features])]`); its output
  h is cut into one slice of g_i features per subgroup;
- per subgroup two MLPs g_i -> 4 g_i -> ReLU -> s_i give mu and log sigma² (`LieGroupLayer`);
  z = mu + sigma * eps in training, mu at evaluation;
- group features: G_i(z) = matrix_exp(sum_k z_k A_k) over the subgroup's s_i latents, flattened
  to m_i², with learned Lie-algebra bases A_k (m_i x m_i) initialised N(0, std 0.001) (`init_alg_basis`:
  `torch.normal(..., std=lie_alg_init_scale)`, so 0.001 is the standard deviation). The original's
  `train_exp` and `val_exp` compute the same matrix exponential (train_exp's loop runs once over
  [x] and multiplies by the identity);
- decoder: fed the group features; in training, with probability 0.2 per *batch*, the encoder's
  features h instead (`forward`: `if self.training and np.random.rand() < self.prob_forward:
  output = latent[0]`, latent[0] being the layer's input h). The draw is the task's
  (`compgen.tasks.lie`), from a generator seeded by (run seed, step); the model takes its outcome.

Nothing constrains the bases (no skew-symmetry), so G(z) is invertible (det = exp(sum_k z_k tr A_k))
but not orthogonal; it is a homomorphism of (R^s, +) exactly when the bases commute, which only the
commutator penalty (weight 0 in every run of the original) encourages.

Initialisation: the original's LieGroupVAE never calls its `reset_parameter`, so its layers keep
torch's defaults; here every conv and linear layer starts Kaiming-uniform with zero biases, as every
model of this project (the same choice as `FactorRegressor`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from compgen.losses import Objective, kl_divergence_per_image, reconstruction_per_image
from compgen.models.blocks import kaiming_init

BASIS_INIT_STD = 0.001  # `lie_alg_init_scale`, a standard deviation (torch.normal's std)
MLP_EXPANSION = 4  # the group MLPs' hidden width, 4 g_i


class LieOutput(NamedTuple):
    logits: torch.Tensor  # decoder output
    features: torch.Tensor  # encoder features h (N, sum g_i)
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    group: torch.Tensor  # group features G(z), flattened (N, sum g_i)


def matrix_side(group_size: int) -> int:
    side = math.isqrt(group_size)
    if side * side != group_size:
        raise ValueError(
            f"a subgroup's size must be a square m*m (its elements are m x m matrices), got {group_size}"
        )
    return side


def exp_map(z: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """matrix_exp(sum_k z[:, k] A_k): (N, m, m) for z (N, s) and bases (s, m, m)."""
    return torch.linalg.matrix_exp(torch.einsum("nk,kab->nab", z, bases))


def basis_products(bases: torch.Tensor) -> torch.Tensor:
    """P[i, j] = A_j A_i for i != j and 0 on the diagonal, (s, s, m, m): the original's
    `calc_basis_mul_ij` (`torch.matmul(basis[None], basis.view(s, 1, m, m))` masked by 1 - I)."""
    products = torch.matmul(bases[None], bases[:, None])
    mask = 1.0 - torch.eye(bases.shape[0], dtype=bases.dtype, device=bases.device)
    return products * mask[:, :, None, None]


def hessian_penalty(bases: torch.Tensor) -> torch.Tensor:
    """(1 / s²) sum_{i != j} |A_i A_j|_F²: the original's `calc_hessian_loss`, a mean over all s x s
    entries of `basis_products` (the zero diagonal counted). Zhu et al.'s closed form of the
    Hessian penalty at z = 0, where d²G / dz_i dz_j = (A_i A_j + A_j A_i) / 2; it is analytic, so,
    unlike Peebles et al.'s finite-difference estimator, it draws no random directions."""
    return basis_products(bases).pow(2).sum((2, 3)).mean()


def commutator_penalty(bases: torch.Tensor) -> torch.Tensor:
    """(1 / s²) sum_{i != j} |[A_i, A_j]|_F², [A_i, A_j] = A_i A_j - A_j A_i, normalised as
    `hessian_penalty`.

    The original's `calc_commute_loss` subtracts `basis_products(...).permute(0, 1, 3, 2)`, the
    transpose of each matrix, A_j A_i - (A_j A_i)^T, which penalises asymmetry, not
    non-commutation (a pair of equal non-symmetric bases commutes and is still penalised). Its
    weight is 0 in every run of the original, so nothing it trained depends on it; this is the
    commutator of Zhu et al., P[j, i] - P[i, j]."""
    products = basis_products(bases)
    return (products.transpose(0, 1) - products).pow(2).sum((2, 3)).mean()


def group_mlp(group_size: int, subspace_size: int) -> nn.Sequential:
    hidden = MLP_EXPANSION * group_size
    return nn.Sequential(nn.Linear(group_size, hidden), nn.ReLU(), nn.Linear(hidden, subspace_size))


class LieGroupVAE(nn.Module):
    """Encoder features -> per-subgroup Gaussian latents -> group features -> decoder.

    `features` maps images to a flat vector of `feature_width` (an encoder's conv and dense layers);
    `decoder` maps sum(subgroup_sizes) group features to image logits.

    For analysis (`project`), each subgroup's group features are cut into g_i // s_i blocks of s_i
    consecutive columns (trailing columns beyond a whole block are left out, as the original's
    floor division), each projected on its first principal component, fitted on training images
    (`start/add_to/finish_projection`; buffers `pca_mean_i`, `pca_axis_i`, NaN until fitted)."""

    def __init__(
        self,
        features: nn.Module,
        feature_width: int,
        decoder: nn.Module,
        subgroup_sizes: Sequence[int],
        subspace_sizes: Sequence[int],
        basis_init_std: float = BASIS_INIT_STD,
    ):
        super().__init__()
        if len(subgroup_sizes) != len(subspace_sizes) or not subgroup_sizes:
            raise ValueError("one subspace size per subgroup, and at least one subgroup")
        self.subgroup_sizes = tuple(int(g) for g in subgroup_sizes)
        self.subspace_sizes = tuple(int(s) for s in subspace_sizes)
        self.sides = tuple(matrix_side(g) for g in self.subgroup_sizes)
        for g, s in zip(self.subgroup_sizes, self.subspace_sizes, strict=True):
            if not 1 <= s <= g:
                raise ValueError(f"a subgroup of {g} features needs between 1 and {g} latents, got {s}")
        width = sum(self.subgroup_sizes)
        self.encoder = nn.Sequential(features, nn.Linear(feature_width, width))
        self.decoder = decoder
        sizes = list(zip(self.subgroup_sizes, self.subspace_sizes, strict=True))
        self.means = nn.ModuleList(group_mlp(g, s) for g, s in sizes)
        self.logvars = nn.ModuleList(group_mlp(g, s) for g, s in sizes)
        kaiming_init(self.encoder[-1])
        kaiming_init(self.means)
        kaiming_init(self.logvars)
        # One (s_i, m_i, m_i) tensor per subgroup: the original's s_i separate (1, m_i, m_i) parameters.
        self.bases = nn.ParameterList(
            nn.Parameter(torch.randn(s, m, m) * basis_init_std)
            for s, m in zip(self.subspace_sizes, self.sides, strict=True)
        )
        for i, (g, s) in enumerate(zip(self.subgroup_sizes, self.subspace_sizes, strict=True)):
            self.register_buffer(f"pca_mean_{i}", torch.full((g // s, s), float("nan")))
            self.register_buffer(f"pca_axis_{i}", torch.full((g // s, s), float("nan")))
        self._pca: list[BlockPCA] | None = None

    @property
    def latent_size(self) -> int:
        return sum(self.subspace_sizes)

    @property
    def n_projected(self) -> int:
        """Latents that analysis reads (`project`): one per block."""
        return sum(g // s for g, s in zip(self.subgroup_sizes, self.subspace_sizes, strict=True))

    def _split(self, x: torch.Tensor, sizes: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return torch.split(x, list(sizes), dim=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the subspace latents (N, sum s_i)."""
        return self.latent_params(self.encoder(x))

    def latent_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = self._split(h, self.subgroup_sizes)
        mu = torch.cat([net(p) for net, p in zip(self.means, parts, strict=True)], dim=1)
        logvar = torch.cat([net(p) for net, p in zip(self.logvars, parts, strict=True)], dim=1)
        return mu, logvar

    def group_features(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) of every subgroup, flattened and concatenated: (N, sum g_i); float32 even under autocast."""
        parts = self._split(z.float(), self.subspace_sizes)
        with torch.autocast(z.device.type, enabled=False):
            return torch.cat(
                [exp_map(p, b.float()).flatten(1) for p, b in zip(parts, self.bases, strict=True)], dim=1
            )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of subspace latents z (what traversals sweep): the decoder of G(z)."""
        return self.decoder(self.group_features(z))

    def forward(self, x: torch.Tensor, raw_features: bool = False) -> LieOutput:
        """In training, `raw_features` feeds the decoder the encoder's features h instead of G(z)
        (the task draws it per batch); at evaluation the decoder always gets G(mu)."""
        h = self.encoder(x)
        mu, logvar = self.latent_params(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        group = self.group_features(z)
        logits = self.decoder(h if (self.training and raw_features) else group)
        return LieOutput(logits, h, mu, logvar, z, group)

    def _summed(self, penalty) -> torch.Tensor:
        """Sum over subgroups with more than one latent (as the original's `group_loss`)."""
        terms = [penalty(b.float()) for b in self.bases if b.shape[0] > 1]
        return torch.stack(terms).sum() if terms else self.bases[0].new_zeros((), dtype=torch.float32)

    def hessian_penalty(self) -> torch.Tensor:
        return self._summed(hessian_penalty)

    def commutator_penalty(self) -> torch.Tensor:
        return self._summed(commutator_penalty)

    # -- the analysis' projection ---------------------------------------------------------
    def _blocks(self, group: torch.Tensor) -> list[torch.Tensor]:
        """Per subgroup, its features as (N, g_i // s_i, s_i) blocks of consecutive columns."""
        out = []
        for part, g, s in zip(
            self._split(group, self.subgroup_sizes), self.subgroup_sizes, self.subspace_sizes, strict=True
        ):
            n_blocks = g // s
            out.append(part[:, : n_blocks * s].reshape(len(part), n_blocks, s))
        return out

    def start_projection(self) -> None:
        self._pca = [BlockPCA() for _ in self.subgroup_sizes]

    def add_to_projection(self, group: torch.Tensor) -> None:
        if self._pca is None:
            raise RuntimeError("start_projection first")
        for pca, blocks in zip(self._pca, self._blocks(group.detach()), strict=True):
            pca.update(blocks)

    @property
    def projection_rows(self) -> int:
        """Rows added since `start_projection` (0 when none is under way)."""
        return self._pca[0].n if self._pca is not None else 0

    @torch.no_grad()
    def finish_projection(self) -> None:
        """Fit every block's first principal component on what was added since `start_projection`."""
        if self._pca is None:
            raise RuntimeError("start_projection first")
        for i, pca in enumerate(self._pca):
            mean, axis = pca.first_component()
            getattr(self, f"pca_mean_{i}").copy_(torch.as_tensor(mean))
            getattr(self, f"pca_axis_{i}").copy_(torch.as_tensor(axis))
        self._pca = None

    def fit_projection(self, group: torch.Tensor) -> None:
        """`finish_projection` on these group features alone."""
        self.start_projection()
        self.add_to_projection(group)
        self.finish_projection()

    @property
    def projection_fitted(self) -> bool:
        return not any(
            bool(torch.isnan(getattr(self, f"pca_axis_{i}")).any()) for i in range(len(self.subgroup_sizes))
        )

    def project(self, group: torch.Tensor) -> torch.Tensor:
        """(N, n_projected): each block's coordinate on its first principal component."""
        if not self.projection_fitted:
            raise RuntimeError(
                "LieGroupVAE: the analysis projection is not fitted (it is fitted on the validation "
                "images at the end of every training epoch)"
            )
        out = []
        for i, blocks in enumerate(self._blocks(group.float())):
            mean, axis = getattr(self, f"pca_mean_{i}"), getattr(self, f"pca_axis_{i}")
            out.append(((blocks - mean) * axis).sum(-1))
        return torch.cat(out, dim=1)


class BlockPCA:
    """Streaming mean and scatter of (N, B, s) blocks in float64 (Chan et al.'s pairwise update),
    then each block's first principal component: what sklearn's PCA(svd_solver='full') finds on
    all rows at once, with its sign convention (the largest |loading| positive)."""

    def __init__(self):
        self.n = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None

    def update(self, blocks: torch.Tensor) -> None:
        x = blocks.detach().to("cpu", torch.float64).numpy()
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b = x.mean(0)
        centred = x - mean_b
        scatter_b = np.einsum("nbi,nbj->bij", centred, centred)
        if self.n == 0:
            self.n, self.mean, self.scatter = n_b, mean_b, scatter_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.scatter = self.scatter + scatter_b + np.einsum("bi,bj->bij", delta, delta) * (self.n * n_b / n)
        self.mean = self.mean + delta * (n_b / n)
        self.n = n

    def first_component(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, unit axis of largest variance), each (B, s)."""
        if self.n == 0:
            raise ValueError("no rows to fit a principal component on")
        _, vectors = np.linalg.eigh(self.scatter)  # ascending eigenvalues
        axis = vectors[:, :, -1]
        largest = np.abs(axis).argmax(1)
        signs = np.sign(axis[np.arange(len(axis)), largest])
        return self.mean, axis * np.where(signs == 0, 1.0, signs)[:, None]


class LieLoss(Objective):
    """The original's `LieVAELoss` (a `CCIVAE` with the group terms added), per batch:

        recon + kl_gamma |KL - C| + group_recon_weight group_recon
              + hessian_weight hessian + commutator_weight commutator

    - recon: the reconstruction summed over pixels, averaged over the batch (`AELoss.forward`:
      `recons_loss(reconstruction, target, reduction='sum') / batch`). The original's 'mse' is
      `mse_loss` on the decoder's raw output (no sigmoid anywhere in the model): `recon: mse_raw`;
    - KL: summed over latents, averaged over the batch (`kl_term`); C = 0, the original's
      `capacity=0.0` with `capacity_schedule None` (every LieGroupVAE run), so the term is
      kl_gamma KL;
    - group_recon: mean over the batch of sum_f (h_f - G(z)_f)² between the encoder's features and
      the group features (`group_loss`: `torch.mean(torch.sum(torch.square(E - G), dim=1))`);
    - hessian, commutator: `LieGroupVAE.hessian_penalty`, `commutator_penalty`, summed over
      subgroups with more than one latent.

    The original's defaults (`training.py` `lievae()`): kl_gamma 1, group_recon_weight 0.1,
    hessian_weight 40 (20 on 3DShapes, `run-alts.sh`), commutator_weight 0. `decoder_raw_prob`
    (0.2, the model's `prob_forward`) is the chance per batch that the decoder gets the encoder's
    features; the task draws it.
    """

    hyper = ("kl_gamma", "group_recon_weight", "hessian_weight", "commutator_weight", "decoder_raw_prob")
    title = "LieGroupVAE"
    CAPACITY = 0.0

    def penalty(self, mu, logvar, z, step):
        kl = kl_divergence_per_image(mu, logvar).mean()
        return self.kl_gamma * (kl - self.CAPACITY).abs(), {"kl": kl}

    def lie(self, out: LieOutput, target: torch.Tensor, model: LieGroupVAE) -> dict[str, torch.Tensor]:
        """The loss parts of a batch and "loss", the one minimised."""
        rec = reconstruction_per_image(out.logits, target, self.recon).mean()
        kl_term, parts = self.penalty(out.mu, out.logvar, out.z, 0)
        group_recon = (out.features.float() - out.group.float()).pow(2).sum(1).mean()
        hessian, commutator = model.hessian_penalty(), model.commutator_penalty()
        loss = (
            rec
            + kl_term
            + self.group_recon_weight * group_recon
            + self.hessian_weight * hessian
            + self.commutator_weight * commutator
        )
        return {
            "recon": rec,
            **parts,
            "group_recon": group_recon,
            "hessian": hessian,
            "commutator": commutator,
            "loss": loss,
        }
