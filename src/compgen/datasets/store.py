"""The prepared-dataset HDF5 layout: write in chunks, read rows by index."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import h5py
import numpy as np

from compgen.atomic import atomic_path
from compgen.datasets import declared_kinds
from compgen.datasets.blank import MAX_BLANK_SHARE, PER_VALUE, BlankCheck
from compgen.grid import Grid

LAYOUT_VERSION = 1
CHUNK_IMAGES = 256  # images per HDF5 chunk: small enough for random access by index
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DatasetError(ValueError):
    """A prepared dataset file that is missing, corrupt or does not match its grid."""


def write_dataset(
    path: str | os.PathLike,
    grid: Grid,
    render: Callable[[np.ndarray], np.ndarray],
    provenance: dict,
    batch: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    origin: str | None = None,
) -> None:
    """Render every grid cell in C order, `batch` images at a time, into `path` atomically.

    `render(classes)` gets an (n x K) block of grid classes and returns n x H x W x C uint8 images.
    A factor value whose sampled images are all blank is refused, naming `origin` (the file the
    images come from; `path` by default). A full disk is reported as such, leaving nothing behind.
    """
    try:
        _write(path, grid, render, provenance, batch, progress, origin or str(path))
    except (OSError, RuntimeError) as err:
        if _no_space(err):
            raise DatasetError(f"no space left on device while writing {path}") from err
        raise


def _write(path, grid, render, provenance, batch, progress, origin) -> None:
    n, shape = grid.n, grid.image_shape
    blank = BlankCheck(grid)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset(
                "images", shape=(n, *shape), dtype=np.uint8, chunks=(min(CHUNK_IMAGES, n), *shape)
            )
            classes_ds = f.create_dataset("factor_classes", shape=(n, len(grid.sizes)), dtype=np.int16)
            values_ds = f.create_dataset("factor_values", shape=(n, len(grid.sizes)), dtype=np.float64)
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                classes = grid.classes(np.arange(start, stop))
                block = render(classes)
                if block.shape != (stop - start, *shape) or block.dtype != np.uint8:
                    raise DatasetError(
                        f"{path}: renderer returned {block.shape} {block.dtype}, "
                        f"expected {(stop - start, *shape)} uint8"
                    )
                blank.see(start, block)
                images[start:stop] = block
                classes_ds[start:stop] = classes
                values_ds[start:stop] = grid.values(classes)
                if progress:
                    progress(stop, n)
            if (value := blank.blank_value()) is not None:
                raise DatasetError(
                    f"{origin}: every sampled image with {value} is blank (all pixels equal; up to "
                    f"{PER_VALUE} checked per value): the images of that value are missing or damaged"
                )
            if (share := blank.blank_across()) is not None:
                raise DatasetError(
                    f"{origin}: {share[0]:,} of {share[1]:,} images sampled across the file are blank "
                    f"(all pixels equal; at most {MAX_BLANK_SHARE:.0%} may be): the file is damaged"
                )
            _write_attrs(f, grid, provenance)


def _no_space(err: BaseException | None) -> bool:
    """Whether `err`, or an error it was raised while handling, is a full disk (or quota).

    h5py reports it as an OSError whose text (not always its errno) says so, and closing the file
    afterwards raises a RuntimeError about reference counts that hides the first error.
    """
    for _ in range(8):  # the chain of causes is short; a bound guards against a cycle
        if err is None:
            return False
        text = str(err).lower()
        if (
            getattr(err, "errno", None) in NO_SPACE
            or "no space left on device" in text
            or "quota exceeded" in text
        ):
            return True
        err = err.__cause__ or err.__context__
    return False


def _write_attrs(f: h5py.File, grid: Grid, provenance: dict) -> None:
    f.attrs["layout_version"] = LAYOUT_VERSION
    f.attrs["grid"] = json.dumps(grid.to_attrs())
    f.attrs["provenance"] = json.dumps(provenance, sort_keys=True)
    for key, value in provenance.items():
        if isinstance(value, (str, int, float)):
            f.attrs[key] = value


def _stored_grid(f: h5py.File) -> Grid:
    """The file's grid; one prepared before factors had kinds takes its dataset's declared kinds."""
    attrs = json.loads(f.attrs["grid"])
    return Grid.from_attrs(attrs, declared_kinds(attrs["factor_names"]))


def read_grid(path: str | os.PathLike) -> Grid:
    with _open(path) as f:
        return _stored_grid(f)


def read_provenance(path: str | os.PathLike) -> dict:
    with _open(path) as f:
        return json.loads(f.attrs["provenance"])


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: prepared dataset not found (run the prepare_dataset rule)")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"{path}: not a readable HDF5 file ({err})") from err
    missing = [k for k in ("images", "factor_classes", "factor_values") if k not in f]
    if missing or "grid" not in f.attrs:
        f.close()
        raise DatasetError(f"{path}: missing {missing or ['grid attribute']}; not a compgen dataset")
    return f


def read_rows(
    path: str | os.PathLike, indices: Iterable[int], key: str = "images", block: int = 1024
) -> np.ndarray:
    """Rows `indices` (any order, repeats allowed) of `key`, reading only the blocks that hold them.

    h5py's point selection costs about 1 ms per row, so each block of `block` rows that holds a
    wanted row is read as one slice from its first to its last wanted row, and picked in memory.
    """
    indices = np.asarray(indices, dtype=np.int64)
    with _open(path) as f:
        ds = f[key]
        if indices.size and (indices.min() < 0 or indices.max() >= ds.shape[0]):
            raise DatasetError(f"{path}: index out of range for {key!r} with {ds.shape[0]} rows")
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        out = np.empty((indices.size, *ds.shape[1:]), dtype=ds.dtype)
        for block_id in np.unique(sorted_idx // block):
            lo, hi = np.searchsorted(sorted_idx, [block_id * block, (block_id + 1) * block])
            wanted = sorted_idx[lo:hi]
            span = ds[int(wanted[0]) : int(wanted[-1]) + 1]
            out[order[lo:hi]] = span[wanted - wanted[0]]
        return out


SAMPLE_ROWS = 4096  # about as many rows compared with the grid, strided over the whole file
NAN_BLOCK = 1 << 16  # factor_values rows scanned for NaN at a time


def check_dataset(path: str | os.PathLike) -> Grid:
    """Open, check the file against its grid, and return the grid.

    Checked: every array's shape and the image dtype; factor_values free of NaN; and on strided
    rows (first and last included) that factor_classes are the C-order grid and factor_values the
    grid's values, which is what every index into the file assumes.
    """
    with _open(path) as f:
        grid = _stored_grid(f)
        expected = {
            "images": (grid.n, *grid.image_shape),
            "factor_classes": (grid.n, len(grid.sizes)),
            "factor_values": (grid.n, len(grid.sizes)),
        }
        for key, shape in expected.items():
            if tuple(f[key].shape) != shape:
                raise DatasetError(
                    f"{path}: {key!r} has shape {f[key].shape}, expected {shape} "
                    f"for the grid {dict(zip(grid.names, grid.sizes, strict=True))}"
                )
        if f["images"].dtype != np.uint8:
            raise DatasetError(f"{path}: 'images' has dtype {f['images'].dtype}, expected uint8")
        values = f["factor_values"]
        for start in range(0, grid.n, NAN_BLOCK):
            bad = np.isnan(values[start : start + NAN_BLOCK]).any(axis=0)
            if bad.any():
                names = [name for name, b in zip(grid.names, bad, strict=True) if b]
                raise DatasetError(
                    f"{path}: 'factor_values' has NaN for factor(s) {names} (rows from {start})"
                )
        # Hyperslabs, not a point selection: h5py reads points at about 1 ms each.
        step = max(1, grid.n // SAMPLE_ROWS)
        rows = np.append(np.arange(0, grid.n, step), grid.n - 1)
        classes = np.concatenate([f["factor_classes"][::step], f["factor_classes"][-1:]])
        values = np.concatenate([values[::step], values[-1:]])
        expected_classes = grid.classes(rows)
        wrong = np.flatnonzero((classes != expected_classes).any(axis=1))
        if wrong.size:
            row = int(rows[wrong[0]])
            raise DatasetError(
                f"{path}: 'factor_classes' do not form the {grid.sizes} grid in C order: row {row} has "
                f"{classes[wrong[0]].tolist()}, expected {expected_classes[wrong[0]].tolist()}"
            )
        on_grid = np.isclose(values, grid.values(expected_classes), rtol=0, atol=1e-6).all(axis=1)
        wrong = np.flatnonzero(~on_grid)
        if wrong.size:
            raise DatasetError(
                f"{path}: 'factor_values' of row {int(rows[wrong[0]])} are {values[wrong[0]].tolist()}, "
                f"expected the grid's {grid.values(expected_classes[wrong[:1]])[0].tolist()}"
            )
    return grid
