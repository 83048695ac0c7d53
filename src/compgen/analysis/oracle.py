"""The latent oracle: where a disentangled encoder should put a held-out combination.

The NeurIPS paper separates encoder from decoder failures by asking where held-out combinations
*should* land in latent space. The original answers for the two plotted latents only
(mmrl/lost-in-latent-space `scripts/ingredients/analysis.py`, `expected_test_dist`): the mean and
std over training images of each latent given the value of the factor it is matched to. Here the
same answer is given for every latent:

- **oracle**: latent l, matched (DCI's Hungarian matching, `fitted["matching"]`) to factor f,
  predicts for an image with class c of f the mean of l over training images whose f is c; its
  spread is their std (ddof=1, as the original's `torch.std_mean`; 0 for a class seen once). A
  latent matched to no scored factor sits at its mean over all training images (spread: its std).
  The oracle is fitted on the analysis' training sample, the images the other scores use.
- **extrapolation**: a held-out image whose value of a matched factor never occurs among the
  training images (an `interp` or `extrp` condition) has no oracle: its prediction is NaN, and it
  is left out of the oracle scores and counted in `oracle_test_excluded`. Nothing is invented
  (the original silently skipped such combinations).
- **distance**: per image, the Euclidean norm over the matched latents of
  (encoded - oracle) / oracle std, the number of oracle standard deviations the encoding lies from
  the prediction. Dividing by the spread of training images with the same value makes it
  scale-free per latent and weights a latent by how tightly it codes its factor: three units off
  on a latent whose training values scatter by 0.1 is a gross error, on one scattering by 5 it is
  none. Unmatched latents code no scored factor and are left out. A spread is floored at 1e-6 of
  the latent's overall training std (a class seen once has std 0); a latent constant over the
  training sample (dead) adds nothing.
- **normalisation**: `latent_error_test` is the mean distance of held-out images divided by the
  mean distance of the training images from the oracle's prediction for them, so 1 means held-out
  combinations are placed as well as training ones and much more than 1 that the encoder
  misplaces them. Training distances are in-sample (the oracle is fitted on them), which lowers
  them by about (n - 1) / n per class of n images: negligible at the analysis' sample sizes.
- **decoding**: `recon_test_oracle` is the mean reconstruction loss (the model's kind) of the
  decoded oracle latents of held-out images against those images; `recon_train_oracle` the same
  for training images, the oracle's own loss (it ignores what distinguishes images sharing the
  matched values). A low `recon_test_oracle` beside a high `recon_test` means the decoder can
  render the unseen combinations and the encoder fails to place them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Samples per held-out combination on the latent plot, and the seed stream they are drawn from
# (a stream of its own, so that the other figure samples are unchanged).
N_ORACLE_SAMPLES = 20
ORACLE_STREAM = 7
# A zero spread (a class seen once) is floored at this fraction of the latent's overall std.
STD_FLOOR = 1e-6
UNMATCHED = -1


def latent_factors(matching, scored, n_latents: int) -> np.ndarray:
    """The factor axis each latent is matched to (UNMATCHED for none), from DCI's matching (the
    latent of each scored factor; -1 for a factor left without a latent)."""
    out = np.full(n_latents, UNMATCHED, dtype=np.int64)
    for factor, latent in zip(scored, matching, strict=True):
        if 0 <= int(latent) < n_latents:
            out[int(latent)] = int(factor)
    return out


def _group_stats(z: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1; 0 for one member) of z per group; NaN for an empty group."""
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(groups, weights=z, minlength=n_groups) / counts
        # Two passes: sums of squares around the mean keep their precision.
        ss = np.bincount(groups, weights=(z - mean[groups]) ** 2, minlength=n_groups)
        std = np.where(
            counts > 1, np.sqrt(ss / np.maximum(counts - 1, 1)), np.where(counts == 1, 0.0, np.nan)
        )
    return mean, std


@dataclass(frozen=True)
class Oracle:
    """Per latent, the training mean and std of the latent per class of its matched factor (one
    entry, the overall mean and std, for an unmatched latent), and its overall std (`scale`)."""

    latent_factor: np.ndarray
    means: tuple[np.ndarray, ...]
    stds: tuple[np.ndarray, ...]
    scale: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        return self.latent_factor != UNMATCHED

    def predict(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Oracle mean and std (N x latents) for images of factor classes `classes` (N x factors);
        NaN where the class of a latent's matched factor never occurs among the training images."""
        classes = np.asarray(classes, dtype=np.int64)
        n = len(classes)
        mean = np.empty((n, len(self.means)))
        std = np.empty_like(mean)
        for latent, factor in enumerate(self.latent_factor):
            if factor == UNMATCHED:
                mean[:, latent], std[:, latent] = self.means[latent][0], self.stds[latent][0]
                continue
            c = classes[:, factor]
            known = c < len(self.means[latent])
            c = np.where(known, c, 0)
            mean[:, latent] = np.where(known, self.means[latent][c], np.nan)
            std[:, latent] = np.where(known, self.stds[latent][c], np.nan)
        return mean, std


def fit_oracle(z_train: np.ndarray, classes_train: np.ndarray, latent_factor: np.ndarray, sizes) -> Oracle:
    """The oracle of latents `z_train` of training images with factor classes `classes_train`."""
    z_train = np.asarray(z_train, dtype=np.float64)
    classes_train = np.asarray(classes_train, dtype=np.int64)
    means, stds = [], []
    for latent, factor in enumerate(latent_factor):
        if factor == UNMATCHED:
            groups, n_groups = np.zeros(len(z_train), dtype=np.int64), 1
        else:
            groups, n_groups = classes_train[:, factor], int(sizes[factor])
        mean, std = _group_stats(z_train[:, latent], groups, n_groups)
        means.append(mean)
        stds.append(std)
    scale = z_train.std(axis=0) if len(z_train) else np.zeros(z_train.shape[1])
    return Oracle(np.asarray(latent_factor, dtype=np.int64), tuple(means), tuple(stds), scale)


def latent_distance(oracle: Oracle, z: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per image, the Euclidean norm over the matched latents of (z - oracle mean) / oracle std;
    NaN for an image without an oracle (an unseen value) and for all when no latent is matched."""
    m = oracle.matched
    if not m.any():
        return np.full(len(z), np.nan)
    mean, std = oracle.predict(classes)
    mean, std = mean[:, m], std[:, m]
    scale = oracle.scale[m]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (np.asarray(z, dtype=np.float64)[:, m] - mean) / np.maximum(std, STD_FLOOR * scale)
    r = np.where(scale > 0, r, 0.0)  # a dead latent: its encodings equal its oracle
    known = np.isfinite(mean).all(axis=1)
    return np.where(known, np.sqrt(np.sum(np.where(known[:, None], r, 0.0) ** 2, axis=1)), np.nan)


def _mean_or_nan(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def latent_error(oracle: Oracle, z_train, classes_train, z_test, classes_test) -> dict[str, float]:
    """`latent_error_test` (mean held-out distance / mean training distance), both mean distances,
    and the number of held-out images left out for want of an oracle (an unseen value)."""
    train = _mean_or_nan(latent_distance(oracle, z_train, classes_train))
    test_distance = latent_distance(oracle, z_test, classes_test)
    test = _mean_or_nan(test_distance)
    known = np.isfinite(oracle.predict(classes_test)[0]).all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(test) / train)
    return {
        "latent_error_test": ratio,
        "latent_error_train_distance": train,
        "latent_error_test_distance": test,
        "oracle_test_excluded": int((~known).sum()),
    }


def decode_losses(model, task, inputs, indices: np.ndarray, z: np.ndarray) -> np.ndarray | None:
    """Per-image reconstruction loss of decoded latents `z` against images `indices`; None for a
    task that cannot decode."""
    import torch

    from compgen.losses import reconstruction_per_image

    losses = []
    with torch.no_grad():
        for start in range(0, len(indices), inputs.batch):
            sl = slice(start, start + inputs.batch)
            logits = task.decode(model, torch.as_tensor(z[sl], dtype=torch.float32))
            if logits is None:
                return None
            losses.append(reconstruction_per_image(logits, inputs.images(indices[sl]), inputs.recon).numpy())
    return np.concatenate(losses) if losses else np.zeros(0)


NO_ORACLE = {
    "recon_train_oracle": float("nan"),
    "recon_test_oracle": float("nan"),
    "latent_error_test": float("nan"),
    "latent_error_train_distance": float("nan"),
    "latent_error_test_distance": float("nan"),
    "oracle_test_excluded": float("nan"),
}


def oracle_scores(
    model, task, inputs, oracle: Oracle | None, train_idx, z_train, test_idx, z_test
) -> dict[str, float]:
    """The oracle's scores on the analysis' training and held-out samples (see the module
    docstring); all NaN without an oracle (a task without a representation), the held-out ones NaN
    without held-out images (an all-data reference)."""
    if oracle is None:
        return dict(NO_ORACLE)
    grid = inputs.grid
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    scores = dict(NO_ORACLE)
    scores.update(latent_error(oracle, z_train, grid.classes(train_idx), z_test, grid.classes(test_idx)))
    for part, idx in (("train", train_idx), ("test", test_idx)):
        if not idx.size:
            continue  # an all-data reference: its held-out scores stay NaN
        mean, _ = oracle.predict(grid.classes(idx))
        known = np.isfinite(mean).all(axis=1)
        losses = decode_losses(model, task, inputs, idx[known], mean[known])
        if losses is not None:
            scores[f"recon_{part}_oracle"] = _mean_or_nan(losses)
    return scores


def expected_test_arrays(
    oracle: Oracle | None,
    test_classes: np.ndarray,
    factor_axes,
    latent_axes,
    seed: int,
    n_samples: int = N_ORACLE_SAMPLES,
) -> dict[str, np.ndarray]:
    """The original's "expected test distribution" on the latent plot: for each held-out
    combination of the two factors `factor_axes`, the oracle's mean and std of the two plotted
    latents `latent_axes`, and `n_samples` draws from N(mean, std²) per latent (seeded with
    [seed, ORACLE_STREAM]).

    A plotted latent matched to a factor outside the pair has, over a combination's held-out images,
    several oracle predictions: mean and std are then those of their mixture. A combination with an
    unseen value (no oracle) is left out. Keys: `oracle_combinations` (C x 2 classes),
    `oracle_mean` and `oracle_std` (C x 2), `oracle_samples` (C x n_samples x 2); C = 0 without
    an oracle or held-out images."""
    empty = {
        "oracle_combinations": np.zeros((0, 2), dtype=np.int64),
        "oracle_mean": np.zeros((0, 2)),
        "oracle_std": np.zeros((0, 2)),
        "oracle_samples": np.zeros((0, n_samples, 2)),
    }
    test_classes = np.asarray(test_classes, dtype=np.int64)
    if oracle is None or not len(test_classes):
        return empty
    fi, fj = (int(a) for a in factor_axes)
    la, lb = (int(a) for a in latent_axes)
    mean, std = oracle.predict(test_classes)
    mean, std = mean[:, [la, lb]], std[:, [la, lb]]
    known = np.isfinite(mean).all(axis=1) & np.isfinite(std).all(axis=1)
    combos, group = np.unique(test_classes[known][:, [fi, fj]], axis=0, return_inverse=True)
    if not len(combos):
        return empty
    group = group.reshape(-1)
    mean, std = mean[known], std[known]
    count = np.bincount(group, minlength=len(combos)).astype(np.float64)[:, None]
    per = lambda x: np.stack([np.bincount(group, weights=x[:, k], minlength=len(combos)) for k in (0, 1)], 1)  # noqa: E731
    mix_mean = per(mean) / count
    # Mixture variance: the mean of the variances plus the variance of the means (two passes).
    mix_std = np.sqrt(per(std**2 + (mean - mix_mean[group]) ** 2) / count)
    rng = np.random.default_rng([int(seed), ORACLE_STREAM])
    samples = mix_mean[:, None, :] + mix_std[:, None, :] * rng.standard_normal((len(combos), n_samples, 2))
    return {
        "oracle_combinations": combos.astype(np.int64),
        "oracle_mean": mix_mean,
        "oracle_std": mix_std,
        "oracle_samples": samples,
    }
