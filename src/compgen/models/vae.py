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
        """Reparameterised sample while training; the mean at evaluation."""
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
    predicting every factor, standardised as (v - mean of its values) / (max - min).

    The original's regressor (mmrl/lost-in-latent-space `scripts/ingredients/models.py` `init_pred`)
    is the layer list of `scripts/configs/feedforward.py` plus Linear(256, n_factors): with `kim`
    and `montero` the same layers as these encoders' `features` (its `abdi` there has four convs,
    32, 64, 128, 256, not the five of the VAE `abdi` here). Unlike the original's VAEs, `init_pred`
    applies no `weights_init`, so the original's regressors start from torch's default
    initialisation; this one starts Kaiming-uniform with zero biases, as every model here."""

    def __init__(self, encoder: nn.Module, n_factors: int):
        super().__init__()
        self.features = encoder.features
        self.head = nn.Linear(encoder.head.in_features, n_factors)
        nn.init.kaiming_uniform_(self.head.weight, nonlinearity="relu")
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class GroundTruthDecoder(nn.Module):
    """Task `gt_decoder` (ICLR 2021 control): a decoder fed the ground-truth factors.

    It is called with the standardised factors, (v - mean(unique values)) / (max - min) per factor,
    which is what training and analysis hold. With `inputs="standardised"` the decoder gets them as
    they are; with `inputs="raw"` it gets the factor values themselves, as the original's
    ground-truth decoders (mmrl/disent-and-gen `src/dataset/*.py` `Reconstruction` yields the raw
    `latent_values`): standardised * span + mean, undone per factor with the statistics of the
    dataset's grid. Those live in buffers (saved with the weights) that `set_value_stats` fills
    before the first use; a constant factor (span 0) gets its single value back.
    """

    INPUTS = ("standardised", "raw")

    def __init__(self, decoder: nn.Module, inputs: str = "standardised", n_factors: int | None = None):
        super().__init__()
        if inputs not in self.INPUTS:
            raise ValueError(f"unknown gt_decoder inputs {inputs!r}; allowed: {', '.join(self.INPUTS)}")
        self.decoder = decoder
        self.inputs = inputs
        self.value_stats_set = inputs == "standardised"
        if inputs == "raw":
            if n_factors is None:
                raise ValueError("gt_decoder inputs 'raw' needs n_factors")
            self.register_buffer("value_mean", torch.full((n_factors,), float("nan")))
            self.register_buffer("value_span", torch.full((n_factors,), float("nan")))
            self.register_load_state_dict_post_hook(_mark_value_stats_set)

    @torch.no_grad()
    def set_value_stats(self, mean, span) -> None:
        """Per-factor mean of the unique values and max - min (what standardising used)."""
        if self.inputs != "raw":
            return
        self.value_mean.copy_(torch.as_tensor(mean, dtype=self.value_mean.dtype))
        self.value_span.copy_(torch.as_tensor(span, dtype=self.value_span.dtype))
        self.value_stats_set = True

    def decoder_inputs(self, factors: torch.Tensor) -> torch.Tensor:
        """What the decoder is fed for standardised `factors`."""
        if self.inputs == "standardised":
            return factors
        if not self.value_stats_set:
            raise RuntimeError("gt_decoder with raw inputs: set_value_stats was not called")
        return factors * self.value_span + self.value_mean

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.decoder_inputs(factors))


def _mark_value_stats_set(module: GroundTruthDecoder, incompatible_keys) -> None:
    """After loading weights: the statistics came with them unless they are still unset (NaN)."""
    module.value_stats_set = not bool(
        torch.isnan(module.value_mean).any() or torch.isnan(module.value_span).any()
    )
