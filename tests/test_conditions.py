import numpy as np
import pytest
import yaml

from compgen.conditions import Condition, ConditionError, load_split, split_masks, write_split
from compgen.datasets import REGISTRY, dataset_grid
from compgen.study import Study
from conftest import ROOT, validated

LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())

# Every row of SPEC §3: (dataset, condition with modifiers) -> (train, test) on the full grid.
SPEC_SIZES = {
    ("dsprites", "sqr2tx"): (614_400, 122_880),
    ("dsprites", "ell2tx"): (614_400, 122_880),
    ("dsprites", "sqr2scl"): (614_400, 122_880),
    ("dsprites", "sqr2tx_cent"): (614_400, 122_880),
    ("dsprites", "sqr2tx_rs"): (622_080, 115_200),
    ("dsprites", "leave1out"): (731_472, 5_808),
    ("dsprites", "blank_side"): (368_640, 368_640),
    ("dsprites", "ell2tx+sparse_posX"): (99_840, 15_360),
    ("shapes3d", "shape2ohue"): (420_000, 60_000),
    ("shapes3d", "shape2ohue+even_ohues"): (216_000, 24_000),
    ("shapes3d", "shape2ohueq+half_ohues"): (204_000, 36_000),
    ("shapes3d", "shape2fhue"): (420_000, 60_000),
    ("shapes3d", "shape2orient"): (416_000, 64_000),
    ("shapes3d", "fhue2whue"): (422_400, 57_600),
    ("shapes3d", "ohue2whue"): (422_400, 57_600),
    ("shapes3d", "leave1out"): (479_928, 72),
    ("shapes3d", "shape2ohue_element"): (468_000, 12_000),
    ("shapes3d", "missing_fh"): (240_000, 240_000),
    ("shapes3d", "odd_ohue"): (240_000, 240_000),
    ("mpi3d", "cyl2vx+four_shapes+fix_hx"): (15_120, 2_160),
    ("mpi3d", "bkg2cyl+four_shapes+fix_hx"): (14_400, 2_880),
    ("mpi3d", "cyl2bkg+four_shapes+fix_hx"): (14_400, 2_880),
    ("mpi3d", "cyl2hx"): (950_400, 86_400),
    ("mpi3d", "horz_gt20"): (518_400, 492_480),
    ("mpi3d", "objc_gt3"): (691_200, 345_600),
    ("mpi3d", "leave1out"): (1_036_784, 16),
    ("circles", "midpos"): (924, 100),
    ("circles", "shape2px"): (768, 256),
    ("simple", "midpos"): (2_972, 100),
    ("simple", "shape2px"): (2_816, 256),
}


def library_condition(dataset: str, name: str) -> Condition:
    """A condition of the library as the Study builds it, on the dataset's full grid."""
    config = dict(LIBRARY, datasets={dataset: {}}, models={"vae": {"task": "unsupervised"}})
    config["experiments"] = [{"name": "e", "dataset": dataset, "conditions": [name], "models": ["vae"]}]
    return Study(validated(config)).condition(dataset, name)


@pytest.mark.parametrize("key", sorted(SPEC_SIZES), ids=["/".join(k) for k in sorted(SPEC_SIZES)])
def test_every_spec_condition_has_its_sizes_on_the_full_grid(key):
    dataset, name = key
    if dataset not in REGISTRY:
        pytest.skip(f"dataset {dataset} is not registered yet")
    train, test = split_masks(dataset_grid(dataset), library_condition(dataset, name))
    assert (int(train.sum()), int(test.sum())) == SPEC_SIZES[key]
    assert not (train & test).any()


def test_the_library_declares_exactly_the_spec_conditions():
    declared = {(d, c) for d, conds in LIBRARY["conditions"].items() for c in conds}
    assert declared == {(d, c.split("+")[0]) for d, c in SPEC_SIZES}


def test_sqr2tx_holds_out_exactly_squares_on_the_right():
    grid = dataset_grid("dsprites")
    _, test = split_masks(grid, library_condition("dsprites", "sqr2tx"))
    values = grid.values(grid.all_classes())
    assert np.array_equal(test, (values[:, 0] == 1) & (values[:, 3] > 0.5))


def test_filters_on_a_subsampled_grid_use_values_and_full_classes():
    grid = dataset_grid("dsprites", {"posX": 2, "posY": 2, "orientation": 4})
    square = {"factor": "shape", "values": [1]}
    sparse = Condition("sparse", "recomb2range", (square, {"factor": "posX", "classes": [0, 2, 30]}))
    _, test = split_masks(grid, sparse)
    # Full-grid classes 0, 2 and 30 survive subsampling by 2; 6 scales × 10 turns × 16 posY each.
    assert test.sum() == 3 * 6 * 10 * 16
    _, right = split_masks(grid, Condition("r", "recomb2range", (square, {"factor": "posX", "gt": 0.5})))
    assert right.sum() == 8 * 6 * 10 * 16


def test_empty_test_set_is_an_error_naming_the_condition():
    with pytest.raises(ConditionError, match="'nowhere'.*test set is empty"):
        split_masks(dataset_grid("circles"), Condition("nowhere", "extrp", ({"factor": "x", "gt": 2.0},)))


def test_values_factors_and_classes_not_on_the_grid_are_named():
    cases = [
        ("dsprites", {"factor": "shape", "values": [4]}, r"factor 'shape' has no value \[4.0\]"),
        ("dsprites", {"factor": "colour", "gt": 0}, "unknown factor 'colour'"),
        ("circles", {"factor": "x", "classes": [32]}, r"no class \[32\]"),
    ]
    for dataset, clause, message in cases:
        with pytest.raises(ConditionError, match=message):
            split_masks(dataset_grid(dataset), Condition("c", "recomb2range", (clause,)))


def test_written_split_roundtrips(tmp_path):
    grid = dataset_grid("circles")
    cond = library_condition("circles", "midpos")
    summary = write_split(grid, cond, "circles", tmp_path / "s.npz", tmp_path / "s.json")
    train, test = load_split(tmp_path / "s.npz")
    assert summary["n_train"] == train.size == 924 and summary["n_test"] == test.size == 100
    assert summary["n_total"] == 1024 and summary["main_factors"] == ["x", "y"]
    assert np.intersect1d(train, test).size == 0 and np.all(np.diff(train) > 0)
    assert Condition.from_params(cond.params()) == cond
