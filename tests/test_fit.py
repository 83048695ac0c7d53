"""The kind-aware, chance-corrected fit (compgen.metrics.fit) and readout R² against the training
mean: latents that carry nothing score about 0, latents that hold a factor about 1, whatever
the factor's kind and however the code is laid out."""

import math

import numpy as np
import pytest
import yaml

from compgen.analysis.evaluate import latent_scores, sample, scored_factors
from compgen.conditions import Condition, main_factors, split_masks
from compgen.datasets import dataset_grid
from compgen.grid import CATEGORICAL, CIRCULAR, ORDINAL
from compgen.metrics import representation
from compgen.metrics.excess import main_factor_scores
from compgen.metrics.fit import factor_target, fit_scores, halves
from compgen.tasks import get_task
from conftest import ROOT

LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())
N = 2000


def rows(dataset: str, n: int = N, seed: int = 0):
    grid = dataset_grid(dataset)
    rng = np.random.default_rng(seed)
    return grid, grid.classes(rng.choice(grid.n, size=n, replace=False)), rng


def one_fit(z, classes, grid, name, seed=0) -> float:
    return fit_scores(z, classes, grid, [grid.axis(name)], seed=seed)[name]


@pytest.mark.parametrize(
    "dataset,name,kind",
    [
        ("dsprites", "posX", ORDINAL),
        ("dsprites", "orientation", CIRCULAR),
        ("shapes3d", "object_hue", CIRCULAR),
        ("mpi3d", "background_color", CATEGORICAL),
        ("mpi3d", "object_color", CATEGORICAL),
    ],
)
def test_random_latents_fit_at_chance(dataset, name, kind):
    grid, classes, rng = rows(dataset)
    assert grid.factor(name).kind == kind
    for seed in range(2):
        assert abs(one_fit(rng.standard_normal((N, 10)), classes, grid, name, seed)) < 0.05


def test_a_perfect_ordinal_code_fits_among_other_factors():
    grid, classes, rng = rows("dsprites")
    values = grid.values(classes)
    z = np.column_stack([values, rng.standard_normal((N, 5))])  # every factor's value, 5 noise latents
    assert one_fit(z, classes, grid, "posX") > 0.97
    assert one_fit(z, classes, grid, "scale") > 0.97


def test_a_perfect_circular_code_of_a_hue_fits_where_a_linear_readout_cannot():
    """(cos, sin) of the hue angle holds the hue exactly, but no linear map of it gives the hue's
    value back (0.9 lies next to 0.0): the linear R² stays near 0.64."""
    grid, classes, rng = rows("shapes3d")
    k = grid.axis("object_hue")
    angle = 2 * np.pi * grid.values(classes)[:, k]
    z = np.column_stack([np.cos(angle), np.sin(angle), rng.standard_normal((N, 4))])
    assert one_fit(z, classes, grid, "object_hue") > 0.97
    linear = representation.readout_r2(z, grid.values(classes)[:, k], z, grid.values(classes)[:, k])[0]
    assert 0.55 < linear < 0.7


def test_a_perfect_circular_code_of_dsprites_orientation_fits():
    grid, classes, rng = rows("dsprites")
    angle = grid.values(classes)[:, grid.axis("orientation")]  # radians, period 2π
    z = np.column_stack([np.cos(angle), np.sin(angle), rng.standard_normal((N, 3))])
    assert one_fit(z, classes, grid, "orientation") > 0.97


def test_unordered_classes_fit_one_hot_or_as_a_shuffled_index():
    grid, classes, rng = rows("mpi3d")
    k = grid.axis("object_color")
    one_hot = np.eye(6)[classes[:, k]]
    assert (
        one_fit(np.column_stack([one_hot, rng.standard_normal((N, 3))]), classes, grid, "object_color") > 0.97
    )
    # One latent holding the class number in a shuffled order: no linear readout of the class
    # value reads it, a non-linear one does.
    index = rng.permutation(6)[classes[:, k]].astype(np.float64)
    z = np.column_stack([index, rng.standard_normal((N, 3))])
    assert one_fit(z, classes, grid, "object_color") > 0.97
    value = grid.values(classes)[:, k]
    assert representation.readout_r2(z, value, z, value)[0] < 0.5


def test_an_entangled_code_fits_as_well_as_a_disentangled_one():
    """Every factor of 3DShapes held exactly, then turned by a random rotation of the latents."""
    grid, classes, rng = rows("shapes3d")
    values = grid.values(classes)
    columns = []
    for k, f in enumerate(grid.factors):
        if f.kind == CIRCULAR:
            columns += [np.cos(2 * np.pi * values[:, k]), np.sin(2 * np.pi * values[:, k])]
        else:
            columns.append(values[:, k])
    code = np.column_stack(columns)
    code = (code - code.mean(0)) / code.std(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((code.shape[1], code.shape[1])))
    fits = fit_scores(code @ rotation, classes, grid, range(len(grid.factors)))
    assert min(fits.values()) > 0.97, fits


def test_constant_latents_score_exactly_chance_and_constant_factors_nan():
    grid, classes, _ = rows("mpi3d", n=400)
    fits = fit_scores(np.zeros((400, 4)), classes, grid, range(len(grid.factors)))
    assert fits == pytest.approx(dict.fromkeys(grid.names, 0.0), abs=1e-3)
    z = np.random.default_rng(0).standard_normal((400, 4))
    fixed = classes.copy()
    fixed[:, grid.axis("object_size")] = 1
    assert math.isnan(one_fit(z, fixed, grid, "object_size"))
    # The fitted half holds one class: any classifier predicts it, which is chance.
    fixed[halves(400, seed=0)[0], grid.axis("object_color")] = 2
    assert one_fit(z, fixed, grid, "object_color") == 0.0


def test_the_fit_is_seeded_and_scores_rows_it_was_not_fitted_on():
    fit_rows, score_rows = halves(101, seed=3)
    assert fit_rows.size == 50 and score_rows.size == 51
    assert np.array_equal(np.sort(np.concatenate([fit_rows, score_rows])), np.arange(101))
    assert not np.array_equal(halves(101, seed=4)[0], fit_rows)
    grid, classes, rng = rows("dsprites", n=600)
    z = grid.values(classes) + 0.3 * rng.standard_normal((600, 5))
    assert fit_scores(z, classes, grid, [3, 4], seed=1) == fit_scores(z, classes, grid, [3, 4], seed=1)
    z[0, 0] = np.nan  # a diverged model has nothing to read
    assert all(math.isnan(v) for v in fit_scores(z, classes, grid, [3, 4]).values())


def test_targets_follow_the_kind():
    grid, classes, _ = rows("shapes3d", n=50)
    hue = factor_target(grid, classes, grid.axis("floor_hue"))
    assert hue.shape == (50, 2) and np.allclose((hue**2).sum(1), 1.0)
    assert np.array_equal(factor_target(grid, classes, grid.axis("shape")), classes[:, grid.axis("shape")])
    assert factor_target(grid, classes, grid.axis("scale")).shape == (50, 1)


def test_readout_r2_is_against_the_training_mean_on_the_scored_rows():
    rng = np.random.default_rng(0)
    z_train, v_train = rng.standard_normal((500, 2)), rng.uniform(0, 1, (500, 1))
    # Held-out rows far from the training mean: the mean's own error is the baseline.
    z_test, v_test = rng.standard_normal((200, 2)), rng.uniform(2, 3, (200, 1))
    r2 = representation.readout_r2(z_train, v_train, z_test, v_test)[0]
    mse = np.mean((v_train.mean() - v_test) ** 2)
    predicted = np.c_[z_test, np.ones(200)] @ np.linalg.lstsq(np.c_[z_train, np.ones(500)], v_train)[0]
    assert r2 == pytest.approx(1 - np.mean((predicted - v_test) ** 2) / mse)
    assert abs(r2) < 0.02  # no information: about the mean's error, wherever the rows lie
    assert representation.readout_r2(v_train, v_train, v_test, v_test)[0] == pytest.approx(1.0)


FAILURES = [("dsprites", "sqr2tx"), ("shapes3d", "shape2ohue"), ("mpi3d", "cyl2vx+four_shapes+fix_hx")]


@pytest.mark.parametrize("dataset,name", FAILURES)
def test_random_latents_show_no_r2_drop_and_no_fit_on_the_failure_conditions(dataset, name):
    """With the paper preset's samples (10,000 training and 5,000 held-out images), latents that
    carry nothing score about 0 on both sides, so their R² drop is about 0 too (against the
    full grid's variance, the held-out rows alone made a drop)."""
    base, *mods = name.split("+")
    spec = LIBRARY["conditions"][dataset][base]
    condition = Condition(
        name=name,
        family=spec["family"],
        test=tuple(spec["test"]),
        train=tuple(spec["train"]) if "train" in spec else None,
        modifiers=tuple((m, tuple(LIBRARY["modifiers"][dataset][m])) for m in mods),
        factors=tuple(spec.get("factors", ())),
    )
    grid = dataset_grid(dataset)
    train_mask, test_mask = split_masks(grid, condition)
    train, test = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    rng = np.random.default_rng(0)
    train_s, test_s = sample(train, 10_000, rng), sample(test, 5_000, rng)
    scored = scored_factors(grid, train, test)
    scores, _ = latent_scores(
        get_task("unsupervised"),
        grid,
        scored,
        rng.standard_normal((train_s.size, 10)),
        rng.standard_normal((test_s.size, 10)),
        grid.classes(train_s),
        grid.classes(test_s),
    )
    main = main_factor_scores(scores, main_factors(grid, condition))
    assert abs(main["r2_drop_main"]) < 0.02 and abs(main["r2_train_main"]) < 0.01, main
    assert set(main["fit_main"]) == set(main["main_factors"])
    assert all(abs(v) < 0.05 for v in main["fit_main"].values()), main
    assert main["fit_main_min"] == min(main["fit_main"].values())
    assert scores["fit_kinds"] == {f.name: f.kind for f in grid.factors}
    unscored = set(grid.names) - {grid.names[k] for k in scored}
    assert all(math.isnan(scores["fit_train"][f]) for f in unscored)


def test_a_task_without_a_representation_has_no_fit():
    grid, classes, rng = rows("circles", n=200)
    scored = [0, 1]
    scores, _ = latent_scores(
        get_task("gt_decoder"),
        grid,
        scored,
        rng.standard_normal((200, 2)),
        np.zeros((0, 2)),
        classes,
        classes[:0],
    )
    assert all(math.isnan(v) for v in scores["fit_train"].values())
    assert scores["fit_kinds"] == {"x": ORDINAL, "y": ORDINAL}
    main = main_factor_scores(scores, ["x", "y"])
    assert math.isnan(main["fit_main_min"]) and all(math.isnan(v) for v in main["fit_main"].values())
    assert math.isnan(main_factor_scores({}, ["x", "y"])["fit_main_min"])  # scores written before the fit
