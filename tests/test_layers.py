"""The package's layers run one way: a module imports only from its own layer or lower ones.

Every import counts, at module level or inside a function (a lazy import is still a dependency,
and a loop through one is the kind this guards against).
"""

import ast
from pathlib import Path

import pytest

import compgen

PACKAGE = Path(compgen.__file__).parent

# Lowest first. An entry is a module or subpackage; a module belongs to its longest matching entry
# ("compgen", the package's own __init__, matches itself only, so a new module must be placed).
LAYERS = [
    # Files, logging, figure saving, named registries, the factor grid, the scores table: no
    # knowledge of the study.
    {
        "compgen",
        "compgen.atomic",
        "compgen.logs",
        "compgen.figio",
        "compgen.registry",
        "compgen.grid",
        "compgen.scores",
    },
    # What is trained on and how images are scored.
    {"compgen.datasets", "compgen.conditions", "compgen.losses"},
    # Networks, batch sampling and the pure measures.
    {"compgen.models", "compgen.batches", "compgen.metrics"},
    # The tasks: each pairs a model with its objective, batches and scores.
    {"compgen.tasks"},
    # One run: train it, analyse it.
    {"compgen.training", "compgen.analysis"},
    # The study: its configuration, runs, claims, summary, and the workflow's view of the code.
    {
        "compgen.config",
        "compgen.study",
        "compgen.claims",
        "compgen.summary",
        "compgen.launcher",
        "compgen.codeversion",
    },
]

# Parts of one layer that must not import each other either: training and analysis share only the
# layers below them (a run is trained without analysis code, and analysed without training code).
APART = [("compgen.training", "compgen.analysis")]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int | None:
    matches = [
        (len(entry), i)
        for i, layer in enumerate(LAYERS)
        for entry in layer
        if name == entry or name.startswith(entry + ".")
    ]
    return max(matches)[1] if matches else None


def imported_modules(name: str, path: Path):
    """(line, imported compgen module) for every import in the file, resolved to a module of the
    package (`from compgen import tasks` imports compgen.tasks, not compgen)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == "compgen" or target.startswith("compgen."):
                yield node.lineno, target


def test_every_module_has_a_layer():
    missing = [name for name in MODULES if layer_of(name) is None]
    assert not missing, f"modules in no layer (add them to LAYERS in tests/test_layers.py): {missing}"


def test_imports_go_to_the_same_layer_or_lower():
    offending = []
    for name, path in MODULES.items():
        own = layer_of(name)
        for line, target in imported_modules(name, path):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                rel = path.relative_to(PACKAGE.parent.parent)
                offending.append(f"{rel}:{line}: {name} (layer {own}) imports {target} (layer {theirs})")
    assert not offending, "imports up the layers:\n" + "\n".join(offending)


def within(name: str, entry: str) -> bool:
    return name == entry or name.startswith(entry + ".")


def test_training_and_analysis_stay_apart():
    offending = [
        f"{path.relative_to(PACKAGE.parent.parent)}:{line}: {name} imports {target}"
        for name, path in MODULES.items()
        for line, target in imported_modules(name, path)
        for a, b in APART
        if (within(name, a) and within(target, b)) or (within(name, b) and within(target, a))
    ]
    assert not offending, "imports between parts kept apart:\n" + "\n".join(offending)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from compgen import tasks", ["compgen.tasks"]),
        ("from compgen.tasks import get_task", ["compgen.tasks"]),
        ("def f():\n    import compgen.training.run", ["compgen.training.run"]),
        ("from . import excess", ["compgen.metrics.excess"]),
        ("from ..tasks import Task", ["compgen.tasks"]),
        ("import numpy", []),
    ],
)
def test_imports_are_found_wherever_they_are(tmp_path, source, expected):
    path = tmp_path / "module.py"
    path.write_text(source)
    assert [target for _, target in imported_modules("compgen.metrics.fit", path)] == expected
