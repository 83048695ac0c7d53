"""A deterministic stop point for fault tests: pause training at a named iteration, on request.

With COMPGEN_PAUSE_AT_ITERATION=N and COMPGEN_PAUSE_MARKER=path in the environment, the trainer
writes `path` (atomically: JSON with the pid, epoch and iteration) once iteration N has completed
and then blocks until the process is killed. A test waits for the marker and kills the job there,
so the kill point is the same on every machine, however loaded, and always mid-training. Without
the variables nothing is attached.
"""

from __future__ import annotations

import logging
import os
import time

from ignite.engine import Engine, Events

from compgen.atomic import write_json

log = logging.getLogger("compgen.training")

PAUSE_AT = "COMPGEN_PAUSE_AT_ITERATION"
PAUSE_MARKER = "COMPGEN_PAUSE_MARKER"


def attach_pause(trainer: Engine) -> None:
    """Pause `trainer` after iteration $COMPGEN_PAUSE_AT_ITERATION (counted over the whole run)."""
    at = os.environ.get(PAUSE_AT)
    if not at:
        return
    marker = os.environ.get(PAUSE_MARKER)
    if not marker:
        raise RuntimeError(f"{PAUSE_AT} is set but {PAUSE_MARKER} (the file to write on pausing) is not")
    iteration = int(at)
    if iteration < 1:
        raise ValueError(f"{PAUSE_AT} must be a positive iteration, got {at!r}")

    @trainer.on(Events.ITERATION_COMPLETED(once=iteration))
    def pause(engine: Engine) -> None:
        info = {"pid": os.getpid(), "epoch": engine.state.epoch, "iteration": engine.state.iteration}
        log.warning(
            "paused at iteration %d (epoch %d) as %s asks; waiting to be killed",
            iteration,
            engine.state.epoch,
            PAUSE_AT,
        )
        write_json(marker, info)
        while True:  # until a signal ends the process
            time.sleep(3600)
