import colorsys

import numpy as np
import pytest

from compgen.datasets import REGISTRY, mpi3d, shapes3d, sprites
from compgen.datasets.blank import BlankCheck
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import check_dataset, read_provenance, read_rows, write_dataset


def test_shapes3d_grid_is_the_official_one():
    grid = REGISTRY["shapes3d"].grid
    assert grid.names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert grid.sizes == (10, 10, 10, 8, 4, 15) and grid.n == 480_000
    for hue in grid.names[:3]:
        np.testing.assert_allclose(grid.factor(hue).values, np.arange(10) / 10)
    np.testing.assert_allclose(grid.factor("scale").values, np.linspace(0.75, 1.25, 8))
    assert grid.factor("shape").values == (0, 1, 2, 3)
    assert grid.factor("shape").labels == ("cube", "cylinder", "sphere", "capsule")
    np.testing.assert_allclose(grid.factor("orientation").values, np.linspace(-30, 30, 15))
    assert grid.image_shape == (64, 64, 3)


def test_mpi3d_grid_is_the_official_one():
    grid = REGISTRY["mpi3d"].grid
    assert grid.names == (
        "object_color",
        "object_shape",
        "object_size",
        "camera_height",
        "background_color",
        "horizontal_axis",
        "vertical_axis",
    )
    assert grid.sizes == (6, 6, 2, 3, 3, 40, 40) and grid.n == 1_036_800
    for factor in grid.factors:
        assert factor.values == tuple(range(factor.size))  # values are the classes
    assert grid.factor("object_color").labels == ("white", "green", "red", "blue", "brown", "olive")
    shapes = ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere")
    assert grid.factor("object_shape").labels == shapes
    assert grid.factor("camera_height").labels == ("top", "center", "bottom")
    assert grid.factor("background_color").labels == ("purple", "sea_green", "salmon")


def _sweeps(grid, base):
    """Codes stepping each factor through all its classes, the others at `base`."""
    codes, steps = [], []
    for k, size in enumerate(grid.sizes):
        for c in range(size):
            code = list(base)
            code[k] = c
            codes.append(code)
            steps.append((k, c))
    return np.array(codes), steps


@pytest.mark.parametrize(
    "name,base",
    [
        ("shapes3d", (3, 6, 8, 4, 2, 7)),
        ("shapes3d", (0, 9, 5, 0, 3, 0)),
        ("mpi3d", (1, 2, 1, 1, 2, 20, 20)),
        ("mpi3d", (0, 5, 0, 2, 0, 0, 39)),
    ],
)
def test_every_step_of_every_factor_changes_the_image(name, base):
    fam = REGISTRY[name]
    codes, steps = _sweeps(fam.grid, base)
    images = fam.render(fam.grid, codes)
    assert images.dtype == np.uint8 and images.shape == (len(codes), 64, 64, 3)
    for i in range(1, len(codes)):
        (k, c) = steps[i]
        if c == 0:
            continue  # a new factor's sweep starts
        step = f"{name}: {fam.grid.names[k]} {c - 1}->{c}"
        assert not np.array_equal(images[i - 1], images[i]), f"{step} changed nothing"


@pytest.mark.parametrize("name", ["shapes3d", "mpi3d"])
def test_subsampled_grid_renders_its_full_grid_cells(name):
    fam = REGISTRY[name]
    steps = {f.name: 3 for f in fam.grid.factors if f.size > 3}
    grid = fam.grid.subsample(steps)
    rng = np.random.default_rng(0)
    codes = grid.classes(rng.choice(grid.n, 12, replace=False))
    assert np.array_equal(fam.render(grid, codes), fam.render(fam.grid, grid.full_classes(codes)))


def _hsv(pixel):
    return colorsys.rgb_to_hsv(*(np.asarray(pixel, float) / 255))


def test_shapes3d_regions_take_their_hues_at_fixed_saturation():
    fam = REGISTRY["shapes3d"]
    for floor, wall, obj in [(0, 3, 6), (7, 2, 9), (4, 8, 1)]:
        image = fam.render(fam.grid, np.array([[floor, wall, obj, 7, 0, 7]]))[0]
        # Bottom centre is floor, top left is wall, the middle of the image is the object.
        for pixel, hue in ((image[60, 32], floor / 10), (image[4, 4], wall / 10), (image[32, 32], obj / 10)):
            h, s, _ = _hsv(pixel)
            assert min(abs(h - hue), 1 - abs(h - hue)) < 0.02  # hue is circular
            assert s == pytest.approx(shapes3d.SATURATION, abs=0.02)


def test_shapes3d_orientation_turns_the_view():
    fam = REGISTRY["shapes3d"]
    images = fam.render(fam.grid, np.array([[0, 5, 9, 4, 2, o] for o in (0, 7, 14)]))
    # A sphere looks the same from every side: only the room behind it can change.
    assert not np.array_equal(images[0], images[2]) and not np.array_equal(images[0, :16], images[1, :16])


def test_mpi3d_colours_and_object_placement():
    fam = REGISTRY["mpi3d"]
    for colour in range(6):
        for background in range(3):
            code = np.array([[colour, 5, 1, 1, background, 20, 39]])
            image = fam.render(fam.grid, code)[0].astype(float)
            corner = image[20, 2]  # backdrop, away from the arm
            expected = mpi3d.BACKGROUND_COLOURS[background]
            np.testing.assert_allclose(corner / corner.sum(), expected / expected.sum(), atol=0.02)
            col, row = mpi3d.object_pixels(1, 20, 39, 1)
            centre = image[int(row), int(col)]
            expected = mpi3d.OBJECT_COLOURS[colour]
            np.testing.assert_allclose(centre / centre.sum(), expected / expected.sum(), atol=0.03)


def test_mpi3d_object_centre_stays_in_the_image_for_every_pose():
    horizontal, vertical = np.meshgrid(np.arange(40), np.arange(40))
    for camera in range(3):
        for size in range(2):
            centre = mpi3d.object_pixels(camera, horizontal, vertical, size)
            assert (centre >= 2).all() and (centre <= 62).all()


def test_dsprites_translation_equals_direct_rasterisation():
    """Each image is its sprite shifted by whole pixels: the same as drawing it in place."""
    grid = sprites.DSPRITES_GRID
    codes = grid.classes(np.random.default_rng(3).integers(0, grid.n, 300))
    images = sprites.render_dsprites(grid, codes)[..., 0] > 0
    values = grid.values(codes).astype(np.float32)

    def centre(pos):
        return sprites.DSPRITES_FIRST_PIXEL + 0.5 + np.rint(pos * sprites.DSPRITES_POSITION_STEPS)

    u, v = sprites._local_coords(
        centre(values[:, 3]).astype(np.float32),
        centre(values[:, 4]).astype(np.float32),
        sprites.DSPRITES_HALF * values[:, 1],
        np.mod(grid.values(codes)[:, 2], 2 * np.pi).astype(np.float32),  # 2π drawn as 0
    )
    direct = sprites._draw((sprites._square, sprites._ellipse, sprites._heart), codes[:, 0], u, v)
    assert np.array_equal(images, direct)


@pytest.mark.parametrize(
    "name,subsample,sizes",
    [
        (
            "shapes3d",
            {"floor_hue": 5, "wall_hue": 5, "object_hue": 5, "scale": 4, "orientation": 7},
            (2, 2, 2, 2, 4, 3),
        ),
        (
            "mpi3d",
            {
                "object_color": 3,
                "object_shape": 3,
                "camera_height": 2,
                "background_color": 2,
                "horizontal_axis": 20,
                "vertical_axis": 20,
            },
            (2, 2, 2, 2, 2, 2, 2),
        ),
        ("simple", {"x": 8, "y": 8}, (4, 4, 3)),
    ],
)
def test_prepare_generates_subsampled_grids(tmp_path, name, subsample, sizes):
    path = tmp_path / f"{name}.h5"
    prepare_dataset(name, {"source": "procedural", "subsample": subsample}, path)
    grid = check_dataset(path)
    assert grid.sizes == sizes
    fam = REGISTRY[name]
    idx = np.array([0, grid.n // 2, grid.n - 1])
    assert np.array_equal(read_rows(path, idx), fam.render(grid, grid.classes(idx)))
    prov = read_provenance(path)
    assert prov["source"] == "procedural" and prov["generator_version"] == fam.generator_version


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_factor_value_renders_blank_images(name):
    """The blank-image check that every written dataset passes, on each full grid (3 images per
    value: rendering shapes3d's costs about 40 ms an image)."""
    fam = REGISTRY[name]
    check = BlankCheck(fam.grid, per_value=3, across=64)
    images = fam.render(fam.grid, fam.grid.classes(check.rows))
    for i, row in enumerate(check.rows):
        check.see(int(row), images[i : i + 1])
    assert check.blank_value() is None


def test_a_blank_factor_value_is_found_on_a_small_grid():
    """Few images per value on a subsampled grid: every one of them is checked."""
    grid = REGISTRY["circles"].grid.subsample({"x": 8, "y": 16})
    check = BlankCheck(grid)
    images = REGISTRY["circles"].render(grid, grid.all_classes())
    images[grid.all_classes()[:, 1] == 1] = 0
    check.see(0, images)
    assert check.blank_value() == "y = " + f"{grid.factor('y').values[1]:g}"


def test_blocks_without_sampled_rows_pass_the_blank_check(tmp_path):
    """On a large grid most blocks hold none of the rows sampled per value and across the file."""
    grid = REGISTRY["dsprites"].grid.subsample({"orientation": 4, "posX": 2, "posY": 2})
    check = BlankCheck(grid)
    assert np.unique(check.rows // 8).size < grid.n // 8 // 2
    write_dataset(tmp_path / "dsprites.h5", grid, lambda c: REGISTRY["dsprites"].render(grid, c), {}, batch=8)
    assert check_dataset(tmp_path / "dsprites.h5") == grid
