"""Planning benchmark: seconds for `snakemake -n` on the default study and on a 1,000-run study.

Prints one JSON object keyed by study (`default`: config/config.yaml; `thousand`: the generated
1,000-run study in tests/configs/load.yaml, 4 conditions x 25 models x 10 seeds), each with
`seconds` (wall clock of the whole dry run, interpreter start included; the median over --reps),
`jobs` (jobs planned) and `runs` (train jobs planned: the study's training runs). Planning is done in an empty
temporary folder, so every job of the study is planned. Usage:

    python bench/plan.py [--reps 3] [--studies default thousand] [--config FILE ...]

`--config` plans other study configs instead (keyed by path), e.g. a small one as a smoke check.

Earlier limits asserted in tests/test_load.py: default < 10 s, thousand < 60 s (2 shared cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDIES = {"default": None, "thousand": ROOT / "tests/configs/load.yaml"}  # None: config/config.yaml


def plan(workdir: Path, configfile: Path | None) -> tuple[float, dict[str, int]]:
    """(seconds, planned jobs per rule and in `total`) for one dry run of the Snakefile in `workdir`."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "-n",
    ]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"planning failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    return seconds, job_stats(done.stdout)


def job_stats(stdout: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: jobs per rule, and the `total` row."""
    lines = stdout.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    except StopIteration:
        raise SystemExit(f"no job stats in the plan:\n{stdout[-3000:]}") from None
    counts = {}
    for line in lines[start + 1 :]:
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
            if fields[0] == "total":
                return counts
    raise SystemExit(f"no total in the job stats:\n{stdout[-3000:]}")


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1, help="dry runs per study; the median is reported")
    parser.add_argument("--studies", nargs="+", choices=list(STUDIES), default=None, help="default: all")
    parser.add_argument(
        "--config", nargs="+", type=Path, default=[], help="study configs to plan instead of --studies"
    )
    args = parser.parse_args(argv)
    studies = {name: STUDIES[name] for name in args.studies or ([] if args.config else STUDIES)}
    studies.update({str(path): path.resolve() for path in args.config})
    results = {}
    for name, configfile in studies.items():
        times = []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory() as tmp:
                seconds, stats = plan(Path(tmp), configfile)
            times.append(seconds)
        results[name] = {
            "seconds": round(statistics.median(times), 2),
            "runs": stats.get("train", 0),
            "jobs": stats["total"],
            "config": shown(configfile or ROOT / "config/config.yaml"),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
