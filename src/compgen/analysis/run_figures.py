"""The per-run figures, drawn from the arrays the analysis kept (no model needed)."""

from __future__ import annotations

import json
import os

from compgen.analysis import figures
from compgen.analysis.arrays import latent_plot_inputs, load_arrays
from compgen.analysis.dci_choice import DCI_LABELS, DCI_PREFIXES
from compgen.datasets.provenance import data_note
from compgen.figio import noted


def _reconstructions(arrays: dict, out_path) -> None:
    sections = {"training combinations": (arrays["recon_train_inputs"], arrays["recon_train_outputs"])}
    if len(arrays["recon_test_inputs"]):  # an all-data reference has no held-out combination
        sections["held-out combinations"] = (arrays["recon_test_inputs"], arrays["recon_test_outputs"])
    figures.plot_reconstructions(sections, out_path)


# The analysis arrays' importance matrix of each DCI variant (`analysis.dci`).
HINTON_ARRAYS = {"standard": "importance", "neurips": "importance_paper", "iclr": "importance_iclr"}


def _hinton(arrays: dict, out_path, dci: str = "neurips") -> None:
    # Files written before the variants were kept hold the standard matrix only.
    key = HINTON_ARRAYS[dci] if HINTON_ARRAYS[dci] in arrays else "importance"
    label = DCI_LABELS[dci] if key == HINTON_ARRAYS[dci] else DCI_LABELS["standard"]
    figures.plot_hinton(arrays[key], list(arrays["importance_factors"]), out_path, label=label)


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


def draw_run_figure(
    figure: str,
    arrays_path,
    train_log_path,
    out_path: str | os.PathLike,
    run_info_path=None,
    dci: str = "neurips",
) -> None:
    """Draw one per-run figure; each carries the data's note ("procedural stand-in"), read from the
    dataset provenance the analysis kept (curves: the one the training recorded in run.json).
    `dci` (config `analysis.dci`) picks the DCI variant whose importances the Hinton matrix draws."""
    if dci not in DCI_PREFIXES:
        raise ValueError(f"unknown DCI variant {dci!r}; allowed: {', '.join(DCI_PREFIXES)}")
    if figure == "curves":
        note = ""
        if run_info_path is not None:
            with open(run_info_path) as fh:
                note = data_note(json.load(fh)["data"])
        with noted(note):
            figures.plot_training_curves(train_log_path, out_path)
        return
    if figure not in DRAWERS:
        raise ValueError(f"unknown figure {figure!r}; allowed: curves, {', '.join(DRAWERS)}")
    arrays = load_arrays(arrays_path)
    with noted(str(arrays["data_note"]) if "data_note" in arrays else ""):
        if figure == "hinton":
            _hinton(arrays, out_path, dci)
        else:
            DRAWERS[figure](arrays, out_path)
