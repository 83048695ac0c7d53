"""The per-epoch gap probe (training.fit_probe): held-out over training excess reconstruction loss
as a learning curve, its panel in curves.png and the group's gap-curve figure."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.image import imread

from compgen.analysis.figures import EXCESS_PANEL, GAP_PANEL, curve_panels, plot_training_curves
from compgen.datasets.store import read_rows
from compgen.summary.figure import plot_gap_curves, read_gap_curve
from compgen.training.gap_probe import gap_probe_rows, make_gap_probe
from compgen.training.run import fit, setup_run, train_run
from conftest import TEST_CONFIGS, run_snakemake, write_toy
from test_engine import make_run

PROBE_COLUMNS = ["probe_excess_train", "probe_excess_test", "probe_gap"]


@pytest.fixture(scope="module")
def grey_data(tmp_path_factory):
    """The toy grid of conftest's `data` in grey levels (a 200 square on 60), so that every image has
    a pixel-entropy floor well above 0; the same held-out corner."""

    def render(classes):
        out = np.full((len(classes), 64, 64, 1), 60, dtype=np.uint8)
        for i, (x, y, s) in enumerate(classes):
            side = 12 + 8 * s
            out[i, 4 + 12 * y : 4 + 12 * y + side, 4 + 12 * x : 4 + 12 * x + side] = 200
        return out

    return write_toy(tmp_path_factory.mktemp("grey"), "grey", render)


def independent_excess(model, dataset, indices) -> float:
    """Mean over `indices` (dataset rows) of BCE(decode(mu), x) less the entropy of x's own pixels,
    from the file, in float64 NumPy where it can be."""
    x = read_rows(dataset, indices).astype(np.float64) / 255.0  # N x H x W x C
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(x.transpose(0, 3, 1, 2)).float())
        logits = model.decode(mu).double().numpy().transpose(0, 2, 3, 1)
    # BCE with logits l: softplus(l) - x l; the floor: -(x log x + (1 - x) log(1 - x)).
    bce = (np.logaddexp(0.0, logits) - x * logits).reshape(len(x), -1).sum(1)
    floor = -(x * np.log(x) + (1 - x) * np.log(1 - x)).reshape(len(x), -1).sum(1)
    assert (floor > 100).all()  # grey images: the floor matters
    return float((bce - floor).mean())


def test_probe_equals_an_independent_computation_on_its_rows(grey_data):
    dataset, split = grey_data
    training = setup_run(dataset, split, make_run(epochs=2))
    fit(training, None)
    task, d, model = training.task, training.data, training.model
    probe = make_gap_probe(task, d, dataset, split, 10, 3)  # batches of 3: a short last batch
    model.train()
    got = probe(model)
    assert model.training  # the mode is restored

    test_flat = np.load(split)["test"]
    train_rows, test_index = gap_probe_rows(d, test_flat, 10)
    assert train_rows.size == 10 and np.all(np.diff(train_rows) > 0) and np.isin(train_rows, d.fit).all()
    # Only 4 images are held out: all of them.
    assert np.array_equal(test_index, np.sort(test_flat))
    model.eval()
    train = independent_excess(model, dataset, d.train_flat[train_rows])
    test = independent_excess(model, dataset, test_index)
    assert got["probe_excess_train"] == pytest.approx(train, rel=1e-5)
    assert got["probe_excess_test"] == pytest.approx(test, rel=1e-5)
    assert got["probe_gap"] == pytest.approx(test / train, rel=1e-5)


def test_samples_are_seeded_and_drawn_from_fitted_and_held_out_images(data):
    dataset, split = data
    d = setup_run(dataset, split, make_run(epochs=1)).data
    test_flat = np.load(split)["test"]
    a, b = gap_probe_rows(d, test_flat, 3), gap_probe_rows(d, test_flat, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].size == 3 and np.isin(a[0], d.fit).all()
    assert a[1].size == 3 and np.isin(a[1], test_flat).all() and np.all(np.diff(a[1]) > 0)


def test_no_gap_without_held_out_images_or_reconstructions(all_data, data):
    reference = setup_run(all_data / "toy.h5", all_data / "split.npz", make_run(epochs=1))
    got = make_gap_probe(reference.task, reference.data, all_data / "toy.h5", all_data / "split.npz", 8, 8)(
        reference.model
    )
    assert np.isfinite(got["probe_excess_train"])
    assert np.isnan(got["probe_excess_test"]) and np.isnan(got["probe_gap"])

    dataset, split = data
    regressor = setup_run(dataset, split, make_run("supervised", epochs=1))
    got = make_gap_probe(regressor.task, regressor.data, dataset, split, 8, 8)(regressor.model)
    assert list(got) == PROBE_COLUMNS and all(np.isnan(v) for v in got.values())
    assert make_gap_probe(regressor.task, regressor.data, dataset, split, 0, 8) is None


def test_a_probed_run_trains_as_an_unprobed_one_and_logs_the_gap(data, tmp_path):
    dataset, split = data
    probed = train_run(dataset, split, make_run(epochs=3, fit_probe=12), tmp_path / "probed", tmp_path / "c1")
    plain = train_run(dataset, split, make_run(epochs=3), tmp_path / "plain", tmp_path / "c2")
    a = torch.load(tmp_path / "probed" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)
    for key in ("state_dict", "last_state_dict"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    log = pd.read_csv(tmp_path / "probed" / "train_log.csv")
    assert set(PROBE_COLUMNS) <= set(log.columns)
    assert np.allclose(log["probe_gap"], log["probe_excess_test"] / log["probe_excess_train"])
    assert probed["probe_gap"] == log["probe_gap"].tolist() and plain["probe_gap"] == []
    assert not any(c.startswith("probe_") for c in pd.read_csv(tmp_path / "plain" / "train_log.csv").columns)


def write_log(path, gaps, extra: dict | None = None) -> None:
    epochs = np.arange(1, len(gaps) + 1)
    frame = {"epoch": epochs, "recon": 100 / epochs, "val_recon": 110 / epochs}
    frame.update({"probe_excess_train": 50 / epochs, "probe_excess_test": 50 / epochs * np.asarray(gaps)})
    frame["probe_gap"] = gaps
    frame.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_csv(path, index=False)


def test_curves_draw_the_excesses_together_and_the_gap_alone(tmp_path):
    columns = ["recon", "val_recon", *PROBE_COLUMNS]
    assert curve_panels(columns) == {
        "recon": ["recon", "val_recon"],
        EXCESS_PANEL: ["probe_excess_train", "probe_excess_test"],
        GAP_PANEL: ["probe_gap"],
    }
    csv = tmp_path / "train_log.csv"
    write_log(csv, [1.0, 1.4, 2.1, 2.6, 2.9])
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    plot_training_curves(csv, first)
    plot_training_curves(csv, second)
    assert first.read_bytes() == second.read_bytes()
    assert imread(first).shape[:2] == (280, 3 * 360)  # three panels in a row


def test_group_gap_curves_put_conditions_side_by_side(tmp_path):
    runs = []
    for panel, family, gaps in [
        ("toy/interp", "interp", [[1.0, 1.1, 1.05, 1.02], [1.0, 1.2, 1.1]]),
        ("toy/extrp", "extrp", [[1.1, 2.5, 4.0, 6.0], [1.2, 3.0, 5.5, 7.0]]),
        ("toy/all", "none", [[np.nan] * 4, [np.nan] * 4]),
    ]:
        for seed, values in enumerate(gaps):
            log = tmp_path / panel / f"seed{seed}" / "train_log.csv"
            write_log(log, values)
            runs.append({"panel": panel, "family": family, "model": "VAE", "seed": seed, "train_log": log})
    assert read_gap_curve(runs[1]["train_log"]).index.tolist() == [1, 2, 3]
    assert read_gap_curve(runs[4]["train_log"]).empty
    out = [tmp_path / "a" / "g_gap_curves.png", tmp_path / "b" / "g_gap_curves.png"]
    for path in out:
        path.parent.mkdir()
        plot_gap_curves(runs, [path], title="toy")
    assert out[0].read_bytes() == out[1].read_bytes()
    height, width = imread(out[0]).shape[:2]
    assert width > 2 * height  # two panels side by side; the reference is named, not drawn

    # A log without the probe's columns (a run trained without it): no curve, no failure.
    bare = tmp_path / "bare.csv"
    pd.DataFrame({"epoch": [1, 2], "recon": [2.0, 1.0]}).to_csv(bare, index=False)
    assert read_gap_curve(bare).empty
    plot_gap_curves(
        [{"panel": "toy/x", "family": "", "model": "VAE", "seed": 0, "train_log": bare}],
        [tmp_path / "bare.png"],
    )


def test_the_workflow_plans_gap_curves_only_for_probed_groups(tmp_path):
    config = yaml.safe_load((TEST_CONFIGS / "tiny.yaml").read_text())
    plans = {}
    for probe in (0, 4):
        workdir = tmp_path / f"probe{probe}"
        workdir.mkdir()
        config["training"]["fit_probe"] = probe
        (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
        done = run_snakemake(workdir, "--configfile", str(workdir / "tiny.yaml"), "--cores", "1", "-n")
        assert done.returncode == 0, done.stderr[-3000:]
        plans[probe] = done.stdout + done.stderr
        shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    assert "group_gap_curves" not in plans[0]
    # tiny.yaml's one group, its gap curves apart from its group figure.
    assert "results/summary/groups/failure_gap_curves.png" in plans[4]
    assert "results/summary/groups/failure.png" in plans[4]
