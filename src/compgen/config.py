"""The study configuration: the JSON schema is the one place that says which keys exist, which
values are allowed and what every default is. Code downstream trusts a validated config.

`check_config_files` reads every config file again, strictly (a key given twice, an alias bomb);
`validate_config` is the Snakefile's check (Snakemake's validate, which fills in defaults, then
integers that are ints) with a one-line error, and replaces sweeps (`models.<name>.sweep`) and
per-experiment model overrides (`experiments[].model_overrides`) by the plain models they derive
(`derive_models`), and refuses claims that change a shipped one (`check_claims`, config/claims.yaml);
`complete_model` and `complete_training` give a single model or training
section with its defaults, as a study would see it (for tests, benchmarks and notebooks).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import os
import re
from pathlib import Path

import yaml


def data_file(name: str) -> Path:
    """A file the package ships (`compgen/data/`): in a checkout a link to the repository's own
    file (workflow/schemas/, config/), the one copy that is edited; in an installed package
    (`pip install .`) the copy the wheel holds. Resolved, so messages name the real file."""
    path = Path(__file__).resolve().parent / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: compgen's package data is missing (a broken install or checkout)")
    return path.resolve()


SCHEMA_PATH = data_file("config.schema.yaml")
# The default claims (C1-C11), loaded by the Snakefile before the study config; see check_claims.
CLAIMS_PATH = data_file("claims.yaml")
# The conditions library, loaded by the Snakefile first; see check_claimed_library.
CONDITIONS_PATH = data_file("conditions.yaml")
# A derived model name (sweep, override) is a folder name: far below a file system's 255 bytes.
MAX_DERIVED_NAME = 100


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names the key."""


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


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Check `config` in place against the schema and fill in its defaults; sweeps and model
    overrides are replaced by the models they derive (`derive_models`). Returns `config`."""
    try:
        # Before the validator walks, copies or prints it: an alias bomb hangs all three.
        check_config_size(config)
        check_finite(config)
    except ConfigError as err:
        raise ConfigError(f"invalid configuration: {err}") from None
    # Derived models start from the models as written: a default of the base's loss must not
    # follow a sweep or an override to another loss.
    written = copy.deepcopy(config.get("models")) if _derives_models(config) else None
    try:
        _schema_check(config, schema_path)
        if written is not None:
            derive_models(config, written, schema_path)
        check_claims(config, schema_path)
        check_claimed_library(config, schema_path)
    except ConfigError as err:
        raise ConfigError(f"invalid configuration: {err}") from None
    return config


def _minimal_study(models: dict, training: dict) -> dict:
    return {
        "datasets": {"any": {}},
        "conditions": {},
        "models": copy.deepcopy(models),
        "training": copy.deepcopy(training),
        "experiments": [
            {"name": "any", "dataset": "any", "conditions": ["any"], "models": [next(iter(models))]}
        ],
    }


def complete_model(model: dict) -> dict:
    """A model section with every default the schema gives it (loss hyper-parameters included)."""
    if isinstance(model, dict) and "sweep" in model:
        raise ConfigError("complete_model takes one model; a sweep derives several (see derive_models)")
    return validate_config(_minimal_study({"model": model}, {}))["models"]["model"]


def complete_training(training: dict | None = None) -> dict:
    """The training section with every default filled in."""
    return validate_config(_minimal_study({"model": {"task": "unsupervised"}}, training or {}))["training"]


def schema_error_message(error: BaseException, schema_path: str | os.PathLike) -> str:
    """One line naming the key and what is allowed, for a failed schema check.

    `error` is what the validator raised (Snakemake's validate wraps jsonschema's ValidationError)."""
    import jsonschema

    cause = error if isinstance(error, jsonschema.ValidationError) else error.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return str(error)
    return schema_message(cause, load_schema(schema_path))


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _brief(value, shown: int = 40) -> str:
    """A value for a message: a long string cut short, with its length."""
    if isinstance(value, str) and len(value) > shown:
        return f"{value[:shown]!r}... ({len(value)} characters)"
    return repr(value)


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


# -- sweeps and per-experiment model overrides ------------------------------------------------
# `models.<name>.sweep` and `experiments[].model_overrides` derive models from declared ones. Once
# the schema has checked the config, `derive_models` replaces both by the plain models they derive,
# each complete and under its own name in `models`, so that whatever reads the config afterwards
# (the study, the summaries' labels) sees only plain models and every model name means one model.

# Model keys that neither a sweep nor an override sets: a label follows from the derived model,
# training settings have their own place (models.<name>.training, experiments[].training).
NOT_DERIVABLE = ("label", "training", "sweep")


def name_part(value) -> str:
    """A value as a derived model name shows it: a number as %g (all its digits when %g would
    round it), '.' written 'p', '-' written 'm' and '+' dropped (8 -> 8, 2.0 -> 2, 0.5 -> 0p5,
    1e-05 -> 1em05, 1e+20 -> 1e20); anything else (the values of named choices) as it is."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = f"{value:g}"
        if float(text) != value:
            text = repr(value)
    else:
        return str(value)
    return text.replace(".", "p").replace("-", "m").replace("+", "")


def sweep_name(base: str, values: dict) -> str:
    """`<base>_<key><value>` for each swept key, in the sweep's order: betavae_beta8."""
    return "_".join([base, *(f"{key}{name_part(value)}" for key, value in values.items())])


def override_name(model: str, experiment: str) -> str:
    """A model as an experiment's model_overrides change it: `<model>_<experiment>`."""
    return f"{model}_{experiment}"


def _derives_models(config) -> bool:
    """Whether `config` (not yet checked) has a sweep or a model override to derive."""
    if not isinstance(config, dict):
        return False
    models, experiments = config.get("models"), config.get("experiments")
    return (
        isinstance(models, dict) and any(isinstance(m, dict) and "sweep" in m for m in models.values())
    ) or (
        isinstance(experiments, list)
        and any(isinstance(e, dict) and "model_overrides" in e for e in experiments)
    )


def _settable_keys(model_schema: dict, instance: dict) -> list[str]:
    """The keys a sweep or an override may set on a model like `instance`: the model's top-level
    keys and the keys of the schema's branches that apply to it (its loss's hyper-parameters),
    less NOT_DERIVABLE."""
    from jsonschema import Draft202012Validator

    keys = list(model_schema.get("properties", {}))
    for entry in model_schema.get("allOf", []):
        if "if" not in entry:
            continue
        taken = "then" if Draft202012Validator(entry["if"]).is_valid(instance) else "else"
        keys += [k for k in entry.get(taken, {}).get("properties", {}) if k not in keys]
    return [k for k in keys if k not in NOT_DERIVABLE]


def _relocated(rest: str, origins: dict[str, str], fallback: str, note: str, fallback_note: str) -> str:
    """A schema message about a derived model ("config key models.<temp>" + `rest`), about the
    config key that set the value at fault (`origins`: model key -> that config key) with `note`,
    else about `fallback`, the model it derives from, with `fallback_note`."""
    for key, where in origins.items():
        head = f".{key}"
        if rest.startswith(head) and rest[len(head) : len(head) + 1] in (".", "[", ":"):
            return f"config key {where}{rest[len(head) :]}{note}"
    return f"config key {fallback}{rest}{fallback_note}"


def _complete(derived: list[dict], schema_path, relocate) -> list[dict]:
    """The models of `derived` (as written) with the schema's defaults, checked as any model is;
    a failure names the config key `relocate(index, rest of the message)` returns."""
    temps = {f"derived{i}": model for i, model in enumerate(derived)}
    if not temps:
        return []
    study = _minimal_study(temps, {})
    try:
        _schema_check(study, schema_path)
    except ConfigError as err:
        found = re.match(r"config key models\.derived(\d+)", str(err))
        if found is None:
            raise
        raise ConfigError(relocate(int(found.group(1)), str(err)[found.end() :])) from None
    return [study["models"][temp] for temp in temps]


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _swept_label(label: str, model: dict, values: dict, hyper_parameters: set[str]) -> str:
    """An explicit label with the swept values appended: "VAE (β=8)", with the symbols of a
    derived label (losses' label_symbols), else the key's name."""
    symbols: dict[str, str] = {}
    if hyper_parameters & set(values):
        from compgen.losses import get_loss

        symbols = dict(get_loss(model["loss"]).label_symbols)
    shown = ", ".join(f"{symbols.get(key, key)}={_shown(value)}" for key, value in values.items())
    return f"{label} ({shown})"


def derive_models(config: dict, written: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> None:
    """Replace, in a schema-checked `config`, sweeps and model overrides by the models they derive.

    `written` holds the models as the config wrote them (before defaults), from which derived
    models start. A sweep `models.<name>.sweep: {key: [values], ...}` becomes one model per
    combination of values, `<name>_<key><value>...` (`sweep_name`), in the base's place; an
    experiment's `model_overrides` set keys of each of its models, and a model they change becomes
    `<model>_<experiment>` (`override_name`), one they leave as it was keeps its name. Experiments
    and groups naming a swept base name all its expansions; a group naming a model also names what
    overrides derive from it. Every derived model is checked by the schema like a declared one, a
    failure naming the sweep value or the override at fault; a derived name that another model
    already has is refused. Idempotent: a derived config derives nothing more.
    """
    model_schema = load_schema(schema_path)["properties"]["models"]["additionalProperties"]
    hyper_parameters = {
        key
        for entry in model_schema.get("allOf", [])
        for branch in (entry.get("then", {}), entry.get("else", {}))
        for key in branch.get("properties", {})
    } - set(model_schema.get("properties", {}))
    declared = config["models"]
    # name -> where it comes from, for collisions; bases keep their names (experiments use them)
    taken = {name: f"the name of models.{name}" for name in declared}
    origin: dict[str, dict] = {}  # a model as written, for what derives from it
    parent: dict[str, str] = {}  # a derived model -> the name it derives from

    # -- sweeps -------------------------------------------------------------------------------
    expansions: dict[str, list[str]] = {}
    plan = []  # (base, name, values, indices, model as written)
    for base, model in declared.items():
        if "sweep" not in model:
            origin[base] = written[base]
            continue
        sweep = model["sweep"]
        keys = list(sweep)
        count, cap = math.prod(len(values) for values in sweep.values()), config["limits"]["sweep_models"]
        if count > cap:  # before expanding: a few lines of YAML can ask for millions
            sizes = " x ".join(str(len(values)) for values in sweep.values())
            raise ConfigError(
                f"config key models.{base}.sweep: {sizes} values make {count:,} models, more than "
                f"limits.sweep_models ({cap:,}); sweep fewer values, or raise limits.sweep_models"
            )
        combos = list(itertools.product(*(range(len(sweep[key])) for key in keys)))
        complete_base = {k: v for k, v in model.items() if k != "sweep"}
        settable: list[str] = []
        for combo in combos:
            instance = {**complete_base, **{key: sweep[key][i] for key, i in zip(keys, combo, strict=True)}}
            settable += [k for k in _settable_keys(model_schema, instance) if k not in settable]
        for key in keys:
            if key not in settable:
                why = (
                    ""
                    if key in NOT_DERIVABLE
                    else f", not a key of this model (task {model['task']}, loss {model.get('loss')})"
                )
                raise ConfigError(
                    f"config key models.{base}.sweep.{key}: cannot be swept{why}; allowed: {', '.join(settable)}"
                )
        start = {k: v for k, v in written[base].items() if k != "sweep"}
        expansions[base] = []
        for combo in combos:
            values = {key: sweep[key][i] for key, i in zip(keys, combo, strict=True)}
            name = sweep_name(base, values)
            plan.append((base, name, values, dict(zip(keys, combo, strict=True)), {**start, **values}))
            expansions[base].append(name)

    def values_text(i: int) -> str:
        return ", ".join(f"{k}={_shown(v)}" for k, v in plan[i][2].items())

    def sweep_failure(i: int, rest: str) -> str:
        base, name, _, indices, _ = plan[i]
        where = {key: f"models.{base}.sweep.{key}[{index}]" for key, index in indices.items()}
        return _relocated(
            rest, where, f"models.{base}", f" (model {name})", f" (with sweep {values_text(i)})"
        )

    completed = _complete([entry[-1] for entry in plan], schema_path, sweep_failure)
    swept: dict[str, dict] = {}
    for (base, name, values, _, start), model in zip(plan, completed, strict=True):
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in values.items())
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ConfigError(
                f"config key models.{base}.sweep: {shown} gives the model name {name!r}, "
                "which is not a name of letters, digits and underscores"
            )
        if len(name) > MAX_DERIVED_NAME:
            raise ConfigError(
                f"config key models.{base}.sweep: {shown} gives the model name {_brief(name, 200)} of "
                f"{len(name)} characters; a model name may have at most {MAX_DERIVED_NAME} (it names "
                "the run's folder): shorten the base's name or sweep fewer keys"
            )
        if name in taken:
            raise ConfigError(
                f"config key models.{base}.sweep: {shown} gives the model name {name!r}, "
                f"which is already {taken[name]}; each model needs its own name"
            )
        taken[name] = f"the name of a model of models.{base}.sweep"
        if "label" in start:
            model["label"] = start["label"] = _swept_label(start["label"], model, values, hyper_parameters)
        swept[name], origin[name], parent[name] = model, start, base
    models: dict[str, dict] = {}  # the plain models, expansions in their base's place
    for name, model in declared.items():
        models.update({n: swept[n] for n in expansions[name]} if name in expansions else {name: model})

    # -- experiments: swept bases resolved, then model_overrides ------------------------------
    for i, exp in enumerate(config["experiments"]):
        where = f"experiments[{i}] ({exp['name']})"
        names: list[str] = []
        for j, ref in enumerate(exp["models"]):
            if ref in expansions:
                names += expansions[ref]
            elif ref in models:
                names.append(ref)
            else:
                raise ConfigError(
                    f"config key {where}.models[{j}]: unknown model {ref!r}; "
                    f"allowed: {', '.join(sorted([*models, *expansions]))}"
                )
        if "model_overrides" in exp:
            names = _override(exp, where, names, models, origin, parent, taken, model_schema, schema_path)
        exp["models"] = names

    # -- groups: a name means the models derived from it too -----------------------------------
    children: dict[str, list[str]] = {}
    for name, source in parent.items():
        children.setdefault(source, []).append(name)

    def family(name: str) -> list[str]:
        own = [name] if name in models else []
        return own + [n for child in children.get(name, []) for n in family(child)]

    for spec in (config.get("groups") or {}).values():
        if "models" in spec:  # an unknown name stays, for the study to name
            named = [n for ref in spec["models"] for n in family(ref) or [ref]]
            spec["models"] = list(dict.fromkeys(named))
    config["models"] = models


def _override(exp, where, names, models, origin, parent, taken, model_schema, schema_path) -> list[str]:
    """The experiment's model names once its model_overrides apply: a model they change is
    added to `models` as `<model>_<experiment>`."""
    overrides = exp["model_overrides"]
    for key in overrides:
        if key in NOT_DERIVABLE:
            instead = f"; set training keys under {where}.training" if key == "training" else ""
            raise ConfigError(
                f"config key {where}.model_overrides.{key}: model_overrides sets model keys other "
                f"than {', '.join(NOT_DERIVABLE)}{instead}"
            )
    out, plan = [], {}  # plan: derived name -> (model, model as written)
    for name in names:
        model = models[name]
        settable = _settable_keys(model_schema, {**model, **overrides})
        for key in overrides:
            if key not in settable:
                raise ConfigError(
                    f"config key {where}.model_overrides.{key}: not a key of model {name!r} "
                    f"(task {model['task']}, loss {model.get('loss')}); allowed: {', '.join(settable)}"
                )
        if all(key in model and model[key] == value for key, value in overrides.items()):
            out.append(name)  # nothing changes: the same model, under its name
            continue
        derived = override_name(name, exp["name"])
        if len(derived) > MAX_DERIVED_NAME:
            raise ConfigError(
                f"config key {where}.model_overrides: model {name!r} with these overrides would be named "
                f"{_brief(derived, 200)}, {len(derived)} characters; a model name may have at most "
                f"{MAX_DERIVED_NAME} (it names the run's folder): shorten the model's or the experiment's name"
            )
        if derived not in plan:
            if derived in taken:
                raise ConfigError(
                    f"config key {where}.model_overrides: model {name!r} with these overrides would be "
                    f"named {derived!r}, which is already {taken[derived]}; each model needs its own name"
                )
            plan[derived] = (name, {**origin[name], **overrides})
        out.append(derived)

    entries = list(plan.items())

    def failure(i: int, rest: str) -> str:
        name = declared = entries[i][1][0]
        while declared in parent:  # the model as the config declares it: a swept base
            declared = parent[declared]
        where_set = {key: f"{where}.model_overrides.{key}" for key in overrides}
        return _relocated(
            rest,
            where_set,
            f"models.{declared}",
            f" (model {name})",
            f" (model {name} with {where}.model_overrides)",
        )

    completed = _complete([start for _, (_, start) in entries], schema_path, failure)
    for (derived, (name, start)), model in zip(entries, completed, strict=True):
        taken[derived] = f"the name of model {name!r} with {where}.model_overrides"
        models[derived], origin[derived], parent[derived] = model, start, name
    return out


# -- claims -----------------------------------------------------------------------------------
# config/claims.yaml holds the papers' claims (C1-C11); the Snakefile loads it before the study
# config, which may add claims under new ids. Once the schema has filled in defaults, a default
# claim in the merged config must equal the one shipped: a study cannot loosen a threshold, drop a
# run or swap the measure it is checked by without a new id that says so.


@functools.lru_cache(maxsize=4)
def _default_claims(claims_path: str, schema_path: str, mtime_ns: int) -> dict:
    loaded = load_config_file(claims_path) or {}
    study = _minimal_study({"model": {"task": "unsupervised"}}, {})
    study["claims"] = copy.deepcopy(loaded.get("claims") or {})
    try:
        _schema_check(study, schema_path)
        _check_claim_shapes(study["claims"])
    except ConfigError as err:
        raise ConfigError(f"config file {claims_path}: {err}") from None
    return study["claims"]


def default_claims(claims_path: str | os.PathLike = CLAIMS_PATH, schema_path=SCHEMA_PATH) -> dict:
    """The shipped claims (config/claims.yaml) with the schema's defaults filled in."""
    path = Path(claims_path)
    return copy.deepcopy(_default_claims(str(path), str(schema_path), path.stat().st_mtime_ns))


def _check_claim_shapes(claims: dict) -> None:
    """What the schema cannot say: a claim gives task or models, and a run names `versus` exactly
    when its check compares with versus."""
    for cid, claim in claims.items():
        where = f"claims.{cid}"
        if ("task" in claim) == ("models" in claim):
            raise ConfigError(
                f"config key {where}: give task or models (the runs the claim applies to), exactly one"
            )
        for i, check in enumerate(claim["checks"]):
            judged = [k for k in ("criterion", "control_ratio", "task_ratio") if k in check]
            if "correlation" in claim:
                if judged:
                    raise ConfigError(
                        f"config key {where}.checks[{i}].{judged[0]}: applies only without {where}.correlation "
                        "(a correlation claim's checks give runs only)"
                    )
                for j, run in enumerate(check["runs"]):
                    extra = [k for k in ("versus", "control") if k in run]
                    if extra:
                        raise ConfigError(
                            f"config key {where}.checks[{i}].runs[{j}].{extra[0]}: applies only without "
                            f"{where}.correlation"
                        )
                continue
            if not judged:
                raise ConfigError(
                    f"config key {where}.checks[{i}]: give criterion, control_ratio or task_ratio "
                    "(one or more; all must hold)"
                )
            ((op, bound),) = check.get("criterion", {"ge": 0}).items()
            versus = bound == "versus"
            for j, run in enumerate(check["runs"]):
                key = f"{where}.checks[{i}].runs[{j}].control"
                if ("control_ratio" in check) != ("control" in run):
                    raise ConfigError(
                        f"config key {key}: "
                        + ("required, the check has control_ratio" if "control_ratio" in check
                           else f"applies only with {where}.checks[{i}].control_ratio")
                    )  # fmt: skip
                if "control" in run and run["control"] in (run["condition"], run.get("versus")):
                    raise ConfigError(
                        f"config key {key}: the condition or its versus; name a control condition"
                    )
                key = f"{where}.checks[{i}].runs[{j}].versus"
                if versus and "versus" not in run:
                    raise ConfigError(
                        f"config key {key}: required, the criterion compares with versus "
                        f"({where}.checks[{i}].criterion.{op})"
                    )
                if not versus and "versus" in run:
                    raise ConfigError(
                        f"config key {key}: applies only when the criterion compares with versus "
                        f"(here {where}.checks[{i}].criterion.{op} is {bound!r})"
                    )
                if versus and run["versus"] == run["condition"]:
                    raise ConfigError(f"config key {key}: the condition itself; name another condition")


_ABSENT = object()


def _differences(given, shipped, path: list) -> list[tuple[list, object, object]]:
    """(path, given value, shipped value) of every place two JSON values differ (_ABSENT where one
    has no value), in the shipped value's order."""
    if isinstance(given, dict) and isinstance(shipped, dict):
        keys = [*shipped, *(k for k in given if k not in shipped)]
        return [
            found
            for key in keys
            for found in _differences(given.get(key, _ABSENT), shipped.get(key, _ABSENT), [*path, key])
        ]
    if isinstance(given, list) and isinstance(shipped, list):
        pad = lambda values, i: values[i] if i < len(values) else _ABSENT  # noqa: E731
        return [
            found
            for i in range(max(len(given), len(shipped)))
            for found in _differences(pad(given, i), pad(shipped, i), [*path, i])
        ]
    same = given == shipped and isinstance(given, bool) == isinstance(shipped, bool)
    return [] if same else [(path, given, shipped)]


def check_claims(config: dict, schema_path=SCHEMA_PATH, claims_path: str | os.PathLike = CLAIMS_PATH) -> None:
    """Refuse claims a study config changed or got wrong: a claim with the id of a shipped one
    (config/claims.yaml) equals it, defaults filled in (the error names the changed keys, a changed
    value before a missing or added one); each claim gives task or models, and `versus` where its
    criterion needs one."""
    claims = config.get("claims") or {}
    if not claims:
        return
    shipped = default_claims(claims_path, schema_path)
    source = f"{Path(claims_path).parent.name}/{Path(claims_path).name}"
    for cid in claims:
        if cid not in shipped:
            continue
        found = _differences(claims[cid], shipped[cid], ["claims", cid])
        if not found:
            continue
        # A changed value (a threshold) says more than the structure around it.
        found.sort(key=lambda difference: _ABSENT in difference[1:])
        path, given, default = found[0]
        if default is _ABSENT:
            what = f"is not in the shipped claim ({source})"
        elif given is _ABSENT:
            what = f"is missing; the shipped claim ({source}) has {default!r}"
        else:
            what = f"is {given!r}; the shipped claim ({source}) has {default!r}"
        more = f" (also changed: {', '.join(_key(p) for p, _, _ in found[1:4])}{', ...' if len(found) > 4 else ''})"
        raise ConfigError(
            f"config key {_key(path)}: {what}{more if len(found) > 1 else ''}. A study config may add "
            f"claims under new ids but not change the default ones"
        )
    _check_claim_shapes(claims)


# -- the conditions library under the shipped claims ----------------------------------------------
# The shipped claims name library conditions and modifiers (config/conditions.yaml). The Snakefile
# merges a study over the library key by key, so a study could move C1's sqr2tx to another corner
# and C1 would still report on "sqr2tx". What a shipped claim names must stay the library's.


@functools.lru_cache(maxsize=4)
def _library(conditions_path: str, schema_path: str, mtime_ns: int) -> dict:
    loaded = load_config_file(conditions_path) or {}
    study = _minimal_study({"model": {"task": "unsupervised"}}, {})
    study["conditions"] = copy.deepcopy(loaded.get("conditions") or {})
    study["modifiers"] = copy.deepcopy(loaded.get("modifiers") or {})
    try:
        _schema_check(study, schema_path)
    except ConfigError as err:
        raise ConfigError(f"config file {conditions_path}: {err}") from None
    return {"conditions": study["conditions"], "modifiers": study["modifiers"]}


def _claimed_names(claims: dict, library: dict) -> dict[tuple[str, str, str], str]:
    """(section, dataset, name) -> the first shipped claim naming that condition or modifier (a
    condition of a run, its versus or control, and an iid condition's `like`)."""
    named: dict[tuple[str, str, str], str] = {}
    for cid, claim in claims.items():
        for check in claim["checks"]:
            for run in check["runs"]:
                dataset = run["dataset"]
                for field in ("condition", "versus", "control"):
                    if field not in run:
                        continue
                    base, *mods = run[field].split("+")
                    like = library["conditions"].get(dataset, {}).get(base, {}).get("like")
                    for name in filter(None, (base, like)):
                        named.setdefault(("conditions", dataset, name), cid)
                    for mod in mods:
                        named.setdefault(("modifiers", dataset, mod), cid)
    return named


def check_claimed_library(
    config: dict,
    schema_path=SCHEMA_PATH,
    claims_path: str | os.PathLike = CLAIMS_PATH,
    conditions_path: str | os.PathLike = CONDITIONS_PATH,
) -> None:
    """Refuse a study that redefines a library condition or modifier a shipped claim it carries
    names (a description may change: it changes no image)."""
    shipped = default_claims(claims_path, schema_path)
    carried = {cid: shipped[cid] for cid in config.get("claims") or {} if cid in shipped}
    if not carried:
        return
    path = Path(conditions_path)
    library = _library(str(path), str(schema_path), path.stat().st_mtime_ns)
    source = f"{path.parent.name}/{path.name}"
    for (section, dataset, name), cid in _claimed_names(carried, library).items():
        given = config.get(section, {}).get(dataset, {}).get(name, _ABSENT)
        own = library[section].get(dataset, {}).get(name, _ABSENT)
        if given is _ABSENT or own is _ABSENT:
            continue  # not defined: the study names it, or a claim check refuses it
        if section == "conditions":
            given = {k: v for k, v in given.items() if k != "description"}
            own = {k: v for k, v in own.items() if k != "description"}
        found = _differences(given, own, [section, dataset, name])
        if found:
            key = found[0][0][: 4 if section == "conditions" else 3]
            raise ConfigError(
                f"config key {_key(key)}: differs from the library's {section[:-1]} {name!r} ({source}), "
                f"which shipped claim {cid} names; define yours under a new name (a copy may change anything)"
            )
