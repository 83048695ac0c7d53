"""Official dataset files (dSprites npz, 3DShapes h5, MPI3D npz) converted to the prepared layout.

Files are checked before anything is written: keys, shapes, dtypes, labels forming the expected
grid in C order, and the integrity of every zip member read. Images are then streamed in blocks,
so a 12.7 GB file is never held in memory. Nothing is ever unpickled: npz arrays are read with
`allow_pickle=False` or through their .npy headers, and dSprites' pickled `metadata` is never read.
Nothing outside an array is read either: a .npy header must match its zip entry's size, and an
HDF5 key must be a dataset stored in the file (no external link, external storage or virtual dataset).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from compgen.datasets import family
from compgen.datasets.store import DatasetError, write_dataset
from compgen.grid import Grid

OFFICIAL_FILES = {
    "dsprites": "data/raw/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    "shapes3d": "data/raw/shapes3d/3dshapes.h5",
    # The real-world photographs, which the papers used; mpi3d_toy.npz / mpi3d_realistic.npz via `path`.
    "mpi3d": "data/raw/mpi3d/mpi3d_real.npz",
}
LABEL_TOLERANCE = 1e-6
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header, before name and extra field
_BLOCK = 4096  # rows read as one contiguous span


def official_path(name: str, settings: dict) -> Path | None:
    """Where the official file of `name` is expected (None: the dataset has no official release)."""
    if name not in OFFICIAL_FILES:
        return None
    return Path(settings.get("path") or OFFICIAL_FILES[name])


def resolve_source(name: str, settings: dict) -> tuple[str, Path | None]:
    """('official', path) or ('procedural', None), as `datasets.<name>.source` and the disk say.

    In `auto`, only nothing at all at the path falls back to the generator: a dangling link (an
    unmounted share), a folder or an unreadable file there is an error, so the data cannot switch
    silently between the official file and the generator from one run to the next.
    """
    source = settings.get("source", "auto")
    path = official_path(name, settings)
    if source == "procedural":
        return "procedural", None
    if source == "official":
        if path is None:
            raise DatasetError(f"dataset {name!r} has no official release; use source: procedural")
        if not _present(name, path):
            raise DatasetError(
                f"{path}: official {name} file not found (expected {Path(OFFICIAL_FILES[name]).name} "
                f"at datasets.{name}.path, default {OFFICIAL_FILES[name]})"
            )
        return "official", path
    if source == "auto":
        return ("official", path) if path is not None and _present(name, path) else ("procedural", None)
    raise DatasetError(f"datasets.{name}.source: {source!r}; allowed: auto, procedural, official")


def _present(name: str, path: Path) -> bool:
    """True if a readable regular file is at `path`, False if nothing is there; else an error."""
    fix = f"fix it, or set datasets.{name}.source: procedural to generate {name} instead"
    try:
        info = path.stat()
    except FileNotFoundError:
        link = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
        if link is None:
            return False
        where = "" if link == path else f"{link} is "
        raise DatasetError(
            f"{path}: {where}a dangling symbolic link to {os.readlink(link)} (an unmounted share?); {fix}"
        ) from None
    except OSError as err:  # a link loop, a file where a folder should be, a folder we cannot enter
        raise DatasetError(f"{path}: official {name} file cannot be read ({err.strerror}); {fix}") from err
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
        raise DatasetError(f"{path}: not a regular file but {kind}; {fix}")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise DatasetError(f"{path}: official {name} file cannot be read ({err.strerror}); {fix}") from err
    return True


# -- reading arrays without loading them -----------------------------------------------------


class _NpzArrays:
    """The .npy members of an npz: headers, small arrays, and row spans of large ones."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except READ_ERRORS as err:
            raise DatasetError(
                f"{path}: not a readable npz (zip) file: truncated or corrupted ({err})"
            ) from err
        self.keys = {n[:-4] for n in self.zip.namelist() if n.endswith(".npy")}
        self._opened: list = []

    def close(self) -> None:
        for stream in self._opened:
            stream.close()
        self.zip.close()

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
        """(shape, dtype, bytes before the data) from the member's .npy header."""
        try:
            with self.zip.open(f"{key}.npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
                offset = f.tell()
        except READ_ERRORS as err:
            raise DatasetError(f"{self.path}: cannot read the header of {key!r} ({err})") from err
        if dtype.hasobject:
            raise DatasetError(f"{self.path}: {key!r} holds Python objects; refusing to unpickle it")
        if fortran:
            raise DatasetError(f"{self.path}: {key!r} is stored in Fortran order, expected C order")
        # A header claiming more rows than its member holds would have the rows read from whatever
        # follows the member in the archive, which the member's CRC does not cover.
        info = self.zip.getinfo(f"{key}.npy")
        declared = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if declared != info.file_size:
            raise DatasetError(
                f"{self.path}: {key!r} declares {declared} bytes in its .npy header, its zip entry "
                f"holds {info.file_size} (shape {tuple(shape)} of {dtype}: crafted or corrupted)"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise DatasetError(
                f"{self.path}: {key!r} is stored uncompressed in {info.compress_size} bytes "
                f"but its zip entry says {info.file_size}"
            )
        return tuple(shape), dtype, offset

    def load(self, key: str) -> np.ndarray:
        """A small array, read whole (never unpickled)."""
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                return npz[key]
        except READ_ERRORS as err:
            raise DatasetError(f"{self.path}: cannot read {key!r} ({err})") from err

    def rows(self, key: str) -> Callable[[int, int], np.ndarray]:
        """span(start, stop) -> rows of `key`: read in place if stored, decompressed in order if not.

        Stored members are read with plain file reads rather than a memory map, whose touched
        pages would count towards the process's memory for the whole 12.7 GB file.
        """
        shape, dtype, offset = self.header(key)
        info = self.zip.getinfo(f"{key}.npy")
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        if info.compress_type == zipfile.ZIP_STORED:
            stream = open(self.path, "rb")
            self._opened.append(stream)
            stream.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(stream.read(_LOCAL_HEADER.size))
            offset += info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
            if offset + shape[0] * row_bytes > self.path.stat().st_size:
                raise DatasetError(f"{self.path}: {key!r} is truncated (file shorter than its {shape} array)")
        else:
            stream = self.zip.open(info)  # seeking forward decompresses and skips; rows are read in order
            self._opened.append(stream)

        def span(a: int, b: int) -> np.ndarray:
            stream.seek(offset + a * row_bytes)
            data = stream.read((b - a) * row_bytes)
            if len(data) != (b - a) * row_bytes:
                raise DatasetError(f"{self.path}: {key!r} is truncated at row {a + len(data) // row_bytes}")
            return np.frombuffer(data, dtype=dtype).reshape(b - a, *shape[1:])

        return span

    def verify(self, keys) -> None:
        """Read members through zipfile to their end, so their CRC-32 is checked."""
        for key in keys:
            try:
                with self.zip.open(f"{key}.npy") as f:
                    while f.read(1 << 24):
                        pass
            except READ_ERRORS as err:
                raise DatasetError(f"{self.path}: {key!r} is corrupted or truncated ({err})") from err


def _read_sorted(span: Callable[[int, int], np.ndarray], indices: np.ndarray) -> np.ndarray:
    """Rows at ascending `indices`, reading one contiguous span per block of rows."""
    parts = []
    for block in np.unique(indices // _BLOCK):
        lo, hi = np.searchsorted(indices, [block * _BLOCK, (block + 1) * _BLOCK])
        wanted = indices[lo:hi]
        parts.append(span(int(wanted[0]), int(wanted[-1]) + 1)[wanted - wanted[0]])
    return np.concatenate(parts)


_KINDS = {"iu": "an integer dtype", "f": "a float dtype", "u1": "uint8"}


def _expect(path: Path, key: str, shape, kinds: str, actual_shape, actual_dtype: np.dtype) -> None:
    """Shape must match; dtype must be uint8 ("u1") or of one of the numpy `kinds`."""
    if tuple(actual_shape) != tuple(shape):
        raise DatasetError(f"{path}: {key!r} has shape {tuple(actual_shape)}, expected {tuple(shape)}")
    ok = actual_dtype == np.uint8 if kinds == "u1" else actual_dtype.kind in kinds
    if not ok:
        raise DatasetError(f"{path}: {key!r} has dtype {actual_dtype}, expected {_KINDS[kinds]}")


def _expect_keys(path: Path, keys: set[str], required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in keys]
    if missing:
        raise DatasetError(
            f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(sorted(keys)) or 'none'}"
        )


def _check_grid(path: Path, key: str, labels: np.ndarray, expected: np.ndarray, grid: Grid) -> None:
    """Labels must be the grid in C order (row i = unravel_index(i, sizes))."""
    bad = ~np.isclose(labels, expected, rtol=0, atol=LABEL_TOLERANCE)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DatasetError(
            f"{path}: {key!r} is not the full {'x'.join(map(str, grid.sizes))} grid in C order: "
            f"row {row} has {grid.names[col]} = {labels[row, col]:g}, expected {expected[row, col]:g}"
        )


def _h5_dataset(path: Path, f: h5py.File, key: str) -> h5py.Dataset:
    """f[key], if it is a dataset whose data is in `f` itself.

    External links, virtual datasets and external storage all make HDF5 read other files, so a
    crafted file could copy any file on the machine (/etc/passwd, say) into the prepared dataset.
    """
    link = f.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise DatasetError(
            f"{path}: {key!r} is an external link to {link.filename}:{link.path}, expected a dataset "
            "in the file; refusing to read outside it"
        )
    try:
        obj = f.get(key)
    except READ_ERRORS as err:
        raise DatasetError(f"{path}: cannot open {key!r} ({err})") from err
    if obj is None:  # only a link to nothing; a missing key was reported before
        target = link.path if isinstance(link, h5py.SoftLink) else "nothing"
        raise DatasetError(f"{path}: {key!r} is a broken link to {target}, expected a dataset")
    if not isinstance(obj, h5py.Dataset):
        kind = "a group" if isinstance(obj, h5py.Group) else "a named datatype"
        raise DatasetError(f"{path}: {key!r} is {kind}, expected a dataset")
    if obj.id.fileno != f.id.fileno:  # reached through a soft link to an external link
        raise DatasetError(
            f"{path}: {key!r} is stored in another file ({obj.file.filename}); refusing to read outside it"
        )
    if obj.is_virtual:
        raise DatasetError(
            f"{path}: {key!r} is a virtual dataset (mapped from other files); refusing to read outside it"
        )
    if obj.external:
        files = ", ".join(sorted({str(name) for name, *_ in obj.external}))
        raise DatasetError(
            f"{path}: {key!r} has external storage in {files}; refusing to read outside the file"
        )
    return obj


# -- the three formats -----------------------------------------------------------------------


class OfficialFile:
    """An official file checked against the expected full grid; `images(indices)` reads rows."""

    def __init__(self, name: str, path: str | os.PathLike, full_grid: Grid):
        self.name, self.path, self.grid = name, Path(path), full_grid
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: official {name} file not found")
        self._npz: _NpzArrays | None = None
        self._h5: h5py.File | None = None
        self._binary = False
        opener = {"dsprites": self._open_dsprites, "shapes3d": self._open_shapes3d, "mpi3d": self._open_mpi3d}
        if name not in opener:
            raise DatasetError(f"dataset {name!r} has no official release")
        try:
            opener[name]()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> OfficialFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._npz is not None:
            self._npz.close()
        if self._h5 is not None:
            self._h5.close()

    def _image_rows(self, shape, dtype):
        n, (h, w, c) = self.grid.n, self.grid.image_shape
        expected = (n, h, w) if self._binary else (n, h, w, c)
        _expect(self.path, self._image_key, expected, "u1", shape, dtype)

    def _open_dsprites(self) -> None:
        self._npz = npz = _NpzArrays(self.path)
        self._image_key, self._binary = "imgs", True
        _expect_keys(self.path, npz.keys, ("imgs", "latents_classes", "latents_values"))
        shape, dtype, _ = npz.header("imgs")
        self._image_rows(shape, dtype)
        k = len(self.grid.sizes)
        for key, kinds in (("latents_classes", "iu"), ("latents_values", "f")):
            shape, dtype, _ = npz.header(key)
            _expect(self.path, key, (self.grid.n, k + 1), kinds, shape, dtype)
        classes, values = npz.load("latents_classes"), npz.load("latents_values")
        for key, labels in (("latents_classes", classes), ("latents_values", values)):
            if not (labels[:, 0] == labels[0, 0]).all():
                raise DatasetError(f"{self.path}: {key!r} column 0 (colour) is not constant")
        codes = self.grid.all_classes()
        _check_grid(self.path, "latents_classes", classes[:, 1:], codes, self.grid)
        _check_grid(self.path, "latents_values", values[:, 1:], self.grid.values(codes), self.grid)
        self._span = npz.rows("imgs")
        self._verify_keys = ("imgs", "latents_classes", "latents_values")

    def _open_shapes3d(self) -> None:
        try:
            self._h5 = f = h5py.File(self.path, "r")
        except OSError as err:
            raise DatasetError(
                f"{self.path}: not a readable HDF5 file: truncated or corrupted ({err})"
            ) from err
        self._image_key = "images"
        _expect_keys(self.path, set(f.keys()), ("images", "labels"))
        images, labels_ds = _h5_dataset(self.path, f, "images"), _h5_dataset(self.path, f, "labels")
        self._image_rows(images.shape, images.dtype)
        labels_shape = (self.grid.n, len(self.grid.sizes))
        _expect(self.path, "labels", labels_shape, "f", labels_ds.shape, labels_ds.dtype)
        try:
            labels = labels_ds[:]
        except READ_ERRORS as err:
            raise DatasetError(f"{self.path}: cannot read 'labels' ({err})") from err
        _check_grid(self.path, "labels", labels, self.grid.values(self.grid.all_classes()), self.grid)
        self._span = lambda a, b: images[a:b]
        self._verify_keys = ()

    def _open_mpi3d(self) -> None:
        self._npz = npz = _NpzArrays(self.path)
        self._image_key = "images"
        _expect_keys(self.path, npz.keys, ("images",))
        shape, dtype, _ = npz.header("images")
        self._image_rows(shape, dtype)  # the factors are the grid itself: row i is unravel_index(i)
        self._span = npz.rows("images")
        self._verify_keys = ("images",)

    def verify(self) -> str:
        """Check the integrity of the members that will be read; return the file's SHA-256."""
        if self._npz is not None:
            self._npz.verify(self._verify_keys)
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
        return digest.hexdigest()

    def images(self, indices: np.ndarray) -> np.ndarray:
        """Images (n x H x W x C uint8) at ascending full-grid `indices`."""
        try:
            rows = _read_sorted(self._span, np.asarray(indices, dtype=np.int64))
        except DatasetError:
            raise
        except READ_ERRORS as err:
            raise DatasetError(f"{self.path}: cannot read {self._image_key!r} ({err})") from err
        if self._binary:
            if rows.max(initial=0) > 1:
                raise DatasetError(
                    f"{self.path}: {self._image_key!r} holds values above 1, expected binary 0/1"
                )
            return (rows * np.uint8(255))[..., None]
        return rows


def convert_official(
    name: str,
    source_path: str | os.PathLike,
    out_path: str | os.PathLike,
    provenance: dict,
    subsample: dict[str, int] | None = None,
    full_grid: Grid | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Check the official file against `full_grid` (the registry's by default) and write the
    (subsampled) grid's rows to `out_path`; on any mismatch nothing is written."""
    full_grid = full_grid or family(name).grid
    grid = full_grid.subsample(subsample)
    with OfficialFile(name, source_path, full_grid) as official:
        provenance = dict(provenance, source="official", file=str(source_path), file_sha256=official.verify())

        def read(classes: np.ndarray) -> np.ndarray:
            return official.images(full_grid.index(grid.full_classes(classes)))

        write_dataset(out_path, grid, read, provenance, progress=progress, origin=str(source_path))
