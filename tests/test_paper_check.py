"""The paper-check studies (config/paper_check.yaml, config/paper_check_gpu.yaml): each subsamples
only in ways that keep its conditions' structure, and together they run every claim they are for."""

import numpy as np
import pytest
import yaml

from compgen.conditions import main_factors, split_masks
from compgen.config import default_claims
from compgen.datasets import dataset_grid
from compgen.study import Study
from conftest import ROOT, load_config

CONFIGS = ["paper_check", "paper_check_gpu"]
# NeurIPS claims C1-C5 and the runs each needs (config/claims.yaml).
FAILURE = {("dsprites", "sqr2tx"), ("shapes3d", "shape2ohue"), ("mpi3d", "cyl2vx+four_shapes+fix_hx")}
SUCCESS = {("shapes3d", "fhue2whue"), ("mpi3d", "cyl2bkg+four_shapes+fix_hx")}


def study_of(name: str) -> Study:
    return Study(load_config(ROOT / f"config/{name}.yaml"))


def cells(grid, mask: np.ndarray, a: str, b: str) -> set[tuple]:
    """The (a, b) value pairs of the images in mask."""
    values = grid.values(grid.classes(np.flatnonzero(mask)))
    return set(zip(values[:, grid.axis(a)].tolist(), values[:, grid.axis(b)].tolist(), strict=True))


def value_tuples(grid, mask: np.ndarray) -> set[tuple]:
    return set(map(tuple, grid.values(grid.classes(np.flatnonzero(mask))).round(9).tolist()))


def claim_targets(datasets=None) -> set[tuple]:
    """(task, dataset, condition) of every run the NeurIPS claims (C1-C5, C7) read: rows, versus
    references and controls."""
    targets = set()
    for _cid, claim in default_claims().items():
        if not claim["paper"].startswith("NeurIPS"):  # ICLR: config/iclr2021.yaml, iclr_check.yaml
            continue
        for check in claim["checks"]:
            for run in check["runs"]:
                for condition in (run["condition"], run.get("versus"), run.get("control")):
                    if condition and (datasets is None or run["dataset"] in datasets):
                        targets.add((claim["task"], run["dataset"], condition))
    return targets


def test_the_gpu_study_runs_every_run_a_neurips_claim_reads():
    study = study_of("paper_check_gpu")
    runs = {(run.spec["model"]["task"], run.dataset, run.condition) for run in study.runs}
    assert runs == claim_targets()
    assert {run.seed for run in study.runs} == {0}


def test_the_cpu_study_runs_every_3dshapes_claim_and_the_others_learning_curves():
    study = study_of("paper_check")
    runs = {(run.spec["model"]["task"], run.dataset, run.condition) for run in study.runs}
    # Every 3DShapes row but C1's shape2orient, which the 2-core budget leaves to the GPU study.
    assert runs >= claim_targets({"shapes3d"}) - {("composition", "shapes3d", "shape2orient")}
    # dSprites and MPI3D: the failure and success conditions, for their learning curves.
    assert runs >= {("composition", d, c) for d, c in FAILURE | SUCCESS}
    assert {run.seed for run in study.runs} == {0}


def test_the_iclr_check_runs_every_dsprites_run_of_c8_to_c10():
    study = study_of("iclr_check")
    runs = {(run.spec["model"]["task"], run.dataset, run.condition) for run in study.runs}
    wanted = {
        (task, run["dataset"], run["condition"])
        for cid in ("C8", "C9", "C10")
        for check in default_claims()[cid]["checks"]
        for run in check["runs"]
        if run["dataset"] == "dsprites"
        for task in default_claims()[cid]["task"]
    }
    assert (
        runs
        == wanted
        == {
            (task, "dsprites", condition)
            for task in ("unsupervised", "gt_decoder")
            for condition in ("leave1out", "sqr2tx", "blank_side")
        }
    )
    assert {run.seed for run in study.runs} == {0}
    assert study.grid("dsprites").n == 737_280  # the full grid


def test_gpu_runs_pack_onto_the_gpu():
    gpu = load_config(ROOT / "config/paper_check_gpu.yaml")
    assert gpu["resources"]["jobs_per_gpu"] > 1 and gpu["training"]["device"] == "cuda"
    assert load_config(ROOT / "config/paper_check.yaml")["resources"]["jobs_per_gpu"] == 1


@pytest.mark.parametrize("name", CONFIGS)
def test_subsampling_keeps_every_condition_as_on_the_full_grid(name):
    """Both factors of each condition keep all their values, the held-out share is the full grid's,
    and every (factor a, factor b) cell is held out exactly where it is on the full grid."""
    config = yaml.safe_load((ROOT / f"config/{name}.yaml").read_text())
    study = study_of(name)
    for dataset, condition_name in sorted({(r.dataset, r.condition) for r in study.runs}):
        steps = (config.get("datasets", {}).get(dataset) or {}).get("subsample")
        full, sub = dataset_grid(dataset), dataset_grid(dataset, steps)
        condition = study.condition(dataset, condition_name)
        a, b = main_factors(full, condition)
        for factor in (a, b):
            assert sub.factor(factor).values == full.factor(factor).values, (dataset, condition_name, factor)
        full_train, full_test = split_masks(full, condition)
        sub_train, sub_test = split_masks(sub, condition)
        share = lambda train, test: test.sum() / (train.sum() + test.sum())  # noqa: E731
        assert share(sub_train, sub_test) == pytest.approx(share(full_train, full_test), abs=1e-12)
        assert cells(sub, sub_test, a, b) == cells(full, full_test, a, b)
        assert cells(sub, sub_train, a, b) == cells(full, full_train, a, b)


def test_mpi3d_splits_are_the_full_studys_image_for_image():
    """fix_hx keeps horizontal-axis class 0, all the subsampled grid keeps: the same images."""
    config = yaml.safe_load((ROOT / "config/paper_check.yaml").read_text())
    study = study_of("paper_check")
    full = dataset_grid("mpi3d")
    sub = dataset_grid("mpi3d", config["datasets"]["mpi3d"]["subsample"])
    for condition_name in ("cyl2vx+four_shapes+fix_hx", "cyl2bkg+four_shapes+fix_hx"):
        condition = study.condition("mpi3d", condition_name)
        for full_mask, sub_mask in zip(
            split_masks(full, condition), split_masks(sub, condition), strict=True
        ):
            assert sub_mask.sum() == full_mask.sum()
            assert value_tuples(sub, sub_mask) == value_tuples(full, full_mask)


def test_the_cpu_study_logs_learning_curves_and_the_gpu_study_trains_on_the_gpu():
    cpu, gpu = (load_config(ROOT / f"config/{name}.yaml") for name in CONFIGS)
    assert cpu["training"]["fit_probe"] > 0 and cpu["resources"]["train"]["gpu"] == 0
    assert gpu["training"]["fit_probe"] > 0 and gpu["resources"]["train"]["gpu"] == 1
    # Full grids where they fit in memory; MPI3D keeps the horizontal-axis class fix_hx selects.
    for config in (cpu, gpu):
        assert not any(
            (config.get("datasets", {}).get(d) or {}).get("subsample") for d in ("dsprites", "shapes3d")
        )
        assert config["datasets"]["mpi3d"]["subsample"] == {"horizontal_axis": 40}
        assert config["training"]["patience"] > 0
