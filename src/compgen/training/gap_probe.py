"""Does the model generalise as it learns? The generalisation gap as a learning curve.

Analysis measures the gap once, on the selected weights (compgen.metrics.excess): the excess
reconstruction loss (loss less the target's own pixel-entropy floor) of single held-out images
over that of single training images. With `training.fit_probe: n`, every epoch also measures it
on fixed, seeded samples of n held-out images of the run's split and n fitted rows, at evaluation
(z = mu; batch norm on running statistics), in float32 as analysis does. `train_log.csv` gets
`probe_excess_train` and `probe_excess_test` (mean excess per image) and `probe_gap` (their ratio,
compgen.metrics.excess.gap; NaN for an all-data reference, which holds nothing out, and for a
task that reconstructs nothing).

The probe never selects a model: the best epoch is chosen on the validation rows alone. It draws
from a generator of its own and restores the model's mode, so a run trains the same with or
without it; of the held-out images only its n are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from compgen.batches import images_to_tensor
from compgen.conditions import load_split
from compgen.datasets.store import read_rows
from compgen.losses import reconstruction_per_image
from compgen.metrics.excess import batched_floors, gap
from compgen.tasks import Task, TrainingData
from compgen.training.engine import DeviceImages

# Keeps the probe's samples apart from every other stream drawn from the run's seed.
GAP_STREAM = 0x6A9_0BE


def gap_probe_rows(data: TrainingData, test_flat: np.ndarray, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitted rows of the training subset, held-out dataset indices): seeded samples, each sorted,
    without repeats and of at most n_images."""
    rng = np.random.default_rng([data.seed, GAP_STREAM])
    test_flat = np.asarray(test_flat, dtype=np.int64)
    train = np.sort(rng.choice(data.fit, size=min(n_images, data.fit.size), replace=False))
    test = np.sort(rng.choice(test_flat, size=min(n_images, test_flat.size), replace=False))
    return train, test


@dataclass
class _Sample:
    images: Callable[[torch.Tensor], torch.Tensor]
    rows: torch.Tensor  # what `images` takes
    codes: torch.Tensor
    floor: torch.Tensor  # per image, float64 on the device: fixed images, so computed once


def _sample(images, rows: torch.Tensor, codes: torch.Tensor, recon: str, batch: int) -> _Sample:
    return _Sample(images, rows, codes, batched_floors(images, rows, recon, batch))


def make_gap_probe(
    task: Task,
    data: TrainingData,
    dataset_path: str | os.PathLike,
    split_path: str | os.PathLike,
    n_images: int,
    batch: int,
) -> Callable | None:
    """A function of the model giving {"probe_excess_train", "probe_excess_test", "probe_gap"};
    None when n_images is 0."""
    if n_images <= 0:
        return None
    grid, device = data.grid, data.device
    _, test_flat = load_split(split_path, grid)
    train_rows, test_index = gap_probe_rows(data, test_flat, n_images)
    train_t = torch.as_tensor(train_rows, device=device)
    train = _sample(data.images, train_t, data.factors[train_t], data.recon, batch)
    test_images = DeviceImages(
        images_to_tensor(read_rows(dataset_path, test_index), device),
        channels_last=bool(getattr(data.images, "channels_last", False)),
    )
    test_codes = grid.standardised(grid.values(grid.classes(test_index)))
    test = _sample(
        test_images,
        torch.arange(test_index.size, device=device),
        torch.as_tensor(test_codes, dtype=torch.float32, device=device),
        data.recon,
        batch,
    )

    def mean_excess(model: torch.nn.Module, sample: _Sample) -> float:
        n = sample.rows.numel()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for s in range(0, n, batch):
            x = sample.images(sample.rows[s : s + batch])
            _, logits = task.encode(model, x, sample.codes[s : s + batch])
            if logits is None:  # a task that reconstructs nothing has no excess
                return float("nan")
            loss = reconstruction_per_image(logits, x, data.recon).double()
            total += (loss - sample.floor[s : s + batch]).sum()
        return float(total) / n if n else float("nan")

    @torch.no_grad()
    def probe(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            excess_train, excess_test = mean_excess(model, train), mean_excess(model, test)
        finally:
            model.train(was_training)
        return {
            "probe_excess_train": excess_train,
            "probe_excess_test": excess_test,
            "probe_gap": gap(excess_train, excess_test),
        }

    return probe
