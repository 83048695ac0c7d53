"""The shipped claims and the conditions library they name: a study config may add claims but not
change a shipped one (`check_claims`), nor move a library condition a shipped claim names
(`check_claimed_library`)."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

from compgen.config.base import CLAIMS_PATH, CONDITIONS_PATH, SCHEMA_PATH, ConfigError, _key, _minimal_study
from compgen.config.files import load_config_file
from compgen.config.schema import _schema_check

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
