"""Official files, fabricated tiny in their real formats against small expected grids."""

import copy
import hashlib
import os
import re
import zipfile

import h5py
import numpy as np
import pytest

from compgen.datasets import REGISTRY, DatasetFamily
from compgen.datasets.official import OFFICIAL_FILES, convert_official, official_path, resolve_source
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import DatasetError, check_dataset, read_provenance, read_rows
from compgen.grid import Factor, Grid
from compgen.study import Study, StudyError
from conftest import ROOT, load_config

DSPRITES = Grid(
    (
        Factor("shape", (1.0, 2.0, 3.0), ("square", "ellipse", "heart")),
        Factor("scale", (0.5, 1.0)),
        Factor("orientation", (0.0, np.pi)),
        Factor("posX", (0.0, 0.5, 1.0)),
        Factor("posY", (0.0, 1.0)),
    ),
    (64, 64, 1),
)
SHAPES3D = Grid(
    (
        Factor("floor_hue", (0.0, 0.5)),
        Factor("wall_hue", (0.0, 0.9)),
        Factor("object_hue", (0.1, 0.2)),
        Factor("scale", (0.75, 1.25)),
        Factor("shape", (0.0, 1.0, 2.0, 3.0)),
        Factor("orientation", (-30.0, 30.0)),
    ),
    (64, 64, 3),
)
MPI3D = Grid(
    tuple(
        Factor(name, tuple(float(c) for c in range(size)))
        for name, size in [
            ("object_color", 2),
            ("object_shape", 2),
            ("object_size", 2),
            ("camera_height", 1),
            ("background_color", 1),
            ("horizontal_axis", 3),
            ("vertical_axis", 3),
        ]
    ),
    (64, 64, 3),
)
GRIDS = {"dsprites": DSPRITES, "shapes3d": SHAPES3D, "mpi3d": MPI3D}


class CreatesFileWhenUnpickled:
    """A stand-in for dSprites' pickled `metadata`: unpickling it would create `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _images(grid, seed=0):
    rng = np.random.default_rng(seed)
    h, w, c = grid.image_shape
    return rng.integers(0, 2 if c == 1 else 256, (grid.n, h, w, c), dtype=np.uint8)


def fabricate(name, path, grid=None, compressed=None, **overrides):
    """An official-format file of `grid`; `overrides` replace (or, as None, drop) its arrays."""
    grid = grid or GRIDS[name]
    images = _images(grid)
    codes = grid.all_classes()
    if name == "dsprites":
        arrays = {
            "imgs": images[..., 0],
            "latents_classes": np.hstack([np.zeros((grid.n, 1), np.int64), codes]),
            "latents_values": np.hstack([np.ones((grid.n, 1)), grid.values(codes)]),
            "metadata": np.array(CreatesFileWhenUnpickled(path.parent / "pwned"), dtype=object),
        }
    elif name == "shapes3d":
        arrays = {"images": images, "labels": grid.values(codes)}
    else:
        arrays = {"images": images}
    for key, value in overrides.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    if name == "shapes3d":
        with h5py.File(path, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value)
    else:
        compressed = name == "dsprites" if compressed is None else compressed  # as the releases are
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return images


def _convert(name, source, out, subsample=None):
    convert_official(name, source, out, {"dataset": name}, subsample, GRIDS[name])


def _expect_nothing_written(out):
    assert not out.exists()
    if out.parent.exists():
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize(
    "name,compressed", [("dsprites", True), ("shapes3d", None), ("mpi3d", False), ("mpi3d", True)]
)
def test_official_file_is_converted(tmp_path, name, compressed):
    source = tmp_path / f"official_{name}"
    source = source.with_suffix(".h5" if name == "shapes3d" else ".npz")
    images = fabricate(name, source, compressed=compressed)
    out = tmp_path / "out" / f"{name}.h5"
    _convert(name, source, out)
    grid = check_dataset(out)
    assert grid == GRIDS[name]
    expected = images * np.uint8(255) if name == "dsprites" else images  # binary 0/1 stored as 0/255
    assert np.array_equal(read_rows(out, np.arange(grid.n)), expected)
    assert np.array_equal(read_rows(out, np.arange(grid.n), key="factor_classes"), grid.all_classes())
    prov = read_provenance(out)
    assert prov["source"] == "official" and prov["file"] == str(source)
    assert prov["file_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["dsprites", "shapes3d", "mpi3d"])
def test_subsampling_selects_the_grid_rows(tmp_path, name):
    source = tmp_path / ("src.h5" if name == "shapes3d" else "src.npz")
    images = fabricate(name, source)
    full = GRIDS[name]
    steps = {f.name: 2 for f in full.factors if f.size > 2}
    out = tmp_path / "sub.h5"
    _convert(name, source, out, steps)
    grid = check_dataset(out)
    assert grid == full.subsample(steps) and grid.n < full.n
    rows = full.index(grid.full_classes(grid.all_classes()))
    expected = images[rows] * (np.uint8(255) if name == "dsprites" else np.uint8(1))
    assert np.array_equal(read_rows(out, np.arange(grid.n)), expected)


def test_dsprites_metadata_pickle_is_never_loaded(tmp_path):
    source = tmp_path / "dsprites.npz"
    fabricate("dsprites", source)
    with zipfile.ZipFile(source) as z:  # the trap is really there: a pickle that calls open(...)
        raw = z.read("metadata.npy")
    assert b"pwned" in raw and b"open" in raw
    _convert("dsprites", source, tmp_path / "out.h5")
    assert (tmp_path / "out.h5").exists()
    assert not (tmp_path / "pwned").exists()


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    source = tmp_path / "mpi3d.npz"
    trap = np.empty(MPI3D.n, dtype=object)
    trap[0] = CreatesFileWhenUnpickled(tmp_path / "pwned")
    np.savez(source, images=trap)
    out = tmp_path / "out.h5"
    with pytest.raises(DatasetError, match="Python objects"):
        _convert("mpi3d", source, out)
    assert not (tmp_path / "pwned").exists()
    _expect_nothing_written(out)


BAD_FILES = {
    "dsprites-keys": ("dsprites", {"latents_values": None}, "missing key.*latents_values"),
    "shapes3d-keys": (
        "shapes3d",
        {"images": None, "imgs": np.zeros((128, 64, 64, 3), np.uint8)},
        "missing key.*images",
    ),
    "mpi3d-keys": (
        "mpi3d",
        {"images": None, "imgs": np.zeros((72, 64, 64, 3), np.uint8)},
        "missing key.*images.*found imgs",
    ),
    "dsprites-shape": (
        "dsprites",
        {"imgs": np.zeros((72, 63, 64), np.uint8)},
        r"'imgs' has shape \(72, 63, 64\), expected \(72, 64, 64\)",
    ),
    "shapes3d-shape": ("shapes3d", {"images": np.zeros((127, 64, 64, 3), np.uint8)}, "'images' has shape"),
    "mpi3d-shape": ("mpi3d", {"images": np.zeros((72, 64, 64), np.uint8)}, "'images' has shape"),
    "shapes3d-labels-shape": ("shapes3d", {"labels": np.zeros((128, 5))}, "'labels' has shape"),
    "dsprites-dtype": (
        "dsprites",
        {"imgs": np.zeros((72, 64, 64), np.float32)},
        "'imgs' has dtype float32, expected uint8",
    ),
    "shapes3d-dtype": (
        "shapes3d",
        {"images": np.zeros((128, 64, 64, 3), np.int16)},
        "'images' has dtype int16",
    ),
    "mpi3d-dtype": ("mpi3d", {"images": np.zeros((72, 64, 64, 3), np.float64)}, "'images' has dtype float64"),
    "dsprites-classes-dtype": (
        "dsprites",
        {"latents_classes": np.zeros((72, 6), np.float64)},
        "'latents_classes' has dtype float64",
    ),
    "shapes3d-labels-dtype": (
        "shapes3d",
        {"labels": np.zeros((128, 6), np.int64)},
        "'labels' has dtype int64",
    ),
    "dsprites-not-binary": ("dsprites", {"imgs": np.full((72, 64, 64), 255, np.uint8)}, "values above 1"),
}


@pytest.mark.parametrize("name,overrides,message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_are_refused_and_nothing_is_written(tmp_path, name, overrides, message):
    source = tmp_path / ("bad.h5" if name == "shapes3d" else "bad.npz")
    fabricate(name, source, **overrides)
    out = tmp_path / "out" / "data.h5"
    with pytest.raises(DatasetError, match=message) as err:
        _convert(name, source, out)
    assert str(source) in str(err.value)
    _expect_nothing_written(out)


NOT_GRID = "{} is not the full {} grid in C order: row 5"


def _shuffled_labels(name):
    grid = GRIDS[name]
    codes = grid.all_classes()
    swapped = np.arange(grid.n)
    swapped[[5, 6]] = swapped[[6, 5]]  # two rows out of C order
    if name == "dsprites":
        return {"latents_values": np.hstack([np.ones((grid.n, 1)), grid.values(codes)])[swapped]}
    return {"labels": grid.values(codes)[swapped]}


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("dsprites", _shuffled_labels("dsprites"), NOT_GRID.format("'latents_values'", "3x2x2x3x2")),
        ("shapes3d", _shuffled_labels("shapes3d"), NOT_GRID.format("'labels'", "2x2x2x2x4x2")),
        ("shapes3d", {"labels": SHAPES3D.values(SHAPES3D.all_classes()) * 1.01}, "wall_hue|object_hue"),
        (
            "dsprites",
            {"latents_classes": np.hstack([np.arange(72)[:, None] % 2, DSPRITES.all_classes()])},
            "column 0 .colour. is not constant",
        ),
    ],
    ids=["dsprites-order", "shapes3d-order", "shapes3d-values", "dsprites-colour"],
)
def test_labels_that_are_not_the_full_grid_are_refused(tmp_path, name, overrides, message):
    source = tmp_path / ("bad.h5" if name == "shapes3d" else "bad.npz")
    fabricate(name, source, **overrides)
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match=message):
        _convert(name, source, out)
    _expect_nothing_written(out)


@pytest.mark.parametrize("name,compressed", [("dsprites", True), ("shapes3d", None), ("mpi3d", False)])
def test_truncated_files_are_refused(tmp_path, name, compressed):
    source = tmp_path / ("cut.h5" if name == "shapes3d" else "cut.npz")
    fabricate(name, source, compressed=compressed)
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match="cut") as err:
        _convert(name, source, out)
    assert "truncated" in str(err.value) or "not a readable" in str(err.value)
    _expect_nothing_written(out)


@pytest.mark.parametrize("name,compressed", [("dsprites", True), ("mpi3d", False), ("mpi3d", True)])
def test_corrupted_zip_members_are_refused(tmp_path, name, compressed):
    source = tmp_path / "flipped.npz"
    fabricate(name, source, compressed=compressed)
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as z:
        member = z.getinfo("imgs.npy" if name == "dsprites" else "images.npy")
    middle = member.header_offset + 200 + member.compress_size // 2
    data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
    source.write_bytes(bytes(data))
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match="flipped.npz.*(corrupted|Bad CRC|Error)"):
        _convert(name, source, out)
    _expect_nothing_written(out)


def test_missing_official_file_names_the_path_and_the_file(tmp_path):
    missing = tmp_path / "nowhere.npz"
    expected = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    with pytest.raises(DatasetError, match=f"{missing}.*not found.*{expected}"):
        resolve_source("dsprites", {"source": "official", "path": str(missing)})
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match="nowhere.npz"):
        prepare_dataset("dsprites", {"source": "official", "path": str(missing)}, out)
    _expect_nothing_written(out)
    with pytest.raises(DatasetError, match="no official release"):
        resolve_source("circles", {"source": "official"})


def test_source_resolution(tmp_path):
    present = tmp_path / "3dshapes.h5"
    present.touch()
    assert resolve_source("shapes3d", {"source": "auto", "path": str(present)}) == ("official", present)
    assert resolve_source("shapes3d", {"source": "procedural", "path": str(present)}) == ("procedural", None)
    absent = str(tmp_path / "no.h5")
    assert resolve_source("shapes3d", {"source": "auto", "path": absent}) == ("procedural", None)
    assert resolve_source("circles", {"source": "auto"}) == ("procedural", None)
    assert resolve_source("mpi3d", {})[0] in ("official", "procedural")  # auto by default
    assert OFFICIAL_FILES["mpi3d"] == "data/raw/mpi3d/mpi3d_real.npz"  # the photographs, as the paper


def test_mpi3d_defaults_to_the_photographs_and_takes_other_releases_by_path(tmp_path):
    assert str(official_path("mpi3d", {})) == "data/raw/mpi3d/mpi3d_real.npz"
    with pytest.raises(
        DatasetError, match=r"expected mpi3d_real\.npz .*default data/raw/mpi3d/mpi3d_real\.npz"
    ):
        resolve_source("mpi3d", {"source": "official", "path": str(tmp_path / "nowhere.npz")})
    for release in ("mpi3d_toy.npz", "mpi3d_realistic.npz"):
        path = tmp_path / release
        path.touch()
        assert resolve_source("mpi3d", {"path": str(path)}) == ("official", path)


def test_prepare_dataset_converts_the_official_file_when_present(tmp_path, monkeypatch):
    fam = REGISTRY["mpi3d"]
    monkeypatch.setitem(REGISTRY, "mpi3d", DatasetFamily("mpi3d", MPI3D, fam.render, fam.generator_version))
    source = tmp_path / "mpi3d_real.npz"
    images = fabricate("mpi3d", source)
    out = tmp_path / "official.h5"
    settings = {"source": "auto", "path": str(source), "subsample": {"horizontal_axis": 2}}
    prepare_dataset("mpi3d", settings, out)
    assert read_provenance(out)["source"] == "official"
    grid = check_dataset(out)
    assert grid.sizes == (2, 2, 2, 1, 1, 2, 3)
    assert np.array_equal(read_rows(out, [0, grid.n - 1]), images[[0, MPI3D.n - 1]])
    generated = tmp_path / "procedural.h5"
    prepare_dataset("mpi3d", {"source": "procedural", "path": str(source)}, generated)
    assert read_provenance(generated)["source"] == "procedural"


def test_study_refuses_a_missing_official_file_at_plan_time(tmp_path):
    config = copy.deepcopy(load_config(ROOT / "config/demo.yaml"))
    config["datasets"]["dsprites"] = {"source": "official", "path": str(tmp_path / "gone.npz")}
    with pytest.raises(StudyError, match=r"datasets.dsprites.source: .*gone.npz.*not found"):
        Study(config)


def _dangling_link(tmp_path):
    path = tmp_path / "3dshapes.h5"
    path.symlink_to(tmp_path / "share" / "3dshapes.h5")  # the share is not mounted
    return path, "dangling symbolic link"


def _link_loop(tmp_path):
    path = tmp_path / "3dshapes.h5"
    path.symlink_to(path)
    return path, "cannot be read"


def _directory(tmp_path):
    path = tmp_path / "3dshapes.h5"
    path.mkdir()  # also what an unreadable file looks like to root: open() fails
    return path, "not a regular file"


def _fifo(tmp_path):
    path = tmp_path / "3dshapes.h5"
    os.mkfifo(path)
    return path, "not a regular file"


def _dangling_folder(tmp_path):
    (tmp_path / "raw").symlink_to(tmp_path / "unmounted")
    return tmp_path / "raw" / "3dshapes.h5", "dangling symbolic link"


def _file_as_folder(tmp_path):
    (tmp_path / "raw").write_text("not a folder")
    return tmp_path / "raw" / "3dshapes.h5", "cannot be read"


UNUSABLE = [_dangling_link, _link_loop, _directory, _fifo, _dangling_folder, _file_as_folder]


@pytest.mark.parametrize("make", UNUSABLE, ids=lambda make: make.__name__.strip("_"))
def test_an_unusable_official_path_is_an_error_not_a_fallback(tmp_path, make):
    """Something at the official path that cannot be read is an error in `auto` too; only nothing
    at all there falls back to the generator."""
    path, message = make(tmp_path)
    for source in ("auto", "official"):
        with pytest.raises(DatasetError, match=f"{re.escape(str(path))}.*{message}"):
            resolve_source("shapes3d", {"source": source, "path": str(path)})
    out = tmp_path / "data.h5"
    with pytest.raises(DatasetError, match=re.escape(str(path))):
        prepare_dataset("shapes3d", {"path": str(path)}, out)  # auto by default
    _expect_nothing_written(out)
    config = copy.deepcopy(load_config(ROOT / "config/demo.yaml"))
    config["datasets"]["dsprites"] = {"source": "auto", "path": str(path)}
    with pytest.raises(StudyError, match=f"datasets.dsprites.source: {re.escape(str(path))}"):
        Study(config)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_official_file_is_an_error(tmp_path):
    path = tmp_path / "3dshapes.h5"
    path.touch(mode=0o000)
    with pytest.raises(DatasetError, match=f"{re.escape(str(path))}.*cannot be read"):
        resolve_source("shapes3d", {"source": "auto", "path": str(path)})


def test_provenance_records_the_source_used(tmp_path, monkeypatch):
    fam = REGISTRY["mpi3d"]
    monkeypatch.setitem(REGISTRY, "mpi3d", DatasetFamily("mpi3d", MPI3D, fam.render, fam.generator_version))
    source = tmp_path / "mpi3d_toy.npz"
    fabricate("mpi3d", source)
    link = tmp_path / "link.npz"
    link.symlink_to(source)
    prepare_dataset("mpi3d", {"path": str(link)}, tmp_path / "official.h5")
    prov = read_provenance(tmp_path / "official.h5")
    assert prov["source"] == "official" and prov["file"] == str(link)
    assert prov["file_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    prepare_dataset("mpi3d", {"path": str(tmp_path / "absent.npz")}, tmp_path / "generated.h5")
    prov = read_provenance(tmp_path / "generated.h5")
    assert prov["source"] == "procedural" and "file" not in prov and "file_sha256" not in prov
