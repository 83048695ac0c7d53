"""The code version of a workflow stage: a hash of the package's source files that the stage's
script imports, directly or through other modules of the package.

Each rule passes its stage's version as a param, so Snakemake's params trigger reruns a stage when
code it runs has changed, and only then: a fixed metric (compgen.metrics.representation) changes
the analysis' version, not training's; a change to training code changes training's version, and
what reads the trained model reruns through its changed inputs. Snakemake's own code trigger
already covers the script file; this covers the package below it.

The modules are found by reading the sources (every `import` and `from ... import`, those inside
functions too, and strings naming a package module, as lazy imports do), never by importing them,
so planning stays cheap. Importing a module runs its
package's `__init__` files, which are part of the stage too. Code outside the package (a plugin's
task, a library) is not hashed: a new library version is the environment's business.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

import compgen

PACKAGE = "compgen"
MODULE_STRING = re.compile(r"(compgen(?:\.\w+)+)(:[\w.]*)?")
# Markers of imported_names: a module named in a string (counted only when it is a module file,
# not a package), and any module of a package (an import whose module name is computed).
LAZY_FILE, ANY_MODULE = "?", "*"
PACKAGE_DIR = Path(compgen.__file__).resolve().parent
# workflow/scripts/ of the checkout the package lives in (src/compgen -> the repository root).
SCRIPTS_DIR = PACKAGE_DIR.parents[1] / "workflow" / "scripts"


# Modules a stage's sources name (inside a function) but never run, each with why; tests check
# that the stage indeed never imports them (tests/test_codeversion.py trains runs of every kind).
NOT_RUN = {
    # Every stage (its own entries add to these).
    "*": {
        # Planning's code (the schema check, compgen.claims.claim_sources, the registries' names
        # for the schema): a job gets the resolved config as params and never runs it.
        "compgen.config": "the workflow's planning runs it, no job does",
    },
    "train": {
        # Only the tasks' analysis-time scoring (Task.r2_scores) reads it: a fixed DCI, MIG or R²
        # reruns the analysis and what follows, not training.
        "compgen.metrics.representation": "read by the tasks' analysis-time scoring only",
    },
}


class CodeVersionError(RuntimeError):
    """A stage's script is missing."""


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of package module `name` ("compgen.a.b"), or None when it is not a module
    of the package (an attribute imported from one, or another package's module)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Every dotted name an `import` of `source` names: modules, and for `from a import b` both `a`
    and `a.b` (b may be a module); and every string that names a package module (a lazy import).
    `module` resolves relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A module named in a string ("compgen.losses.objectives", "compgen.models.blocks:Kim"):
            # what importlib.import_module and the registries' lazy references load. A plain name
            # counts only as a module file (LAZY_FILE): a package's name in a string is often no
            # import at all (an entry-point group such as "compgen.tasks").
            found = MODULE_STRING.fullmatch(node.value)
            if found:
                names.add(found.group(1) if found.group(2) else LAZY_FILE + found.group(1))
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            # f"compgen.models.blocks:{cls}" names that module; f"compgen.models.{name}" any of its
            # package's modules.
            head = str(node.values[0].value)
            found = MODULE_STRING.match(head)
            if found and found.group(2):
                names.add(found.group(1))
            elif re.fullmatch(r"compgen(\.\w+)*\.", head):
                names.add(head + ANY_MODULE)
    return names


def _with_parents(name: str) -> list[str]:
    """A module and the packages whose `__init__` importing it runs: a.b.c -> a, a.b, a.b.c."""
    parts = name.split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


def package_closure(
    sources: list[str], package_dir: Path = PACKAGE_DIR, not_run: frozenset[str] = frozenset()
) -> list[Path]:
    """The package's source files that importing what `sources` (Python source texts) import
    would run, through any chain of the package's own imports, less the modules `not_run` (and
    the modules of a package among them); sorted."""
    todo = [name for source in sources for name in imported_names(source)]
    seen: set[Path] = set()
    while todo:
        name = todo.pop()
        if name.endswith(ANY_MODULE):
            folder = package_dir.joinpath(*name.removesuffix("." + ANY_MODULE).split(".")[1:])
            todo.extend(_module_name(path, package_dir) for path in folder.glob("*.py"))
            continue
        if name.startswith(LAZY_FILE):
            name = name.removeprefix(LAZY_FILE)
            path = module_file(name, package_dir)
            if path is None or path.name == "__init__.py":
                continue
        for module in _with_parents(name):
            path = module_file(module, package_dir)
            if path is None or path in seen or _excluded(module, not_run):
                continue
            seen.add(path)
            todo.extend(_file_imports(path, package_dir, *_stamp(path)))
    return sorted(seen)


def _excluded(module: str, not_run: frozenset[str]) -> bool:
    """Whether `module` is one of `not_run` or inside one of those packages."""
    return any(module == name or module.startswith(name + ".") for name in not_run)


def _stamp(path: Path) -> tuple[int, int]:
    """What the caches below are keyed by beside the path: an edited file is read again."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@cache
def _file_imports(path: Path, package_dir: Path, *stamp) -> frozenset[str]:
    """imported_names of one package file (read once per planning: stages share most files)."""
    return frozenset(
        imported_names(path.read_text(), _module_name(path, package_dir), path.name == "__init__.py")
    )


def not_run(stage: str) -> dict[str, str]:
    """The modules stage `stage` names but never runs (NOT_RUN), with why."""
    return {**NOT_RUN["*"], **NOT_RUN.get(stage, {})}


def stage_files(stage: str, scripts_dir: Path = SCRIPTS_DIR, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The package files stage `stage` runs: those its script workflow/scripts/<stage>.py imports."""
    script = Path(scripts_dir) / f"{stage}.py"
    if not script.is_file():
        raise CodeVersionError(f"{script}: no such script; a stage's code version reads the script it runs")
    return package_closure([script.read_text()], package_dir, frozenset(not_run(stage)))


def code_of(path: Path) -> str:
    """What a source file runs: its syntax tree, so that comments and formatting change nothing."""
    return _code_of(path, *_stamp(path))


@cache
def _code_of(path: Path, *stamp) -> str:
    return ast.dump(ast.parse(path.read_text(), str(path)))


@cache
def stage_version(stage: str, scripts_dir: Path = SCRIPTS_DIR, package_dir: Path = PACKAGE_DIR) -> str:
    """A short hash of the code (syntax trees, and paths) of the package files stage `stage` runs."""
    digest = hashlib.sha256()
    for path in stage_files(stage, Path(scripts_dir), Path(package_dir)):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(code_of(path).encode() + b"\0")
    return digest.hexdigest()[:16]
