"""prepare_dataset: render a (subsampled) grid into the HDF5 layout, with provenance."""

from __future__ import annotations

import datetime as dt
import logging
import os

from compgen import __version__
from compgen.datasets import family
from compgen.datasets.store import write_dataset

log = logging.getLogger(__name__)


def prepare_dataset(name: str, settings: dict, out_path: str | os.PathLike) -> None:
    source = settings.get("source", "procedural")
    if source != "procedural":
        raise ValueError(f"datasets.{name}.source: {source!r} is not supported; allowed: procedural")
    fam = family(name)
    subsample = dict(settings.get("subsample") or {})
    grid = fam.grid.subsample(subsample)
    provenance = {
        "dataset": name,
        "source": "procedural",
        "generator": f"compgen.datasets.{fam.name}",
        "generator_version": fam.generator_version,
        "compgen_version": __version__,
        "subsample": subsample,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    log.info("rendering %s: %d images of %s", name, grid.n, grid.image_shape)

    def progress(done: int, total: int) -> None:
        log.info("%s: %d/%d images", name, done, total)

    write_dataset(out_path, grid, lambda classes: fam.render(grid, classes), provenance, progress=progress)
