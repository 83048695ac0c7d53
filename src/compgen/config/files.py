"""Config files read strictly: a key given twice, an alias bomb or a non-finite number is an error
naming the file (`check_config_files`), before Snakemake's own reading can hang or keep the last."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import yaml

from compgen.config.base import ConfigError, _key

# Far above any real study (the full study with the conditions library holds about 800 values),
# far below a YAML alias bomb (2 KB expand to billions, which Snakemake's validate then prints).
MAX_CONFIG_VALUES = 1_000_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _too_large(where: str, bound: int) -> ConfigError:
    return ConfigError(
        f"{where}: more than {bound:,} values once YAML aliases are expanded; "
        f"a config may hold at most {bound:,}"
    )


def _oversized_key(config, bound: int) -> str | None:
    """The top-level key at which `config` passes `bound` values, counting a shared (aliased)
    value each time it is reached; the walk stops there, so a bomb costs `bound` steps."""
    count = 0
    for key, value in config.items() if isinstance(config, dict) else [("(top level)", config)]:
        count += 1
        stack = [value]
        while stack:
            node = stack.pop()
            children = (
                node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
            )
            count += len(children)
            if count > bound:
                return str(key)
            stack.extend(children)
    return None


def check_config_size(config, bound: int = MAX_CONFIG_VALUES) -> None:
    """Refuse a config that expands to more than `bound` values (a YAML alias bomb)."""
    key = _oversized_key(config, bound)
    if key is not None:
        raise _too_large(f"config key {key}", bound)


def check_finite(config, path: list | None = None) -> None:
    """Refuse a number that is not finite (YAML's .nan, .inf) anywhere in `config`: no setting
    means infinity, and a NaN bound compares false with everything."""
    stack = [(config, path or [])]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"config key {_key(where) or '(top level)'}: {node} is not a finite number")
        if isinstance(node, dict):
            stack.extend((value, [*where, key]) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((value, [*where, i]) for i, value in reversed(list(enumerate(node))))


class _Pairs(list):
    """A JSON object as its (key, value) pairs, duplicates kept, for `_json_object`."""


def _json_object(node, path: list, file) -> object:
    if isinstance(node, _Pairs):
        out = {}
        for key, value in node:
            if key in out:
                raise ConfigError(
                    f"config file {file}: duplicate key {_key([*path, key])}; each key may appear once"
                )
            out[key] = _json_object(value, [*path, key], file)
        return out
    if isinstance(node, list):
        return [_json_object(value, [*path, i], file) for i, value in enumerate(node)]
    return node


def _check_duplicate_keys(loader: yaml.SafeLoader, root: yaml.Node, file) -> None:
    """Refuse a YAML mapping that repeats a key (PyYAML keeps the last one). Each node is seen
    once, so aliases cost nothing; merge keys (<<) may be overridden, as YAML intends."""
    stack, seen = [(root, [])], set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children = []
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    children.append((value_node, path))
                    continue
                key, line = loader.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                except TypeError:
                    continue  # an unhashable key: constructing the document refuses it
                if first is not None:
                    raise ConfigError(
                        f"config file {file} line {line}: duplicate key {_key([*path, key])} "
                        f"(first at line {first}); each key may appear once"
                    )
                lines[key] = line
                children.append((value_node, [*path, key]))
        elif isinstance(node, yaml.SequenceNode):
            children = [(child, [*path, i]) for i, child in enumerate(node.value)]
        stack.extend(reversed(children))  # depth first, in the file's order


def load_config_file(path: str | os.PathLike):
    """A config file as Snakemake reads it (JSON, else YAML; yaml.safe_load's types), refusing
    a mapping that gives a key twice, which both parsers would let the last one win."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return _json_object(json.loads(text, object_pairs_hook=_Pairs), [], path)
    except json.JSONDecodeError:
        pass  # not JSON: YAML, as Snakemake tries next
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_duplicate_keys(loader, root, path)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where}: {err.problem or err.context or 'not YAML'}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path}: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()


def check_config_files(paths) -> None:
    """Read each config file Snakemake loaded again, strictly, before the merged config is
    validated: a key given twice is an error, and so is a file that expands past
    MAX_CONFIG_VALUES values (an alias bomb)."""
    for path in paths:
        key = _oversized_key(load_config_file(path), MAX_CONFIG_VALUES)
        if key is not None:
            raise _too_large(f"config file {path} (key {key})", MAX_CONFIG_VALUES)
