"""Save figures deterministically (no timestamps or versions embedded) and atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from matplotlib import rc_context
from matplotlib.figure import Figure

from compgen.atomic import atomic_path

DPI = 100
# Metadata keys that would otherwise embed the matplotlib version or the creation time.
_STABLE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


# A note every figure saved inside `noted(...)` carries in its corner (e.g. "procedural stand-in"),
# so drawing code need not thread it through every plot function.
_NOTE: ContextVar[str] = ContextVar("figure_note", default="")


@contextmanager
def noted(note: str) -> Iterator[None]:
    token = _NOTE.set(note)
    try:
        yield
    finally:
        _NOTE.reset(token)


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    path = Path(path)
    if _NOTE.get():
        fig.text(
            0.995, 0.005, _NOTE.get(), ha="right", va="bottom", fontsize=9, color="#b2182b", style="italic"
        )
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in _STABLE_METADATA:
        raise ValueError(f"unsupported figure format {fmt!r} for {path}; use png, pdf or svg")
    # SVG element ids are random unless hashed from a fixed salt.
    with atomic_path(path) as tmp, rc_context({"svg.hashsalt": "compgen"}):
        # The temporary name has no image suffix, so the format is given explicitly.
        fig.savefig(tmp, format=fmt, dpi=DPI, metadata=_STABLE_METADATA[fmt])
