from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def validated(config: dict) -> dict:
    """A config as the Snakefile sees it: checked against the schema, defaults filled in."""
    validate(config, str(SCHEMA))
    return config


def load_config(path) -> dict:
    return validated(yaml.safe_load(Path(path).read_text()))


@pytest.fixture
def root() -> Path:
    return ROOT
