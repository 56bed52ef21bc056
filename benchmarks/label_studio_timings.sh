#!/usr/bin/env bash
# What the Label Studio test costs: installing Label Studio 1.23.2 into a fresh environment (the
# block of scripts/setup.sh, into a temporary folder; the pip cache as it is) and running
# tests/labeling/test_label_studio.py (the server's start-up is printed by its fixture). Appends one entry to
# benchmarks/results/label_studio/timings.log with the machine's cores and load.
# Usage: bash benchmarks/label_studio_timings.sh [--no-install]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=benchmarks/results/label_studio/timings.log
mkdir -p "$(dirname "$out")"
{
  echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), torch threads 1 (tests/conftest.py)"
  if [ "${1:-}" != --no-install ]; then
    tmp=$(mktemp -d)
    PY=${PYTHON:-python3} SKAL_LS_VENV="$tmp/venv-ls" bash -c \
      'set -euo pipefail; eval "$(sed -n "/^LS_VENV=/,/^fi$/p" scripts/setup.sh)"' 2>&1 \
      | grep '^\[setup\]'
    echo "[install] $(du -sh "$tmp/venv-ls" | cut -f1) on disk"
    rm -rf "$tmp"
  fi
  start=$SECONDS
  .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/labeling/test_label_studio.py --durations=3 2>&1 \
    | grep -E "Label Studio up in|passed|failed|skipped|s (setup|call)"
  echo "[test] tests/labeling/test_label_studio.py: $((SECONDS - start)) s wall"
} | tee -a "$out"
