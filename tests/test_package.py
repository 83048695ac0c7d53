"""`pip install .` gives a working compgen outside a checkout: the wheel carries the config schema
and the shipped conditions and claims (package data, linked from the repository's own files in a
checkout), so a config validates and a model builds from any directory."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from compgen.config import CLAIMS_PATH, CONDITIONS_PATH, SCHEMA_PATH
from conftest import ROOT

DATA = ROOT / "src" / "compgen" / "data"


def test_the_package_data_are_the_repositorys_files():
    """One copy of each: the package's data files lead to workflow/schemas/ and config/."""
    assert SCHEMA_PATH == ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert CLAIMS_PATH == ROOT / "config" / "claims.yaml"
    assert CONDITIONS_PATH == ROOT / "config" / "conditions.yaml"
    for name in ("config.schema.yaml", "claims.yaml", "conditions.yaml"):
        assert (DATA / name).is_symlink()


def _source_tree(dest: Path) -> Path:
    """What a build reads (pyproject, README, src with its data links, and the files they lead
    to), copied so that building leaves nothing in the checkout."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "workflow" / "schemas", dest / "workflow" / "schemas")
    shutil.copytree(ROOT / "config", dest / "config")
    return dest


@pytest.mark.workflow
def test_an_installed_wheel_validates_a_config_and_builds_a_model_outside_the_checkout(tmp_path):
    source = _source_tree(tmp_path / "source")
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("compgen-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("compgen/data/")}
        assert shipped == {
            f"compgen/data/{n}" for n in ("config.schema.yaml", "claims.yaml", "conditions.yaml")
        }
        assert (
            archive.read("compgen/data/config.schema.yaml") == SCHEMA_PATH.read_bytes()
        )  # a copy, not a link
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    study = elsewhere / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "datasets": {"circles": {}},
                "models": {
                    "b": {"task": "unsupervised", "loss": "betavae", "encoder": "kim", "decoder": "kim"}
                },
                "experiments": [
                    {"name": "e", "dataset": "circles", "conditions": ["shape2px"], "models": ["b"]}
                ],
            }
        )
    )
    code = """
import sys, yaml
import compgen
from compgen.config import CONDITIONS_PATH, SCHEMA_PATH, validate_config
from compgen.tasks import build_model
library = yaml.safe_load(CONDITIONS_PATH.read_text())
config = {**library, **yaml.safe_load(open("study.yaml"))}
model = validate_config(config)["models"]["b"]
net = build_model(model, (64, 64, 1), 5)
print(compgen.__file__)
print(SCHEMA_PATH)
print(model["beta"], sum(p.numel() for p in net.parameters()) > 0)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={**env, "PYTHONPATH": str(site)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    package, schema, result = done.stdout.splitlines()
    assert Path(package).is_relative_to(site) and Path(schema).is_relative_to(site)
    assert result == "4.0 True"  # the schema's default beta, from the installed registry
