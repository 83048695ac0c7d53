"""CascadeVAE (Jeong & Song 2019) as the NeurIPS code trains it: its model, its discrete-code
matching and its objective.

Sources (mmrl/lost-in-latent-space): `src/models/cvae.py` (the model), `src/models/matching.py`
(`SolveMaxMatching`, the min-cost flow), `src/training/loss.py` (`InfoCascadeLoss`, the loss
'infocasc'), `scripts/experiments/disent.py` (when the beta schedule moves),
`scripts/ingredients/analysis.py` (`discrete2con`).

- Latents: `latent_size` continuous Gaussian units (the encoder's head gives mu and log sigma²)
  and a one-hot code of `n_cat` categories; the decoder reads both (latent_size + n_cat inputs).
- The discrete code (cvae.py lines 52-76): each image is decoded once per category, with its
  continuous sample z, and costed by its reconstruction loss. While training, a min-cost matching
  over the batch picks the codes (`match_categories`); at evaluation, the cheapest category.
  Before `disc_warmup` training steps the code is all zeros (lines 55-57).
- Objective (loss.py lines 61-81): reconstruction plus sum_u beta_u KL_u, per image, averaged
  over the batch; beta_u starts at beta_high and falls to beta_low for unit 0 first, then unit 1,
  one more unit every `warmup` steps, and stays there (`CascadeLoss.betas`). The category costs
  take no part in the loss: they only choose the code.

Where this differs from the original, and why:
- The matching solves the original's problem with scipy's `linear_sum_assignment` on real-valued
  costs instead of OR-Tools' integer min-cost flow on costs scaled by 10^4 and truncated to
  int32: the same optimum up to that rounding (and without int32 overflow above 214,748 nats).
  The pairwise penalty is lmbda itself where the original uses int(lmbda * 10^4) / 10^4 (the same
  for every lmbda its scripts set: 0.1, 0.001, 0.0001).
- The category cost is the run's reconstruction loss (`recon`); the original always uses BCE,
  which is this project's default too.
- Weights start Kaiming-uniform like every model here; the original's CascadeVAE imports
  `weights_init` but never applies it, so it starts from torch's default initialisation.
- `discrete2con` maps the chosen category c to 2 c / (max - min) - 1 with max and min taken over
  the images being encoded: NaN or inf when they all share one category, outside [-1, 1] when
  category 0 is unused, and a different scale for training and held-out images. Here the scale
  is fixed by n_cat, 2 c / (n_cat - 1) - 1, which is what the original gives when every category
  occurs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from compgen.losses import Objective, reconstruction_per_image


def match_categories(costs: np.ndarray, lmbda: float) -> np.ndarray:
    """The category of each batch item (shape (B,)) minimising

        sum_i costs[i, c_i] + lmbda * sum_k m_k (m_k - 1) / 2,     m_k = #{i : c_i = k},

    the problem of the original's `SolveMaxMatching` (matching.py, k = 1): each item sends one
    unit of flow to one category, and category k reaches the sink through B arcs of capacity 1
    costing 0, lmbda, 2 lmbda, ... (lines 30-35), so its s-th item costs s * lmbda more: lmbda per
    pair of items sharing a category, a soft push towards a batch balanced over categories. Those
    slots, one column each, make it an assignment problem of B items to n_cat * B slots; increasing
    slot costs mean an optimum fills each category's cheapest slots first, as the flow does.
    """
    costs = np.asarray(costs, dtype=np.float64)
    n_items, n_cat = costs.shape
    slots = costs[:, :, None] + lmbda * np.arange(n_items, dtype=np.float64)[None, None, :]
    rows, cols = linear_sum_assignment(slots.reshape(n_items, n_cat * n_items))
    chosen = np.empty(n_items, dtype=np.int64)
    chosen[rows] = cols // n_items
    return chosen


class CascadeVAE(nn.Module):
    """Continuous Gaussian latents plus a one-hot code of `n_cat` categories (see the module's
    docstring). `forward(x, step)` gives (logits, mu, logvar, z, code); `encode` and `decode`
    work on the analysis representation, the continuous means and the category as one scalar."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_size: int,
        n_cat: int,
        disc_warmup: int,
        lmbda: float,
        recon: str = "bce",
    ):
        super().__init__()
        if n_cat < 2:
            raise ValueError(f"CascadeVAE needs at least 2 categories, got n_cat={n_cat}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_size = latent_size
        self.n_cat = n_cat
        self.disc_warmup = disc_warmup
        self.lmbda = lmbda
        self.recon = recon

    # -- the discrete code -------------------------------------------------------------------
    def discrete_active(self, step: int | None) -> bool:
        """Whether training step `step` (0-based) picks a code. The original counts forward passes
        from 1 and picks one once that count reaches disc_warmup (cvae.py lines 55, 80), so from
        0-based step disc_warmup - 1. No step: warm-up is over."""
        return not self.training or step is None or step + 1 >= self.disc_warmup

    @torch.no_grad()
    def category_costs(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, n_cat): the reconstruction loss of x decoded from z with each category's code."""
        batch = z.shape[0]
        codes = torch.eye(self.n_cat, dtype=z.dtype, device=z.device)
        inputs = torch.cat(
            [z[:, None].expand(-1, self.n_cat, -1), codes[None].expand(batch, -1, -1)], dim=2
        ).flatten(0, 1)
        logits = self.decoder(inputs)
        targets = x.repeat_interleave(self.n_cat, dim=0)
        return reconstruction_per_image(logits, targets, self.recon).view(batch, self.n_cat)

    def choose(self, costs: torch.Tensor, match: bool) -> torch.Tensor:
        """One-hot codes: the batch matching (training) or the cheapest category (evaluation)."""
        if match:
            chosen = torch.as_tensor(match_categories(costs.cpu().numpy(), self.lmbda), device=costs.device)
        else:
            chosen = costs.argmin(dim=1)
        return F.one_hot(chosen, self.n_cat)

    # -- training and evaluation -------------------------------------------------------------
    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor, step: int | None = None):
        """(logits, mu, logvar, z, code): z the continuous sample (mu at evaluation), code the
        one-hot category (zeros during the training warm-up)."""
        mu, logvar = self.encoder(x)
        z = self.sample(mu, logvar)
        if self.discrete_active(step):
            code = self.choose(self.category_costs(x, z), match=self.training).to(z.dtype)
        else:
            code = z.new_zeros(z.shape[0], self.n_cat)
        return self.decoder(torch.cat([z, code], dim=1)), mu, logvar, z, code

    # -- the analysis representation ---------------------------------------------------------
    def category_scalar(self, code: torch.Tensor) -> torch.Tensor:
        """One-hot (N, n_cat) -> (N, 1) in [-1, 1]: 2 c / (n_cat - 1) - 1 (`discrete2con`, fixed scale)."""
        return (2 * code.argmax(dim=1, keepdim=True).to(torch.float32) / (self.n_cat - 1) - 1).to(code.dtype)

    def scalar_code(self, scalar: torch.Tensor) -> torch.Tensor:
        """The inverse of `category_scalar`: the nearest category's one-hot code."""
        index = torch.round((scalar[:, 0].float() + 1) * (self.n_cat - 1) / 2).clamp(0, self.n_cat - 1)
        return F.one_hot(index.long(), self.n_cat).to(scalar.dtype)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(representation, log variance), (N, latent_size + 1) each: the means and the cheapest
        category as a scalar (log variance 0 for it), as analysis reads a model. Always z = mu and
        argmin, whatever the mode."""
        mu, logvar = self.encoder(x)
        code = self.choose(self.category_costs(x, mu), match=False).to(mu.dtype)
        return torch.cat([mu, self.category_scalar(code)], dim=1), torch.cat(
            [logvar, torch.zeros_like(logvar[:, :1])], dim=1
        )

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Logits from a representation (latent_size + 1 columns, the category as a scalar,
        rounded to the nearest) or a full code (latent_size + n_cat columns, one-hot last)."""
        width = latents.shape[1]
        if width == self.latent_size + 1:
            latents = torch.cat([latents[:, :-1], self.scalar_code(latents[:, -1:])], dim=1)
        elif width != self.latent_size + self.n_cat:
            raise ValueError(
                f"CascadeVAE decodes {self.latent_size + 1} or {self.latent_size + self.n_cat} "
                f"latents, got {width}"
            )
        return self.decoder(latents)


class CascadeLoss(Objective):
    """The original's 'infocasc' loss (`InfoCascadeLoss`): reconstruction (summed over pixels) plus
    sum_u beta_u(step) KL(q(z_u | x) || N(0, 1)), both averaged over the batch."""

    hyper = ("beta_high", "beta_low", "warmup")
    title = "CascadeVAE"
    settings = ("units_at_beta_low",)

    def units_at_beta_low(self, step: int, n_units: int) -> int:
        """The original lowers unit i = step // warmup after step `step` when (step + 1) is a
        multiple of warmup (loss.py lines 77-81), called at each iteration's end with that
        iteration's 0-based step (disent.py lines 170-172): so step s trains with the first
        min(s // warmup, n_units) units at beta_low."""
        return min(step // self.warmup, n_units)

    def betas(self, step: int, n_units: int) -> torch.Tensor:
        beta = torch.full((n_units,), float(self.beta_high))
        beta[: self.units_at_beta_low(step, n_units)] = float(self.beta_low)
        return beta

    def penalty(self, mu, logvar, z, step):
        mu, logvar = mu.float(), logvar.float()
        kl_units = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)
        beta = self.betas(step, mu.shape[1]).to(mu.device)
        weighted = (kl_units * beta).sum(1).mean()
        low = torch.full_like(weighted, self.units_at_beta_low(step, mu.shape[1]))
        return weighted, {"kl": kl_units.sum(1).mean(), "units_at_beta_low": low}


def build_cascade(model_cfg: dict, image_shape) -> CascadeVAE:
    """A CascadeVAE of a validated model config; the decoder reads latent_size + n_cat inputs,
    as the original's transposed encoder (`init_lgm`, gm_type 'cascade')."""
    from compgen.models.blocks import build_decoder, build_encoder

    latent_size, n_cat = int(model_cfg["latent_size"]), int(model_cfg["n_cat"])
    return CascadeVAE(
        build_encoder(model_cfg["encoder"], image_shape, latent_size),
        build_decoder(model_cfg["decoder"], image_shape, latent_size + n_cat),
        latent_size,
        n_cat,
        int(model_cfg["disc_warmup"]),
        float(model_cfg["lmbda"]),
        model_cfg["recon"],
    )
