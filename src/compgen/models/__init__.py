"""Architectures: encoders and decoders (blocks), the VAE and the supervised controls (vae), and the
latent composition ops (composition). Which model a task trains is the task's choice (compgen.tasks)."""

from compgen.models.blocks import DECODERS, ENCODERS, build_decoder, build_encoder
from compgen.models.cascade import CascadeLoss, CascadeVAE, match_categories
from compgen.models.composition import COMPOSITION_OPS, CompositionModel
from compgen.models.lie import LieGroupVAE, LieLoss
from compgen.models.vae import VAE, FactorRegressor, GroundTruthDecoder

__all__ = [
    "COMPOSITION_OPS",
    "DECODERS",
    "ENCODERS",
    "VAE",
    "CascadeLoss",
    "CascadeVAE",
    "CompositionModel",
    "FactorRegressor",
    "GroundTruthDecoder",
    "LieGroupVAE",
    "LieLoss",
    "build_decoder",
    "build_encoder",
    "match_categories",
]
