import copy

import pytest
from snakemake.exceptions import WorkflowError

from compgen.study import Study, StudyError
from conftest import ROOT, load_config, validated


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
    study = Study(load_config(ROOT / "config/config.yaml"))
    # 4 composition models on 1 + 4 + 2 + 2 + 2 conditions, 3 supervised runs, 3 seeds each.
    assert len(study.runs) == (4 * 11 + 3) * 3 == 141
    run = study.run("circles", "midpos", "vae_fixint_sbd", 2)
    assert run.spec["training"]["batch_size"] == 16 and run.spec["training"]["lr"] == 3e-4
    assert run.spec["model"]["decoder"] == "sbd" and run.resources["runtime"] == 120
    assert study.run("mpi3d", "cyl2vx+four_shapes+fix_hx", "vae_fixint_mpi", 0).spec["training"]["epochs"] == 50
    assert study.run("mpi3d", "cyl2vx+four_shapes+fix_hx", "wae_fixint_mpi", 0).spec["training"]["epochs"] == 200
    wae = study.run("dsprites", "sqr2tx", "wae_interp", 1).spec["model"]
    assert wae["loss"] == "wae" and wae["recon"] == "mse" and wae["mmd_weight"] == 10
    assert set(study.groups) == {"failure_cases", "success_cases", "shapes3d_conditions", "circles_simple", "supervised"}
    assert len(study.groups["supervised"].runs) == 9
    assert study.splits_used().count(("mpi3d", "cyl2vx+four_shapes+fix_hx")) == 1


def test_iclr_study_config():
    study = Study(load_config(ROOT / "config/iclr2021.yaml"))
    assert len(study.runs) == 8 * 9 * 3 == 216
    assert {r.spec["model"]["task"] for r in study.runs} == {"unsupervised", "gt_decoder"}
    assert study.run("dsprites", "leave1out", "factor50", 0).spec["model"]["gamma"] == 50
    assert {len(g.runs) for g in study.groups.values()} == {72}


def test_demo_config_is_small():
    demo = Study(load_config(ROOT / "config/demo.yaml"))
    assert demo.grid("dsprites").n < 50_000 and demo.grid("shapes3d").n < 2_000 and all(r.seed == 0 for r in demo.runs)


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
    (("training", "epochs"), -1, "epochs"),
    (("training", "lr"), "fast", "lr"),
    (("training", "batchsize"), 64, "batchsize"),
    (("models", "vae", "task"), "clustering", "task"),
    (("models", "vae", "op"), "fixint", "op"),
    (("models", "vae_fixint", "op"), _DELETE, "op"),
    (("conditions", "dsprites", "sqr2tx", "test", 0, "above"), 1, "above"),
    (("experiments", 0, "seeds"), ["one"], "seeds"),
    (("datasets", "dsprites", "source"), "download", "source"),
]


@pytest.mark.parametrize("path,value,named", SCHEMA_ERRORS, ids=[e[2] + str(i) for i, e in enumerate(SCHEMA_ERRORS)])
def test_schema_rejects_bad_keys_and_types(base, path, value, named):
    config = _edit(copy.deepcopy(base), path, value)
    with pytest.raises(WorkflowError) as err:
        validated(config)
    assert named in str(err.value)


STUDY_ERRORS = [
    (("experiments", 0, "dataset"), "shapes4d", "experiments[0] (dsprites).dataset"),
    (("experiments", 0, "conditions"), ["sqr2tx", "nowhere"], "unknown condition 'nowhere'"),
    (("experiments", 0, "conditions"), ["sqr2tx+wide"], "unknown modifier 'wide'"),
    (("experiments", 0, "models"), ["vae", "gan"], "unknown model 'gan'"),
    (("conditions", "dsprites", "sqr2tx", "test", 1, "factor"), "posZ", "unknown factor 'posZ'"),
    (("conditions", "dsprites", "sqr2tx", "test", 0, "values"), [7], "has no value [7.0]"),
    (("conditions", "dsprites", "sqr2tx", "test", 1, "gt"), 1.5, "test set is empty"),
    (("models", "vae_fixint", "latent_size"), 3, "models.vae_fixint.latent_size"),
    (("datasets", "dsprites", "subsample"), {"colour": 2}, "datasets.dsprites.subsample"),
    (("groups", "circles", "members"), [{"dataset": "circles", "condition": "corner"}], "groups.circles.members[0]"),
]


@pytest.mark.parametrize("path,value,message", STUDY_ERRORS, ids=[m for _, _, m in STUDY_ERRORS])
def test_meaningless_configs_are_refused_with_the_key(base, path, value, message):
    config = _edit(copy.deepcopy(base), path, value)
    validated(config)
    with pytest.raises(StudyError) as err:
        Study(config)
    assert message in str(err.value)


def test_duplicate_runs_are_refused(base):
    config = copy.deepcopy(base)
    config["experiments"].append(dict(config["experiments"][0], name="again", seeds=[2]))
    with pytest.raises(StudyError, match="dsprites/sqr2tx/vae/seed2 is already declared by experiment 'dsprites'"):
        Study(config)


def test_model_training_overrides_win(base):
    config = copy.deepcopy(base)
    config["models"]["vae"]["training"] = {"epochs": 7}
    run = Study(config).run("dsprites", "sqr2tx", "vae", 0)
    assert run.spec["training"]["epochs"] == 7 and "training" not in run.spec["model"]
