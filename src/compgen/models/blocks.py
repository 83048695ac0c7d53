"""Encoders and decoders of SPEC §4, looked up by name so any encoder pairs with any decoder."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

KERNEL, STRIDE, PADDING = 4, 2, 1  # each conv halves the image side


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-uniform weights (ReLU gain) and zero biases for every conv and linear layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _feature_side(image_shape: tuple[int, int, int], n_convs: int) -> tuple[int, int]:
    h, w, _ = image_shape
    factor = 2**n_convs
    if h % factor or w % factor:
        raise ValueError(f"image {h}x{w} is not divisible by 2**{n_convs} for {n_convs} stride-2 convs")
    return h // factor, w // factor


class ConvEncoder(nn.Module):
    """Stride-2 convs, then fully connected layers, then a head giving (mu, logvar)."""

    def __init__(self, image_shape, latent_size: int, conv: tuple[int, ...], fc: tuple[int, ...]):
        super().__init__()
        channels = image_shape[2]
        fh, fw = _feature_side(image_shape, len(conv))
        layers: list[nn.Module] = []
        for out in conv:
            layers += [nn.Conv2d(channels, out, KERNEL, STRIDE, PADDING), nn.ReLU()]
            channels = out
        layers.append(nn.Flatten())
        width = channels * fh * fw
        for out in fc:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2 * latent_size)
        self.latent_size = latent_size
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x)).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: Linear(latent -> fc...) -> transposed convs -> logits (no output non-linearity)."""

    def __init__(self, image_shape, latent_size: int, conv: tuple[int, ...], fc: tuple[int, ...]):
        super().__init__()
        out_channels = image_shape[2]
        self.feature_shape = (conv[-1], *_feature_side(image_shape, len(conv)))
        layers: list[nn.Module] = []
        width = latent_size
        for out in reversed(fc):
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        flat = self.feature_shape[0] * self.feature_shape[1] * self.feature_shape[2]
        layers += [nn.Linear(width, flat), nn.ReLU(), nn.Unflatten(1, self.feature_shape)]
        reversed_channels = list(reversed(conv))
        targets = reversed_channels[1:] + [out_channels]
        for i, (cin, cout) in enumerate(zip(reversed_channels, targets, strict=False)):
            layers.append(nn.ConvTranspose2d(cin, cout, KERNEL, STRIDE, PADDING))
            if i < len(targets) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SpatialBroadcastDecoder(nn.Module):
    """Watters et al. (2019): tile z over the image, append x,y coordinates, convolve in place."""

    def __init__(self, image_shape, latent_size: int, hidden: int = 64, n_layers: int = 4, kernel: int = 5):
        super().__init__()
        h, w, out_channels = image_shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        # Coordinates are fixed inputs, not parameters: a buffer moves with the model and is saved.
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
        layers: list[nn.Module] = []
        channels = latent_size + 2
        for _ in range(n_layers):
            layers += [nn.Conv2d(channels, hidden, kernel, padding="same"), nn.ReLU()]
            channels = hidden
        layers.append(nn.Conv2d(channels, out_channels, 1))
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        h, w = self.coords.shape[-2:]
        tiled = z[:, :, None, None].expand(-1, -1, h, w)
        coords = self.coords.to(z.dtype).expand(n, -1, -1, -1)
        return self.net(torch.cat([tiled, coords], dim=1))


# name -> (conv channels, fully connected widths); decoders mirror the same numbers.
CONV_ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "burgess": ((32, 32, 32, 32), (256, 256)),
    "kim": ((32, 32, 64, 64), (256,)),
    "abdi": ((32, 32, 64, 128, 256), (256,)),
    "montero": ((64, 64, 128, 128, 256), (256,)),
}

Builder = Callable[[tuple[int, int, int], int], nn.Module]


def _conv_builder(cls, name: str) -> Builder:
    conv, fc = CONV_ARCHITECTURES[name]
    return lambda image_shape, latent_size: cls(tuple(image_shape), latent_size, conv, fc)


# Builders take (image_shape (H, W, C), latent_size).
ENCODERS: dict[str, Builder] = {name: _conv_builder(ConvEncoder, name) for name in CONV_ARCHITECTURES}
DECODERS: dict[str, Builder] = {name: _conv_builder(ConvDecoder, name) for name in CONV_ARCHITECTURES}
DECODERS["sbd"] = lambda image_shape, latent_size: SpatialBroadcastDecoder(tuple(image_shape), latent_size)


def build_encoder(name: str, image_shape, latent_size: int) -> nn.Module:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; allowed: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](image_shape, latent_size)


def build_decoder(name: str, image_shape, latent_size: int) -> nn.Module:
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; allowed: {', '.join(sorted(DECODERS))}")
    return DECODERS[name](image_shape, latent_size)
