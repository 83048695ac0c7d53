"""The ignite pieces of a training run: step function, batch streams, record keeping, checkpoints.

Every random draw of epoch e (shuffle order, triplets, reparameterisation noise) is seeded from
(seed, e) when the epoch's first batch is drawn, so a run resumed from an epoch-end checkpoint
replays exactly what an uninterrupted run would have done and no RNG state needs saving.

The step never waits for the device: loss parts stay device tensors and are read (and checked
for NaN) every `SYNC_EVERY` steps and at each epoch's end, before its checkpoint is written.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

from compgen.losses import Objective, reconstruction_per_image
from compgen.training.batches import TripletSampler, Triplets, action_onehot, to_float

log = logging.getLogger("compgen.training")

CHECKPOINT_PREFIX = "ckpt"
CHECKPOINT_PATTERN = re.compile(rf"^{CHECKPOINT_PREFIX}_epoch(\d+)\.pt$")
SHUFFLE_STREAM, NOISE_STREAM, VALIDATION_STREAM = 0, 1, 2
SYNC_EVERY = 100
# The training part that the validation score mirrors, per task; the best model minimises it.
SELECTION_PART = {"unsupervised": "recon", "composition": "recon_target", "supervised": "mse", "gt_decoder": "recon"}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def derived_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent 63-bit seeds per (run seed, epoch, purpose)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class LossSpec:
    """What the step and validation need to know about the objective.

    `objective` serves the VAE tasks; `factors` (standardised factor values per training-subset
    row, on the device) are the targets of `supervised` and the inputs of `gt_decoder`.
    """

    def __init__(self, task: str, n_factors: int, objective: Objective | None = None, recon: str = "bce",
                 factors: torch.Tensor | None = None):
        if task not in SELECTION_PART:
            raise ValueError(f"unknown task {task!r}; allowed: {', '.join(SELECTION_PART)}")
        if task in ("unsupervised", "composition") and objective is None:
            raise ValueError(f"task {task!r} needs an objective")
        if task in ("supervised", "gt_decoder") and factors is None:
            raise ValueError(f"task {task!r} needs the standardised factors of the training rows")
        self.task, self.n_factors, self.objective, self.factors = task, n_factors, objective, factors
        self.recon = objective.recon if objective is not None else recon

    @property
    def selection_part(self) -> str:
        return SELECTION_PART[self.task]


class DeviceImages:
    """The training subset as N x C x H x W uint8 on the device; batches are float [0, 1]."""

    def __init__(self, images: torch.Tensor, channels_last: bool = False):
        self.images = images
        self.channels_last = channels_last

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        # index_select: on CPU about ten times faster than advanced indexing for whole images
        x = to_float(self.images.index_select(0, rows))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def training_loss(model, batch, images: DeviceImages, spec: LossSpec,
                  step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Loss parts of one batch (row indices, or Triplets of rows for composition) and the latent
    samples an objective trains on after the step (None for the supervised controls)."""
    if spec.task == "unsupervised":
        x = images(batch)
        logits, mu, logvar, z = model(x)
        return spec.objective.single(logits, x, mu, logvar, z, step), z
    if spec.task == "composition":
        ref, cmd, target = images(batch.ref), images(batch.cmd), images(batch.target)
        out = model.compose(ref, cmd, action_onehot(batch.d, spec.n_factors))
        return spec.objective.composition(out, ref, cmd, target, step), torch.cat([out["z_ref"], out["z_cmd"]])
    if spec.task == "supervised":
        mse = torch.nn.functional.mse_loss(model(images(batch)).float(), spec.factors[batch])
        return {"mse": mse, "loss": mse}, None
    rec = reconstruction_per_image(model(spec.factors[batch]), images(batch), spec.recon).mean()
    return {"recon": rec, "loss": rec}, None


def autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_train_step(model, optimizer, images: DeviceImages, spec: LossSpec, device: torch.device, amp: bool):
    def step(engine: Engine, batch) -> dict[str, torch.Tensor]:
        model.train()
        with autocast(device, amp):
            parts, z = training_loss(model, batch, images, spec, engine.state.iteration - 1)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        if z is not None:
            with autocast(device, amp):
                parts.update(spec.objective.update(z.detach()))
        return {k: v.detach() for k, v in parts.items()}

    return step


def unsupervised_epoch(n_rows: int, fit_rows: torch.Tensor, batch_size: int, steps: int, seed: int):
    """Epoch e: a seeded permutation of the training rows, cut into `steps` batches."""

    def batches(epoch: int) -> Iterator[torch.Tensor]:
        g = torch.Generator().manual_seed(derived_seed(seed, epoch, SHUFFLE_STREAM))
        order = torch.randperm(n_rows, generator=g).to(fit_rows.device)
        for i in range(steps):
            yield fit_rows[order[i * batch_size : (i + 1) * batch_size]]

    return batches


def composition_epoch(sampler: TripletSampler, fit_rows: torch.Tensor, batch_size: int, steps: int, seed: int):
    """Epoch e: `steps` batches of triplets from a sampler reseeded with (seed, e).

    The whole epoch is drawn in one call: per-batch calls would cost a dozen small ops per step.
    """

    def batches(epoch: int) -> Iterator[Triplets]:
        sampler.generator.manual_seed(derived_seed(seed, epoch, SHUFFLE_STREAM))
        t = sampler.sample(steps * batch_size)
        t = Triplets(fit_rows[t.ref], fit_rows[t.cmd], fit_rows[t.target], t.d)
        for i in range(steps):
            yield Triplets(*(x[i * batch_size : (i + 1) * batch_size] for x in t))

    return batches


class EpochStream:
    """Endless batches for ignite; starts after the trainer's last completed epoch (so resumes line up)."""

    def __init__(self, trainer: Engine, epoch_batches: Callable[[int], Iterator], seed: int):
        self.trainer, self.epoch_batches, self.seed = trainer, epoch_batches, seed

    def __iter__(self):
        epoch = self.trainer.state.epoch
        while True:
            epoch += 1
            torch.manual_seed(derived_seed(self.seed, epoch, NOISE_STREAM))
            yield from self.epoch_batches(epoch)


@torch.no_grad()
def validation_loss(model, rows, images: DeviceImages, spec: LossSpec, device, amp: bool, batch_size: int) -> float:
    """The selection score at evaluation (z = mu), a mean per image: reconstruction of single
    images (unsupervised), of the composed target of fixed validation triplets (a Triplets of rows;
    composition), of images rendered from their factors (gt_decoder), or the factors' MSE (supervised)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    n = len(rows.target) if isinstance(rows, Triplets) else len(rows)
    for start in range(0, n, batch_size):
        with autocast(device, amp):
            if isinstance(rows, Triplets):
                part = Triplets(*(r[start : start + batch_size] for r in rows))
                target = images(part.target)
                out = model.compose(images(part.ref), images(part.cmd), action_onehot(part.d, spec.n_factors))
                per_item = reconstruction_per_image(out["recon_target"], target, spec.recon)
            else:
                chunk = rows[start : start + batch_size]
                if spec.task == "unsupervised":
                    x = images(chunk)
                    per_item = reconstruction_per_image(model(x)[0], x, spec.recon)
                elif spec.task == "supervised":
                    per_item = (model(images(chunk)).float() - spec.factors[chunk]).pow(2).mean(1)
                else:
                    per_item = reconstruction_per_image(model(spec.factors[chunk]), images(chunk), spec.recon)
        total += per_item.sum()
    model.train(was_training)
    return float(total) / max(n, 1)


class TrainingRecord:
    """Per-epoch history and the best weights so far; checkpointed with the model.

    Steps hand in device tensors; `sync` reads the pending ones in one transfer and stops at the
    first non-finite step, naming its iteration and loss parts.
    """

    def __init__(self, fingerprint: str, selection_part: str = "recon"):
        self.fingerprint = fingerprint
        self.selection_part = selection_part
        self.history: list[dict] = []
        self.best_val = math.inf
        self.best_epoch = 0
        self.best_state: OrderedDict | None = None
        self._sums: dict[str, float] = {}
        self._pending: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        self._items = 0
        self._steps = 0
        self._started = 0.0

    def start_epoch(self) -> None:
        self._sums, self._items, self._steps, self._started = {}, 0, 0, time.perf_counter()

    def add_step(self, values: dict[str, torch.Tensor], n_items: int, iteration: int, epoch: int) -> None:
        self._pending.append((iteration, epoch, values))
        self._items += n_items
        if len(self._pending) >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if not self._pending:
            return
        keys = list(self._pending[0][2])
        rows = torch.stack([torch.stack([v[k].float() for k in keys]) for _, _, v in self._pending]).cpu().double()
        finite = torch.isfinite(rows).all(1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            iteration, epoch, _ = self._pending[bad]
            shown = ", ".join(f"{k}={v}" for k, v in zip(keys, rows[bad].tolist()))
            self._pending = []
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration} (epoch {epoch}): {shown}; the last good checkpoint is kept"
            )
        for k, total in zip(keys, rows.sum(0).tolist()):
            self._sums[k] = self._sums.get(k, 0.0) + total
        self._steps += len(self._pending)
        self._pending = []

    def finish_epoch(self, epoch: int, model: torch.nn.Module, val: Callable[[], float]) -> dict:
        self.sync()
        train_seconds = time.perf_counter() - self._started
        val_score = val()
        row = {"epoch": epoch}
        row.update({k: v / max(self._steps, 1) for k, v in self._sums.items()})
        # Named after the training part it mirrors, so curves pair them.
        row[f"val_{self.selection_part}"] = val_score
        row["images_per_s"] = self._items / train_seconds if train_seconds > 0 else float("nan")
        row["seconds"] = time.perf_counter() - self._started
        self.history.append(row)
        if val_score < self.best_val:
            self.best_val, self.best_epoch = val_score, epoch
            self.best_state = OrderedDict((k, v.detach().cpu().clone()) for k, v in model.state_dict().items())
        return row

    def state_dict(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "history": self.history,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.best_val = float(state["best_val"])
        self.best_epoch = int(state["best_epoch"])
        self.best_state = state["best_state"]


def attach_record(trainer: Engine, record: TrainingRecord) -> None:
    """Feed every step's loss parts and batch size to the record."""
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: record.start_epoch())

    @trainer.on(Events.ITERATION_COMPLETED)
    def accumulate(engine: Engine) -> None:
        batch = engine.state.batch
        record.add_step(engine.state.output, len(batch.target if isinstance(batch, Triplets) else batch),
                        engine.state.iteration, engine.state.epoch)


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    found = []
    for path in Path(checkpoint_dir).glob(f"{CHECKPOINT_PREFIX}_epoch*.pt"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def attach_checkpointing(trainer: Engine, to_save: dict, checkpoint_dir: str | Path, every: int) -> Checkpoint:
    """Full state every `every` epochs; older files (also from earlier processes) are removed."""
    handler = Checkpoint(
        to_save,
        DiskSaver(checkpoint_dir, atomic=True, create_dir=True, require_empty=False),
        filename_prefix=CHECKPOINT_PREFIX,
        filename_pattern="{filename_prefix}_epoch{global_step}.{ext}",
        global_step_transform=lambda engine, _: engine.state.epoch,
        n_saved=1,
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED(every=every), handler)

    @trainer.on(Events.EPOCH_COMPLETED(every=every))
    def remove_older(engine: Engine) -> None:
        keep = latest_checkpoint(checkpoint_dir)
        for path in Path(checkpoint_dir).glob(f"{CHECKPOINT_PREFIX}_epoch*.pt"):
            if path != keep:
                path.unlink(missing_ok=True)

    return handler


def resume_from_checkpoint(to_load: dict, checkpoint_dir: str | Path, fingerprint: str, device) -> int:
    """Load the latest checkpoint if it belongs to this run; returns the epoch it ended (0 if none)."""
    path = latest_checkpoint(checkpoint_dir)
    if path is None:
        return 0
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("record", {}).get("fingerprint") != fingerprint:
        log.warning("%s belongs to a different run configuration; starting afresh", path)
        for old in Path(checkpoint_dir).glob(f"{CHECKPOINT_PREFIX}_epoch*.pt"):
            old.unlink(missing_ok=True)
        return 0
    Checkpoint.load_objects(to_load=to_load, checkpoint=state)
    log.info("resumed from %s", path)
    return int(state["trainer"]["iteration"]) // int(state["trainer"]["epoch_length"])
