"""`training.amp`: bfloat16 autocast on CUDA and on CPUs with fast bf16, a no-op said in
the log elsewhere; run.json's `amp` is what was used, and so is the checkpoint fingerprint."""

import logging

import pytest
import torch

from compgen.tasks import get_task
from compgen.training import device as device_module
from compgen.training.checkpoints import checkpoints, fingerprint
from compgen.training.device import cpu_bf16_fast, resolve_amp
from compgen.training.engine import autocast, validation_loss
from compgen.training.run import fit, setup_run, train_run, write_outputs
from test_engine import make_run
from test_recovery import STEPS_PER_EPOCH, Killed, kill_at  # noqa: F401 (kill_at: a fixture)

CPU = torch.device("cpu")


@pytest.fixture
def bf16_cpu(monkeypatch):
    """bf16_cpu(fast): this CPU's bf16 counts as fast, or not, whatever it is."""

    def set_fast(fast: bool) -> None:
        monkeypatch.setattr(device_module, "cpu_bf16_fast", lambda: (fast, "as the test says"))

    return set_fast


@pytest.mark.parametrize(
    "caps, fast",
    [
        ({"architecture": "x86_64", "avx512_bf16": True}, True),
        ({"architecture": "x86_64", "amx_bf16": True}, True),
        ({"architecture": "x86_64", "avx512_bf16": False, "avx2": True}, False),
        ({"architecture": "aarch64", "bf16": True}, False),  # not measured: counts as slow
    ],
)
def test_fast_cpu_bf16_needs_native_bf16_instructions(monkeypatch, caps, fast):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert cpu_bf16_fast()[0] is fast


def test_amp_resolves_per_device(bf16_cpu, caplog):
    bf16_cpu(True)
    assert resolve_amp(True, CPU) and not resolve_amp(False, CPU)
    assert resolve_amp(True, torch.device("cuda")) and not resolve_amp(False, torch.device("cuda"))
    bf16_cpu(False)
    with caplog.at_level(logging.INFO, logger="compgen.training"):
        assert not resolve_amp(True, CPU)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "training.amp: off, training in float32 (as the test says)"


def test_cpu_autocast_is_for_training_steps_only():
    layer, x = torch.nn.Linear(4, 3), torch.ones(2, 4)
    with autocast(CPU, True):
        assert layer(x).dtype == torch.bfloat16
    for amp, evaluation in [(True, True), (False, False)]:
        with autocast(CPU, amp, evaluation=evaluation):
            assert layer(x).dtype == torch.float32


def test_fingerprint_tells_amp_on_from_off():
    run = make_run()
    assert fingerprint(run, "s", "d", True) != fingerprint(run, "s", "d", False) == fingerprint(run, "s", "d")


def test_a_cpu_run_with_fast_bf16_trains_under_amp_and_validates_in_float32(data, tmp_path, bf16_cpu):
    bf16_cpu(True)
    dataset, split = data
    training = setup_run(dataset, split, make_run("composition", epochs=1, amp=True))
    summary = write_outputs(training, tmp_path / "out", fit(training, None))
    assert training.amp and summary["amp"] is True
    assert training.data.images.channels_last is False  # channels_last stays CUDA's
    assert torch.isfinite(torch.tensor(summary["best_val"]))
    task, data = get_task("composition"), training.data
    val = task.validation_set(data)
    scores = [
        validation_loss(training.model, task, val, data, training.objective, amp, 256)
        for amp in (True, False)
    ]
    assert scores[0] == scores[1]


def test_amp_asked_for_on_a_slow_cpu_is_off_in_run_json(data, tmp_path, bf16_cpu):
    bf16_cpu(False)
    dataset, split = data
    summary = train_run(dataset, split, make_run(epochs=1, amp=True), tmp_path / "out", tmp_path / "ckpt")
    assert summary["amp"] is False and summary["run"]["training"]["amp"] is True


def test_a_checkpoint_without_amp_is_not_resumed_with_amp(data, tmp_path, bf16_cpu, kill_at):  # noqa: F811
    """The same run settings (training.amp: true) on a CPU whose bf16 is slow, then on one where it
    is fast: another computation, so the checkpoint is set aside and training starts afresh."""
    dataset, split = data
    bf16_cpu(False)
    with pytest.raises(Killed):
        kill_at(STEPS_PER_EPOCH + 1)
        train_run(dataset, split, make_run(epochs=2, amp=True), tmp_path / "out", tmp_path / "ckpt")
    assert [p.name for p in checkpoints(tmp_path / "ckpt")] == ["ckpt_epoch1.pt"]
    bf16_cpu(True)
    summary = train_run(dataset, split, make_run(epochs=2, amp=True), tmp_path / "out", tmp_path / "ckpt")
    assert summary["amp"] is True and summary["resumed_from_epoch"] == 0
    assert (tmp_path / "ckpt" / "set-aside" / "ckpt_epoch1.pt").exists()
