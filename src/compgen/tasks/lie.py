"""Task `lievae`: LieGroupVAE (Zhu et al. 2021), one of the NeurIPS code's alternative families
(model and loss: `compgen.models.lie`).

Model keys (schema, `task: lievae` only): subgroup_size (g = m², the original's `latent_size[0]`,
100 = 10 x 10 matrices; 400 on 3DShapes in `run-alts.sh`), subspace_size (s latents, the
original's `latent_size[1]`, 10), kl_gamma, group_recon_weight, hessian_weight, commutator_weight
(the original's `gamma`, `hy_rec`, `hy_hes`, `hy_commute`: 1, 0.1, 40, 0; 20 for hessian on
3DShapes) and decoder_raw_prob (its `prob_forward`, 0.2). One subgroup, as every configuration of
the original. `latent_size` must equal subspace_size (the number of latents); the `loss` key does
not apply. The schema's defaults for `encoder`, `decoder` and `recon` are the project's (abdi,
abdi, bce) and an if-branch cannot override a default the top level sets first, so configs
reproducing the original set `encoder: kim, decoder: kim, recon: mse_raw` (its `liegroup()`
encoder is kim's layers, its decoder their transpose, its 'mse' `mse_loss` on the raw output) and
`training: {epochs: 50, batch_size: 256, lr: 1.0e-4}` (100 epochs with `rebalance: shape` on
the held-out conditions); a label shows a reconstruction other than mse_raw.

Randomness: the decoder's input (encoder features with probability decoder_raw_prob, once per
batch as the original's `np.random.rand() < prob_forward`) is drawn from a generator seeded by
(run seed, step, RAW_FEATURES_STREAM), so a resumed run replays every draw; the reparameterisation
noise is the global stream the engine seeds per epoch, as for every VAE here.

Analysis: the original (`scripts/analysis/model.py` with `scripts/ingredients/analysis.py`
`project_subspaces`) projects before DCI: for a subgroup of g features and s latents it cuts
g // s blocks of s consecutive columns, fits `PCA(n_components=s)` on each block over the training
images, keeps the first component, and projects the test images with the training fit. What it
projects is what `infer` reads, `model.embed(x)` (analysis.py line 295), which for a LieGroupVAE is
the g group features of z = mu (lievae.py lines 47-50): so here too, the group features of z = mu,
g // s blocks (10 for dSprites, 40 for 3DShapes), each on its first principal component. The
original fits on all training images after training; `Task.encode` sees one batch, so the
fit cannot happen in analysis: the projection belongs to the model (buffers) and is fitted on the
validation images, which are training images (a seeded sample of the training subset; a held-out
slice of it with `validation: holdout`), during the validation pass at the end of every epoch,
so the best and the last weights each carry the projection fitted with them, and a resumed run
refits it exactly. The fit is exact and deterministic (a streaming covariance in float64 and its
eigenvector, equal to sklearn's PCA(svd_solver='full') with its sign convention). Traversals sweep
the s latents z (`decode` renders G(z)); the projected latents cannot be decoded, so the latent
oracle's decoded scores do not apply (`decode` gives None).
"""

from __future__ import annotations

import math

from compgen.tasks.base import Task

# derived_seed stream of the per-step draw of the decoder's input (others: batches.py, 0-2).
RAW_FEATURES_STREAM = 0x11E


def raw_features_drawn(seed: int, step: int, prob: float) -> bool:
    """Whether the decoder gets the encoder's features at this step: a function of (seed, step)."""
    import torch

    from compgen.batches import derived_seed

    if prob <= 0:
        return False
    g = torch.Generator().manual_seed(derived_seed(seed, step, RAW_FEATURES_STREAM))
    return bool(torch.rand((), generator=g) < prob)


class LieVAE(Task):
    name = "lievae"
    # Its loss is its own (`objective`), not a VAE-family `loss`.
    uses_objective = False

    def check_model(self, model_cfg, grid):
        g, s = int(model_cfg["subgroup_size"]), int(model_cfg["subspace_size"])
        m = math.isqrt(g)
        if m * m != g:
            return (
                "subgroup_size",
                f"{g} is not a square m*m; the group's elements are m x m matrices (the original's "
                "100 = 10 x 10, 400 = 20 x 20)",
            )
        if s > g:
            return ("subspace_size", f"{s} latents for a subgroup of {g} features; at most {g}")
        if int(model_cfg["latent_size"]) != s:
            return (
                "latent_size",
                f"lievae's latents are its subspace_size ({s}); set latent_size to {s} as well",
            )
        return None

    def label(self, model_cfg):
        recon = model_cfg.get("recon", "mse_raw")
        return "LieGroupVAE" if recon == "mse_raw" else f"LieGroupVAE ({recon})"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import build_decoder, build_encoder
        from compgen.models.lie import LieGroupVAE

        g, s = int(model_cfg["subgroup_size"]), int(model_cfg["subspace_size"])
        # The encoder's layers without its (mu, logvar) head; the model adds Linear(., g).
        encoder = build_encoder(model_cfg["encoder"], image_shape, s)
        return LieGroupVAE(
            encoder.features,
            encoder.head.in_features,
            build_decoder(model_cfg["decoder"], image_shape, g),
            [g],
            [s],
        )

    def objective(self, model_cfg, n_fit):
        from compgen.models.lie import LieLoss

        return LieLoss(model_cfg["recon"], n_fit, **{k: float(model_cfg[k]) for k in LieLoss.hyper})

    def training_loss(self, model, batch, data, objective, step):
        x = data.images(batch)
        raw = raw_features_drawn(data.seed, step, objective.decoder_raw_prob)
        parts = objective.lie(model(x, raw_features=raw), x, model)
        parts["raw_features"] = parts["loss"].new_tensor(float(raw))
        return parts, None

    def validation_loss(self, model, batch, data, objective):
        """Per-image reconstruction at z = mu; the pass also fits the analysis projection (its
        first slice starts the fit, the slice reaching every validation row finishes it)."""
        from compgen.losses import reconstruction_per_image

        x = data.images(batch)
        out = model(x)
        if int(batch[0]) == int(data.val[0]):
            model.start_projection()
        model.add_to_projection(out.group)
        if model.projection_rows == data.val.size:
            model.finish_projection()
        return reconstruction_per_image(out.logits, x, data.recon)

    def encode(self, model, images, codes):
        """The group features of mu projected block by block (see the module docstring), and the
        reconstruction from them."""
        mu, _ = model.encode(images)
        group = model.group_features(mu)
        return model.project(group), model.decoder(group)

    def decode(self, model, z):
        """None: a first principal component per block does not determine the group features."""
        return None


TASK = LieVAE()
