"""One training run (dataset, condition, model, seed): data on the device, ignite trainer, outputs."""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import ignite
import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine, Events

import compgen
from compgen.atomic import atomic_path, write_json
from compgen.conditions import load_split
from compgen.datasets.store import check_dataset, read_rows
from compgen.losses import build_objective, objective_config
from compgen.models import VAE_TASKS, build_model
from compgen.training.batches import TripletSampler, Triplets, heldout_triplets, images_to_tensor, position_lookup
from compgen.training.engine import (
    VALIDATION_STREAM,
    DeviceImages,
    EpochStream,
    LossSpec,
    TrainingRecord,
    attach_checkpointing,
    attach_record,
    composition_epoch,
    derived_seed,
    make_train_step,
    resume_from_checkpoint,
    unsupervised_epoch,
    validation_loss,
)

log = logging.getLogger("compgen.training")

TRAINING_DEFAULTS = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 1e-4,
    "val_fraction": 0.1,
    "max_steps_per_epoch": None,
    "checkpoint_every": 1,
    "device": "auto",
    "amp": False,
}
MODEL_DEFAULTS = {"task": "unsupervised", "latent_size": 10, "loss": "vae"}
VALIDATION_BATCH = 256


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return claim_gpu() if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training.device is {name!r} but no CUDA device is available")
    return claim_gpu() if name == "cuda" else torch.device(name)


GPU_LOCK_DIR = Path(tempfile.gettempdir())
_gpu_claims: list[int] = []  # open lock files; the kernel releases them when the process ends


def claim_gpu() -> torch.device:
    """The first visible GPU that no other process on this machine has claimed.

    Snakemake caps concurrent GPU jobs (--resources gpu=N) but does not say which GPU a job
    gets, so each job takes an exclusive lock per GPU (named by its UUID, which is the same
    under any CUDA_VISIBLE_DEVICES). Under SLURM a job sees only the GPU it was given.
    """
    for index in range(torch.cuda.device_count()):
        path = GPU_LOCK_DIR / f"compgen-gpu-{torch.cuda.get_device_properties(index).uuid}.lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _gpu_claims.append(fd)
        return torch.device("cuda", index)
    log.warning("every visible GPU is claimed by another job; sharing cuda:0")
    return torch.device("cuda", 0)


def resolve_run(run: dict) -> dict:
    """The run with defaults filled in; unknown training keys are refused (likely typos)."""
    training = dict(run.get("training", {}))
    unknown = set(training) - set(TRAINING_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training keys {sorted(unknown)}; allowed: {', '.join(TRAINING_DEFAULTS)}")
    resolved = dict(run)
    resolved["training"] = {**TRAINING_DEFAULTS, **training}
    model = {**MODEL_DEFAULTS, **run["model"]}
    # The supervised controls have no VAE objective: only the reconstruction kind applies.
    resolved["model"] = objective_config(model) if model["task"] in VAE_TASKS else {"recon": "bce", **model}
    return resolved


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows), both sorted: a seeded `fraction` of the training subset."""
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def train_run(dataset_path, split_path, run: dict, out_dir, checkpoint_dir) -> dict:
    """Train one model; writes out_dir/{model.pt, train_log.csv, run.json} and returns the summary."""
    wall_start = time.perf_counter()
    fingerprint = json.dumps(run, sort_keys=True)
    run = resolve_run(run)
    cfg, model_cfg, seed = run["training"], run["model"], int(run["seed"])
    device = resolve_device(cfg["device"])
    amp = bool(cfg["amp"]) and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest kernels once
    seed_everything(seed)

    grid = check_dataset(dataset_path)
    train_flat, _ = load_split(split_path, grid)
    train_flat = np.asarray(train_flat, dtype=np.int64)
    if not 0 < float(cfg["val_fraction"]) < 1:
        raise ValueError(f"training.val_fraction must be in (0, 1), got {cfg['val_fraction']}")
    if train_flat.size < 2:
        raise ValueError(f"{split_path}: the training subset has {train_flat.size} images; need at least 2")
    classes = grid.classes(train_flat)
    images = DeviceImages(images_to_tensor(read_rows(dataset_path, train_flat), device), channels_last=amp)
    fit_np, val_np = validation_split(train_flat.size, float(cfg["val_fraction"]), seed)
    fit_rows = torch.as_tensor(fit_np, device=device)

    n_factors = len(grid.sizes)
    model = build_model(model_cfg, grid.image_shape, n_factors).to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]))
    task = model_cfg["task"]
    if task in VAE_TASKS:
        objective = build_objective(model_cfg, n_train=int(fit_np.size)).to(device)
        spec = LossSpec(task, n_factors, objective=objective)
    else:
        objective = None
        standardised = grid.standardised(grid.values(classes))
        spec = LossSpec(task, n_factors, recon=model_cfg["recon"],
                        factors=torch.as_tensor(standardised, dtype=torch.float32, device=device))

    batch_size = int(cfg["batch_size"])
    steps = math.ceil(fit_np.size / batch_size)
    if cfg["max_steps_per_epoch"]:
        steps = min(steps, int(cfg["max_steps_per_epoch"]))
    if task != "composition":
        epoch_batches = unsupervised_epoch(fit_np.size, fit_rows, batch_size, steps, seed)
        val_rows = torch.as_tensor(val_np, device=device)
    else:
        sampler = TripletSampler(classes[fit_np], grid.sizes, torch.Generator(), device)
        epoch_batches = composition_epoch(sampler, fit_rows, batch_size, steps, seed)
        val_rows = validation_triplets(grid, train_flat, classes, fit_np, val_np, seed, device)

    trainer = Engine(make_train_step(model, optimizer, images, spec, device, amp))
    record = TrainingRecord(fingerprint, spec.selection_part)
    val_batch = max(batch_size, VALIDATION_BATCH)
    progress = sys.stderr.isatty()

    attach_record(trainer, record)

    @trainer.on(Events.EPOCH_COMPLETED)
    def finish_epoch(engine: Engine) -> None:
        row = record.finish_epoch(
            engine.state.epoch, model,
            lambda: validation_loss(model, val_rows, images, spec, device, amp, val_batch),
        )
        if not progress:
            log.info("%s epoch %d/%d: %s", run.get("run_id", ""), row["epoch"], cfg["epochs"],
                     ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))

    to_save = {"model": model, "optimizer": optimizer, "trainer": trainer, "record": record,
               **(objective.checkpoint_state() if objective is not None else {})}
    attach_checkpointing(trainer, to_save, checkpoint_dir, int(cfg["checkpoint_every"]))
    if progress:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(trainer, output_transform=lambda out: {"loss": float(out["loss"])})

    resumed_epoch = resume_from_checkpoint(to_save, checkpoint_dir, fingerprint, device)
    # A checkpoint of the final epoch means training finished before the outputs were written;
    # ignite would restart a finished run from scratch, so only run when epochs remain.
    if resumed_epoch < int(cfg["epochs"]):
        trainer.run(EpochStream(trainer, epoch_batches, seed), max_epochs=int(cfg["epochs"]), epoch_length=steps)

    summary = {
        "run": run,
        "seed": seed,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ignite": ignite.__version__,
            "numpy": np.__version__,
            "compgen": compgen.__version__,
        },
        "device": str(device),
        "device_name": device_name(device),
        "amp": amp,
        "n_train": int(fit_np.size),
        "n_val": int(val_np.size),
        "steps_per_epoch": steps,
        "epochs": len(record.history),
        "best_epoch": record.best_epoch,
        "best_val": record.best_val,
        "selected_by": f"val_{spec.selection_part}",
        "resumed_from_epoch": resumed_epoch,
        "wall_seconds": time.perf_counter() - wall_start,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "dataset_path": str(dataset_path),
        "split_path": str(split_path),
    }
    write_outputs(Path(out_dir), model, record, grid, model_cfg, run, summary)
    return summary


def validation_triplets(grid, train_flat, classes, fit_np, val_np, seed, device) -> Triplets:
    """Fixed triplets whose target is a validation image; ref and cmd come from the whole training subset."""
    g = torch.Generator().manual_seed(derived_seed(seed, 0, VALIDATION_STREAM))
    flat = heldout_triplets(grid.sizes, classes[fit_np], classes[val_np], int(val_np.size), g)
    rows = position_lookup(train_flat, grid.n)
    return Triplets(*(torch.as_tensor(rows[f] if i < 3 else f, device=device) for i, f in enumerate(flat)))


def write_outputs(out_dir: Path, model, record: TrainingRecord, grid, model_cfg, run, summary) -> None:
    last = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "state_dict": record.best_state if record.best_state is not None else last,
        "last_state_dict": last,
        "model_config": model_cfg,
        "image_shape": list(grid.image_shape),
        "factor_names": list(grid.names),
        "factor_sizes": list(grid.sizes),
        "best_epoch": record.best_epoch,
        "run": run,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(payload, tmp)
    with atomic_path(out_dir / "train_log.csv") as tmp:
        pd.DataFrame(record.history).to_csv(tmp, index=False)
    write_json(out_dir / "run.json", summary)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train one compgen model.")
    parser.add_argument("--dataset", required=True, help="prepared HDF5 dataset")
    parser.add_argument("--split", required=True, help="condition .npz with 'train' and 'test'")
    parser.add_argument("--run", required=True, help="JSON file with the run dict")
    parser.add_argument("--out", required=True, help="output folder (model.pt, train_log.csv, run.json)")
    parser.add_argument("--checkpoints", required=True, help="checkpoint folder, kept between attempts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train_run(args.dataset, args.split, json.loads(Path(args.run).read_text()), args.out, args.checkpoints)


if __name__ == "__main__":
    main()
