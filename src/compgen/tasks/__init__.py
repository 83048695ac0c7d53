"""The task registry: one object per task (see `compgen.tasks.base.Task`).

Each module of this package other than `base` defines one task as `TASK`, registered below; a
task defined elsewhere (a notebook, a test) joins with `register`.

Light to import (no torch): the workflow reads tasks while planning.
"""

from __future__ import annotations

import os

from compgen.tasks import cascade, composition, gt_decoder, lie, retrain, supervised, unsupervised
from compgen.tasks.base import Task, TrainingData

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task under `task.name`; a name may be registered once."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


for _module in (unsupervised, composition, supervised, gt_decoder, retrain, cascade, lie):
    register(_module.TASK)


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None


def build_model(model_cfg: dict, image_shape, n_factors: int):
    return get_task(model_cfg["task"]).build_model(model_cfg, tuple(int(s) for s in image_shape), n_factors)


def load_trained(path: str | os.PathLike, device="cpu"):
    """The best weights from a training run's model.pt, in eval mode, and the whole payload."""
    import torch

    payload = torch.load(path, map_location=device, weights_only=True)
    model = build_model(payload["model_config"], payload["image_shape"], len(payload["factor_names"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


def model_labels(models: dict[str, dict]) -> dict[str, str]:
    """Each model's name in tables and figures: the config's `label`, else one derived from the
    model's settings ("β-VAE (β=8)")."""
    return {name: cfg.get("label") or get_task(cfg["task"]).label(cfg) for name, cfg in models.items()}


__all__ = [
    "TASKS",
    "Task",
    "TrainingData",
    "build_model",
    "get_task",
    "load_trained",
    "model_labels",
    "register",
]
