from pathlib import Path

import numpy as np
import pytest

from compgen.conditions import Condition, ConditionError, load_split, split_masks, write_split
from compgen.datasets import dataset_grid
from compgen.study import Study
from conftest import load_config

ROOT = Path(__file__).resolve().parents[1]
SQUARE = {"factor": "shape", "values": [1]}

# SPEC §3 rows for conditions not (yet) in the shipped configs: (dataset, condition, train, test).
EXTRA = [
    ("dsprites", Condition("ell2tx", "recomb2range", ({"factor": "shape", "values": [2]}, {"factor": "posX", "gt": 0.5})), 614_400, 122_880),
    ("dsprites", Condition("sqr2scl", "recomb2range", (SQUARE, {"factor": "scale", "gt": 0.75})), 614_400, 122_880),
    ("dsprites", Condition("sqr2tx_cent", "recomb2range", (SQUARE, {"factor": "posX", "gt": 0.25, "lt": 0.75})), 614_400, 122_880),
    ("dsprites", Condition("sqr2tx_rs", "recomb2range", (SQUARE, {"factor": "posX", "gt": 0.40, "lt": 0.90})), 622_080, 115_200),
    (
        "dsprites",
        Condition(
            "ell2tx+sparse_posX",
            "recomb2range",
            ({"factor": "shape", "values": [2]}, {"factor": "posX", "gt": 0.5}),
            modifiers=(("sparse_posX", ({"factor": "posX", "classes": [0, 7, 15, 23, 31]},)),),
        ),
        99_840,
        15_360,
    ),
    ("simple", Condition("midpos", "recomb2range", ({"factor": "x", "ge": 0.35, "le": 0.65}, {"factor": "y", "ge": 0.35, "le": 0.65}, {"factor": "shape", "classes": [1]})), 2_972, 100),
    ("simple", Condition("shape2px", "recomb2range", ({"factor": "x", "gt": 0.5}, {"factor": "y", "gt": 0.5}, {"factor": "shape", "classes": [1]})), 2_816, 256),
]

# SPEC §3 rows for the conditions declared in config/config.yaml.
DECLARED = {
    ("dsprites", "sqr2tx"): (614_400, 122_880),
    ("dsprites", "leave1out"): (731_472, 5_808),
    ("dsprites", "blank_side"): (368_640, 368_640),
    ("circles", "midpos"): (924, 100),
    ("circles", "shape2px"): (768, 256),
}


@pytest.fixture(scope="module")
def study():
    return Study(load_config(ROOT / "config/config.yaml"))


@pytest.mark.parametrize("key", sorted(DECLARED))
def test_shipped_conditions_have_the_spec_sizes(study, key):
    dataset, name = key
    train, test = split_masks(dataset_grid(dataset), study.condition(dataset, name))
    assert (train.sum(), test.sum()) == DECLARED[key]
    assert not (train & test).any()


@pytest.mark.parametrize("dataset,condition,n_train,n_test", EXTRA, ids=[c.name for _, c, _, _ in EXTRA])
def test_more_spec_conditions(dataset, condition, n_train, n_test):
    train, test = split_masks(dataset_grid(dataset), condition)
    assert (train.sum(), test.sum()) == (n_train, n_test)
    assert not (train & test).any()


def test_sqr2tx_holds_out_exactly_squares_on_the_right():
    grid = dataset_grid("dsprites")
    _, test = split_masks(grid, Condition("sqr2tx", "recomb2range", (SQUARE, {"factor": "posX", "gt": 0.5})))
    values = grid.values(grid.all_classes())
    expected = (values[:, 0] == 1) & (values[:, 3] > 0.5)
    assert np.array_equal(test, expected)


def test_filters_on_a_subsampled_grid_use_values_and_full_classes():
    grid = dataset_grid("dsprites", {"posX": 2, "posY": 2, "orientation": 4})
    cond = Condition("sparse", "recomb2range", (SQUARE, {"factor": "posX", "classes": [0, 2, 30]}))
    _, test = split_masks(grid, cond)
    # Full-grid classes 0, 2 and 30 survive subsampling by 2; 3 × 6 × 10 × 16 squares per posX value.
    assert test.sum() == 3 * 6 * 10 * 16
    assert split_masks(grid, Condition("r", "recomb2range", (SQUARE, {"factor": "posX", "gt": 0.5})))[1].sum() == 8 * 6 * 10 * 16


def test_empty_test_set_is_an_error_naming_the_condition():
    grid = dataset_grid("circles")
    with pytest.raises(ConditionError, match="'nowhere'.*test set is empty"):
        split_masks(grid, Condition("nowhere", "extrp", ({"factor": "x", "gt": 2.0},)))


def test_value_not_on_the_grid_is_named():
    with pytest.raises(ConditionError, match=r"factor 'shape' has no value \[4.0\]"):
        split_masks(dataset_grid("dsprites"), Condition("c", "recomb2range", ({"factor": "shape", "values": [4]},)))
    with pytest.raises(ConditionError, match="unknown factor 'colour'"):
        split_masks(dataset_grid("dsprites"), Condition("c", "recomb2range", ({"factor": "colour", "gt": 0},)))
    with pytest.raises(ConditionError, match="no class \\[32\\]"):
        split_masks(dataset_grid("circles"), Condition("c", "recomb2range", ({"factor": "x", "classes": [32]},)))


def test_written_split_roundtrips(tmp_path, study):
    grid = dataset_grid("circles")
    cond = study.condition("circles", "midpos")
    summary = write_split(grid, cond, "circles", tmp_path / "s.npz", tmp_path / "s.json")
    train, test = load_split(tmp_path / "s.npz")
    assert summary["n_train"] == train.size == 924 and summary["n_test"] == test.size == 100
    assert summary["n_total"] == 1024 and summary["main_factors"] == ["x", "y"]
    assert np.intersect1d(train, test).size == 0 and np.all(np.diff(train) > 0)
    assert Condition.from_params(cond.params()) == cond
