"""Task `gt_decoder` (ICLR 2021 control): a decoder fed the ground-truth factors.

It has no encoder: its "latents" are its inputs, and latent metrics do not apply.

The model key `inputs` says what the decoder is fed: `standardised` (the default) the factors as
training and analysis hold them, (v - mean(unique values)) / (max - min); `raw` the factor values
themselves, as the original's ground-truth decoders (mmrl/disent-and-gen
`scripts/experiments/decoders.py` with the `recons` setting, whose datasets yield the raw
`latent_values`). `TrainingData` and analysis hold only the standardised values, so the model undoes
the standardisation itself (`GroundTruthDecoder`), with the grid's per-factor mean and span, which
this task gives it before training or validating; they are saved with its weights, so analysis
(which has no grid at hand) feeds the same raw values.
"""

from __future__ import annotations

import numpy as np

from compgen.tasks.base import Task

DEFAULT_INPUTS = "standardised"


def inputs_of(model_cfg: dict) -> str:
    return model_cfg.get("inputs", DEFAULT_INPUTS)


def value_stats(grid) -> tuple[np.ndarray, np.ndarray]:
    """Per-factor mean of the unique values and max - min, as `Grid.standardised` uses them."""
    values = [np.asarray(f.values, dtype=np.float64) for f in grid.factors]
    return np.array([v.mean() for v in values]), np.array([v.max() - v.min() for v in values])


def prepare(model, grid) -> None:
    """Give a raw-input model the grid's statistics once (idempotent: they are the grid's)."""
    if getattr(model, "inputs", DEFAULT_INPUTS) == "raw" and not model.value_stats_set:
        model.set_value_stats(*value_stats(grid))


class GroundTruthDecoding(Task):
    name = "gt_decoder"
    parts = ("decoder",)
    uses_objective = False
    has_representation = False
    figures = ("curves", "reconstructions")

    def label(self, model_cfg):
        raw = ", raw inputs" if inputs_of(model_cfg) == "raw" else ""
        return f"ground-truth decoder ({model_cfg['decoder']}{raw})"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import GroundTruthDecoder, build_decoder

        return GroundTruthDecoder(
            build_decoder(model_cfg["decoder"], image_shape, n_factors), inputs_of(model_cfg), n_factors
        )

    def training_loss(self, model, batch, data, objective, step):
        from compgen.losses import reconstruction_per_image

        prepare(model, data.grid)
        rec = reconstruction_per_image(model(data.factors[batch]), data.images(batch), data.recon).mean()
        return {"recon": rec, "loss": rec}, None

    def validation_loss(self, model, batch, data, objective):
        from compgen.losses import reconstruction_per_image

        prepare(model, data.grid)
        return reconstruction_per_image(model(data.factors[batch]), data.images(batch), data.recon)

    def encode(self, model, images, codes):
        """The decoder's inputs (raw values with `inputs: raw`) and its reconstructions."""
        return model.decoder_inputs(codes), model(codes)

    def decode(self, model, z):
        return None  # its "latents" are the factors themselves: no encoder for an oracle to judge


TASK = GroundTruthDecoding()
