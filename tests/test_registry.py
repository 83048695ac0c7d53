"""One source of truth: the schema's enumerations are the code's registries, and a task is one
object that the generic training and analysis code drives (a toy task registered here alone)."""

import numpy as np
import pandas as pd
import pytest

from compgen.analysis.evaluate import PRESETS
from compgen.analysis.run_figures import DRAWERS, draw_run_figure
from compgen.config import complete_training, load_schema
from compgen.losses import LOSSES, RECON_KINDS, reconstruction_per_image
from compgen.models import COMPOSITION_OPS, DECODERS, ENCODERS
from compgen.tasks import TASKS, Task, register
from compgen.training.run import train_run
from conftest import analyse_toy

SCHEMA = load_schema()
MODEL = SCHEMA["properties"]["models"]["additionalProperties"]["properties"]


@pytest.mark.parametrize(
    "enumeration, registry",
    [
        (MODEL["task"]["enum"], TASKS),
        (MODEL["encoder"]["enum"], ENCODERS),
        (MODEL["decoder"]["enum"], DECODERS),
        (MODEL["loss"]["enum"], LOSSES),
        (MODEL["op"]["enum"], COMPOSITION_OPS),
        (MODEL["recon"]["enum"], RECON_KINDS),
        (SCHEMA["properties"]["analysis"]["properties"]["preset"]["enum"], PRESETS),
    ],
    ids=["tasks", "encoders", "decoders", "losses", "ops", "recon", "presets"],
)
def test_schema_enumerations_are_the_registries(enumeration, registry):
    assert sorted(enumeration) == sorted(registry)


def test_every_figure_a_task_names_has_a_drawer():
    named = {figure for task in TASKS.values() for figure in task.figures}
    assert named == {"curves", *DRAWERS}


class ToyAutoencoder(Task):
    """A deterministic autoencoder on the reconstruction loss alone: no objective, no sampling."""

    name = "toy_autoencoder"
    uses_objective = False
    figures = ("curves", "reconstructions", "latents")

    def build_model(self, model_cfg, image_shape, n_factors):
        from compgen.models import VAE, build_decoder, build_encoder

        return VAE(
            build_encoder(model_cfg["encoder"], image_shape, model_cfg["latent_size"]),
            build_decoder(model_cfg["decoder"], image_shape, model_cfg["latent_size"]),
        )

    def _loss(self, model, x, recon):
        mu, _ = model.encode(x)
        return reconstruction_per_image(model.decode(mu), x, recon)

    def training_loss(self, model, batch, data, objective, step):
        rec = self._loss(model, data.images(batch), data.recon).mean()
        return {"recon": rec, "loss": rec}, None

    def validation_loss(self, model, batch, data, objective):
        return self._loss(model, data.images(batch), data.recon)

    def encode(self, model, images, codes):
        mu, _ = model.encode(images)
        return mu, model.decode(mu)


@pytest.fixture
def toy_task():
    task = register(ToyAutoencoder())
    yield task
    del TASKS[task.name]


def test_a_task_registered_from_a_test_trains_and_is_analysed_by_the_generic_code(data, tmp_path, toy_task):
    dataset, split = data
    run = {
        "run_id": "toy/corner/ae/seed1",
        "dataset": "toy",
        "condition": "corner",
        "model_name": "ae",
        "seed": 1,
        "threads": 1,
        "model": {
            "task": toy_task.name,
            "encoder": "kim",
            "decoder": "kim",
            "latent_size": 3,
            "recon": "bce",
        },
        # The model is outside the schema (its task is registered here only); training is not.
        "training": complete_training({"epochs": 4, "batch_size": 8, "lr": 1e-3, "device": "cpu"}),
    }
    summary = train_run(dataset, split, run, tmp_path / "run", tmp_path / "ckpt")
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert list(log.columns) == ["epoch", "recon", "loss", "val_recon", "images_per_s", "seconds"]
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert summary["selected_by"] == "val_recon" and summary["data"]["source"] == "test"

    scores = analyse_toy(dataset, split, tmp_path / "run", tmp_path, with_run_info=True)
    assert 0 < scores["recon_train"] < scores["recon_test"] < np.inf  # the held-out corner is harder
    assert set(scores["r2_test"]) == {"x", "y", "size"} and 0 <= scores["dci_disentanglement"] <= 1
    assert scores["provenance"]["model"]["task"] == toy_task.name
    assert scores["provenance"]["training"]["epochs"] == 4 and "torch" in scores["provenance"]["versions"]
    for figure in toy_task.figures:
        draw_run_figure(
            figure, tmp_path / "arrays.npz", tmp_path / "run" / "train_log.csv", tmp_path / f"{figure}.png"
        )
        assert (tmp_path / f"{figure}.png").stat().st_size > 10_000


def test_planning_imports_neither_torch_nor_the_metrics():
    """The Snakefile imports the study and the task registry for every command; torch and
    scikit-learn would add seconds to each plan, so the registry loads them only in its jobs."""
    import subprocess
    import sys

    code = "import sys, compgen.study, compgen.tasks; print(sorted({'torch', 'sklearn', 'scipy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_labels_are_derived_from_the_config_where_not_given():
    from compgen.config import complete_model
    from compgen.tasks import model_labels

    models = {
        "b8": {"task": "unsupervised", "loss": "betavae", "beta": 8},
        "f20": {"task": "unsupervised", "loss": "factorvae", "gamma": 20},
        "wae_interp": {"task": "composition", "op": "interp", "loss": "wae"},
        "reg": {"task": "supervised", "encoder": "kim"},
        "mine": {"task": "unsupervised", "label": "my VAE"},
    }
    labels = model_labels({name: complete_model(cfg) for name, cfg in models.items()})
    assert labels == {
        "b8": "β-VAE (β=8)",
        "f20": "FactorVAE (γ=20)",
        "wae_interp": "WAE-MMD (interp)",
        "reg": "supervised (kim)",
        "mine": "my VAE",
    }
