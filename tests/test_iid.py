"""Family iid, the overfitting control: a seeded random sample held out, sized like a condition's
test set on the same (modified) grid; its held-out images are of trained combinations."""

import copy
import itertools
import json
import math

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml

from compgen.conditions import Condition, ConditionError, main_factors, split_masks, write_split
from compgen.conditions.figure import plot_split
from compgen.datasets import dataset_grid
from compgen.study import Study, StudyError
from conftest import run_snakemake, validated
from test_conditions import IID_SIZES, LIBRARY, library_condition

MIDPOS = ({"factor": "x", "ge": 0.35, "le": 0.65}, {"factor": "y", "ge": 0.35, "le": 0.65})


def _iid(name="iid", test=(), **keys) -> Condition:
    return Condition(name, "iid", test, **keys)


def _kept(grid, condition) -> np.ndarray:
    """The images a condition's modifiers leave."""
    none = Condition("none", "none", (), modifiers=condition.modifiers)
    return split_masks(grid, none)[0]


@pytest.mark.parametrize("key", sorted(IID_SIZES), ids=["/".join(k) for k in sorted(IID_SIZES)])
def test_library_controls_hold_out_as_many_as_their_like_condition_from_its_images(key):
    dataset, name = key
    grid = dataset_grid(dataset)
    cond = library_condition(dataset, name)
    base, *mods = name.split("+")
    assert cond.like.name == "+".join([LIBRARY["conditions"][dataset][base]["like"], *mods])
    train, test = split_masks(grid, cond)
    like_train, like_test = split_masks(grid, library_condition(dataset, cond.like.name))
    assert (int(train.sum()), int(test.sum())) == IID_SIZES[key] == (like_train.sum(), like_test.sum())
    # Disjoint, and together the restricted image set the like condition splits.
    assert not (train & test).any()
    assert np.array_equal(train | test, like_train | like_test)
    assert np.array_equal(train | test, _kept(grid, cond))
    assert not np.array_equal(test, like_test)


def test_fraction_holds_out_that_share_of_the_modified_grid_rounded_half_up():
    grid = dataset_grid("circles")  # 1,024 images
    for fraction, expected in ((0.1, 102), (2.5 / 1024, 3), (1.5 / 1024, 2), (0.5, 512)):
        train, test = split_masks(grid, _iid(fraction=fraction))
        assert (int(test.sum()), int(train.sum())) == (expected, 1024 - expected), fraction
    left = (("left", ({"factor": "x", "le": 0.5},)),)  # 16 of 32 x positions: 512 images
    cond = _iid("iid+left", fraction=0.1, modifiers=left)
    train, test = split_masks(grid, cond)
    kept = _kept(grid, cond)
    assert int(kept.sum()) == 512 and int(test.sum()) == 51  # 51.2
    assert np.array_equal(train | test, kept) and not (train & test).any()


def test_the_split_is_a_pure_function_of_the_definition():
    grid = dataset_grid("shapes3d", {"orientation": 5, "scale": 2})
    like = Condition("shape2ohue", "recomb2range", ({"factor": "shape", "classes": [3]},))
    cond = _iid("iid_a", like=like, seed=4)
    first = split_masks(grid, cond)
    for again in (cond, Condition.from_params(cond.params()), _iid("iid_b", like=like, seed=4)):
        for a, b in zip(first, split_masks(grid, again), strict=True):
            assert np.array_equal(a, b)
    assert Condition.from_params(cond.params()) == cond
    other_train, other_test = split_masks(grid, _iid("iid_a", like=like, seed=5))
    assert other_test.sum() == first[1].sum() and not np.array_equal(other_test, first[1])
    # Other conditions' params are as before: the iid keys do not change their splits' rerun triggers.
    assert set(like.params()) == {"name", "family", "test", "train", "modifiers", "factors", "description"}


def test_conditions_that_mix_iid_and_filters_are_errors():
    grid = dataset_grid("circles")
    midpos = Condition("midpos", "recomb2range", MIDPOS)
    left = (("left", ({"factor": "x", "le": 0.5},)),)
    cases = [
        (_iid(like=midpos, test=MIDPOS), "no test or train filter"),
        (Condition("midpos", "recomb2range", MIDPOS, fraction=0.1), "belong to family 'iid'"),
        (_iid("iid+left", like=midpos, modifiers=left), "shrinks the grid otherwise"),
        (_iid(fraction=1.0), "not between 0 and 1"),
    ]
    for cond, message in cases:
        with pytest.raises(ConditionError, match=message):
            split_masks(grid, cond)


def _pairs(classes: np.ndarray, i: int, j: int, size_j: int) -> np.ndarray:
    return np.unique(classes[:, i] * size_j + classes[:, j])


def test_held_out_images_are_of_combinations_trained_on():
    """3DShapes: every pair of factor values of an iid held-out image is trained on, the
    (shape, object hue) pairs included, which shape2ohue holds out entirely. On Circles an image is
    its own (x, y) pair, so an iid sample holds out unseen pairs: the grid is too small for this."""
    grid = dataset_grid("shapes3d")
    classes = grid.all_classes()
    train, test = split_masks(grid, library_condition("shapes3d", "iid_like_shape2ohue"))
    for i, j in itertools.combinations(range(len(grid.sizes)), 2):
        held = _pairs(classes[test], i, j, grid.sizes[j])
        assert np.isin(held, _pairs(classes[train], i, j, grid.sizes[j])).all(), grid.names[i : j + 1]
    shape, hue = grid.axis("shape"), grid.axis("object_hue")
    held = _pairs(classes[test], shape, hue, grid.sizes[hue])
    assert held.size == 4 * 10  # every (shape, hue) pair is sampled, and trained on
    like_train, like_test = split_masks(grid, library_condition("shapes3d", "shape2ohue"))
    unseen = _pairs(classes[like_test], shape, hue, grid.sizes[hue])
    assert not np.isin(unseen, _pairs(classes[like_train], shape, hue, grid.sizes[hue])).any()

    circles = dataset_grid("circles")
    c = circles.all_classes()
    train, test = split_masks(circles, _iid(like=Condition("midpos", "recomb2range", MIDPOS)))
    assert not np.isin(_pairs(c[test], 0, 1, 32), _pairs(c[train], 0, 1, 32)).any()


def test_main_factors_are_the_like_conditions_unless_declared():
    grid = dataset_grid("shapes3d", {"orientation": 5, "scale": 2})
    like = Condition("shape2ohue", "recomb2range", ({"factor": "shape", "classes": [3]},))
    like = Condition("shape2ohue", "recomb2range", (*like.test, {"factor": "object_hue", "ge": 0.5}))
    assert main_factors(grid, _iid(like=like)) == ("shape", "object_hue")
    declared = _iid(like=like, factors=("scale", "orientation"))
    assert main_factors(grid, declared) == ("scale", "orientation")
    assert main_factors(grid, _iid(fraction=0.1)) == ("floor_hue", "wall_hue")  # the grid's first two
    full = dataset_grid("mpi3d")
    mpi = library_condition("mpi3d", "iid_like_cyl2vx+four_shapes+fix_hx")
    assert main_factors(full, mpi) == ("object_shape", "vertical_axis")


def test_the_split_figure_draws_an_iid_split_as_mixed_cells(tmp_path):
    grid = dataset_grid("shapes3d", {"orientation": 5, "scale": 4})
    like = Condition("shape2ohue", "recomb2range", ({"factor": "shape", "classes": [3]},))
    cond = _iid("iid_like_shape2ohue", like=like, seed=1)
    summary = write_split(grid, cond, "shapes3d", tmp_path / "s.npz", tmp_path / "s.json")
    assert summary["n_test"] == grid.n // 4 and summary["main_factors"] == ["shape", "floor_hue"]
    assert summary["definition"]["like"]["name"] == "shape2ohue" and summary["definition"]["seed"] == 1
    plot_split(grid, tmp_path / "s.npz", ("shape", "object_hue"), tmp_path / "split.png", cond.name)
    image = mpimg.imread(tmp_path / "split.png")
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)
    mixed = np.all(np.abs(image[..., :3] - np.array([0xC9, 0x94, 0xC7]) / 255) < 0.02, axis=-1)
    assert red.sum() == 0 and mixed.sum() > 2000  # no cell held out whole; every cell mixed


# -- in a study ---------------------------------------------------------------------------------

MPI3D_STUDY = {
    "datasets": {"mpi3d": {}},
    "models": {"vae_fixint": {"task": "composition", "op": "fixint"}},
    "experiments": [
        {
            "name": "mpi3d",
            "dataset": "mpi3d",
            "conditions": [
                "cyl2vx+four_shapes+fix_hx",
                "iid_like_cyl2vx+four_shapes+fix_hx",
                "none+four_shapes+fix_hx",
            ],
            "models": ["vae_fixint"],
            "seeds": [0],
        }
    ],
    "groups": {
        "control": {
            "members": [
                {"dataset": "mpi3d", "condition": "cyl2vx+four_shapes+fix_hx"},
                {"dataset": "mpi3d", "condition": "iid_like_cyl2vx+four_shapes+fix_hx"},
            ]
        }
    },
}


def _study_config(**conditions) -> dict:
    config = copy.deepcopy(LIBRARY)
    config["conditions"]["mpi3d"].update(copy.deepcopy(conditions))
    return validated({**config, **copy.deepcopy(MPI3D_STUDY)})


def test_a_study_plans_iid_runs_beside_their_condition_and_reference():
    study = Study(_study_config())
    name = "iid_like_cyl2vx+four_shapes+fix_hx"
    assert ("mpi3d", name) in study.splits_used()
    assert study.run("mpi3d", name, "vae_fixint", 0).run_id == f"mpi3d/{name}/vae_fixint/seed0"
    shown = [r.condition for r in study.groups["control"].runs]
    assert shown == ["cyl2vx+four_shapes+fix_hx", name, "none+four_shapes+fix_hx"]
    # What rule make_split passes to its job (plain values) makes the same split.
    grid = study.grid("mpi3d")
    cond = study.condition("mpi3d", name)
    params = json.loads(json.dumps(cond.params()))
    for a, b in zip(split_masks(grid, cond), split_masks(grid, Condition.from_params(params)), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"family": "iid", "like": "none"}, "like names 'none+four_shapes+fix_hx' of family 'none'"),
        ({"family": "iid", "like": "iid_like_cyl2bkg"}, "of family 'iid'"),
        ({"family": "iid", "like": "cyl2vz"}, "conditions.mpi3d.bad.like: unknown condition 'cyl2vz'"),
        (
            {"family": "iid", "like": "cyl2vx+four_shapes"},
            "conditions.mpi3d.bad.like: 'cyl2vx+four_shapes' is not allowed; expected a condition of "
            "the same dataset, named alone (no +modifiers)",
        ),
        (
            {"family": "iid", "like": "cyl2vx", "test": [{"factor": "object_shape", "classes": [2]}]},
            "conditions.mpi3d.bad.test: applies only when family is not 'iid'",
        ),
        ({"family": "iid", "like": "cyl2vx", "fraction": 0.1}, "takes one of like"),
        ({"family": "iid"}, "takes one of like"),
        ({"family": "iid", "fraction": 1e-5}, "holds out 0 of the 17280 images"),
        (
            {
                "family": "recomb2range",
                "like": "cyl2vx",
                "test": [{"factor": "object_shape", "classes": [2]}],
            },
            "conditions.mpi3d.bad.like: applies only when family is 'iid'",
        ),
        ({"family": "recomb2range"}, "conditions.mpi3d.bad.test: required when family is not 'iid'"),
    ],
)
def test_misdeclared_iid_conditions_are_refused_naming_the_key(spec, message):
    config = copy.deepcopy(MPI3D_STUDY)
    config["experiments"][0]["conditions"] = ["bad+four_shapes+fix_hx"]
    del config["groups"]
    with pytest.raises(StudyError) as err:
        library = copy.deepcopy(LIBRARY)
        library["conditions"]["mpi3d"]["bad"] = spec
        Study(validated({**library, **config}))
    assert message in str(err.value)


def test_the_workflow_makes_an_iid_split_and_draws_it(tmp_path):
    """Rules make_split and split_figure, through the command line, on a study's iid condition."""
    config = {
        "datasets": {"circles": {}},
        "conditions": {"circles": {"iid_like_midpos": {"family": "iid", "like": "midpos", "seed": 2}}},
        "models": {"vae": {"task": "unsupervised"}},
        "experiments": [
            {"name": "c", "dataset": "circles", "conditions": ["iid_like_midpos"], "models": ["vae"]}
        ],
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    target = "results/splits/circles/iid_like_midpos.png"
    done = run_snakemake(tmp_path, "--configfile", str(tmp_path / "study.yaml"), "--cores", "1", target)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "results/splits/circles/iid_like_midpos.json").read_text())
    assert (summary["n_train"], summary["n_test"]) == (924, 100) and summary["main_factors"] == ["y", "x"]
    expected = split_masks(
        dataset_grid("circles"), _iid(like=Condition("midpos", "recomb2range", MIDPOS), seed=2)
    )
    with np.load(tmp_path / "results/splits/circles/iid_like_midpos.npz") as f:
        assert np.array_equal(f["test"], np.flatnonzero(expected[1]))
    assert mpimg.imread(tmp_path / target).shape[0] > 100


def test_an_iid_split_is_trained_on_and_analysed(data, tmp_path):
    """Analysis reads the split's main factors (the like condition's: y, size) and scores the gap."""
    from compgen.analysis.evaluate import analyse_run
    from compgen.datasets.store import check_dataset
    from compgen.training.run import train_run
    from test_engine import make_run

    dataset, _ = data
    grid = check_dataset(dataset)
    corner = ({"factor": "y", "ge": 2}, {"factor": "size", "values": [1.0]})
    cond = _iid("iid_like_corner", like=Condition("corner", "recomb2range", corner))
    split, split_json = tmp_path / "split.npz", tmp_path / "split.json"
    summary = write_split(grid, cond, "toy", split, split_json)
    assert (summary["n_train"], summary["n_test"]) == (24, 8) and summary["main_factors"] == ["y", "size"]
    train_run(dataset, split, make_run("composition", epochs=1), tmp_path / "run", tmp_path / "ckpt")
    out = tmp_path / "analysis"
    scores = analyse_run(
        dataset,
        split,
        split_json,
        tmp_path / "run/model.pt",
        out / "scores.json",
        out / "a.npz",
        preset="fast",
    )
    assert scores["samples"] == {"train": 24, "test": 8} and scores["main_factors"] == ["y", "size"]
    for key in ("gap", "excess_delta", "gap_composed", "r2_train_main_min"):
        assert math.isfinite(scores[key]), key
    with np.load(out / "a.npz") as arrays:
        assert arrays["factor_axes"].tolist() == [1, 2]
