#!/usr/bin/env bash
# The GPU claims study in one prepared script: measure how many training runs share the GPU well,
# then run config/paper_check_gpu.yaml with that many packed on it and print the claims table.
#
#   bash bench/paper_check_gpu.sh [slots]
#
# 1. Packing: bench/gpu_check.py (abdi fixint, full-size dSprites, batch 64, bf16) in 1, 2, 4, 6
#    and 8 processes at once, STEPS steps each (default 300); one JSON line per process count with
#    the summed triplets/s and the peak GPU memory (results/bench/gpu_packing.jsonl). The slot count
#    kept is the smallest count within 10 % of the best summed rate (more processes than that only
#    add memory), unless given as the first argument.
# 2. The study: snakemake with --resources gpu=<slots>, resources.jobs_per_gpu=<slots>.
# 3. results/summary/claims.md, and each run's stop (run.json) for the closing note.
# The datasets and splits are made (snakemake --until make_split, on the CPUs) while step 1 runs.
# (Not their figures too: `--until make_split split_figure` stops with Snakemake's "BUG: Out of
# jobs ready to be started" before any split_figure job, 9.27.1.)
# Environment: PYTHON (default .venv/bin/python), SNAKEMAKE (default: beside PYTHON), STEPS,
# PACK_COUNTS (the process counts step 1 tries, default "1 2 4 6 8"), SKIP_PACKING=1 to go
# straight to 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
SNAKEMAKE="${SNAKEMAKE:-$(dirname "$PYTHON")/snakemake}"
STEPS="${STEPS:-300}"
PACK_COUNTS="${PACK_COUNTS:-1 2 4 6 8}"
mkdir -p results/bench
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# Datasets and splits need no GPU: made in the background while the packing runs.
"$SNAKEMAKE" --cores "$(nproc)" --configfile config/paper_check_gpu.yaml \
    --until make_split --rerun-incomplete --quiet rules &
prepare=$!

slots="${1:-}"
if [ -z "$slots" ] && [ "${SKIP_PACKING:-0}" != 1 ]; then
    work="$(mktemp -d)"
    "$PYTHON" bench/gpu_check.py --work "$work" --steps 10 >/dev/null  # renders dSprites once
    : > results/bench/gpu_packing.jsonl
    for n in $PACK_COUNTS; do
        pids=()
        for i in $(seq "$n"); do
            "$PYTHON" bench/gpu_check.py --work "$work" --steps "$STEPS" > "$work/run$i.json" &
            pids+=($!)
        done
        wait "${pids[@]}"
        "$PYTHON" - "$n" "$work" >> results/bench/gpu_packing.jsonl <<'PY'
import json, sys
from pathlib import Path
n, work = int(sys.argv[1]), Path(sys.argv[2])
runs = [json.loads((work / f"run{i}.json").read_text()) for i in range(1, n + 1)]
print(json.dumps({
    "processes": n,
    "triplets_per_s_total": sum(r["triplets_per_s"] for r in runs),
    "triplets_per_s_each": [round(r["triplets_per_s"]) for r in runs],
    "peak_gpu_memory_gib_each": max(r["peak_gpu_memory_gib"] or 0 for r in runs),
}))
PY
    done
    cat results/bench/gpu_packing.jsonl
    slots="$("$PYTHON" - <<'PY'
import json
rows = [json.loads(line) for line in open("results/bench/gpu_packing.jsonl")]
best = max(r["triplets_per_s_total"] for r in rows)
print(min(r["processes"] for r in rows if r["triplets_per_s_total"] >= 0.9 * best))
PY
)"
fi
slots="${slots:-6}"
wait "$prepare"
echo "paper_check_gpu: ${slots} runs per GPU"

printf 'resources:\n  jobs_per_gpu: %s\n' "$slots" > results/bench/gpu_slots.yaml
"$SNAKEMAKE" --cores "$(nproc)" --resources gpu="$slots" mem_mb=120000 \
    --configfile config/paper_check_gpu.yaml results/bench/gpu_slots.yaml --rerun-incomplete --quiet rules
cat results/summary/claims.md
"$PYTHON" - <<'PY'
import json, glob
for path in sorted(glob.glob("results/runs/**/run.json", recursive=True)):
    r = json.load(open(path))
    print(path, r.get("stopped"), "epoch", r.get("stopped_epoch"), "best", r.get("best_epoch"),
          "gap probes", [round(g, 2) for g in (r.get("probe_gap") or [])[-3:]], f"{r['wall_seconds']:.0f} s")
PY
