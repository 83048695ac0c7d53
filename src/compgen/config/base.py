"""Where the package's data files are, the error every configuration check raises, and the small
helpers the checks share (key paths and values in messages, a one-model study)."""

from __future__ import annotations

import copy
from pathlib import Path


def data_file(name: str) -> Path:
    """A file the package ships (`compgen/data/`): in a checkout a link to the repository's own
    file (workflow/schemas/, config/), the one copy that is edited; in an installed package
    (`pip install .`) the copy the wheel holds. Resolved, so messages name the real file."""
    path = Path(__file__).resolve().parents[1] / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: compgen's package data is missing (a broken install or checkout)")
    return path.resolve()


SCHEMA_PATH = data_file("config.schema.yaml")
# The default claims (C1-C11), loaded by the Snakefile before the study config; see check_claims.
CLAIMS_PATH = data_file("claims.yaml")
# The conditions library, loaded by the Snakefile first; see check_claimed_library.
CONDITIONS_PATH = data_file("conditions.yaml")


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names the key."""


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
