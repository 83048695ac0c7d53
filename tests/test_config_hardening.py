"""Config files as an adversarial user writes them: keys given
twice, alias bombs, integers written as floats, names with a trailing newline. Each is refused
with one line naming the file or key before any job starts."""

import time

import pytest
import yaml

from compgen.config import MAX_CONFIG_VALUES, ConfigError, check_config_files, check_config_size
from compgen.study import StudyError
from conftest import ROOT, SCHEMA, load_config, run_snakemake, validate_config

# A study of its own (no conditions library needed); under Snakemake the library merges in beside it.
STUDY = """\
datasets:
  dsprites: {subsample: {posX: 2, posY: 2}}
conditions:
  dsprites:
    heldout: {family: recomb2element, test: [{factor: shape, values: [1]}, {factor: posX, gt: 0.5}]}
modifiers:
  dsprites:
    small: [{factor: scale, le: 0.7}]
models:
  vae: {task: unsupervised}
training:
  epochs: 2
experiments:
  - {name: first, dataset: dsprites, conditions: [heldout+small], models: [vae], seeds: [0]}
groups:
  all: {members: [{dataset: dsprites, condition: heldout+small}]}
"""
TWICE = STUDY.replace("  epochs: 2\n", "  epochs: 2\n  epochs: 50\n")  # epochs on lines 12 and 13

# 9 ** 9 = 387,420,489 strings from 342 bytes: each level is a list of nine aliases to the last.
ALIAS_BOMB = "lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n" for i in range(1, 9)
)
NAME = yaml.safe_load(SCHEMA.read_text())["$defs"]["name"]["description"]


def snakemake_dry_run(tmp_path, text: str, timeout=120) -> tuple[str, str]:
    """`snakemake -n` with this config; the timeout is only a safety net against a hang."""
    path = tmp_path / "study.yaml"
    path.write_text(text)
    done = run_snakemake(tmp_path, "--configfile", str(path), "--cores", "1", "-n", timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "Building DAG" not in out and not (tmp_path / "results").exists()
    return str(path), out


def edited(path: tuple, value) -> dict:
    """The study (not yet validated) with the key at `path` set to `value`."""
    config = yaml.safe_load(STUDY)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


def test_the_study_is_valid():
    validate_config(yaml.safe_load(STUDY))


# -- case 4: a key given twice -------------------------------------------------------------
def test_duplicate_yaml_key_is_refused_naming_file_key_and_lines(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(TWICE)
    with pytest.raises(ConfigError) as err:
        check_config_files([path])
    assert str(err.value) == (
        f"config file {path} line 13: duplicate key training.epochs (first at line 12); "
        "each key may appear once"
    )


def test_duplicate_key_is_found_inside_lists_and_flow_mappings(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.replace("seeds: [0]}", "seeds: [0], seeds: [1]}"))
    with pytest.raises(
        ConfigError, match=r" line 14: duplicate key experiments\[0\]\.seeds \(first at line 14\)"
    ):
        check_config_files([path])


def test_duplicate_key_in_a_json_config_is_refused(tmp_path):
    path = tmp_path / "study.json"
    path.write_text('{"training": {"epochs": 2,\n\t"epochs": 50}}')  # a tab: JSON, but not YAML
    with pytest.raises(ConfigError) as err:
        check_config_files([path])
    assert str(err.value) == f"config file {path}: duplicate key training.epochs; each key may appear once"


def test_merge_keys_and_a_key_repeated_in_different_mappings_are_fine(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("base: &base {epochs: 2, lr: 0.1}\na: {<<: *base, epochs: 3}\nb: {epochs: 4}\n")
    check_config_files([path])


def test_shipped_configs_have_no_duplicate_keys():
    check_config_files(sorted((ROOT / "config").glob("*.yaml")))


def test_duplicate_key_stops_snakemake_before_any_job(tmp_path):
    path, out = snakemake_dry_run(tmp_path, TWICE)
    assert f"config file {path} line 13: duplicate key training.epochs (first at line 12)" in out


# -- case 9: a YAML alias bomb -----------------------------------------------------------
def bomb_message(where: str) -> str:
    return (
        f"{where}: more than {MAX_CONFIG_VALUES:,} values once YAML aliases are expanded; "
        f"a config may hold at most {MAX_CONFIG_VALUES:,}"
    )


def test_alias_bomb_file_is_refused_cheaply_naming_the_file_and_the_bound(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        check_config_files([path])
    assert time.perf_counter() - start < 30  # a full walk would visit 387 million values
    assert str(err.value) == bomb_message(f"config file {path} (key lol6)")


def test_alias_bomb_in_the_loaded_config_is_refused_before_validation():
    config = edited(("experiments", 0, "seeds"), yaml.safe_load(ALIAS_BOMB)["lol8"])
    with pytest.raises(StudyError) as err:
        validate_config(config)
    assert str(err.value) == bomb_message("config key experiments")


def test_size_check_passes_real_studies_and_stops_at_the_bound():
    check_config_size(load_config(ROOT / "config/config.yaml"))
    check_config_size({"seeds": list(range(MAX_CONFIG_VALUES - 1))})  # the list and its items
    with pytest.raises(ConfigError, match="config key seeds: more than"):
        check_config_size({"seeds": list(range(MAX_CONFIG_VALUES))})
    loop: list = []
    loop.append(loop)  # YAML can write a list that holds itself
    with pytest.raises(ConfigError, match="config key loop: more than"):
        check_config_size({"loop": loop})


def test_alias_bomb_stops_snakemake_before_any_job(tmp_path):
    path, out = snakemake_dry_run(tmp_path, ALIAS_BOMB)
    assert bomb_message(f"config file {path} (key lol6)") in out


# -- case 10: integers written as floats, seeds out of range ---------------------------------
FLOATS = [
    (("experiments", 0, "seeds"), [1.0], "experiments[0].seeds[0]: 1.0 is not an integer; write 1"),
    (
        ("datasets", "dsprites", "subsample", "posX"),
        2.0,
        "datasets.dsprites.subsample.posX: 2.0 is not an integer; write 2",
    ),
    (("analysis",), {"n_images": 4.0}, "analysis.n_images: 4.0 is not an integer; write 4"),
    (("training", "epochs"), 2.0, "training.epochs: 2.0 is not an integer; write 2"),
    (
        ("experiments", 0, "training"),
        {"max_steps_per_epoch": 3.0},
        "experiments[0].training.max_steps_per_epoch: 3.0 is not an integer; write 3",
    ),
    (("models", "vae", "latent_size"), 1e1, "models.vae.latent_size: 10.0 is not an integer; write 10"),
    (
        ("experiments", 0, "seeds"),
        [2**64],
        "experiments[0].seeds[0]: 18446744073709551616 is greater than the maximum of 9223372036854775807",
    ),
    (
        ("experiments", 0, "seeds"),
        [0, 2**63],
        "experiments[0].seeds[1]: 9223372036854775808 is greater than the maximum of 9223372036854775807",
    ),
]


@pytest.mark.parametrize("path,value,message", FLOATS, ids=[m.split(":")[0] for *_, m in FLOATS])
def test_integers_must_be_integers_and_seeds_fit_in_63_bits(path, value, message):
    with pytest.raises(StudyError) as err:
        validate_config(edited(path, value))
    assert str(err.value) == f"config key {message}"


def test_the_largest_seed_and_plain_integers_pass():
    config = validate_config(edited(("experiments", 0, "seeds"), [0, 2**63 - 1]))
    assert config["experiments"][0]["seeds"] == [0, 2**63 - 1] and config["analysis"]["n_images"] == 8


def test_float_seed_stops_snakemake_before_any_job(tmp_path):
    _, out = snakemake_dry_run(tmp_path, STUDY.replace("seeds: [0]", "seeds: [1.0]"))
    assert "invalid configuration: config key experiments[0].seeds[0]: 1.0 is not an integer; write 1" in out


# -- case 11: names that end in a newline -----------------------------------------------------
def renamed(old: str, new: str) -> dict:
    """The study with the name `old` replaced by `new` everywhere: as a key, a value and in
    condition strings (cond+modifier)."""

    def walk(node):
        if isinstance(node, dict):
            return {(new if k == old else k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and "+" in node:
            return "+".join(new if part == old else part for part in node.split("+"))
        return new if node == old else node

    return walk(yaml.safe_load(STUDY))


NAMES = [
    ("dsprites", "datasets"),
    ("small", "modifiers.dsprites"),
    ("heldout", "conditions.dsprites"),
    ("vae", "models"),
    ("first", "experiments[0].name"),
    ("all", "groups"),
]


@pytest.mark.parametrize("name,where", NAMES, ids=[n for n, _ in NAMES])
def test_names_with_a_trailing_newline_are_refused(name, where):
    with pytest.raises(StudyError) as err:
        validate_config(renamed(name, name + "\n"))
    assert str(err.value) == f"config key {where}: {name + chr(10)!r} is not allowed; expected {NAME}"


def test_condition_strings_with_a_trailing_newline_are_refused():
    config = edited(("experiments", 0, "conditions"), ["heldout+small\n"])
    with pytest.raises(
        StudyError,
        match=r"^config key experiments\[0\]\.conditions\[0\]: 'heldout\+small\\n' is not allowed; expected a condition name",
    ):
        validate_config(config)


def test_names_still_take_letters_digits_and_underscores_only():
    assert "Vae_2" in validate_config(renamed("vae", "Vae_2"))["models"]
    for bad in ["vae ", "vae-2", "vae.2", "vä", "", "vae\n\n", "\nvae", "vae\r"]:
        with pytest.raises(StudyError, match="^config key models: "):
            validate_config(renamed("vae", bad))


def test_name_with_a_trailing_newline_stops_snakemake_before_any_job(tmp_path):
    text = STUDY.replace("  vae: {task", '  "vae\\n": {task').replace("models: [vae]", 'models: ["vae\\n"]')
    _, out = snakemake_dry_run(tmp_path, text)
    assert "invalid configuration: config key models: 'vae\\n' is not allowed; expected a name of" in out
