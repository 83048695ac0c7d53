"""Safety: no code path unpickles data or evaluates strings.

Two kinds of check: a scan of every Python file, Snakefile and rule file for calls that can run code
from data (the scanner is itself shown to catch each pattern), and loaders fed files whose pickled
payload would create a file when unpickled. The dSprites `metadata` trap is in test_official.py
(test_dsprites_metadata_pickle_is_never_loaded, test_object_arrays_are_refused_without_unpickling).
"""

import ast
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compgen.analysis.arrays import load_arrays
from compgen.conditions import SplitError, load_split
from compgen.tasks import load_trained
from compgen.training.checkpoints import resume_from_checkpoint
from conftest import ROOT

SCANNED = sorted(
    [p for folder in ("src", "workflow") for p in (ROOT / folder).rglob("*.py")]
    + list((ROOT / "rules").glob("*.smk"))
    + [ROOT / "Snakefile"]
)
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_ATTRIBUTES = {"read_pickle", "unsafe_load", "full_load", "import_module"}


def _kwarg(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def python_findings(source: str) -> list[str]:
    """What in `source` could run code from data: unsafe imports, calls and loader settings."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"from {node.module} import")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in UNSAFE_CALLS:
                found.append(f"{func.id}(")
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if func.attr in UNSAFE_ATTRIBUTES:
                    found.append(f"{owner}.{func.attr}(")
                elif func.attr == "load" and owner == "torch" and _kwarg(node, "weights_only") is not True:
                    found.append("torch.load( without weights_only=True")
                elif func.attr == "load" and owner in ("np", "numpy"):
                    if _kwarg(node, "allow_pickle") is not False:
                        found.append("np.load( without allow_pickle=False")
                elif func.attr == "load" and owner == "yaml":
                    found.append("yaml.load( (use yaml.safe_load)")
                elif func.attr == "load" and owner == "jit":
                    found.append("torch.jit.load(")
    return found


def snakemake_findings(source: str) -> list[str]:
    """Snakefile syntax is not Python: the same patterns, by text."""
    patterns = {
        r"(?<![\w.])(eval|exec|compile|__import__)\(": "eval/exec(",
        r"\bimport (pickle|dill|marshal|shelve|joblib|cloudpickle)\b": "import of an unpickler",
        r"\byaml\.(load|unsafe_load|full_load)\(": "yaml.load(",
        r"\btorch\.load\((?![^)]*weights_only=True)": "torch.load( without weights_only=True",
        r"\bnp\.load\((?![^)]*allow_pickle=False)": "np.load( without allow_pickle=False",
    }
    return [label for pattern, label in patterns.items() if re.search(pattern, source)]


def findings(path: Path) -> list[str]:
    source = path.read_text()
    return python_findings(source) if path.suffix == ".py" else snakemake_findings(source)


def test_the_scan_covers_the_workflow():
    names = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    expected = {"Snakefile", "rules/train.smk", "src/compgen/models/__init__.py", "workflow/scripts/train.py"}
    assert expected <= names


# The one audited dynamic import: compgen.registry.resolve imports what a code declaration names
# (a built-in's "module:attribute", an installed package's entry point). Configs name extensions
# only by registry keys, which the schema enumerates, so no config value reaches it
# (test_a_config_cannot_name_a_module_to_import).
ALLOWED = {"src/compgen/registry.py": ["importlib.import_module("]}


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_code_path_unpickles_or_evaluates(path):
    assert findings(path) == ALLOWED.get(path.relative_to(ROOT).as_posix(), [])


@pytest.mark.parametrize(
    "where", [("loss",), ("encoder",), ("decoder",), ("task",), ("op",)], ids=lambda w: w[0]
)
def test_a_config_cannot_name_a_module_to_import(where):
    """A "module:attribute" reference in a config is refused by the schema: a config value is only
    ever a registry key, never something compgen.registry.resolve imports."""
    from compgen.config import ConfigError, validate_config

    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    model = next(iter(config["models"]))
    config["models"][model][where[0]] = "os:system"
    with pytest.raises(ConfigError, match="os:system"):
        validate_config(config)


BAD_SNIPPETS = [
    "import pickle",
    "from dill import loads",
    "x = eval(config['expr'])",
    "exec(text)",
    "torch.load(path)",
    "torch.load(path, weights_only=False)",
    "np.load(path)",
    "np.load(path, allow_pickle=True)",
    "yaml.load(fh, Loader=yaml.Loader)",
    "yaml.unsafe_load(fh)",
    "pd.read_pickle(path)",
    "importlib.import_module(name)",
]


@pytest.mark.parametrize("snippet", BAD_SNIPPETS)
def test_the_scanner_catches_each_pattern(snippet):
    assert python_findings(snippet)


PYTHON_ONLY = ("from", "pd.", "importlib")  # no text pattern for these in the Snakefile scan


@pytest.mark.parametrize("snippet", [s for s in BAD_SNIPPETS if not s.startswith(PYTHON_ONLY)])
def test_the_snakefile_scanner_catches_each_pattern(snippet):
    assert snakemake_findings(snippet)


def test_the_scanner_accepts_the_safe_forms():
    safe = (
        "torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\nyaml.safe_load(fh)\nmodel.eval()\n"
    )
    assert python_findings(safe) == [] and snakemake_findings(safe) == []


class CreatesFileWhenUnpickled:
    """Unpickling this calls open(path, "w"): the file's existence shows code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_model_file_with_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "model_config": CreatesFileWhenUnpickled(tmp_path / "pwned")}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_trained(path)
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    torch.save({"record": CreatesFileWhenUnpickled(tmp_path / "pwned")}, tmp_path / "ckpt_epoch3.pt")
    # Never unpickled: set aside like any unreadable checkpoint, and training starts afresh.
    assert resume_from_checkpoint({}, tmp_path, "fingerprint", "cpu") == 0
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "ckpt_epoch3.pt").exists()
    assert (tmp_path / "set-aside" / "ckpt_epoch3.pt").exists()


def test_split_and_analysis_arrays_with_objects_are_refused(tmp_path):
    trap = np.array([CreatesFileWhenUnpickled(tmp_path / "pwned")], dtype=object)
    np.savez(tmp_path / "split.npz", train=trap, test=np.arange(3))
    with pytest.raises(SplitError, match="split.npz: not a readable split file"):
        load_split(tmp_path / "split.npz")
    np.savez(tmp_path / "analysis.npz", latents=trap)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_arrays(tmp_path / "analysis.npz")
    assert not (tmp_path / "pwned").exists()
