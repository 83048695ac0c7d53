"""The whole DAG on a tiny config in a temporary directory, checked by content."""

import json
import shutil

import pandas as pd
import pytest

from conftest import TEST_CONFIGS, run_snakemake

pytestmark = pytest.mark.workflow

TINY = TEST_CONFIGS / "tiny.yaml"
RUNS = ["dsprites/sqr2tx/vae/seed0", "dsprites/sqr2tx/vae_fixint/seed0", "circles/shape2px/kim_interp/seed0"]


def snakemake(workdir, *args):
    return run_snakemake(workdir, "--configfile", str(workdir / "tiny.yaml"), "--cores", "2", *args)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    shutil.copy(TINY, workdir / "tiny.yaml")
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir


def test_every_run_trained_and_its_loss_fell(finished):
    for run_id in RUNS:
        log = pd.read_csv(finished / "results/runs" / run_id / "train_log.csv")
        assert list(log["epoch"]) == [1, 2, 3]
        assert log["loss"].iloc[-1] < log["loss"].iloc[0], run_id
        assert (log["images_per_s"] > 0).all()
        info = json.loads((finished / "results/runs" / run_id / "run.json").read_text())
        assert info["seed"] == 0 and "torch" in info["versions"]


def test_splits_and_scores_are_consistent(finished):
    split = json.loads((finished / "results/splits/dsprites/sqr2tx.json").read_text())
    # 3 shapes × 2 scales × 4 orientations × 8 × 8 positions; squares right of centre held out.
    assert split["n_total"] == 1536 and split["n_test"] == 2 * 4 * 4 * 8 and split["n_train"] == 1536 - 256
    for run_id in RUNS:
        scores = json.loads((finished / "results/analysis" / run_id / "scores.json").read_text())
        assert scores["recon_train"] > 0 and scores["recon_test"] > 0
        assert 0 <= scores["dci_disentanglement"] <= 1 and 0 <= scores["mig"] <= 1
        if "fixint" in run_id or "interp" in run_id:
            assert scores["composition_loss_test"] > 0


def test_tables_match_the_runs(finished):
    tidy = pd.read_csv(finished / "results/summary/scores.csv")
    assert sorted(tidy["run_id"].unique()) == sorted(RUNS)
    assert {"recon_train", "recon_test", "dci_disentanglement", "mig"} <= set(tidy["metric"])
    assert not any(m.startswith("samples") for m in tidy["metric"])
    # Each row reads alone: the run's resolved settings, versions and data source ride along.
    row = tidy[
        (tidy["run_id"] == "dsprites/sqr2tx/vae_fixint/seed0") & (tidy["metric"] == "recon_test")
    ].iloc[0]
    assert row["model.op"] == "fixint" and row["model.latent_size"] == 10 and row["training.epochs"] == 3
    assert row["data.source"] == "procedural" and row["versions.torch"] and row["analysis.preset"] == "fast"
    group = pd.read_csv(finished / "results/summary/groups/failure.csv")
    assert set(group["model.loss"]) == {"vae"} and set(group["data.source"]) == {"procedural"}
    table = (finished / "results/summary/groups/failure.tex").read_text()
    assert "\\begin{tabular}" in table and table.count("\\\\") >= 3  # header + one row per dsprites model
    assert "VAE (fixint)" in table and "kim" not in table


def test_figures_are_images(finished):
    import matplotlib.image as mpimg

    for run_id in RUNS:
        for figure in ("curves", "reconstructions", "hinton", "latents", "traversals"):
            image = mpimg.imread(finished / "results/analysis" / run_id / f"{figure}.png")
            assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0
    preview = mpimg.imread(finished / "results/data/dsprites_preview.png")
    assert preview.shape[0] > 200


def test_nothing_left_to_do_and_report_builds(finished):
    plan = snakemake(finished, "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "Nothing to be done" in plan.stdout + plan.stderr
    report = snakemake(finished, "--report", str(finished / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    html = (finished / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "latent" in html.lower()
