#!/usr/bin/env bash
# GPU check: see bench/gpu_check.py, which it runs with the project's Python.
#
#   bash bench/gpu_check.sh [work dir (default: a temporary one)]
# Environment: STEPS (default 600), PYTHON (default .venv/bin/python if present).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
exec "$PYTHON" bench/gpu_check.py --steps "${STEPS:-600}" ${1:+--work "$1"}
