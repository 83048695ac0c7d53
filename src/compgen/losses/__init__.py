"""The loss registry: one `Loss` per VAE-family objective, naming its title, its hyper-parameters
(each a JSON schema with its default, written into the config schema when it is loaded: the one
place they are set) and the class that computes it (`compgen.losses.objectives`, torch).

Light to import (no torch): the workflow reads the registry while planning. The torch code
(`reconstruction_per_image`, the `Objective` classes, ...) is reached through this module as
before (`from compgen.losses import reconstruction_per_image`), imported on first use.

A loss defined elsewhere joins with `register_loss(name, Loss(...))` or an entry point of the
group `compgen.losses` naming a `Loss` (compgen.registry).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compgen.registry import Registry, RegistryError, resolve

# bce: Bernoulli on logits; mse: squared error of sigmoid(output); mse_raw: squared error of the
# decoder's raw output, as the original's WAE (`mse_loss(reconstruction, target)` on the decoder's
# output, which has no output non-linearity): that decoder predicts pixels, not logits.
RECON_KINDS = ("bce", "mse", "mse_raw")
# The WAE's two MMD estimates (WAELoss).
MMD_KINDS = ("original", "unbiased")
# What the composition loss reconstructs (`models.<m>.objective`; Objective.composition).
COMPOSITION_OBJECTIVES = ("target_and_inputs", "target_only")


@dataclass(frozen=True)
class Loss:
    """A loss of the registry.

    `objective`: the `compgen.losses.Objective` subclass, or a "module:Class" reference to it
    (imported when a run is trained, so that a plugin's declaration stays free of torch);
    `hyper`: hyper-parameter -> JSON schema (type, bounds, `default`, description), accepted in a
    model config only with this loss; `label_symbols`: the hyper-parameters a derived label shows,
    with their symbols ("β-VAE (β=8)"); `label_extra(model_cfg)`: words a derived label adds for a
    variant the symbols cannot show; `recon`: the default reconstruction loss. The objective is
    built with `recon`, `n_train`, every hyper-parameter and, if its constructor takes it,
    `latent_size`.
    """

    title: str
    objective: Any
    hyper: Mapping[str, dict] = field(default_factory=dict)
    label_symbols: Mapping[str, str] = field(default_factory=dict)
    label_extra: Callable[[dict], list[str]] | None = None
    recon: str = "bce"

    def objective_class(self) -> type:
        return resolve(self.objective) if isinstance(self.objective, str) else self.objective


def _check_loss(name: str, loss) -> None:
    if not isinstance(loss, Loss):
        raise RegistryError(f"loss {name!r}: expected a compgen.losses.Loss, got {type(loss).__name__}")
    if loss.recon not in RECON_KINDS:
        raise RegistryError(f"loss {name!r}: recon {loss.recon!r} is not one of {', '.join(RECON_KINDS)}")
    missing = [key for key, schema in loss.hyper.items() if "default" not in schema]
    if missing:
        raise RegistryError(f"loss {name!r}: hyper-parameters {missing} need a default in their schema")


def _wae_extra(model_cfg: dict) -> list[str]:
    return ["unbiased MMD"] if model_cfg.get("mmd") == "unbiased" else []


_OBJECTIVES = "compgen.losses.objectives"

LOSSES = Registry(
    "loss",
    {
        "vae": Loss("VAE", f"{_OBJECTIVES}:VAELoss"),
        "betavae": Loss(
            "β-VAE",
            f"{_OBJECTIVES}:BetaVAELoss",
            hyper={
                "beta": {
                    "type": "number",
                    "minimum": 0,
                    "default": 4.0,
                    "description": "weight of the KL term",
                }
            },
            label_symbols={"beta": "β"},
        ),
        "ccivae": Loss(
            "CCI-VAE",
            f"{_OBJECTIVES}:CCIVAELoss",
            hyper={
                "gamma": {
                    "type": "number",
                    "minimum": 0,
                    "default": 1000.0,
                    "description": "weight of abs(KL - capacity)",
                },
                "capacity_max": {
                    "type": "number",
                    "minimum": 0,
                    "default": 25.0,
                    "description": "final capacity in nats",
                },
                "capacity_steps": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 100000,
                    "description": "steps to reach capacity_max",
                },
            },
            label_symbols={"capacity_max": "C"},
        ),
        "factorvae": Loss(
            "FactorVAE",
            f"{_OBJECTIVES}:FactorVAELoss",
            hyper={
                "gamma": {
                    "type": "number",
                    "minimum": 0,
                    "default": 40.0,
                    "description": "weight of the total correlation",
                },
                "disc_lr": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 1.0e-4,
                    "description": "discriminator Adam learning rate",
                },
                "disc_slope": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "default": 0.2,
                    "description": "negative slope of the discriminator's LeakyReLU units - 0.2 as the "
                    "NeurIPS 2022 code, 0.01 as the ICLR 2021 code",
                },
            },
            label_symbols={"gamma": "γ"},
        ),
        "btcvae": Loss(
            "β-TCVAE",
            f"{_OBJECTIVES}:BetaTCVAELoss",
            hyper={
                "beta": {
                    "type": "number",
                    "minimum": 0,
                    "default": 6.0,
                    "description": "weight of the total correlation",
                }
            },
            label_symbols={"beta": "β"},
        ),
        "wae": Loss(
            "WAE-MMD",
            f"{_OBJECTIVES}:WAELoss",
            hyper={
                "mmd_weight": {
                    "type": "number",
                    "minimum": 0,
                    "default": 10.0,
                    "description": "lambda, weight of the MMD",
                },
                "prior_var": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 2.0,
                    "description": "the Gaussian prior - its variance with mmd unbiased, its standard "
                    "deviation with mmd original (the original's prior_var * randn)",
                },
                "logvar_penalty": {
                    "type": "number",
                    "minimum": 0,
                    "default": 1.0e-3,
                    "description": "L1 weight on log sigma squared",
                },
                "mmd": {
                    "type": "string",
                    "enum": list(MMD_KINDS),
                    "default": "original",
                    "description": "original - the paper's numerics (distances summed over all pairs "
                    "before the kernel, prior prior_var * randn, composed latent included); unbiased - "
                    "per-pair unbiased MMD against N(0, prior_var I)",
                },
            },
            label_extra=_wae_extra,
            # As the original: its WAE decoder predicts pixels (mse_raw), the others logits.
            recon="mse_raw",
        ),
    },
    check=_check_loss,
)


def register_loss(name: str, loss: Loss) -> Loss:
    """Add a loss under `name` (a name may be registered once)."""
    return LOSSES.register(name, loss)


def get_loss(name: str) -> Loss:
    """The registry's `Loss` of this name, or an error listing the allowed names."""
    return LOSSES.get_or_error(name)


def loss_class(name: str) -> type:
    """The `Objective` subclass of a loss (imports torch)."""
    return get_loss(name).objective_class()


def build_objective(model_cfg: dict, n_train: int):
    """The objective of a validated model config (every hyper-parameter of its loss present)."""
    loss = get_loss(model_cfg["loss"])
    cls = loss.objective_class()
    extra = {}
    if "latent_size" in inspect.signature(cls.__init__).parameters:
        extra["latent_size"] = model_cfg["latent_size"]
    return cls(model_cfg["recon"], n_train, **extra, **{k: model_cfg[k] for k in loss.hyper})


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def loss_label(model_cfg: dict) -> str:
    """ "β-VAE (β=8)": the loss's title and the hyper-parameters that tell its variants apart."""
    loss = get_loss(model_cfg["loss"])
    extra = loss.label_extra(model_cfg) if loss.label_extra else []
    shown = ", ".join([f"{sym}={_number(model_cfg[key])}" for key, sym in loss.label_symbols.items()] + extra)
    return f"{loss.title} ({shown})" if shown else loss.title


def __getattr__(name: str):
    """The torch half (`compgen.losses.objectives`), imported on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return resolve(f"compgen.losses.objectives:{name}")
    except AttributeError:
        raise AttributeError(f"module 'compgen.losses' has no attribute {name!r}") from None
