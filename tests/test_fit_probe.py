"""The per-epoch fit probe (training.fit_probe): the kind-aware fit on training images as a learning
curve."""

import numpy as np
import pandas as pd
import pytest
import torch

from compgen.metrics.fit import fit_scores
from compgen.training.fit_probe import fit_probe_rows, make_fit_probe
from compgen.training.run import setup_run, train_run
from conftest import assert_same_outputs, train_straight_and_resumed
from test_engine import make_run


def test_composition_run_logs_the_fit_of_every_varying_factor(data, tmp_path):
    dataset, split = data
    run = make_run("composition", epochs=3, fit_probe=40)
    train_run(dataset, split, run, tmp_path / "out", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    columns = ["fit_x", "fit_y", "fit_size"]
    assert [c for c in log.columns if c.startswith("fit_")] == columns
    # Chance-corrected and scored on rows the readout was not fitted on: at most 1, and a few
    # training images (28 here) may read below chance, but not far.
    values = log[columns].to_numpy()
    assert np.isfinite(values).all() and (values <= 1 + 1e-9).all() and (values > -1).all()


def test_probe_equals_the_analysis_readout_on_its_rows(data):
    """The probe's value is analysis' fit (compgen.metrics.fit, on the run seed's halves) of the
    latent means of the probe's seeded rows."""
    dataset, split = data
    training = setup_run(dataset, split, make_run("composition", epochs=1))
    task, d, model = training.task, training.data, training.model
    probe = make_fit_probe(task, d, 20, 7)
    model.train()
    got = probe(model)
    assert model.training  # the mode is restored

    rows = fit_probe_rows(d, 20)
    assert rows.size == 20 and np.all(np.diff(rows) > 0) and np.isin(rows, d.fit).all()
    model.eval()
    # Encoded in the probe's batches of 7: another batch size may take another convolution
    # algorithm, and the readout's small MLP turns float-rounding differences into 1e-3.
    with torch.no_grad():
        mu = torch.cat([model.encode(d.images(torch.as_tensor(rows[s : s + 7])))[0] for s in range(0, 20, 7)])
    want = fit_scores(mu.numpy(), d.classes[rows], d.grid, [0, 1, 2], seed=d.seed)
    assert got == pytest.approx({f"fit_{n}": want[n] for n in d.grid.names}, abs=1e-6)
    assert probe(model) == got  # the same halves every epoch


def test_supervised_fit_rises_as_the_regressor_learns(data, tmp_path):
    dataset, split = data
    train_run(
        dataset, split, make_run("supervised", epochs=6, fit_probe=60), tmp_path / "out", tmp_path / "ckpt"
    )
    log = pd.read_csv(tmp_path / "out" / "train_log.csv")
    mean_fit = log[["fit_x", "fit_y", "fit_size"]].mean(axis=1)
    assert mean_fit.iloc[-1] > mean_fit.iloc[0] + 0.1


def test_probe_off_by_default_and_for_nothing_to_read(data):
    dataset, split = data
    training = setup_run(dataset, split, make_run("composition", epochs=1))
    assert make_fit_probe(training.task, training.data, 0, 8) is None
    assert "fit_x" not in training.record.finish_epoch(1, training.model, lambda: 0.0)


def test_a_probed_run_trains_as_an_unprobed_one_and_resumes_bit_identically(data, tmp_path, monkeypatch):
    """The probe draws nothing from the training streams: the weights equal those of a run
    without it, and a killed, resumed probed run equals an uninterrupted one (log included)."""
    dataset, split = data
    probed = make_run("composition", epochs=3, fit_probe=40)
    straight, resumed = train_straight_and_resumed(data, probed, tmp_path, monkeypatch)
    assert_same_outputs(straight, resumed)
    train_run(dataset, split, make_run("composition", epochs=3), tmp_path / "plain", tmp_path / "ckpt_plain")
    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)
    assert all(torch.equal(a["last_state_dict"][k], b["last_state_dict"][k]) for k in a["last_state_dict"])
