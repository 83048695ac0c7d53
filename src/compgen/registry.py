"""Named extension points: tasks, losses, encoders, decoders, composition ops and per-run figures.

A `Registry` maps names to objects of one kind. Its entries come from three places, all found
through the same mapping:

- the built-ins, given where the kind is defined (an object, or a `"module:attribute"` reference
  imported on first use, so that a registry of torch modules is light to import);
- `register(name, obj)` at run time (a notebook, a test);
- the entry points of the kind's group (`compgen.tasks`, `compgen.losses`, `compgen.encoders`,
  `compgen.decoders`, `compgen.ops`, `compgen.figures`) of every installed distribution, read when
  the registry is first used, so that every process of a workflow (snakemake's script jobs import
  compgen afresh) finds an installed plugin. Listing the names reads the distributions' metadata
  only; an entry point's object is imported when it is first looked up.

A plugin's name may not be a built-in's or another plugin's: that is an error naming both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

GROUPS = {
    "task": "compgen.tasks",
    "loss": "compgen.losses",
    "encoder": "compgen.encoders",
    "decoder": "compgen.decoders",
    "composition op": "compgen.ops",
    "figure": "compgen.figures",
}


class RegistryError(ValueError):
    """A name that is unknown or given twice; the message names the kind and the source."""


def resolve(reference: str) -> Any:
    """The object a `"module:attribute"` reference names (attribute may be dotted)."""
    module, _, attribute = reference.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


class _Lazy:
    """A built-in or entry point not imported yet."""

    def __init__(self, load: Callable[[], Any], source: str):
        self.load, self.source = load, source


class Registry(Mapping[str, Any]):
    """Name -> object of one `kind`; see the module docstring. `check(name, obj)` is called on
    every object when it is loaded (an entry point's declared name must be the object's own, say)."""

    def __init__(
        self,
        kind: str,
        builtins: Mapping[str, Any],
        check: Callable[[str, Any], None] | None = None,
    ):
        self.kind, self.group, self.check = kind, GROUPS[kind], check
        self._entries: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for name, obj in builtins.items():
            self._add(name, self._builtin(obj), "compgen")
        self._plugins_read = False

    @staticmethod
    def _builtin(obj):
        return _Lazy(lambda: resolve(obj), "compgen") if isinstance(obj, str) else obj

    def _add(self, name: str, entry, source: str) -> None:
        if name in self._entries:
            raise RegistryError(
                f"{self.kind} {name!r} of {source} clashes with the {self.kind} of that name "
                f"from {self._sources[name]}; rename one (entry point group {self.group})"
            )
        self._entries[name], self._sources[name] = entry, source

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for point in entry_points(group=self.group):
            dist = getattr(point.dist, "name", None) or "an unnamed distribution"
            self._add(point.name, _Lazy(point.load, f"distribution {dist}"), f"distribution {dist}")

    def register(self, name: str, obj) -> Any:
        """Add `obj` under `name` (a name may be registered once); returns `obj`."""
        self._read_plugins()
        self._add(name, obj, "register()")
        if self.check:
            self.check(name, obj)
        return obj

    def unregister(self, name: str) -> None:
        """Remove an entry added with `register` (tests)."""
        if self._sources.get(name) != "register()":
            raise RegistryError(f"{self.kind} {name!r} was not added with register()")
        del self._entries[name], self._sources[name]

    def source(self, name: str) -> str:
        self._read_plugins()
        return self._sources[name]

    def __getitem__(self, name: str):
        self._read_plugins()
        if name not in self._entries:
            raise KeyError(name)
        entry = self._entries[name]
        if isinstance(entry, _Lazy):
            try:
                entry = entry.load()
            except Exception as err:
                raise RegistryError(
                    f"{self.kind} {name!r} of {entry.source} could not be loaded: {err}"
                ) from err
            if self.check:
                self.check(name, entry)
            self._entries[name] = entry
        return entry

    def get_or_error(self, name: str):
        """The object named `name`, or a RegistryError listing the names allowed."""
        if name not in self:
            raise RegistryError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self)}")
        return self[name]

    def __contains__(self, name) -> bool:
        self._read_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._read_plugins()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._read_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self)})"
