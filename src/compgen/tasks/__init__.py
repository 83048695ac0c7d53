"""The task registry: one object per task (see `compgen.tasks.base.Task`).

Each module of this package other than `base` defines one task as `TASK`, registered below; a
task defined elsewhere (a notebook, a test) joins with `register`, and an installed plugin with an
entry point of the group `compgen.tasks` naming a `Task` instance (compgen.registry).

Light to import (no torch): the workflow reads tasks while planning.
"""

from __future__ import annotations

import os

from compgen.registry import Registry, RegistryError
from compgen.tasks import cascade, composition, gt_decoder, lie, retrain, supervised, unsupervised
from compgen.tasks.base import Task, TrainingData


def _check_task(name: str, task) -> None:
    if not isinstance(task, Task):
        raise RegistryError(
            f"task {name!r}: expected a compgen.tasks.Task instance, got {type(task).__name__}"
        )
    if task.name != name:
        raise RegistryError(f"task {name!r}: the Task's name is {task.name!r}; they must be the same")


TASKS = Registry(
    "task",
    {
        module.TASK.name: module.TASK
        for module in (unsupervised, composition, supervised, gt_decoder, retrain, cascade, lie)
    },
    check=_check_task,
)


def register(task: Task) -> Task:
    """Add a task under `task.name`; a name may be registered once."""
    return TASKS.register(task.name, task)


def get_task(name: str) -> Task:
    return TASKS.get_or_error(name)


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
