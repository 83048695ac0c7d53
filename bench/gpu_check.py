"""GPU check: train the abdi fixint composition model (batch 64, bfloat16 autocast and
channels_last) on full-size dSprites `sqr2tx` through the pipeline's own training functions
(setup_run, fit), and print one JSON object: triplets per second, peak GPU memory and the share of
wall time spent outside the model's forward and backward (CUDA events). Target: >= 50,000
triplets/s on one H200 (a 100-epoch sqr2tx run, 61 M triplets, in under 20 minutes).

Two epochs of `--steps` steps: the first warms up (allocator, cuDNN autotuning), the second is timed.

`--smoke` checks the script itself: two steps per epoch on a subsampled dSprites, on the GPU when
there is one and on the CPU otherwise (training.amp as the CPU resolves it; times from the host
clock, no GPU memory). Without a GPU and without `--smoke` it stops with an error.

    python bench/gpu_check.py [--work DIR] [--steps 600] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from ignite.engine import Events

from compgen.conditions import Condition, write_split
from compgen.config import complete_model, complete_training
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import read_grid
from compgen.training.device import device_name
from compgen.training.run import fit, setup_run

ROOT = Path(__file__).resolve().parents[1]


SMOKE_SUBSAMPLE = {"scale": 3, "orientation": 10, "posX": 4, "posY": 4}  # 3 x 2 x 4 x 8 x 8 images


def prepared(work: Path, subsample: dict | None = None) -> tuple[Path, Path]:
    """Procedural dSprites (full-size unless subsampled) and its sqr2tx split, made once per work folder."""
    dataset, split = work / "dsprites.h5", work / "sqr2tx.npz"
    if not dataset.exists():
        print(f"gpu_check: rendering dSprites into {work}", file=sys.stderr)
        prepare_dataset("dsprites", {"source": "procedural", "subsample": subsample or {}}, dataset)
    if not split.exists():
        spec = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())["conditions"]["dsprites"][
            "sqr2tx"
        ]
        condition = Condition.from_params({"name": "sqr2tx", "modifiers": {}, **spec})
        write_split(read_grid(dataset), condition, "dsprites", split, work / "sqr2tx.json")
    return dataset, split


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the dataset (default: temporary)")
    parser.add_argument(
        "--steps", type=int, default=600, help="steps per epoch (one warm-up epoch, one timed)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 steps per epoch, small data; CPU without a GPU"
    )
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        sys.exit(
            f"gpu_check: no CUDA device is available to torch {torch.__version__}; this check needs a GPU"
        )
    steps = 2 if args.smoke else args.steps
    work = args.work or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dataset, split = prepared(work, SMOKE_SUBSAMPLE if args.smoke else None)
    run = {
        "run_id": "gpu_check",
        "dataset": "dsprites",
        "condition": "sqr2tx",
        "model_name": "abdi_fixint",
        "seed": 0,
        "threads": torch.get_num_threads(),
        "model": complete_model(
            {"task": "composition", "op": "fixint", "encoder": "abdi", "decoder": "abdi"}
        ),
        "training": complete_training(
            {"epochs": 2, "max_steps_per_epoch": steps, "device": "cuda" if cuda else "cpu", "amp": True}
        ),
    }
    training = setup_run(dataset, split, run, progress=False)
    setup_seconds = time.perf_counter() - started

    # The model's own forward and backward: from the composition call to the optimiser step.
    marks, compose = [], training.model.compose

    def mark():
        if not cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds_between(start, end) -> float:
        return start.elapsed_time(end) / 1000.0 if cuda else end - start

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize()

    def timed_compose(*a, **k):
        marks.append([mark(), None])
        return compose(*a, **k)

    def backward_done(*_):
        marks[-1][1] = mark()

    training.model.compose = timed_compose
    training.optimizer.register_step_pre_hook(backward_done)
    window = {}

    @training.trainer.on(Events.EPOCH_STARTED(once=2))
    def start_timing(_):
        synchronize()
        marks.clear()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        window["start"] = time.perf_counter()

    @training.trainer.on(Events.ITERATION_COMPLETED(once=2 * training.steps_per_epoch))
    def stop_timing(_):
        synchronize()
        window["wall"] = time.perf_counter() - window["start"]
        window["fwd_bwd"] = sum(seconds_between(s, e) for s, e in marks)
        window["peak"] = torch.cuda.max_memory_allocated(training.data.device) if cuda else None

    fit(training, checkpoint_dir=None)
    steps, batch = training.steps_per_epoch, run["training"]["batch_size"]
    rate = steps * batch / window["wall"]
    n_train = int(training.data.train_flat.size)
    print(
        json.dumps(
            {
                "device": device_name(training.data.device),
                "smoke": args.smoke,
                "amp": training.amp,
                "torch": torch.__version__,
                "train_images": n_train,
                "steps": steps,
                "batch": batch,
                "setup_seconds": round(setup_seconds, 1),
                "triplets_per_s": round(rate),
                "peak_gpu_memory_gib": round(window["peak"] / 2**30, 2) if cuda else None,
                "share_outside_forward_backward": round(1.0 - window["fwd_bwd"] / window["wall"], 3),
                "projected_minutes_100_epochs_sqr2tx": round(100 * n_train / rate / 60, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
