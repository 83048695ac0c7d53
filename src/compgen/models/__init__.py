"""Architectures: encoders and decoders (blocks), the VAE and the supervised controls (vae), and the
latent composition ops (composition). Which model a task trains is the task's choice (compgen.tasks)."""

from compgen.models.blocks import DECODERS, ENCODERS, build_decoder, build_encoder
from compgen.models.composition import COMPOSITION_OPS, CompositionModel
from compgen.models.vae import VAE, FactorRegressor, GroundTruthDecoder

__all__ = [
    "COMPOSITION_OPS",
    "DECODERS",
    "ENCODERS",
    "VAE",
    "CompositionModel",
    "FactorRegressor",
    "GroundTruthDecoder",
    "build_decoder",
    "build_encoder",
]
