"""The device a run trains on: the CPU, or a GPU that no other job on this machine has claimed."""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import tempfile
from pathlib import Path

import torch

log = logging.getLogger("compgen.training")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return claim_gpu() if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training.device is {name!r} but no CUDA device is available")
    return claim_gpu() if name == "cuda" else torch.device(name)


GPU_LOCK_DIR = Path(tempfile.gettempdir())
_gpu_claims: list[int] = []  # open lock files; the kernel releases them when the process ends


def claim_gpu() -> torch.device:
    """The first visible GPU that no other process on this machine has claimed.

    Snakemake caps concurrent GPU jobs (--resources gpu=N) but does not say which GPU a job
    gets, so each job takes an exclusive lock per GPU (named by its UUID, which is the same
    under any CUDA_VISIBLE_DEVICES). Under SLURM a job sees only the GPU it was given.
    """
    for index in range(torch.cuda.device_count()):
        path = GPU_LOCK_DIR / f"compgen-gpu-{torch.cuda.get_device_properties(index).uuid}.lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _gpu_claims.append(fd)
        return torch.device("cuda", index)
    log.warning("every visible GPU is claimed by another job; sharing cuda:0")
    return torch.device("cuda", 0)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"
