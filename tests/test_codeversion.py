"""Each stage's code version (compgen.codeversion) covers the package code the stage runs, and no
more: the modules found by reading the sources against what the stages import when they run."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compgen.codeversion import (
    PACKAGE_DIR,
    CodeVersionError,
    module_file,
    not_run,
    stage_files,
    stage_version,
)
from conftest import ROOT

SCRIPTS = ROOT / "workflow/scripts"
STAGES = sorted(path.stem for path in SCRIPTS.glob("*.py"))


def run_python(code: str) -> dict:
    """`code` in a fresh interpreter (the checkout's package first on the path); its last line of
    output, read as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Records, per label, the package files among the modules loaded since the last snapshot.
SNAPSHOT = """
import ast, json, sys
from pathlib import Path

def package_files():
    return sorted(
        str(Path(m.__file__).resolve())
        for name, m in list(sys.modules.items())
        if (name == "compgen" or name.startswith("compgen.")) and getattr(m, "__file__", None)
    )

def forget_package():
    for name in [n for n in sys.modules if n == "compgen" or n.startswith("compgen.")]:
        del sys.modules[name]
"""


def test_what_each_script_imports_is_in_its_stage():
    """Every package module a script's imports load (in a fresh set of package modules per script)
    is one its stage's version hashes."""
    loaded = run_python(
        SNAPSHOT
        + f"""
out = {{}}
for script in sorted(Path({str(SCRIPTS)!r}).glob("*.py")):
    forget_package()
    tree = ast.parse(script.read_text())
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), str(script), "exec"), {{}})
    out[script.stem] = package_files()
print(json.dumps(out))
"""
    )
    assert sorted(loaded) == STAGES
    for stage, files in loaded.items():
        hashed = {str(p.resolve()) for p in stage_files(stage)}
        assert set(files) <= hashed, f"{stage}: {sorted(set(files) - hashed)} are run but not hashed"
        assert any(f.endswith("logs.py") for f in files)  # the snapshot saw the package at all
        ran = set(files) & not_run_files(stage)
        assert not ran, f"{stage} imports {sorted(ran)}, which NOT_RUN says it never runs"


def module_path(module: str) -> str:
    """The file of package module `module` (a package's __init__.py); it must exist."""
    path = module_file(module)
    assert path is not None, f"{module} is no module of the package: NOT_RUN names it in vain"
    return str(path.resolve())


def not_run_files(stage: str) -> set[str]:
    """The files of the modules NOT_RUN names for `stage`, every module of a package among them."""
    files = set()
    for module in not_run(stage):
        path = Path(module_path(module))
        package = path.name == "__init__.py"
        files |= {str(p.resolve()) for p in path.parent.rglob("*.py")} if package else {str(path)}
    return files


@pytest.mark.workflow
def test_training_and_analysis_run_only_what_their_stages_hash(data, tmp_path):
    """Toy runs of every task but retrain (with both probes), trained and analysed: the modules
    each stage loaded are among those its version hashes, and training never loads what its stage
    declares it does not run (NOT_RUN)."""
    dataset, split = data
    loaded = run_python(
        SNAPSHOT
        + f"""
from compgen.config import complete_model, complete_training
from compgen.tasks import TASKS

tasks = {{"unsupervised": {{}}, "composition": {{"op": "fixint"}}, "supervised": {{}},
          "gt_decoder": {{}}, "lievae": {{}}, "cascade": {{}}}}
training = complete_training(
    {{"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2, "device": "cpu", "fit_probe": 4}}
)
runs = {{
    task: {{
        "run_id": f"toy-{{task}}", "dataset": "toy", "condition": "corner", "model_name": "m",
        "seed": 0, "training": training,
        "model": complete_model({{"task": task, "latent_size": 4, **{{p: "kim" for p in TASKS[task].parts}}, **keys}}),
    }}
    for task, keys in tasks.items()
}}
forget_package()  # what building the specs loaded is the test's, not training's
from compgen.training.run import train_run
out = {{}}
for task, run in runs.items():
    train_run({str(dataset)!r}, {str(split)!r}, run, f"{tmp_path}/{{task}}", f"{tmp_path}/{{task}}_ckpt")
out["train"] = package_files()
forget_package()
from compgen.analysis.evaluate import analyse_run
Path({str(tmp_path)!r}, "split.json").write_text('{{"main_factors": ["x", "y"]}}')
for task in ("unsupervised", "supervised", "gt_decoder"):
    analyse_run({str(dataset)!r}, {str(split)!r}, f"{tmp_path}/split.json", f"{tmp_path}/{{task}}/model.pt",
                f"{tmp_path}/{{task}}.json", f"{tmp_path}/{{task}}.npz", preset="fast")
out["analyse"] = package_files()
print(json.dumps(out))
"""
    )
    for stage, files in loaded.items():
        hashed = {str(p.resolve()) for p in stage_files(stage)}
        assert set(files) <= hashed, f"{stage}: {sorted(set(files) - hashed)} are run but not hashed"
    for stage, files in loaded.items():
        ran = set(files) & not_run_files(stage)
        assert not ran, f"{stage} ran {sorted(ran)}, which NOT_RUN says it never runs"
    # The analysis does run what training is said not to: the exclusion is the point.
    assert module_path("compgen.metrics.representation") in loaded["analyse"]


def package_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the package and of the workflow's scripts, to edit."""
    package = tmp_path / "src/compgen"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SCRIPTS, tmp_path / "scripts")
    return tmp_path / "scripts", package


def versions(scripts: Path, package: Path) -> dict[str, str]:
    stage_version.cache_clear()
    try:
        return {stage: stage_version(stage, scripts, package) for stage in ("train", "analyse", "run_figure")}
    finally:
        stage_version.cache_clear()


def edit(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_metric_changes_the_analysis_version_and_training_code_the_training_version(tmp_path):
    scripts, package = package_copy(tmp_path)
    before = versions(scripts, package)
    edit(package / "metrics/representation.py", "\n# a comment and blank lines change no code\n\n")
    assert versions(scripts, package) == before
    edit(package / "metrics/representation.py", "FIXED = True\n")
    metric = versions(scripts, package)
    assert metric["train"] == before["train"] and metric["run_figure"] == before["run_figure"]
    assert metric["analyse"] != before["analyse"]
    edit(package / "training/engine.py", "FIXED = True\n")
    training = versions(scripts, package)
    assert training["train"] != before["train"] and training["analyse"] == metric["analyse"]
    edit(package / "analysis/figures.py", "FIXED = True\n")
    figure = versions(scripts, package)
    assert figure["run_figure"] != before["run_figure"]
    assert (figure["train"], figure["analyse"]) == (training["train"], training["analyse"])


def test_a_stage_without_a_script_is_an_error(tmp_path):
    with pytest.raises(CodeVersionError, match=r"nope\.py: no such script"):
        stage_files("nope", tmp_path)
