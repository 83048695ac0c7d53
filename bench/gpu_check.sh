#!/usr/bin/env bash
# GPU check (issue 4): on a CUDA machine, train the abdi fixint composition model (batch 64,
# bfloat16 autocast + channels_last) on full-size dSprites `sqr2tx` for a fixed number of steps
# with the training engine, and print triplets per second, peak GPU memory and the share of wall
# time spent outside the model's own forward and backward (CUDA events). Target: >= 50,000
# triplets/s on one H200 (a 100-epoch sqr2tx run, 61 M triplets, in under 20 minutes).
#
#   bash bench/gpu_check.sh [work dir (default: a temporary one)]
# Environment: STEPS (default 600), WARMUP (default 50), PYTHON (default .venv/bin/python if present).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
WORK="${1:-$(mktemp -d)}"
STEPS="${STEPS:-600}"
WARMUP="${WARMUP:-50}"

if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device is available to torch ($("$PYTHON" -c 'import torch; print(torch.__version__)')); this check needs a GPU" >&2
    exit 2
fi
mkdir -p "$WORK"

if [ ! -f "$WORK/dsprites.h5" ]; then
    echo "gpu_check: rendering full-size dSprites into $WORK" >&2
    "$PYTHON" -c "
import sys
from compgen.datasets.prepare import prepare_dataset
prepare_dataset('dsprites', {'source': 'procedural'}, sys.argv[1])
" "$WORK/dsprites.h5"
fi

"$PYTHON" -c "
import sys, yaml
from compgen.conditions import Condition, write_split
from compgen.datasets.store import read_grid
spec = yaml.safe_load(open('config/conditions.yaml'))['conditions']['dsprites']['sqr2tx']
condition = Condition(name='sqr2tx', family=spec['family'], test=tuple(spec['test']),
                      train=tuple(spec['train']) if 'train' in spec else None)
summary = write_split(read_grid(sys.argv[1]), condition, 'dsprites', sys.argv[2], sys.argv[3])
" "$WORK/dsprites.h5" "$WORK/sqr2tx.npz" "$WORK/sqr2tx.json"

"$PYTHON" - "$WORK/dsprites.h5" "$WORK/sqr2tx.npz" "$STEPS" "$WARMUP" <<'EOF'
import json
import sys
import time

import numpy as np
import torch
from ignite.engine import Engine, Events

from compgen.datasets.store import read_grid, read_rows
from compgen.losses import build_objective
from compgen.models import build_model
from compgen.training.batches import TripletSampler, images_to_tensor
from compgen.training.engine import (DeviceImages, EpochStream, LossSpec, TrainingRecord, attach_record,
                                     composition_epoch, make_train_step)
from compgen.training.run import validation_split

dataset, split, steps, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
device, batch, seed = torch.device("cuda"), 64, 0
torch.backends.cudnn.benchmark = True

started = time.perf_counter()
grid = read_grid(dataset)
with np.load(split) as f:
    train_flat = np.asarray(f["train"], dtype=np.int64)
images = DeviceImages(images_to_tensor(read_rows(dataset, train_flat), device), channels_last=True)
fit_np, _ = validation_split(train_flat.size, 0.1, seed)
load_seconds = time.perf_counter() - started

cfg = {"task": "composition", "op": "fixint", "encoder": "abdi", "decoder": "abdi", "latent_size": 10, "loss": "vae"}
model = build_model(cfg, grid.image_shape, len(grid.sizes)).to(device).to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
spec = LossSpec("composition", len(grid.sizes), objective=build_objective(cfg, int(fit_np.size)).to(device))
sampler = TripletSampler(grid.classes(train_flat)[fit_np], grid.sizes, torch.Generator(), device)
fit_rows = torch.as_tensor(fit_np, device=device)

# The model's own forward and backward: from the composition call to the optimiser step.
marks = []
compose = model.compose


def timed_compose(*args, **kwargs):
    start = torch.cuda.Event(enable_timing=True)
    start.record()
    marks.append([start, None])
    return compose(*args, **kwargs)


def backward_done(*_):
    end = torch.cuda.Event(enable_timing=True)
    end.record()
    marks[-1][1] = end


model.compose = timed_compose
optimizer.register_step_pre_hook(backward_done)


def run(n_steps: int, epoch_seed: int) -> float:
    trainer = Engine(make_train_step(model, optimizer, images, spec, device, amp=True))
    record = TrainingRecord("gpu_check")
    attach_record(trainer, record)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: record.sync())
    batches = composition_epoch(sampler, fit_rows, batch, n_steps, epoch_seed)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.run(EpochStream(trainer, batches, epoch_seed), max_epochs=1, epoch_length=n_steps)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


run(warmup, seed)
marks.clear()
torch.cuda.reset_peak_memory_stats()
wall = run(steps, seed + 1)
fwd_bwd = sum(start.elapsed_time(end) for start, end in marks) / 1000.0
rate = steps * batch / wall
print(json.dumps({
    "device": torch.cuda.get_device_name(device),
    "torch": torch.__version__,
    "train_images": int(train_flat.size),
    "steps": steps,
    "batch": batch,
    "load_seconds": round(load_seconds, 1),
    "triplets_per_s": round(rate),
    "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
    "share_outside_forward_backward": round(1.0 - fwd_bwd / wall, 3),
    "projected_minutes_100_epochs_sqr2tx": round(100 * train_flat.size / rate / 60, 1),  # 61 M triplets
}, indent=2))
EOF
