"""The study configuration: the JSON schema is the one place that says which keys exist, which
values are allowed and what every default is. Code downstream trusts a validated config.

`check_config_files` reads every config file again, strictly (a key given twice, an alias bomb);
`validate_config` is the Snakefile's check (Snakemake's validate, which fills in defaults, then
integers that are ints) with a one-line error, and replaces sweeps (`models.<name>.sweep`) and
per-experiment model overrides (`experiments[].model_overrides`) by the plain models they derive
(`derive_models`), and refuses claims that change a shipped one (`check_claims`, config/claims.yaml);
`complete_model` and `complete_training` give a single model or training
section with its defaults, as a study would see it (for tests, benchmarks and notebooks).

One module per concern: `base` (the package's data files, ConfigError), `files` (strict reading),
`schema` (the schema with the registries filled in, validation, messages), `derive` (sweeps and
model overrides), `claims` (the shipped claims and the library they name); every public name is
importable from `compgen.config`.
"""

from __future__ import annotations

import copy
import os

from compgen.config.base import (
    CLAIMS_PATH,
    CONDITIONS_PATH,
    SCHEMA_PATH,
    ConfigError,
    _minimal_study,
    data_file,
)
from compgen.config.claims import check_claimed_library, check_claims, default_claims
from compgen.config.derive import (
    MAX_DERIVED_NAME,
    NOT_DERIVABLE,
    _derives_models,
    derive_models,
    name_part,
    override_name,
    sweep_name,
)
from compgen.config.files import (
    MAX_CONFIG_VALUES,
    check_config_files,
    check_config_size,
    check_finite,
    load_config_file,
)
from compgen.config.schema import (
    LOSS_BRANCHES,
    _schema_check,
    fill_registries,
    load_schema,
    registry_names,
    schema_error_message,
    schema_message,
)


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


def complete_model(model: dict) -> dict:
    """A model section with every default the schema gives it (loss hyper-parameters included)."""
    if isinstance(model, dict) and "sweep" in model:
        raise ConfigError("complete_model takes one model; a sweep derives several (see derive_models)")
    return validate_config(_minimal_study({"model": model}, {}))["models"]["model"]


def complete_training(training: dict | None = None) -> dict:
    """The training section with every default filled in."""
    return validate_config(_minimal_study({"model": {"task": "unsupervised"}}, training or {}))["training"]


__all__ = [
    "CLAIMS_PATH",
    "CONDITIONS_PATH",
    "LOSS_BRANCHES",
    "MAX_CONFIG_VALUES",
    "MAX_DERIVED_NAME",
    "NOT_DERIVABLE",
    "SCHEMA_PATH",
    "ConfigError",
    "check_claimed_library",
    "check_claims",
    "check_config_files",
    "check_config_size",
    "check_finite",
    "complete_model",
    "complete_training",
    "data_file",
    "default_claims",
    "derive_models",
    "fill_registries",
    "load_config_file",
    "load_schema",
    "name_part",
    "override_name",
    "registry_names",
    "schema_error_message",
    "schema_message",
    "sweep_name",
    "validate_config",
]
