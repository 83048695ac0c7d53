"""Task `cascade`: CascadeVAE (Jeong & Song 2019), one of the NeurIPS code's alternative families
(model and objective: `compgen.models.cascade`).

Model keys (schema, `task: cascade` only): n_cat, disc_warmup, lmbda (the model, as the
original's model config `vaes.py` `cascade()`), beta_high, beta_low, warmup (the objective, as its
training config `training.py` `cascade()`: loss 'infocasc', beta (2, 10), warmup 20000). The
`loss` key does not apply. The original's model is `latent_size: 6` with the `kim` encoder and its
transposed decoder; the schema's defaults for those keys are the project's (10, abdi) and an
if-branch cannot override a default the top level sets first, so configs reproducing it set
`latent_size: 6, encoder: kim, decoder: kim` (and `training: {epochs: 30, lr: 3.0e-4}`).

Every schedule (the falling betas, the discrete warm-up) is a function of the trainer's step,
which checkpoints hold, so a resumed run replays exactly; neither model nor objective keeps a
counter of its own (the original's model counts forward passes in a buffer, `_train_steps`).
"""

from __future__ import annotations

from compgen.tasks.base import Task


class Cascade(Task):
    name = "cascade"
    # Its objective is its own (`objective`), not a VAE-family `loss`.
    uses_objective = False

    def label(self, model_cfg):
        return "CascadeVAE"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models.cascade import build_cascade

        return build_cascade(model_cfg, image_shape)

    def objective(self, model_cfg, n_fit):
        from compgen.models.cascade import CascadeLoss

        return CascadeLoss(
            model_cfg["recon"],
            n_fit,
            beta_high=float(model_cfg["beta_high"]),
            beta_low=float(model_cfg["beta_low"]),
            warmup=int(model_cfg["warmup"]),
        )

    def training_loss(self, model, batch, data, objective, step):
        x = data.images(batch)
        logits, mu, logvar, z, _ = model(x, step)
        return objective.single(logits, x, mu, logvar, z, step), None

    def validation_loss(self, model, batch, data, objective):
        from compgen.losses import reconstruction_per_image

        x = data.images(batch)
        return reconstruction_per_image(model(x)[0], x, data.recon)

    def encode(self, model, images, codes):
        """The continuous means and the cheapest category as one scalar in [-1, 1] (the original's
        `discrete2con`, at a fixed scale), and the reconstruction from them (z = mu, argmin)."""
        representation, _ = model.encode(images)
        return representation, model.decode(representation)


TASK = Cascade()
