"""Task `unsupervised`: a VAE-family model reconstructing single images (ICLR 2021)."""

from __future__ import annotations

from compgen.tasks.base import Task


def build_vae(model_cfg: dict, image_shape):
    from compgen.models import VAE, build_decoder, build_encoder

    latent_size = model_cfg["latent_size"]
    return VAE(
        build_encoder(model_cfg["encoder"], image_shape, latent_size),
        build_decoder(model_cfg["decoder"], image_shape, latent_size),
    )


class Unsupervised(Task):
    name = "unsupervised"

    def build_model(self, model_cfg, image_shape, n_factors):
        return build_vae(model_cfg, image_shape)

    def training_loss(self, model, batch, data, objective, step):
        x = data.images(batch)
        logits, mu, logvar, z = model(x)
        return objective.single(logits, x, mu, logvar, z, step), z

    def validation_loss(self, model, batch, data, objective):
        from compgen.losses import reconstruction_per_image

        x = data.images(batch)
        return reconstruction_per_image(model(x)[0], x, data.recon)

    def encode(self, model, images, codes):
        mu, _ = model.encode(images)
        return mu, model.decode(mu)


TASK = Unsupervised()
