"""Dataset preview: one row per factor, that factor swept while the others stay fixed."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from compgen.datasets.store import read_grid, read_rows
from compgen.figio import save_figure

MAX_COLUMNS = 10


def sweep_indices(sizes: tuple[int, ...], axis: int, n_columns: int = MAX_COLUMNS) -> np.ndarray:
    """Flat indices that sweep factor `axis` over evenly spaced classes, others at their middle."""
    base = np.array([s // 2 for s in sizes], dtype=np.int64)
    classes = np.unique(np.linspace(0, sizes[axis] - 1, min(n_columns, sizes[axis])).round().astype(np.int64))
    codes = np.repeat(base[None], len(classes), axis=0)
    codes[:, axis] = classes
    return np.ravel_multi_index(tuple(codes.T), sizes)


def plot_preview(dataset_path: str | os.PathLike, out_path: str | os.PathLike, title: str = "") -> None:
    grid = read_grid(dataset_path)
    rows = [sweep_indices(grid.sizes, k) for k in range(len(grid.sizes))]
    n_cols = max(len(r) for r in rows)
    fig = Figure(figsize=(1.1 * n_cols + 1.2, 1.1 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for k, (factor, indices) in enumerate(zip(grid.factors, rows, strict=True)):
        images = read_rows(dataset_path, indices)
        classes = grid.classes(indices)[:, k]
        for j in range(n_cols):
            ax = axes[k, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(indices):
                ax.axis("off")
                continue
            img = images[j]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            label = factor.labels[classes[j]] if factor.labels else f"{factor.values[classes[j]]:.3g}"
            ax.set_title(label, fontsize=7, pad=2)
        axes[k, 0].set_ylabel(factor.name, fontsize=8)
    fig.suptitle(title or "factor sweeps (others fixed at their middle value)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out_path)
