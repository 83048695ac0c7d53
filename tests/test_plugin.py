"""examples/plugin, an installable compgen plugin (the DIP-VAE-I loss and a denoising task): its
loss computes Kumar et al.'s regulariser, and installed with pip into a folder of its own (the
project's environment untouched) it is found by every job of a study that uses both pieces."""

import os
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from conftest import ROOT, run_snakemake

PLUGIN = ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_module():
    sys.path.insert(0, str(PLUGIN / "src"))
    try:
        import compgen_dipvae
        import compgen_dipvae.dipvae

        yield compgen_dipvae
    finally:
        sys.path.remove(str(PLUGIN / "src"))
        for name in [m for m in sys.modules if m.startswith("compgen_dipvae")]:
            del sys.modules[name]


def test_dip_vae_i_penalises_the_covariance_of_the_means_as_kumar_et_al(plugin_module):
    loss_class = plugin_module.DIP_VAE_I.objective_class()
    objective = loss_class("bce", 0, lambda_od=10.0, lambda_d=100.0)
    torch.manual_seed(0)
    mu, logvar = torch.randn(64, 3) * torch.tensor([1.0, 2.0, 0.5]), torch.zeros(64, 3)
    mu[:, 2] += 0.3 * mu[:, 0]  # correlated units
    penalty, parts = objective.penalty(mu, logvar, mu, step=0)
    cov = torch.cov(mu.T, correction=0)
    off = (cov - torch.diag(torch.diagonal(cov))).pow(2).sum()
    diag = (torch.diagonal(cov) - 1).pow(2).sum()
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
    assert torch.allclose(parts["dip_od"], off) and torch.allclose(parts["dip_d"], diag)
    assert torch.allclose(penalty, kl + 10 * off + 100 * diag)
    # Whitened means (identity covariance) cost nothing beyond the KL.
    white = torch.linalg.solve(torch.linalg.cholesky(cov), (mu - mu.mean(0)).T).T
    _, parts = objective.penalty(white, logvar, white, step=0)
    assert parts["dip_od"] < 1e-8 and parts["dip_d"] < 1e-8


def test_the_plugin_declares_its_hyper_parameters_with_kumar_et_al_s_defaults(plugin_module):
    hyper = plugin_module.DIP_VAE_I.hyper
    assert {k: v["default"] for k, v in hyper.items()} == {"lambda_od": 10.0, "lambda_d": 100.0}


STUDY = """
datasets:
  circles:
    subsample: {x: 2, y: 2}
conditions:
  circles:
    corner:
      family: recomb2range
      test:
        - {factor: x, gt: 0.5}
        - {factor: y, gt: 0.5}
models:
  dip: {task: unsupervised, loss: dipvae1, lambda_od: 5, encoder: kim, decoder: kim, latent_size: 4}
  denoise: {task: denoising, loss: dipvae1, encoder: kim, decoder: kim, latent_size: 4}
training: {epochs: 2, batch_size: 16, lr: 1.0e-3, max_steps_per_epoch: 4, device: cpu}
resources:
  train: {gpu: 0, cpus: 1, mem_mb: 1000, runtime: 10}
experiments:
  - {name: plugin, dataset: circles, conditions: [corner], models: [dip, denoise], seeds: [0]}
analysis: {preset: fast, n_images: 4}
claims:
  P1:
    paper: the plugin example
    wording: The denoising DIP-VAE-I reconstructs held-out combinations no worse than trained ones.
    task: denoising
    measure: gap
    fit: {min: 0, converged: false}
    checks:
      - runs:
          - {dataset: circles, condition: corner}
        criterion: {le: 1000}
"""


@pytest.mark.workflow
def test_the_plugin_installed_apart_runs_a_study_to_its_claims(tmp_path):
    source, site, workdir = tmp_path / "plugin", tmp_path / "site", tmp_path / "study"
    shutil.copytree(PLUGIN, source)  # the build leaves nothing in the checkout
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert list(site.glob("compgen_dipvae-0.1.0.dist-info/entry_points.txt"))
    workdir.mkdir()
    (workdir / "study.yaml").write_text(textwrap.dedent(STUDY))
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = run_snakemake(workdir, "--configfile", str(workdir / "study.yaml"), "--cores", "2", env=env)
    assert done.returncode == 0, done.stderr[-4000:]

    runs = workdir / "results" / "runs" / "circles" / "corner"
    for model in ("dip", "denoise"):
        log = pd.read_csv(runs / model / "seed0" / "train_log.csv")
        assert {"kl", "dip_od", "dip_d"} <= set(log.columns)  # the plugin loss's terms
        assert len(log) == 2 and (log["dip_d"] > 0).all() and log["loss"].iloc[-1] < log["loss"].iloc[0]
    claims = pd.read_csv(workdir / "results" / "summary" / "claims.csv")
    mine = claims[claims["claim"] == "P1"]
    assert len(mine) == 1 and mine["model"].tolist() == ["denoise"]
    table = pd.read_csv(workdir / "results" / "summary" / "groups" / "plugin.csv")  # models by label
    assert set(table["model"]) == {"DIP-VAE-I (λod=5, λd=100)", "DIP-VAE-I (λod=10, λd=100), denoising"}
