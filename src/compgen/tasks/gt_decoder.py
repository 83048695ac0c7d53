"""Task `gt_decoder` (ICLR 2021 control): a decoder fed the standardised ground-truth factors.

It has no encoder: its "latents" are its inputs, and latent metrics do not apply."""

from __future__ import annotations

from compgen.tasks.base import Task


class GroundTruthDecoding(Task):
    name = "gt_decoder"
    parts = ("decoder",)
    uses_objective = False
    has_representation = False
    figures = ("curves", "reconstructions")

    def label(self, model_cfg):
        return f"ground-truth decoder ({model_cfg['decoder']})"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import GroundTruthDecoder, build_decoder

        return GroundTruthDecoder(build_decoder(model_cfg["decoder"], image_shape, n_factors))

    def training_loss(self, model, batch, data, objective, step):
        from compgen.losses import reconstruction_per_image

        rec = reconstruction_per_image(model(data.factors[batch]), data.images(batch), data.recon).mean()
        return {"recon": rec, "loss": rec}, None

    def validation_loss(self, model, batch, data, objective):
        from compgen.losses import reconstruction_per_image

        return reconstruction_per_image(model(data.factors[batch]), data.images(batch), data.recon)

    def encode(self, model, images, codes):
        return codes, model(codes)


TASK = GroundTruthDecoding()
