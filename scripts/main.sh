#!/usr/bin/env bash
# The default job: set up skal, then run a real BALD-vs-random active-learning experiment on
# Fashion-MNIST and draw both learning curves in one PNG. Sized to finish in under 10 minutes on
# 2 CPU cores. Run it again to resume an interrupted run (finished rounds are skipped).
#
# Usage:
#   bash scripts/main.sh                  # CPU protocol (ResNet18 width 16, pool 5000, test 2000)
#   bash scripts/main.sh --gpu-protocol   # full-width ResNet18 on a GPU (also: SKAL_FULL=1)
#   bash scripts/main.sh --rounds 8 ...   # any other argument goes on to `skal run` and wins
# Environment: SKAL_OUT (output folder, default runs/main or runs/main-gpu), SKAL_FULL=1,
# OMP_NUM_THREADS (torch threads; default: the number of cores).
# A different setting needs a different output folder (skal refuses to mix two configurations);
# more --rounds extend a finished run. CPU results depend on the torch thread count, which skal
# records: resume with the same OMP_NUM_THREADS (skal refuses another one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

protocol=cpu
[ "${SKAL_FULL:-0}" = 1 ] && protocol=gpu
extra=()
for arg in "$@"; do
  case "$arg" in
    --gpu-protocol) protocol=gpu ;;
    *) extra+=("$arg") ;;
  esac
done

common=(--dataset fashion_mnist --methods bald,random --n-initial 100 --query-size 100 --seed 0
        --mc-samples 20 --lr-schedule cosine)
if [ "$protocol" = gpu ]; then
  out=${SKAL_OUT:-runs/main-gpu}
  sizes=(--width 64 --pool-size 20000 --test-size 10000 --rounds 10 --repeats 3 --epochs 50
         --min-steps 500 --batch-size 64 --subsample 5000 --device cuda)
else
  out=${SKAL_OUT:-runs/main}
  sizes=(--width 16 --pool-size 5000 --test-size 2000 --rounds 5 --repeats 2 --epochs 8
         --min-steps 80 --batch-size 64 --subsample 2000 --device cpu)
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
echo "[main] $protocol protocol, OMP_NUM_THREADS=$OMP_NUM_THREADS: skal run ${common[*]} ${sizes[*]} ${extra[*]} --out $out"
start=$SECONDS
.venv/bin/skal run "${common[@]}" "${sizes[@]}" "${extra[@]}" --out "$out"
.venv/bin/skal compare "$out/bald" "$out/random" --out "$out/learning_curve.png"
echo "[main] done in $((SECONDS - start)) s. Results:"
echo "  learning curves:  $out/learning_curve.png"
echo "  per-round tables: $out/bald/results.csv, $out/random/results.csv (and results.jsonl)"
echo "  configs/checkpoints: $out/<method>/config.json, $out/<method>/state.json"
