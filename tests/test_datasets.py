import errno

import h5py
import numpy as np
import pytest

from compgen.datasets import REGISTRY
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import (
    DatasetError,
    check_dataset,
    read_grid,
    read_provenance,
    read_rows,
    write_dataset,
)


def _neighbours(grid, rng, n=40):
    """Pairs of codes that differ by one step of one factor."""
    pairs = []
    for _ in range(n):
        k = int(rng.integers(len(grid.sizes)))
        if grid.sizes[k] < 2:
            continue
        a = np.array([rng.integers(s) for s in grid.sizes])
        a[k] = rng.integers(grid.sizes[k] - 1)
        b = a.copy()
        b[k] += 1
        pairs.append((a, b, k))
    return pairs


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_renderer_shapes_dtypes_and_adjacent_values_differ(name):
    fam = REGISTRY[name]
    grid = fam.grid
    rng = np.random.default_rng(1)
    pairs = _neighbours(grid, rng)
    a = fam.render(grid, np.stack([p[0] for p in pairs]))
    b = fam.render(grid, np.stack([p[1] for p in pairs]))
    assert a.dtype == np.uint8 and a.shape == (len(pairs), *grid.image_shape)
    flat = a.reshape(len(a), -1)
    assert (flat.max(axis=1) > flat.min(axis=1)).all()  # no blank image
    for (ca, cb, k), ia, ib in zip(pairs, a, b, strict=True):
        # A full turn is a symmetry of every sprite; no other step may leave the image unchanged.
        if grid.names[k] == "orientation" and cb[k] == grid.sizes[k] - 1:
            continue
        if name == "dsprites" and grid.names[k] == "orientation" and ca[0] in (0, 1):
            continue  # squares and ellipses have rotational symmetries; checked below on hearts
        assert not np.array_equal(ia, ib), f"{name}: step of {grid.names[k]} from {ca} changed nothing"


def test_dsprites_rotation_changes_a_heart_at_every_step():
    fam = REGISTRY["dsprites"]
    grid = fam.grid
    codes = np.array([[2, 5, o, 16, 16] for o in range(40)])
    images = fam.render(grid, codes)
    for o in range(38):
        assert not np.array_equal(images[o], images[o + 1])
    assert np.array_equal(images[0], images[39])  # 0 and 2π are the same turn


def test_dsprites_is_binary_and_sprite_stays_inside():
    fam = REGISTRY["dsprites"]
    grid = fam.grid
    corners = np.array([[0, 5, 5, x, y] for x in (0, 31) for y in (0, 31)])
    images = fam.render(grid, corners)
    assert set(np.unique(images)) <= {0, 255}
    assert (images[:, 0, :] == 0).all() and (images[:, -1, :] == 0).all()
    assert (images[:, :, 0] == 0).all() and (images[:, :, -1] == 0).all()


def test_prepare_writes_layout_and_provenance(tmp_path):
    path = tmp_path / "dsprites.h5"
    prepare_dataset(
        "dsprites",
        {"source": "procedural", "subsample": {"scale": 3, "orientation": 8, "posX": 4, "posY": 4}},
        path,
    )
    grid = check_dataset(path)
    assert grid.sizes == (3, 2, 5, 8, 8)
    with h5py.File(path) as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (grid.n, 64, 64, 1)
        assert f["images"].chunks[0] <= 256
        classes = f["factor_classes"][:]
        values = f["factor_values"][:]
    assert np.array_equal(classes, grid.all_classes())
    np.testing.assert_allclose(values, grid.values(classes))
    prov = read_provenance(path)
    assert prov["source"] == "procedural" and prov["subsample"]["posX"] == 4 and "created" in prov
    # Reading by index returns exactly the rendered rows, in the order asked, repeats included.
    idx = np.array([7, 3, 3, grid.n - 1, 0])
    fam = REGISTRY["dsprites"]
    assert np.array_equal(read_rows(path, idx), fam.render(grid, grid.classes(idx)))
    assert read_grid(path) == grid
    assert not list(tmp_path.glob(".*tmp*"))


def test_provenance_says_procedural_in_one_attribute(tmp_path):
    """`source` (procedural | official) is a top-level HDF5 attribute and a key of the JSON
    `provenance` attribute, which training copies into run.json's `data` block."""
    path = tmp_path / "mpi3d.h5"
    subsample = {"object_color": 6, "object_shape": 6, "camera_height": 3, "background_color": 3}
    subsample |= {"horizontal_axis": 20, "vertical_axis": 20}
    prepare_dataset("mpi3d", {"source": "procedural", "subsample": subsample}, path)
    version = REGISTRY["mpi3d"].generator_version
    with h5py.File(path) as f:
        assert f.attrs["source"] == "procedural" and f.attrs["dataset"] == "mpi3d"
        assert f.attrs["generator"] == "compgen.datasets.mpi3d" and f.attrs["generator_version"] == version
    prov = read_provenance(path)
    assert (prov["source"], prov["generator"], prov["generator_version"]) == (
        "procedural",
        "compgen.datasets.mpi3d",
        version,
    )
    assert "file" not in prov and "file_sha256" not in prov


def test_read_rows_by_blocks_equals_a_full_read(tmp_path):
    path = tmp_path / "circles.h5"
    prepare_dataset("circles", {"source": "procedural"}, path)
    with h5py.File(path) as f:
        everything = f["images"][:]
    idx = np.array([1000, 2, 17, 3, 16, 17, 512, 1023])
    for block in (1, 8, 1024):
        assert np.array_equal(read_rows(path, idx, block=block), everything[idx])
    with pytest.raises(DatasetError, match="out of range"):
        read_rows(path, [1024])


def test_reading_a_broken_file_names_it(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match="broken.h5"):
        read_grid(bad)
    with pytest.raises(DatasetError, match="not found"):
        read_grid(tmp_path / "missing.h5")


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    from compgen.datasets import store

    def explode(*args, **kwargs):
        raise RuntimeError("interrupted")

    path = tmp_path / "circles.h5"
    monkeypatch.setattr(store.Grid, "values", explode)
    with pytest.raises(RuntimeError):
        prepare_dataset("circles", {"source": "procedural"}, path)
    assert list(tmp_path.iterdir()) == []


ENOSPC = OSError(errno.ENOSPC, "No space left on device")
# What h5py raises on a full disk: the errno inside the message, and a second error on closing.
H5PY_ENOSPC = OSError(
    "Can't synchronously write data (file write failed: errno = 28, error message = 'No space left on device')"
)


@pytest.mark.parametrize("error,close_fails", [(ENOSPC, False), (H5PY_ENOSPC, False), (ENOSPC, True)])
def test_a_full_disk_is_reported_as_such_and_leaves_nothing(tmp_path, monkeypatch, error, close_fails):
    writes = []
    write, close = h5py.Dataset.__setitem__, h5py.File.close

    def write_until_full(self, key, value):
        writes.append(key)
        if len(writes) > 3:  # the first block's images, classes and values are written
            raise error
        write(self, key, value)

    def close_with_refcount_error(self):
        close(self)
        raise RuntimeError("Can't decrement id ref count (file write failed: errno = 28)")

    monkeypatch.setattr(h5py.Dataset, "__setitem__", write_until_full)
    if close_fails:
        monkeypatch.setattr(h5py.File, "close", close_with_refcount_error)
    path = tmp_path / "circles.h5"
    grid = REGISTRY["circles"].grid.subsample({"x": 2, "y": 2})
    with pytest.raises(DatasetError, match=f"^no space left on device while writing {path}$"):
        write_dataset(path, grid, lambda classes: REGISTRY["circles"].render(grid, classes), {}, batch=64)
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def fail(self, key, value):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(h5py.Dataset, "__setitem__", fail)
    grid = REGISTRY["circles"].grid
    with pytest.raises(OSError, match="Input/output error"):
        write_dataset(tmp_path / "circles.h5", grid, lambda c: REGISTRY["circles"].render(grid, c), {})
    assert list(tmp_path.iterdir()) == []
