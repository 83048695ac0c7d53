"""The per-run figures, drawn from the arrays the analysis kept (no model needed)."""

from __future__ import annotations

import os

from compgen.analysis import figures
from compgen.analysis.arrays import latent_plot_inputs, load_arrays


def _reconstructions(arrays: dict, out_path) -> None:
    figures.plot_reconstructions(
        {
            "training combinations": (arrays["recon_train_inputs"], arrays["recon_train_outputs"]),
            "held-out combinations": (arrays["recon_test_inputs"], arrays["recon_test_outputs"]),
        },
        out_path,
    )


def _hinton(arrays: dict, out_path) -> None:
    figures.plot_hinton(arrays["importance"], list(arrays["importance_factors"]), out_path)


def _latents(arrays: dict, out_path) -> None:
    figures.plot_latent_representation(path=out_path, **latent_plot_inputs(arrays))


def _traversals(arrays: dict, out_path) -> None:
    figures.plot_traversals(
        arrays["traversal_images"], arrays["traversal_latents"], arrays["traversal_kl"], out_path
    )


DRAWERS = {
    "reconstructions": _reconstructions,
    "hinton": _hinton,
    "latents": _latents,
    "traversals": _traversals,
}


def draw_run_figure(figure: str, arrays_path, train_log_path, out_path: str | os.PathLike) -> None:
    if figure == "curves":
        figures.plot_training_curves(train_log_path, out_path)
        return
    if figure not in DRAWERS:
        raise ValueError(f"unknown figure {figure!r}; allowed: curves, {', '.join(DRAWERS)}")
    DRAWERS[figure](load_arrays(arrays_path), out_path)
