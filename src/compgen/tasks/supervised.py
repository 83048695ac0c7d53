"""Task `supervised`: a regressor of the standardised factors (the NeurIPS supervised control).

Its "latents" are its predictions; it reconstructs nothing, and its R² is the regression's own."""

from __future__ import annotations

import numpy as np

from compgen.tasks.base import Task


def regression_r2(predicted: np.ndarray, truth: np.ndarray, grid, scored: list[int]) -> list[float]:
    """Per-factor R² of predictions of the standardised factors, against each factor's variance over
    the full grid (standardised the same way); NaN for single-valued factors and for those outside
    `scored` (a factor held constant in the split is predicted trivially)."""
    from compgen.analysis import metrics

    _, full_variance = metrics.grid_value_stats([f.values for f in grid.factors])
    spans = np.array([np.ptp(np.asarray(f.values, dtype=np.float64)) for f in grid.factors])
    variance = np.where(spans > 0, np.asarray(full_variance) / np.where(spans > 0, spans, 1.0) ** 2, 0.0)
    mse = np.mean((predicted - truth.astype(np.float64)) ** 2, axis=0)
    variance = np.where(np.isin(np.arange(len(grid.factors)), scored), variance, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(x) for x in np.where(variance > 0, 1.0 - mse / variance, np.nan)]


class Supervised(Task):
    name = "supervised"
    parts = ("encoder",)
    uses_objective = False
    selection_part = "mse"
    figures = ("curves", "hinton", "latents")

    def label(self, model_cfg):
        return f"supervised ({model_cfg['encoder']})"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import FactorRegressor, build_encoder

        return FactorRegressor(
            build_encoder(model_cfg["encoder"], image_shape, model_cfg["latent_size"]), n_factors
        )

    def training_loss(self, model, batch, data, objective, step):
        from torch.nn.functional import mse_loss

        mse = mse_loss(model(data.images(batch)).float(), data.factors[batch])
        return {"mse": mse, "loss": mse}, None

    def validation_loss(self, model, batch, data, objective):
        return (model(data.images(batch)).float() - data.factors[batch]).pow(2).mean(1)

    def encode(self, model, images, codes):
        return model(images), None

    def decode(self, model, z):
        return None  # a regressor has no decoder

    def r2_scores(self, grid, z_train, v_train, z_test, v_test, codes_train, codes_test, scored):
        return {
            "r2_test": regression_r2(z_test, codes_test, grid, scored),
            "r2_train": regression_r2(z_train, codes_train, grid, scored),
        }


TASK = Supervised()
