"""The ICLR 2021 paper's figures of one dataset, drawn from what `compgen.summary.iclr_figures`
computes: D against NLL (one panel per condition, each model's training circle and held-out cross
joined by a line), D and C bars (a row each, a bar per model), and held-out reconstructions (per
condition, the held-out images over each model's reconstruction of them). Each plot function draws
its table, saves the figure to every path given and returns it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compgen.analysis.arrays import load_arrays
from compgen.analysis.dci_choice import DCI_LABELS, dci_key
from compgen.analysis.figures import _as_display_image
from compgen.figio import DPI, save_figure
from compgen.summary.iclr_figures import (
    FIGURES,
    Drawn,
    condition_title,
    dci_bars,
    nll_points,
    not_drawn,
    read_all,
    recon_panels,
)

DATA_MARKERS = {"train": "o", "test": "X"}  # seaborn's first two styles, as the original's
DATA_LABELS = {"train": "training", "test": "held out"}
PANELS_PER_ROW = 4


def model_colours(labels: Sequence[str]) -> dict[str, tuple]:
    """One colour per model label, in the order given (the same in every figure of a dataset)."""
    labels = list(dict.fromkeys(labels))
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(k % cmap.N) for k, label in enumerate(labels)}


def _grid(n: int) -> tuple[int, int]:
    cols = min(max(n, 1), PANELS_PER_ROW)
    return max(-(-n // cols), 1), cols


def _seeds_line(table: pd.DataFrame, what: str) -> list[str]:
    seeds = sorted(set(table["seeds"]))
    if not seeds or seeds == [1]:
        return []
    counts = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    return [f"{what}: means over each model's seeds ({counts})"]


def _footer(fig: Figure, lines: Sequence[str]) -> None:
    if lines:
        fig.text(0.01, 0.01, "; ".join(lines), fontsize=7, ha="left", va="bottom", wrap=True)


def plot_disent_vs_nll(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], variant: str, title: str = "", note: str = ""
) -> Figure:
    """D against NLL, one panel per condition (drawn.conditions); each model's training (circle)
    and held-out (cross) point joined by a line. Each panel has its own NLL axis, logarithmic where
    its values span more than a factor of ten (the original broke its extrapolation axis instead)."""
    table = drawn.table
    colours = model_colours(drawn.labels or list(table["label"]))
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    n_rows, n_cols = _grid(len(conditions))
    fig = Figure(figsize=(3.9 * n_cols + 2.6, 3.4 * n_rows + 1.1), dpi=DPI)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(conditions):
            ax.set_visible(bool(not conditions))
            if not conditions:
                ax.text(0.5, 0.5, "no model of this dataset has an NLL and a D", ha="center", va="center")
                ax.set_axis_off()
            continue
        condition = conditions[k]
        rows = table[table["condition"] == condition]
        for label, points in rows.groupby("label", sort=False):
            ax.plot(
                points["disentanglement"], points["nll"], "-", color=colours[label], linewidth=1, zorder=1
            )
            for data, marker in DATA_MARKERS.items():
                point = points[points["data"] == data]
                if len(point):
                    ax.scatter(
                        point["disentanglement"], point["nll"], s=60, marker=marker, color=colours[label],
                        edgecolors="white", linewidths=0.5, zorder=2,
                    )  # fmt: skip
        ax.set_xlim(0, 1.03)
        nll = rows["nll"].to_numpy()
        if nll.min() > 0 and nll.max() / nll.min() > 10:
            ax.set_yscale("log")
        ax.set_title(condition_title(condition, rows["family"].iloc[0]), fontsize=10)
        ax.set_xlabel(f"D ({DCI_LABELS[variant]}; GT decoder at 1)", fontsize=8)
        if k % n_cols == 0:
            ax.set_ylabel("NLL (reconstruction loss per image)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    shown = set(table["label"])  # only models drawn are in the legend
    handles = [
        Line2D([], [], color=c, marker="o", linestyle="-", label=lab)
        for lab, c in colours.items()
        if lab in shown
    ]
    handles += [
        Line2D([], [], color="black", marker=m, linestyle="none", label=DATA_LABELS[d])
        for d, m in DATA_MARKERS.items()
    ]
    if conditions:
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    _footer(fig, _seeds_line(table, "points") + not_drawn(drawn.left_out))
    _finish(fig, out_paths, title and f"{title}: disentanglement against NLL", note)
    return fig


def plot_dci_bars(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], variant: str, title: str = "", note: str = ""
) -> Figure:
    """D (top row) and C (bottom row) per model, one column per condition; with several seeds,
    each seed's value is a dot on its model's bar (the mean)."""
    table = drawn.table
    colours = model_colours(drawn.labels or list(table["label"]))
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    n_cols = max(len(conditions), 1)
    fig = Figure(figsize=(max(3.2 * n_cols, 4.0) + 2.6, 6.4), dpi=DPI)
    axes = fig.subplots(2, n_cols, squeeze=False, sharey=True)
    for col in range(n_cols):
        for row, part in enumerate(("disentanglement", "completeness")):
            ax = axes[row, col]
            if not conditions:
                ax.text(0.5, 0.5, "no model of this dataset has a D", ha="center", va="center")
                ax.set_axis_off()
                continue
            rows = table[(table["condition"] == conditions[col]) & (table["part"] == part)]
            x = np.arange(len(rows))
            ax.bar(x, rows["value"].to_numpy(), color=[colours[lab] for lab in rows["label"]], width=0.8)
            for xi, values in zip(x, rows["seed_values"], strict=True):
                if len(values) > 1:
                    ax.scatter([xi] * len(values), values, s=8, color="black", zorder=3)
            ax.set_ylim(0, 1.03)
            ax.set_xticks(x, [""] * len(x))
            ax.tick_params(labelsize=7, length=0)
            ax.spines[["top", "right"]].set_visible(False)
            if row == 0:
                ax.set_title(condition_title(conditions[col], rows["family"].iloc[0]), fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{part[0].upper()} ({part})", fontsize=9)
    handles = [
        Line2D([], [], color=c, marker="s", linestyle="none", markersize=8, label=lab)
        for lab, c in colours.items()
        if lab in set(table["label"])  # only models drawn are in the legend
    ]
    if conditions:
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    footer = [f"{DCI_LABELS[variant]}: {dci_key(variant)}, {dci_key(variant, 'completeness')}"]
    footer += _seeds_line(table, "bars") + ["dots: each seed"] * bool(_seeds_line(table, "bars"))
    _footer(fig, footer + not_drawn(drawn.left_out))
    _finish(fig, out_paths, title and f"{title}: disentanglement and completeness", note)
    return fig


def plot_recon_panels(
    drawn: Drawn, out_paths: Sequence[str | os.PathLike], title: str = "", note: str = ""
) -> Figure:
    """Conditions side by side; in each, a strip of held-out images (red frames) over one strip
    per model, each strip titled by what it shows."""
    table = drawn.table
    conditions = [c for c in drawn.conditions if (table["condition"] == c).any()]
    blocks = [table[table["condition"] == c] for c in conditions]
    n_strips = max((len(b) for b in blocks), default=1)
    n_images = max((len(images) for images in table["images"]), default=1)
    width = max(0.85 * n_images * max(len(blocks), 1) + 0.3 * max(len(blocks) - 1, 0) + 0.6, 5.0)
    height = 1.05 * n_strips + 1.5
    fig = Figure(figsize=(width, height), dpi=DPI)
    if not blocks:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no held-out reconstructions to show", ha="center", va="center")
        ax.set_axis_off()
    top = 1 - (1.0 if title or note else 0.6) / height
    outer = fig.add_gridspec(
        1,
        max(len(blocks), 1),
        wspace=0.08,
        left=0.3 / width,
        right=1 - 0.3 / width,
        bottom=0.45 / height,
        top=top,
    )
    for b, block in enumerate(blocks):
        inner = outer[b].subgridspec(n_strips, n_images, wspace=0.04, hspace=0.45)
        for s, (_, strip) in enumerate(block.iterrows()):
            for col, image in enumerate(strip["images"]):
                ax = fig.add_subplot(inner[s, col])
                ax.imshow(_as_display_image(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if strip["kind"] == "held out":
                    ax.spines[:].set_color("red")
                if col == 0:
                    ax.set_title(strip["label"], loc="left", fontsize=7, pad=2)
        pos = outer[b].get_position(fig)
        fig.text(
            (pos.x0 + pos.x1) / 2, top + 0.25 / height, condition_title(conditions[b], block["family"].iloc[0]).replace("\n", " "),
            ha="center", va="bottom", fontsize=10,
        )  # fmt: skip
    _footer(fig, not_drawn(drawn.left_out))
    _finish(
        fig, out_paths, title and f"{title}: held-out images and their reconstructions", note, layout=False
    )
    return fig


def _finish(fig: Figure, out_paths, title: str, note: str, layout: bool = True) -> None:
    if note:  # the data's note heads the figure, where it cannot cover a panel
        title = f"{title} [{note}]" if title else f"[{note}]"
    if title:
        fig.suptitle(title, fontsize=12)
    if layout:
        height, width = fig.get_figheight(), fig.get_figwidth()
        fig.subplots_adjust(
            left=0.8 / width, right=1 - 2.6 / width, bottom=0.75 / height, top=1 - 1.0 / height,
            wspace=0.3, hspace=0.55,
        )  # fmt: skip
    for path in out_paths:
        save_figure(fig, path)


def draw_iclr_figure(
    figure: str,
    runs: Sequence[dict],
    paths: Sequence[str | os.PathLike],
    out_paths: Sequence[str | os.PathLike],
    variant: str,
    title: str = "",
    note: str = "",
) -> Figure:
    """One of FIGURES for a dataset's runs; `paths` are their scores.json files (disent_vs_nll,
    dci_bars) or analysis.npz files (recon_panels), in the order of `runs`."""
    if figure == "disent_vs_nll":
        return plot_disent_vs_nll(nll_points(runs, read_all(paths), variant), out_paths, variant, title, note)
    if figure == "dci_bars":
        return plot_dci_bars(dci_bars(runs, read_all(paths), variant), out_paths, variant, title, note)
    if figure == "recon_panels":
        return plot_recon_panels(recon_panels(runs, [load_arrays(p) for p in paths]), out_paths, title, note)
    raise ValueError(f"unknown ICLR figure {figure!r}; allowed: {', '.join(FIGURES)}")
