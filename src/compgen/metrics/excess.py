"""Excess reconstruction loss, the generalisation gap and the training-fit summary
(docs/study.md, Measures).

Raw losses mislead: a 3DShapes image's BCE is mostly the entropy of its own pixel values, which no
model can remove (a probe gave 6,412 per training image and 6,451 per held-out one, of a floor
near 6,400), so any ratio of raw losses is about 1. What a model can still improve is the loss
above that floor:

- **floor** (per image): for `bce`, the summed binary entropy of the target's own pixel values,
  sum over pixels of -(x log x + (1 - x) log(1 - x)) (0 where x is 0 or 1): the BCE of a perfect
  prediction, logits = logit(x). For `mse` and `mse_raw` the floor is 0 (a perfect prediction
  has no error).
- **excess** (per image): the reconstruction loss less its floor; `recon_excess_train` and
  `recon_excess_test` are their means over the analysis' samples, and
  `gap = recon_excess_test / recon_excess_train` (NaN without a held-out set, or when the
  training excess is not positive: a ratio to nothing is no measure) and beside it
  `excess_delta = recon_excess_test - recon_excess_train` (in loss units: a ratio hides how much
  is lost when the training excess is large, and inflates it when that is near 0). Every task,
  composition included, scores single images encoded and decoded by its autoencoder (z = mu), the
  papers' measure; the composition task adds the same four on the composed target, suffixed
  `_composed` (`Task.excess_scores`).
- **training fit**: the kind-aware, chance-corrected readout (compgen.metrics.fit) on training
  images of the condition's two factors (`main_factor_scores`), the check that a model learned its
  training data before any verdict on how it generalises (compgen.claims).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from compgen.losses import RECON_KINDS


def reconstruction_floor(images: torch.Tensor, kind: str) -> torch.Tensor:
    """Per image (N,), in float64: the lowest reconstruction loss of kind `kind` any prediction of
    `images` (float, in [0, 1]) can reach (see the module docstring)."""
    if kind not in RECON_KINDS:
        raise ValueError(f"unknown reconstruction loss {kind!r}; allowed: {', '.join(RECON_KINDS)}")
    x = images.detach().to(torch.float64).flatten(1)
    if kind != "bce":
        return torch.zeros(x.shape[0], dtype=torch.float64)
    # xlogy(0, 0) = 0: a pixel of value exactly 0 or 1 has no entropy.
    return -(torch.special.xlogy(x, x) + torch.special.xlogy(1 - x, 1 - x)).sum(1)


@torch.no_grad()
def batched_floors(images, rows: torch.Tensor, kind: str, batch: int) -> torch.Tensor:
    """Per row (float64, on the rows' device): the floor of `images(rows)`, read `batch` at a time."""
    floors = [
        reconstruction_floor(images(rows[s : s + batch]), kind).to(rows.device)
        for s in range(0, rows.numel(), batch)
    ]
    return torch.cat(floors) if floors else torch.zeros(0, dtype=torch.float64, device=rows.device)


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


def gap(excess_train: float, excess_test: float) -> float:
    """excess_test / excess_train; NaN when either is not finite or the training excess is not
    positive."""
    if not (math.isfinite(excess_train) and math.isfinite(excess_test)) or excess_train <= 0:
        return float("nan")
    return excess_test / excess_train


def excess_summary(excess_train: np.ndarray, excess_test: np.ndarray, suffix: str = "") -> dict[str, float]:
    """`recon_excess_train`, `recon_excess_test` (means of per-item excess losses; NaN for none),
    `gap` = recon_excess_test / recon_excess_train and `excess_delta` = recon_excess_test -
    recon_excess_train, each key followed by `suffix` (composition: "_composed"). An empty
    `excess_test` is an all-data reference: no held-out set, gap and excess_delta NaN."""
    train, test = _mean(excess_train), _mean(excess_test)
    return {
        f"recon_excess_train{suffix}": train,
        f"recon_excess_test{suffix}": test,
        f"gap{suffix}": gap(train, test),
        f"excess_delta{suffix}": test - train,
    }


def main_factor_scores(scores: dict, main_factors) -> dict:
    """Scores of the condition's two factors (`main_factors`, from the split's summary).

    Readout R² (against the training images' mean): `r2_train_main` and `r2_test_main` (means over
    the two, on training and held-out images), `r2_train_main_min` (the lower of the two on training
    images) and `r2_drop_main` (r2_train_main - r2_test_main). The kind-aware fit on training
    images (`fit_train`, compgen.metrics.fit): `fit_main` ({factor: fit} of the two) and
    `fit_main_min` (the lower of the two: the training-fit check needs each factor to pass).
    NaN where a score is missing or NaN (a task without a representation, a factor not scored, no
    held-out set)."""
    factors = list(main_factors)

    def values(key: str) -> np.ndarray:
        per_factor = scores.get(key) or {}
        return np.array([per_factor.get(f, math.nan) for f in factors], dtype=np.float64)

    train, test, fit = values("r2_train"), values("r2_test"), values("fit_train")
    nan = float("nan")
    train_main = float(train.mean()) if train.size else nan
    test_main = float(test.mean()) if test.size else nan
    return {
        "main_factors": factors,
        "r2_train_main": train_main,
        "r2_test_main": test_main,
        "r2_train_main_min": float(train.min()) if train.size else nan,
        "r2_drop_main": train_main - test_main,
        "fit_main": {f: float(v) for f, v in zip(factors, fit, strict=True)},
        "fit_main_min": float(fit.min()) if fit.size else nan,
    }
