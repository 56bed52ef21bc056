#!/usr/bin/env bash
# The default job: set up skal, then measure the labels the recipe saves on Fashion-MNIST.
# Three arms on the same pools, initial labels and test set (skal run, 3 repeats):
#   random + scratch    today's baseline: random picks, a ResNet18 trained from scratch each round
#   random + ssl-head   the recipe: a SimCLR encoder fitted once per repeat on the unlabelled pool,
#                       frozen, and an MC-dropout head on its features (random picks)
#   badge  + ssl-head   the recipe with its best strategy in benchmarks/results/label_efficiency
# then prints the labels saved (the budget at which a recipe arm first reaches the baseline's
# accuracy at its largest budget, per repeat and on the mean curve, interpolated, and the ratio)
# and draws the three learning curves in one PNG. Sized for 15 minutes on 2 CPU cores, set-up
# included. Run it again to resume an interrupted run (finished rounds and the fitted encoders
# are reused).
#
# Usage:
#   bash scripts/main.sh                  # CPU protocol (pool 3000, test 2000, 20..500 labels)
#   bash scripts/main.sh --gpu-protocol   # larger pool, encoder and budgets on a GPU (also: SKAL_FULL=1)
#   bash scripts/main.sh --repeats 5 ...  # any other argument goes on to every `skal run` and wins
# Environment: SKAL_OUT (output folder, default runs/main or runs/main-gpu), SKAL_FULL=1,
# OMP_NUM_THREADS (torch threads per run; CPU protocol: default 1, and with 2 or more cores the
# baseline and the recipe run side by side, one core each; GPU protocol: default the number of
# cores, one run after the other).
# A different setting needs a different output folder (skal refuses to mix two configurations);
# more --rounds or --repeats extend a finished run. CPU results depend on the torch thread count,
# which skal records: resume with the same OMP_NUM_THREADS (skal refuses another one).
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

common=(--dataset fashion_mnist --n-initial 20 --seed 0)
if [ "$protocol" = gpu ]; then
  out=${SKAL_OUT:-runs/main-gpu}
  sizes=(--pool-size 20000 --test-size 10000 --query-size 100 --rounds 20 --repeats 5
         --device cuda)
  scratch=(--width 64 --epochs 50 --min-steps 500 --batch-size 64 --lr-schedule cosine)
  recipe=(--encoder-width 32 --encoder-epochs 100 --encoder-batch-size 512 --epochs 30
          --min-steps 500 --batch-size 64)
else
  out=${SKAL_OUT:-runs/main}
  sizes=(--pool-size 3000 --test-size 2000 --query-size 60 --rounds 8 --repeats 3 --device cpu)
  # today's main-job training (ResNet18 width 16, >= 80 steps a round, cosine schedule)
  scratch=(--width 16 --epochs 8 --min-steps 80 --batch-size 64 --lr-schedule cosine)
  # encoder: width 24 with a stride-2 stem (about the cost of width 8 at stride 1), 10 epochs of
  # batch 128 on the 3000 pool images, all four stages' features; head: >= 500 steps
  recipe=(--encoder-width 24 --encoder-stem-stride 2 --encoder-feature-stages all
          --encoder-epochs 10 --encoder-batch-size 128 --epochs 30 --min-steps 500 --batch-size 64)
fi

cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS
side_by_side=0
if [ "$protocol" = cpu ]; then
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  [ "$cores" -ge 2 ] && side_by_side=1
else
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$cores}"
fi
skal=.venv/bin/skal
echo "[main] $protocol protocol, OMP_NUM_THREADS=$OMP_NUM_THREADS, output in $out"
start=$SECONDS
cpu_start=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)  # this shell's + its children's ticks
run() { echo "[main] skal run $*"; "$skal" run "$@"; }
baseline() {
  run --recipe scratch --method random "${common[@]}" "${sizes[@]}" "${scratch[@]}" \
      "${extra[@]}" --out "$out/scratch"
}
with_recipe() {
  run --recipe ssl-head --methods random,badge "${common[@]}" "${sizes[@]}" "${recipe[@]}" \
      "${extra[@]}" --out "$out/ssl-head"
}
if [ "$side_by_side" = 1 ]; then
  # two independent runs, one core each: the baseline's progress goes to a log, the recipe's here
  mkdir -p "$out"
  echo "[main] the baseline runs beside the recipe; its progress: $out/scratch.log"
  baseline > "$out/scratch.log" 2>&1 &
  baseline_pid=$!
  trap 'kill "$baseline_pid" 2>/dev/null || true' EXIT  # an interrupted job stops both runs
  with_recipe
  echo "[main] waiting for the baseline (random + scratch) to finish"
  if ! wait "$baseline_pid"; then
    tail -n 20 "$out/scratch.log" >&2
    echo "[main] the baseline run failed (above: the end of $out/scratch.log)" >&2
    exit 1
  fi
  trap - EXIT
  grep "mean test accuracy" "$out/scratch.log" | sed 's/^/[random + scratch] /'
else
  baseline
  with_recipe
fi
"$skal" compare "$out/ssl-head" --baseline "$out/scratch" --out "$out/learning_curve.png" \
    --summary "$out/labels_saved.json" --title "Fashion-MNIST: the recipe vs today's training"
# the labels saved at every budget of the baseline (mean curves; "-": never reached)
.venv/bin/python - "$out/labels_saved.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print("[main] labels a recipe arm needs to reach random + scratch's accuracy at each budget:")
for run in dict.fromkeys(r["run"] for r in rows):
    cells = [f"{r['reference']}->{'-' if r['mean_curve'] is None else round(r['mean_curve'])}"
             for r in rows if r["run"] == run]
    print(f"  {run}: {', '.join(cells)}")
PY
cpu_ticks=$(( $(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat) - cpu_start ))
echo "[main] done in $((SECONDS - start)) s wall, $((cpu_ticks / $(getconf CLK_TCK))) CPU s" \
     "(after set-up), OMP_NUM_THREADS=$OMP_NUM_THREADS. Results:"
echo "  learning curves:  $out/learning_curve.png"
echo "  labels saved:     $out/labels_saved.json (every budget of the baseline)"
echo "  per-round tables: $out/scratch/results.csv, $out/ssl-head/{random,badge}/results.csv"
echo "  encoders:         $out/ssl-head/encoders/ (one per repeat, reused on a resume)"
