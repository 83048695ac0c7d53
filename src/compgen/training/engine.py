"""The ignite pieces of a training run: step function, epoch stream, record keeping (checkpoints:
compgen.training.checkpoints).

Everything task-specific (model, objective, batches, loss) comes from the run's Task.

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
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import torch
from ignite.engine import Engine, Events

from compgen.batches import NOISE_STREAM, batch_length, batch_slice, derived_seed, to_float
from compgen.losses import Objective
from compgen.tasks import Task, TrainingData

log = logging.getLogger("compgen.training")

SYNC_EVERY = 100


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class DeviceImages:
    """The training subset as N x C x H x W uint8 on the device; batches are float [0, 1]."""

    def __init__(self, images: torch.Tensor, channels_last: bool = False):
        self.images = images
        self.channels_last = channels_last

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        # index_select: on CPU about ten times faster than advanced indexing for whole images
        x = to_float(self.images.index_select(0, rows))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def autocast(device: torch.device, amp: bool, evaluation: bool = False):
    """bfloat16 autocast where `amp` (compgen.training.device.resolve_amp) is on. On a CPU only
    training steps use it: validation (`evaluation`) stays float32, so the scores that select the
    best epoch are computed as with amp off. CUDA autocasts both, as it always has."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if amp and device.type == "cpu" and not evaluation:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_train_step(model, optimizer, task: Task, data: TrainingData, objective: Objective | None, amp: bool):
    def step(engine: Engine, batch) -> dict[str, torch.Tensor]:
        model.train()
        with autocast(data.device, amp):
            parts, z = task.training_loss(model, batch, data, objective, engine.state.iteration - 1)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        if z is not None and objective is not None:
            with autocast(data.device, amp):
                parts.update(objective.update(z.detach()))
        return {k: v.detach() for k, v in parts.items()}

    return step


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
def validation_loss(
    model,
    task: Task,
    validation_set,
    data: TrainingData,
    objective: Objective | None,
    amp: bool,
    batch_size: int,
) -> float:
    """The task's selection score over the validation set at evaluation (z = mu), a mean per item."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    n = batch_length(validation_set)
    for start in range(0, n, batch_size):
        with autocast(data.device, amp, evaluation=True):
            part = batch_slice(validation_set, slice(start, start + batch_size))
            total += task.validation_loss(model, part, data, objective).sum()
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
        rows = (
            torch.stack([torch.stack([v[k].float() for k in keys]) for _, _, v in self._pending])
            .cpu()
            .double()
        )
        finite = torch.isfinite(rows).all(1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            iteration, epoch, _ = self._pending[bad]
            shown = ", ".join(f"{k}={v}" for k, v in zip(keys, rows[bad].tolist(), strict=False))
            self._pending = []
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration} (epoch {epoch}): {shown}; the last good checkpoint is kept"
            )
        for k, total in zip(keys, rows.sum(0).tolist(), strict=False):
            self._sums[k] = self._sums.get(k, 0.0) + total
        self._steps += len(self._pending)
        self._pending = []

    def finish_epoch(
        self,
        epoch: int,
        model: torch.nn.Module,
        val: Callable[[], float],
        probe: Callable[[torch.nn.Module], dict] | None = None,
    ) -> dict:
        """Close the epoch's row: mean training parts, the validation score, the probes'
        columns (compgen.training.fit_probe and gap_probe) when there are any, throughput and time."""
        self.sync()
        train_seconds = time.perf_counter() - self._started
        val_score = val()
        row = {"epoch": epoch}
        row.update({k: v / max(self._steps, 1) for k, v in self._sums.items()})
        # Named after the training part it mirrors, so curves pair them.
        row[f"val_{self.selection_part}"] = val_score
        if probe is not None:
            row.update(probe(model))
        row["images_per_s"] = self._items / train_seconds if train_seconds > 0 else float("nan")
        row["seconds"] = time.perf_counter() - self._started
        self.history.append(row)
        if val_score < self.best_val:
            self.best_val, self.best_epoch = val_score, epoch
            self.best_state = OrderedDict(
                (k, v.detach().cpu().clone()) for k, v in model.state_dict().items()
            )
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
        record.add_step(
            engine.state.output, batch_length(engine.state.batch), engine.state.iteration, engine.state.epoch
        )
