"""Did a model learn a factor? A kind-aware, chance-corrected readout from latent means.

A linear readout of a factor's value cannot say it: a hue is an angle (a perfect circular code
reads as R² 0.64: 0.9 lies next to 0.0), an unordered class has no value to regress, and a code
need not be linear. `fit_scores` reads each factor by its kind (compgen.grid.Factor.kind):

- ordinal: R² of the value;
- circular: R² of (cos θ, sin θ), θ = 2π·value/period, pooled over the two components (summed
  squared errors over summed squared deviations: the mean of the two R²s on a whole circle of
  values; a component constant on the rows, such as sin θ of hues {0, 0.5}, adds nothing);
- categorical: accuracy of the class.

The rows are split into two seeded halves: the readout is fitted on one and scored on the other,
so a readout that memorises its rows gains nothing. The score is chance-corrected,
`fit = (score - chance) / (1 - chance)`, chance being the score on the same scored rows of the
best constant fitted on the same half (the mean value, the mean (cos, sin), the commonest class);
for R² that is 1 - SSE(readout) / SSE(that mean). 0 is chance, 1 a perfect readout; NaN where the
factor is constant on the scored rows (1 - chance is 0), a half is empty or a latent not finite.

The readout is a small MLP (scikit-learn): one hidden layer of 64 ReLU units, fitted by L-BFGS
(deterministic given its seed; no validation split to carve out of small samples) with an L2
penalty alpha = sqrt(fitted rows), latents and regression targets standardised on the fitted half.
bench/fit_readout_choice.py chose it over k-nearest neighbours, an MLP trained by Adam with early
stopping, and gradient-boosted trees, on rows of the 3DShapes grid whose codes hold the answer:
random latents (fit should be 0), every factor exactly (hues as cos and sin, the shape's class in a
shuffled order as one latent), the same turned by a random rotation (entangled, just as
informative), and the same standardised plus N(0, 0.5²) noise. Mean over 5 seeds (halves and
initialisation) of the fit of floor_hue, shape and scale: for random latents the one furthest from
0 (and the largest standard deviation over seeds), for exact codes the lowest, for noisy codes all
three; seconds per factor on a shared 2-core CPU:

| rows | readout | random | exact | rotated | noisy | s |
|---|---|---|---|---|---|---|
| 2,000 | MLP (this) | -0.01 (sd 0.011) | 1.00 | 1.00 | 0.83 / 0.63 / 0.80 | 0.15-0.21 |
| 2,000 | kNN, k = 20 | -0.06 (sd 0.013) | 0.59 | 0.60 | 0.74 / 0.42 / 0.65 | 0.02-0.03 |
| 2,000 | MLP, Adam | -0.05 (sd 0.019) | 0.975 (sd 0.04) | 0.99 | 0.79 / 0.51 / 0.78 | 0.05-0.21 |
| 2,000 | boosted trees | -0.05 (sd 0.020) | 1.00 | 0.74 | 0.85 / 0.58 / 0.78 | 0.06-0.41 |
| 10,000 | MLP (this) | +0.01 (sd 0.007) | 1.00 | 1.00 | 0.83 / 0.64 / 0.81 | 0.43-0.89 |
| 10,000 | kNN, k = 20 | -0.05 (sd 0.008) | 0.79 | 0.79 | 0.80 / 0.50 / 0.73 | 0.27-0.99 |

kNN is cheap and stable but reads a whole latent space by distance: with six factors in ten
latents, neighbours differ in the factor read, so an exact code of the shape scores 0.59-0.79 and
would fail a verdict's threshold; standardising also blows collapsed latents up to full-size
noise (five N(0, 0.01²) latents: kNN's shape 0.50 on 2,000 rows, the MLP's 1.00); and its
random-latent bias is -1/k of R². Trees need a code aligned with the latents. The Adam MLP's early
stopping needs validation rows: on 200 rows it reads an exact shape code as 0.01. On 200 rows the
chosen MLP still reads exact codes at 0.97-0.99 and random latents at -0.04 / -0.04 / -0.13 (sd up
to 0.12): on average, few rows read noise below chance rather than above it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from compgen.grid import CATEGORICAL, CIRCULAR, Grid

HIDDEN_UNITS = 64
# The L2 penalty is alpha = PENALTY * sqrt(fitted rows); sklearn divides alpha by the rows, so
# the penalty per row falls as 1/sqrt(rows): firm on a few hundred rows, whose noise a free MLP
# would fit, and slight on thousands (see the module docstring).
PENALTY = 1.0
MAX_ITER = 500
# Keeps the halves apart from every other stream drawn from the same seed.
FIT_STREAM = 0xF17_4A1F
# 1 - chance below this: the factor is constant on the scored rows, there is nothing to read.
FLAT = 1e-9

# (target: "regressor" or "classifier", rows in the fitted half, seed) -> an unfitted estimator.
Readout = Callable[[str, int, int], object]


def mlp_readout(target: str, n_fit: int, seed: int):
    """One hidden layer of HIDDEN_UNITS ReLU units fitted by L-BFGS (deterministic, no validation
    split), latents and regression targets standardised on the fitted half."""
    mlp = dict(
        hidden_layer_sizes=(HIDDEN_UNITS,),
        solver="lbfgs",
        alpha=PENALTY * np.sqrt(n_fit),
        max_iter=MAX_ITER,
        random_state=seed,
    )
    if target == "classifier":
        return make_pipeline(StandardScaler(), MLPClassifier(**mlp))
    return make_pipeline(
        StandardScaler(), TransformedTargetRegressor(MLPRegressor(**mlp), transformer=StandardScaler())
    )


def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows to score on: a seeded permutation of range(n), cut in two."""
    order = np.random.default_rng([seed, FIT_STREAM]).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def kinds(grid: Grid) -> dict[str, str]:
    return {f.name: f.kind for f in grid.factors}


def factor_target(grid: Grid, classes: np.ndarray, axis: int) -> np.ndarray:
    """What the readout predicts for factor `axis`: the class (categorical), (cos θ, sin θ)
    (circular) or the value (ordinal), from factor classes N x K."""
    factor = grid.factors[axis]
    cls = np.asarray(classes, dtype=np.int64)[:, axis]
    if factor.kind == CATEGORICAL:
        return cls
    values = np.asarray(factor.values, dtype=np.float64)[cls]
    if factor.kind == CIRCULAR:
        angle = 2 * np.pi * values / factor.period
        return np.column_stack([np.cos(angle), np.sin(angle)])
    return values[:, None]


def chance_corrected(score: float, chance: float) -> float:
    return (score - chance) / (1.0 - chance) if 1.0 - chance > FLAT else float("nan")


def _pooled_r2(predicted: np.ndarray, truth: np.ndarray) -> float:
    """1 - summed squared error / summed squared deviation from the truth's mean, over columns."""
    total = float(((truth - truth.mean(axis=0)) ** 2).sum())
    if total <= 0:
        return float("nan")
    return 1.0 - float(((predicted - truth) ** 2).sum()) / total


def readout_fit(
    z_fit: np.ndarray,
    y_fit: np.ndarray,
    z_score: np.ndarray,
    y_score: np.ndarray,
    categorical: bool,
    seed: int = 0,
    readout: Readout = mlp_readout,
) -> float:
    """Chance-corrected score on (z_score, y_score) of a readout fitted on (z_fit, y_fit).

    y is a class per row (categorical) or a target matrix (N x 1 value, N x 2 cos and sin)."""
    if len(y_fit) == 0 or len(y_score) == 0:
        return float("nan")
    if categorical and np.unique(y_fit).size < 2:
        # One class to learn from: any classifier predicts it, which is the chance predictor.
        return chance_corrected(0.0, 0.0) if np.any(y_score != y_fit[0]) else float("nan")
    with warnings.catch_warnings():
        # L-BFGS may stop at MAX_ITER: the readout is what that budget reaches.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if categorical:
            model = readout("classifier", len(y_fit), seed).fit(z_fit, y_fit)
        else:
            # A single target as a vector, as sklearn's single-output estimators want it.
            target = y_fit[:, 0] if y_fit.shape[1] == 1 else y_fit
            model = readout("regressor", len(y_fit), seed).fit(z_fit, target)
    if categorical:
        score = float(np.mean(model.predict(z_score) == y_score))
        majority = np.bincount(y_fit).argmax()
        return chance_corrected(score, float(np.mean(y_score == majority)))
    predicted = np.asarray(model.predict(z_score), dtype=np.float64).reshape(y_score.shape)
    score = _pooled_r2(predicted, y_score)
    chance = _pooled_r2(np.broadcast_to(y_fit.mean(axis=0), y_score.shape), y_score)
    return chance_corrected(score, chance) if np.isfinite(score) else float("nan")


def fit_scores(
    z: np.ndarray,
    classes: np.ndarray,
    grid: Grid,
    axes: Sequence[int],
    seed: int = 0,
    readout: Readout = mlp_readout,
) -> dict[str, float]:
    """{factor name: fit} of the factors `axes` from latent means z (N x L) of N images whose
    factor classes are `classes` (N x K), on `seed`'s two halves of the rows."""
    z = np.asarray(z, dtype=np.float64)
    z = z[:, None] if z.ndim == 1 else z
    if not np.isfinite(z).all():  # a diverged model: nothing to read
        return {grid.names[k]: float("nan") for k in axes}
    fit_rows, score_rows = halves(len(z), seed)
    out = {}
    for k in axes:
        y = factor_target(grid, classes, k)
        categorical = grid.factors[k].kind == CATEGORICAL
        out[grid.names[k]] = readout_fit(
            z[fit_rows], y[fit_rows], z[score_rows], y[score_rows], categorical, seed, readout
        )
    return out
