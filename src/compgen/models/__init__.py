"""Build models from their config, and load trained ones from model.pt."""

from __future__ import annotations

import os

import torch
from torch import nn

from compgen.models.blocks import DECODERS, ENCODERS, build_decoder, build_encoder
from compgen.models.composition import COMPOSITION_OPS, CompositionModel
from compgen.models.vae import VAE, FactorRegressor, GroundTruthDecoder

TASKS = ("unsupervised", "composition", "supervised", "gt_decoder")
VAE_TASKS = ("unsupervised", "composition")  # the tasks trained with a VAE-family objective
DEFAULT_LATENT_SIZE = 10

__all__ = [
    "build_model",
    "load_trained",
    "VAE",
    "CompositionModel",
    "FactorRegressor",
    "GroundTruthDecoder",
    "VAE_TASKS",
    "ENCODERS",
    "DECODERS",
    "COMPOSITION_OPS",
    "TASKS",
]


def build_model(model_cfg: dict, image_shape, n_factors: int) -> nn.Module:
    """For images of (H, W, C): a VAE (task 'unsupervised'), a CompositionModel ('composition'),
    a FactorRegressor ('supervised') or a GroundTruthDecoder ('gt_decoder')."""
    task = model_cfg.get("task", "unsupervised")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    latent_size = int(model_cfg.get("latent_size", DEFAULT_LATENT_SIZE))
    needed = {"supervised": ("encoder",), "gt_decoder": ("decoder",)}.get(task, ("encoder", "decoder"))
    for key in needed:
        if key not in model_cfg:
            raise ValueError(f"model config lacks {key!r}")
    image_shape = tuple(int(s) for s in image_shape)
    if task == "supervised":
        return FactorRegressor(build_encoder(model_cfg["encoder"], image_shape, latent_size), n_factors)
    if task == "gt_decoder":
        return GroundTruthDecoder(build_decoder(model_cfg["decoder"], image_shape, n_factors))
    vae = VAE(
        build_encoder(model_cfg["encoder"], image_shape, latent_size),
        build_decoder(model_cfg["decoder"], image_shape, latent_size),
    )
    if task == "unsupervised":
        return vae
    if "op" not in model_cfg:
        raise ValueError(f"composition model needs 'op'; allowed: {', '.join(sorted(COMPOSITION_OPS))}")
    return CompositionModel(vae, model_cfg["op"], n_factors, latent_size)


def load_trained(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The best weights from a training run's model.pt, in eval mode, and the whole payload."""
    payload = torch.load(path, map_location=device, weights_only=True)
    model = build_model(payload["model_config"], payload["image_shape"], len(payload["factor_names"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload
