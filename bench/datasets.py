"""Benchmark the procedural generators: seconds and peak memory to prepare each full grid.

Prints one JSON object keyed by dataset, each with `seconds` (prepare_dataset, HDF5 writing
included), `peak_mb` (peak resident memory of a fresh child process that only prepares that
dataset) and `images`. Usage:

    python bench/datasets.py                                  # every dataset, full grids
    python bench/datasets.py --datasets dsprites shapes3d --subsample-factor 4   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare_in_this_process(name: str, step: int, out_dir: str) -> None:
    from compgen.datasets import REGISTRY
    from compgen.datasets.prepare import prepare_dataset

    grid = REGISTRY[name].grid
    subsample = {f.name: step for f in grid.factors} if step > 1 else {}
    out = Path(out_dir) / f"{name}.h5"
    start = time.perf_counter()
    prepare_dataset(name, {"source": "procedural", "subsample": subsample}, out)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": round(seconds, 2), "images": grid.subsample(subsample).n}))


def measure(name: str, step: int, out_dir: str) -> dict:
    """Run one dataset in a child process; its own rusage gives the peak RSS."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", name, "--subsample-factor", str(step), "--out-dir", out_dir],
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{name}: generation failed with exit code {child.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "peak_mb": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every registered dataset")
    parser.add_argument(
        "--subsample-factor", type=int, default=1, help="keep every k-th value of every factor"
    )
    parser.add_argument("--out-dir", default=None, help="where the temporary HDF5 files go (default: temp)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        prepare_in_this_process(args.child, args.subsample_factor, args.out_dir)
        return

    from compgen.datasets import REGISTRY

    names = args.datasets or list(REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; allowed: {', '.join(REGISTRY)}")
    results = {}
    for name in names:
        with tempfile.TemporaryDirectory(dir=args.out_dir) as tmp:  # one file on disk at a time
            results[name] = measure(name, args.subsample_factor, tmp)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
