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


def write_toy(root: Path, name: str, draw=render) -> tuple[Path, Path]:
    """The toy grid drawn by `draw` into root/<name>.h5, and its split (root/split.npz): the corner
    x >= 2, y >= 2 of the large squares held out."""
    grid = Grid(
        (Factor("x", (0.0, 1.0, 2.0, 3.0)), Factor("y", (0.0, 1.0, 2.0, 3.0)), Factor("size", (0.0, 1.0))),
        (64, 64, 1),
    )
    write_dataset(root / f"{name}.h5", grid, draw, {"source": "test"})
    classes = grid.all_classes()
    held_out = (classes[:, 0] >= 2) & (classes[:, 1] >= 2) & (classes[:, 2] == 1)
    np.savez(
        root / "split.npz",
        train=np.flatnonzero(~held_out).astype(np.int64),
        test=np.flatnonzero(held_out).astype(np.int64),
    )
    return root / f"{name}.h5", root / "split.npz"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_toy(tmp_path_factory.mktemp("data"), "toy")


@pytest.fixture(scope="module")
def all_data(tmp_path_factory):
    """The toy grid of `data` as a procedural MPI3D stand-in with an empty test set: an all-data
    reference split (with its split.json)."""
    root = tmp_path_factory.mktemp("reference")
    grid = Grid(
        (Factor("x", (0.0, 1.0, 2.0, 3.0)), Factor("y", (0.0, 1.0, 2.0, 3.0)), Factor("size", (0.0, 1.0))),
        (64, 64, 1),
    )
    write_dataset(root / "toy.h5", grid, render, {"source": "procedural", "dataset": "mpi3d"})
    np.savez(root / "split.npz", train=np.arange(grid.n, dtype=np.int64), test=np.zeros(0, dtype=np.int64))
    (root / "split.json").write_text('{"main_factors": ["x", "y"]}')
    return root


def analyse_toy(dataset, split, run_dir, out_dir, n_images=3, with_run_info=False) -> dict:
    """analyse_run (preset fast) of the model trained in `run_dir`, on the toy grid's factors x, y."""
    from compgen.analysis.evaluate import analyse_run

    split_json = Path(out_dir) / "split.json"
    split_json.write_text('{"main_factors": ["x", "y"]}')
    return analyse_run(
        dataset,
        split,
        split_json,
        Path(run_dir) / "model.pt",
        Path(out_dir) / "scores.json",
        Path(out_dir) / "arrays.npz",
        run_info_path=Path(run_dir) / "run.json" if with_run_info else None,
        preset="fast",
        n_recon=n_images,
    )


class Killed(Exception):
    """Raised inside training where a test kills the job."""


def train_straight_and_resumed(data, run, tmp_path, monkeypatch):
    """`run` trained straight, and again killed in its third epoch (4 steps per epoch on the toy
    grid) and resumed from the epoch-2 checkpoint. Returns the two output folders; their checkpoint
    folders are ckpt_straight and ckpt_resumed beside them."""
    from compgen.tasks import TASKS
    from compgen.training.checkpoints import latest_checkpoint
    from compgen.training.run import fit, setup_run, train_run, write_outputs

    dataset, split = data
    straight = setup_run(dataset, split, run)
    write_outputs(straight, tmp_path / "straight", fit(straight, tmp_path / "ckpt_straight"))

    task_class = type(TASKS[run["model"]["task"]])
    real_loss, calls = task_class.training_loss, []

    def dies_in_third_epoch(*args):
        calls.append(1)
        if len(calls) == 2 * 4 + 2:
            raise Killed
        return real_loss(*args)

    monkeypatch.setattr(task_class, "training_loss", dies_in_third_epoch)
    with pytest.raises(Killed):
        train_run(dataset, split, run, tmp_path / "resumed", tmp_path / "ckpt_resumed")
    monkeypatch.setattr(task_class, "training_loss", real_loss)
    assert latest_checkpoint(tmp_path / "ckpt_resumed").name == "ckpt_epoch2.pt"
    resumed = setup_run(dataset, split, run)
    assert fit(resumed, tmp_path / "ckpt_resumed") == 2
    write_outputs(resumed, tmp_path / "resumed", 2)
    return tmp_path / "straight", tmp_path / "resumed"


def assert_same_outputs(a_dir, b_dir) -> None:
    """Two runs' model.pt (best and last weights) equal bit for bit, and their logs too (timings aside)."""
    import pandas as pd

    a = torch.load(Path(a_dir) / "model.pt", weights_only=True)
    b = torch.load(Path(b_dir) / "model.pt", weights_only=True)
    for key in ("state_dict", "last_state_dict"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    timings = ["images_per_s", "seconds"]
    log_a = pd.read_csv(Path(a_dir) / "train_log.csv").drop(columns=timings)
    log_b = pd.read_csv(Path(b_dir) / "train_log.csv").drop(columns=timings)
    pd.testing.assert_frame_equal(log_a, log_b)
