"""prepare_dataset: the official file when configured (or present), else the procedural generator,
written for the (subsampled) grid into the HDF5 layout with provenance."""

from __future__ import annotations

import datetime as dt
import logging
import os

from compgen import __version__
from compgen.datasets import family
from compgen.datasets.official import convert_official, resolve_source
from compgen.datasets.store import write_dataset

log = logging.getLogger(__name__)


def prepare_dataset(name: str, settings: dict, out_path: str | os.PathLike) -> None:
    fam = family(name)
    subsample = dict(settings.get("subsample") or {})
    grid = fam.grid.subsample(subsample)
    source, source_path = resolve_source(name, settings)
    provenance = {
        "dataset": name,
        "compgen_version": __version__,
        "subsample": subsample,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

    def progress(done: int, total: int) -> None:
        log.info("%s: %d/%d images", name, done, total)

    if source == "official":
        log.info("converting %s from %s: %d images of %s", name, source_path, grid.n, grid.image_shape)
        convert_official(name, source_path, out_path, provenance, subsample, fam.grid, progress)
        return
    provenance.update(
        source="procedural", generator=f"compgen.datasets.{fam.name}", generator_version=fam.generator_version
    )
    log.info("rendering %s: %d images of %s", name, grid.n, grid.image_shape)
    write_dataset(out_path, grid, lambda classes: fam.render(grid, classes), provenance, progress=progress)
