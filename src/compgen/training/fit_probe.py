"""Has the model learned its training data yet? A learning curve of the claims' fit check.

The claims (compgen.claims) reach a verdict only where the kind-aware, chance-corrected readout on
training images (compgen.metrics.fit: 0 is chance, 1 perfect) is high enough for the condition's
two factors; analysis measures it once, on the selected weights. With `training.fit_probe: n`,
every epoch also measures it on a fixed, seeded sample of n fitted rows: the task's latents at
evaluation (z = mu; batch norm on running statistics), read by `fit_scores` on the same seeded
halves of those rows every epoch, one `fit_<factor>` column per factor that varies among the
training rows. `train_log.csv` then says how much training a budget still lacks.

The probe draws from a generator of its own and restores the model's mode, so a run trains the
same with or without it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from compgen.metrics.fit import fit_scores
from compgen.tasks import Task, TrainingData

# Keeps the probe's rows apart from every other stream drawn from the run's seed.
PROBE_STREAM = 0x5EED_F17


def fit_probe_rows(data: TrainingData, n_images: int) -> np.ndarray:
    """A seeded sample (sorted, without repeats) of at most n_images fitted rows."""
    rng = np.random.default_rng([data.seed, PROBE_STREAM])
    return np.sort(rng.choice(data.fit, size=min(n_images, data.fit.size), replace=False))


def make_fit_probe(task: Task, data: TrainingData, n_images: int, batch: int) -> Callable | None:
    """A function of the model giving {"fit_<factor>": fit} for the training rows' varying
    factors; None when n_images is 0 or no factor varies."""
    grid = data.grid
    classes = data.classes[data.fit]
    scored = [k for k in range(classes.shape[1]) if classes[:, k].min() < classes[:, k].max()]
    if n_images <= 0 or not scored:
        return None
    rows = fit_probe_rows(data, n_images)
    rows_t = torch.as_tensor(rows, device=data.device)
    probe_classes = data.classes[rows]
    codes = data.factors[rows_t]

    @torch.no_grad()
    def probe(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            latents = [
                task.encode(model, data.images(rows_t[s : s + batch]), codes[s : s + batch])[0]
                for s in range(0, rows.size, batch)
            ]
        finally:
            model.train(was_training)
        z = torch.cat(latents).float().cpu().numpy()
        # Seeded by the run's seed: the same halves every epoch, and no training stream is drawn.
        fit = fit_scores(z, probe_classes, grid, scored, seed=data.seed)
        return {f"fit_{name}": value for name, value in fit.items()}

    return probe
