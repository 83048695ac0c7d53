"""A VAE (any encoder giving (mu, logvar) with any decoder giving logits) and the supervised controls."""

from __future__ import annotations

import torch
from torch import nn


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Reparameterised sample while training; the mean at evaluation (SPEC §4)."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (logits, mu, logvar, z)."""
        mu, logvar = self.encode(x)
        z = self.sample(mu, logvar)
        return self.decode(z), mu, logvar, z


class FactorRegressor(nn.Module):
    """Task `supervised`: an encoder's convolutional and dense layers, then a linear head
    predicting every factor, standardised (SPEC §4)."""

    def __init__(self, encoder: nn.Module, n_factors: int):
        super().__init__()
        self.features = encoder.features
        self.head = nn.Linear(encoder.head.in_features, n_factors)
        nn.init.kaiming_uniform_(self.head.weight, nonlinearity="relu")
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class GroundTruthDecoder(nn.Module):
    """Task `gt_decoder` (ICLR 2021 control): a decoder fed the standardised ground-truth factors."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        return self.decoder(factors)
