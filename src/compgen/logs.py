"""Logging for rule scripts: one log file per job, plain lines, warnings and tracebacks included."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import TracebackType

log = logging.getLogger("compgen")


def log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook: the traceback of an uncaught exception goes to every handler (log file and stderr)."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.critical("uncaught exception, the job fails", exc_info=(exc_type, exc, tb))


def setup_logging(log_path: str | os.PathLike | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = log_uncaught
