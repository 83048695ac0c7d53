"""GPU check (issue 4): train the abdi fixint composition model (batch 64, bfloat16 autocast and
channels_last) on full-size dSprites `sqr2tx` through the pipeline's own training functions
(setup_run, fit), and print one JSON object: triplets per second, peak GPU memory and the share of
wall time spent outside the model's forward and backward (CUDA events). Target: >= 50,000
triplets/s on one H200 (a 100-epoch sqr2tx run, 61 M triplets, in under 20 minutes).

Two epochs of `--steps` steps: the first warms up (allocator, cuDNN autotuning), the second is timed.

    python bench/gpu_check.py [--work DIR] [--steps 600]
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
from compgen.training.run import fit, setup_run

ROOT = Path(__file__).resolve().parents[1]


def prepared(work: Path) -> tuple[Path, Path]:
    """Full-size procedural dSprites and its sqr2tx split, made once per work folder."""
    dataset, split = work / "dsprites.h5", work / "sqr2tx.npz"
    if not dataset.exists():
        print(f"gpu_check: rendering full-size dSprites into {work}", file=sys.stderr)
        prepare_dataset("dsprites", {"source": "procedural"}, dataset)
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
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit(
            f"gpu_check: no CUDA device is available to torch {torch.__version__}; this check needs a GPU"
        )
    work = args.work or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dataset, split = prepared(work)
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
            {"epochs": 2, "max_steps_per_epoch": args.steps, "device": "cuda", "amp": True}
        ),
    }
    training = setup_run(dataset, split, run, progress=False)
    setup_seconds = time.perf_counter() - started

    # The model's own forward and backward: from the composition call to the optimiser step.
    marks, compose = [], training.model.compose

    def timed_compose(*a, **k):
        start = torch.cuda.Event(enable_timing=True)
        start.record()
        marks.append([start, None])
        return compose(*a, **k)

    def backward_done(*_):
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        marks[-1][1] = end

    training.model.compose = timed_compose
    training.optimizer.register_step_pre_hook(backward_done)
    window = {}

    @training.trainer.on(Events.EPOCH_STARTED(once=2))
    def start_timing(_):
        torch.cuda.synchronize()
        marks.clear()
        torch.cuda.reset_peak_memory_stats()
        window["start"] = time.perf_counter()

    @training.trainer.on(Events.ITERATION_COMPLETED(once=2 * training.steps_per_epoch))
    def stop_timing(_):
        torch.cuda.synchronize()
        window["wall"] = time.perf_counter() - window["start"]
        window["fwd_bwd"] = sum(s.elapsed_time(e) for s, e in marks) / 1000.0
        window["peak"] = torch.cuda.max_memory_allocated(training.data.device)

    fit(training, checkpoint_dir=None)
    steps, batch = training.steps_per_epoch, run["training"]["batch_size"]
    rate = steps * batch / window["wall"]
    n_train = int(training.data.train_flat.size)
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(training.data.device),
                "torch": torch.__version__,
                "train_images": n_train,
                "steps": steps,
                "batch": batch,
                "setup_seconds": round(setup_seconds, 1),
                "triplets_per_s": round(rate),
                "peak_gpu_memory_gib": round(window["peak"] / 2**30, 2),
                "share_outside_forward_backward": round(1.0 - window["fwd_bwd"] / window["wall"], 3),
                "projected_minutes_100_epochs_sqr2tx": round(100 * n_train / rate / 60, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
