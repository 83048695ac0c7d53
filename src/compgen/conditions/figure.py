"""The split figure: which combinations of a condition's two main factors were held out."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from compgen.conditions import load_split
from compgen.figio import save_figure
from compgen.grid import Grid

# Cell states: 0 no image, 1 only training, 2 both, 3 only held out.
STATE_COLOURS = ["#d9d9d9", "#9ecae1", "#c994c7", "#e41a1c"]
STATE_NAMES = ["excluded", "training", "mixed", "held out"]
MAX_ANNOTATED_CELLS = 16 * 16


def cell_counts(grid: Grid, indices: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    """Images per (factor i class, factor j class) cell, over all other factors."""
    classes = grid.classes(indices)
    counts = np.zeros((grid.sizes[axes[0]], grid.sizes[axes[1]]), dtype=np.int64)
    np.add.at(counts, (classes[:, axes[0]], classes[:, axes[1]]), 1)
    return counts


def _tick_labels(factor) -> list[str]:
    return list(factor.labels) if factor.labels else [f"{v:.3g}" for v in factor.values]


def plot_split(
    grid: Grid, split_path, factors: tuple[str, str], out_path: str | os.PathLike, title: str = ""
) -> None:
    train, test = load_split(split_path)
    axes = (grid.axis(factors[0]), grid.axis(factors[1]))
    n_train, n_test = cell_counts(grid, train, axes), cell_counts(grid, test, axes)
    state = (n_train > 0) * 1 + (n_test > 0) * 2
    state = np.where(state == 3, 2, np.where(state == 2, 3, state))  # both -> mixed, test only -> held out
    rows, cols = state.shape
    fig = Figure(figsize=(3.2 + 0.18 * cols, max(2.6, 1.6 + 0.18 * rows)))
    ax = fig.subplots()
    cmap = ListedColormap(STATE_COLOURS)
    ax.imshow(state, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest")
    # Thin white lines between cells, so single combinations can be counted.
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    if rows * cols <= MAX_ANNOTATED_CELLS:
        for r in range(rows):
            for c in range(cols):
                if n_test[r, c]:
                    ax.text(c, r, str(n_test[r, c]), ha="center", va="center", fontsize=6, color="white")
    fi, fj = grid.factors[axes[0]], grid.factors[axes[1]]
    step_r, step_c = max(1, rows // 12), max(1, cols // 16)
    ax.set_yticks(range(0, rows, step_r), _tick_labels(fi)[::step_r], fontsize=7)
    ax.set_xticks(range(0, cols, step_c), _tick_labels(fj)[::step_c], fontsize=7, rotation=90)
    ax.set_ylabel(fi.name)
    ax.set_xlabel(fj.name)
    held_out = f"held out {test.size:,}" if test.size else "nothing held out"  # family none
    ax.set_title(f"{title}\ntrain {train.size:,} · {held_out} · total {grid.n:,}", fontsize=9)
    present = sorted(set(np.unique(state).tolist()))
    ax.legend(
        handles=[Patch(color=STATE_COLOURS[s], label=STATE_NAMES[s]) for s in present],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    save_figure(fig, out_path)
