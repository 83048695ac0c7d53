"""Training throughput of a study's runs on this machine, to size the study; prints one JSON object.

Run it with the machine's cores otherwise idle (no other training, tests or benchmarks): it times
steps as they run now, and a busy core makes every rate, and every projected hour, wrong.

For each distinct training step of the config's runs (dataset, model settings, batch size, thread
count, amp, device) it sets up what `setup_run` would (the task's model, objective, Adam, the
engine's own step function), with the run's intra-op thread count and amp setting as resolved on
this machine, and times `--steps` training steps after `--warmup` ones, the epoch's batch drawing
included; then the validation pass on up to `--val-items` validation items. No dataset is
generated: images are random uint8 of the dataset's shape (content does not change the cost), the
training subset and validation rows are the run's own (its condition on the config's grid).

`steps_per_s` is per step; each run gets the wall time its configured budget implies, epochs x
(steps per epoch / steps_per_s + validation items / val_items_per_s). Not included: setup (data
loading), the per-epoch probes (training.fit_probe), checkpoints and analysis; early stopping
(training.patience) can only shorten a run.

    python bench/throughput.py config/paper_check.yaml [--steps 20] [--warmup 3] [--amp config]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from compgen.batches import batch_length, batch_slice, images_to_tensor
from compgen.conditions import split_masks
from compgen.config import validate_config
from compgen.grid import Grid
from compgen.study import Run, Study
from compgen.tasks import TrainingData, get_task
from compgen.training.device import cpu_bf16_fast, resolve_amp, resolve_device
from compgen.training.engine import DeviceImages, make_train_step, validation_loss
from compgen.training.run import VALIDATION_BATCH, steps_per_epoch, subset_data, validation_split

ROOT = Path(__file__).resolve().parents[1]
BANK = 1024  # random images held on the device; row r of the training subset shows image r % BANK


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_study(config_path: str | Path) -> Study:
    """The study as the Snakefile sees it: config/conditions.yaml and config/claims.yaml, the config on top."""
    from snakemake.utils import update_config

    config: dict = {}
    for path in (ROOT / "config/conditions.yaml", ROOT / "config/claims.yaml", Path(config_path)):
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    return Study(validate_config(config))


def synthetic_data(
    grid: Grid,
    train_flat: np.ndarray,
    fit: np.ndarray,
    val: np.ndarray,
    recon: str,
    device: torch.device,
    seed: int,
    channels_last: bool = False,
    rebalance: str | None = None,
    bank: int = BANK,
) -> TrainingData:
    """TrainingData of a training subset whose images are random uint8 of the grid's shape."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (min(bank, train_flat.size), *grid.image_shape), dtype=np.uint8)
    device_images = DeviceImages(images_to_tensor(images, device), channels_last=channels_last)
    n_bank = len(images)
    return subset_data(
        grid, train_flat, fit, val, lambda rows: device_images(rows % n_bank), recon, device, seed, rebalance
    )


class StepTimer:
    """One training step as setup_run builds it (model, objective, Adam, the engine's step), timed."""

    def __init__(self, model_cfg: dict, data: TrainingData, batch_size: int, lr: float, amp: bool, seed: int):
        self.task, self.data, self.batch_size, self.amp = get_task(model_cfg["task"]), data, batch_size, amp
        torch.manual_seed(seed)
        model = self.task.build_model(model_cfg, data.grid.image_shape, data.n_factors)
        if model_cfg["task"] == "retrain":
            # Its base run's weights are not here; freezing the kept half is what costs (no gradient).
            from compgen.tasks.retrain import HALVES

            kept = next(half for half in HALVES if half != model_cfg["retrain"])
            getattr(model, kept).requires_grad_(False)
        self.model = model.to(data.device)
        channels_last = getattr(data.images, "channels_last", False)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.objective = self.task.objective(model_cfg, int(data.fit.size))
        if self.objective is not None:
            self.objective = self.objective.to(data.device)
        self.step = make_train_step(self.model, self.optimizer, self.task, data, self.objective, amp)
        self.engine = SimpleNamespace(state=SimpleNamespace(iteration=0))
        self.epoch = 0

    def run(self, steps: int) -> tuple[float, list[float]]:
        """(seconds, losses) of `steps` steps of a fresh epoch, its batch drawing included."""
        self.epoch += 1
        batches = self.task.epoch_batches(self.data, self.batch_size, steps)
        sync(self.data.device)
        start = time.perf_counter()
        outputs = []
        for batch in batches(self.epoch):
            self.engine.state.iteration += 1
            outputs.append(self.step(self.engine, batch)["loss"])
        sync(self.data.device)
        seconds = time.perf_counter() - start
        return seconds, [float(x) for x in outputs]

    def validation_rate(self, items: int) -> float:
        """Validation items per second (the engine's validation_loss) over up to `items` items."""
        full = self.task.validation_set(self.data)
        n = min(items, batch_length(full))
        part = batch_slice(full, slice(0, n))
        batch = max(self.batch_size, VALIDATION_BATCH)
        validation_loss(self.model, self.task, part, self.data, self.objective, self.amp, batch)  # warm-up
        sync(self.data.device)
        start = time.perf_counter()
        validation_loss(self.model, self.task, part, self.data, self.objective, self.amp, batch)
        sync(self.data.device)
        return n / (time.perf_counter() - start)


def run_rows(study: Study, run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training subset, fitted rows, validation rows) of a run, as setup_run splits them."""
    grid = study.grid(run.dataset)
    train_mask, _ = split_masks(grid, study.condition(run.dataset, run.condition))
    train_flat = np.flatnonzero(train_mask).astype(np.int64)
    cfg = run.spec["training"]
    fit, val = validation_split(train_flat.size, float(cfg["val_fraction"]), run.seed, cfg["validation"])
    return train_flat, fit, val


def step_key(run: Run, amp: bool, device: torch.device) -> str:
    """What a step's cost depends on: the dataset's grid, the model, batch size, threads, amp, device."""
    cfg = run.spec["training"]
    return json.dumps(
        [
            run.dataset,
            run.spec["model"],
            cfg["batch_size"],
            run.spec["training"]["threads"],
            amp,
            str(device),
        ],
        sort_keys=True,
    )


def measure(config_path, steps: int, warmup: int, val_items: int, amp_mode: str, seed: int) -> dict:
    study = load_study(config_path)
    groups: dict[str, dict] = {}
    runs: dict[str, dict] = {}
    for run in study.runs:
        cfg = run.spec["training"]
        device = resolve_device(cfg["device"])
        requested = {"config": bool(cfg["amp"]), "on": True, "off": False}[amp_mode]
        amp = resolve_amp(requested, device)
        key = step_key(run, amp, device)
        train_flat, fit, val = run_rows(study, run)
        if key not in groups:
            name = f"{run.dataset}/{run.model}"
            taken = {g["step"] for g in groups.values()}
            name = (
                next(f"{name}#{k}" for k in range(1, len(taken) + 2) if f"{name}#{k}" not in taken)
                if name in taken
                else name
            )
            threads = int(run.spec["training"]["threads"])
            torch.set_num_threads(threads)
            data = synthetic_data(
                study.grid(run.dataset),
                train_flat,
                fit,
                val,
                run.spec["model"]["recon"],
                device,
                seed,
                channels_last=amp and device.type == "cuda",  # as setup_run
                rebalance=cfg["rebalance"],
            )
            batch = int(cfg["batch_size"])
            timer = StepTimer(run.spec["model"], data, batch, float(cfg["lr"]), amp, seed)
            timer.run(warmup)
            seconds, _ = timer.run(steps)
            groups[key] = {
                "step": name,
                "models": [],
                "steps_per_s": steps / seconds,
                "items_per_s": steps * batch / seconds,
                "val_items_per_s": timer.validation_rate(val_items) if val.size else None,
                "batch_size": batch,
                "threads": threads,
                "amp": amp,
                "device": str(device),
            }
        group = groups[key]
        if run.model not in group["models"]:
            group["models"].append(run.model)
        n_steps = steps_per_epoch(fit.size, int(cfg["batch_size"]), cfg["max_steps_per_epoch"])
        epochs = int(cfg["epochs"])
        train_s = epochs * n_steps / group["steps_per_s"]
        val_s = epochs * val.size / group["val_items_per_s"] if val.size else 0.0
        runs[run.run_id] = {
            "step": group["step"],
            "epochs": epochs,
            "steps_per_epoch": n_steps,
            "n_val": int(val.size),
            "threads": group["threads"],
            "train_seconds": train_s,
            "validation_seconds": val_s,
            "seconds": train_s + val_s,
        }
    total = sum(r["seconds"] for r in runs.values())
    return {
        "config": str(config_path),
        "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu_bf16_fast": cpu_bf16_fast()[0],
        "amp_mode": amp_mode,
        "steps": steps,
        "warmup": warmup,
        "training_steps": {g["step"]: {k: v for k, v in g.items() if k != "step"} for g in groups.values()},
        "runs": runs,
        "total_seconds": total,
        "total_core_seconds": sum(r["seconds"] * r["threads"] for r in runs.values()),
        "median_run_seconds": statistics.median(r["seconds"] for r in runs.values()) if runs else 0.0,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a study config, e.g. config/paper_check.yaml")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per distinct step")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, kernels)")
    parser.add_argument("--val-items", type=int, default=512, help="validation items timed per step")
    parser.add_argument(
        "--amp",
        choices=("config", "on", "off"),
        default="config",
        help="training.amp as the config sets it, or on/off for every run (resolved for this machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        json.dumps(
            measure(args.config, args.steps, args.warmup, args.val_items, args.amp, args.seed), indent=2
        )
    )


if __name__ == "__main__":
    main()
