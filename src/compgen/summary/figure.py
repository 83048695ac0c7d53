"""Group figures: in the paper's layout, per condition and model, reconstructions beside the
latents; and the group's gap curves (the held-out gap probe per epoch), conditions side by side."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from compgen.analysis.arrays import latent_plot_inputs, load_arrays
from compgen.analysis.figures import draw_latent_representation, draw_reconstruction_block
from compgen.figio import save_figure

IMAGES_PER_STRIP = 4
ROW_HEIGHT = 2.4


def strip_titles(label: str, arrays) -> tuple[str, str]:
    """Titles of a row's training and held-out reconstruction strips. A task that renders nothing
    (a regressor) has neither strip; a run without held-out images is an all-data reference."""
    if len(arrays["recon_train_inputs"]) == 0:
        return f"{label}: no reconstructions (the model renders no images)", ""
    if len(arrays["recon_test_inputs"]) == 0:
        return f"{label}: training", "held out: none (all-data reference)"
    return f"{label}: training", "held out"


def plot_group_composite(panels: list[dict], out_paths: list[str | os.PathLike], title: str = "") -> None:
    """One row per panel (dict with `label` and `arrays`, an analysis.npz path).

    Each row shows training and held-out reconstructions (inputs over outputs) and the
    latent-representation plot of that run, so a reader compares models across conditions.
    """
    n = len(panels)
    height = 0.6 + ROW_HEIGHT * n + (0.3 if title else 0.0)
    fig = Figure(figsize=(13.0, height))
    widths = [IMAGES_PER_STRIP, IMAGES_PER_STRIP, 3.2]
    grid = fig.add_gridspec(n, 3, width_ratios=widths, wspace=0.25, hspace=0.45)
    notes = set()
    for row, panel in enumerate(panels):
        arrays = load_arrays(panel["arrays"])
        note = str(arrays["data_note"]) if "data_note" in arrays else ""
        notes.add(note)
        k = IMAGES_PER_STRIP
        train_title, test_title = strip_titles(panel["label"], arrays)
        draw_reconstruction_block(
            fig,
            grid[row, 0],
            arrays["recon_train_inputs"][:k],
            arrays["recon_train_outputs"][:k],
            train_title,
            row_labels=True,
        )
        draw_reconstruction_block(
            fig,
            grid[row, 1],
            arrays["recon_test_inputs"][:k],
            arrays["recon_test_outputs"][:k],
            test_title,
            row_labels=False,
        )
        ax = fig.add_subplot(grid[row, 2])
        draw_latent_representation(ax, **latent_plot_inputs(arrays))
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
    notes.discard("")
    if notes:  # the data's note heads the figure, where it cannot cover a panel
        title = f"{title} [{'; '.join(sorted(notes))}]" if title else f"[{'; '.join(sorted(notes))}]"
    if title:
        fig.suptitle(title, fontsize=12)
    top = 1 - (0.75 if title else 0.3) / height
    fig.subplots_adjust(left=0.04, right=0.98, bottom=0.35 / height, top=top)
    for path in out_paths:
        save_figure(fig, path)


GAP_PANELS_PER_ROW = 4
SEED_STYLES = ("-", "--", ":", "-.")


def read_gap_curve(train_log: str | os.PathLike) -> pd.Series:
    """A run's finite `probe_gap` values by epoch (compgen.training.gap_probe); empty without them."""
    log = pd.read_csv(train_log)
    if "probe_gap" not in log.columns or "epoch" not in log.columns:
        return pd.Series(dtype=np.float64)
    series = pd.Series(log["probe_gap"].to_numpy(np.float64), index=log["epoch"].to_numpy())
    return series[np.isfinite(series.to_numpy())]


def plot_gap_curves(runs: list[dict], out_paths: list[str | os.PathLike], title: str = "") -> None:
    """A group's gap curves: one panel per member (dataset/condition), side by side on one y-axis,
    with a line per run (coloured by model, one style per seed) of its held-out over training
    excess per epoch (`probe_gap`). Each run is a dict with `panel`, `family`, `model` (its label),
    `seed` and `train_log`. Members none of whose runs logged a finite gap (an all-data
    reference, a task that reconstructs nothing, a run without the probe) are named, not drawn.
    """
    curves: dict[str, list[tuple[dict, pd.Series]]] = {}
    families: dict[str, str] = {}
    for run in runs:
        families.setdefault(run["panel"], run.get("family", ""))
        curves.setdefault(run["panel"], []).append((run, read_gap_curve(run["train_log"])))
    drawn = {panel: lines for panel, lines in curves.items() if any(len(s) for _, s in lines)}
    missing = [panel for panel in curves if panel not in drawn]
    models = list(dict.fromkeys(run["model"] for run in runs))
    seeds = sorted({int(run["seed"]) for run in runs})
    colours = {m: colormaps["tab10"](k % 10) for k, m in enumerate(models)}
    styles = {s: SEED_STYLES[k % len(SEED_STYLES)] for k, s in enumerate(seeds)}

    n_cols = min(max(len(drawn), 1), GAP_PANELS_PER_ROW)
    n_rows = max(-(-len(drawn) // n_cols), 1)
    fig = Figure(figsize=(3.4 * n_cols + 1.8, 2.9 * n_rows + 0.9))
    axes = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False)
    values = np.concatenate([s.to_numpy() for lines in drawn.values() for _, s in lines] or [np.ones(1)])
    for k, ax in enumerate(axes.flat):
        if k >= len(drawn):
            if drawn:
                ax.set_visible(False)
            else:
                ax.text(0.5, 0.5, "no run of this group logged a gap probe", ha="center", va="center")
                ax.set_axis_off()
            continue
        panel = list(drawn)[k]
        for run, series in drawn[panel]:
            ax.plot(
                series.index,
                series.to_numpy(),
                styles[int(run["seed"])],
                color=colours[run["model"]],
                marker=".",
                markersize=3,
                linewidth=1.2,
            )
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")  # no gap
        family = families[panel]
        ax.set_title(f"{panel}\n({family})" if family else panel, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if k % n_cols == 0:
            ax.set_ylabel("held-out / training excess", fontsize=8)
    # Gaps that span an order of magnitude are unreadable on a linear axis.
    if values.size and values.min() > 0 and values.max() / values.min() > 10:
        axes[0, 0].set_yscale("log")
    # Only models that drew a line: a regressor beside VAEs logs no gap.
    shown = {run["model"] for lines in drawn.values() for run, series in lines if len(series)}
    handles = [Line2D([], [], color=colours[m], label=m) for m in models if m in shown]
    if len(seeds) > 1:
        handles += [Line2D([], [], color="black", linestyle=styles[s], label=f"seed {s}") for s in seeds]
    if drawn:
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    footer = f"no gap probe: {', '.join(missing)}" if missing else ""
    if footer:
        fig.text(0.01, 0.01, footer, fontsize=7, ha="left", va="bottom")
    if title:
        fig.suptitle(f"{title}: generalisation gap while training", fontsize=11)
    fig.subplots_adjust(
        left=0.85 / fig.get_figwidth(), right=1 - 1.8 / fig.get_figwidth(), bottom=0.5 / fig.get_figheight() + 0.08,
        top=1 - 0.75 / fig.get_figheight(), wspace=0.12, hspace=0.6,
    )  # fmt: skip
    for path in out_paths:
        save_figure(fig, path)
