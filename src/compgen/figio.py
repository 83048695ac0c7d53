"""Save matplotlib figures deterministically (no timestamps or versions) and atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt

from compgen.atomic import atomic_path

# PNG and PDF writers embed software names and dates unless told not to.
_METADATA = {
    ".png": {"Software": None},
    ".pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:], dpi=dpi, metadata=_METADATA.get(path.suffix))
    plt.close(fig)
