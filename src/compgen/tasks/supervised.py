"""Task `supervised`: a regressor of the standardised factors (the NeurIPS supervised control).

Its "latents" are its predictions; it reconstructs nothing, and its R² is the regression's own
(analysis' kind-aware fit, compgen.metrics.fit, reads its predictions as it reads latents)."""

from __future__ import annotations

import numpy as np

from compgen.tasks.base import Task


def regression_r2(
    predicted: np.ndarray, truth: np.ndarray, train_mean: np.ndarray, scored: list[int], train_var=None
) -> list[float]:
    """Per-factor R² of predictions of the standardised factors against the training images' mean
    (representation.r2_against_training_mean, on the same rows); NaN for factors outside `scored` (a
    factor held constant in the split is predicted trivially)."""
    from compgen.metrics import representation

    r2 = representation.r2_against_training_mean(predicted, truth, train_mean, train_var)
    return [r if k in scored else float("nan") for k, r in enumerate(r2)]


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
        codes_train = np.asarray(codes_train, dtype=np.float64)
        train_mean, train_var = codes_train.mean(axis=0), codes_train.var(axis=0)
        return {
            "r2_test": regression_r2(z_test, codes_test, train_mean, scored, train_var),
            "r2_train": regression_r2(z_train, codes_train, train_mean, scored, train_var),
        }


TASK = Supervised()
