"""compgen plugin example: the DIP-VAE-I loss and a denoising task (declarations, no torch)."""

from compgen.losses import Loss, loss_label
from compgen.tasks.unsupervised import Unsupervised

# Kumar, Sattigeri & Balakrishnan (2018), "Variational inference of disentangled latent concepts
# from unlabeled observations", DIP-VAE-I: the regulariser acts on Cov[mu] over the batch.
DIP_VAE_I = Loss(
    "DIP-VAE-I",
    "compgen_dipvae.dipvae:DIPVAEILoss",
    hyper={
        "lambda_od": {
            "type": "number",
            "minimum": 0,
            "default": 10.0,
            "description": "weight of the squared off-diagonal entries of Cov[mu]",
        },
        "lambda_d": {
            "type": "number",
            "minimum": 0,
            "default": 100.0,
            "description": "weight of the squared distance of Cov[mu]'s diagonal from 1",
        },
    },
    label_symbols={"lambda_od": "λod", "lambda_d": "λd"},
)

# The share of pixels the denoising task drops from each training image.
DROP_RATE = 0.1


class Denoising(Unsupervised):
    """A VAE-family model that reconstructs each clean training image from a copy with a share
    `DROP_RATE` of its pixels set to 0; validation and analysis see clean images."""

    name = "denoising"

    def label(self, model_cfg):
        return f"{loss_label(model_cfg)}, denoising"

    def training_loss(self, model, batch, data, objective, step):
        import torch

        x = data.images(batch)
        kept = (torch.rand_like(x[:, :1]) >= DROP_RATE).to(x.dtype)  # one mask per pixel, all channels
        logits, mu, logvar, z = model(x * kept)
        return objective.single(logits, x, mu, logvar, z, step), z


DENOISING = Denoising()
