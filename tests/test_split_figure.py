import matplotlib.image as mpimg
import numpy as np

from compgen.conditions import Condition, write_split
from compgen.conditions.figure import cell_counts, plot_split
from compgen.datasets import dataset_grid


def test_cell_counts_marginalise_the_other_factors(tmp_path):
    grid = dataset_grid("dsprites", {"orientation": 8, "posX": 4, "posY": 4})
    test = ({"factor": "shape", "values": [1]}, {"factor": "posX", "gt": 0.5})
    cond = Condition("sqr2tx", "recomb2range", test)
    summary = write_split(grid, cond, "dsprites", tmp_path / "s.npz", tmp_path / "s.json")
    with np.load(tmp_path / "s.npz") as f:
        test = f["test"]
    counts = cell_counts(grid, test, (grid.axis("shape"), grid.axis("posX")))
    per_cell = 6 * 5 * 8  # scale × orientation × posY
    assert counts.sum() == summary["n_test"]
    assert (counts[0, 4:] == per_cell).all() and counts[0, :4].sum() == 0 and counts[1:].sum() == 0
    plot_split(grid, tmp_path / "s.npz", ("shape", "posX"), tmp_path / "split.png", "sqr2tx")
    image = mpimg.imread(tmp_path / "split.png")
    assert image.shape[0] >= 250 and image.shape[1] >= 300
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)
    assert red.sum() > 500  # the held-out cells are drawn


def test_a_split_with_no_held_out_set_is_drawn(tmp_path):
    grid = dataset_grid("shapes3d", {"orientation": 5, "scale": 4})
    even = (("even_ohues", ({"factor": "object_hue", "classes": [0, 2, 4, 6, 8]},)),)
    cond = Condition("none+even_ohues", "none", (), modifiers=even)
    summary = write_split(grid, cond, "shapes3d", tmp_path / "s.npz", tmp_path / "s.json")
    assert summary["n_test"] == 0 and summary["n_train"] == grid.n // 2
    with np.load(tmp_path / "s.npz") as f:
        assert f["test"].shape == (0,) and f["test"].dtype == np.int64
    plot_split(grid, tmp_path / "s.npz", ("object_hue", "shape"), tmp_path / "split.png", "none+even_ohues")
    image = mpimg.imread(tmp_path / "split.png")
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.2) & (image[..., 2] < 0.2)
    assert red.sum() == 0  # nothing held out
    blue = np.all(np.abs(image[..., :3] - np.array([0x9E, 0xCA, 0xE1]) / 255) < 0.02, axis=-1)
    grey = np.all(np.abs(image[..., :3] - 0xD9 / 255) < 0.02, axis=-1)
    assert blue.sum() > 500 and grey.sum() > 500  # even hues trained, odd hues excluded
