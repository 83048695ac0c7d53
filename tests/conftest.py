import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from compgen.datasets.store import write_dataset
from compgen.grid import Factor, Grid

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
TEST_CONFIGS = ROOT / "tests/configs"


def snakemake_command(workdir, *args, snakefile=None) -> list[str]:
    """The README's snakemake command with this checkout's Snakefile, run in `workdir`."""
    snakefile = snakefile or ROOT / "Snakefile"
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        *args,
    ]


def run_snakemake(workdir, *args, timeout=900, **kwargs) -> subprocess.CompletedProcess:
    """snakemake_command, run to completion with its output captured."""
    return subprocess.run(
        snakemake_command(workdir, *args), capture_output=True, text=True, timeout=timeout, **kwargs
    )


def load_test_config(name: str) -> dict:
    """A tiny config of tests/configs/ (a study config, or the one run of test_bad_data), as a dict."""
    return yaml.safe_load((TEST_CONFIGS / f"{name}.yaml").read_text())


def validate_config(config: dict, schema=SCHEMA) -> dict:
    """The Snakefile's schema check: defaults filled in, a failure raised as a one-line StudyError."""
    from compgen.config import ConfigError
    from compgen.config import validate_config as validate_study_config
    from compgen.study import StudyError

    try:
        return validate_study_config(config, schema)
    except ConfigError as err:
        raise StudyError(str(err).removeprefix("invalid configuration: ")) from None


def validated(config: dict) -> dict:
    """A config as the Snakefile sees it: checked against the schema, defaults filled in."""
    return validate_config(config)


def merged(base: dict, update: dict) -> dict:
    """Snakemake's merge of config files: dicts merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both_dicts else value
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


# A toy dataset of 4 x 4 x 2 images with a held-out corner, shared by the engine and task tests.
SIDE = 12


def render(classes: np.ndarray) -> np.ndarray:
    """A bright square whose position is (x, y) and whose size is the third factor."""
    out = np.zeros((len(classes), 64, 64, 1), dtype=np.uint8)
    for i, (x, y, s) in enumerate(classes):
        side = SIDE + 8 * s
        out[i, 4 + 12 * y : 4 + 12 * y + side, 4 + 12 * x : 4 + 12 * x + side] = 255
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    grid = Grid(
        (Factor("x", (0.0, 1.0, 2.0, 3.0)), Factor("y", (0.0, 1.0, 2.0, 3.0)), Factor("size", (0.0, 1.0))),
        (64, 64, 1),
    )
    write_dataset(root / "toy.h5", grid, render, {"source": "test"})
    classes = grid.all_classes()
    held_out = (classes[:, 0] >= 2) & (classes[:, 1] >= 2) & (classes[:, 2] == 1)
    np.savez(
        root / "split.npz",
        train=np.flatnonzero(~held_out).astype(np.int64),
        test=np.flatnonzero(held_out).astype(np.int64),
    )
    return root / "toy.h5", root / "split.npz"
