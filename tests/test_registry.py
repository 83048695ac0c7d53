"""One source of truth: the schema's enumerations are the code's registries, filled in when the
schema is loaded, and a task is one object that the generic training and analysis code drives (a
toy task registered here alone)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from compgen.analysis.evaluate import PRESETS
from compgen.analysis.run_figures import FIGURES, draw_run_figure
from compgen.config import SCHEMA_PATH, ConfigError, complete_model, complete_training, load_schema
from compgen.losses import LOSSES, RECON_KINDS, reconstruction_per_image
from compgen.models import COMPOSITION_OPS, DECODERS, ENCODERS
from compgen.tasks import TASKS, Task, model_labels, register
from compgen.training.run import train_run
from conftest import ROOT, analyse_toy

SCHEMA = load_schema()
MODEL = SCHEMA["properties"]["models"]["additionalProperties"]["properties"]
CLAIM = SCHEMA["properties"]["claims"]["additionalProperties"]["properties"]


@pytest.mark.parametrize(
    "enumeration, registry",
    [
        (MODEL["task"]["enum"], TASKS),
        (MODEL["encoder"]["enum"], ENCODERS),
        (MODEL["decoder"]["enum"], DECODERS),
        (MODEL["loss"]["enum"], LOSSES),
        (MODEL["op"]["enum"], COMPOSITION_OPS),
        (MODEL["recon"]["enum"], RECON_KINDS),
        (CLAIM["task"]["oneOf"][0]["enum"], TASKS),
        (CLAIM["task"]["oneOf"][1]["items"]["enum"], TASKS),
        (CLAIM["checks"]["items"]["properties"]["task_ratio"]["properties"]["task"]["enum"], TASKS),
        (CLAIM["fit"]["properties"]["tasks"]["propertyNames"]["enum"], TASKS),
        (SCHEMA["properties"]["analysis"]["properties"]["preset"]["enum"], PRESETS),
    ],
    ids=[
        "tasks",
        "encoders",
        "decoders",
        "losses",
        "ops",
        "recon",
        "claim_task",
        "claim_tasks",
        "task_ratio",
        "fit_tasks",
        "presets",
    ],
)
def test_loaded_schema_enumerations_are_the_registries(enumeration, registry):
    assert list(enumeration) == list(registry)


def _enumerations(node, path=""):
    """(path, enum) of every enumeration and const in a schema tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("enum", "const"):
                yield path, value
            else:
                yield from _enumerations(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _enumerations(value, f"{path}[{i}]")


def test_the_schema_file_writes_no_registry_name():
    """The file as written lists no task, loss, encoder, decoder, op or figure names, nor a loss's
    branch (its hyper-parameters): they are all the registries', filled in at load. (A task's own
    settings are still the file's, in `if task == <name>` branches.)"""
    raw = yaml.safe_load(SCHEMA_PATH.read_text())
    model = raw["properties"]["models"]["additionalProperties"]
    registries = [TASKS, LOSSES, ENCODERS, DECODERS, COMPOSITION_OPS, FIGURES]
    written = [
        (path, value)
        for path, value in _enumerations(raw)
        if isinstance(value, list) and any(set(value) <= set(registry) for registry in registries)
    ]
    assert written == []
    for key in ("task", "loss", "encoder", "decoder", "op"):
        assert "enum" not in model["properties"][key]
    assert [entry for entry in model["allOf"] if "loss" in entry.get("if", {}).get("properties", {})] == []
    # Loaded, every loss has its branch with its hyper-parameters and their defaults.
    loaded = SCHEMA["properties"]["models"]["additionalProperties"]["allOf"]
    branches = {
        entry["if"]["properties"]["loss"]["const"]: entry["then"]["properties"]
        for entry in loaded
        if "loss" in entry.get("if", {}).get("properties", {})
    }
    assert list(branches) == list(LOSSES)
    for name, loss in LOSSES.items():
        assert branches[name] == {"recon": {"default": loss.recon}, **loss.hyper}


def test_a_loss_registered_at_run_time_is_in_the_schema_with_its_defaults():
    from compgen.losses import Loss, build_objective, register_loss

    register_loss(
        "toy_loss",
        Loss(
            "toy", "compgen.losses.objectives:BetaVAELoss", hyper={"beta": {"type": "number", "default": 2.5}}
        ),
    )
    try:
        model = complete_model({"task": "unsupervised", "loss": "toy_loss"})
        assert model["beta"] == 2.5 and model["recon"] == "bce"
        assert build_objective(model, 10).beta == 2.5
        with pytest.raises(ConfigError, match="toy_loss"):  # its key only with it
            complete_model({"task": "unsupervised", "loss": "vae", "beta": 1})
    finally:
        LOSSES.unregister("toy_loss")
    with pytest.raises(ConfigError, match="allowed: vae, betavae"):
        complete_model({"task": "unsupervised", "loss": "toy_loss"})


def test_every_figure_a_task_names_is_registered_with_a_caption():
    named = {figure for task in TASKS.values() for figure in task.figures}
    assert named == set(FIGURES)
    captions = {name: FIGURES[name].caption_for("m1", 3, "dsprites", "c2") for name in FIGURES}
    assert all("**m1** (seed 3) on dsprites / c2" in caption for caption in captions.values())
    assert len(set(captions.values())) == len(captions)  # no figure borrows another's caption


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
    TASKS.unregister(task.name)


def test_a_task_registered_from_a_test_trains_and_is_analysed_by_the_generic_code(data, tmp_path, toy_task):
    dataset, split = data
    run = {
        "run_id": "toy/corner/ae/seed1",
        "dataset": "toy",
        "condition": "corner",
        "model_name": "ae",
        "seed": 1,
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


def test_a_task_without_a_vae_loss_is_labelled_by_its_title_not_the_default_loss(toy_task):
    cfg = {"task": toy_task.name, "loss": "vae"}  # loss filled in by the schema, but unused
    assert model_labels({"ae": cfg}) == {"ae": "toy_autoencoder"}
    type(toy_task).title = "toy AE"
    try:
        assert model_labels({"ae": cfg}) == {"ae": "toy AE"}
    finally:
        type(toy_task).title = None
    assert model_labels({"v": {"task": "unsupervised", "loss": "vae"}}) == {"v": "VAE"}


def _fake_plugin(site, dist: str, module_source: str, entry_points: str):
    """A distribution installed in `site` the way pip installs one: a module and its dist-info."""
    (site / f"{dist}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _run_with(site, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "src")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_entry_points_join_every_registry_in_a_fresh_process(tmp_path):
    _fake_plugin(
        tmp_path,
        "toyplug",
        """
        from compgen.analysis.run_figures import RunFigure
        from compgen.losses import Loss
        from compgen.models import Architecture
        from compgen.tasks.unsupervised import Unsupervised

        class Plain(Unsupervised):
            name = "plain"

        TASK = Plain()
        LOSS = Loss("Toy", "compgen.losses.objectives:BetaVAELoss", hyper={"beta": {"type": "number", "default": 3.0}})
        ENCODER = Architecture("ConvEncoder", {"conv": (8,), "fc": (16,)})
        FIGURE = RunFigure("Toy of {model}", lambda arrays, out_path, **settings: None)
        """,
        """
        [compgen.tasks]
        plain = toyplug:TASK
        [compgen.losses]
        toy = toyplug:LOSS
        [compgen.encoders]
        tiny = toyplug:ENCODER
        [compgen.decoders]
        tiny = toyplug:ENCODER
        [compgen.figures]
        toyfig = toyplug:FIGURE
        """,
    )
    code = """
import sys
from compgen.config import complete_model, load_schema
model = load_schema()["properties"]["models"]["additionalProperties"]["properties"]
print(model["task"]["enum"][-1], model["loss"]["enum"][-1], model["encoder"]["enum"][-1], model["decoder"]["enum"][-1])
print(complete_model({"task": "plain", "loss": "toy", "encoder": "tiny"}))
from compgen.analysis.run_figures import figure_caption
print(figure_caption("toyfig", "m", 0, "d", "c"), sorted({"torch", "matplotlib"} & set(sys.modules)))
"""
    done = _run_with(tmp_path, code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "plain toy tiny tiny"
    assert "'task': 'plain', 'loss': 'toy', 'encoder': 'tiny'" in lines[1] and "'beta': 3.0" in lines[1]
    assert lines[2] == "Toy of m []"  # listing and validating imported no torch, no matplotlib


def test_an_entry_point_with_a_built_in_name_is_an_error_naming_its_distribution(tmp_path):
    _fake_plugin(
        tmp_path,
        "clashing",
        "LOSS = None\n",
        """
        [compgen.losses]
        betavae = clashing:LOSS
        """,
    )
    done = _run_with(tmp_path, "from compgen.losses import LOSSES; list(LOSSES)")
    assert done.returncode != 0
    assert (
        "loss 'betavae' of distribution clashing clashes with the loss of that name from compgen"
        in done.stderr
    )


def test_planning_imports_neither_torch_nor_the_metrics():
    """The Snakefile imports the study and the task registry for every command; torch and
    scikit-learn would add seconds to each plan, so the registry loads them only in its jobs."""
    import subprocess
    import sys

    code = (
        "import sys, compgen.study, compgen.tasks, compgen.config as c; c.complete_model({'task': 'unsupervised'});"
        " print(sorted({'torch', 'sklearn', 'scipy', 'matplotlib'} & set(sys.modules)))"
    )
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
