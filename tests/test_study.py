import copy

import pytest
import yaml

from compgen.study import Study, StudyError
from conftest import ROOT, SCHEMA, load_config, run_snakemake, validate_config

BASE = """
datasets:
  dsprites: {subsample: {posX: 2, posY: 2}}
  circles: {}
models:
  vae: {task: unsupervised}
  vae_fixint: {task: composition, op: fixint}
experiments:
  - {name: dsprites, dataset: dsprites, conditions: [sqr2tx, blank_side], models: [vae, vae_fixint]}
  - {name: circles, dataset: circles, conditions: [midpos], models: [vae_fixint], seeds: [0]}
groups:
  circles: {members: [{dataset: circles, condition: midpos}]}
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small study of its own, so each bad-config case edits one known key."""
    path = tmp_path_factory.mktemp("config") / "base.yaml"
    path.write_text(BASE)
    return load_config(path)


def test_neurips_study_config():
    """The NeurIPS study as the original's bin scripts ran it (see the comments in config/config.yaml)."""
    study = Study(load_config(ROOT / "config/config.yaml"))
    # dSprites 4 models x (sqr2tx, iid control, none); 3DShapes 4 x 6 and the sbd4 VAE x 5; MPI3D
    # VAEs x (cyl2vx, iid control, none), cyl2bkg, bkg2cyl and WAEs x (cyl2vx, its iid control,
    # bkg2cyl); Circles and Simple 1 x 2 each; unbiased WAEs 2 x 3; both halves retrained for
    # dSprites fixint and 3DShapes interp; regressors 3; three seeds each.
    assert len(study.runs) == (12 + 24 + 5 + 6 + 2 + 2 + 6 + 4 + 6 + 4 + 3) * 3 == 222
    # One iid control per dataset and backbone, trained as its backbone's failure condition.
    controls = {(r.dataset, r.condition, r.model) for r in study.runs if r.condition.startswith("iid_")}
    assert {(d, m) for d, _, m in controls} == {
        *(("dsprites", m) for m in ("vae_fixint", "vae_interp", "wae_fixint", "wae_interp")),
        *(
            ("shapes3d", m)
            for m in ("vae_fixint", "vae_interp", "wae_fixint", "wae_interp", "vae_interp_sbd4")
        ),
        *(("mpi3d", m) for m in ("vae_fixint_mpi", "vae_interp_mpi", "wae_fixint_mpi", "wae_interp_mpi")),
    }
    control = study.run("mpi3d", "iid_like_cyl2vx+four_shapes+fix_hx", "wae_fixint_mpi", 0).spec["training"]
    assert control == study.run("mpi3d", "cyl2vx+four_shapes+fix_hx", "wae_fixint_mpi", 0).spec["training"]
    retrain = study.run("shapes3d", "shape2ohue", "vae_interp_decoder_retrained", 1).spec
    assert retrain["base"]["run_id"] == "shapes3d/shape2ohue/vae_interp/seed1"
    assert retrain["training"]["rebalance"] == "shape" and retrain["training"]["lr"] == 1e-4
    assert retrain["training"]["epochs"] == 100
    run = study.run("circles", "midpos", "vae_fixint_sbd", 2)
    assert run.spec["training"]["batch_size"] == 16 and run.spec["training"]["lr"] == 3e-4
    assert run.spec["model"]["decoder"] == "sbd3" and run.resources["runtime"] == 120
    assert study.run("simple", "midpos", "vae_fixint_sbd", 0).spec["training"]["lr"] == 1e-4
    sbd4 = study.run("shapes3d", "fhue2whue", "vae_interp_sbd4", 0).spec
    assert sbd4["model"]["decoder"] == "sbd4" and sbd4["training"]["epochs"] == 20
    epochs = lambda cond, model: study.run("mpi3d", cond, model, 0).spec["training"]["epochs"]  # noqa: E731
    assert epochs("cyl2vx+four_shapes+fix_hx", "vae_fixint_mpi") == 50
    assert epochs("cyl2vx+four_shapes+fix_hx", "wae_fixint_mpi") == 200
    assert epochs("cyl2bkg+four_shapes+fix_hx", "vae_interp_mpi") == 100
    wae = study.run("dsprites", "sqr2tx", "wae_interp", 1).spec["model"]
    assert wae["loss"] == "wae" and wae["recon"] == "mse_raw" and wae["mmd_weight"] == 10
    assert wae["mmd"] == "original"  # the paper's numerics
    assert study.run("dsprites", "sqr2tx", "wae_interp_unbiased", 0).spec["model"]["mmd"] == "unbiased"
    # The regressors as the original's `prediction` training: kim (montero on MPI3D), lr 1e-3, 100
    # epochs, batch 64, the best epoch on a held-out 20 %.
    for dataset, condition, model, encoder in [
        ("dsprites", "ell2tx", "regressor", "kim"),
        ("shapes3d", "shape2ohue+even_ohues", "regressor", "kim"),
        ("mpi3d", "cyl2vx+four_shapes+fix_hx", "regressor_mpi", "montero"),
    ]:
        spec = study.run(dataset, condition, model, 0).spec
        assert spec["model"]["encoder"] == encoder
        assert (spec["training"]["lr"], spec["training"]["epochs"], spec["training"]["batch_size"]) == (
            1e-3,
            100,
            64,
        )
        assert (spec["training"]["validation"], spec["training"]["val_fraction"]) == ("holdout", 0.2)
    assert set(study.groups) == {
        "failure_cases",
        "wae_mmd_correction",
        "success_cases",
        "mpi3d_bkg2cyl",
        "shapes3d_conditions",
        "shapes3d_sbd4",
        "circles_simple",
        "retraining",
        "supervised",
    }
    # The main text's MPI3D success case excludes two backgrounds for the cylinder.
    success = {(r.dataset, r.condition) for r in study.groups["success_cases"].runs}
    assert ("mpi3d", "cyl2bkg+four_shapes+fix_hx") in success
    assert ("mpi3d", "bkg2cyl+four_shapes+fix_hx") not in success
    # All-data references sit right after their dataset's conditions, with the same modifiers.
    failure = [(r.dataset, r.condition) for r in study.groups["failure_cases"].runs]
    assert failure.index(("dsprites", "none")) > failure.index(("dsprites", "sqr2tx"))
    assert failure.index(("dsprites", "none")) < failure.index(("shapes3d", "shape2ohue"))
    assert ("mpi3d", "none+four_shapes+fix_hx") in failure and ("mpi3d", "none") not in failure
    # per dataset: the condition's 4 models and their references (MPI3D: VAEs only, as the original)
    assert len(study.groups["failure_cases"].runs) == (4 + 4 + 4 + 4 + 4 + 2) * 3
    assert len(study.groups["supervised"].runs) == 9  # no reference regressors
    assert study.splits_used().count(("mpi3d", "cyl2vx+four_shapes+fix_hx")) == 1


def test_iclr_study_config():
    """The ICLR study with the ICLR code's settings (disent-and-gen scripts/configs, bin scripts)."""
    study = Study(load_config(ROOT / "config/iclr2021.yaml"))
    # dSprites 3 conditions x (VAE, beta 8, 12, CCI; FactorVAE x 3, MLP beta-VAE; 2 decoders);
    # 3DShapes 4 x (4 + 3 + 3 decoders) and the 3 decoders alone on ohue_whue2fhue
    # (run-decoders.sh); MPI3D 5 x (4 + 3 + 1 decoder); the composition task on dSprites' 3
    # conditions and all data x 4 (run-composition.sh); three seeds.
    assert len(study.runs) == (3 * 10 + 4 * 10 + 3 + 5 * 8 + 4 * 4) * 3 == 387
    assert sorted(r.model for r in study.runs if r.condition == "ohue_whue2fhue" and r.seed == 0) == [
        "gt_decoder_decoderdeep_bn",
        "gt_decoder_decoderhiggins",
        "gt_decoder_decoderkim_bn",
    ]
    spec = lambda d, c, m: study.run(d, c, m, 0).spec  # noqa: E731
    vae = spec("dsprites", "sqr2tx", "vae_dsprites")
    assert (vae["model"]["encoder"], vae["model"]["decoder"]) == ("burgess_v2", "burgess_v2")
    assert (vae["training"]["epochs"], vae["training"]["lr"], vae["training"]["batch_size"]) == (30, 1e-4, 64)
    assert spec("shapes3d", "shape2ohue", "vae")["model"]["encoder"] == "kim"
    assert spec("mpi3d", "cyl2hx", "betavae_beta12")["model"]["beta"] == 12
    factor = spec("dsprites", "leave1out", "factorvae_gamma50")
    assert factor["model"]["gamma"] == 50 and factor["model"]["disc_lr"] == 1e-5
    # The ICLR code's discriminator: nn.LeakyReLU() (src/training/loss.py, FactorLoss), slope 0.01.
    assert factor["model"]["disc_slope"] == 0.01
    assert factor["training"]["batch_size"] == 128 and factor["model"]["encoder"] == "kim"
    cci = spec("shapes3d", "missing_fh", "ccivae")["model"]
    assert (cci["gamma"], cci["capacity_max"], cci["capacity_steps"]) == (50, 20, 10000)
    decoder = spec("mpi3d", "objc2horz", "gt_decoder_decoderdeep_bn")
    assert decoder["model"]["inputs"] == "raw" and decoder["model"]["decoder"] == "deep_bn"
    assert (decoder["training"]["lr"], decoder["training"]["epochs"]) == (1e-3, 500)
    assert decoder["training"]["max_steps_per_epoch"] == 10
    assert {r.spec["model"]["task"] for r in study.runs} == {"unsupervised", "gt_decoder", "composition"}


def test_demo_config_is_small():
    demo = Study(load_config(ROOT / "config/demo.yaml"))
    assert (
        demo.grid("dsprites").n < 50_000
        and demo.grid("shapes3d").n < 2_000
        and all(r.seed == 0 for r in demo.runs)
    )


def _key(path) -> str:
    return ".".join(str(p) for p in path)


def _edit(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


_DELETE = object()

SCHEMA_ERRORS = [
    (("training", "epochs"), -1, "config key training.epochs: -1 is less than the minimum of 1"),
    (
        ("experiments", 0, "training"),
        {"epochs": 0},
        "config key experiments[0].training.epochs: 0 is less than the minimum of 1",
    ),
    (("training", "lr"), "fast", "config key training.lr: 'fast' is not of type 'number'"),
    (
        ("training", "val_fraction"),
        1.5,
        "config key training.val_fraction: 1.5 is greater than or equal to the maximum of 1",
    ),
    (("resources", "train", "gpu"), -1, "config key resources.train.gpu: -1 is less than the minimum of 0"),
    (
        ("training", "batchsize"),
        64,
        "config key training.batchsize: unknown key; allowed here: epochs, batch_size, lr,",
    ),
    (
        ("trainig",),
        {"epochs": 3},
        "config key trainig: unknown key; allowed here: datasets, modifiers, conditions, models, training,",
    ),
    (
        ("models", "vae", "latent_dim"),
        3,
        "config key models.vae.latent_dim: unknown key; allowed here: task, op, encoder, decoder, latent_size,",
    ),
    (
        ("models", "vae", "beta"),
        4.0,
        "config key models.vae.beta: applies only when loss is 'betavae' or loss is 'btcvae'",
    ),
    (
        ("models", "vae"),
        {"task": "unsupervised", "loss": "betavae", "gamma": 3.0},
        "config key models.vae.gamma: applies only when loss is 'ccivae' or loss is 'factorvae'",
    ),
    (
        ("models", "vae", "task"),
        "clustering",
        "config key models.vae.task: 'clustering' is not allowed; allowed: unsupervised, composition, supervised, gt_decoder",
    ),
    (
        ("models", "vae", "encoder"),
        "resnet",
        "config key models.vae.encoder: 'resnet' is not allowed; allowed: burgess, kim, abdi, montero",
    ),
    (("models", "vae", "op"), "fixint", "config key models.vae.op: applies only when task is 'composition'"),
    (
        ("models", "vae_fixint", "op"),
        _DELETE,
        "config key models.vae_fixint.op: required when task is 'composition'",
    ),
    (
        ("models", "my-vae"),
        {"task": "unsupervised"},
        "config key models: 'my-vae' is not allowed; expected a name of 1 to 64 letters, digits and underscores",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "test", 0, "above"),
        1,
        "config key conditions.dsprites.sqr2tx.test[0].above: unknown key; allowed here: factor, values, classes, gt, ge, lt, le",
    ),
    (
        ("experiments", 0, "seeds"),
        ["one"],
        "config key experiments[0].seeds[0]: 'one' is not of type 'integer'",
    ),
    (
        ("experiments", 0, "conditions"),
        "sqr2tx",
        "config key experiments[0].conditions: 'sqr2tx' is not of type 'array'",
    ),
    (("experiments", 0, "models"), _DELETE, "config key experiments[0].models: required"),
    (
        ("datasets", "dsprites", "source"),
        "download",
        "config key datasets.dsprites.source: 'download' is not allowed; allowed: auto, procedural, official",
    ),
    (
        ("datasets", "dsprites", "subsample", "posX"),
        0,
        "config key datasets.dsprites.subsample.posX: 0 is less than the minimum of 1",
    ),
    (
        ("analysis", "preset"),
        "slow",
        "config key analysis.preset: 'slow' is not allowed; allowed: fast, paper",
    ),
]


@pytest.mark.parametrize("path,value,message", SCHEMA_ERRORS, ids=[_key(e[0]) for e in SCHEMA_ERRORS])
def test_schema_rejects_bad_keys_and_types_naming_key_and_allowed_values(base, path, value, message):
    config = _edit(copy.deepcopy(base), path, value)
    with pytest.raises(StudyError) as err:
        validate_config(config, SCHEMA)
    assert message in str(err.value)


STUDY_ERRORS = [
    (
        ("datasets", "shapes4d"),
        {},
        "config key datasets.shapes4d: unknown dataset; allowed: circles, dsprites, mpi3d, shapes3d, simple",
    ),
    (
        ("experiments", 0, "dataset"),
        "shapes3d",
        "config key experiments[0] (dsprites).dataset: dataset 'shapes3d' is not under datasets; allowed: circles, dsprites",
    ),
    (
        ("experiments", 0, "conditions"),
        ["sqr2tx", "nowhere"],
        "unknown condition 'nowhere' for dataset 'dsprites'; allowed: blank_side,",
    ),
    (
        ("experiments", 0, "conditions"),
        ["sqr2tx+wide"],
        "unknown modifier 'wide' for dataset 'dsprites'; allowed: ",
    ),
    (
        ("experiments", 0, "models"),
        ["vae", "gan"],
        "config key experiments[0] (dsprites).models[1]: unknown model 'gan'; allowed: vae, vae_fixint",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "test", 1, "factor"),
        "posZ",
        "unknown factor 'posZ'; allowed: shape, scale, orientation, posX, posY",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "factors"),
        ["shape", "colour"],
        "config key conditions.dsprites.sqr2tx.factors: unknown factor 'colour'; allowed: shape, scale, orientation, posX, posY",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "test", 0, "values"),
        [7],
        "factor 'shape' has no value [7.0] on this grid; allowed: [1.0, 2.0, 3.0]",
    ),
    # posX = 1/31 exists on the full grid but not after keeping every 2nd value
    (
        ("conditions", "dsprites", "sqr2tx", "test", 1),
        {"factor": "posX", "values": [1 / 31]},
        "factor 'posX' has no value [0.03225806451612903] on this grid; allowed: [0.0, 0.064516,",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "test", 0),
        {"factor": "shape", "classes": [5]},
        "factor 'shape' has no class [5]; allowed: 0..2",
    ),
    (
        ("conditions", "dsprites", "sqr2tx", "test", 1, "gt"),
        1.5,
        "config key conditions.dsprites.sqr2tx: condition 'sqr2tx': the test set is empty",
    ),
    (
        ("conditions", "dsprites", "blank_side", "train"),
        [{"factor": "posX", "gt": 0.5}],
        "condition 'blank_side': the training set is empty",
    ),
    (
        ("models", "vae_fixint", "latent_size"),
        3,
        "config key models.vae_fixint.latent_size: op 'fixint' needs one latent unit per factor (5 factors",
    ),
    (
        ("models", "vae"),
        {"task": "supervised", "loss": "betavae"},
        "config key models.vae.loss: task 'supervised' has no VAE objective",
    ),
    (
        ("datasets", "dsprites", "subsample"),
        {"colour": 2},
        "config key datasets.dsprites.subsample: unknown factor 'colour'; allowed: shape,",
    ),
    (("datasets", "dsprites", "source"), "official", "config key datasets.dsprites.source:"),
    (
        ("groups", "circles", "members"),
        [{"dataset": "circles", "condition": "corner"}],
        "config key groups.circles.members[0]: no run trains on circles/corner; allowed: circles/midpos, dsprites/blank_side, dsprites/sqr2tx",
    ),
    (
        ("groups", "circles", "models"),
        ["gan"],
        "config key groups.circles.models: unknown model 'gan'; allowed: vae, vae_fixint",
    ),
]


@pytest.mark.parametrize("path,value,message", STUDY_ERRORS, ids=[_key(e[0]) for e in STUDY_ERRORS])
def test_meaningless_configs_are_refused_naming_key_and_allowed_values(
    base, path, value, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no official files here: source official must fail
    config = _edit(copy.deepcopy(base), path, value)
    validate_config(config, SCHEMA)
    with pytest.raises(StudyError) as err:
        Study(config)
    assert message in str(err.value)


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    """Through the real command line: the message reaches the user and nothing runs."""
    config = yaml.safe_load(BASE)
    config["experiments"][0]["conditions"] = ["sqr2tx", "nowhere"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(
        tmp_path, "--configfile", str(tmp_path / "bad.yaml"), "--cores", "1", "-n", timeout=300
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        "invalid configuration: config key experiments[0] (dsprites).conditions[1]: unknown condition 'nowhere'"
        in out
    )
    assert "allowed: blank_side," in out
    assert "Building DAG" not in out and "Job stats" not in out and not (tmp_path / "results").exists()


def test_duplicate_runs_are_refused(base):
    config = copy.deepcopy(base)
    config["experiments"].append(dict(config["experiments"][0], name="again", seeds=[2]))
    with pytest.raises(
        StudyError, match="dsprites/sqr2tx/vae/seed2 is already declared by experiment 'dsprites'"
    ):
        Study(config)


def test_model_training_overrides_win(base):
    config = copy.deepcopy(base)
    config["models"]["vae"]["training"] = {"epochs": 7}
    run = Study(config).run("dsprites", "sqr2tx", "vae", 0)
    assert run.spec["training"]["epochs"] == 7 and "training" not in run.spec["model"]


def test_experiments_with_the_same_name_are_refused(base):
    """Each experiment is a default group and figure by its name: a second one would replace it."""
    config = copy.deepcopy(base)
    config["experiments"].append(dict(config["experiments"][1], name="dsprites", models=["vae"]))
    with pytest.raises(StudyError) as err:
        Study(config)
    assert str(err.value) == (
        "config key experiments[2].name: 'dsprites' is already the name of experiments[0]; "
        "each experiment needs its own name"
    )


def test_a_group_member_listed_twice_is_refused(base):
    config = copy.deepcopy(base)
    member = {"dataset": "dsprites", "condition": "sqr2tx"}
    config["groups"] = {"twice": {"members": [member, dict(member)]}}
    with pytest.raises(
        StudyError, match=r"groups.twice.members\[1\]: dsprites/sqr2tx is already members\[0\]"
    ):
        Study(config)


def test_group_shows_references_with_the_members_modifiers_unless_told_not_to(tmp_path):
    config = yaml.safe_load(BASE)
    config["experiments"][0]["conditions"] = ["sqr2tx", "ell2tx+sparse_posX", "none", "none+sparse_posX"]
    config["experiments"][0]["seeds"] = [0]
    config["datasets"]["dsprites"] = {"subsample": {"posY": 2}}  # keeps sparse_posX's classes
    config["groups"] = {
        "plain": {"members": [{"dataset": "dsprites", "condition": "sqr2tx"}], "models": ["vae"]},
        "sparse": {"members": [{"dataset": "dsprites", "condition": "ell2tx+sparse_posX"}]},
        "without": {"members": [{"dataset": "dsprites", "condition": "sqr2tx"}], "references": False},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    groups = Study(load_config(path)).groups
    shown = lambda g: [(r.condition, r.model) for r in groups[g].runs]  # noqa: E731
    assert shown("plain") == [("sqr2tx", "vae"), ("none", "vae")]
    assert shown("sparse") == [
        ("ell2tx+sparse_posX", "vae"),
        ("ell2tx+sparse_posX", "vae_fixint"),
        ("none+sparse_posX", "vae"),
        ("none+sparse_posX", "vae_fixint"),
    ]
    assert shown("without") == [("sqr2tx", "vae"), ("sqr2tx", "vae_fixint")]


def test_appendix_study_config():
    """The appendix grid: CascadeVAE and LieGroupVAE (run-alts.sh), the dSprites controls
    (run-controls.sh) and the retraining runs (run-retrain.sh)."""
    study = Study(load_config(ROOT / "config/appendix.yaml"))
    # Cascade 1 + 1 + 3 + 3, Lie 1 + 1 + 1 + 2 + 3, controls 4 + 2 + 1, retrain 2 + 1 + 2; 3 seeds.
    assert len(study.runs) == (8 + 8 + 7 + 5) * 3 == 84
    spec = lambda d, c, m: study.run(d, c, m, 0).spec  # noqa: E731
    cascade = spec("shapes3d", "fhue2whue", "cascade4_cascade_shapes3d_fhue2whue")
    assert (cascade["model"]["n_cat"], cascade["model"]["lmbda"], cascade["training"]["epochs"]) == (
        4,
        0.1,
        60,
    )
    assert spec("dsprites", "sqr2tx", "cascade")["training"]["epochs"] == 40
    # run-alts.sh sets lr=0.0001 on the 3DShapes all-data and fhue2whue commands only; shape2ohue's
    # keeps training.cascade's 3e-4, as do dSprites and MPI3D.
    lrs = {
        (d, c, m): spec(d, c, m)["training"]["lr"]
        for d, c, m in [
            ("dsprites", "none", "cascade"),
            ("dsprites", "sqr2tx", "cascade"),
            ("shapes3d", "none", "cascade4_cascade_shapes3d"),
            ("shapes3d", "fhue2whue", "cascade4_cascade_shapes3d_fhue2whue"),
            ("shapes3d", "shape2ohue", "cascade4"),
            ("mpi3d", "cyl2hx+four_shapes+fix_hx", "cascade4"),
        ]
    }
    assert list(lrs.values()) == [3.0e-4, 3.0e-4, 1.0e-4, 1.0e-4, 3.0e-4, 3.0e-4]
    lie = spec("shapes3d", "shape2ohue", "lievae400")
    assert (lie["model"]["subgroup_size"], lie["model"]["hessian_weight"]) == (400, 20)
    assert (lie["training"]["batch_size"], lie["training"]["rebalance"]) == (256, "shape")
    assert spec("dsprites", "sqr2tx_flnk", "vae_fixint")["training"]["rebalance"] == "shape"
    retrain = spec("dsprites", "sqr2tx", "vae_fixint_encoder_retrained")
    assert retrain["base"]["run_id"] == "dsprites/sqr2tx/vae_fixint/seed0"
    assert {len(g.runs) for g in study.groups.values()} and set(study.groups) == {
        "cascade",
        "lievae",
        "controls_dsprites",
        "retraining",
    }
