"""A run's checkpoint folder: what is resumed, what is set aside, and who may train there.

- Every epoch's end writes the full trainer state (model, optimiser, objective state, record) with
  ignite's Checkpoint; the two newest are kept, so a damaged newest one leaves one to resume from.
- A checkpoint is resumed only if its fingerprint matches the run's: the resolved settings, the
  split file's SHA-256, the dataset's SHA-256, whether bfloat16 autocast is on and, for a retrain
  run, its base model.pt's SHA-256. One that does not match, or cannot be read, is moved to
  `set-aside/` with one warning naming it and what differs; nothing is deleted.
- A finished run clears its checkpoints, so running it again (e.g. `--forcerun train`) starts afresh.
- Training holds an exclusive lock on the folder (the file `<folder>.lock` beside it): a second
  process for the same run stops at once, naming the holder's PID.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler

from compgen.atomic import save_torch

log = logging.getLogger("compgen.training")

PREFIX = "ckpt"
PATTERN = re.compile(rf"^{PREFIX}_epoch(\d+)\.pt$")
KEEP = 2
SET_ASIDE = "set-aside"


class RunLockedError(RuntimeError):
    """Another process is training this run."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(
    run: dict, split_sha256: str, data_sha256: str, amp: bool = False, base_sha256: str | None = None
) -> str:
    """Everything that defines what a run trains: a checkpoint of another fingerprint is not resumed.
    `amp` is whether bfloat16 autocast is actually on: the run's `training.amp` only asks for it, and
    the device decides (compgen.training.device.resolve_amp). `base_sha256`: a retrain run's base
    model.pt, whose frozen half it keeps; its path stays the same when the base is trained again."""
    parts = {"run": run, "split_sha256": split_sha256, "data_sha256": data_sha256, "amp": bool(amp)}
    if base_sha256 is not None:  # only then: other runs' checkpoints still resume after an upgrade
        parts["base_sha256"] = base_sha256
    return json.dumps(parts, sort_keys=True)


# What each part of a fingerprint is, for the warning that sets a checkpoint aside.
FINGERPRINT_PARTS = {
    "run": "settings",
    "split_sha256": "split",
    "data_sha256": "dataset",
    "amp": "bf16 autocast",
    "base_sha256": "base model.pt",
}


def what_differs(theirs, ours: str) -> str:
    """Why a checkpoint of fingerprint `theirs` is another run's: the parts that differ from `ours`."""
    try:
        old, new = json.loads(theirs), json.loads(ours)
    except (TypeError, ValueError):
        return "it has no fingerprint of its settings, split, dataset or bf16 autocast"
    differ = [name for key, name in FINGERPRINT_PARTS.items() if old.get(key) != new.get(key)]
    why = f"its {' and '.join(differ) or 'settings'} differ{'s' if len(differ) == 1 else ''}"
    if "base model.pt" in differ and new.get("base_sha256"):
        # The path is the same when the base is trained again: name it, and say what happened.
        path = new["run"].get("base", {}).get("model_path") or "model.pt"
        why = why.replace("base model.pt", f"base {path}") + ": the base was trained again since"
    return why


def checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """The folder's checkpoints, newest (highest epoch) first."""
    found = []
    for path in Path(checkpoint_dir).glob(f"{PREFIX}_epoch*.pt"):
        match = PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(checkpoint_dir)
    return found[0] if found else None


def set_aside(path: Path, why: str) -> Path:
    """Move a checkpoint out of the way (never delete it), with one warning naming both places."""
    folder = path.parent / SET_ASIDE
    folder.mkdir(exist_ok=True)
    target, n = folder / path.name, 1
    while target.exists():
        n += 1
        target = folder / f"{path.stem}.{n}{path.suffix}"
    os.replace(path, target)
    log.warning("checkpoint %s %s; set aside as %s", path, why, target)
    return target


class AtomicTorchSaver(BaseSaveHandler):
    """ignite's save handler, writing through compgen.atomic (a full disk is named as such)."""

    def __init__(self, dirname: str | os.PathLike):
        self.dirname = Path(dirname)
        self.dirname.mkdir(parents=True, exist_ok=True)

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        save_torch(checkpoint, self.dirname / filename)

    def remove(self, filename: str) -> None:
        (self.dirname / filename).unlink(missing_ok=True)


def attach_checkpointing(
    trainer: Engine, to_save: dict, checkpoint_dir: str | Path, every: int
) -> Checkpoint:
    """Full state every `every` epochs; the two newest are kept (also over files of earlier processes)."""
    handler = Checkpoint(
        to_save,
        AtomicTorchSaver(checkpoint_dir),
        filename_prefix=PREFIX,
        filename_pattern="{filename_prefix}_epoch{global_step}.{ext}",
        global_step_transform=lambda engine, _: engine.state.epoch,
        n_saved=KEEP,
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED(every=every), handler)

    @trainer.on(Events.EPOCH_COMPLETED(every=every))
    def remove_older(engine: Engine) -> None:
        for path in checkpoints(checkpoint_dir)[KEEP:]:
            path.unlink(missing_ok=True)

    return handler


def _epoch_of(state: dict) -> int:
    return int(state["trainer"]["iteration"]) // int(state["trainer"]["epoch_length"])


def resume_from_checkpoint(to_load: dict, checkpoint_dir: str | Path, run_fingerprint: str, device) -> int:
    """Load the newest readable checkpoint of this run; returns the epoch it ended (0: none, start
    afresh). Unreadable ones and those of another run are set aside."""
    for path in checkpoints(checkpoint_dir):
        try:
            state = torch.load(io.BytesIO(path.read_bytes()), map_location=device, weights_only=True)
            epoch = _epoch_of(state)
        except Exception as err:  # truncated, corrupt or not a checkpoint: any of torch's many errors
            set_aside(
                path, f"cannot be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
            )
            continue
        theirs = state.get("record", {}).get("fingerprint")
        if theirs != run_fingerprint:
            set_aside(path, f"belongs to another run ({what_differs(theirs, run_fingerprint)})")
            continue
        Checkpoint.load_objects(to_load=to_load, checkpoint=state)
        log.info("resumed from %s (epoch %d)", path, epoch)
        return epoch
    return 0


def clear_checkpoints(checkpoint_dir: str | os.PathLike) -> None:
    """After a finished run: its outputs hold the weights, so a re-run must start afresh."""
    for path in checkpoints(checkpoint_dir):
        path.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run's checkpoint folder for as long as it trains (released by the
    kernel if the process dies), holding the PID of its holder."""

    def __init__(self, checkpoint_dir: str | os.PathLike, run_id: str):
        folder = Path(checkpoint_dir)
        self.path = folder.with_name(
            f"{folder.name}.lock"
        )  # beside it: nothing is made inside before training
        self.run_id = run_id
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"run {self.run_id} is already training in process {holder} (lock {self.path}); "
                "wait for it, or stop it, before starting this run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None
