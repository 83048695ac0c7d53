"""Task `composition` (NeurIPS 2022): from a reference and a command image and the factor d to
change, render the target that takes d's value from the command and the rest from the reference.
Trained on triplets of training images; scored also on triplets whose target is held out."""

from __future__ import annotations

import numpy as np

from compgen.tasks.base import Task, TrainingData
from compgen.tasks.unsupervised import build_vae


class Composition(Task):
    name = "composition"
    selection_part = "recon_target"

    def check_model(self, model_cfg, grid):
        if model_cfg["op"] == "fixint" and len(grid.sizes) > model_cfg["latent_size"]:
            return "latent_size", (
                f"op 'fixint' needs one latent unit per factor ({len(grid.sizes)} factors) "
                f"but latent_size is {model_cfg['latent_size']}"
            )
        return None

    def label(self, model_cfg):
        return f"{super().label(model_cfg)} ({model_cfg['op']})"

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import CompositionModel

        return CompositionModel(
            build_vae(model_cfg, image_shape), model_cfg["op"], n_factors, model_cfg["latent_size"]
        )

    def epoch_batches(self, data: TrainingData, batch_size, steps):
        """Epoch e: `steps` batches of triplets from a sampler reseeded with (seed, e); the whole
        epoch is drawn in one call (per-batch calls would cost a dozen small ops per step). With
        `rebalance`, references are drawn by `data.fit_weights` (the original weighted its
        `TripletDataset`'s reference images)."""
        import torch

        from compgen.training.batches import SHUFFLE_STREAM, Triplets, TripletSampler, derived_seed

        sampler = TripletSampler(
            data.classes[data.fit], data.grid.sizes, torch.Generator(), data.device, data.fit_weights
        )
        fit_rows, seed = data.fit_rows, data.seed

        def batches(epoch: int):
            sampler.generator.manual_seed(derived_seed(seed, epoch, SHUFFLE_STREAM))
            t = sampler.sample(steps * batch_size)
            t = Triplets(fit_rows[t.ref], fit_rows[t.cmd], fit_rows[t.target], t.d)
            for i in range(steps):
                yield Triplets(*(x[i * batch_size : (i + 1) * batch_size] for x in t))

        return batches

    def validation_set(self, data: TrainingData):
        """Fixed triplets whose target is a validation row; ref and cmd from the whole training
        subset (validation rows included, whether they are trained on or held out)."""
        import torch

        from compgen.training.batches import (
            VALIDATION_STREAM,
            Triplets,
            derived_seed,
            heldout_triplets,
            position_lookup,
        )

        g = torch.Generator().manual_seed(derived_seed(data.seed, 0, VALIDATION_STREAM))
        flat = heldout_triplets(data.grid.sizes, data.classes, data.classes[data.val], int(data.val.size), g)
        rows = position_lookup(data.train_flat, data.grid.n)
        return Triplets(
            *(torch.as_tensor(rows[f] if i < 3 else f, device=data.device) for i, f in enumerate(flat))
        )

    def training_loss(self, model, batch, data, objective, step):
        import torch

        from compgen.training.batches import action_onehot

        ref, cmd, target = data.images(batch.ref), data.images(batch.cmd), data.images(batch.target)
        out = model.compose(ref, cmd, action_onehot(batch.d, data.n_factors))
        return objective.composition(out, ref, cmd, target, step), torch.cat([out["z_ref"], out["z_cmd"]])

    def validation_loss(self, model, batch, data, objective):
        from compgen.losses import reconstruction_per_image
        from compgen.training.batches import action_onehot

        out = model.compose(
            data.images(batch.ref), data.images(batch.cmd), action_onehot(batch.d, data.n_factors)
        )
        return reconstruction_per_image(out["recon_target"], data.images(batch.target), data.recon)

    def encode(self, model, images, codes):
        mu, _ = model.encode(images)
        return mu, model.decode(mu)

    def extra_scores(self, model, inputs):
        """Mean reconstruction loss of composed images whose target is a held-out combination."""
        import torch

        from compgen.losses import reconstruction_per_image
        from compgen.training.batches import action_onehot, heldout_triplets

        grid = inputs.grid
        if not inputs.test.size:  # an all-data reference has no held-out combination to compose
            return {"composition_loss_test": float("nan")}
        generator = torch.Generator().manual_seed(inputs.seed)
        ref, cmd, target, d = heldout_triplets(
            grid.sizes,
            grid.classes(inputs.train),
            grid.classes(inputs.test),
            inputs.sizes["n_triplets"],
            generator,
        )
        losses = []
        with torch.no_grad():
            for start in range(0, len(target), inputs.batch):
                sl = slice(start, start + inputs.batch)
                action = action_onehot(torch.as_tensor(d[sl]), len(grid.sizes))
                out = model.compose(
                    inputs.images(np.asarray(ref[sl])), inputs.images(np.asarray(cmd[sl])), action
                )
                losses.append(
                    reconstruction_per_image(
                        out["recon_target"], inputs.images(np.asarray(target[sl])), inputs.recon
                    )
                )
        return {"composition_loss_test": float(torch.cat(losses).mean())}


TASK = Composition()
