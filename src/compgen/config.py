"""The study configuration: the JSON schema is the one place that says which keys exist, which
values are allowed and what every default is. Code downstream trusts a validated config.

`validate_config` is the Snakefile's check (Snakemake's validate, which fills in defaults) with
a one-line error; `complete_model` and `complete_training` give a single model or training
section with its defaults, as a study would see it (for tests, benchmarks and notebooks).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names the key."""


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Check `config` in place against the schema and fill in its defaults; returns it."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema_path))
    except WorkflowError as err:
        raise ConfigError(f"invalid configuration: {schema_error_message(err, schema_path)}") from None
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
