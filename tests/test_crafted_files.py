"""Crafted official files: arrays that reach outside themselves, keys that are not arrays, and
images that are blank for a whole factor value are refused, naming the file and the key."""

import io
import re
import zipfile

import h5py
import numpy as np
import pytest

from compgen.datasets.store import DatasetError, read_rows
from test_official import GRIDS, MPI3D, SHAPES3D, _convert, _expect_nothing_written, fabricate


def _npy(array: np.ndarray, shape=None) -> bytes:
    """`array` as .npy bytes, its header claiming `shape` (by default its own)."""
    header = np.lib.format.header_data_from_array_1_0(array)
    header["shape"] = tuple(shape or array.shape)
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + array.tobytes()


def _npz(path, members: dict[str, bytes], compression) -> None:
    with zipfile.ZipFile(path, "w", compression) as z:
        for key, data in members.items():
            z.writestr(f"{key}.npy", data)


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
def test_a_header_claiming_more_rows_than_its_member_holds_is_refused(tmp_path, compression):
    """The header claims the full grid; the member holds 10 rows, and the member after it would
    supply the other 62 to a reader that trusts the header."""
    source = tmp_path / "short.npz"
    h, w, c = MPI3D.image_shape
    held = np.full((10, h, w, c), 9, np.uint8)
    after = np.full((MPI3D.n, h, w, c), 200, np.uint8)  # what would be read past the member
    _npz(source, {"images": _npy(held, (MPI3D.n, h, w, c)), "z": _npy(after)}, compression)
    out = tmp_path / "data.h5"
    declared = len(_npy(held)) - held.nbytes + MPI3D.n * h * w * c
    expected = f"{source}: 'images' declares {declared} bytes in its .npy header, its zip entry holds {len(_npy(held))}"
    with pytest.raises(DatasetError, match=re.escape(expected)):
        _convert("mpi3d", source, out)
    _expect_nothing_written(out)


def test_a_small_member_claiming_more_rows_is_refused(tmp_path):
    source = tmp_path / "dsprites.npz"
    fabricate("dsprites", source)
    with zipfile.ZipFile(source) as z:
        members = {n[:-4]: z.read(n) for n in z.namelist()}
    grid = GRIDS["dsprites"]
    values = np.hstack([np.ones((grid.n, 1)), grid.values(grid.all_classes())])
    members["latents_values"] = _npy(values[:-1], values.shape)
    _npz(source, members, zipfile.ZIP_DEFLATED)
    with pytest.raises(DatasetError, match=f"{source}: 'latents_values' declares .* bytes"):
        _convert("dsprites", source, tmp_path / "data.h5")


# -- HDF5: storage and links that leave the file, keys that are not datasets ------------------


def _shapes3d(path, images=None, labels=None):
    """A 3dshapes.h5 whose `images` / `labels` are made by the given f(file, key) (plain by default)."""
    grid = SHAPES3D
    data = {
        "images": fabricate("shapes3d", path.with_name("plain.h5")),
        "labels": grid.values(grid.all_classes()),
    }
    with h5py.File(path, "w") as f:
        for key, make in (("images", images), ("labels", labels)):
            if make is None:
                f.create_dataset(key, data=data[key])
            else:
                make(f, key, data[key])
    return path


def _external_storage(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 100_000)

    def make(f, key, data):
        f.create_dataset(key, data.shape, data.dtype, external=[(str(secret), 0, data.nbytes)])

    return make, "has external storage in .*passwd"


def _virtual(tmp_path):
    other = tmp_path / "other.h5"

    def make(f, key, data):
        with h5py.File(other, "a") as o:
            o.create_dataset(key, data=data)
        layout = h5py.VirtualLayout(data.shape, data.dtype)
        layout[...] = h5py.VirtualSource(str(other), key, data.shape)
        f.create_virtual_dataset(key, layout)

    return make, "is a virtual dataset"


def _external_link(tmp_path):
    other = tmp_path / "other.h5"

    def make(f, key, data):
        with h5py.File(other, "a") as o:
            o.create_dataset(key, data=data)
        f[key] = h5py.ExternalLink(str(other), f"/{key}")

    return make, "is an external link to .*other.h5:/"


def _broken_external_link(tmp_path):
    def make(f, key, data):
        f[key] = h5py.ExternalLink(str(tmp_path / "gone.h5"), f"/{key}")

    return make, "is an external link to .*gone.h5:/"


def _group(tmp_path):
    def make(f, key, data):
        f.create_group(key).create_dataset(key, data=data)

    return make, "is a group, expected a dataset"


def _broken_soft_link(tmp_path):
    def make(f, key, data):
        f[key] = h5py.SoftLink("/nowhere")

    return make, "is a broken link to /nowhere, expected a dataset"


def _soft_link_to_external_link(tmp_path):
    other = tmp_path / "other.h5"

    def make(f, key, data):
        with h5py.File(other, "a") as o:
            o.create_dataset(key, data=data)
        f[f"hidden_{key}"] = h5py.ExternalLink(str(other), f"/{key}")
        f[key] = h5py.SoftLink(f"/hidden_{key}")

    return make, "is stored in another file .*other.h5"


CRAFTED = [
    _external_storage,
    _virtual,
    _external_link,
    _broken_external_link,
    _group,
    _broken_soft_link,
    _soft_link_to_external_link,
]


@pytest.mark.parametrize("key", ["images", "labels"])
@pytest.mark.parametrize("craft", CRAFTED, ids=lambda craft: craft.__name__.strip("_"))
def test_hdf5_keys_that_are_not_datasets_in_the_file_are_refused(tmp_path, craft, key):
    make, message = craft(tmp_path)
    source = _shapes3d(tmp_path / "3dshapes.h5", **{key: make})
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match=f"{re.escape(str(source))}: '{key}' {message}"):
        _convert("shapes3d", source, out)
    _expect_nothing_written(out)


def test_a_soft_link_to_a_dataset_in_the_file_is_read(tmp_path):
    def make(f, key, data):
        f.create_dataset("stored_images", data=data)
        f[key] = h5py.SoftLink("/stored_images")

    source = _shapes3d(tmp_path / "3dshapes.h5", images=make)
    _convert("shapes3d", source, tmp_path / "data.h5")
    with h5py.File(source) as f:
        assert np.array_equal(read_rows(tmp_path / "data.h5", [0, 5]), f["images"][[0, 5]])


# -- blank images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,factor,value,fill,shown",
    [
        ("dsprites", "shape", 2, 0, "shape = heart"),
        ("shapes3d", "orientation", 1, 77, "orientation = 30"),
        ("mpi3d", "horizontal_axis", 0, 255, "horizontal_axis = 0"),
    ],
)
def test_blank_images_of_one_factor_value_are_refused(tmp_path, name, factor, value, fill, shown):
    grid = GRIDS[name]
    rows = grid.all_classes()[:, grid.axis(factor)] == value
    source = tmp_path / ("blank.h5" if name == "shapes3d" else "blank.npz")
    images = fabricate(name, tmp_path / ("plain.h5" if name == "shapes3d" else "plain.npz"))
    images[rows] = fill if name != "dsprites" else fill // 255
    key = "imgs" if name == "dsprites" else "images"
    fabricate(name, source, **{key: images[..., 0] if name == "dsprites" else images})
    out = tmp_path / "data.h5"
    expected = f"{re.escape(str(source))}: every sampled image with {shown} is blank"
    with pytest.raises(DatasetError, match=expected):
        _convert(name, source, out)
    _expect_nothing_written(out)
    subsample = {f.name: 2 for f in grid.factors if f.size > 2 and f.name != factor}
    with pytest.raises(DatasetError, match=expected):
        _convert(name, source, out, subsample)


def test_a_file_whose_every_second_image_is_blank_is_refused(tmp_path):
    """Half the images blank, at random: no factor value is all blank, so only the sample across
    the file sees it."""
    images = fabricate("dsprites", tmp_path / "plain.npz")[..., 0]
    images[np.random.default_rng(0).random(len(images)) < 0.5] = 0
    source = tmp_path / "dsprites.npz"
    fabricate("dsprites", source, imgs=images)
    out = tmp_path / "data.h5"
    with pytest.raises(
        DatasetError, match=rf"{re.escape(str(source))}: \d+ of 72 images sampled across the file are blank"
    ):
        _convert("dsprites", source, out)
    _expect_nothing_written(out)


def test_a_few_blank_images_pass(tmp_path):
    images = fabricate("dsprites", tmp_path / "plain.npz")[..., 0]
    images[[0, 17, 40]] = 0
    source = tmp_path / "dsprites.npz"
    fabricate("dsprites", source, imgs=images)
    _convert("dsprites", source, tmp_path / "data.h5")
    assert (read_rows(tmp_path / "data.h5", [17]) == 0).all()
