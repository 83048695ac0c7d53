"""Blank images: a factor value whose images are all constant (every pixel equal), or a file in
which many images are, is a damaged file or a broken generator, not data. Checked cheaply on a
seeded sample: a few images per value, and ACROSS images spread over the whole file (a file whose
every second image is blank leaves no value blank)."""

from __future__ import annotations

import numpy as np

from compgen.grid import Grid

PER_VALUE = 8  # images sampled per factor value (all of them where a value has fewer)
ACROSS = 1024  # images sampled uniformly across the file (all of them in a smaller file)
# Real datasets hold no blank image; a share above this in the sample across the file is damage.
MAX_BLANK_SHARE = 0.05


class BlankCheck:
    """Sees the images as they are written (`see`), then names a value whose sample is all blank."""

    def __init__(self, grid: Grid, per_value: int = PER_VALUE, seed: int = 0, across: int = ACROSS):
        rng = np.random.default_rng(seed)
        self.grid = grid
        self.groups: list[tuple[int, int, np.ndarray]] = []  # (factor, class, sampled rows)
        for k, size in enumerate(grid.sizes):
            for c in range(size):
                if grid.n // size <= per_value:  # a small (subsampled) grid: every image of the value
                    codes = grid.all_classes()
                    codes = codes[codes[:, k] == c]
                else:
                    codes = rng.integers(0, grid.sizes, size=(per_value, len(grid.sizes)))
                    codes[:, k] = c
                self.groups.append((k, c, np.unique(grid.index(codes))))
        self.spread = np.sort(rng.choice(grid.n, size=min(across, grid.n), replace=False))
        self.rows = np.unique(np.concatenate([self.spread, *(rows for *_, rows in self.groups)]))
        self.constant = np.zeros(self.rows.size, dtype=bool)

    def see(self, start: int, images: np.ndarray) -> None:
        """Images of rows start, start + 1, ... (n x H x W x C)."""
        lo, hi = np.searchsorted(self.rows, [start, start + len(images)])
        if lo == hi:  # most blocks of a large grid hold no sampled row
            return
        flat = images[self.rows[lo:hi] - start].reshape(hi - lo, -1)
        self.constant[lo:hi] = (flat == flat[:, :1]).all(axis=1)

    def blank_value(self) -> str | None:
        """'factor = value' of the first value whose sampled images are all blank, or None."""
        for k, c, rows in self.groups:
            if self.constant[np.searchsorted(self.rows, rows)].all():
                factor = self.grid.factors[k]
                label = factor.labels[c] if factor.labels else f"{factor.values[c]:g}"
                return f"{factor.name} = {label}"
        return None

    def blank_across(self) -> tuple[int, int] | None:
        """(blank, sampled) images of the sample across the file, where more than MAX_BLANK_SHARE
        of it is blank; else None."""
        if not self.spread.size:
            return None
        blank = int(self.constant[np.searchsorted(self.rows, self.spread)].sum())
        return (blank, self.spread.size) if blank > MAX_BLANK_SHARE * self.spread.size else None
