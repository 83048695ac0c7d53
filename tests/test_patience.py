"""Early stopping (training.patience, patience_delta): the rule, a real run that converges, and a
killed converging run that resumes to the same stop, gap curve included."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

from compgen.config import complete_training
from compgen.metrics.excess import reconstruction_floor
from compgen.tasks import TASKS
from compgen.training.checkpoints import latest_checkpoint
from compgen.training.engine import TrainingRecord
from compgen.training.run import attach_early_stopping, fit, setup_run, train_run, write_outputs
from conftest import assert_same_outputs, train_straight_and_resumed
from test_engine import make_run


def reference_stop(losses, patience: int, delta: float) -> int | None:
    """The documented rule, written out: the first epoch (1-based) after which `patience` epochs in
    a row have not gone below (1 - delta) x the reference, the loss of the last epoch that did (the
    first epoch's to begin with); None: the rule never fires."""
    reference, waited = losses[0], 0
    for epoch, loss in enumerate(losses[1:], start=2):
        if loss < reference * (1 - delta):
            reference, waited = loss, 0
        else:
            waited += 1
        if waited == patience:
            return epoch
    return None


def scripted_run(losses, patience: int, delta: float) -> tuple[int, TrainingRecord, EarlyStopping]:
    """A trainer of one step per epoch whose validation losses are `losses`, with early stopping:
    (the last epoch it trained, its record, the handler)."""
    trainer = Engine(lambda engine, batch: None)
    record = TrainingRecord("scripted")
    model = torch.nn.Linear(1, 1)

    @trainer.on(Events.EPOCH_COMPLETED)
    def finish(engine):
        record.finish_epoch(engine.state.epoch, model, lambda: losses[engine.state.epoch - 1])

    stopping = attach_early_stopping(trainer, record, patience, delta)
    trainer.run([0], max_epochs=len(losses))
    return trainer.state.epoch, record, stopping


@pytest.mark.parametrize(
    "losses, patience, delta, stop",
    [
        # 9 is 10 % below 10; then 8.995, 8.992 and 8.991 are not below 9 x 0.999 = 8.991.
        ([10, 9, 8.995, 8.992, 8.9915, 5, 4], 3, 0.001, 5),
        # A slow creep that adds up: 9.995 is not 0.1 % below 10, but 9.988 is (the reference stays
        # 10 until an epoch beats it), so patience starts again; then 3 flat epochs. Measured from
        # the best loss so far (9.995), 9.988 would not count and the run would stop at epoch 4.
        ([10, 9.995, 9.988, 9.988, 9.988, 9.988, 1], 3, 0.001, 6),
        # A rise counts as no improvement; a later fall below the reference starts patience again.
        ([5, 6, 4, 4.5, 3.9, 4.0], 2, 0.0, None),
        ([5, 6, 7, 1], 2, 0.0, 3),
        # delta 0: any fall is an improvement.
        ([5, 4.9999, 4.9998, 4.9997], 1, 0.0, None),
        ([5, 4.9999, 4.9998, 4.9997], 1, 0.001, 2),
    ],
)
def test_the_stopping_rule_on_scripted_validation_losses(losses, patience, delta, stop):
    assert reference_stop(losses, patience, delta) == stop
    last, record, stopping = scripted_run(losses, patience, delta)
    assert last == (stop or len(losses))
    assert (stopping.counter >= patience) == (stop is not None)
    assert [row["epoch"] for row in record.history] == list(range(1, last + 1))


@pytest.mark.parametrize("seed", range(6))
def test_the_stopping_rule_matches_its_description_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    # A falling, noisy, flattening curve: the rule fires somewhere along most of them.
    losses = list(100 * np.exp(-np.arange(40) / 6) + 20 + rng.normal(0, 0.4, 40))
    patience, delta = int(rng.integers(1, 5)), float(rng.choice([0.0, 0.001, 0.01]))
    stop = reference_stop(losses, patience, delta)
    assert scripted_run(losses, patience, delta)[0] == (stop or len(losses))


def test_patience_is_off_by_default():
    training = complete_training({})
    assert training["patience"] == 0 and training["patience_delta"] == 0.001


def test_a_tiny_run_stops_where_its_validation_loss_converged(data, tmp_path):
    dataset, split = data
    summary = train_run(
        dataset,
        split,
        make_run(epochs=15, patience=2, patience_delta=0.2),
        tmp_path / "out",
        tmp_path / "ckpt",
    )
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    on_disk = json.loads((tmp_path / "out" / "run.json").read_text())
    # Early stopping watches the excess: the validation loss less the validation images' floor.
    training = setup_run(dataset, split, make_run(epochs=15, patience=2, patience_delta=0.2))
    images = training.data.images(torch.as_tensor(training.data.val))
    floor = float(reconstruction_floor(images, "bce").mean())
    assert on_disk["validation_floor"] == pytest.approx(floor, rel=1e-6, abs=1e-9)
    stop = reference_stop((log["val_recon"] - floor).tolist(), 2, 0.2)
    assert stop is not None and stop < 15
    assert log["epoch"].tolist() == list(range(1, stop + 1))
    assert on_disk["stopped"] == summary["stopped"] == "converged"
    assert on_disk["stopped_epoch"] == on_disk["epochs"] == stop
    assert on_disk["best_epoch"] == int(log["val_recon"].idxmin()) + 1
    assert on_disk["probe_gap"] == []  # no probe


def test_the_validation_floor_is_the_mean_floor_of_the_validation_images():
    from types import SimpleNamespace

    from compgen.training.run import validation_floor

    g = torch.Generator().manual_seed(0)
    images = torch.rand((10, 3, 8, 8), generator=g)  # grey levels: a large floor under BCE
    data = SimpleNamespace(
        val=np.array([1, 4, 7]), recon="bce", device=torch.device("cpu"), images=lambda r: images[r]
    )
    expected = float(reconstruction_floor(images[[1, 4, 7]], "bce").mean())
    for task in ("unsupervised", "composition"):
        assert validation_floor(TASKS[task], data, batch=2) == pytest.approx(expected, rel=1e-9)
    assert expected > 0.3 * 3 * 8 * 8
    # No floor for a regressor's MSE, nor for a reconstruction under MSE.
    assert validation_floor(TASKS["supervised"], data, batch=2) == 0.0
    assert (
        validation_floor(TASKS["unsupervised"], SimpleNamespace(**{**vars(data), "recon": "mse"}), 2) == 0.0
    )


def test_a_run_without_patience_ends_at_its_budget(data, tmp_path):
    dataset, split = data
    summary = train_run(dataset, split, make_run(epochs=2), tmp_path / "out", tmp_path / "ckpt")
    assert summary["stopped"] == "budget" and summary["stopped_epoch"] == 2
    # Patience that never runs out before the budget: also "budget".
    summary = train_run(dataset, split, make_run(epochs=2, patience=5), tmp_path / "out5", tmp_path / "ckpt5")
    assert summary["stopped"] == "budget" and summary["stopped_epoch"] == 2


# Stops at epoch 7 on the toy grid: a kill in epoch 3 falls between the first improvement and the stop.
CONVERGING = dict(epochs=15, fit_probe=12, patience=3, patience_delta=0.3)


def test_a_killed_converging_run_resumes_to_the_same_stop_and_gap_curve(data, tmp_path, monkeypatch):
    run = make_run(**CONVERGING)
    straight, resumed = train_straight_and_resumed(data, run, tmp_path, monkeypatch)
    assert_same_outputs(straight, resumed)  # weights, and the log with its probe columns
    a = json.loads((straight / "run.json").read_text())
    b = json.loads((resumed / "run.json").read_text())
    assert a["stopped"] == b["stopped"] == "converged"
    assert a["stopped_epoch"] == b["stopped_epoch"] == 7 < run["training"]["epochs"]
    assert a["best_epoch"] == b["best_epoch"]
    assert len(a["probe_gap"]) == 7 and np.isfinite(a["probe_gap"]).all()
    assert a["probe_gap"] == b["probe_gap"] == pd.read_csv(straight / "train_log.csv")["probe_gap"].tolist()
    assert b["resumed_from_epoch"] == 2

    # The checkpoint of the stop epoch holds the stopping state: resumed from it, the run trains
    # no further and writes what the straight run wrote.
    ckpt = tmp_path / "ckpt_straight"
    assert latest_checkpoint(ckpt).name == "ckpt_epoch7.pt"
    state = torch.load(io.BytesIO(latest_checkpoint(ckpt).read_bytes()), weights_only=True)
    assert state["early_stopping"]["counter"] == 3
    task_class = type(TASKS["unsupervised"])

    def must_not_train(*args):
        raise AssertionError("a converged run trained again")

    monkeypatch.setattr(task_class, "training_loss", must_not_train)
    again = setup_run(*data, run)
    assert fit(again, ckpt) == 7 and again.converged
    write_outputs(again, tmp_path / "again", 7)
    assert_same_outputs(straight, tmp_path / "again")
    c = json.loads((tmp_path / "again" / "run.json").read_text())
    assert (c["stopped"], c["stopped_epoch"], c["probe_gap"]) == ("converged", 7, a["probe_gap"])
