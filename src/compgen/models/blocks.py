"""Encoder and decoder classes; the registries of `compgen.models` name their configurations, so
any encoder pairs with any decoder.

Every architecture but `sbd` is a layer-for-layer copy of a named configuration of the original
code (NeurIPS 2022: mmrl/lost-in-latent-space `scripts/configs/vaes.py`, built by
`scripts/ingredients/models.py` `init_lgm` and `scripts/ingredients/parsing.py`; ICLR 2021:
mmrl/disent-and-gen `scripts/configs/cnnvae.py`, `scripts/configs/decoders.py`). Where the original
hard-codes the output channels (`sbd3`'s and `sbd4`'s 3, `higgins`' 4096) or the 64x64 image
side, the image's channels and side are used instead; on 64x64 images nothing else changes.
"""

from __future__ import annotations

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
    """Stride-2 convs, then fully connected layers, then a head giving (mu, logvar).

    With `batch_norm` (a momentum), a BatchNorm2d follows every conv's ReLU, as the original's
    `kim_bn` (affine, tracking running statistics)."""

    def __init__(
        self,
        image_shape,
        latent_size: int,
        conv: tuple[int, ...],
        fc: tuple[int, ...],
        batch_norm: float | None = None,
    ):
        super().__init__()
        channels = image_shape[2]
        fh, fw = _feature_side(image_shape, len(conv))
        layers: list[nn.Module] = []
        for out in conv:
            layers += [nn.Conv2d(channels, out, KERNEL, STRIDE, PADDING), nn.ReLU()]
            if batch_norm is not None:
                layers.append(nn.BatchNorm2d(out, momentum=batch_norm))
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
    """Mirror of ConvEncoder: Linear(latent -> fc...) -> transposed convs -> logits (no output non-linearity).

    This is the original's automatic transpose of an encoder (`parsing.transpose_specs`, used by
    `init_lgm` when a configuration gives no `decoder_layers`): Linear(latent, fc[-1]), the fc widths
    in reverse, Linear(fc[0], flattened conv features), then one transposed conv per conv, each
    giving the channels that conv took, the last one the image's. The original puts the ReLU after
    the Unflatten; the order is immaterial. With `batch_norm` (a momentum), a BatchNorm2d follows the
    ReLU of every hidden transposed conv, as the decoder of the original's `vaes.py` `kim_bn`."""

    def __init__(
        self,
        image_shape,
        latent_size: int,
        conv: tuple[int, ...],
        fc: tuple[int, ...],
        batch_norm: float | None = None,
    ):
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
                if batch_norm is not None:
                    layers.append(nn.BatchNorm2d(cout, momentum=batch_norm))
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SpatialBroadcastDecoder(nn.Module):
    """Watters et al. (2019): tile z over the image, append x,y coordinates, convolve in place.

    As the original's `SpatialBroadcast` (`src/models/sbd.py`): z is tiled at the output size
    itself (no larger canvas, no crop), then two channels are appended, x (varying along the width)
    and y (along the height), each `linspace(-1, 1)` over its side; every conv is 'same' (zero
    padding), so the image keeps its size.

    `sbd3` and `sbd4` are the original's (`vaes.py`): `n_hidden` = 2 or 3 convs of 64 channels,
    5x5, each with a ReLU, then a 5x5 conv to the image's channels (the original writes 3). `sbd` is
    this project's earlier variant, kept so runs that name it still build: four hidden 5x5 convs and
    a 1x1 output conv; no configuration of the original has it.
    """

    def __init__(
        self,
        image_shape,
        latent_size: int,
        hidden: int = 64,
        n_hidden: int = 4,
        kernel: int = 5,
        out_kernel: int = 1,
    ):
        super().__init__()
        h, w, out_channels = image_shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        # Coordinates are fixed inputs, not parameters: a buffer moves with the model and is saved.
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
        layers: list[nn.Module] = []
        channels = latent_size + 2
        for _ in range(n_hidden):
            layers += [nn.Conv2d(channels, hidden, kernel, padding="same"), nn.ReLU()]
            channels = hidden
        layers.append(nn.Conv2d(channels, out_channels, out_kernel, padding="same"))
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[0]
        h, w = self.coords.shape[-2:]
        tiled = z[:, :, None, None].expand(-1, -1, h, w)
        coords = self.coords.to(z.dtype).expand(n, -1, -1, -1)
        return self.net(torch.cat([tiled, coords], dim=1))


class MLPDecoder(nn.Module):
    """The original's `higgins` decoder: Linear(latent, 1200), Tanh, twice more Linear(1200, 1200),
    Tanh, then a linear map to every pixel (the original's 4096 is H*W of one channel; its
    ground-truth decoders scale it by the channels), reshaped to C x H x W.

    The original initialises these layers as every linear layer, Kaiming-uniform with the ReLU gain
    (`initialization.weights_init`), tanh or not; so does `kaiming_init`."""

    def __init__(self, image_shape, latent_size: int, fc: tuple[int, ...] = (1200, 1200, 1200)):
        super().__init__()
        h, w, c = image_shape
        layers: list[nn.Module] = []
        width = latent_size
        for out in fc:
            layers += [nn.Linear(width, out), nn.Tanh()]
            width = out
        layers += [nn.Linear(width, h * w * c), nn.Unflatten(1, (c, h, w))]
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class BNConvDecoder(nn.Module):
    """The ICLR 2021 ground-truth decoders written out layer by layer (`configs/decoders.py`, the
    same in the NeurIPS repository): Linear layers of widths `fc`, then one to `channels` x (H/16)
    x (W/16) features (the original's 64 * 4 * 4), Unflatten, transposed convs (4, 2, 1) to `tconv`
    channels, then one to the image's channels. Every hidden layer is followed by a ReLU.

    With `batch_norm` (a momentum; torch's default 0.1, as the original passes none), a BatchNorm1d
    or BatchNorm2d follows each ReLU, and every layer after the first has no bias except the output
    conv, whose bias is `out_bias` (the original's `kim_bn` keeps it, `deep_bn` drops it).
    """

    def __init__(
        self,
        image_shape,
        latent_size: int,
        fc: tuple[int, ...],
        channels: int,
        tconv: tuple[int, ...],
        batch_norm: float | None = None,
        out_bias: bool = True,
    ):
        super().__init__()
        out_channels = image_shape[2]
        fh, fw = _feature_side(image_shape, len(tconv) + 1)
        fc = (*fc, channels * fh * fw)
        bn = batch_norm is not None
        layers: list[nn.Module] = []
        width = latent_size
        for i, out in enumerate(fc):
            layers += [nn.Linear(width, out, bias=not bn or i == 0), nn.ReLU()]
            if bn:
                layers.append(nn.BatchNorm1d(out, momentum=batch_norm))
            width = out
        layers.append(nn.Unflatten(1, (channels, fh, fw)))
        for out in tconv:
            layers += [nn.ConvTranspose2d(channels, out, KERNEL, STRIDE, PADDING, bias=not bn), nn.ReLU()]
            if bn:
                layers.append(nn.BatchNorm2d(out, momentum=batch_norm))
            channels = out
        layers.append(nn.ConvTranspose2d(channels, out_channels, KERNEL, STRIDE, PADDING, bias=out_bias))
        self.net = nn.Sequential(*layers)
        kaiming_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_encoder(name: str, image_shape, latent_size: int) -> nn.Module:
    """The encoder of the registry (`compgen.models.ENCODERS`) named `name`."""
    from compgen.models import ENCODERS

    return ENCODERS.get_or_error(name)(tuple(image_shape), latent_size)


def build_decoder(name: str, image_shape, latent_size: int) -> nn.Module:
    """The decoder of the registry (`compgen.models.DECODERS`) named `name`."""
    from compgen.models import DECODERS

    return DECODERS.get_or_error(name)(tuple(image_shape), latent_size)
