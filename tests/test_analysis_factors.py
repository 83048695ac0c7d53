"""Analysis scores only the factors that vary within the split.

MPI3D's `fix_hx` modifier keeps one horizontal arm position: the factor is constant on both sides
of the split, so a readout "predicts" it perfectly from any latents. It must get no R², and take
no part in DCI (where it would deflate completeness and inflate informativeness) or MIG.
"""

import numpy as np
import pytest
import yaml

from compgen.analysis.evaluate import factor_arrays, latent_scores, sample, scored_factors
from compgen.conditions import Condition, split_masks
from compgen.datasets import dataset_grid
from compgen.tasks import get_task
from conftest import ROOT

LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())
CONDITION = "cyl2vx+four_shapes+fix_hx"  # the NeurIPS MPI3D failure case


def mpi3d_split(name: str = CONDITION):
    """The MPI3D grid and the condition's train and test indices, built from the library."""
    base, *mods = name.split("+")
    spec = LIBRARY["conditions"]["mpi3d"][base]
    condition = Condition(
        name=name,
        family=spec["family"],
        test=tuple(spec["test"]),
        train=tuple(spec["train"]) if "train" in spec else None,
        modifiers=tuple((m, tuple(LIBRARY["modifiers"]["mpi3d"][m])) for m in mods),
    )
    grid = dataset_grid("mpi3d")
    train, test = split_masks(grid, condition)
    return grid, np.flatnonzero(train), np.flatnonzero(test)


def latents_scores(task_name: str, n_latents: int, seed: int = 0, scale: float = 1.0):
    """Scores of Gaussian latents (scale 0: constant latents, i.e. the training-mean predictor)."""
    grid, train, test = mpi3d_split()
    rng = np.random.default_rng(seed)
    train_s, test_s = sample(train, 1500, rng), sample(test, 600, rng)
    scored = scored_factors(grid, train, test)
    z_train = scale * rng.standard_normal((train_s.size, n_latents))
    z_test = scale * rng.standard_normal((test_s.size, n_latents))
    scores, fitted = latent_scores(
        get_task(task_name), grid, scored, z_train, z_test, grid.classes(train_s), grid.classes(test_s)
    )
    return grid, scored, scores, fitted


def test_fix_hx_leaves_the_horizontal_axis_unscored():
    grid, train, test = mpi3d_split()
    assert (train.size, test.size) == (15_120, 2_160)
    scored = scored_factors(grid, train, test)
    assert [grid.names[k] for k in scored] == [n for n in grid.names if n != "horizontal_axis"]
    # Without the modifier every factor varies.
    assert len(scored_factors(*mpi3d_split("cyl2vx+four_shapes"))) == len(grid.names)


def test_random_latents_get_no_readout_r2_on_a_constant_factor():
    grid, scored, scores, fitted = latents_scores("unsupervised", n_latents=10)
    r2 = scores["r2_test"]
    assert np.isnan(r2["horizontal_axis"])  # was 1.0 when taken from the grid
    assert "horizontal_axis" not in scores["factors_scored"] and len(scores["factors_scored"]) == 6
    assert scores["r2_test_mean"] == pytest.approx(np.mean([r2[grid.names[k]] for k in scored]))
    # R² is against the training mean on the scored rows: the mean predictor scores 0 on held-out
    # rows wherever they lie (object_shape: only cylinders), and random latents about as much.
    _, _, mean_predictor, _ = latents_scores("unsupervised", n_latents=10, scale=0.0)
    for k in scored:
        name = grid.names[k]
        assert mean_predictor["r2_test"][name] == pytest.approx(0.0, abs=1e-9), name
        assert mean_predictor["r2_train"][name] == pytest.approx(0.0, abs=1e-9), name
        assert abs(r2[name]) < 0.05, name
    for key in ("dci_informativeness", "dci_paper_informativeness", "dci_iclr_informativeness"):
        assert scores[key] < 0.1  # a constant factor would add an informativeness of 1
    assert np.isfinite(scores["mig"]) and np.isfinite(scores["dci_paper_disentanglement"])
    assert np.isfinite(scores["dci_iclr_disentanglement"]) and np.isfinite(scores["dci_iclr_completeness"])
    for key in ("importance", "importance_paper", "importance_iclr"):
        assert np.asarray(fitted[key]).shape == (10, 6), key


def test_supervised_regression_r2_skips_the_constant_factor():
    # A regressor's "latents" are its predictions of the 7 standardised factors.
    grid, scored, scores, _ = latents_scores("supervised", n_latents=7)
    for key in ("r2_test", "r2_train"):
        assert np.isnan(scores[key]["horizontal_axis"])
        assert all(scores[key][grid.names[k]] < 0.05 for k in scored)  # random "predictions"


def test_a_perfect_code_is_complete_over_the_scored_factors():
    """Each varying factor in its own latent (plus noise latents): completeness ~1, where the
    constant factor, given zero importance, used to cap it at 6/7."""
    grid, train, test = mpi3d_split()
    rng = np.random.default_rng(1)
    train_s, test_s = sample(train, 1500, rng), sample(test, 600, rng)
    scored = scored_factors(grid, train, test)

    def code(indices):
        values = grid.values(grid.classes(indices))[:, scored]
        return np.hstack([values, 0.01 * rng.standard_normal((indices.size, 4))])

    scores, fitted = latent_scores(
        get_task("unsupervised"),
        grid,
        scored,
        code(train_s),
        code(test_s),
        grid.classes(train_s),
        grid.classes(test_s),
    )
    assert scores["dci_completeness"] > 0.9 and scores["dci_paper_completeness"] > 0.9
    assert scores["dci_disentanglement"] > 0.9 and scores["dci_paper_disentanglement"] > 0.9
    assert scores["dci_iclr_completeness"] > 0.9 and scores["dci_iclr_disentanglement"] > 0.9
    assert fitted["matching"] == list(range(6))  # latent k codes the k-th scored factor

    arrays = factor_arrays(grid, ["object_shape", "vertical_axis"], fitted)
    for key in ("importance", "importance_paper", "importance_iclr"):
        assert arrays[key].shape == (10, 6), key
    # Each variant's matrix puts factor k's weight on latent k.
    assert (arrays["importance_iclr"][:6].argmax(axis=0) == np.arange(6)).all()
    assert list(arrays["importance_factors"]) == scores["factors_scored"]
    shape, vertical = scored.index(grid.axis("object_shape")), scored.index(grid.axis("vertical_axis"))
    assert list(arrays["latent_axes"]) == [shape, vertical]
    assert list(arrays["factor_axes"]) == [grid.axis("object_shape"), grid.axis("vertical_axis")]
