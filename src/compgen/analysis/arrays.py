"""A run's analysis arrays, read back for drawing: numpy only, so figure jobs start in a second
instead of importing torch and the training stack."""

from __future__ import annotations

import os

import numpy as np


def load_arrays(path: str | os.PathLike) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def latent_plot_inputs(arrays: dict) -> dict:
    """The keyword arguments of the latent-representation plot, from a run's analysis arrays."""
    return {
        "z": arrays["latents"],
        "factor_classes": arrays["latent_classes"],
        "train_mask": arrays["latent_is_train"],
        "factor_axes": tuple(int(a) for a in arrays["factor_axes"]),
        "latent_axes": tuple(int(a) for a in arrays["latent_axes"]),
        "factor_names": list(arrays["factor_names"]),
        # Absent from analysis files written before the latent oracle.
        "oracle_samples": arrays.get("oracle_samples"),
    }
