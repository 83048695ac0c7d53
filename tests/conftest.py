from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def validate_config(config: dict, schema=SCHEMA) -> dict:
    """The Snakefile's schema check: defaults filled in, a failure raised as a one-line StudyError."""
    from snakemake.exceptions import WorkflowError

    from compgen.study import StudyError, schema_error_message

    try:
        validate(config, str(schema))
    except WorkflowError as err:
        raise StudyError(schema_error_message(err, schema)) from None
    return config


def validated(config: dict) -> dict:
    """A config as the Snakefile sees it: checked against the schema, defaults filled in."""
    return validate_config(config)


def merged(base: dict, update: dict) -> dict:
    """Snakemake's merge of config files: dicts merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path) -> dict:
    """A study config as the Snakefile sees it: on top of the conditions library, validated."""
    library = yaml.safe_load((ROOT / "config/conditions.yaml").read_text())
    return validated(merged(library, yaml.safe_load(Path(path).read_text())))


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: on a small shared CPU, torch's pool waits on busy cores far longer
    than it computes these tiny batches."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
