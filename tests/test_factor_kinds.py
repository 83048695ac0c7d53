"""Factor kinds (ordinal, circular, categorical): declared once, with the dataset grids, and kept
through subsampling and the prepared file's attributes."""

import json

import h5py
import numpy as np
import pytest

from compgen.datasets import REGISTRY, dataset_grid, declared_kinds
from compgen.datasets.store import read_grid, write_dataset
from compgen.grid import CATEGORICAL, CIRCULAR, FACTOR_KINDS, ORDINAL, Factor, Grid

TWO_PI = 2 * np.pi
# (kind, period) of every factor of every dataset: the table of docs/fit_check.md.
EXPECTED = {
    "dsprites": {
        "shape": (CATEGORICAL, None),
        "scale": (ORDINAL, None),
        "orientation": (CIRCULAR, TWO_PI),
        "posX": (ORDINAL, None),
        "posY": (ORDINAL, None),
    },
    "shapes3d": {
        "floor_hue": (CIRCULAR, 1.0),
        "wall_hue": (CIRCULAR, 1.0),
        "object_hue": (CIRCULAR, 1.0),
        "scale": (ORDINAL, None),
        "shape": (CATEGORICAL, None),
        "orientation": (ORDINAL, None),
    },
    "mpi3d": {
        "object_color": (CATEGORICAL, None),
        "object_shape": (CATEGORICAL, None),
        "object_size": (ORDINAL, None),
        "camera_height": (CATEGORICAL, None),
        "background_color": (CATEGORICAL, None),
        "horizontal_axis": (ORDINAL, None),
        "vertical_axis": (ORDINAL, None),
    },
    "circles": {"x": (ORDINAL, None), "y": (ORDINAL, None)},
    "simple": {"x": (ORDINAL, None), "y": (ORDINAL, None), "shape": (CATEGORICAL, None)},
}


def test_every_factor_of_every_dataset_has_its_kind():
    assert set(EXPECTED) == set(REGISTRY)
    for name, family in REGISTRY.items():
        declared = {f.name: (f.kind, f.period) for f in family.grid.factors}
        assert declared == EXPECTED[name], name
        for f in family.grid.factors:
            assert f.kind in FACTOR_KINDS
            if f.kind == CIRCULAR:  # values are angles within one period
                assert 0 <= min(f.values) and max(f.values) <= f.period + 1e-9, (name, f.name)


def test_circular_values_wrap_where_the_grid_says_they_do():
    # dSprites' orientation includes both 0 and 2π: one angle; 3DShapes' hue 0.9 is next to 0.0.
    orientation = REGISTRY["dsprites"].grid.factor("orientation")
    ends = np.array([orientation.values[0], orientation.values[-1]]) * TWO_PI / orientation.period
    assert np.allclose(np.cos(ends), 1.0) and np.allclose(np.sin(ends), 0.0, atol=1e-12)
    hue = REGISTRY["shapes3d"].grid.factor("floor_hue")
    assert hue.values[-1] == pytest.approx(0.9) and hue.period == 1.0


def test_kinds_survive_subsampling_and_attributes():
    grid = dataset_grid("shapes3d", {"floor_hue": 2, "shape": 2})
    assert grid.factor("floor_hue").kind == CIRCULAR and grid.factor("floor_hue").period == 1.0
    assert grid.factor("shape").kind == CATEGORICAL and grid.factor("shape").size == 2
    assert Grid.from_attrs(json.loads(json.dumps(grid.to_attrs()))) == grid


def test_a_description_without_kinds_takes_the_datasets_declarations():
    """Files prepared before factors had kinds: the kinds of the registered dataset with the same
    factor names (the name alone is ambiguous: orientation is circular in dSprites only)."""
    for name in ("dsprites", "shapes3d", "mpi3d"):
        grid = dataset_grid(name, {})
        attrs = grid.to_attrs()
        del attrs["factor_kinds"], attrs["factor_periods"]
        assert Grid.from_attrs(attrs, declared_kinds(attrs["factor_names"])) == grid
    unknown = Grid((Factor("a", (0.0, 1.0)), Factor("orientation", (0.0, 1.0))), (64, 64, 1)).to_attrs()
    del unknown["factor_kinds"], unknown["factor_periods"]
    assert [f.kind for f in Grid.from_attrs(unknown, declared_kinds(unknown["factor_names"])).factors] == [
        ORDINAL,
        ORDINAL,
    ]
    assert declared_kinds(("a", "orientation")) == [(ORDINAL, None)] * 2


def test_a_prepared_file_without_kinds_still_loads(tmp_path):
    grid = dataset_grid("simple", {"x": 8, "y": 8})
    path = tmp_path / "simple.h5"
    write_dataset(path, grid, lambda classes: REGISTRY["simple"].render(grid, classes), {"source": "test"})
    assert read_grid(path) == grid
    with h5py.File(path, "r+") as f:
        attrs = json.loads(f.attrs["grid"])
        del attrs["factor_kinds"], attrs["factor_periods"]
        f.attrs["grid"] = json.dumps(attrs)
    old = read_grid(path)
    assert old == grid and old.factor("shape").kind == CATEGORICAL


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": "nominal"}, "kind 'nominal'; allowed: ordinal, circular, categorical"),
        ({"kind": CIRCULAR}, "positive period"),
        ({"kind": CIRCULAR, "period": 0.0}, "positive period"),
        ({"kind": ORDINAL, "period": 1.0}, "positive period"),
    ],
)
def test_a_kind_must_be_known_and_only_circular_factors_have_a_period(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Factor("f", (0.0, 0.5), **kwargs)
