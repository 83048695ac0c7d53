"""Representation scores: DCI (Eastwood & Williams, and the NeurIPS and ICLR codes' variants), MIG
and readout R².

Inputs are plain arrays: latents N x L (latent means), factors N x K (values or classes). Analysis
passes only the factors that vary within the split (see `compgen.analysis.evaluate.scored_factors`).
"""

from __future__ import annotations

import warnings

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


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """Standard (Eastwood & Williams) D and C of an L latents x K factors importance matrix.

    D: per latent, 1 - entropy of its importance over the K factors in log base K, weighted by
    the latent's share of the total importance. C: per factor, 1 - entropy over the L latents in
    log base L, plain average over factors. A latent or factor with no importance scores 0.
    """
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    n_latents, n_factors = importance.shape
    p_latent, latent_sums = _rowwise_probabilities(importance)
    d_per_latent = np.where(latent_sums > 0, 1.0 - _normalised_entropy(p_latent, n_factors), 0.0)
    total = latent_sums.sum()
    disentanglement = float((d_per_latent * latent_sums).sum() / total) if total > 0 else 0.0

    p_factor, factor_sums = _rowwise_probabilities(importance.T)
    c_per_factor = np.where(factor_sums > 0, 1.0 - _normalised_entropy(p_factor, n_latents), 0.0)
    return disentanglement, float(c_per_factor.mean())


def dci(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray | None = None,
    v_test: np.ndarray | None = None,
    alpha: float = 0.02,
) -> dict:
    """Disentanglement, completeness and informativeness from Lasso importances: the standard
    Eastwood & Williams form (scores `dci_*`; the NeurIPS code's is `dci_paper`, the ICLR code's
    `dci_iclr`).

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

    disentanglement, completeness = dci_from_importance(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(informativeness.mean()),
        "informativeness_per_factor": informativeness.tolist(),
        "importance": importance.tolist(),
        "matching": match_latents(importance),
    }


# The original's guard against division by zero (`EPS` in src/analysis/metrics.py:15, both codes).
PAPER_EPS = 1e-12
# Lasso iterations: the NeurIPS analysis passes max_iter=10000 (scripts/bin/analyse_models.sh);
# the ICLR code passes none, so sklearn's default 1000 (scripts/analysis/disent.py, metrics.py:84-91).
PAPER_MAX_ITER = 10000
ICLR_MAX_ITER = 1000


def dci_paper_from_importance(importance: np.ndarray, n_factors: int) -> dict:
    """D and C exactly as the original computed them from a padded importance matrix.

    `importance` is L latents x T targets (T = max(L, n_factors)): |Lasso coefficients|, the first
    `n_factors` columns for the factors, the rest for Gaussian dummy targets. In the original
    (github:mmrl/lost-in-latent-space, src/analysis/metrics.py) the matrix is targets x latents:

    - disentanglement (`coefficient_entropy`, lines 227-251): per latent j, p_jt = R_jt / (s_j + EPS)
      over all T targets, dummies included, with s_j = sum_t R_jt; d_j = 1 - H(p_j) with the
      entropy in log base T (`np.log(n_factors)` where n_factors = coefficients.shape[0], the
      number of padded rows = latent size) and log(p + EPS); D = sum_j d_j w_j with
      w_j = (s_j + EPS) / sum_j (s_j + EPS);
    - completeness (`completeness`, lines 213-225): per factor k (the first n_factors targets only),
      p_jk = R_jk / (sum_j R_jk + EPS), c_k = 1 - H(p_k) in log base L. The original stops at
      the per-factor scores (its model script writes them to completeness.csv); C here is their
      plain mean over factors, unweighted.

    The EPS terms make an all-zero row or column score 1 (entropy 0): a dead latent has weight
    ~0, but a factor no latent predicts has completeness 1 here, where the standard form gives 0.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    n_latents, n_targets = r.shape

    def one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
        if base <= 1:  # one outcome: no uncertainty (the original divides by log 1 = 0)
            return np.ones(p.shape[1])
        return 1.0 + (p * np.log(p + PAPER_EPS)).sum(axis=0) / np.log(base)

    # Targets x latents, as the original holds it: columns are latents.
    by_target = r.T
    sums_k = by_target.sum(axis=0, keepdims=True) + PAPER_EPS
    weights = (sums_k / sums_k.sum()).ravel()
    d_per_latent = one_minus_entropy(by_target / sums_k, n_targets)

    by_latent = r[:, :n_factors]  # latents x factors: columns are factors
    sums_d = by_latent.sum(axis=0) + PAPER_EPS
    c_per_factor = one_minus_entropy(by_latent / sums_d, n_latents)
    return {
        "disentanglement": float((d_per_latent * weights).sum()),
        "completeness": float(c_per_factor.mean()) if n_factors else float("nan"),
        "completeness_per_factor": c_per_factor.tolist(),
        "disentanglement_per_latent": d_per_latent.tolist(),
    }


def _random_order_lasso(x: np.ndarray, y: np.ndarray, alpha: float, seed: int, max_iter: int) -> Lasso:
    """The originals' refit of LassoCV with one alpha: a Lasso with random coordinate order, seeded
    here; a fit that stops at max_iter is the originals' setting, so its warning is not shown."""
    model = Lasso(alpha=alpha, selection="random", random_state=seed, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def dci_paper(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray | None = None,
    v_test: np.ndarray | None = None,
    alpha: float = 0.02,
    seed: int = 0,
) -> dict:
    """DCI as the paper computed it (github:mmrl/lost-in-latent-space, src/analysis/metrics.py).

    The fit (`latent_variable_regression`, lines 37-54, with `init_model`, lines 61-65):
    - a factor constant in the training data gets N(0, 1) noise added (lines 41-43); analysis
      passes only factors that vary within the split, so this only matters for direct calls;
    - latents and factors are z-scored on the training data, (x - mean) / (std + EPS), std with
      ddof=0 (lines 45-46); a constant latent becomes zeros here rather than 0/EPS;
    - the factors are padded with max(L - K, 0) standard-normal dummy targets to a square L x L
      problem (lines 48-49); the original draws them unseeded, here from `seed`;
    - one Lasso per target: LassoCV(cv=5, selection="random", alphas=[0.02]) with the analysis
      script's `method_args` {'precompute': False, 'max_iter': 10000} (scripts/bin/analyse_models.sh,
      every composition run; `disentanglement_metric` in scripts/ingredients/analysis.py:466-472
      passes them to LassoCV); with one alpha its refit on all data is
      Lasso(alpha=0.02, selection="random", max_iter=10000, tol=1e-4), fitted here directly,
      coordinate order from `seed`;
    - the original then matches latents to targets by Munkres on -|R| (lines 106-120), reorders
      the latents and refits with fresh dummies (lines 139-141). D and C do not depend on the
      order of the latents, so the refit only redraws the dummies: here one fit, and `matching`
      is that Hungarian matching on the padded matrix (latent per factor).
    D and C then follow `dci_paper_from_importance` (entropy base = latent size, C a plain mean
    over factors). The original computes no informativeness; `informativeness` here is the
    standard one on this fit: 1 - MSE of the factor Lasso predictions on the held-out data,
    z-scored with the training statistics, averaged over factors.
    """
    z_train, v_train = _as_2d(z_train), _as_2d(v_train)
    rng = np.random.default_rng(seed)
    n, n_latents = z_train.shape
    n_factors = v_train.shape[1]

    v_fit = v_train.copy()
    for k in range(n_factors):
        if np.unique(v_fit[:, k]).size == 1:
            v_fit[:, k] = v_fit[:, k] + rng.standard_normal(n)

    def zscore(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        return np.where(std > 0, (x - mean) / (std + PAPER_EPS), 0.0)

    zs_train, vs_train = zscore(z_train, z_train), zscore(v_fit, v_fit)
    n_targets = max(n_latents, n_factors)
    targets = np.hstack([vs_train, rng.standard_normal((n, n_targets - n_factors))])

    lasso_seed = int(rng.integers(2**31 - 1))
    importance = np.zeros((n_latents, n_targets))
    models = []
    for t in range(n_targets):
        model = _random_order_lasso(zs_train, targets[:, t], alpha, lasso_seed, PAPER_MAX_ITER)
        importance[:, t] = np.abs(model.coef_)
        models.append(model)

    if z_test is None or v_test is None:
        zs_eval, vs_eval = zs_train, vs_train
    else:
        zs_eval, vs_eval = zscore(_as_2d(z_test), z_train), zscore(_as_2d(v_test), v_fit)
    informativeness = np.array(
        [1.0 - float(np.mean((vs_eval[:, k] - models[k].predict(zs_eval)) ** 2)) for k in range(n_factors)]
    )
    scores = dci_paper_from_importance(importance, n_factors)
    return {
        **scores,
        "informativeness": float(informativeness.mean()) if n_factors else float("nan"),
        "informativeness_per_factor": informativeness.tolist(),
        "importance": importance.tolist(),
        "matching": match_latents(importance)[:n_factors],
    }


def dci_iclr_from_importance(importance: np.ndarray) -> dict:
    """D and C exactly as the ICLR 2021 code computed them (github:mmrl/disent-and-gen,
    src/analysis/metrics.py) from an L latents x K factors importance matrix, as it holds R_coeff:

    - disentanglement (`_disentanglement`, lines 118-136): per latent j, p_jk = R_jk / (s_j + EPS),
      s_j = sum_k R_jk; d_j = 1 - H(p_j), log base K (`np.log(self.n_factors)`) with log(p + EPS);
      D = sum_j d_j w_j, w_j = (s_j + EPS) / sum_j (s_j + EPS);
    - completeness (`_completness`, lines 138-152): per factor k, p_jk = R_jk / (sum_j R_jk + EPS),
      c_k = 1 - H(p_k), log base L (`R_coeff.shape[0]`). The original stops at the per-factor
      scores; C here is their plain mean, as for the NeurIPS form.

    These are the NeurIPS code's formulas without dummy columns (T = K), so the two share code.
    With EPS, a factor no latent predicts has completeness 1. One factor (log base 1) gives
    d_j = 1 here, where the original divides by zero.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    return dci_paper_from_importance(r, r.shape[1])


def dci_iclr(
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray | None = None,
    v_test: np.ndarray | None = None,
    alpha: float = 0.02,
    seed: int = 0,
    max_iter: int = ICLR_MAX_ITER,
) -> dict:
    """DCI as the ICLR 2021 code computed it (github:mmrl/disent-and-gen, src/analysis/metrics.py,
    class `DCIMetrics`; scores `dci_iclr_*`):

    - latents only mean-centred, on the data scored (the training set: scripts/analysis/disent.py:203,
      notebooks/generalisation.ipynb): `X - X.mean(axis=0)`, the scaling commented out (line 170);
      factors z-scored, (y - mean) / (std + EPS) (line 171). Scores therefore move with the
      latents' scale: the L1 penalty is fixed while the coefficients scale as 1 / scale;
    - no dummy targets: one fit per factor (lines 101-116), LassoCV(cv=5, selection="random",
      alphas=[0.02]) with sklearn's default max_iter=1000 (lines 84-91; no kwargs are passed);
      with one alpha its refit is Lasso(alpha=0.02, selection="random", max_iter=1000), fitted
      here directly with the coordinate order from `seed` (the original's is unseeded);
    - importance = |coef_| (line 112); a factor constant in the data gets a zero column (line 114,
      which hard-codes 10 latents); analysis passes only factors that vary within the split;
    - D and C: `dci_iclr_from_importance` (D's entropy in base K, C's in base L).
    The original computes no informativeness (line 178 is commented out; `_informativeness`,
    lines 154-161, could not run). `informativeness` here is the standard one on this fit: 1 - MSE
    of the factor predictions on the held-out data (latents centred with the training mean,
    factors z-scored with the training statistics), averaged over factors.
    """
    z_train, v_train = _as_2d(z_train), _as_2d(v_train)
    n_latents, n_factors = z_train.shape[1], v_train.shape[1]
    z_mean = z_train.mean(axis=0)
    v_mean, v_std = v_train.mean(axis=0), v_train.std(axis=0)
    v_scale = np.where(v_std > 0, v_std + PAPER_EPS, 1.0)  # constant: 0 / EPS = 0, as 0 / 1
    x_train, y_train = z_train - z_mean, (v_train - v_mean) / v_scale
    if z_test is None or v_test is None:
        x_eval, y_eval = x_train, y_train
    else:
        x_eval, y_eval = _as_2d(z_test) - z_mean, (_as_2d(v_test) - v_mean) / v_scale

    lasso_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
    importance = np.zeros((n_latents, n_factors))
    informativeness = np.zeros(n_factors)
    for k in range(n_factors):
        predicted = np.zeros(len(y_eval))  # a constant factor: predicted by its (zero) mean
        if np.unique(v_train[:, k]).size > 1:
            model = _random_order_lasso(x_train, y_train[:, k], alpha, lasso_seed, max_iter)
            importance[:, k] = np.abs(model.coef_)
            predicted = model.predict(x_eval)
        informativeness[k] = 1.0 - float(np.mean((y_eval[:, k] - predicted) ** 2))

    scores = dci_iclr_from_importance(importance)
    return {
        **scores,
        "informativeness": float(informativeness.mean()) if n_factors else float("nan"),
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


# A held-out set whose values sit within a tenth of a training standard deviation of the training
# mean (baseline MSE below 1 % of the training variance) leaves R² ill-conditioned: dSprites ell2tx
# holds out ellipses (shape 2) where the training mean of shape is 2.00, and a regressor's R² of
# shape there read -76,505. Such a column is undefined (NaN), not a failure of the readout.
MIN_BASELINE_SHARE = 0.01


def r2_against_training_mean(
    predicted: np.ndarray, truth: np.ndarray, train_mean: np.ndarray, train_var: np.ndarray | None = None
) -> list[float]:
    """Per column: 1 - MSE(predicted) / MSE(train_mean), both on the rows of `truth`.

    The baseline is the best prediction without information, the training rows' mean, scored on
    the same rows: latents that carry nothing score about 0 on training and held-out rows alike.
    A column whose rows all equal the training mean has nothing to explain and scores NaN, as does
    one whose baseline is below MIN_BASELINE_SHARE of the training variance `train_var` (given).
    """
    predicted, truth = _as_2d(predicted), _as_2d(truth)
    mse = np.mean((predicted - truth) ** 2, axis=0)
    baseline = np.mean((np.asarray(train_mean, dtype=np.float64) - truth) ** 2, axis=0)
    floor = 0.0 if train_var is None else MIN_BASELINE_SHARE * np.asarray(train_var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where((baseline > 0) & (baseline >= floor), 1.0 - mse / baseline, np.nan)
    return [float(x) for x in r2]


def readout_r2(
    z_train: np.ndarray, v_train: np.ndarray, z_test: np.ndarray, v_test: np.ndarray
) -> list[float]:
    """Per-factor R² of a linear map from latents to factor values, fitted on (z_train, v_train)
    and scored on (z_test, v_test) against the training rows' mean (`r2_against_training_mean`)."""
    z_train, v_train = _as_2d(z_train), _as_2d(v_train)
    z_test, v_test = _as_2d(z_test), _as_2d(v_test)
    model = LinearRegression().fit(z_train, v_train)
    return r2_against_training_mean(model.predict(z_test), v_test, v_train.mean(axis=0), v_train.var(axis=0))
