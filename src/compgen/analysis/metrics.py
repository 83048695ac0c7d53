"""Representation scores: DCI (Eastwood & Williams), MIG and linear readout R².

Inputs are plain arrays: latents N x L (latent means), factors N x K (values or classes).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression
from sklearn.metrics import mutual_info_score


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def _zscore_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # A constant column becomes all zeros instead of NaN; it then gets zero importance.
    std = np.where(std > 0, std, 1.0)
    return mean, std


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of p (rows sum to 1), in log base `base`; base 1 means one outcome."""
    if base <= 1:
        return np.zeros(p.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1) / np.log(base)


def _rowwise_probabilities(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise rows to sum to 1; all-zero rows stay zero. Returns (probabilities, row sums)."""
    sums = r.sum(axis=1)
    safe = np.where(sums > 0, sums, 1.0)
    return r / safe[:, None], sums


def dci(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray | None = None,
    v_test: np.ndarray | None = None,
    alpha: float = 0.02,
) -> dict:
    """Disentanglement, completeness and informativeness from Lasso importances.

    Importance R (latents x factors) = |Lasso coefficients| on training-set z-scored data.
    Informativeness = 1 - MSE of the z-scored predictions, i.e. R² with the variance taken
    from the training set (test-set variance can be zero on held-out combinations).
    """
    z_train, v_train = _as_2d(z_train), _as_2d(v_train)
    z_mean, z_std = _zscore_stats(z_train)
    v_mean, v_std = _zscore_stats(v_train)
    zs_train = (z_train - z_mean) / z_std
    vs_train = (v_train - v_mean) / v_std
    if z_test is None or v_test is None:
        zs_eval, vs_eval = zs_train, vs_train
    else:
        zs_eval = (_as_2d(z_test) - z_mean) / z_std
        vs_eval = (_as_2d(v_test) - v_mean) / v_std

    n_latents, n_factors = zs_train.shape[1], vs_train.shape[1]
    importance = np.zeros((n_latents, n_factors))
    informativeness = np.zeros(n_factors)
    for k in range(n_factors):
        model = Lasso(alpha=alpha, max_iter=10000)
        with warnings.catch_warnings():
            # A factor that is constant in training is all zeros: Lasso then warns and gives 0.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(zs_train, vs_train[:, k])
        importance[:, k] = np.abs(model.coef_)
        residual = vs_eval[:, k] - model.predict(zs_eval)
        informativeness[k] = 1.0 - float(np.mean(residual**2))

    # Disentanglement: per latent, 1 - entropy over factors, weighted by the latent's share.
    p_latent, latent_sums = _rowwise_probabilities(importance)
    d_per_latent = np.where(latent_sums > 0, 1.0 - _normalised_entropy(p_latent, n_factors), 0.0)
    total = latent_sums.sum()
    disentanglement = float((d_per_latent * latent_sums).sum() / total) if total > 0 else 0.0

    # Completeness: per factor, 1 - entropy over latents, plain average over factors.
    p_factor, factor_sums = _rowwise_probabilities(importance.T)
    c_per_factor = np.where(factor_sums > 0, 1.0 - _normalised_entropy(p_factor, n_latents), 0.0)
    completeness = float(c_per_factor.mean())

    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(informativeness.mean()),
        "informativeness_per_factor": informativeness.tolist(),
        "importance": importance.tolist(),
        "matching": match_latents(importance),
    }


def match_latents(importance: np.ndarray) -> list[int]:
    """Latent index per factor maximising total importance (Hungarian); -1 if none is left."""
    importance = np.asarray(importance, dtype=np.float64)
    rows, cols = linear_sum_assignment(-importance)
    matching = [-1] * importance.shape[1]
    for latent, factor in zip(rows, cols, strict=False):
        matching[int(factor)] = int(latent)
    return matching


def _histogram_discretise(x: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.histogram(x, bins=n_bins)[1]
    # Inner edges only, so bins are 0..n_bins-1 and the maximum falls in the last bin.
    return np.digitize(x, edges[1:-1])


def mig(z: np.ndarray, factor_classes: np.ndarray, n_bins: int = 20) -> float:
    """Mutual information gap: (MI of best latent - MI of second) / H(factor), mean over factors."""
    z, factor_classes = _as_2d(z), np.asarray(factor_classes)
    if factor_classes.ndim == 1:
        factor_classes = factor_classes[:, None]
    codes = [_histogram_discretise(z[:, j], n_bins) for j in range(z.shape[1])]
    gaps = []
    for k in range(factor_classes.shape[1]):
        labels = factor_classes[:, k]
        entropy = mutual_info_score(labels, labels)
        if entropy <= 0:
            continue
        mi = np.sort([mutual_info_score(labels, c) for c in codes])[::-1]
        second = mi[1] if len(mi) > 1 else 0.0
        gaps.append((mi[0] - second) / entropy)
    return float(np.mean(gaps)) if gaps else 0.0


def grid_value_stats(
    values_per_factor: Sequence[Sequence[float]],
) -> tuple[list[tuple[float, float]], list[float]]:
    """(min, max) and variance of each factor over a full product grid.

    On a product grid every value of a factor occurs equally often, so the variance over all
    grid points equals the variance over the factor's distinct values.
    """
    ranges, variances = [], []
    for values in values_per_factor:
        v = np.asarray(values, dtype=np.float64)
        ranges.append((float(v.min()), float(v.max())))
        variances.append(float(v.var()))
    return ranges, variances


def readout_r2(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray,
    v_test: np.ndarray,
    value_ranges: Sequence[tuple[float, float]],
    full_variance: Sequence[float],
) -> list[float]:
    """Per-factor R² = 1 - MSE_test / Var_full of a linear map from latents to factor values.

    Values are scaled to [0, 1] by each factor's full-grid (min, max); `full_variance` is the
    factor's variance over the full grid in the original units (see grid_value_stats).
    A factor with a single value has no variance to explain and scores NaN.
    """
    z_train, v_train = _as_2d(z_train), _as_2d(v_train)
    z_test, v_test = _as_2d(z_test), _as_2d(v_test)
    lo = np.array([r[0] for r in value_ranges], dtype=np.float64)
    span = np.array([r[1] - r[0] for r in value_ranges], dtype=np.float64)
    span = np.where(span > 0, span, 1.0)
    scaled_variance = np.asarray(full_variance, dtype=np.float64) / span**2
    y_train = (v_train - lo) / span
    y_test = (v_test - lo) / span

    model = LinearRegression().fit(z_train, y_train)
    mse = np.mean((model.predict(z_test) - y_test) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(scaled_variance > 0, 1.0 - mse / scaled_variance, np.nan)
    return [float(x) for x in r2]
