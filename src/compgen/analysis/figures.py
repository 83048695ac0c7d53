"""Figures of one run: Hinton matrix, reconstructions, latent representation, training curves.

Figures are built on `matplotlib.figure.Figure` directly (Agg canvas, no pyplot state), sized
exactly figsize x DPI (no tight bounding box), and saved without timestamps or version strings,
so the same inputs give byte-identical files. Output format follows the path's suffix.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from scipy.ndimage import gaussian_filter

from compgen.figio import DPI, save_figure

HELD_OUT_COLOUR = "red"
# The oracle's expected test distribution, as the original drew it: faint dark-red crosses.
ORACLE_COLOUR = (0.55, 0.0, 0.0)
ORACLE_LABEL = "expected (oracle)"
THROUGHPUT_COLUMNS = ("images_per_s", "seconds")


def plot_hinton(
    importance,
    factor_names: list[str],
    path: str | os.PathLike,
    figsize: tuple[float, float] | None = None,
    label: str = "",
) -> None:
    """Hinton diagram of |R| (latents x factors): square area proportional to magnitude; `label`
    (e.g. the DCI variant) goes into the title."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    n_latents, n_factors = r.shape
    if figsize is None:
        figsize = (1.5 + 0.6 * n_factors, 1.0 + 0.4 * n_latents)
    fig = Figure(figsize=figsize, dpi=DPI)
    ax = fig.add_subplot()
    peak = r.max()
    scale = r / peak if peak > 0 else r
    for latent in range(n_latents):
        for factor in range(n_factors):
            side = 0.9 * np.sqrt(scale[latent, factor])
            if side > 0:
                ax.add_patch(Rectangle((factor - side / 2, latent - side / 2), side, side, color="black"))
    ax.set_xlim(-0.5, n_factors - 0.5)
    ax.set_ylim(n_latents - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks(range(n_factors), factor_names, rotation=45, ha="right")
    ax.set_yticks(range(n_latents), [f"z{i}" for i in range(n_latents)])
    ax.set_xticks(np.arange(-0.5, n_factors), minor=True)
    ax.set_yticks(np.arange(-0.5, n_latents), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"|R|{', ' + label if label else ''} (max {peak:.3g})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _as_display_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    img = np.clip(img, 0.0, 1.0)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def draw_reconstruction_block(fig, spec, inputs, recons, title: str, row_labels: bool = True) -> None:
    """Inputs over reconstructions in one gridspec cell of `fig`; only the title when there are
    no images (an all-data reference has no held-out ones)."""
    if len(inputs) == 0:
        ax = fig.add_subplot(spec)
        ax.axis("off")
        ax.set_title(title, loc="left", fontsize=10)
        return
    n = len(inputs)
    inner = spec.subgridspec(2, n, wspace=0.04, hspace=0.04)
    for row, images in enumerate((inputs, recons)):
        for col in range(n):
            ax = fig.add_subplot(inner[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(images):
                ax.imshow(
                    _as_display_image(images[col]), cmap="gray", vmin=0, vmax=1, interpolation="nearest"
                )
            if row == 0 and col == 0:
                ax.set_title(title, loc="left", fontsize=10)
            if row_labels and col == 0:
                ax.set_ylabel(("input", "recon")[row], fontsize=9)


def plot_reconstructions(
    sections: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> None:
    """Inputs (top row) over reconstructions (bottom row), one block per section, side by side.

    Images are N x H x W x C (C = 1 or 3), uint8 or float in [0, 1].
    """
    sections = {name: (np.asarray(x), np.asarray(y)) for name, (x, y) in sections.items()}
    for name, (inputs, recons) in sections.items():
        if inputs.shape != recons.shape:
            raise ValueError(f"section {name!r}: inputs {inputs.shape} and recons {recons.shape} differ")
    counts = [max(len(inputs), 1) for inputs, _ in sections.values()]
    if figsize is None:
        figsize = (0.3 + 1.0 * sum(counts) + 0.3 * (len(counts) - 1), 2.6 + (0.3 if title else 0.0))
    fig = Figure(figsize=figsize, dpi=DPI)
    outer = fig.add_gridspec(1, len(sections), width_ratios=counts, wspace=0.08)
    for s, (name, (inputs, recons)) in enumerate(sections.items()):
        draw_reconstruction_block(fig, outer[s], inputs, recons, name, row_labels=s == 0)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.3 / figsize[0], right=0.99, bottom=0.03, top=0.80 if title else 0.88)
    save_figure(fig, path)


def _density_grid(points: np.ndarray, edges_x: np.ndarray, edges_y: np.ndarray) -> np.ndarray:
    """Smoothed 2D histogram, normalised to peak 1 (robust where a KDE would be singular)."""
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(edges_x, edges_y))
    density = gaussian_filter(counts, sigma=2.0, mode="constant")
    peak = density.max()
    return density / peak if peak > 0 else density


def _axis_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    lo, hi = (float(np.min(values)), float(np.max(values))) if len(values) else (0.0, 0.0)
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    return np.linspace(lo - pad, hi + pad, n_bins + 1)


def draw_latent_representation(
    ax,
    z: np.ndarray,
    factor_classes: np.ndarray,
    train_mask: np.ndarray,
    factor_axes: tuple[int, int],
    latent_axes: tuple[int, int],
    factor_names: list[str],
    min_points_for_contour: int = 5,
    oracle_samples: np.ndarray | None = None,
) -> ScalarMappable:
    """Draw the latent-representation contours on `ax`; returns the colour scale of factor i.

    As the original's `latent_rep_plot` (mmrl/lost-in-latent-space scripts/ingredients/analysis.py
    lines 368-369, 394-405): the first factor (`factor_axes[0]`, its `factor1`) on the y-axis and
    colouring the contours, the second on the x-axis.
    `oracle_samples` (... x 2, the plotted latents in `latent_axes` order): the oracle's expected
    test distribution, drawn as faint dark-red crosses; None (analysis files from before the
    oracle) draws none."""
    z = np.asarray(z, dtype=np.float64)
    factor_classes = np.asarray(factor_classes)
    train_mask = np.asarray(train_mask, dtype=bool)
    fi, fj = factor_axes
    la, lb = latent_axes
    xy = z[:, [lb, la]]  # x: the second factor's latent, y: the first's
    # A diverged model can give non-finite latents; they have no place on the axes.
    finite = np.isfinite(xy).all(axis=1)
    xy, factor_classes, train_mask = xy[finite], factor_classes[finite], train_mask[finite]
    if len(xy) == 0:
        xy = np.zeros((0, 2))
    expected = np.zeros((0, 2)) if oracle_samples is None else np.asarray(oracle_samples, dtype=np.float64)
    expected = expected.reshape(-1, 2)[:, ::-1]
    expected = expected[np.isfinite(expected).all(axis=1)]
    n_bins = 120
    # The axes also hold the expected points: where the encoder should have put the held-out ones.
    extent = np.concatenate([xy, expected])
    edges_x, edges_y = _axis_edges(extent[:, 0], n_bins), _axis_edges(extent[:, 1], n_bins)
    centres_x = (edges_x[:-1] + edges_x[1:]) / 2
    centres_y = (edges_y[:-1] + edges_y[1:]) / 2

    n_classes_i = int(factor_classes[:, fi].max()) + 1 if len(factor_classes) else 1
    norm = Normalize(vmin=0, vmax=max(n_classes_i - 1, 1))
    cmap = colormaps["viridis"]

    def draw(points: np.ndarray, colour, zorder: int) -> None:
        if len(points) < min_points_for_contour:
            ax.scatter(points[:, 0], points[:, 1], s=6, color=colour, zorder=zorder, linewidths=0)
            return
        density = _density_grid(points, edges_x, edges_y)
        if density.max() <= 0:
            return
        ax.contour(
            centres_x,
            centres_y,
            density.T,
            levels=[0.2, 0.6],
            colors=[colour],
            linewidths=[0.7, 1.1],
            zorder=zorder,
        )

    for held_out, mask in ((False, train_mask), (True, ~train_mask)):
        combos = np.unique(factor_classes[mask][:, [fi, fj]], axis=0)
        for ci, cj in combos:
            group = mask & (factor_classes[:, fi] == ci) & (factor_classes[:, fj] == cj)
            colour = HELD_OUT_COLOUR if held_out else cmap(norm(ci))
            draw(xy[group], colour, zorder=3 if held_out else 2)
    if len(expected):
        ax.scatter(
            expected[:, 0],
            expected[:, 1],
            marker="x",
            s=14,
            color=ORACLE_COLOUR,
            alpha=0.25,
            linewidths=0.8,
            zorder=4,
            label=ORACLE_LABEL,
        )

    ax.set_xlim(edges_x[0], edges_x[-1])
    ax.set_ylim(edges_y[0], edges_y[-1])
    ax.set_xlabel(f"z{lb} (matched to {factor_names[fj]})")
    ax.set_ylabel(f"z{la} (matched to {factor_names[fi]})")
    handles = [Line2D([], [], color=HELD_OUT_COLOUR, label="held out")] if (~train_mask).any() else []
    if len(expected):
        handles.append(
            Line2D([], [], color=ORACLE_COLOUR, marker="x", linestyle="none", alpha=0.6, label=ORACLE_LABEL)
        )
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    return ScalarMappable(norm=norm, cmap=cmap)


def plot_latent_representation(
    z: np.ndarray,
    factor_classes: np.ndarray,
    train_mask: np.ndarray,
    factor_axes: tuple[int, int],
    latent_axes: tuple[int, int],
    factor_names: list[str],
    path: str | os.PathLike,
    figsize: tuple[float, float] = (5.5, 4.5),
    min_points_for_contour: int = 5,
    oracle_samples: np.ndarray | None = None,
) -> None:
    """Density contours of two latents, one per training combination of two factors.

    y / x are latents `latent_axes` (those matched to factors `factor_axes`), the first factor on
    the y-axis as the original's figures. Each training
    combination (class of factor i, class of factor j) gets contours coloured by factor i's
    class; points outside `train_mask` (the held-out combinations) are drawn in red. Groups too
    small for a density are drawn as points. `oracle_samples`, when given, are the latent
    oracle's expected test distribution (dark-red crosses).
    """
    fig = Figure(figsize=figsize, dpi=DPI)
    ax = fig.add_subplot()
    mappable = draw_latent_representation(
        ax,
        z,
        factor_classes,
        train_mask,
        factor_axes,
        latent_axes,
        factor_names,
        min_points_for_contour,
        oracle_samples=oracle_samples,
    )
    colourbar = fig.colorbar(mappable, ax=ax, ticks=MaxNLocator(integer=True))
    colourbar.set_label(f"{factor_names[factor_axes[0]]} class (training)")
    fig.tight_layout()
    save_figure(fig, path)


# The fit probe's columns (compgen.training.fit_probe) share one panel, a line per factor.
FIT_PREFIX = "fit_"
FIT_PANEL = "fit on training images"
FIT_LABEL = "fit (chance-corrected)"
# The gap probe's (compgen.training.gap_probe): both excesses in one panel, the gap in its own.
EXCESS_PREFIX = "probe_excess_"
EXCESS_PANEL = "excess over the floor (probe)"
GAP_COLUMN = "probe_gap"
GAP_PANEL = "held-out / training excess (probe)"


def curve_panels(columns: list[str]) -> dict[str, list[str]]:
    """Panel title -> the columns it draws: `val_X` beside X, every `fit_<factor>` together."""
    panels: dict[str, list[str]] = {}
    for column in columns:
        if column.startswith(FIT_PREFIX):
            base = FIT_PANEL
        elif column.startswith(EXCESS_PREFIX):
            base = EXCESS_PANEL
        elif column == GAP_COLUMN:
            base = GAP_PANEL
        elif column.startswith("val_") and column[4:] in columns:
            base = column[4:]
        else:
            base = column
        panels.setdefault(base, []).append(column)
    return panels


def plot_training_curves(
    train_log_csv_path: str | os.PathLike,
    path: str | os.PathLike,
    figsize: tuple[float, float] | None = None,
) -> None:
    """One panel per logged quantity against `epoch`; a `val_X` column shares X's panel.

    Several rows per epoch (e.g. per-batch logs) are averaged per epoch.
    """
    log = pd.read_csv(train_log_csv_path)
    if "epoch" not in log.columns:
        raise ValueError(f"{train_log_csv_path}: no 'epoch' column; columns are {list(log.columns)}")
    numeric = log.select_dtypes("number").groupby(log["epoch"]).mean()
    # Throughput and timing are logged beside the losses but are not training curves.
    numeric = numeric.drop(columns=["epoch", *THROUGHPUT_COLUMNS], errors="ignore").dropna(axis=1, how="all")
    panels = curve_panels(list(numeric.columns))
    n_panels = max(len(panels), 1)
    n_cols = min(n_panels, 3)
    n_rows = -(-n_panels // n_cols)
    if figsize is None:
        figsize = (3.6 * n_cols, 2.8 * n_rows)
    fig = Figure(figsize=figsize, dpi=DPI)
    for p, (base, columns) in enumerate(panels.items()):
        ax = fig.add_subplot(n_rows, n_cols, p + 1)
        for column in columns:
            series = numeric[column].dropna()
            style = "--" if column.startswith("val_") else "-"
            label = column.removeprefix(FIT_PREFIX) if base == FIT_PANEL else column
            label = label.removeprefix(EXCESS_PREFIX) if base == EXCESS_PANEL else label
            ax.plot(series.index, series.to_numpy(), style, marker=".", markersize=3, label=label)
        values = numeric[columns].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        # Losses spanning orders of magnitude are unreadable on a linear axis.
        if base == FIT_PANEL:
            # 0 is chance and 1 a perfect readout; a value below chance still shows.
            ax.set_ylim(min(0.0, float(values.min()) if len(values) else 0.0) - 0.02, 1.02)
            ax.set_ylabel(FIT_LABEL)
        elif base == GAP_PANEL:  # 1: held-out images reconstructed as well as training ones
            ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        elif len(values) and values.min() > 0 and values.max() / values.min() > 100:
            ax.set_yscale("log")
        ax.set_title(base, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_traversals(images: np.ndarray, latents: np.ndarray, kl: np.ndarray, path: str | os.PathLike) -> None:
    """One row per latent (most KL first), its value swept left to right, the others held fixed."""
    n_rows, n_cols = images.shape[:2]
    fig = Figure(figsize=(1.4 + 0.75 * n_cols, 0.3 + 0.75 * n_rows), dpi=DPI)
    grid = fig.add_gridspec(n_rows, n_cols, wspace=0.03, hspace=0.06)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(_as_display_image(images[r, c]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(
                    f"z{int(latents[r])}\nKL {kl[r]:.2f}", fontsize=7, rotation=0, ha="right", va="center"
                )
    fig.subplots_adjust(left=1.2 / (1.4 + 0.75 * n_cols), right=0.99, bottom=0.01, top=0.99)
    save_figure(fig, path)
