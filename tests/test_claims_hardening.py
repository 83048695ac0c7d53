"""Claims, names and sweeps as an adversarial study writes them: a study that redefines a
condition a shipped claim names, claims naming what does not exist or what has no held-out set,
bounds that are not numbers, names too long for a file system, sweeps that make thousands of
models, retrains whose base is missing for a reason the user should hear. Each is refused before
any job starts, with one line naming the key and what to do."""

import copy
import math

import pytest
import yaml

from compgen.config import CLAIMS_PATH, ConfigError
from compgen.config import validate_config as validate_study
from compgen.study import Study, StudyError
from conftest import ROOT, merged, run_snakemake

SHIPPED = yaml.safe_load(CLAIMS_PATH.read_text())["claims"]
LIBRARY = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())


def demo(extra: dict | None = None) -> dict:
    """config/demo.yaml as the Snakefile merges it (conditions, shipped claims, study), plus `extra`."""
    study = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config = merged(merged(copy.deepcopy(LIBRARY), {"claims": copy.deepcopy(SHIPPED)}), study)
    return merged(config, copy.deepcopy(extra or {}))


def claim(runs, measure="gap", criterion=None, **extra) -> dict:
    return {
        "paper": "test",
        "wording": "a claim",
        "task": "composition",
        "measure": measure,
        "checks": [{"runs": runs, "criterion": criterion or {"ge": 2}}],
        **extra,
    }


def study_of(config: dict) -> Study:
    return Study(validate_study(config))


def test_the_demo_with_the_shipped_claims_is_a_valid_study():
    study_of(demo())


# -- case 2: a study redefining a condition or modifier a shipped claim names ------------------------


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"conditions": {"dsprites": {"sqr2tx": {"test": [{"factor": "shape", "values": [1]}, {"factor": "posX", "lt": 0.2}]}}}},
         "conditions.dsprites.sqr2tx.test"),
        ({"conditions": {"dsprites": {"iid_like_sqr2tx": {"seed": 3}}}}, "conditions.dsprites.iid_like_sqr2tx.seed"),
        ({"conditions": {"shapes3d": {"shape2ohue": {"factors": ["shape", "wall_hue"]}}}}, "conditions.shapes3d.shape2ohue.factors"),
        ({"modifiers": {"mpi3d": {"fix_hx": [{"factor": "horizontal_axis", "values": [1]}]}}}, "modifiers.mpi3d.fix_hx"),
        ({"conditions": {"shapes3d": {"shape2ohue": {"train": [{"factor": "shape", "values": [0]}]}}}}, "conditions.shapes3d.shape2ohue.train"),
    ],
    ids=["test-filter", "control-seed", "factors", "modifier", "added-train"],
)  # fmt: skip
def test_a_study_cannot_redefine_a_library_entry_a_shipped_claim_names(extra, key):
    with pytest.raises(ConfigError) as err:
        validate_study(demo(extra))
    message = str(err.value)
    assert f"config key {key}:" in message
    assert "config/conditions.yaml" in message and "shipped claim C" in message
    assert "under a new name" in message


def test_a_study_may_describe_a_claimed_condition_and_redefine_an_unclaimed_one():
    extra = {
        "conditions": {
            "dsprites": {
                "sqr2tx": {"description": "my words"},
                "sqr2scl": {"test": [{"factor": "shape", "values": [1]}, {"factor": "scale", "gt": 0.9}]},
            }
        }
    }
    study_of(demo(extra))


def test_a_copy_of_a_claimed_condition_under_its_own_name_is_fine():
    own = copy.deepcopy(LIBRARY["conditions"]["dsprites"]["sqr2tx"])
    own["test"][1] = {"factor": "posX", "lt": 0.2}
    study_of(demo({"conditions": {"dsprites": {"sqr2left": own}}}))


# -- case 3: claims naming what does not exist --------------------------------------------------------


@pytest.mark.parametrize(
    "target, key, message",
    [
        ({"dataset": "dsprite", "condition": "sqr2tx"}, "dataset", "unknown dataset 'dsprite'; allowed: circles, dsprites, mpi3d, shapes3d, simple"),
        ({"dataset": "dsprites", "condition": "sqr2txx"}, "condition", "unknown condition 'sqr2txx' for dataset 'dsprites'"),
        ({"dataset": "dsprites", "condition": "sqr2tx+nope"}, "condition", "unknown modifier 'nope' for dataset 'dsprites'"),
        ({"dataset": "dsprites", "condition": "sqr2tx", "versus": "ell2txx"}, "versus", "unknown condition 'ell2txx'"),
    ],
    ids=["dataset", "condition", "modifier", "versus"],
)  # fmt: skip
def test_a_claim_naming_an_unknown_dataset_or_condition_is_refused(target, key, message):
    criterion = {"gt": "versus"} if "versus" in target else {"ge": 2}
    config = demo({"claims": {"X1": claim([target], criterion=criterion)}})
    with pytest.raises(StudyError) as err:
        study_of(config)
    assert f"config key claims.X1.checks[0].runs[0].{key}: {message}" in str(err.value)


def test_a_claim_naming_an_unknown_control_is_refused():
    check = {"runs": [{"dataset": "dsprites", "condition": "sqr2tx", "control": "iid_like_sqr2txx"}],
             "control_ratio": {"ge": 2}}  # fmt: skip
    config = demo({"claims": {"X1": {**claim([]), "checks": [check]}}})
    with pytest.raises(
        StudyError, match=r"claims\.X1\.checks\[0\]\.runs\[0\]\.control: unknown condition 'iid_like_sqr2txx'"
    ):
        study_of(config)


def test_a_claim_naming_an_unknown_model_is_refused():
    own = claim([{"dataset": "dsprites", "condition": "sqr2tx"}])
    del own["task"]
    own["models"] = ["vae_fixint", "vae_fixnt"]
    with pytest.raises(StudyError) as err:
        study_of(demo({"claims": {"X1": own}}))
    assert str(err.value).startswith("config key claims.X1.models[1]: unknown model 'vae_fixnt'; allowed: ")


def test_shipped_claims_on_datasets_a_study_does_not_run_stay_valid():
    """Without MPI3D, C1's MPI3D row still names library conditions, so it plans (and reads
    `not run`, a choice of the study)."""
    config = demo()
    del config["datasets"]["mpi3d"]
    config["experiments"] = [e for e in config["experiments"] if e["dataset"] != "mpi3d"]
    config["groups"]["failure_cases"]["members"].pop()
    study = study_of(config)
    assert "mpi3d" not in study.config["datasets"]


# -- case 9: a held-out measure on a condition without a held-out set --------------------------------


@pytest.mark.parametrize("field", ["condition", "versus"])
def test_a_held_out_measure_on_an_all_data_reference_is_refused(field):
    target = {"dataset": "dsprites", "condition": "sqr2tx"}
    target[field] = "none"
    criterion = {"lt": "versus"} if field == "versus" else {"ge": 2}
    config = demo({"claims": {"X1": claim([target], criterion=criterion)}})
    with pytest.raises(StudyError) as err:
        study_of(config)
    assert (
        f"config key claims.X1.checks[0].runs[0].{field}: 'none' holds nothing out (family none), "
        "so measure 'gap' (of held-out images) has no value there" in str(err.value)
    )


def test_a_training_measure_on_an_all_data_reference_is_fine():
    target = {"dataset": "dsprites", "condition": "none"}
    study_of(demo({"claims": {"X1": claim([target], measure="recon_excess_train", criterion={"le": 100})}}))


# -- case 8: bounds that are not finite numbers -------------------------------------------------------


@pytest.mark.parametrize(
    "where, value",
    [(("checks", 0, "criterion"), {"ge": math.nan}), (("checks", 0, "criterion"), {"le": math.inf}),
     (("fit",), {"min": -math.inf})],
    ids=["nan", "inf", "fit-min"],
)  # fmt: skip
def test_non_finite_claim_bounds_are_refused(where, value):
    own = claim([{"dataset": "dsprites", "condition": "sqr2tx"}])
    node = own
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    ((key, bound),) = value.items()
    with pytest.raises(ConfigError) as err:
        validate_study(demo({"claims": {"X1": own}}))
    path = "claims.X1." + ".".join(str(p) for p in where).replace(".0.", "[0].") + f".{key}"
    assert f"config key {path}: {bound} is not a finite number" in str(err.value)


def test_a_non_finite_number_anywhere_in_a_study_is_refused():
    with pytest.raises(ConfigError, match=r"config key training\.lr: nan is not a finite number"):
        validate_study(demo({"training": {"lr": math.nan}}))


def test_non_finite_bounds_in_a_yaml_file_are_refused(tmp_path):
    text = yaml.safe_dump({"claims": {"X1": claim([{"dataset": "dsprites", "condition": "sqr2tx"}])}})
    loaded = yaml.safe_load(text.replace("ge: 2", "ge: .nan"))
    assert math.isnan(loaded["claims"]["X1"]["checks"][0]["criterion"]["ge"])
    with pytest.raises(ConfigError, match="is not a finite number"):
        validate_study(demo(loaded))


# -- case 10: names longer than a file name may be ----------------------------------------------------


@pytest.mark.parametrize("where", ["model", "condition", "experiment"])
def test_names_over_64_characters_are_refused(where):
    long = "m" * 300
    extra = {
        "model": {"models": {long: {"task": "unsupervised"}}},
        "condition": {"conditions": {"dsprites": {long: {"family": "interp", "test": [{"factor": "shape", "values": [1]}]}}}},
        "experiment": {"experiments": [{"name": long, "dataset": "circles", "conditions": ["shape2px"], "models": ["vae"]}]},
    }[where]  # fmt: skip
    config = demo(extra)
    with pytest.raises(ConfigError) as err:
        validate_study(config)
    message = str(err.value)
    assert "expected a name of 1 to 64 letters, digits and underscores" in message
    assert long not in message and "(300 characters)" in message  # shortened, not printed whole


def test_derived_model_names_are_capped():
    sweep = {
        "task": "unsupervised",
        "loss": "betavae",
        "sweep": {"beta": [1.0000000000000002e-50], "encoder": ["burgess_v2"], "decoder": ["burgess_v2"]},
    }
    config = demo({"models": {"b" * 60: sweep}})
    config["experiments"][0]["models"] = ["b" * 60]
    with pytest.raises(ConfigError, match=r"config key models\.b+\.sweep: beta=1e-50, encoder=burgess_v2, decoder=burgess_v2 gives the model name 'b+_beta.*' "
                       r"of \d+ characters; a model name may have at most 100"):  # fmt: skip
        validate_study(config)


def test_a_condition_with_many_modifiers_is_capped():
    mods = {f"m{i:02d}_{'x' * 60}": [{"factor": "scale", "le": 1.0}] for i in range(4)}
    condition = "+".join(["sqr2tx", *mods])
    config = demo({"modifiers": {"dsprites": mods}})
    config["experiments"][0]["conditions"] = [condition]
    with pytest.raises(
        StudyError,
        match=r"experiments\[0\].*: condition 'sqr2tx\+m00_x+'\.\.\. has 266 characters; at most 200",
    ):
        study_of(config)


# -- case 12: sweeps that make too many models --------------------------------------------------------


def test_a_sweep_over_its_cap_is_refused_before_expanding():
    sweep = {"task": "unsupervised", "loss": "betavae",
             "sweep": {"beta": [float(b) for b in range(1, 71)], "latent_size": list(range(2, 362))}}  # fmt: skip
    config = demo({"models": {"big": sweep}})
    with pytest.raises(ConfigError) as err:
        validate_study(config)
    assert str(err.value) == (
        "invalid configuration: config key models.big.sweep: 70 x 360 values make 25,200 models, "
        "more than limits.sweep_models (256); sweep fewer values, or raise limits.sweep_models"
    )


def test_the_sweep_cap_can_be_raised():
    sweep = {"task": "unsupervised", "loss": "betavae", "sweep": {"beta": [float(b) for b in range(1, 301)]}}
    config = demo({"models": {"big": sweep}, "limits": {"sweep_models": 300}})
    config["experiments"][0]["models"] = ["big"]
    assert len(validate_study(config)["experiments"][0]["models"]) == 300


@pytest.mark.workflow
def test_snakemake_refuses_a_claim_on_an_unknown_condition_before_any_job(tmp_path):
    study = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    study["claims"] = {"X1": claim([{"dataset": "dsprites", "condition": "sqr2txx"}])}
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(study))
    done = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "typo.yaml"), timeout=300)
    assert done.returncode != 0
    assert (
        "config key claims.X1.checks[0].runs[0].condition: unknown condition 'sqr2txx' for dataset 'dsprites'"
        in done.stdout + done.stderr
    )
    assert not (tmp_path / "results").exists()
