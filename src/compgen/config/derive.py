"""Sweeps (`models.<name>.sweep`) and per-experiment model overrides
(`experiments[].model_overrides`), replaced by the plain models they derive (`derive_models`)."""

from __future__ import annotations

import itertools
import math
import os
import re

from compgen.config.base import SCHEMA_PATH, ConfigError, _brief, _minimal_study
from compgen.config.schema import _schema_check, load_schema

# A derived model name (sweep, override) is a folder name: far below a file system's 255 bytes.
MAX_DERIVED_NAME = 100


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
