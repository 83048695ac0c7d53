"""Training throughput benchmarks; prints one JSON object.

(a) the ignite engine against a bare loop: one run set up by the pipeline's `setup_run` (the
    `abdi` fixint composition model on procedural dSprites `sqr2tx`, subsampled), its trainer timed
    from an epoch's start to its last step (validation excluded), against a bare loop over the same
    model, objective and Adam on batches already in memory as float tensors; repetitions interleaved;
(b) the vectorised TripletSampler (with the device-image gather the engine does) against a
    per-item sampler of the original design: a Dataset drawing one triplet with numpy and
    converting its images one by one, batched by a DataLoader;
(c) images per second per model family, a few unsupervised steps each, from the registries: every
    encoder with the decoder of its name (abdi's where there is none), every other decoder under the
    abdi encoder, every other loss on abdi/abdi;
(d) CPU bfloat16 autocast against float32, always on the CPU: the engine's training step (as
    `bench/throughput.py` builds it) of the abdi fixint composition model on dSprites-shaped
    (64x64x1) and 3DShapes-shaped (64x64x3) images, of the montero fixint composition model
    (MPI3D-shaped, 64x64x3) and of the kim regressor (3DShapes-shaped); each also with channels_last.
    Every variant starts from the same weights and batches, at the same thread count, repetitions
    interleaved; reported as ratios of rates measured side by side;
(e) a numerical check of bf16 autocast: the run of (a) through setup_run for `--check-steps`
    steps, under float32 and under `training.amp`, with seeds 0 and 1; per-step training losses
    averaged over windows, and the bf16-vs-fp32 difference of those curves (same seed) set against
    the fp32 seed-to-seed difference (`within_noise`: not larger, whole curves and second halves).

For (b), data are dSprites-shaped (64x64x1) with the code tables of the full dSprites grid; the
image bank is a subsampled grid of random binary images (content does not change the cost). (c) and
(d) train on random uint8 images of the dataset's shape (bench/throughput.py's `synthetic_data`).
Run it with the cores otherwise idle; `--smoke` runs every part with a step or two at tiny sizes.

    python bench/train.py [--reps 3] [--steps 4] [--threads 1] [--device auto] [--smoke]
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
from throughput import StepTimer, synthetic_data
from torch.utils.data import DataLoader, Dataset

from compgen.batches import action_onehot, flat_index, images_to_tensor, position_lookup
from compgen.conditions import Condition, write_split
from compgen.config import complete_model, complete_training
from compgen.datasets import dataset_grid
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import read_grid
from compgen.grid import Factor, Grid
from compgen.losses import LOSSES
from compgen.models import DECODERS, ENCODERS
from compgen.tasks import TrainingData, get_task
from compgen.training.device import cpu_bf16_fast, resolve_amp, resolve_device
from compgen.training.engine import DeviceImages, autocast
from compgen.training.run import fit, setup_run

ROOT = Path(__file__).resolve().parents[1]
DSPRITES_SIZES = (3, 6, 40, 32, 32)  # shape, scale, orientation, posX, posY
BANK_STEPS = (1, 1, 8, 2, 2)  # the image bank keeps every k-th value: 3 x 6 x 5 x 16 x 16 images
SMOKE_STEPS = (1, 3, 10, 4, 4)  # --smoke: 3 x 2 x 4 x 8 x 8 images
BATCH = 64
# (d): the study's CPU models, each on images of the dataset it trains on.
AMP_CASES = {
    "abdi_fixint_64x64x1": ("dsprites", {"task": "composition", "op": "fixint"}),
    "abdi_fixint_64x64x3": ("shapes3d", {"task": "composition", "op": "fixint"}),
    "montero_fixint_64x64x3": (
        "mpi3d",
        {"task": "composition", "op": "fixint", "encoder": "montero", "decoder": "montero"},
    ),
    "kim_regressor_64x64x3": ("shapes3d", {"task": "supervised", "encoder": "kim"}),
}
AMP_VARIANTS = {  # name: (bf16 autocast, channels_last)
    "fp32": (False, False),
    "bf16": (True, False),
    "fp32_channels_last": (False, True),
    "bf16_channels_last": (True, True),
}


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


def sqr2tx_subsample(work: Path, steps=BANK_STEPS) -> tuple[Path, Path]:
    """Procedural dSprites on a subsampled grid (every k-th value), and its sqr2tx split."""
    dataset, split = work / "dsprites.h5", work / "sqr2tx.npz"
    subsample = dict(zip(("shape", "scale", "orientation", "posX", "posY"), steps, strict=True))
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


def abdi_run(seed: int, device, amp: bool, batch: int, **training) -> dict:
    """A run spec of the abdi fixint composition model on dSprites sqr2tx, as the study builds one."""
    return {
        "run_id": "bench",
        "dataset": "dsprites",
        "condition": "sqr2tx",
        "model_name": "abdi_fixint",
        "seed": seed,
        "threads": torch.get_num_threads(),
        "model": complete_model(
            {"task": "composition", "op": "fixint", "encoder": "abdi", "decoder": "abdi"}
        ),
        "training": complete_training({"batch_size": batch, "device": str(device), "amp": amp, **training}),
    }


def bench_engine_vs_bare(
    dataset, split, device, reps: int, steps: int, batch: int, amp: bool, seed: int
) -> dict:
    # Validation is not timed: a small one.
    run = abdi_run(seed, device, amp, batch, epochs=1, max_steps_per_epoch=steps, val_fraction=0.02)
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
        return steps * batch / window["seconds"]

    bare(), engine_rate()  # warm-up: allocator, kernels, lazy imports
    engine_rates, bare_rates = [], []
    for rep in range(reps):
        pair = [(engine_rates, engine_rate), (bare_rates, lambda: throughput(bare, steps * batch))]
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


def family_configs() -> dict[str, dict]:
    """Model settings per family, from the registries (see (c) of the module docstring)."""
    configs = {}
    for enc in ENCODERS:
        dec = enc if enc in DECODERS else "abdi"
        configs[f"{enc}/{dec}"] = {"encoder": enc, "decoder": dec, "loss": "vae"}
    paired = {c["decoder"] for c in configs.values()}
    configs.update(
        {
            f"abdi/{dec}": {"encoder": "abdi", "decoder": dec, "loss": "vae"}
            for dec in DECODERS
            if dec not in paired
        }
    )
    configs.update(
        {
            f"abdi/abdi:{loss}": {"encoder": "abdi", "decoder": "abdi", "loss": loss}
            for loss in LOSSES
            if loss != "vae"
        }
    )
    return configs


def small_grid(name: str) -> Grid:
    """A dataset's grid with at most 8 values per factor: its image shape, small code tables."""
    grid = dataset_grid(name)
    return grid.subsample({f.name: -(-len(f.values) // 8) for f in grid.factors})


def grid_data(grid: Grid, device, seed: int, channels_last: bool = False) -> TrainingData:
    """Every row of `grid` fitted, none validated; random images (bench/throughput.py)."""
    rows = np.arange(grid.n)
    return synthetic_data(grid, rows, rows, rows[:0], "bce", device, seed, channels_last=channels_last)


def bench_families(device, steps: int, batch: int, amp: bool, seed: int) -> dict:
    """Unsupervised training steps per second x batch, per architecture (VAE loss) and per loss (abdi)."""
    data = grid_data(
        dataset_grid(
            "dsprites", dict(zip(("shape", "scale", "orientation", "posX", "posY"), BANK_STEPS, strict=True))
        ),
        device,
        seed,
    )
    rates = {}
    for name, cfg in family_configs().items():
        timer = StepTimer(complete_model({"task": "unsupervised", **cfg}), data, batch, 1e-4, amp, seed)
        timer.run(1)
        seconds, _ = timer.run(steps)
        rates[name] = steps * batch / seconds
    return rates


def bench_cpu_bf16(steps: int, reps: int, batch: int, seed: int) -> dict:
    """(d): items per second of each variant and the ratios, medians over interleaved repetitions."""
    cpu = torch.device("cpu")
    cases = {}
    for case, (dataset, model) in AMP_CASES.items():
        grid = small_grid(dataset)
        model_cfg = complete_model(model)
        timers = {}
        for variant, (amp, channels_last) in AMP_VARIANTS.items():
            data = grid_data(grid, cpu, seed, channels_last)
            timers[variant] = StepTimer(model_cfg, data, batch, 1e-4, amp, seed)
            timers[variant].run(1)  # warm-up
        rates = {v: [] for v in timers}
        for rep in range(reps):
            order = list(timers) if rep % 2 == 0 else list(reversed(timers))
            for variant in order:
                seconds, _ = timers[variant].run(steps)
                rates[variant].append(steps * batch / seconds)
        ratio = lambda a, b, r=rates: statistics.median(x / y for x, y in zip(r[a], r[b], strict=True))  # noqa: E731
        cases[case] = {
            "items_per_s": {v: statistics.median(r) for v, r in rates.items()},
            "ratio_bf16_to_fp32": ratio("bf16", "fp32"),
            "ratio_bf16_to_fp32_reps": [x / y for x, y in zip(rates["bf16"], rates["fp32"], strict=True)],
            "ratio_channels_last_fp32": ratio("fp32_channels_last", "fp32"),
            "ratio_channels_last_bf16": ratio("bf16_channels_last", "bf16"),
        }
    return {
        "cpu_bf16_fast": cpu_bf16_fast()[0],
        "cpu_bf16_why": cpu_bf16_fast()[1],
        "threads": torch.get_num_threads(),
        "batch": batch,
        "steps": steps,
        "reps": reps,
        "cases": cases,
    }


def windows(losses: list[float], width: int) -> np.ndarray:
    n = len(losses) // width
    return np.asarray(losses[: n * width]).reshape(n, width).mean(1)


def curve_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two windowed loss curves, relative to the second's mean."""
    return float(np.abs(a - b).mean() / np.abs(b).mean())


def bench_numerical_check(dataset, split, steps: int, width: int, batch: int) -> dict:
    """(e): per-step training losses of seeded CPU runs under float32 and under amp, seeds 0 and 1.
    Curves are compared whole and over their second half (`late`, where initialisation no longer
    dominates); the validation loss after the last step, likewise."""
    runs = {f"{kind}_seed{seed}": (seed, kind == "amp") for seed in (0, 1) for kind in ("fp32", "amp")}
    out, curves, vals = {}, {}, {}
    for name, (seed, amp) in runs.items():
        run = abdi_run(
            seed, "cpu", amp, batch, epochs=1, max_steps_per_epoch=steps, lr=5e-4, val_fraction=0.02
        )
        training = setup_run(dataset, split, run, progress=False)
        losses: list[float] = []
        training.trainer.add_event_handler(
            Events.ITERATION_COMPLETED,
            lambda engine, losses=losses: losses.append(float(engine.state.output["loss"])),
        )
        fit(training, checkpoint_dir=None)
        curves[name], vals[name] = windows(losses, width), training.record.best_val
        out[name] = {"amp_used": training.amp, "loss_windows": curves[name].tolist(), "val_loss": vals[name]}
    result = {"steps": steps, "window": width, "batch": batch, "runs": out}
    for part in ("all", "late"):
        cut = slice(None) if part == "all" else slice(len(curves["fp32_seed0"]) // 2, None)
        amp_vs_fp32 = statistics.mean(
            curve_difference(curves[f"amp_seed{s}"][cut], curves[f"fp32_seed{s}"][cut]) for s in (0, 1)
        )
        noise = curve_difference(curves["fp32_seed1"][cut], curves["fp32_seed0"][cut])
        result[part] = {
            "amp_vs_fp32": amp_vs_fp32,
            "fp32_seed_to_seed": noise,
            "ratio_to_seed_noise": amp_vs_fp32 / noise if noise > 0 else None,
        }
    result["val_amp_vs_fp32"] = statistics.mean(
        abs(vals[f"amp_seed{s}"] - vals[f"fp32_seed{s}"]) / vals[f"fp32_seed{s}"] for s in (0, 1)
    )
    result["val_fp32_seed_to_seed"] = abs(vals["fp32_seed1"] - vals["fp32_seed0"]) / vals["fp32_seed0"]
    result["within_noise"] = all(
        result[part]["amp_vs_fp32"] <= result[part]["fp32_seed_to_seed"] for part in ("all", "late")
    )
    return result


SMOKE = {  # --smoke: every part runs, a step or two at tiny sizes
    "reps": 1,
    "steps": 2,
    "batch": 8,
    "sampler_batches": 2,
    "family_steps": 1,
    "family_batch": 4,
    "amp_steps": 1,
    "amp_reps": 1,
    "amp_batch": 4,
    "check_steps": 4,
    "check_window": 2,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="abcde", help="which parts to run (letters of the docstring)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per comparison")
    parser.add_argument("--steps", type=int, default=4, help="training steps per repetition (engine vs bare)")
    parser.add_argument("--batch", type=int, default=BATCH, help="batch size of (a) and (e)")
    parser.add_argument("--sampler-batches", type=int, default=40, help="batches per repetition (samplers)")
    parser.add_argument("--family-steps", type=int, default=2, help="timed steps per model family")
    parser.add_argument("--family-batch", type=int, default=16, help="batch of the per-family timing")
    parser.add_argument("--amp-steps", type=int, default=4, help="(d): steps per variant and repetition")
    parser.add_argument("--amp-reps", type=int, default=3, help="(d): interleaved repetitions")
    parser.add_argument("--amp-batch", type=int, default=BATCH, help="(d): batch size")
    parser.add_argument("--check-steps", type=int, default=300, help="(e): training steps per run")
    parser.add_argument("--check-window", type=int, default=25, help="(e): steps averaged per curve point")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--device", default="auto", help="(a)-(c); (d) and (e) run on the CPU")
    parser.add_argument(
        "--amp", action="store_true", help="(a)-(c) under training.amp, as this device resolves it"
    )
    parser.add_argument("--smoke", action="store_true", help="a step or two of every part, tiny sizes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    started = time.perf_counter()
    result = {
        "model": "abdi composition (fixint, vae loss)",
        "batch": args.batch,
        "device": str(device),
        "amp": amp,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory() as work:
        dataset, split = sqr2tx_subsample(Path(work), SMOKE_STEPS if args.smoke else BANK_STEPS)
        if "a" in args.parts:
            result.update(
                bench_engine_vs_bare(
                    dataset, split, device, args.reps, args.steps, args.batch, amp, args.seed
                )
            )
        if "b" in args.parts:
            result.update(bench_samplers(device, args.reps, args.sampler_batches, args.seed))
        if "c" in args.parts:
            result["images_per_s"] = bench_families(
                device, args.family_steps, args.family_batch, amp, args.seed
            )
            result["family_batch"] = args.family_batch
        if "d" in args.parts:
            result["cpu_bf16"] = bench_cpu_bf16(args.amp_steps, args.amp_reps, args.amp_batch, args.seed)
        if "e" in args.parts:
            result["numerical_check"] = bench_numerical_check(
                dataset, split, args.check_steps, args.check_window, args.batch
            )
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
