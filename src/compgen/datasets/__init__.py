"""Dataset registry: name -> full grid and procedural renderer (official files: `official`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compgen.datasets import mpi3d, shapes3d, sprites
from compgen.grid import ORDINAL, Grid


@dataclass(frozen=True)
class DatasetFamily:
    name: str
    grid: Grid  # the full grid of the original release
    render: Callable[[Grid, np.ndarray], np.ndarray]  # (grid, classes n x K) -> n x H x W x C uint8
    generator_version: str


REGISTRY: dict[str, DatasetFamily] = {
    "dsprites": DatasetFamily("dsprites", sprites.DSPRITES_GRID, sprites.render_dsprites, "sprites-2"),
    "circles": DatasetFamily("circles", sprites.CIRCLES_GRID, sprites.render_circles, "sprites-1"),
    "simple": DatasetFamily("simple", sprites.SIMPLE_GRID, sprites.render_simple, "sprites-1"),
    "shapes3d": DatasetFamily("shapes3d", shapes3d.SHAPES3D_GRID, shapes3d.render_shapes3d, "shapes3d-1"),
    "mpi3d": DatasetFamily("mpi3d", mpi3d.MPI3D_GRID, mpi3d.render_mpi3d, mpi3d.GENERATOR_VERSION),
}


def family(name: str) -> DatasetFamily:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(REGISTRY))}") from None


def dataset_grid(name: str, subsample: dict[str, int] | None = None) -> Grid:
    """The grid a dataset has after subsampling (computed without rendering anything)."""
    return family(name).grid.subsample(subsample)


def declared_kinds(names) -> list[tuple[str, float | None]]:
    """(kind, period) of each factor as declared by the registered dataset whose grid has exactly
    these factor names (a name alone is ambiguous: dSprites' orientation is an angle, 3DShapes' an
    arc of ±30°); every factor ordinal, Factor's default, for names no dataset has."""
    names = tuple(names)
    for entry in REGISTRY.values():
        if entry.grid.names == names:
            return [(f.kind, f.period) for f in entry.grid.factors]
    return [(ORDINAL, None)] * len(names)
