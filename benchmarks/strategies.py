"""Batch-aware query strategies on Fashion-MNIST: learning curves, AUC, query time and memory.

Every strategy of skal (BatchBALD, PowerBALD, BADGE, core-set, TypiClust) against random, entropy,
margin and BALD, with the ResNet18 of :func:`skal.experiment.make_resnet18` retrained from scratch
every round. Three measurements:

1. **Accuracy** per round and the normalised area under the learning curve (AUC, the trapezoid
   area over the label budget divided by its width: the mean accuracy along the curve, the
   statistic CDALBench reports). One :func:`skal.experiment.run_experiment` folder per
   (strategy, repeat) under ``OUT/runs/<strategy>/seed<k>``, checkpointed after every round: the
   same command resumes where it stopped. Repeat k of every strategy uses master seed SEED + k,
   so the strategies share pool, initial labels and test subsample per repeat.
2. **Query time** as a ratio to one ``predict_proba`` pass over the same pool: on repeat 0's pool
   a model is trained on the initial labels, then ``predict_proba`` and every strategy (one batch
   of ``query_size``) are timed on the unlabelled rest, median of ``--timing-repeats``.
3. **Peak memory** of ``badge`` and ``coreset`` at 10K and 40K pools, each in a fresh subprocess:
   the kernel's peak resident set (``VmHWM``, reset just before the query through
   ``/proc/self/clear_refs``) minus the resident set before it (torch and numpy together), and
   tracemalloc's peak (numpy and Python allocations only), next to the size the materialised
   ``(n, C * d)`` gradient embedding alone would take (what scikit-activeml 1.0 builds).

The CDALBench numbers (Fashion-MNIST, ResNet18, 1K initial + 1K per round, AUC over 50 runs) are
quoted in the report for reference; the scaled protocol here is far smaller, so only the
ordering can be compared.

Scaled protocol (the default; CPU): pool 4000, test 2000, 200 initial + 200 per round for 4
rounds (1000 labels), ResNet18 width 8, 15 epochs but at least 800 steps per round, batch 32,
T = 20 MC samples, 3 repeats::

    OMP_NUM_THREADS=1 python benchmarks/strategies.py --jobs 2

Full-size (GPU): all 60K training images as pool, the 10K test set, 1K + 1K per round to 6K
labels, width 64, 50 epochs, batch 100::

    python benchmarks/strategies.py --full --out benchmarks/results/strategies_full

A tiny check that everything runs (about a minute)::

    OMP_NUM_THREADS=1 python benchmarks/strategies.py --tiny --out /tmp/strategies_tiny
"""

import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import torch

import _bench  # benchmarks/ is on sys.path when run as a script

from skal.experiment import (
    METHODS,
    ExperimentConfig,
    load_experiment_data,
    make_resnet18,
    plot_learning_curves,
)

ARMS = ("random", "entropy", "margin", "bald", "batch_bald", "power_bald", "badge", "coreset",
        "typiclust")
# CDALBench, Fashion-MNIST with ResNet18, 1K initial + 1K per round, AUC over 50 runs
CDALBENCH = {"bald": 0.854, "margin": 0.851, "badge": 0.851, "entropy": 0.847, "typiclust": 0.846,
             "coreset": 0.840, "random": 0.837}
MC_ARMS = ("bald", "batch_bald", "power_bald")  # strategies that take n_samples / subsample
LABELLED_ARMS = ("coreset", "typiclust")  # strategies that take X_labeled

PRESETS = {
    "scaled": dict(pool_size=4000, test_size=2000, n_initial=200, query_size=200, rounds=4,
                   width=8, epochs=15, min_steps=800, batch_size=32, mc_samples=20, repeats=3,
                   device="cpu", memory_pools=(10_000, 40_000), memory_width=16,
                   timing_repeats=3),
    "full": dict(pool_size=None, test_size=None, n_initial=1000, query_size=1000, rounds=5,
                 width=64, epochs=50, min_steps=0, batch_size=100, mc_samples=20, repeats=3,
                 device="cuda", memory_pools=(10_000, 40_000), memory_width=64,
                 timing_repeats=3),
    "tiny": dict(pool_size=300, test_size=200, n_initial=40, query_size=20, rounds=2, width=2,
                 epochs=1, min_steps=0, batch_size=32, mc_samples=4, repeats=1, device="cpu",
                 memory_pools=(1000, 2000), memory_width=2, timing_repeats=1),
}


# ---------------------------------------------------------------------------- runs
def config_for(args, arm, seed):
    return ExperimentConfig(
        dataset="fashion_mnist", method=arm, n_initial=args.n_initial,
        query_size=args.query_size, n_rounds=args.rounds, repeats=1, seed=seed,
        pool_size=args.pool_size, test_size=args.test_size, width=args.width,
        max_epochs=args.epochs, min_steps=args.min_steps, batch_size=args.batch_size,
        n_mc_samples=args.mc_samples, device=args.device,
    )


def run_one(args, arm, seed):
    torch.set_num_threads(args.threads)
    return _bench.run(config_for(args, arm, seed), _bench.run_dir(args.out, arm, seed),
                      progress=False)


def run_all(args):
    def done(job, seconds):
        _, arm, seed = job
        print(f"[strategies] {arm} seed {seed}: {seconds:.0f} s", flush=True)

    jobs = [(args, arm, seed) for arm, seed in _bench.jobs_for(args.arms, args.seed,
                                                               args.repeats)]
    _bench.run_jobs(jobs, run_one, args.jobs, after=done)


def collect(args):
    """Finished runs: ``{arm: [rows of one repeat, ...]}``."""
    out = {}
    for arm in args.arms:
        for k in range(args.repeats):
            rows = _bench.load_rows(_bench.run_dir(args.out, arm, args.seed + k))
            if rows is not None and len(rows) == args.rounds + 1:
                out.setdefault(arm, []).append(rows)
    return out


# ---------------------------------------------------------------------------- query time
def _strategy_kwargs(args, arm, X_labeled):
    if arm in MC_ARMS:
        return {"n_samples": args.mc_samples}
    if arm in LABELLED_ARMS:
        return {"X_labeled": X_labeled}
    return {}


def measure_query_time(args):
    """Seconds of one predict_proba pass and of each strategy on repeat 0's unlabelled pool."""
    path = os.path.join(args.out, "timing.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    torch.set_num_threads(args.threads)
    config = config_for(args, "random", args.seed)
    data = load_experiment_data(config)
    rows = data.pool_rows(0)
    labelled = data.initial_indices(0)
    rest = np.setdiff1d(np.arange(len(rows)), labelled)
    X_lab, y_lab = data.X_train[rows[labelled]], data.y_train[rows[labelled]]
    X_pool = data.X_train[rows[rest]]
    config = dataclasses.replace(config, max_epochs=config.epochs_for(len(labelled)))
    model = make_resnet18(config, 0, np.unique(data.y_train)).fit(X_lab, y_lab)

    def median_seconds(fn):
        times = []
        for _ in range(args.timing_repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    out = {"pool": len(X_pool), "query_size": args.query_size,
           "threads": torch.get_num_threads(),
           "predict_proba_s": median_seconds(lambda: model.predict_proba(X_pool))}
    for arm in args.arms:
        strategy = METHODS[arm].query_strategy
        kwargs = _strategy_kwargs(args, arm, X_lab)
        seconds = median_seconds(lambda: strategy(model, X_pool, args.query_size,
                                                  random_state=0, **kwargs))
        out[arm] = {"seconds": seconds, "ratio": seconds / out["predict_proba_s"]}
        print(f"[strategies] query time {arm}: {seconds:.2f} s "
              f"({out[arm]['ratio']:.1f} x predict_proba)", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    return out


# ---------------------------------------------------------------------------- memory
def _status_bytes(field):
    """``VmRSS`` / ``VmHWM`` (the peak resident set) of this process, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise OSError(f"/proc/self/status has no {field}")


def _reset_peak_rss():
    """Reset the kernel's peak resident set (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_worker(arm, n_pool, width, query_size, threads):
    """Run in a fresh process: peak memory of one query of ``arm`` over ``n_pool`` images."""
    from skal.datasets import load_fashion_mnist

    torch.set_num_threads(threads)
    X, y = load_fashion_mnist("train")
    n_lab = 500
    model = make_resnet18(ExperimentConfig(width=width, max_epochs=1, batch_size=64), 0,
                          np.unique(y)).fit(X[:n_lab], y[:n_lab])
    X_lab, X_pool = X[:n_lab], np.ascontiguousarray(X[n_lab:n_lab + n_pool])
    del X, y
    kwargs = {"X_labeled": X_lab} if arm == "coreset" else {}
    strategy = METHODS[arm].query_strategy
    gc.collect()
    rss_before = _status_bytes("VmRSS")
    _reset_peak_rss()  # so that loading the data and training do not count
    tracemalloc.start()
    start = time.perf_counter()
    strategy(model, X_pool, query_size, random_state=0, **kwargs)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _status_bytes("VmHWM")
    d = model.module_.out_features
    n_classes = len(model.classes_)
    return {
        "arm": arm, "pool": n_pool, "width": width, "d": d, "classes": n_classes,
        "seconds": seconds,
        "rss_before_mb": rss_before / 2**20,
        "peak_increase_mb": max(0, peak - rss_before) / 2**20,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "pool_float32_mb": X_pool.size * 4 / 2**20,
        "materialised_embedding_mb": n_pool * n_classes * d * 8 / 2**20,
    }


def measure_memory(args):
    path = os.path.join(args.out, "memory.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    out = []
    for arm in ("badge", "coreset"):
        for n_pool in args.memory_pools:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-worker", arm, str(n_pool),
                   str(args.memory_width), str(args.query_size), str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"[strategies] memory {arm} {n_pool}: peak +{out[-1]['peak_increase_mb']:.0f} "
                  f"MB", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    return out


# ---------------------------------------------------------------------------- report
def _cell(mean, std):
    return "-" if mean is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def paired_with_random(args):
    """Each arm's AUC minus random's of the same seed, over the pairs run on one machine.

    Round 0 trains on the initial labels before any query, so its accuracy is the same for
    every arm of a seed on one machine; a run whose round-0 accuracy differs from random's ran
    elsewhere (other kernels) and is counted as unpaired instead.
    """
    def finished(arm, seed):
        rows = _bench.load_rows(_bench.run_dir(args.out, arm, seed))
        return rows if rows is not None and len(rows) == args.rounds + 1 else None

    seeds = [args.seed + k for k in range(args.repeats)]
    base = {seed: finished("random", seed) for seed in seeds}
    out = []
    for arm in args.arms:
        if arm == "random":
            continue
        diffs, unpaired = [], 0
        for seed in seeds:
            r, partner = finished(arm, seed), base[seed]
            if r is None:
                continue
            if partner is None or partner[0]["accuracy"] != r[0]["accuracy"]:
                unpaired += 1
                continue
            diffs.append(100 * (_bench.auc(r) - _bench.auc(partner)))
        mean = float(np.mean(diffs)) if diffs else None
        se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
        out.append({"arm": arm, "pairs": len(diffs), "unpaired": unpaired,
                    "mean": None if mean is None else round(mean, 3), "se": round(se, 3)})
    return out


def write_report(args, timing, memory):
    runs = collect(args)
    sizes = [args.n_initial + args.query_size * r for r in range(args.rounds + 1)]
    rows, table = [], []
    for arm in args.arms:
        repeats = runs.get(arm, [])
        per_round = np.array([[row["accuracy"] for row in r] for r in repeats])  # (k, rounds+1)
        for i, n in enumerate(sizes):
            mean, std = _bench.mean_std(per_round[:, i] if repeats else [], 4)
            rows.append({"arm": arm, "n_labeled": n, "repeats": len(repeats),
                         "accuracy_mean": mean, "accuracy_std": std})
        auc_mean, auc_std = _bench.mean_std([_bench.auc(r) for r in repeats], 4)
        query_s, _ = _bench.mean_std([row["query_seconds"] for r in repeats for row in r[:-1]],
                                     2)
        table.append({
            "arm": arm, "repeats": len(repeats), "auc_mean": auc_mean, "auc_std": auc_std,
            "cdalbench_auc": CDALBENCH.get(arm),
            "query_time_ratio": round(timing[arm]["ratio"], 2) if arm in timing else None,
            "query_seconds_per_round": query_s,
        })
    command = _bench.command_line()
    summary = {"command": command, "sizes": {k: getattr(args, k) for k in (
        "pool_size", "test_size", "n_initial", "query_size", "rounds", "width", "epochs",
        "min_steps", "batch_size", "mc_samples", "repeats", "device", "threads")},
        "labels": sizes, "auc": table, "timing": timing, "memory": memory}
    _bench.write_summary(args.out, summary, rows)
    curves = {arm: [row for r in runs[arm] for row in r] for arm in runs}
    if curves:
        plot_learning_curves(curves, os.path.join(args.out, "strategies_fashion_mnist.png"),
                             title=f"Fashion-MNIST, pool {args.pool_size or 'all'}, "
                                   f"{args.n_initial} + {args.query_size}/round")
    lines = [
        "# Batch-aware query strategies on Fashion-MNIST (ResNet18)", "",
        f"Command: `{command}`", "",
        f"Pool {args.pool_size or 'all 60K'}, test {args.test_size or 'all 10K'}, "
        f"{args.n_initial} initial + {args.query_size} per round for {args.rounds} rounds "
        f"(labels {sizes}), ResNet18 width {args.width}, {args.epochs} epochs (at least "
        f"{args.min_steps} steps) per round, batch {args.batch_size}, T = {args.mc_samples} MC "
        f"samples, {args.device}, {args.threads} torch thread(s) per run.", "",
        "AUC: trapezoid area under accuracy vs labels divided by the budget width, mean ± std "
        "over repeats. CDALBench: 1K + 1K per round, full data, 50 runs (reference only). "
        f"Query time: one batch of {args.query_size} on the unlabelled pool of repeat 0 "
        f"({timing.get('pool')} images), as a multiple of one predict_proba pass "
        f"({timing.get('predict_proba_s', float('nan')):.2f} s).", "",
    ]
    lines += _bench.md_table(
        ["strategy", "repeats", "AUC", "CDALBench AUC", "query time / predict_proba",
         "query s per round"],
        [[t["arm"], t["repeats"],
          "-" if t["auc_mean"] is None else f"{t['auc_mean']:.4f} ± {t['auc_std']:.4f}",
          t["cdalbench_auc"] or "-",
          t["query_time_ratio"] if t["query_time_ratio"] is not None else "-",
          t["query_seconds_per_round"] or "-"] for t in table])
    paired = paired_with_random(args)
    summary["paired_with_random"] = paired
    _bench.write_summary(args.out, summary, rows)
    if paired:
        lines += ["", "Paired with random (same seed): each arm's AUC minus random's, mean ± "
                  "standard error over the pairs, in AUC points x 100. Only runs whose round-0 "
                  "accuracy equals random's count (round 0 has no query, so equal accuracy means "
                  "the same machine and kernels); the others are listed as unpaired.", ""]
        lines += _bench.md_table(
            ["strategy", "pairs", "AUC - random (x 100)", "unpaired repeats"],
            [[p["arm"], p["pairs"], "-" if p["mean"] is None else
              f"{p['mean']:+.2f} ± {p['se']:.2f}", p["unpaired"]] for p in paired])
    lines += ["", "Accuracy per round (mean ± std):", ""]
    lines += _bench.md_table(
        ["labels", *args.arms],
        [[n] + [_cell(r["accuracy_mean"], r["accuracy_std"])
                for r in rows[i::len(sizes)]] for i, n in enumerate(sizes)])
    if memory:
        lines += ["", "Peak memory of one query (fresh process per row): the peak resident set "
                  "during the query (VmHWM, reset before it) minus the resident set just before "
                  "it, torch included; tracemalloc: numpy "
                  "and Python allocations only; the materialised (n, C*d) float64 embedding is "
                  "what a non-factorised BADGE would hold on top.", ""]
        lines += _bench.md_table(
            ["strategy", "pool", "d", "peak increase MB", "tracemalloc peak MB",
             "pool as float32 MB", "materialised embedding MB", "seconds"],
            [[m["arm"], m["pool"], m["d"], f"{m['peak_increase_mb']:.0f}",
              f"{m['tracemalloc_peak_mb']:.0f}", f"{m['pool_float32_mb']:.0f}",
              f"{m['materialised_embedding_mb']:.0f}", f"{m['seconds']:.1f}"] for m in memory])
    _bench.write_markdown(args.out, lines)
    print("\n".join(lines))


# ---------------------------------------------------------------------------- main
def _load_json(args, name, default):
    path = os.path.join(args.out, name)
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def parse_args(argv=None):
    p = _bench.new_parser(__doc__)
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    _bench.add_presets(p, PRESETS, {"full": "full-size protocol (GPU)",
                                    "tiny": "a minute-long check that it all runs"},
                       default="scaled",
                       types={"memory_pools": lambda s: tuple(int(v) for v in s.split(","))})
    _bench.add_run_options(p, out=os.path.join("benchmarks", "results", "strategies"),
                           arms=ARMS, arms_help="comma-separated strategies",
                           seed_help="repeat k uses master seed SEED + k")
    args = p.parse_args(argv)
    _bench.apply_presets(args, PRESETS, default="scaled")
    args.arms = _bench.split_arms(p, args.arms, sorted(METHODS))
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-worker"]:
        arm, n_pool, width, query_size, threads = argv[1], *map(int, argv[2:6])
        print(json.dumps(memory_worker(arm, n_pool, width, query_size, threads)))
        return 0
    args = parse_args(argv)
    if args.report_only:  # whatever was measured before, nothing new
        timing, memory = _load_json(args, "timing.json", {}), _load_json(args, "memory.json", [])
    else:
        run_all(args)
        timing = {} if args.skip_timing else measure_query_time(args)
        memory = [] if args.skip_memory else measure_memory(args)
    write_report(args, timing, memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
