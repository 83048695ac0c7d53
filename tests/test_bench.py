"""Smoke tests of every script in bench/: each runs a step or two at tiny sizes and prints JSON
with the expected keys and finite numbers (what the numbers are is the benchmarks' business).

The scripts that import torch run in this process (their `main(argv)`), the others as commands."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch

from compgen.losses import LOSSES
from compgen.models import DECODERS, ENCODERS
from compgen.training.device import resolve_amp
from compgen.training.run import train_run
from conftest import ROOT
from test_engine import make_run

BENCH = ROOT / "bench"


@pytest.fixture
def bench(monkeypatch):
    """bench(name): bench/<name>.py as a module (bench/ on the path, as when run as a script)."""
    monkeypatch.syspath_prepend(str(BENCH))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def numbers(tree):
    """Every number in a JSON tree (booleans and nulls left out)."""
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in numbers(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in numbers(v)]
    return [tree] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


def printed(capsys) -> dict:
    out = json.loads(capsys.readouterr().out)
    assert all(math.isfinite(x) for x in numbers(out))
    return out


def command(*args: str) -> dict:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert all(math.isfinite(x) for x in numbers(out))
    return out


def test_train_smoke(bench, capsys):
    train = bench("train")
    train.main(["--smoke"])
    out = printed(capsys)
    assert out["ratio_engine_to_bare"] > 0 and out["ratio_sampler_to_per_item"] > 0
    # (c) covers every registered encoder, decoder and loss.
    families = [name.split("/") for name in out["images_per_s"]]
    assert {enc for enc, _ in families} == set(ENCODERS)
    assert {dec.split(":")[0] for _, dec in families} == set(DECODERS)
    assert {dec.split(":")[1] for _, dec in families if ":" in dec} == set(LOSSES) - {"vae"}
    bf16 = out["cpu_bf16"]
    assert set(bf16["cases"]) == set(train.AMP_CASES) and bf16["threads"] == 1
    for case in bf16["cases"].values():
        assert set(case["items_per_s"]) == set(train.AMP_VARIANTS)
        assert case["ratio_bf16_to_fp32"] > 0 and case["ratio_channels_last_bf16"] > 0
    check = out["numerical_check"]
    assert set(check["runs"]) == {"fp32_seed0", "amp_seed0", "fp32_seed1", "amp_seed1"}
    assert check["runs"]["amp_seed0"]["amp_used"] is resolve_amp(True, torch.device("cpu"))
    assert all(len(run["loss_windows"]) == 2 for run in check["runs"].values())  # 4 steps, windows of 2
    for part in ("all", "late"):
        assert check[part]["amp_vs_fp32"] >= 0 and check[part]["fp32_seed_to_seed"] > 0
    assert isinstance(check["within_noise"], bool)


def test_throughput_smoke(bench, capsys):
    tiny = str(ROOT / "tests/configs/tiny.yaml")
    bench("throughput").main([tiny, "--steps", "1", "--warmup", "1", "--val-items", "8", "--amp", "on"])
    out = printed(capsys)
    assert set(out["training_steps"]) == {"dsprites/vae", "dsprites/vae_fixint", "circles/kim_interp"}
    for step in out["training_steps"].values():
        assert step["amp"] is resolve_amp(True, torch.device(step["device"]))  # --amp on, as resolved here
        assert step["threads"] == 1 and step["steps_per_s"] > 0
    assert set(out["runs"]) == {
        "dsprites/sqr2tx/vae/seed0",
        "dsprites/sqr2tx/vae_fixint/seed0",
        "circles/shape2px/kim_interp/seed0",
    }
    for run in out["runs"].values():
        assert run["epochs"] == 3 and 0 < run["steps_per_epoch"] <= 6  # tiny.yaml: max_steps_per_epoch 6
        assert run["seconds"] == pytest.approx(run["train_seconds"] + run["validation_seconds"])
    assert out["total_seconds"] == pytest.approx(sum(r["seconds"] for r in out["runs"].values()))


def test_gpu_check_smoke(bench, capsys, tmp_path):
    gpu_check = bench("gpu_check")
    gpu_check.main(["--smoke", "--work", str(tmp_path)])
    out = printed(capsys)
    assert out["smoke"] is True and out["steps"] == 2 and out["triplets_per_s"] > 0
    assert 0 <= out["share_outside_forward_backward"] <= 1
    if not torch.cuda.is_available():
        assert out["peak_gpu_memory_gib"] is None
        with pytest.raises(SystemExit, match="needs a GPU"):
            gpu_check.main(["--work", str(tmp_path)])


def test_fit_readouts_smoke(bench, capsys, data, tmp_path):
    """On a results tree of one toy run: results/{data,splits,runs}."""
    dataset, split = data
    results = tmp_path / "results"
    (results / "data").mkdir(parents=True)
    (results / "splits" / "toy").mkdir(parents=True)
    (results / "data" / "toy.h5").write_bytes(dataset.read_bytes())
    (results / "splits" / "toy" / "corner.npz").write_bytes(split.read_bytes())
    (results / "splits" / "toy" / "corner.json").write_text(json.dumps({"main_factors": ["x", "y"]}))
    run_dir = results / "runs" / "toy" / "corner" / "kim" / "seed3"
    train_run(dataset, split, make_run(epochs=1), run_dir, tmp_path / "ckpt")
    bench("fit_readouts").main([str(run_dir), "--n", "28"])
    out = printed(capsys)
    assert out["run"] == "toy/corner/kim/seed3" and out["n_images"] == 28
    assert set(out["factors"]) == {"x", "y"}
    for entry in out["factors"].values():
        assert {"linear_r2", "knn_accuracy", "chance"} <= set(entry) and 0 <= entry["knn_accuracy"] <= 1


def test_datasets_smoke():
    out = command(str(BENCH / "datasets.py"), "--datasets", "circles", "--subsample-factor", "4")
    assert set(out) == {"circles"} and out["circles"]["images"] == 64
    assert out["circles"]["seconds"] >= 0 and out["circles"]["peak_mb"] > 0


def test_plan_smoke():
    out = command(str(BENCH / "plan.py"), "--config", "tests/configs/tiny.yaml")
    (study,) = out.values()
    assert study["config"] == "tests/configs/tiny.yaml" and study["runs"] == 3
    assert study["jobs"] > study["runs"] and study["seconds"] > 0


def test_fit_readout_choice_smoke():
    # It prints a table (rows | code | readout | three factors' fit | seconds), not JSON.
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "fit_readout_choice.py"),
            "--seeds",
            "1",
            "--n",
            "200",
            "--readouts",
            "mlp",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("200 | ")]
    assert {row[1] for row in rows} >= {"random", "rotated"} and all(row[2] == "mlp" for row in rows)
    # A perfect code turned by a rotation: entangled but complete, read well above chance.
    rotated = next(row for row in rows if row[1] == "rotated")
    assert all(float(cell.split(" ± ")[0]) > 0.7 for cell in rotated[3:6])
