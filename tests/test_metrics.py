import math

import numpy as np
import pytest
from sklearn.linear_model import LassoCV

from compgen.metrics import representation
from compgen.metrics.representation import (
    dci,
    dci_from_importance,
    dci_iclr,
    dci_iclr_from_importance,
    dci_paper,
    dci_paper_from_importance,
    match_latents,
    mig,
    readout_r2,
)

N_CLASSES = (3, 6, 10)


def _factor_grid(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random samples of a small product grid: (classes N x 3, values N x 3 in [0, 1])."""
    rng = np.random.default_rng(seed)
    classes = np.stack([rng.integers(0, c, n) for c in N_CLASSES], axis=1)
    values = classes / (np.array(N_CLASSES) - 1)
    return classes, values


def _permuted_rescaled(values: np.ndarray, perm: list[int], seed: int = 1) -> np.ndarray:
    """Latents = factors reordered, rescaled and shifted, plus tiny noise and one dead latent."""
    rng = np.random.default_rng(seed)
    z = np.zeros((len(values), len(perm) + 1))
    for factor, latent in enumerate(perm):
        z[:, latent] = 3.0 * (factor + 1) * values[:, factor] - 2.0
    return z + 1e-3 * rng.standard_normal(z.shape)


def test_dci_perfect_representation_scores_near_one():
    _, values = _factor_grid()
    z = _permuted_rescaled(values, [2, 0, 1])
    scores = dci(z[:1000], values[:1000], z[1000:], values[1000:])
    assert scores["disentanglement"] > 0.9
    assert scores["completeness"] > 0.9
    assert scores["informativeness"] > 0.9
    assert np.asarray(scores["importance"]).shape == (4, 3)


def test_dci_hungarian_matching_recovers_permutation():
    _, values = _factor_grid()
    perm = [3, 0, 2]
    scores = dci(_permuted_rescaled(values, perm), values)
    assert scores["matching"] == perm


def test_match_latents_with_fewer_latents_than_factors():
    assert match_latents(np.array([[0.1, 0.9, 0.0]])) == [-1, 0, -1]


def test_dci_noise_carries_no_importance_or_information():
    # D and C on pure noise are not reliably ~0: Lasso keeps a few spurious coefficients of
    # size ~1/sqrt(N), and one tiny surviving importance is "perfectly disentangled" (as in
    # Eastwood & Williams' own code). What noise reliably lacks is importance and information.
    _, values = _factor_grid(5000)
    z = np.random.default_rng(2).standard_normal((len(values), 4))
    scores = dci(z[:4000], values[:4000], z[4000:], values[4000:])
    assert np.max(scores["importance"]) < 0.05
    assert abs(scores["informativeness"]) < 0.05


def test_dci_noise_latents_beside_a_perfect_code_do_not_count():
    # Noise latents next to a clean code get almost no importance, so D and C stay high.
    _, values = _factor_grid(5000)
    noise = np.random.default_rng(5).standard_normal((len(values), 3))
    clean = _permuted_rescaled(values, [0, 1, 2])
    scores = dci(np.hstack([clean, noise]), values)
    assert scores["disentanglement"] > 0.9 and scores["completeness"] > 0.9


def test_dci_mixed_factors_score_between():
    _, values = _factor_grid()
    rng = np.random.default_rng(3)
    f1, f2, f3 = values.T
    z = np.stack([f1 + f2, f1 - f2, f3], axis=1) + 1e-3 * rng.standard_normal((len(values), 3))
    mixed = dci(z, values)
    clean = dci(_permuted_rescaled(values, [0, 1, 2]), values)
    assert 0.2 < mixed["disentanglement"] < clean["disentanglement"]
    assert 0.2 < mixed["completeness"] < clean["completeness"]


def test_dci_dead_latents_and_constant_factor_give_no_nan():
    _, values = _factor_grid(300)
    values[:, 1] = 0.5  # a factor constant in training
    z = np.zeros((300, 3))  # every latent dead
    scores = dci(z, values)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert np.isfinite(scores[key])
    assert scores["disentanglement"] == 0.0 and scores["completeness"] == 0.0


def test_mig_perfect_noise_and_mixed():
    classes, values = _factor_grid()
    perfect = mig(_permuted_rescaled(values, [1, 2, 0]), classes)
    noise = mig(np.random.default_rng(4).standard_normal((len(values), 4)), classes)
    f1, f2, f3 = values.T
    mixed = mig(np.stack([f1 + f2, f1 - f2, f3], axis=1), classes)
    assert perfect > 0.9
    assert noise < 0.2
    assert noise < mixed < perfect


def test_mig_skips_single_valued_factor_and_constant_latent():
    classes, values = _factor_grid(500)
    classes[:, 0] = 0
    z = np.column_stack([np.zeros(500), _permuted_rescaled(values, [0, 1, 2])[:, :3]])
    assert np.isfinite(mig(z, classes))


def test_readout_r2_perfect_on_held_out_rows():
    classes, values = _factor_grid()
    raw = values * np.array([2.0, 10.0, 1.0]) + np.array([0.0, -5.0, 3.0])
    z = _permuted_rescaled(values, [2, 0, 1])
    test = raw[:, 0] > 1.0  # held out: top half of the first factor
    r2 = readout_r2(z[~test], raw[~test], z[test], raw[test])
    assert len(r2) == 3 and min(r2) > 0.99


def test_readout_r2_baseline_is_the_training_mean_on_the_scored_rows():
    # A constant latent predicts the training mean: R² 0 wherever the scored rows lie, where
    # the full grid's variance gave 1 on rows at the grid's mean and less elsewhere.
    z_train = np.zeros((4, 1))
    v_train = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert readout_r2(z_train, v_train, np.zeros((2, 1)), np.array([[0.0], [1.0]])) == pytest.approx([0.0])
    assert readout_r2(z_train, v_train, np.zeros((2, 1)), np.array([[1.0], [3.0]])) == pytest.approx([0.0])
    # Rows that all equal the training mean have nothing to explain.
    assert math.isnan(readout_r2(z_train, v_train, np.zeros((2, 1)), np.full((2, 1), 0.5))[0])
    # The readout v = z predicts 2 where the truth is 3; the training mean 0.5 misses by 2.5.
    z = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert readout_r2(z, v_train, np.array([[2.0]]), np.array([[3.0]])) == pytest.approx([1.0 - 1.0 / 2.5**2])


# A fixed importance matrix, latents x targets: factor 0, factor 1, then one Gaussian dummy target.
# Latent 0 serves factor 0 only, latent 1 both factors equally, latent 2 is dead.
IMPORTANCE = np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_dci_paper_by_hand_on_three_latents_and_two_factors():
    """The original's D and C (github:mmrl/lost-in-latent-space, src/analysis/metrics.py):

    `coefficient_entropy` (lines 227-251) takes, per latent, the distribution of its importance
    over all rows of the padded targets x latents matrix (3 = latent size, dummy included),
    entropy in log base 3 (`np.log(n_factors)`, n_factors = coefficients.shape[0] = 3):
      latent 0: p = (1, 0, 0)      -> d = 1,                weight 2/4
      latent 1: p = (1/2, 1/2, 0)  -> d = 1 - ln 2 / ln 3,  weight 2/4
      latent 2: p = 0 (sum EPS)    -> d = 1,                weight ~0
    D = 1 - ln 2 / (2 ln 3) = 0.68454 (`disentanglement`, line 251).
    `completeness` (lines 213-225), per factor over the 3 latents, log base 3 (coefficients.shape[0]
    of the factors x latents transpose):
      factor 0: p = (2/3, 1/3, 0) -> c = 1 - H = (2/3) ln 2 / ln 3 = 0.42062
      factor 1: p = (0, 1, 0)     -> c = 1
    and C is their plain mean, (1 + (2/3) ln 2 / ln 3) / 2 = 0.71031.
    """
    scores = dci_paper_from_importance(IMPORTANCE, n_factors=2)
    ratio = math.log(2) / math.log(3)
    assert scores["disentanglement"] == pytest.approx(1 - ratio / 2, abs=1e-9)
    assert scores["completeness_per_factor"] == pytest.approx([2 / 3 * ratio, 1.0], abs=1e-9)
    assert scores["completeness"] == pytest.approx((1 + 2 / 3 * ratio) / 2, abs=1e-9)


def test_dci_standard_by_hand_on_the_same_importance():
    """Eastwood & Williams on the factor columns only: D in log base K = 2, so latent 1, split
    evenly between the two factors, scores 0 (entropy 1) where the paper's base 3 gives it
    1 - ln 2 / ln 3 = 0.37: D = (2 * 1 + 2 * 0) / 4 = 0.5 against the paper's 0.685. C uses base
    L = 3 in both forms, so it is the same, 0.71031; a factor no latent predicts scores 0 here
    but 1 in the original (its EPS makes the entropy of an all-zero row 0, lines 217-225)."""
    disentanglement, completeness = dci_from_importance(IMPORTANCE[:, :2])
    ratio = math.log(2) / math.log(3)
    assert disentanglement == pytest.approx(0.5, abs=1e-12)
    assert completeness == pytest.approx((1 + 2 / 3 * ratio) / 2, abs=1e-12)
    ignored = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])  # factor 1: no importance
    assert dci_from_importance(ignored[:, :2])[1] == pytest.approx(0.5)
    assert dci_paper_from_importance(ignored, n_factors=2)["completeness"] == pytest.approx(1.0)


def _mixed_code(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two factors read out by three latents: two mixtures and one noise latent."""
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 5, (n, 2)).astype(np.float64)
    z = np.column_stack([v[:, 0] + 0.5 * v[:, 1], v[:, 1] - 0.2 * v[:, 0], rng.standard_normal(n)])
    return z + 0.3 * rng.standard_normal((n, 3)), v


def test_dci_paper_fit_is_the_originals_lasso_on_padded_targets():
    """The importance matrix is the original's `latent_variable_regression` (src/analysis/metrics.py
    lines 37-54): latents and factors z-scored with (x - mean) / (std + EPS) (lines 45-46), the
    factors padded with L - K standard-normal dummies (lines 48-49), one
    LassoCV(cv=5, selection="random", alphas=[0.02]) per target (`init_model`, lines 61-65) with
    the analysis script's method_args {'precompute': False, 'max_iter': 10000}
    (scripts/bin/analyse_models.sh). Here with the dummies and the coordinate order drawn from the
    seed, as dci_paper does."""
    z, v = _mixed_code()
    eps, seed = 1e-12, 3
    rng = np.random.default_rng(seed)
    x = (z - z.mean(axis=0)) / (z.std(axis=0) + eps)
    y = (v - v.mean(axis=0)) / (v.std(axis=0) + eps)
    y = np.concatenate([y, rng.standard_normal((len(y), 1))], axis=1)
    lasso_seed = int(rng.integers(2**31 - 1))
    original = np.stack(
        [
            LassoCV(
                cv=5,
                selection="random",
                alphas=[0.02],
                precompute=False,
                max_iter=10000,
                random_state=lasso_seed,
            )
            .fit(x, y_k)
            .coef_
            for y_k in y.T
        ]
    )  # targets x latents, as the original holds it
    scores = dci_paper(z, v, seed=seed)
    assert np.asarray(scores["importance"]) == pytest.approx(np.abs(original).T, abs=1e-12)
    by_hand = dci_paper_from_importance(np.abs(original).T, n_factors=2)
    assert scores["disentanglement"] == pytest.approx(by_hand["disentanglement"], abs=1e-12)
    assert scores["completeness"] == pytest.approx(by_hand["completeness"], abs=1e-12)


def test_dci_paper_and_standard_on_one_representation():
    z, v = _mixed_code()
    paper, standard = dci_paper(z[:300], v[:300], z[300:], v[300:]), dci(z[:300], v[:300], z[300:], v[300:])
    # The same Lasso on the factor columns; the paper's larger entropy base (and a noise latent
    # that a dummy target claims) raises D; C has the same base and differs by EPS only.
    assert np.asarray(paper["importance"])[:, :2] == pytest.approx(
        np.asarray(standard["importance"]), abs=1e-4
    )
    assert paper["disentanglement"] > standard["disentanglement"] + 0.1
    assert paper["completeness"] == pytest.approx(standard["completeness"], abs=1e-4)
    assert paper["informativeness"] == pytest.approx(standard["informativeness"], abs=1e-4)
    assert np.asarray(paper["importance"]).shape == (3, 3)
    assert paper["matching"] == standard["matching"] == [0, 1]
    # Seeded: the same call gives the same scores.
    assert dci_paper(z, v, seed=5) == dci_paper(z, v, seed=5)


def test_dci_paper_pads_to_the_larger_of_latents_and_factors():
    _, values = _factor_grid(600)
    z = _permuted_rescaled(values, [2, 0, 1])[:, :2]  # 2 latents for 3 factors: no dummies
    scores = dci_paper(z, values)
    assert np.asarray(scores["importance"]).shape == (2, 3)
    assert len(scores["completeness_per_factor"]) == 3 and scores["matching"].count(-1) == 1


def _lasso_max_iters(monkeypatch) -> list[int]:
    """Record the max_iter of every Lasso the metrics module builds."""
    seen = []

    class Recording(representation.Lasso):
        def fit(self, *args, **kwargs):
            seen.append(self.max_iter)
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(representation, "Lasso", Recording)
    return seen


def test_lasso_iterations_are_the_originals(monkeypatch):
    """NeurIPS: scripts/bin/analyse_models.sh passes analysis.method_args {'precompute': False,
    'max_iter': 10000} to every composition run's LassoCV. ICLR: DCIMetrics is built without
    regressor kwargs (src/analysis/metrics.py:84-91, scripts/analysis/disent.py:203), so sklearn's
    default max_iter=1000."""
    z, v = _mixed_code(120)
    seen = _lasso_max_iters(monkeypatch)
    dci_paper(z, v)
    assert seen == [10000] * 3  # two factors and one dummy target
    seen.clear()
    dci_iclr(z, v)
    assert seen == [1000] * 2


# Latent 0 serves factor 0 mostly, latent 1 factor 1 only, latent 2 is dead.
ICLR_IMPORTANCE = np.array([[3.0, 1.0], [0.0, 2.0], [0.0, 0.0]])


def test_dci_iclr_by_hand_on_three_latents_and_two_factors():
    """The ICLR code's D and C (github:mmrl/disent-and-gen, src/analysis/metrics.py), R_coeff
    latents x factors:

    `_disentanglement` (lines 118-136): per latent, p over the K = 2 factors, entropy in log base
    K (`np.log(self.n_factors)`, line 129), weight = (row sum + EPS) / total (lines 124-125):
      latent 0: p = (3/4, 1/4) -> d = 1 - H2(3/4) = (3/4) log2 3 - 1,  weight 4/6
      latent 1: p = (0, 1)     -> d = 1,                            weight 2/6
      latent 2: p = 0          -> d = 1,                            weight ~0
    D = (4/6)((3/4) log2 3 - 1) + 2/6 = 0.45915 (line 134).
    `_completness` (lines 138-152): per factor, p over the L = 3 latents, log base L
    (`R_coeff.shape[0]`, line 148):
      factor 0: p = (1, 0, 0)     -> c = 1
      factor 1: p = (1/3, 2/3, 0) -> c = 1 - (ln 3 - (2/3) ln 2) / ln 3 = (2/3) ln 2 / ln 3
    C = their plain mean (the original keeps the per-factor scores only).
    """
    scores = dci_iclr_from_importance(ICLR_IMPORTANCE)
    log2_3, ratio = math.log(3) / math.log(2), math.log(2) / math.log(3)
    assert scores["disentanglement_per_latent"] == pytest.approx([0.75 * log2_3 - 1, 1.0, 1.0], abs=1e-9)
    assert scores["disentanglement"] == pytest.approx(4 / 6 * (0.75 * log2_3 - 1) + 2 / 6, abs=1e-9)
    assert scores["completeness_per_factor"] == pytest.approx([1.0, 2 / 3 * ratio], abs=1e-9)
    assert scores["completeness"] == pytest.approx((1 + 2 / 3 * ratio) / 2, abs=1e-9)
    # D's base is K, not the NeurIPS code's padded latent size: on IMPORTANCE's factor columns a
    # latent split evenly between the two factors scores 0 (base 2), not 1 - ln 2 / ln 3 (base 3).
    assert dci_iclr_from_importance(IMPORTANCE[:, :2])["disentanglement"] == pytest.approx(0.5, abs=1e-9)
    # With EPS, a factor no latent predicts is complete (the standard form gives it 0).
    ignored = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert dci_iclr_from_importance(ignored)["completeness_per_factor"] == pytest.approx([1.0, 1.0])


def test_dci_iclr_fit_is_the_originals_lasso_on_centred_latents():
    """The ICLR code's `compute_score` (src/analysis/metrics.py:163-180): latents mean-centred only
    (line 170), factors z-scored with std + EPS (line 171), one LassoCV(cv=5, selection="random",
    alphas=[0.02]) per factor with sklearn's defaults (lines 84-91), importance = |coef_| (line
    112) as latents x factors (line 116). Here with the coordinate order drawn from the seed."""
    z, v = _mixed_code()
    eps, seed = 1e-12, 4
    x = z - z.mean(axis=0)
    y = (v - v.mean(axis=0)) / (v.std(axis=0) + eps)
    lasso_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
    original = np.stack(
        [
            np.abs(
                LassoCV(cv=5, selection="random", alphas=[0.02], random_state=lasso_seed).fit(x, y_k).coef_
            )
            for y_k in y.T
        ]
    ).T
    scores = dci_iclr(z, v, seed=seed)
    assert np.asarray(scores["importance"]) == pytest.approx(original, abs=1e-12)
    by_hand = dci_iclr_from_importance(original)
    assert scores["disentanglement"] == pytest.approx(by_hand["disentanglement"], abs=1e-12)
    assert scores["completeness"] == pytest.approx(by_hand["completeness"], abs=1e-12)
    assert dci_iclr(z, v, seed=seed) == scores  # seeded


def test_dci_iclr_moves_with_the_latents_scale_and_standard_dci_does_not():
    """Unscaled latents meet a fixed L1 penalty: shrinking them by 10 needs 10 times the
    coefficients, so the Lasso drops the small cross terms and D rises (0.23 to 0.35 here). The
    standard form z-scores the latents first and gives the same numbers at any scale."""
    z, v = _mixed_code()
    z_train, v_train, z_test, v_test = z[:300], v[:300], z[300:], v[300:]
    iclr = {c: dci_iclr(c * z_train, v_train, c * z_test, v_test) for c in (0.1, 1.0)}
    standard = {c: dci(c * z_train, v_train, c * z_test, v_test) for c in (0.1, 1.0)}
    assert iclr[0.1]["disentanglement"] > iclr[1.0]["disentanglement"] + 0.05
    assert abs(iclr[0.1]["completeness"] - iclr[1.0]["completeness"]) > 0.02
    for part in ("disentanglement", "completeness", "informativeness"):
        assert standard[0.1][part] == pytest.approx(standard[1.0][part], abs=1e-9)
    # The scale a model's latents come in is the original's, so a shift changes nothing.
    shifted = dci_iclr(z_train + 5.0, v_train, z_test + 5.0, v_test)
    assert shifted["disentanglement"] == pytest.approx(iclr[1.0]["disentanglement"], abs=1e-9)


def test_dci_iclr_gives_a_factor_constant_in_training_a_zero_column():
    """Line 114: a factor with one value gets zero importance (no fit); its held-out error is
    that of predicting the training value."""
    z, v = _mixed_code(200)
    v = np.column_stack([v, np.full(len(v), 2.0)])
    scores = dci_iclr(z, v)
    importance = np.asarray(scores["importance"])
    assert importance.shape == (3, 3) and not importance[:, 2].any() and importance[:, :2].any()
    assert scores["completeness_per_factor"][2] == pytest.approx(1.0)  # the EPS quirk
    assert scores["informativeness_per_factor"][2] == pytest.approx(1.0)  # no variance to miss


def test_r2_of_held_out_values_at_the_training_mean_is_undefined_not_a_huge_failure():
    """dSprites ell2tx: the held-out images are all ellipses (shape 2), the training mean of shape
    about 2.00; R² against that mean divides by almost nothing (a regressor read -76,505)."""
    rng = np.random.default_rng(0)
    train = rng.choice([1.0, 2.0, 3.0], size=(3000, 1), p=[0.4, 0.2, 0.4])
    test = np.full((500, 1), 2.0)
    predicted = test + rng.normal(0, 0.1, size=test.shape)
    mean, var = train.mean(axis=0), train.var(axis=0)
    assert abs(mean[0] - 2.0) < 0.05  # the baseline is tiny: (2 - mean)^2
    assert (
        representation.r2_against_training_mean(predicted, test, mean)[0] < -3
    )  # ill-conditioned without the guard
    assert np.isnan(representation.r2_against_training_mean(predicted, test, mean, var)[0])
    # Held-out values away from the training mean (sqr2tx: squares, shape 1) are scored as before.
    squares = np.full((500, 1), 1.0)
    guarded = representation.r2_against_training_mean(squares + 0.1, squares, mean, var)[0]
    assert guarded == pytest.approx(representation.r2_against_training_mean(squares + 0.1, squares, mean)[0])
    assert guarded == pytest.approx(1 - 0.01 / (1 - mean[0]) ** 2)
