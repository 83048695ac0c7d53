"""What a prepared dataset's provenance says to a reader of its results.

A dataset with an official release that compgen rendered procedurally instead is a stand-in: its
numbers are not the paper's data, and every figure, table and report page says so."""

from __future__ import annotations

from collections.abc import Mapping

STAND_IN = "procedural stand-in"
# Datasets the papers used in an official release (Circles and Simple were generated there too).
OFFICIAL_RELEASES = frozenset({"dsprites", "shapes3d", "mpi3d"})


def is_stand_in(dataset: str, source: str | None) -> bool:
    return dataset in OFFICIAL_RELEASES and source == "procedural"


def data_note(provenance: Mapping) -> str:
    """ "procedural stand-in" for a dataset provenance (HDF5 attrs, or a run's `data` block) that
    records the generator in place of an official file; "" otherwise."""
    return STAND_IN if is_stand_in(str(provenance.get("dataset", "")), provenance.get("source")) else ""
