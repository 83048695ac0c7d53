"""The study configuration: the JSON schema is the one place that says which keys exist, which
values are allowed and what every default is. Code downstream trusts a validated config.

`check_config_files` reads every config file again, strictly (a key given twice, an alias bomb);
`validate_config` is the Snakefile's check (Snakemake's validate, which fills in defaults, then
integers that are ints) with a one-line error; `complete_model` and `complete_training` give a
single model or training section with its defaults, as a study would see it (for tests,
benchmarks and notebooks).
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names the key."""


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


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


def _is_integer(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.lru_cache(maxsize=4)
def _strict_validator(schema_path: str):
    """The schema's validator with "integer" meaning an int: JSON Schema's also takes 1.0, which
    fails later as a seed, a count or a shape."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return validators.extend(Draft202012Validator, type_checker=checker)(load_schema(schema_path))


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Check `config` in place against the schema and fill in its defaults; returns it."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        # Before the validator walks, copies or prints it: an alias bomb hangs all three.
        check_config_size(config)
    except ConfigError as err:
        raise ConfigError(f"invalid configuration: {err}") from None
    try:
        validate(config, str(schema_path))
    except WorkflowError as err:
        raise ConfigError(f"invalid configuration: {schema_error_message(err, schema_path)}") from None
    # Snakemake's validate cannot take a type checker; what it passed can only fail on integers now.
    error = next(_strict_validator(str(schema_path)).iter_errors(config), None)
    if error is not None:
        raise ConfigError(f"invalid configuration: {schema_message(error, load_schema(schema_path))}")
    return config


def _minimal_study(model: dict, training: dict) -> dict:
    return {
        "datasets": {"any": {}},
        "conditions": {},
        "models": {"model": copy.deepcopy(model)},
        "training": copy.deepcopy(training),
        "experiments": [{"name": "any", "dataset": "any", "conditions": ["any"], "models": ["model"]}],
    }


def complete_model(model: dict) -> dict:
    """A model section with every default the schema gives it (loss hyper-parameters included)."""
    return validate_config(_minimal_study(model, {}))["models"]["model"]


def complete_training(training: dict | None = None) -> dict:
    """The training section with every default filled in."""
    return validate_config(_minimal_study({"task": "unsupervised"}, training or {}))["training"]


def schema_error_message(error: BaseException, schema_path: str | os.PathLike) -> str:
    """One line naming the key and what is allowed, for a failed schema check.

    `error` is what the validator raised (Snakemake's validate wraps jsonschema's ValidationError)."""
    import jsonschema

    cause = error if isinstance(error, jsonschema.ValidationError) else error.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return str(error)
    return schema_message(cause, yaml.safe_load(Path(schema_path).read_text()))


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe_if(schema: dict) -> str:
    """`{properties: {loss: {const: wae}}}` -> "loss is 'wae'"."""
    tests = schema.get("properties", {}).items()
    return " and ".join(f"{k} is {v['const']!r}" for k, v in tests if "const" in v)


def schema_message(error, root: dict) -> str:
    """One line for a jsonschema error: the offending key, what is wrong, what is allowed."""
    import jsonschema

    where = _key(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        schema, instance = error.schema, error.instance
        allowed = list(schema.get("properties", {}))
        only_when: dict[str, list[str]] = {}  # keys of if/then branches that do not apply here
        for entry in schema.get("allOf", []):
            if "if" not in entry:
                continue
            applies = jsonschema.Draft202012Validator(entry["if"]).is_valid(instance)
            taken, other = ("then", "else") if applies else ("else", "then")
            allowed += [k for k in entry.get(taken, {}).get("properties", {}) if k not in allowed]
            for k in entry.get(other, {}).get("properties", {}):
                if taken == "else":
                    only_when.setdefault(k, []).append(_describe_if(entry["if"]))
        unexpected = [k for k in instance if k not in allowed]
        key = unexpected[0] if unexpected else "?"
        what = f"applies only when {' or '.join(only_when[key])}" if key in only_when else "unknown key"
        return f"config key {_key([*error.absolute_path, key])}: {what}; allowed here: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key {where}: {error.instance!r} is not allowed; allowed: {allowed}"
    if error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer():
        types = error.validator_value
        if "integer" in ([types] if isinstance(types, str) else types):
            return f"config key {where}: {error.instance!r} is not an integer; write {int(error.instance)}"
    if error.validator == "pattern" and "description" in error.schema:
        # The pattern itself is no help to a reader (see the schema's name); its description is.
        return (
            f"config key {where}: {error.instance!r} is not allowed; expected {error.schema['description']}"
        )
    # Inside an if/then/else branch, say which condition the branch belongs to.
    branch, condition = list(error.absolute_schema_path), ""
    if len(branch) >= 2 and branch[-2] in ("then", "else"):
        parent = root
        for part in branch[:-2]:
            parent = parent[part]
        condition = _describe_if(parent.get("if", {}))
    if error.validator == "not" and "required" in error.validator_value:
        key = error.validator_value["required"][0]
        return f"config key {_key([*error.absolute_path, key])}: applies only when {condition}"
    if error.validator == "required":
        key = next(k for k in error.validator_value if k not in error.instance)
        when = f" when {condition}" if condition else ""
        return f"config key {_key([*error.absolute_path, key])}: required{when}"
    return f"config key {where or '(top level)'}: {error.message}"
