"""The device a run trains on (the CPU, or a GPU that no other job on this machine has claimed), and
whether `training.amp` (bfloat16 autocast) is used on it."""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import tempfile
from pathlib import Path

import torch

log = logging.getLogger("compgen.training")


def resolve_device(name: str, jobs_per_gpu: int = 1) -> torch.device:
    if name == "auto":
        return claim_gpu(jobs_per_gpu) if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training.device is {name!r} but no CUDA device is available")
    return claim_gpu(jobs_per_gpu) if name == "cuda" else torch.device(name)


GPU_LOCK_DIR = Path(tempfile.gettempdir())
_gpu_claims: list[int] = []  # open lock files; the kernel releases them when the process ends


def gpu_lock_name(uuid: str, slot: int) -> str:
    # Slot 0 keeps the name of one job per GPU, so studies with and without packing exclude each other there.
    return f"compgen-gpu-{uuid}.lock" if slot == 0 else f"compgen-gpu-{uuid}-slot{slot}.lock"


def claim_gpu(jobs_per_gpu: int = 1) -> torch.device:
    """A slot on a visible GPU that no other process on this machine has claimed: each GPU has
    `jobs_per_gpu` slots (resources.jobs_per_gpu: small models leave most of a large GPU idle, so
    several runs share one). Slots are filled GPU by GPU in turn (slot 0 of every GPU first), so
    jobs spread over the GPUs before they pack.

    Snakemake caps concurrent GPU jobs (--resources gpu=N, N = GPUs x jobs_per_gpu) but does not say
    which GPU a job gets, so each job takes an exclusive lock per slot (named by the GPU's UUID,
    which is the same under any CUDA_VISIBLE_DEVICES). Under SLURM a job sees only the GPU it was
    given.
    """
    if jobs_per_gpu < 1:
        raise ValueError(f"resources.jobs_per_gpu must be at least 1, got {jobs_per_gpu}")
    uuids = [torch.cuda.get_device_properties(i).uuid for i in range(torch.cuda.device_count())]
    for slot in range(jobs_per_gpu):
        for index, uuid in enumerate(uuids):
            path = GPU_LOCK_DIR / gpu_lock_name(str(uuid), slot)
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
    log.warning("every slot of every visible GPU is claimed by another job; sharing cuda:0")
    return torch.device("cuda", 0)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def cpu_bf16_fast() -> tuple[bool, str]:
    """(whether this CPU runs bfloat16 autocast fast, why): native bf16 dot products (x86 AVX512-BF16
    or AMX-BF16) and oneDNN, which autocast's convolutions and matrix products go through. Without
    them oneDNN emulates bf16 or torch falls back to its reference kernels, slower than float32; other
    architectures (ARM's bf16) are not measured, so they count as slow."""
    caps = torch.cpu.get_capabilities()
    if not torch.backends.mkldnn.is_available():
        return False, "torch is built without oneDNN"
    if caps.get("architecture") not in ("x86_64", "x86"):
        return False, f"bf16 speed not measured on {caps.get('architecture')!r} CPUs"
    if not (caps.get("avx512_bf16") or caps.get("amx_bf16")):
        return False, "the CPU has neither AVX512-BF16 nor AMX-BF16"
    return True, "the CPU has " + " and ".join(k for k in ("avx512_bf16", "amx_bf16") if caps.get(k))


def resolve_amp(requested: bool, device: torch.device) -> bool:
    """Whether a run asking for `training.amp` trains under bfloat16 autocast on `device`: always on
    CUDA, on a CPU only where bf16 is fast (cpu_bf16_fast); elsewhere a no-op, said in the log."""
    if not requested:
        return False
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        fast, why = cpu_bf16_fast()
        if fast:
            return True
        log.info("training.amp: off, training in float32 (%s)", why)
        return False
    log.info("training.amp: off, training in float32 (no bf16 autocast on %s devices)", device.type)
    return False
