"""One training run (dataset, condition, model, seed) in three steps:

    training = setup_run(dataset_path, split_path, run)   # data on the device, model, ignite trainer
    resumed = fit(training, checkpoint_dir)                # train, resuming from a checkpoint if any
    summary = write_outputs(training, out_dir, resumed)    # model.pt, train_log.csv, run.json

`run` is a run spec as the study builds it from the validated config (every default filled in);
`train_run` does all three, as the workflow's train rule does.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ignite
import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

import compgen
from compgen.atomic import atomic_path, save_torch, write_json
from compgen.batches import images_to_tensor
from compgen.conditions import load_split
from compgen.datasets.store import check_dataset, read_provenance, read_rows
from compgen.losses import Objective
from compgen.tasks import Task, TrainingData, get_task
from compgen.training.checkpoints import (
    RunLock,
    attach_checkpointing,
    clear_checkpoints,
    file_sha256,
    fingerprint,
    resume_from_checkpoint,
)
from compgen.training.device import device_name, resolve_amp, resolve_device
from compgen.training.engine import (
    DeviceImages,
    EpochStream,
    TrainingRecord,
    attach_record,
    make_train_step,
    validation_loss,
)
from compgen.training.fit_probe import make_fit_probe
from compgen.training.gap_probe import make_gap_probe
from compgen.training.pause import attach_pause

log = logging.getLogger("compgen.training")

VALIDATION_BATCH = 256


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# What selects the best epoch (`training.validation`): a sample of the training subset that is also
# trained on (the original's choice), or a slice held out from training.
VALIDATION_KINDS = ("train_sample", "holdout")


def validation_split(
    n: int, fraction: float, seed: int, kind: str = "train_sample"
) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows), both sorted. The validation rows are a seeded `fraction` of the
    training subset's n rows, the same rows for either kind; `train_sample` fits every row (the
    validation rows too), `holdout` fits the others only (and keeps at least one)."""
    if kind not in VALIDATION_KINDS:
        raise ValueError(
            f"training.validation: unknown kind {kind!r}; allowed: {', '.join(VALIDATION_KINDS)}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    if kind == "train_sample":
        n_val = min(n, max(1, int(round(fraction * n))))
        return np.arange(n), np.sort(perm[:n_val])
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class TrainingRun:
    """Everything a run trains with; `trainer` is an ignite Engine with the run's handlers."""

    run: dict
    task: Task
    data: TrainingData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    objective: Objective | None
    trainer: Engine
    record: TrainingRecord
    epoch_batches: Callable[[int], Iterator]
    steps_per_epoch: int
    amp: bool
    dataset_path: str
    split_path: str
    data_sha256: str
    split_sha256: str
    # training.patience > 0: stops the trainer once the validation loss stops improving.
    early_stopping: EarlyStopping | None = None
    # The validation images' mean reconstruction floor: early stopping watches the loss above it.
    validation_floor: float = 0.0
    # A retrain run's base model.pt's SHA-256 (the weights of its frozen half); None for other runs.
    base_sha256: str | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def epochs(self) -> int:
        return int(self.run["training"]["epochs"])

    @property
    def converged(self) -> bool:
        """Early stopping has ended training (it may have done so before a resume)."""
        stopping = self.early_stopping
        return stopping is not None and stopping.counter >= stopping.patience

    def checkpoint_state(self) -> dict:
        """What a checkpoint holds, objective state (e.g. a discriminator) included."""
        own = self.objective.checkpoint_state() if self.objective is not None else {}
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "trainer": self.trainer,
            "record": self.record,
            # Its counter and reference loss: a resumed run stops at the epoch an unbroken one does.
            **({"early_stopping": self.early_stopping} if self.early_stopping is not None else {}),
            **own,
        }


def steps_per_epoch(n_fit: int, batch_size: int, max_steps: int | None) -> int:
    """Every fitted row once, at most `max_steps` (if set). A lone last row would be a batch of
    one, which batch norm cannot train on: it is left out (a different row each epoch, as rows are
    shuffled)."""
    steps = -(-n_fit // batch_size)
    if n_fit % batch_size == 1 and n_fit > 1:
        steps -= 1
    return min(steps, int(max_steps)) if max_steps else steps


def subset_data(
    grid,
    train_flat: np.ndarray,
    fit,
    val,
    images: Callable,
    recon: str,
    device,
    seed: int,
    rebalance=None,
    model_cfg: dict | None = None,
) -> TrainingData:
    """TrainingData of a training subset (dataset indices `train_flat`) whose images `images` gives
    by subset row; factor classes and standardised values from the grid."""
    classes = grid.classes(train_flat)
    factors = torch.as_tensor(grid.standardised(grid.values(classes)), dtype=torch.float32, device=device)
    return TrainingData(
        grid=grid,
        train_flat=train_flat,
        classes=classes,
        fit=fit,
        val=val,
        images=images,
        factors=factors,
        recon=recon,
        device=device,
        seed=seed,
        rebalance=rebalance,
        model_cfg=dict(model_cfg or {}),
    )


def load_training_data(
    dataset_path, split_path, run: dict, device: torch.device, channels_last: bool
) -> TrainingData:
    """The run's training subset on the device, split into fitted and validation rows."""
    cfg = run["training"]
    grid = check_dataset(dataset_path)
    train_flat, _ = load_split(split_path, grid)
    train_flat = np.asarray(train_flat, dtype=np.int64)
    if train_flat.size < 2:
        raise ValueError(f"{split_path}: the training subset has {train_flat.size} images; need at least 2")
    fit, val = validation_split(
        train_flat.size, float(cfg["val_fraction"]), int(run["seed"]), cfg["validation"]
    )
    images = DeviceImages(
        images_to_tensor(read_rows(dataset_path, train_flat), device), channels_last=channels_last
    )
    return subset_data(
        grid,
        train_flat,
        fit,
        val,
        images,
        run["model"]["recon"],
        device,
        int(run["seed"]),
        cfg["rebalance"],
        run["model"],
    )


def setup_run(
    dataset_path, split_path, run: dict, progress: bool | None = None, jobs_per_gpu: int = 1
) -> TrainingRun:
    """Data, model, optimiser, objective and the ignite trainer of one run, seeded.

    The intra-op thread count is the run's own (`training.threads`), not what the scheduler grants
    nor what the job asked for (resources.train.cpus): reductions over another number of threads
    give other weights, so it is part of the run's settings and fingerprint.
    """
    cfg, model_cfg, seed = run["training"], run["model"], int(run["seed"])
    torch.set_num_threads(int(cfg.get("threads", 1)))
    data_sha256, split_sha256 = file_sha256(dataset_path), file_sha256(split_path)
    base_path = run.get("base", {}).get("model_path")
    base_sha256 = file_sha256(base_path) if base_path else None
    device = resolve_device(cfg["device"], jobs_per_gpu)
    amp = resolve_amp(bool(cfg["amp"]), device)
    # channels_last on CUDA only: on the CPU it gained nothing measurable (bench/train.py).
    channels_last = amp and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once
    seed_everything(seed)
    task = get_task(model_cfg["task"])
    data = load_training_data(dataset_path, split_path, run, device, channels_last=channels_last)

    model = task.build_model(model_cfg, data.grid.image_shape, data.n_factors)
    task.initialise(model, run)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    objective = task.objective(model_cfg, int(data.fit.size))
    if objective is not None:
        objective = objective.to(device)

    batch_size = int(cfg["batch_size"])
    steps = steps_per_epoch(int(data.fit.size), batch_size, cfg["max_steps_per_epoch"])
    trainer = Engine(make_train_step(model, optimizer, task, data, objective, amp))
    record = TrainingRecord(
        fingerprint(run, split_sha256, data_sha256, amp, base_sha256), task.selection_part_for(model_cfg)
    )
    attach_record(trainer, record)
    attach_pause(trainer)

    validation_set = task.validation_set(data)
    val_batch = max(batch_size, VALIDATION_BATCH)
    probe = combine_probes(
        make_fit_probe(task, data, int(cfg["fit_probe"]), val_batch),
        make_gap_probe(task, data, dataset_path, split_path, int(cfg["fit_probe"]), val_batch),
    )
    progress = sys.stderr.isatty() if progress is None else progress

    @trainer.on(Events.EPOCH_COMPLETED)
    def finish_epoch(engine: Engine) -> None:
        row = record.finish_epoch(
            engine.state.epoch,
            model,
            lambda: validation_loss(model, task, validation_set, data, objective, amp, val_batch),
            probe,
        )
        if not progress:
            log.info(
                "%s epoch %d/%d: %s",
                run["run_id"],
                row["epoch"],
                cfg["epochs"],
                ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"),
            )

    # After finish_epoch (which logs the validation loss it reads) and before fit's checkpoint
    # handler, so each checkpoint holds the stopping state of its own epoch.
    floor = validation_floor(task, data, val_batch) if int(cfg["patience"]) > 0 else 0.0
    early_stopping = attach_early_stopping(
        trainer, record, int(cfg["patience"]), float(cfg["patience_delta"]), floor
    )

    if progress:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(trainer, output_transform=lambda out: {"loss": float(out["loss"])})
    return TrainingRun(
        run,
        task,
        data,
        model,
        optimizer,
        objective,
        trainer,
        record,
        task.epoch_batches(data, batch_size, steps),
        steps,
        amp,
        str(dataset_path),
        str(split_path),
        data_sha256,
        split_sha256,
        early_stopping,
        floor,
        base_sha256,
    )


def combine_probes(*probes: Callable | None) -> Callable | None:
    """One per-epoch probe giving the columns of all of `probes` (those not None), in order."""
    probes = tuple(p for p in probes if p is not None)
    if not probes:
        return None
    return lambda model: {k: v for probe in probes for k, v in probe(model).items()}


def validation_floor(task: Task, data: TrainingData, batch: int) -> float:
    """The mean reconstruction floor of the validation images (compgen.metrics.excess: the loss
    a perfect reconstruction still has, the pixels' own entropy under BCE); 0 for a selection loss
    that is not a reconstruction (a regressor's MSE) or has no floor (MSE). A composition model's
    validation targets are the validation rows, one triplet each, so the same mean applies; for one
    selected on all three images (`select_on: all`), the sum of its validation triplets' mean
    reference, command and target floors."""
    from compgen.metrics.excess import batched_floors

    part = task.selection_part_for(getattr(data, "model_cfg", {}))
    if part not in ("recon", "recon_target", "recon_all") or data.recon != "bce" or not data.val.size:
        return 0.0
    if part == "recon_all":  # per triplet: reference + command + target
        ref, cmd, target, _ = task.validation_set(data)
        return sum(
            float(batched_floors(data.images, r, data.recon, batch).mean()) for r in (ref, cmd, target)
        )
    rows = torch.as_tensor(data.val, device=data.device)
    return float(batched_floors(data.images, rows, data.recon, batch).mean())


def attach_early_stopping(
    trainer: Engine, record: TrainingRecord, patience: int, delta: float, floor: float = 0.0
) -> EarlyStopping | None:
    """Stop once `patience` epochs in a row have not lowered the validation *excess* (the validation
    loss less `floor`, the validation images' mean reconstruction floor) by more than a share `delta`
    of the reference, the excess of the last epoch that did (the first epoch's to begin with); None
    when patience is 0. The reference moves only on such an improvement (ignite's `cumulative`), so
    a slow creep that adds up to more than `delta` still counts. Relative to the excess, not the
    loss: a 3DShapes image's BCE is mostly its pixels' own entropy (a floor near 6,400 under an
    excess of 20-70), so a share of the loss would call a model that still learns converged."""
    if patience <= 0:
        return None
    column = f"val_{record.selection_part}"
    stopping = EarlyStopping(
        patience,
        lambda _: record.history[-1][column] - floor,
        trainer,
        threshold=delta,
        threshold_mode="rel",
        mode="min",
        cumulative=True,
    )
    # ignite's own logger writes to stderr past the run's log; say_why below tells more.
    stopping.logger = log.getChild("early_stopping")
    stopping.logger.setLevel(logging.WARNING)
    # Not EarlyStopping.attach: it resets the state when a run starts, a resumed one included.
    trainer.add_event_handler(Events.EPOCH_COMPLETED, stopping)

    @trainer.on(Events.EPOCH_COMPLETED)
    def say_why(engine: Engine) -> None:
        if stopping.counter >= patience:
            log.info(
                "converged at epoch %d: %s not lower by more than %g of %.6g for %d epochs",
                engine.state.epoch, column, delta, stopping.best_score, patience,
            )  # fmt: skip

    return stopping


def fit(training: TrainingRun, checkpoint_dir: str | os.PathLike | None) -> int:
    """Train to the configured epochs, or until early stopping ends training (training.patience);
    with a checkpoint folder, resume from and save to it (the caller holds its RunLock, as train_run
    does). Returns the epoch training resumed from (0: from scratch)."""
    resumed_epoch = 0
    if checkpoint_dir is not None:
        to_save = training.checkpoint_state()
        attach_checkpointing(
            training.trainer, to_save, checkpoint_dir, int(training.run["training"]["checkpoint_every"])
        )
        resumed_epoch = resume_from_checkpoint(
            to_save, checkpoint_dir, training.record.fingerprint, training.data.device
        )
    # A checkpoint of the final epoch, or of the epoch early stopping ended training, means
    # training finished before the outputs were written; ignite would restart a finished run from
    # scratch, so only run when epochs remain and training has not converged.
    if resumed_epoch < training.epochs and not training.converged:
        stream = EpochStream(training.trainer, training.epoch_batches, training.data.seed)
        training.trainer.run(stream, max_epochs=training.epochs, epoch_length=training.steps_per_epoch)
    return resumed_epoch


def summarise(training: TrainingRun, resumed_epoch: int) -> dict:
    """run.json: the resolved run, versions, device, sizes, model selection and timing."""
    record, data = training.record, training.data
    return {
        "run": training.run,
        "seed": data.seed,
        "versions": library_versions(),
        "device": str(data.device),
        "device_name": device_name(data.device),
        "amp": training.amp,
        "n_train": int(data.fit.size),
        "n_val": int(data.val.size),
        # Which rows selected the best epoch; "trained_on": whether they were also trained on.
        "validation": {
            "kind": training.run["training"]["validation"],
            "n": int(data.val.size),
            "fraction": float(training.run["training"]["val_fraction"]),
            "trained_on": bool(np.isin(data.val, data.fit).all()),
        },
        "rebalance": data.rebalance,
        "steps_per_epoch": training.steps_per_epoch,
        "epochs": len(record.history),
        # How training ended: early stopping ("converged") or the epoch budget ("budget").
        "stopped": "converged" if training.converged else "budget",
        # What early stopping subtracts from the validation loss (0 without patience).
        "validation_floor": training.validation_floor,
        "stopped_epoch": int(record.history[-1]["epoch"]) if record.history else 0,
        "best_epoch": record.best_epoch,
        "best_val": record.best_val,
        "selected_by": f"val_{record.selection_part}",
        # Every epoch's held-out over training excess (compgen.training.gap_probe); [] without it.
        "probe_gap": [float(row["probe_gap"]) for row in record.history if "probe_gap" in row],
        "resumed_from_epoch": resumed_epoch,
        "wall_seconds": time.perf_counter() - training.started,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "threads": torch.get_num_threads(),
        # A retrain run's base model.pt: which weights its frozen half holds.
        "base": base_info(training),
        "data": {
            "path": training.dataset_path,
            "split": training.split_path,
            "sha256": training.data_sha256,
            "split_sha256": training.split_sha256,
            **read_provenance(training.dataset_path),
        },
    }


def base_info(training: TrainingRun) -> dict | None:
    """run.json's `base`: a retrain run's base run, model.pt and its SHA-256; None for other runs."""
    if training.base_sha256 is None:
        return None
    base = training.run["base"]
    return {"run_id": base.get("run_id"), "model_path": base["model_path"], "sha256": training.base_sha256}


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ignite": ignite.__version__,
        "numpy": np.__version__,
        "compgen": compgen.__version__,
    }


def write_outputs(training: TrainingRun, out_dir: str | os.PathLike, resumed_epoch: int) -> dict:
    """out_dir/{model.pt (best and last weights), train_log.csv, run.json}; returns the summary."""
    out_dir = Path(out_dir)
    record, grid = training.record, training.data.grid
    last = {k: v.detach().cpu().clone() for k, v in training.model.state_dict().items()}
    payload = {
        "state_dict": record.best_state if record.best_state is not None else last,
        "last_state_dict": last,
        "model_config": training.run["model"],
        "image_shape": list(grid.image_shape),
        "factor_names": list(grid.names),
        "factor_sizes": list(grid.sizes),
        "best_epoch": record.best_epoch,
        "run": training.run,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_torch(payload, out_dir / "model.pt")
    with atomic_path(out_dir / "train_log.csv") as tmp:
        pd.DataFrame(record.history).to_csv(tmp, index=False)
    summary = summarise(training, resumed_epoch)
    write_json(out_dir / "run.json", summary)
    return summary


def train_run(dataset_path, split_path, run: dict, out_dir, checkpoint_dir, jobs_per_gpu: int = 1) -> dict:
    """Train one model and write its outputs; returns run.json's content. Holds the run's lock
    throughout; a finished run leaves no checkpoint behind, so running it again starts afresh."""
    with RunLock(checkpoint_dir, run["run_id"]):
        training = setup_run(dataset_path, split_path, run, jobs_per_gpu=jobs_per_gpu)
        resumed_epoch = fit(training, checkpoint_dir)
        summary = write_outputs(training, out_dir, resumed_epoch)
        clear_checkpoints(checkpoint_dir)
    return summary
