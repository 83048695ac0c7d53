"""Group figures in the paper's layout: per condition and model, reconstructions beside the latents."""

from __future__ import annotations

import os

from matplotlib.figure import Figure

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
