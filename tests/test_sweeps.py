"""Sweeps (`models.<name>.sweep`) and per-experiment model overrides (`experiments[].model_overrides`):
the models they derive, their names and labels, how experiments and groups refer to them, and the
errors that name the config key at fault (config/README.md, Sweeps and Model overrides)."""

import copy

import pytest
import yaml

from compgen.config import name_part
from compgen.study import Study, StudyError
from compgen.tasks import model_labels
from compgen.training.checkpoints import fingerprint
from conftest import ROOT, merged, run_snakemake, validated

LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())

BASE = """
datasets:
  dsprites: {subsample: {posX: 2, posY: 2}}
models:
  vae: {task: unsupervised, label: VAE}
  betavae: {task: unsupervised, loss: betavae, sweep: {beta: [8, 12]}}
  gt: {task: gt_decoder}
experiments:
  - {name: plain, dataset: dsprites, conditions: [sqr2tx], models: [vae, betavae, gt], seeds: [0]}
"""


def config_of(text: str = BASE, **edits) -> dict:
    """The study `text` (YAML) with top-level `edits`, on the conditions library, not yet validated."""
    return merged(LIBRARY, {**yaml.safe_load(text), **edits})


def study_of(text: str = BASE, **edits) -> tuple[Study, dict]:
    config = validated(config_of(text, **edits))
    return Study(config), config


def refused(text: str = BASE, **edits) -> str:
    with pytest.raises(StudyError) as err:
        study_of(text, **edits)
    return str(err.value)


def models_of(study: Study, experiment: str | None = None) -> list[str]:
    return list(dict.fromkeys(r.model for r in study.runs if experiment in (None, r.experiment)))


# -- sweeps ------------------------------------------------------------------------------------


def test_one_swept_key_gives_one_model_per_value_with_derived_labels():
    study, config = study_of()
    assert models_of(study) == ["vae", "betavae_beta8", "betavae_beta12", "gt"]
    assert "betavae" not in config["models"]  # no model keeps the base's name
    assert study.run("dsprites", "sqr2tx", "betavae_beta12", 0).spec["model"]["beta"] == 12
    labels = model_labels(config["models"])  # what the group tables and figures show
    assert labels["betavae_beta8"] == "β-VAE (β=8)" and labels["betavae_beta12"] == "β-VAE (β=12)"


def test_two_swept_keys_give_the_cartesian_product():
    models = {
        "factorvae": {
            "task": "unsupervised",
            "loss": "factorvae",
            "sweep": {"gamma": [20, 50], "latent_size": [5, 10]},
        }
    }
    experiments = [
        {"name": "e", "dataset": "dsprites", "conditions": ["sqr2tx"], "models": ["factorvae"], "seeds": [0]}
    ]
    study, config = study_of(models=models, experiments=experiments)
    assert models_of(study) == [
        "factorvae_gamma20_latent_size5",
        "factorvae_gamma20_latent_size10",
        "factorvae_gamma50_latent_size5",
        "factorvae_gamma50_latent_size10",
    ]
    spec = study.run("dsprites", "sqr2tx", "factorvae_gamma50_latent_size5", 0).spec["model"]
    assert (spec["gamma"], spec["latent_size"], spec["disc_lr"]) == (50, 5, 1e-4)  # the loss's defaults too
    # The derived label shows gamma only: latent_size does not tell these apart (README, Sweeps).
    assert model_labels(config["models"])["factorvae_gamma20_latent_size10"] == "FactorVAE (γ=20)"


def test_an_explicit_label_gets_the_swept_values_appended():
    models = {
        "vae": {
            "task": "unsupervised",
            "loss": "betavae",
            "label": "VAE",
            "sweep": {"beta": [8], "latent_size": [5]},
        }
    }
    experiments = [
        {"name": "e", "dataset": "dsprites", "conditions": ["sqr2tx"], "models": ["vae"], "seeds": [0]}
    ]
    _, config = study_of(models=models, experiments=experiments)
    assert model_labels(config["models"]) == {"vae_beta8_latent_size5": "VAE (β=8, latent_size=5)"}


@pytest.mark.parametrize(
    "value,part",
    [
        (8, "8"),
        (8.0, "8"),
        (12.5, "12p5"),
        (0.5, "0p5"),
        (1.0e-05, "1em05"),
        (1e20, "1e20"),
        (0.1 + 0.2, "0p30000000000000004"),
        ("montero", "montero"),
    ],
)
def test_values_in_names(value, part):
    assert name_part(value) == part


def test_a_swept_float_is_named_safely():
    models = {
        "factorvae": {"task": "unsupervised", "loss": "factorvae", "sweep": {"disc_lr": [1.0e-05, 2.5e-4]}}
    }
    experiments = [
        {"name": "e", "dataset": "dsprites", "conditions": ["sqr2tx"], "models": ["factorvae"], "seeds": [0]}
    ]
    study, _ = study_of(models=models, experiments=experiments)
    assert models_of(study) == ["factorvae_disc_lr1em05", "factorvae_disc_lr0p00025"]


def test_sweeping_a_key_the_loss_does_not_have_is_refused():
    models = {"betavae": {"task": "unsupervised", "loss": "betavae", "sweep": {"gamma": [20, 50]}}}
    message = refused(models=models)
    assert message.startswith(
        "config key models.betavae.sweep.gamma: cannot be swept, not a key of this model"
    )
    assert "allowed: task, op, encoder, decoder, latent_size, loss, recon, beta" in message


@pytest.mark.parametrize("key", ["training", "label"])
def test_training_and_label_are_not_swept(key):
    models = {"betavae": {"task": "unsupervised", "loss": "betavae", "sweep": {key: ["x"]}}}
    assert refused(models=models).startswith(
        f"config key models.betavae.sweep.{key}: cannot be swept; allowed:"
    )


def test_a_bad_swept_value_is_named_by_its_index():
    models = {"betavae": {"task": "unsupervised", "loss": "betavae", "sweep": {"beta": [8, -1]}}}
    assert refused(models=models).startswith(
        "config key models.betavae.sweep.beta[1]: -1 is less than the minimum of 0"
    )
    models = {
        "betavae": {"task": "unsupervised", "loss": "betavae", "sweep": {"encoder": ["abdi", "resnet"]}}
    }
    assert refused(models=models).startswith(
        "config key models.betavae.sweep.encoder[1]: 'resnet' is not allowed"
    )


def test_a_swept_name_that_another_model_has_is_refused():
    config = yaml.safe_load(BASE)
    config["models"]["betavae_beta8"] = {"task": "unsupervised"}
    assert refused(models=config["models"]) == (
        "config key models.betavae.sweep: beta=8 gives the model name 'betavae_beta8', which is already "
        "the name of models.betavae_beta8; each model needs its own name"
    )


def test_experiments_and_groups_naming_the_base_get_every_expansion():
    text = (
        BASE
        + """
  - {name: one, dataset: dsprites, conditions: [blank_side], models: [betavae_beta12], seeds: [0]}
groups:
  swept: {members: [{dataset: dsprites, condition: sqr2tx}], models: [betavae]}
  single: {members: [{dataset: dsprites, condition: blank_side}], models: [betavae_beta12]}
"""
    )
    study, _ = study_of(text)
    assert models_of(study, "plain") == ["vae", "betavae_beta8", "betavae_beta12", "gt"]
    assert models_of(study, "one") == ["betavae_beta12"]  # an expanded name means that model
    assert [r.model for r in study.groups["swept"].runs] == ["betavae_beta8", "betavae_beta12"]
    assert [r.model for r in study.groups["single"].runs] == ["betavae_beta12"]


def test_an_unknown_model_beside_a_sweep_is_named_where_it_was_written():
    text = BASE.replace("models: [vae, betavae, gt]", "models: [betavae, gan]")
    assert refused(text).startswith(
        "config key experiments[0] (plain).models[1]: unknown model 'gan'; allowed:"
    )


# -- model overrides ---------------------------------------------------------------------------

MONTERO = (
    BASE
    + """
  - name: montero
    dataset: dsprites
    conditions: [sqr2tx]
    models: [vae, betavae, gt]
    seeds: [0]
    model_overrides: {encoder: montero, decoder: montero}
groups:
  betas: {members: [{dataset: dsprites, condition: sqr2tx}], models: [betavae_beta8]}
"""
)


def test_model_overrides_give_models_of_their_own():
    study, config = study_of(MONTERO)
    assert models_of(study, "montero") == [
        "vae_montero",
        "betavae_beta8_montero",
        "betavae_beta12_montero",
        "gt_montero",
    ]
    labels = model_labels(config["models"])
    for model in ("vae", "betavae_beta8", "gt"):
        plain, changed = (
            study.run("dsprites", "sqr2tx", model, 0),
            study.run("dsprites", "sqr2tx", f"{model}_montero", 0),
        )
        # Same dataset and condition, each in its own folder, with its own settings and fingerprint.
        assert changed.run_id == f"dsprites/sqr2tx/{model}_montero/seed0" != plain.run_id
        assert (plain.spec["model"]["encoder"], plain.spec["model"]["decoder"]) == ("abdi", "abdi")
        assert (changed.spec["model"]["encoder"], changed.spec["model"]["decoder"]) == ("montero", "montero")
        assert {k: v for k, v in changed.spec["model"].items() if k not in ("encoder", "decoder")} == {
            k: v for k, v in plain.spec["model"].items() if k not in ("encoder", "decoder")
        }
        assert fingerprint(changed.spec, "split", "data") != fingerprint(plain.spec, "split", "data")
    # An explicit label is kept, a derived one is derived from the changed model.
    assert labels["vae_montero"] == labels["vae"] == "VAE"
    assert labels["betavae_beta8_montero"] == labels["betavae_beta8"] == "β-VAE (β=8)"
    assert (
        labels["gt"] == "ground-truth decoder (abdi)"
        and labels["gt_montero"] == "ground-truth decoder (montero)"
    )
    # A group naming a model takes its overridden version too.
    assert [r.model for r in study.groups["betas"].runs] == ["betavae_beta8", "betavae_beta8_montero"]
    # Every run's model is under models, which the tables and figures label by name.
    assert {r.model for r in study.runs} <= set(config["models"])


def test_a_model_the_overrides_leave_as_it_was_keeps_its_name():
    same = (
        BASE
        + """
  - {name: again, dataset: dsprites, conditions: [CONDITION], models: [vae, betavae], seeds: [0], model_overrides: {latent_size: 10}}
"""
    )
    study, _ = study_of(same.replace("CONDITION", "blank_side"))
    assert models_of(study, "again") == ["vae", "betavae_beta8", "betavae_beta12"]
    # On the same condition that is the same run twice, refused as any duplicate run.
    message = refused(same.replace("CONDITION", "sqr2tx"))
    assert "run dsprites/sqr2tx/vae/seed0 is already declared by experiment 'plain'" in message


def test_a_bad_override_value_is_refused_naming_the_experiment():
    message = refused(MONTERO.replace("{encoder: montero, decoder: montero}", "{encoder: resnet}"))
    assert message.startswith(
        "config key experiments[1] (montero).model_overrides.encoder: 'resnet' is not allowed; allowed: "
    )
    # The same message as in models.
    models = {**yaml.safe_load(BASE)["models"], "vae": {"task": "unsupervised", "encoder": "resnet"}}
    assert refused(models=models).split(": ", 1)[1] == message.split(": ", 1)[1].rsplit(" (model ", 1)[0]
    message = refused(MONTERO.replace("{encoder: montero, decoder: montero}", "{latent_size: 2.0}"))
    assert message.startswith(
        "config key experiments[1] (montero).model_overrides.latent_size: 2.0 is not an integer"
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            "{gamma: 3}",
            "config key experiments[1] (montero).model_overrides.gamma: not a key of model 'vae' (task unsupervised, loss vae); allowed: ",
        ),
        (
            "{training: {lr: 0.1}}",
            "config key experiments[1] (montero).model_overrides.training: model_overrides sets model keys other than label, training, sweep; set training keys under experiments[1] (montero).training",
        ),
        ("{}", "config key experiments[1].model_overrides: {} should be non-empty"),
    ],
)
def test_override_keys_that_do_not_apply_are_refused(overrides, message):
    assert refused(MONTERO.replace("{encoder: montero, decoder: montero}", overrides)).startswith(message)


def test_an_overridden_name_that_another_model_has_is_refused():
    config = yaml.safe_load(MONTERO)
    config["models"]["vae_montero"] = {"task": "unsupervised"}
    assert refused(MONTERO, models=config["models"]) == (
        "config key experiments[1] (montero).model_overrides: model 'vae' with these overrides would be "
        "named 'vae_montero', which is already the name of models.vae_montero; each model needs its own name"
    )


# -- the config once derived -------------------------------------------------------------------


def test_a_derived_config_derives_nothing_more():
    _, config = study_of(MONTERO)
    assert validated(copy.deepcopy(config)) == config


def test_a_study_refuses_a_config_not_derived():
    with pytest.raises(StudyError, match=r"config key models\.betavae\.sweep: not expanded"):
        Study(config_of())
    config = validated(config_of())
    config["experiments"][0]["model_overrides"] = {"encoder": "montero"}
    with pytest.raises(StudyError, match=r"\(plain\)\.model_overrides: not applied to model 'vae'"):
        Study(config)


def test_snakemake_plans_the_derived_runs(tmp_path):
    """Through the Snakefile: the runs and the group tables of the derived models."""
    config = yaml.safe_load(MONTERO)
    config["resources"] = {"train": {"gpu": 0, "cpus": 1, "mem_mb": 1000, "runtime": 10}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    done = run_snakemake(
        tmp_path, "--configfile", str(tmp_path / "study.yaml"), "--cores", "1", "-n", timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for model in ("betavae_beta8", "betavae_beta12_montero", "gt_montero"):
        assert f"results/runs/dsprites/sqr2tx/{model}/seed0" in done.stdout
