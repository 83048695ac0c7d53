"""Training throughput benchmarks (issue 4); prints one JSON object.

(a) the ignite engine against a bare loop: one run set up by the pipeline's `setup_run` (the
    `abdi` fixint composition model on procedural dSprites `sqr2tx`, subsampled), its trainer timed
    from an epoch's start to its last step (validation excluded), against a bare loop over the same
    model, objective and Adam on batches already in memory as float tensors; repetitions interleaved;
(b) the vectorised TripletSampler (with the device-image gather the engine does) against a
    per-item sampler of the original design: a Dataset drawing one triplet with numpy and
    converting its images one by one, batched by a DataLoader;
(c) images per second per model family: every encoder with its mirrored decoder, the spatial
    broadcast decoder, and every loss, a few steps each.

For (b) and (c), data are dSprites-shaped (64x64x1) with the code tables of the full dSprites grid;
the image bank is a subsampled grid of random binary images (content does not change the cost).

    python bench/train.py [--reps 3] [--steps 3] [--threads 1] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from ignite.engine import Events
from torch.utils.data import DataLoader, Dataset

from compgen.conditions import Condition, write_split
from compgen.config import complete_model, complete_training
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import read_grid
from compgen.grid import Factor, Grid
from compgen.losses import LOSSES, build_objective
from compgen.models import DECODERS, ENCODERS
from compgen.tasks import TrainingData, build_model, get_task
from compgen.training.batches import action_onehot, flat_index, images_to_tensor, position_lookup
from compgen.training.device import resolve_device
from compgen.training.engine import DeviceImages, autocast
from compgen.training.run import fit, setup_run

ROOT = Path(__file__).resolve().parents[1]
DSPRITES_SIZES = (3, 6, 40, 32, 32)  # shape, scale, orientation, posX, posY
BANK_STEPS = (1, 1, 8, 2, 2)  # the image bank keeps every k-th value: 3 x 6 x 5 x 16 x 16 images
BATCH = 64


def training_classes(sizes) -> np.ndarray:
    """Every code except squares (shape 0) in the right half (the sqr2tx hole)."""
    classes = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    return classes[~((classes[:, 0] == 0) & (classes[:, 3] >= sizes[3] // 2))]


def image_bank(n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.random((n, 64, 64, 1)) < 0.1).astype(np.uint8) * 255


class PerItemTriplets(Dataset):
    """The original design: one triplet per __getitem__, drawn with numpy, images converted one by one."""

    def __init__(self, classes: np.ndarray, sizes, images: np.ndarray, length: int, seed: int):
        self.classes, self.sizes, self.images, self.length = classes, tuple(sizes), images, length
        self.rows = position_lookup(flat_index(classes, sizes), int(np.prod(sizes)))
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def _row(self, code: np.ndarray) -> int:
        return int(self.rows[np.ravel_multi_index(tuple(code), self.sizes)])

    def _image(self, row: int) -> torch.Tensor:
        return torch.from_numpy(self.images[row % len(self.images)]).permute(2, 0, 1).float() / 255.0

    def __getitem__(self, _):
        rng = self.rng
        while True:
            ref = self.classes[rng.integers(len(self.classes))]
            options = []
            for d, size in enumerate(self.sizes):
                for v in range(size):
                    if v != ref[d]:
                        candidate = ref.copy()
                        candidate[d] = v
                        if self._row(candidate) >= 0:
                            options.append((d, v))
            if options:
                break
        d, v = options[rng.integers(len(options))]
        target = ref.copy()
        target[d] = v
        # The command as the original's TripletDataset (src/dataset/tuples.py lines 190-194, 209-230):
        # from the target, every other factor in order moves to another value keeping the code valid,
        # uniformly, or stays where it has none; one numpy validity lookup per factor, as the original.
        cmd = target.copy()
        for f, size in enumerate(self.sizes):
            if f == d:
                continue
            candidates = np.repeat(cmd[None], size, axis=0)
            candidates[:, f] = np.arange(size)
            valid = self.rows[np.ravel_multi_index(tuple(candidates.T), self.sizes)] >= 0
            if valid.sum() > 1:
                valid[cmd[f]] = False
                cmd[f] = rng.choice(np.flatnonzero(valid))
        images = [self._image(self._row(c)) for c in (ref, cmd, target)]
        return (*images, torch.nn.functional.one_hot(torch.tensor(d), len(self.sizes)).float())


def throughput(fn, n_items: int) -> float:
    start = time.perf_counter()
    fn()
    return n_items / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sqr2tx_subsample(work: Path) -> tuple[Path, Path]:
    """Procedural dSprites on the image bank's subsampled grid, and its sqr2tx split."""
    dataset, split = work / "dsprites.h5", work / "sqr2tx.npz"
    subsample = dict(zip(("shape", "scale", "orientation", "posX", "posY"), BANK_STEPS, strict=False))
    prepare_dataset("dsprites", {"source": "procedural", "subsample": subsample}, dataset)
    spec = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())["conditions"]["dsprites"]["sqr2tx"]
    write_split(
        read_grid(dataset),
        Condition.from_params({"name": "sqr2tx", "modifiers": {}, **spec}),
        "dsprites",
        split,
        work / "sqr2tx.json",
    )
    return dataset, split


def bench_engine_vs_bare(device, reps: int, steps: int, amp: bool, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        dataset, split = sqr2tx_subsample(Path(work))
        run = {
            "run_id": "bench",
            "dataset": "dsprites",
            "condition": "sqr2tx",
            "model_name": "abdi_fixint",
            "seed": seed,
            "threads": torch.get_num_threads(),
            "model": complete_model(
                {"task": "composition", "op": "fixint", "encoder": "abdi", "decoder": "abdi"}
            ),
            "training": complete_training(
                {
                    "epochs": 1,
                    "batch_size": BATCH,
                    "max_steps_per_epoch": steps,
                    "device": str(device),
                    "amp": amp,
                }
            ),
        }
        training = setup_run(dataset, split, run, progress=False)
    model, objective, optimizer, data = training.model, training.objective, training.optimizer, training.data
    window = {}

    @training.trainer.on(Events.EPOCH_STARTED)
    def started(_):
        sync(device)
        window["start"] = time.perf_counter()

    @training.trainer.on(Events.ITERATION_COMPLETED(every=steps))
    def last_step(_):
        sync(device)
        window["seconds"] = time.perf_counter() - window["start"]

    # The bare loop's batches: drawn and converted beforehand, held in memory.
    bare_batches = [
        (
            data.images(b.ref),
            data.images(b.cmd),
            data.images(b.target),
            action_onehot(b.d, data.n_factors).to(device),
        )
        for b in training.epoch_batches(0)
    ]

    def bare() -> None:
        for i, (ref, cmd, target, action) in enumerate(bare_batches):
            with autocast(device, amp):
                out = model.compose(ref, cmd, action)
                parts = objective.composition(out, ref, cmd, target, i)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
        sync(device)

    def engine_rate() -> float:
        fit(training, checkpoint_dir=None)
        return steps * BATCH / window["seconds"]

    bare(), engine_rate()  # warm-up: allocator, kernels, lazy imports
    engine_rates, bare_rates = [], []
    for rep in range(reps):
        pair = [(engine_rates, engine_rate), (bare_rates, lambda: throughput(bare, steps * BATCH))]
        for rates, fn in pair if rep % 2 == 0 else reversed(pair):
            rates.append(fn())
    engine, bare_median = statistics.median(engine_rates), statistics.median(bare_rates)
    return {
        "ratio_engine_to_bare": engine / bare_median,
        "engine_triplets_per_s": engine,
        "bare_triplets_per_s": bare_median,
        "engine_triplets_per_s_reps": engine_rates,
        "bare_triplets_per_s_reps": bare_rates,
    }


def bench_samplers(device, reps: int, batches: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    classes = training_classes(DSPRITES_SIZES)
    bank_sizes = tuple(len(range(0, s, k)) for s, k in zip(DSPRITES_SIZES, BANK_STEPS, strict=False))
    bank = image_bank(int(np.prod(bank_sizes)), rng)
    images = DeviceImages(images_to_tensor(bank, device))
    # Row r of the training subset shows bank image r % len(bank): the full grid's images would not fit.
    rows = np.arange(len(classes))
    grid = Grid(
        tuple(Factor(f"f{k}", tuple(float(v) for v in range(s))) for k, s in enumerate(DSPRITES_SIZES)),
        (64, 64, 1),
    )
    data = TrainingData(
        grid=grid,
        train_flat=flat_index(classes, DSPRITES_SIZES),
        classes=classes,
        fit=rows,
        val=rows[:0],
        images=lambda r: images(r % len(bank)),
        factors=torch.zeros(0),
        recon="bce",
        device=device,
        seed=seed,
    )
    # As the engine draws them: one sampler call per epoch, then per batch the image gather and conversion.
    epoch_batches = get_task("composition").epoch_batches(data, BATCH, batches)
    per_item = DataLoader(
        PerItemTriplets(classes, DSPRITES_SIZES, bank, batches * BATCH, seed), batch_size=BATCH
    )
    epochs = iter(range(1, 10**9))

    def vectorised() -> None:
        for t in epoch_batches(next(epochs)):
            (
                data.images(t.ref),
                data.images(t.cmd),
                data.images(t.target),
                action_onehot(t.d, len(DSPRITES_SIZES)),
            )
        sync(device)

    def itemwise() -> None:
        for batch in per_item:
            [x.to(device) for x in batch]
        sync(device)

    vectorised(), itemwise()
    fast, slow = [], []
    for rep in range(reps):
        pair = [(fast, vectorised), (slow, itemwise)]
        for rates, fn in pair if rep % 2 == 0 else reversed(pair):
            rates.append(throughput(fn, batches * BATCH))
    fast_rate, slow_rate = statistics.median(fast), statistics.median(slow)
    return {
        "ratio_sampler_to_per_item": fast_rate / slow_rate,
        "sampler_triplets_per_s": fast_rate,
        "per_item_triplets_per_s": slow_rate,
    }


def bench_families(device, steps: int, batch: int, amp: bool, seed: int) -> dict:
    """Unsupervised training steps per second x batch, per architecture (VAE loss) and per loss (abdi)."""
    x = (
        torch.from_numpy(image_bank(batch, np.random.default_rng(seed)))
        .permute(0, 3, 1, 2)
        .float()
        .div(255)
        .to(device)
    )
    configs = {f"{name}/{name}": {"encoder": name, "decoder": name, "loss": "vae"} for name in ENCODERS}
    configs["abdi/sbd"] = {"encoder": "abdi", "decoder": "sbd", "loss": "vae"}
    configs.update(
        {
            f"abdi/abdi:{loss}": {"encoder": "abdi", "decoder": "abdi", "loss": loss}
            for loss in LOSSES
            if loss != "vae"
        }
    )
    assert set(DECODERS) <= {c["decoder"] for c in configs.values()}
    rates = {}
    for name, cfg in configs.items():
        torch.manual_seed(seed)
        model_cfg = complete_model({"task": "unsupervised", **cfg})
        model = build_model(model_cfg, (64, 64, 1), len(DSPRITES_SIZES)).to(device)
        objective = build_objective(model_cfg, n_train=len(x) * 1000).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def run(n: int, model=model, objective=objective, optimizer=optimizer) -> None:
            for i in range(n):
                with autocast(device, amp):
                    logits, mu, logvar, z = model(x)
                    parts = objective.single(logits, x, mu, logvar, z, i)
                optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                optimizer.step()
                objective.update(z.detach())
            sync(device)

        run(1)
        rates[name] = throughput(lambda: run(steps), steps * batch)
    return rates


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per comparison")
    parser.add_argument("--steps", type=int, default=4, help="training steps per repetition (engine vs bare)")
    parser.add_argument("--sampler-batches", type=int, default=40, help="batches per repetition (samplers)")
    parser.add_argument("--family-steps", type=int, default=2, help="timed steps per model family")
    parser.add_argument("--family-batch", type=int, default=16, help="batch of the per-family timing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast and channels_last (CUDA only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp = args.amp and device.type == "cuda"
    started = time.perf_counter()
    result = {
        "model": "abdi composition (fixint, vae loss)",
        "batch": BATCH,
        "device": str(device),
        "amp": amp,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        **bench_engine_vs_bare(device, args.reps, args.steps, amp, args.seed),
        **bench_samplers(device, args.reps, args.sampler_batches, args.seed),
        "images_per_s": bench_families(device, args.family_steps, args.family_batch, amp, args.seed),
        "family_batch": args.family_batch,
    }
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
