"""Task `composition` (NeurIPS 2022): from a reference and a command image and the factor d to
change, render the target that takes d's value from the command and the rest from the reference.
Trained on triplets of training images; scored also on triplets whose target is held out."""

from __future__ import annotations

import numpy as np

from compgen.tasks.base import Task, TrainingData
from compgen.tasks.unsupervised import build_vae

# The seed stream of the training-target triplets (compgen.batches uses 0-2 per epoch).
TRAIN_TARGET_STREAM = 3

# What selects the best epoch (`models.<m>.select_on`) -> the part logged as val_<part>.
SELECTION_PARTS = {"target": "recon_target", "all": "recon_all"}

# The model keys of the task's protocol and their defaults (the schema's): the NeurIPS code's.
DEFAULTS = {"objective": "target_and_inputs", "command": "resample_others", "select_on": "target"}


def setting(model_cfg: dict, key: str) -> str:
    """A composition model's protocol setting (DEFAULTS), checked."""
    value = model_cfg.get(key, DEFAULTS[key])
    if key == "select_on" and value not in SELECTION_PARTS:
        raise ValueError(f"unknown models.<model>.select_on {value!r}; allowed: {', '.join(SELECTION_PARTS)}")
    return value


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
        words = [model_cfg["op"]]
        if setting(model_cfg, "objective") == "target_only":
            words.append("target only")
        if setting(model_cfg, "command") == "same_value":
            words.append("same-value command")
        return f"{super().label(model_cfg)} ({', '.join(words)})"

    def selection_part_for(self, model_cfg):
        """`select_on: target` (compgen's default) selects on the composed target's reconstruction,
        as the ICLR code (its first metric, `recons_nll` of the target: mmrl/disent-and-gen
        `scripts/experiments/composition.py` lines 145-146, `src/training/loss.py` lines 257-263);
        `all` on the reference's, command's and target's together, as the NeurIPS code (its
        `recons_nll` on the stacked three, `scripts/experiments/composition.py` lines 177-178,
        `src/dataset/tuples.py` lines 203-205)."""
        return SELECTION_PARTS[setting(model_cfg, "select_on")]

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

        from compgen.batches import SHUFFLE_STREAM, Triplets, TripletSampler, derived_seed

        sampler = TripletSampler(
            data.classes[data.fit],
            data.grid.sizes,
            torch.Generator(),
            data.device,
            data.fit_weights,
            command=setting(data.model_cfg, "command"),
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

        from compgen.batches import (
            VALIDATION_STREAM,
            Triplets,
            derived_seed,
            heldout_triplets,
            position_lookup,
        )

        g = torch.Generator().manual_seed(derived_seed(data.seed, 0, VALIDATION_STREAM))
        flat = heldout_triplets(
            data.grid.sizes,
            data.classes,
            data.classes[data.val],
            int(data.val.size),
            g,
            setting(data.model_cfg, "command"),
        )
        rows = position_lookup(data.train_flat, data.grid.n)
        return Triplets(
            *(torch.as_tensor(rows[f] if i < 3 else f, device=data.device) for i, f in enumerate(flat))
        )

    def training_loss(self, model, batch, data, objective, step):
        import torch

        from compgen.batches import action_onehot

        ref, cmd, target = data.images(batch.ref), data.images(batch.cmd), data.images(batch.target)
        kind = setting(data.model_cfg, "objective")
        out = model.compose(
            ref, cmd, action_onehot(batch.d, data.n_factors), decode_inputs=kind != "target_only"
        )
        parts = objective.composition(out, ref, cmd, target, step, kind)
        return parts, torch.cat([out["z_ref"], out["z_cmd"]])

    def validation_loss(self, model, batch, data, objective):
        from compgen.batches import action_onehot
        from compgen.losses import reconstruction_per_image

        ref, cmd, target = data.images(batch.ref), data.images(batch.cmd), data.images(batch.target)
        everything = setting(data.model_cfg, "select_on") == "all"
        out = model.compose(ref, cmd, action_onehot(batch.d, data.n_factors), decode_inputs=everything)
        loss = reconstruction_per_image(out["recon_target"], target, data.recon)
        if everything:
            loss = loss + reconstruction_per_image(out["recon_ref"], ref, data.recon)
            loss = loss + reconstruction_per_image(out["recon_cmd"], cmd, data.recon)
        return loss

    def encode(self, model, images, codes):
        mu, _ = model.encode(images)
        return mu, model.decode(mu)

    def excess_scores(self, model, inputs, excess_train, excess_test):
        """`gap`, `recon_excess_train`, `recon_excess_test` and `excess_delta`: single images
        encoded and decoded by the backbone autoencoder (`excess_train`, `excess_test`), as the
        original scored composition models. Beside them, compgen's measure on the composed target,
        the same keys suffixed `_composed`: the composition loss of triplets whose target is a
        training combination (train) or a held-out one (test), each less its target's floor
        (compgen.metrics.excess); and `composition_loss_train` and `composition_loss_test`, their
        mean losses.

        Both sets are drawn by `heldout_triplets` (d, reference and command built backwards from the
        target, the command as the model was trained: `command`), `n_triplets` each. The held-out set is the one `composition_loss_test` has always
        used (a generator seeded with the analysis' seed; ref and cmd from training and held-out
        codes). The training set draws its targets, references and commands among training codes
        only, as the model was trained: with held-out references or commands the training excess
        would already hold part of the generalisation failure it is the baseline for. It has a
        stream of its own (TRAIN_TARGET_STREAM), so the held-out samples are unchanged."""
        import torch

        from compgen.batches import derived_seed, heldout_triplets
        from compgen.metrics.excess import excess_summary

        grid, n = inputs.grid, inputs.sizes["n_triplets"]
        command = setting(getattr(inputs, "model_cfg", {}), "command")
        train_classes = grid.classes(inputs.train)
        generator = torch.Generator().manual_seed(derived_seed(inputs.seed, 0, TRAIN_TARGET_STREAM))
        loss_train, floor_train = target_losses(
            model, inputs, heldout_triplets(grid.sizes, train_classes, train_classes, n, generator, command)
        )
        loss_test = floor_test = np.zeros(0)
        if inputs.test.size:  # an all-data reference has no held-out combination to compose
            generator = torch.Generator().manual_seed(inputs.seed)
            loss_test, floor_test = target_losses(
                model,
                inputs,
                heldout_triplets(grid.sizes, train_classes, grid.classes(inputs.test), n, generator, command),
            )
        mean = lambda x: float(x.mean()) if x.size else float("nan")  # noqa: E731
        return {
            "composition_loss_train": mean(loss_train),
            "composition_loss_test": mean(loss_test),
            **excess_summary(excess_train, excess_test),
            **excess_summary(loss_train - floor_train, loss_test - floor_test, suffix="_composed"),
        }


def target_losses(model, inputs, triplets) -> tuple[np.ndarray, np.ndarray]:
    """Per triplet (full-grid indices ref, cmd, target, d): the reconstruction loss of the composed
    target and the target's floor."""
    import torch

    from compgen.batches import action_onehot
    from compgen.losses import reconstruction_per_image
    from compgen.metrics.excess import reconstruction_floor

    ref, cmd, target, d = triplets
    n_factors = len(inputs.grid.sizes)
    losses, floors = [], []
    with torch.no_grad():
        for start in range(0, len(target), inputs.batch):
            sl = slice(start, start + inputs.batch)
            action = action_onehot(torch.as_tensor(d[sl]), n_factors)
            out = model.compose(
                inputs.images(np.asarray(ref[sl])), inputs.images(np.asarray(cmd[sl])), action
            )
            x = inputs.images(np.asarray(target[sl]))
            losses.append(reconstruction_per_image(out["recon_target"], x, inputs.recon).numpy())
            floors.append(reconstruction_floor(x, inputs.recon).numpy())
    return np.concatenate(losses).astype(np.float64), np.concatenate(floors)


TASK = Composition()
