"""The prepared-dataset HDF5 layout: write in chunks, read rows by index."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

import h5py
import numpy as np

from compgen.atomic import atomic_path
from compgen.grid import Grid

LAYOUT_VERSION = 1
CHUNK_IMAGES = 256  # images per HDF5 chunk: small enough for random access by index


class DatasetError(ValueError):
    """A prepared dataset file that is missing, corrupt or does not match its grid."""


def write_dataset(
    path: str | os.PathLike,
    grid: Grid,
    render: Callable[[np.ndarray], np.ndarray],
    provenance: dict,
    batch: int = 4096,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Render every grid cell in C order, `batch` images at a time, into `path` atomically.

    `render(classes)` gets an (n x K) block of grid classes and returns n x H x W x C uint8 images.
    """
    n, shape = grid.n, grid.image_shape
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
                images[start:stop] = block
                classes_ds[start:stop] = classes
                values_ds[start:stop] = grid.values(classes)
                if progress:
                    progress(stop, n)
            _write_attrs(f, grid, provenance)


def _write_attrs(f: h5py.File, grid: Grid, provenance: dict) -> None:
    f.attrs["layout_version"] = LAYOUT_VERSION
    f.attrs["grid"] = json.dumps(grid.to_attrs())
    f.attrs["provenance"] = json.dumps(provenance, sort_keys=True)
    for key, value in provenance.items():
        if isinstance(value, (str, int, float)):
            f.attrs[key] = value


def read_grid(path: str | os.PathLike) -> Grid:
    with _open(path) as f:
        return Grid.from_attrs(json.loads(f.attrs["grid"]))


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


def read_rows(path: str | os.PathLike, indices: Iterable[int], key: str = "images", block: int = 1024) -> np.ndarray:
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


def check_dataset(path: str | os.PathLike) -> Grid:
    """Open, validate shapes against the grid, and return the grid."""
    with _open(path) as f:
        grid = Grid.from_attrs(json.loads(f.attrs["grid"]))
        expected = {
            "images": (grid.n, *grid.image_shape),
            "factor_classes": (grid.n, len(grid.sizes)),
            "factor_values": (grid.n, len(grid.sizes)),
        }
        for key, shape in expected.items():
            if tuple(f[key].shape) != shape:
                raise DatasetError(f"{path}: {key!r} has shape {f[key].shape}, expected {shape}")
    return grid
