import numpy as np
import pytest

from compgen.datasets import REGISTRY, dataset_grid
from compgen.grid import Grid


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_index_classes_roundtrip_in_c_order(name):
    grid = REGISTRY[name].grid
    idx = np.random.default_rng(0).integers(0, grid.n, 500)
    classes = grid.classes(idx)
    assert np.array_equal(grid.index(classes), idx)
    # C order: the last factor varies fastest.
    assert grid.classes([1])[0, -1] == 1 and grid.classes([grid.sizes[-1]])[0, -2] == 1


def test_dsprites_grid_is_the_official_one():
    grid = REGISTRY["dsprites"].grid
    assert grid.names == ("shape", "scale", "orientation", "posX", "posY")
    assert grid.sizes == (3, 6, 40, 32, 32)
    assert grid.n == 737_280
    assert grid.factor("shape").values == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(grid.factor("scale").values, np.linspace(0.5, 1, 6))
    orientation = grid.factor("orientation").values
    assert orientation[0] == 0 and orientation[-1] == pytest.approx(2 * np.pi)


def test_circles_and_simple_grids():
    assert REGISTRY["circles"].grid.sizes == (32, 32) and REGISTRY["circles"].grid.n == 1024
    assert REGISTRY["simple"].grid.names == ("x", "y", "shape") and REGISTRY["simple"].grid.n == 3072


def test_subsample_keeps_every_kth_value_and_full_classes():
    grid = dataset_grid("dsprites", {"posX": 4, "orientation": 10})
    posx = grid.factor("posX")
    assert posx.size == 8 and posx.full_classes == (0, 4, 8, 12, 16, 20, 24, 28)
    np.testing.assert_allclose(posx.values, np.linspace(0, 1, 32)[::4])
    assert posx.full_size == 32
    assert grid.factor("orientation").size == 4
    assert grid.n == 3 * 6 * 4 * 8 * 32
    codes = grid.all_classes()[[0, -1]]
    assert grid.full_classes(codes)[-1, 3] == 28


def test_attrs_roundtrip():
    grid = dataset_grid("simple", {"x": 3})
    assert Grid.from_attrs(grid.to_attrs()) == grid


def test_unknown_factor_in_subsample_is_named():
    with pytest.raises(KeyError, match="posZ.*allowed: shape, scale"):
        dataset_grid("dsprites", {"posZ": 2})


def test_standardised_factors():
    grid = REGISTRY["circles"].grid
    v = grid.values(grid.all_classes())
    s = grid.standardised(v)
    assert s.min() == pytest.approx(-0.5) and s.max() == pytest.approx(0.5)
