"""Retraining (encoder or decoder?): a composition run's backbone taken over with one half frozen
and the other trained afresh, and the study's DAG edge from a retrain run to its base."""

import pandas as pd
import pytest
import torch
import yaml

from compgen.study import Study, StudyError
from compgen.tasks import load_trained
from compgen.training.run import train_run
from conftest import load_config, run_snakemake
from test_engine import make_run


@pytest.fixture(scope="module")
def base_run(data, tmp_path_factory):
    """A trained composition model on the toy grid: the run a retrain takes over."""
    out = tmp_path_factory.mktemp("base")
    dataset, split = data
    train_run(dataset, split, make_run("composition", epochs=2), out / "run", out / "ckpt")
    return out / "run" / "model.pt"


def retrain_run(base_path, half, epochs=3):
    run = make_run("retrain", epochs=epochs, model_keys={"base": "kim", "retrain": half})
    run["base"] = {"run_id": "toy-composition", "model_path": str(base_path)}
    return run


@pytest.mark.parametrize(("half", "frozen"), [("decoder", "encoder"), ("encoder", "decoder")])
def test_retrain_keeps_the_frozen_half_bit_identical_and_learns_the_other(
    data, base_run, tmp_path, half, frozen
):
    dataset, split = data
    summary = train_run(dataset, split, retrain_run(base_run, half), tmp_path / "run", tmp_path / "ckpt")
    base, _ = load_trained(base_run)
    model, payload = load_trained(tmp_path / "run" / "model.pt")
    assert payload["model_config"]["task"] == "retrain" and summary["epochs"] == 3
    for name, tensor in getattr(base.vae, frozen).state_dict().items():
        assert torch.equal(getattr(model, frozen).state_dict()[name], tensor), name
    retrained = getattr(model, half).state_dict()
    assert any(not torch.equal(retrained[n], t) for n, t in getattr(base.vae, half).state_dict().items())
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]


def test_retrain_without_its_base_model_is_refused(data, tmp_path):
    run = make_run("retrain", model_keys={"base": "kim", "retrain": "decoder"})
    with pytest.raises(ValueError, match="needs its base run's model.pt"):
        train_run(*data, run, tmp_path / "run", tmp_path / "ckpt")


STUDY = """
datasets:
  circles: {}
models:
  vae_fixint: {task: composition, op: fixint, loss: vae, encoder: kim, decoder: kim, latent_size: 4}
  decoder_retrained: {task: retrain, base: vae_fixint, retrain: decoder, label: "VAE (fixint), decoder retrained"}
training: {epochs: 1, batch_size: 32, max_steps_per_epoch: 2}
resources:
  train: {gpu: 0, cpus: 1, mem_mb: 1000, runtime: 10}
experiments:
  - {name: circles, dataset: circles, conditions: [shape2px], models: [vae_fixint, decoder_retrained], seeds: [0]}
analysis: {preset: fast, n_images: 2}
"""


def _study(tmp_path, text=STUDY):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_retrain_spec_carries_its_base_so_changing_the_base_reruns_it(tmp_path):
    study = Study(load_config(_study(tmp_path)))
    spec = study.run("circles", "shape2px", "decoder_retrained", 0).spec
    assert spec["base"]["run_id"] == "circles/shape2px/vae_fixint/seed0"
    assert (spec["model"]["encoder"], spec["model"]["latent_size"]) == ("kim", 4)  # from the base
    changed = yaml.safe_load(STUDY)
    changed["models"]["vae_fixint"]["latent_size"] = 5
    other = Study(load_config(_study(tmp_path, yaml.safe_dump(changed))))
    assert other.run("circles", "shape2px", "decoder_retrained", 0).spec != spec


def test_retrain_of_a_model_the_study_does_not_train_is_refused(tmp_path):
    config = yaml.safe_load(STUDY)
    config["experiments"][0]["models"] = ["decoder_retrained"]
    with pytest.raises(
        StudyError, match=r"models.decoder_retrained.base: no run circles/shape2px/vae_fixint/seed0"
    ):
        Study(load_config(_study(tmp_path, yaml.safe_dump(config))))


@pytest.mark.workflow
def test_the_retrain_job_depends_on_its_base_model(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", str(_study(tmp_path)), "--rerun-triggers", "input")
    assert result.returncode == 0, result.stderr
    jobs = result.stdout.split("\nrule ")
    retrain = next(j for j in jobs if j.startswith("train:") and "decoder_retrained" in j)
    assert "results/runs/circles/shape2px/vae_fixint/seed0/model.pt" in retrain


def test_a_retrain_of_a_base_that_is_no_model_says_so(tmp_path):
    config = yaml.safe_load(STUDY)
    config["models"]["decoder_retrained"]["base"] = "vae_fixnt"
    with pytest.raises(StudyError) as err:
        Study(load_config(_study(tmp_path, yaml.safe_dump(config))))
    assert str(err.value) == (
        "config key models.decoder_retrained.base: 'vae_fixnt' is not a model of this study; a retrain "
        "names the model whose run it takes over, one of: vae_fixint"
    )


def test_a_retrain_whose_base_model_overrides_renamed_says_so(tmp_path):
    config = yaml.safe_load(STUDY)
    config["experiments"][0]["model_overrides"] = {"latent_size": 6}
    with pytest.raises(StudyError) as err:
        Study(load_config(_study(tmp_path, yaml.safe_dump(config))))
    assert str(err.value) == (
        "config key models.decoder_retrained.base: no run circles/shape2px/vae_fixint/seed0 to retrain: "
        "experiment 'circles' runs 'vae_fixint' as 'vae_fixint_circles', because its model_overrides "
        "change it; a retrain takes over its base as named, so run 'vae_fixint' unchanged on "
        "circles/shape2px with seed 0 too, or move the retrain to an experiment without model_overrides"
    )
