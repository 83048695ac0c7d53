"""Write files under a temporary name and rename, so no half-written output is ever visible; a
full disk is reported as such, naming the file (not as the writer's own obscure error)."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class DiskFullError(OSError):
    """No space left on the device (or quota) while writing a file; nothing was half-written."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in NO_SPACE and not isinstance(err, DiskFullError):
            raise DiskFullError(err.errno, f"no space left on device while writing {path}") from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(obj, path: str | os.PathLike) -> None:
    """torch.save, atomically. Serialised in memory first: torch's own file writer reports a full
    disk as "unexpected pos", a plain write raises ENOSPC, which atomic_path names."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
