"""Architectures: encoders and decoders (blocks), the VAE and the supervised controls (vae), and the
latent composition ops (composition). Which model a task trains is the task's choice (compgen.tasks).

The registries of encoders, decoders and composition ops live here, light to import (no torch):
the workflow reads their names while planning. An encoder or decoder is a builder
`(image_shape (H, W, C), latent_size) -> nn.Module`; a composition op a class
`(n_factors, latent_size) -> nn.Module`. One defined elsewhere joins with `ENCODERS.register(name,
builder)` (likewise DECODERS, COMPOSITION_OPS) or an entry point of the group `compgen.encoders`,
`compgen.decoders` or `compgen.ops` (compgen.registry). The torch classes (`VAE`,
`CompositionModel`, ...) are reached through this module as before, imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compgen.registry import Registry, resolve

# name -> (conv channels, fully connected widths); decoders mirror the same numbers.
CONV_ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "burgess": ((32, 32, 32, 32), (256, 256)),
    "kim": ((32, 32, 64, 64), (256,)),
    "abdi": ((32, 32, 64, 128, 256), (256,)),
    "montero": ((64, 64, 128, 128, 256), (256,)),
    "burgess_v2": ((32, 32, 64, 64), (256, 256)),
}
# BatchNorm momentum of the original's `vaes.py` `kim_bn` (encoder and its own decoder).
KIM_BN_MOMENTUM = 0.001
# torch's default, which the ICLR ground-truth decoders `kim_bn` and `deep_bn` keep.
DEFAULT_BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class Architecture:
    """A built-in builder: a class of compgen.models.blocks (imported when built) and its arguments."""

    cls: str
    kwargs: dict = field(default_factory=dict)

    def __call__(self, image_shape, latent_size: int):
        return resolve(f"compgen.models.blocks:{self.cls}")(tuple(image_shape), latent_size, **self.kwargs)


def _conv(cls: str, name: str, **kwargs) -> Architecture:
    conv, fc = CONV_ARCHITECTURES[name]
    return Architecture(cls, {"conv": conv, "fc": fc, **kwargs})


ENCODERS = Registry(
    "encoder",
    {
        **{name: _conv("ConvEncoder", name) for name in CONV_ARCHITECTURES},
        # The original's `higgins` (Higgins et al. 2017; vaes.py: flatten, 1200, 1200): no convolutions.
        "higgins": Architecture("ConvEncoder", {"conv": (), "fc": (1200, 1200)}),
        # vaes.py kim_bn: kim's convs, each ReLU followed by BatchNorm2d(momentum 0.001); FC 256 without.
        "kim_bn": _conv("ConvEncoder", "kim", batch_norm=KIM_BN_MOMENTUM),
    },
)

DECODERS = Registry(
    "decoder",
    {
        **{name: _conv("ConvDecoder", name) for name in CONV_ARCHITECTURES},
        "sbd": Architecture("SpatialBroadcastDecoder"),
        "sbd3": Architecture("SpatialBroadcastDecoder", {"n_hidden": 2, "out_kernel": 5}),
        "sbd4": Architecture("SpatialBroadcastDecoder", {"n_hidden": 3, "out_kernel": 5}),
        "higgins": Architecture("MLPDecoder"),
        # decoders.py kim_bn (ICLR ground-truth decoder): 256, 64*4*4 (no bias), tconvs 64, 64, 32 (no bias), C.
        "kim_bn": Architecture(
            "BNConvDecoder",
            {"fc": (256,), "channels": 64, "tconv": (64, 64, 32), "batch_norm": DEFAULT_BN_MOMENTUM},
        ),
        # vaes.py kim_bn's own decoder (NeurIPS VAE): kim's decoder with BatchNorm2d(momentum 0.001)
        # after the ReLU of each hidden transposed conv, every layer with its bias.
        "kim_bn_vae": _conv("ConvDecoder", "kim", batch_norm=KIM_BN_MOMENTUM),
        # decoders.py deep and deep_bn: 512, 512, 1024, 64*4*4, tconvs 64, 64, 32, C.
        "deep": Architecture(
            "BNConvDecoder", {"fc": (512, 512, 1024), "channels": 64, "tconv": (64, 64, 32)}
        ),
        "deep_bn": Architecture(
            "BNConvDecoder",
            {
                "fc": (512, 512, 1024),
                "channels": 64,
                "tconv": (64, 64, 32),
                "batch_norm": DEFAULT_BN_MOMENTUM,
                "out_bias": False,
            },
        ),
    },
)

_OPS = "compgen.models.composition"
COMPOSITION_OPS = Registry(
    "composition op",
    {
        "fixint": f"{_OPS}:FixedInterpolation",
        "interp": f"{_OPS}:LearnedInterpolation",
        "linear": f"{_OPS}:LinearComposition",
        "mlp": f"{_OPS}:MLPComposition",
    },
)

# The torch half, imported on first use: attribute -> submodule.
_LAZY = {
    "build_decoder": "blocks",
    "build_encoder": "blocks",
    "CascadeLoss": "cascade",
    "CascadeVAE": "cascade",
    "match_categories": "cascade",
    "CompositionModel": "composition",
    "LieGroupVAE": "lie",
    "LieLoss": "lie",
    "VAE": "vae",
    "FactorRegressor": "vae",
    "GroundTruthDecoder": "vae",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'compgen.models' has no attribute {name!r}")
    return resolve(f"compgen.models.{_LAZY[name]}:{name}")


__all__ = [
    "COMPOSITION_OPS",
    "DECODERS",
    "ENCODERS",
    "Architecture",
    *_LAZY,
]
