import json

import numpy as np
import pytest
import yaml

from compgen.conditions import (
    Condition,
    ConditionError,
    clause_factors,
    load_split,
    main_factors,
    split_masks,
    split_summary,
    write_split,
)
from compgen.datasets import REGISTRY, dataset_grid
from compgen.metrics.excess import main_factor_scores
from compgen.study import Study, StudyError
from conftest import ROOT, validated

LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())

# The main conditions of the papers: (dataset, condition with modifiers) -> (train, test) on the full grid.
MAIN_SIZES = {
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


# The original's other conditions and modifiers (MAIN_SIZES has the main ones), counted here by hand
# on the full grids. dSprites: 3 shapes · 6 scales · 40 orientations · 32 posX (k/31) · 32 posY;
# 3DShapes: 10 floor · 10 wall · 10 object hues (0.0..0.9) · 8 scales · 4 shapes · 15 orientations;
# MPI3D: 6 colours · 6 shapes · 2 sizes · 3 heights · 3 backgrounds · 40 horizontal · 40 vertical.
DSPRITES_N, SHAPES3D_N, MPI3D_N = 3 * 6 * 40 * 32 * 32, 10 * 10 * 10 * 8 * 4 * 15, 6 * 6 * 2 * 3 * 3 * 40 * 40
# posX k/31 in [0.25, 0.75]: k = 8..23 (7.75 <= k <= 23.25), 16 values.
FLNK_TEST = 1 * 6 * 40 * 16 * 32
# Ellipses with posX k/31 <= 0.10 (k = 0..3) or >= 0.60 (k = 19..31): 4 + 13 = 17 values.
LS_TEST = 1 * 6 * 40 * (4 + 13) * 32
# Capsules with 0.25 < object hue < 0.75: 0.3..0.7, 5 hues.
SHAPE2OHUE_FLNK_TEST = 10 * 10 * 5 * 8 * 1 * 15
# Even wall and floor hue classes: 5 · 5 of the 100 (wall, floor) pairs.
EVEN_WNF = 5 * 5 * 10 * 8 * 4 * 15
# fhue2whue on even wall and floor hues: floor {0.8} (of 0, .2, .4, .6, .8) with wall {0, .2, .4}.
FHUE2WHUE_EVEN_WNF_TEST = 1 * 3 * 10 * 8 * 4 * 15
# Object hue 0.8 or 0.9 (2) with wall hue 0.0, 0.1 or 0.2 (3), any floor hue.
OHUE_WHUE2FHUE_TEST = 10 * 3 * 2 * 8 * 4 * 15
# Red objects (1 of 6 colours) at horizontal 0..19 (20 of 40).
REDOC2HX_TEST = 1 * 6 * 2 * 3 * 3 * 20 * 40
# four_shapes: shapes 1, 2, 4, 5; lhalf_hx: horizontal 0..19; fix_hx: horizontal 0; even_vx: the
# odd vertical classes 1..39 (20), of which 1..19 (10) are below 20; cyl2vx: cylinder, vertical < 20.
FOUR_LHALF = 6 * 4 * 2 * 3 * 3 * 20 * 40
CYL2VX_FOUR_LHALF_TEST = 6 * 1 * 2 * 3 * 3 * 20 * 20
FOUR_FIX_EVENVX = 6 * 4 * 2 * 3 * 3 * 1 * 20
CYL2VX_FOUR_FIX_EVENVX_TEST = 6 * 1 * 2 * 3 * 3 * 1 * 10
FOUR_LHALF_EVENVX = 6 * 4 * 2 * 3 * 3 * 20 * 20
CYL2VX_FOUR_LHALF_EVENVX_TEST = 6 * 1 * 2 * 3 * 3 * 20 * 10

ORIGINAL_SIZES = {
    ("dsprites", "sqr2tx_flnk"): (DSPRITES_N - FLNK_TEST, FLNK_TEST),
    ("dsprites", "sqr2tx_ls"): (DSPRITES_N - LS_TEST, LS_TEST),
    ("shapes3d", "shape2ohue_flnk"): (SHAPES3D_N - SHAPE2OHUE_FLNK_TEST, SHAPE2OHUE_FLNK_TEST),
    ("shapes3d", "odd_wnf_hue"): (EVEN_WNF, SHAPES3D_N - EVEN_WNF),
    ("shapes3d", "fhue2whue+even_wnf_hues"): (EVEN_WNF - FHUE2WHUE_EVEN_WNF_TEST, FHUE2WHUE_EVEN_WNF_TEST),
    ("shapes3d", "ohue_whue2fhue"): (SHAPES3D_N - OHUE_WHUE2FHUE_TEST, OHUE_WHUE2FHUE_TEST),
    ("mpi3d", "redoc2hx"): (MPI3D_N - REDOC2HX_TEST, REDOC2HX_TEST),
    ("mpi3d", "objc2horz"): (MPI3D_N - REDOC2HX_TEST, REDOC2HX_TEST),
    ("mpi3d", "cyl2vx+four_shapes+lhalf_hx"): (FOUR_LHALF - CYL2VX_FOUR_LHALF_TEST, CYL2VX_FOUR_LHALF_TEST),
    ("mpi3d", "cyl2vx+four_shapes+fix_hx+even_vx"): (
        FOUR_FIX_EVENVX - CYL2VX_FOUR_FIX_EVENVX_TEST,
        CYL2VX_FOUR_FIX_EVENVX_TEST,
    ),
    ("mpi3d", "cyl2vx+four_shapes+lhalf_hx+even_vx"): (
        FOUR_LHALF_EVENVX - CYL2VX_FOUR_LHALF_EVENVX_TEST,
        CYL2VX_FOUR_LHALF_EVENVX_TEST,
    ),
}

# The all-data reference `none`, alone and with the modifiers the original trained it with.
NONE_SIZES = {
    ("dsprites", "none"): DSPRITES_N,
    ("dsprites", "none+sparse_posX"): 3 * 6 * 40 * 5 * 32,
    ("shapes3d", "none"): SHAPES3D_N,
    ("shapes3d", "none+even_ohues"): 10 * 10 * 5 * 8 * 4 * 15,
    ("shapes3d", "none+half_ohues"): 10 * 10 * 5 * 8 * 4 * 15,
    ("shapes3d", "none+even_wnf_hues"): EVEN_WNF,
    ("mpi3d", "none"): MPI3D_N,
    ("mpi3d", "none+four_shapes"): 6 * 4 * 2 * 3 * 3 * 40 * 40,
    ("mpi3d", "none+four_shapes+fix_hx"): 6 * 4 * 2 * 3 * 3 * 1 * 40,
    ("mpi3d", "none+four_shapes+lhalf_hx"): FOUR_LHALF,
    ("mpi3d", "none+lhalf_hx"): 6 * 6 * 2 * 3 * 3 * 20 * 40,
    ("mpi3d", "none+even_vx"): 6 * 6 * 2 * 3 * 3 * 40 * 20,
    ("circles", "none"): 32 * 32,
    ("simple", "none"): 32 * 32 * 3,
}

# The iid controls (family iid; tests/test_iid.py): a random sample sized like the paper's conditions.
IID_SIZES = {
    ("dsprites", "iid_like_sqr2tx"): MAIN_SIZES[("dsprites", "sqr2tx")],
    ("shapes3d", "iid_like_shape2ohue"): MAIN_SIZES[("shapes3d", "shape2ohue")],
    ("shapes3d", "iid_like_fhue2whue"): MAIN_SIZES[("shapes3d", "fhue2whue")],
    ("mpi3d", "iid_like_cyl2vx+four_shapes+fix_hx"): MAIN_SIZES[("mpi3d", "cyl2vx+four_shapes+fix_hx")],
    ("mpi3d", "iid_like_cyl2bkg+four_shapes+fix_hx"): MAIN_SIZES[("mpi3d", "cyl2bkg+four_shapes+fix_hx")],
}


def library_condition(dataset: str, name: str) -> Condition:
    """A condition of the library as the Study builds it, on the dataset's full grid."""
    config = dict(LIBRARY, datasets={dataset: {}}, models={"vae": {"task": "unsupervised"}})
    config["experiments"] = [{"name": "e", "dataset": dataset, "conditions": [name], "models": ["vae"]}]
    return Study(validated(config)).condition(dataset, name)


@pytest.mark.parametrize("key", sorted(MAIN_SIZES), ids=["/".join(k) for k in sorted(MAIN_SIZES)])
def test_every_spec_condition_has_its_sizes_on_the_full_grid(key):
    dataset, name = key
    if dataset not in REGISTRY:
        pytest.skip(f"dataset {dataset} is not registered yet")
    train, test = split_masks(dataset_grid(dataset), library_condition(dataset, name))
    assert (int(train.sum()), int(test.sum())) == MAIN_SIZES[key]
    assert not (train & test).any()


@pytest.mark.parametrize("key", sorted(ORIGINAL_SIZES), ids=["/".join(k) for k in sorted(ORIGINAL_SIZES)])
def test_every_other_condition_of_the_original_has_its_sizes_on_the_full_grid(key):
    dataset, name = key
    train, test = split_masks(dataset_grid(dataset), library_condition(dataset, name))
    assert (int(train.sum()), int(test.sum())) == ORIGINAL_SIZES[key]
    assert not (train & test).any()


def test_the_library_declares_exactly_the_spec_conditions_those_of_the_original_and_none():
    sized = [*MAIN_SIZES, *ORIGINAL_SIZES, *NONE_SIZES, *IID_SIZES]
    declared = {(d, c) for d, conds in LIBRARY["conditions"].items() for c in conds}
    listed = {(d, c.split("+")[0]) for d, c in sized}
    assert declared == listed
    modifiers = {(d, m) for d, mods in LIBRARY["modifiers"].items() for m in mods}
    used = {(d, m) for d, c in sized for m in c.split("+")[1:]}
    assert modifiers == used


def test_none_is_one_definition_merged_into_every_dataset():
    text = (ROOT / "config/conditions.yaml").read_text()
    assert text.count("family: none") == 1 and text.count("none: {<<: *none}") == len(REGISTRY) - 1
    nones = [conds["none"] for conds in LIBRARY["conditions"].values()]
    assert len(nones) == len(REGISTRY) and all(n == nones[0] for n in nones)
    assert nones[0]["family"] == "none" and nones[0]["test"] == []
    # Distinct mappings: a study config that overrides one dataset's `none` (Snakemake merges
    # configs in place) must not change the others.
    assert len({id(n) for n in nones}) == len(nones)


def _original_masks(dataset: str):
    """The original's masks (mmrl/lost-in-latent-space datasplits.py), on factor values and classes."""
    grid = dataset_grid(dataset)
    classes = grid.all_classes()
    values = grid.values(classes)
    return grid, values, classes


def test_flanked_and_left_shifted_sqr2tx_hold_out_what_the_original_masks_do():
    grid, v, _ = _original_masks("dsprites")
    shp, tx = v[:, 0], v[:, 3]
    _, flnk = split_masks(grid, library_condition("dsprites", "sqr2tx_flnk"))
    assert np.array_equal(flnk, ~((shp != 1) | (tx < 0.25) | (tx > 0.75)))  # flanked_sqr2tx test
    _, ls = split_masks(grid, library_condition("dsprites", "sqr2tx_ls"))
    assert np.array_equal(ls, ~((shp != 2) | ((tx > 0.10) & (tx < 0.60))))  # lshift_sqrt2tx test


def test_odd_wnf_hue_trains_on_even_wall_and_floor_hues_and_tests_the_rest():
    grid, _, c = _original_masks("shapes3d")
    train, test = split_masks(grid, library_condition("shapes3d", "odd_wnf_hue"))
    even = (c[:, 1] % 2 == 0) & (c[:, 0] % 2 == 0)  # exclude_odd_wnf_hues on wall and floor
    assert np.array_equal(train, even) and np.array_equal(test, ~even)


def test_even_vx_keeps_the_odd_vertical_classes_as_the_original():
    grid, _, c = _original_masks("mpi3d")
    train, test = split_masks(grid, library_condition("mpi3d", "none+even_vx"))
    assert np.array_equal(train, c[:, 6] % 2 == 1) and not test.any()


@pytest.mark.parametrize("key", sorted(NONE_SIZES), ids=["/".join(k) for k in sorted(NONE_SIZES)])
def test_none_trains_on_the_whole_modified_grid_and_holds_nothing_out(key):
    dataset, name = key
    grid = dataset_grid(dataset)
    cond = library_condition(dataset, name)
    train, test = split_masks(grid, cond)
    assert (int(train.sum()), int(test.sum())) == (NONE_SIZES[key], 0)
    summary, train_idx, test_idx = split_summary(grid, cond, dataset)
    assert summary["n_test"] == 0 and summary["n_train"] == NONE_SIZES[key] == train_idx.size
    assert summary["n_excluded"] == grid.n - NONE_SIZES[key] and test_idx.dtype == np.int64
    assert summary["definition"]["train"] == "the whole grid (after modifiers); nothing held out"


def test_none_split_roundtrips_with_an_empty_test_set(tmp_path):
    grid = dataset_grid("shapes3d")
    cond = library_condition("shapes3d", "none+even_ohues")
    summary = write_split(grid, cond, "shapes3d", tmp_path / "s.npz", tmp_path / "s.json")
    with np.load(tmp_path / "s.npz") as f:
        assert f["test"].dtype == np.int64 and f["test"].shape == (0,)
    recorded = json.loads((tmp_path / "s.json").read_text())
    assert recorded["n_test"] == 0 and recorded["n_train"] == 240_000 == summary["n_train"]
    train, test = load_split(tmp_path / "s.npz", grid, recorded)  # checked against the grid
    assert test.size == 0 and train.size == 240_000 and np.all(np.diff(train) > 0)
    assert np.array_equal(train, np.flatnonzero(grid.all_classes()[:, 2] % 2 == 0))
    assert Condition.from_params(cond.params()) == cond


def test_a_none_condition_with_a_test_or_train_filter_is_an_error():
    grid = dataset_grid("circles")
    for cond in (
        Condition("none", "none", ({"factor": "x", "gt": 0.5},)),
        Condition("none", "none", (), train=({"factor": "x", "gt": 0.5},)),
    ):
        with pytest.raises(ConditionError, match="'none'.*holds nothing out"):
            split_masks(grid, cond)
    everything_dropped = Condition("none+m", "none", (), modifiers=(("m", ({"factor": "x", "gt": 2.0},)),))
    with pytest.raises(ConditionError, match="modifiers leave no image"):
        split_masks(grid, everything_dropped)


def test_an_ordinary_condition_with_no_test_filter_is_an_error():
    with pytest.raises(ConditionError, match="'c'.*test filter is empty.*'none'"):
        split_masks(dataset_grid("circles"), Condition("c", "recomb2range", ()))


def test_the_schema_takes_test_empty_for_none_only():
    def config(conditions):
        return {
            "datasets": {"circles": {}},
            "conditions": {"circles": conditions},
            "models": {"vae": {"task": "unsupervised"}},
            "experiments": [{"name": "e", "dataset": "circles", "conditions": ["c"], "models": ["vae"]}],
        }

    corner = [{"factor": "x", "gt": 0.5}]
    with pytest.raises(StudyError, match=r"conditions\.circles\.c\.test"):
        validated(config({"c": {"family": "none", "test": corner}}))
    with pytest.raises(StudyError, match=r"conditions\.circles\.c\.test"):
        validated(config({"c": {"family": "recomb2range", "test": []}}))
    study = Study(validated(config({"c": {"family": "none", "test": []}})))
    train, test = split_masks(study.grid("circles"), study.condition("circles", "c"))
    assert train.all() and not test.any()


def test_any_clauses_hold_where_one_alternative_holds():
    grid = dataset_grid("circles")
    x, y = grid.values(grid.all_classes()).T
    either = {"any": [{"factor": "x", "lt": 0.25}, {"factor": "y", "gt": 0.75}]}
    _, test = split_masks(grid, Condition("c", "recomb2range", (either,)))
    assert np.array_equal(test, (x < 0.25) | (y > 0.75))
    assert test.sum() == 32 * 32 - (32 - 8) * (32 - 8)  # x < 0.25: k = 0..7; y > 0.75: k = 24..31
    nested = {
        "any": [
            {"factor": "x", "lt": 0.25},
            {"any": [{"factor": "y", "gt": 0.75}, {"factor": "x", "ge": 0.9}]},
        ]
    }
    _, test = split_masks(grid, Condition("n", "recomb2range", (nested,)))
    assert np.array_equal(test, (x < 0.25) | (y > 0.75) | (x >= 0.9 - 1e-6))


def test_misused_clauses_are_errors_naming_the_clause():
    cases = [
        (
            {"any": [{"factor": "x", "gt": 0.5}], "factor": "y"},
            r"test\[0\]: a clause with 'any' takes no other key",
        ),
        ({"any": [{"factor": "x", "gt": 0.5}]}, r"'any' takes a list of at least two clauses"),
        (
            {"any": [{"factor": "x", "gt": 0.5}, {"factor": "z", "gt": 0}]},
            r"test\[0\]\.any\[1\]: unknown factor 'z'",
        ),
        ({"factor": "x", "or": 0.5}, r"unknown clause key 'or'"),
    ]
    for clause, message in cases:
        with pytest.raises(ConditionError, match=message):
            split_masks(dataset_grid("circles"), Condition("c", "recomb2range", (clause,)))


def test_the_schema_takes_any_alone_with_two_or_more_clauses():
    def config(test):
        return {
            "datasets": {"circles": {}},
            "conditions": {"circles": {"c": {"family": "recomb2range", "test": test}}},
            "models": {"vae": {"task": "unsupervised"}},
            "experiments": [{"name": "e", "dataset": "circles", "conditions": ["c"], "models": ["vae"]}],
        }

    two = [{"factor": "x", "lt": 0.25}, {"factor": "y", "gt": 0.75}]
    validated(config([{"any": two}]))
    for bad in ([{"any": two, "factor": "x"}], [{"any": two[:1]}], [{"factor": "x"}], [{"gt": 0.5}]):
        with pytest.raises(StudyError, match=r"conditions\.circles\.c\.test\[0\]"):
            validated(config(bad))


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
    assert summary["n_total"] == 1024 and summary["main_factors"] == ["y", "x"]
    assert np.intersect1d(train, test).size == 0 and np.all(np.diff(train) > 0)
    assert Condition.from_params(cond.params()) == cond


# The original's latent plots (mmrl/lost-in-latent-space scripts/bin/analyse_models.sh): each
# analysed condition's analysis.factor1 (the plot's y-axis and colour) and factor2 (its x-axis).
ORIGINAL_LATENT_PLOT_FACTORS = {
    ("dsprites", "sqr2tx"): ("shape", "posX"),  # composition runs 4, 5, 84, 85
    ("shapes3d", "shape2ohue"): ("shape", "object_hue"),  # 13, 14, 92, 93; 23, 24, 98, 99
    ("shapes3d", "shape2orient"): ("shape", "orientation"),  # 158, 159
    ("shapes3d", "fhue2whue"): ("floor_hue", "wall_hue"),  # 34, 35, 90, 91
    ("mpi3d", "cyl2vx"): ("object_shape", "vertical_axis"),  # 74, 76, 77
    ("mpi3d", "cyl2bkg"): ("background_color", "object_shape"),  # 149, 150 (main text)
    ("mpi3d", "bkg2cyl"): ("background_color", "object_shape"),  # 78-81 (commented out)
    ("circles", "midpos"): ("y", "x"),  # 117, 118
    ("circles", "shape2px"): ("y", "x"),
    ("simple", "midpos"): ("shape", "x"),  # 122, 128
    ("simple", "shape2px"): ("shape", "x"),
}


@pytest.mark.parametrize(
    "key",
    sorted(ORIGINAL_LATENT_PLOT_FACTORS),
    ids=["/".join(k) for k in sorted(ORIGINAL_LATENT_PLOT_FACTORS)],
)
def test_latent_plot_factors_are_the_originals(key):
    dataset, name = key
    assert (
        main_factors(dataset_grid(dataset), library_condition(dataset, name))
        == ORIGINAL_LATENT_PLOT_FACTORS[key]
    )


def test_factor_order_changes_no_main_factor_score():
    """cyl2bkg's factors (a claimed condition) are the test filter's two in the original's order:
    the same set, and every score of the condition's two factors is the same in either order."""
    condition = library_condition("mpi3d", "cyl2bkg")
    named = {name for clause in condition.test for name in clause_factors(clause)}
    assert set(condition.factors) == named == {"object_shape", "background_color"}
    scores = {
        "r2_train": {"object_shape": 0.91, "background_color": 0.97},
        "r2_test": {"object_shape": 0.42, "background_color": 0.88},
        "fit_train": {"object_shape": 0.95, "background_color": 0.83},
    }
    first = main_factor_scores(scores, condition.factors)
    second = main_factor_scores(scores, tuple(reversed(condition.factors)))
    assert first.pop("main_factors") == list(reversed(second.pop("main_factors")))
    assert first == second
