import numpy as np
import pytest

from compgen.analysis.metrics import dci, grid_value_stats, match_latents, mig, readout_r2

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


def test_readout_r2_perfect_and_full_variance():
    classes, values = _factor_grid()
    raw = values * np.array([2.0, 10.0, 1.0]) + np.array([0.0, -5.0, 3.0])
    grid = [
        np.linspace(0, 1, c) * s + o
        for c, s, o in zip(N_CLASSES, (2.0, 10.0, 1.0), (0.0, -5.0, 3.0), strict=False)
    ]
    ranges, variances = grid_value_stats(grid)
    z = _permuted_rescaled(values, [2, 0, 1])
    test = raw[:, 0] > 1.0  # held out: top half of the first factor
    r2 = readout_r2(z[~test], raw[~test], z[test], raw[test], ranges, variances)
    assert len(r2) == 3 and min(r2) > 0.99


def test_readout_r2_uses_full_grid_variance_not_test_variance():
    # A constant prediction of the grid mean on test points at the grid mean scores 1 exactly
    # under full-grid variance, though test-set variance would be zero.
    z_train = np.zeros((4, 1))
    v_train = np.array([[0.0], [1.0], [0.0], [1.0]])
    r2 = readout_r2(z_train, v_train, np.zeros((2, 1)), np.full((2, 1), 0.5), [(0.0, 1.0)], [0.25])
    assert r2 == pytest.approx([1.0])
    r2_off = readout_r2(z_train, v_train, np.zeros((2, 1)), np.ones((2, 1)), [(0.0, 1.0)], [0.25])
    assert r2_off == pytest.approx([1.0 - 0.25 / 0.25])
