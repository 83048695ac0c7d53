"""The schema: the file with the registries filled in (`load_schema`, `fill_registries`), the
validator that fills in its defaults and checks integers (`_schema_check`), and one-line messages
naming the key at fault (`schema_message`)."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import yaml

from compgen.config.base import SCHEMA_PATH, ConfigError, _brief, _key


@functools.lru_cache(maxsize=8)
def _schema_text(path: str, mtime_ns: int) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """The schema file with the registries' names and each loss's hyper-parameters filled in
    (`fill_registries`): the file lists none of them."""
    path = Path(path)
    return fill_registries(copy.deepcopy(_schema_text(str(path), path.stat().st_mtime_ns)))


def _node(schema: dict, *keys: str) -> dict:
    node = schema
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(
                f"the config schema has no {'.'.join(keys[: i + 1])}: compgen.config.fill_registries "
                "fills the registries' names in there"
            )
        node = node[key]
    return node


def registry_names() -> dict[str, list[str]]:
    """The names of every registry the schema enumerates (compgen.registry), built-ins first."""
    from compgen.analysis.run_figures import FIGURES
    from compgen.losses import LOSSES
    from compgen.models import COMPOSITION_OPS, DECODERS, ENCODERS
    from compgen.tasks import TASKS

    registries = {
        "task": TASKS,
        "loss": LOSSES,
        "encoder": ENCODERS,
        "decoder": DECODERS,
        "op": COMPOSITION_OPS,
        "figure": FIGURES,
    }
    return {key: list(registry) for key, registry in registries.items()}


# The schema's placeholder for the losses' branches (in the allOf of a model).
LOSS_BRANCHES = "loss branches"


def fill_registries(schema: dict) -> dict:
    """`schema` (the file as read) with the names of the registries as enumerations: models' task,
    loss, encoder, decoder and op, the claims' tasks; and per loss of the registry an `if loss ==
    <name>` branch giving its default reconstruction and its hyper-parameters with their defaults
    (compgen.losses.Loss). The file writes none of these; a node they go to that the file lacks is
    an error naming it."""
    from compgen.losses import LOSSES

    names = registry_names()
    model = _node(schema, "properties", "models", "additionalProperties")
    for key in ("task", "loss", "encoder", "decoder", "op"):
        _node(model, "properties", key)["enum"] = names[key]
    branches = [
        {
            "if": {"properties": {"loss": {"const": name}}, "required": ["loss"]},
            "then": {
                "properties": {
                    "recon": {"default": LOSSES[name].recon},
                    **copy.deepcopy(dict(LOSSES[name].hyper)),
                }
            },
        }
        for name in names["loss"]
    ]
    entries = _node(model, "allOf")
    at = [i for i, entry in enumerate(entries) if entry == {"$comment": LOSS_BRANCHES}]
    if len(at) != 1:
        raise ConfigError(
            f"the config schema's models.additionalProperties.allOf must hold one {{$comment: {LOSS_BRANCHES}}}, "
            "where compgen.config.fill_registries puts the losses' branches"
        )
    entries[at[0] : at[0] + 1] = branches
    claim = _node(schema, "properties", "claims", "additionalProperties", "properties")
    single, several = _node(claim, "task", "oneOf")
    single["enum"] = names["task"]
    _node(several, "items")["enum"] = names["task"]
    checks = _node(claim, "checks", "items", "properties")
    _node(checks, "task_ratio", "properties", "task")["enum"] = names["task"]
    _node(claim, "fit", "properties", "tasks", "propertyNames")["enum"] = names["task"]
    return schema


def _is_integer(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _strict_validator(schema: dict):
    """The schema's validator with "integer" meaning an int: JSON Schema's also takes 1.0, which
    fails later as a seed, a count or a shape."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return validators.extend(Draft202012Validator, type_checker=checker)(schema)


def _defaulting_validator(schema: dict):
    """Snakemake's validate: Draft 2020-12, filling in each `default` of a `properties` keyword as
    it walks (the jsonschema FAQ's recipe, which snakemake.utils.validate uses). It takes the
    schema as a dict, which Snakemake's (a file path) cannot: the registries are filled in."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from properties(validator, props, instance, subschema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _schema_check(config: dict, schema_path: str | os.PathLike) -> None:
    """The schema (registries filled in) checks `config` and fills in its defaults, then checks
    that integers are ints; a failure is a ConfigError of one line naming the key."""
    schema = load_schema(schema_path)
    for validator in (_defaulting_validator(schema), _strict_validator(schema)):
        error = next(validator.iter_errors(config), None)
        if error is not None:
            raise ConfigError(schema_message(error, schema))


def schema_error_message(error: BaseException, schema_path: str | os.PathLike) -> str:
    """One line naming the key and what is allowed, for a failed schema check.

    `error` is what the validator raised (Snakemake's validate wraps jsonschema's ValidationError)."""
    import jsonschema

    cause = error if isinstance(error, jsonschema.ValidationError) else error.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return str(error)
    return schema_message(cause, load_schema(schema_path))


def _describe_if(schema: dict, negate: bool = False) -> str:
    """`{properties: {loss: {const: wae}}}` -> "loss is 'wae'" ("loss is not 'wae'" negated, for
    an else branch)."""
    tests = schema.get("properties", {}).items()
    is_ = "is not" if negate else "is"
    return " and ".join(f"{k} {is_} {v['const']!r}" for k, v in tests if "const" in v)


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
                only_when.setdefault(k, []).append(_describe_if(entry["if"], negate=other == "else"))
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
        return f"config key {where}: {_brief(error.instance)} is not allowed; expected {error.schema['description']}"
    # Inside an if/then/else branch, say which condition the branch belongs to.
    branch, condition, in_else = list(error.absolute_schema_path), "", False
    if len(branch) >= 2 and branch[-2] in ("then", "else"):
        parent = root
        for part in branch[:-2]:
            parent = parent[part]
        condition, in_else = _describe_if(parent.get("if", {})), branch[-2] == "else"
    if error.validator == "not" and "required" in error.validator_value:
        key = error.validator_value["required"][0]
        return f"config key {_key([*error.absolute_path, key])}: applies only when {condition}"
    if error.validator == "required":
        key = next(k for k in error.validator_value if k not in error.instance)
        if in_else:  # an else branch requires it where its if does not hold
            condition = _describe_if(parent.get("if", {}), negate=True)
        when = f" when {condition}" if condition else ""
        return f"config key {_key([*error.absolute_path, key])}: required{when}"
    return f"config key {where or '(top level)'}: {error.message}"
