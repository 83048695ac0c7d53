"""envs/compgen.yaml (for `snakemake --sdm conda`) pins exactly the versions of pyproject.toml.

No conda channel is reachable here, so the two files are compared, not the environments they make.
"""

import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from conftest import ROOT


def pins(requirements: list[str], where: str) -> dict[str, str]:
    """{package: version} of `name==version` requirements (extras aside); anything else is an error."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{where}: {text!r} is not pinned with =="
        name = canonicalize_name(req.name)
        assert name not in out, f"{where}: {req.name} is listed twice"
        out[name] = specs[0].version
    return out


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def conda_env() -> dict:
    return yaml.safe_load((ROOT / "envs/compgen.yaml").read_text())


def pip_section(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "envs/compgen.yaml: expected one `pip:` list under dependencies"
    return sections[0]


def differences(project: dict[str, str], env: dict[str, str]) -> list[str]:
    found = []
    for name in sorted(project.keys() | env.keys()):
        if name not in env:
            found.append(f"{name}: pinned {project[name]} in pyproject.toml, missing from envs/compgen.yaml")
        elif name not in project:
            found.append(f"{name}: pinned {env[name]} in envs/compgen.yaml, missing from pyproject.toml")
        elif project[name] != env[name]:
            found.append(f"{name}: {project[name]} in pyproject.toml, {env[name]} in envs/compgen.yaml")
    return found


def test_conda_env_pins_the_versions_of_pyproject():
    project = pins(pyproject()["project"]["dependencies"], "pyproject.toml")
    env = pins(pip_section(conda_env()), "envs/compgen.yaml")
    assert differences(project, env) == []


def test_conda_env_python_satisfies_requires_python():
    python = [d for d in conda_env()["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert len(python) == 1, "envs/compgen.yaml: expected one python=X.Y"
    version = python[0].split("=", 1)[1]
    assert version in SpecifierSet(pyproject()["project"]["requires-python"])


def test_a_difference_is_named():
    project = pins(["torch==2.14.1", "numpy==2.4.6", "snakemake[reports]==9.27.1"], "a")
    env = pins(["torch==2.14.0", "Snakemake==9.27.1", "tqdm==4.70.1"], "b")
    assert differences(project, env) == [
        "numpy: pinned 2.4.6 in pyproject.toml, missing from envs/compgen.yaml",
        "torch: 2.14.1 in pyproject.toml, 2.14.0 in envs/compgen.yaml",
        "tqdm: pinned 4.70.1 in envs/compgen.yaml, missing from pyproject.toml",
    ]
