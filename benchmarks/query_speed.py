"""How much does a BALD query cost compared with one plain prediction pass over the pool?

skal's :meth:`~skal.MCDropoutClassifier.sample_proba` runs the deterministic ResNet trunk once per
batch and samples only the dropout head T times, so ``skal.bald`` with T=20 should cost about one
``predict_proba`` pass (target: bald / predict_proba <= 1.3). The naive way, T full forward passes
with only dropout switched on (what modAL's ``mc_dropout_bald`` and baal's ``MCDropoutModule`` do),
costs about T passes; it is emulated here with ``sample_proba(..., cache=False)``, timed on a subset
of the pool and scaled linearly to the pool size.

Everything is measured in one process and one run, with the phases interleaved round by round
(predict_proba, bald, naive, predict_proba, ...), so load from other processes on a shared machine
hits all phases alike and the ratios stay meaningful even when the absolute times do not.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/query_speed.py --pool-size 10000 --naive-subset 1000 \\
        --n-samples 20 --width 64 --device cpu --out benchmarks/results/query_speed

writes ``<out>.json`` (all raw numbers) and ``<out>.md`` (a summary with the command at the top).
Both are rewritten after every round, with ``"complete": false`` until the last one.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import threading
import time
import tracemalloc

import numpy as np
import torch

import skal
from skal import ResNet18Classifier, bald
from skal.datasets import load_fashion_mnist
from skal.query import bald_scores, select_top

PHASES = ("predict_proba", "bald", "naive")


# ----------------------------------------------------------------------------- measurement helpers
def _rss_bytes():
    """Current resident set size of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _ru_maxrss_bytes():
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024  # macOS reports bytes, Linux KiB


class _RSSSampler:
    """Peak RSS during a block, sampled by a background thread (cheap: one read every 10 ms)."""

    def __init__(self, interval=0.01):
        self.interval = interval

    def __enter__(self):
        self.start = _rss_bytes()
        self.peak = self.start or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        rss = _rss_bytes()
        if rss is not None and rss > self.peak:
            self.peak = rss


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _measure(fn, device):
    """Run ``fn`` once; return (wall seconds, process CPU seconds, memory dict)."""
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.reset_peak()
    base_traced = tracemalloc.get_traced_memory()[0]
    with _RSSSampler() as rss:
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    mem = {
        "tracemalloc_peak_mb": (tracemalloc.get_traced_memory()[1] - base_traced) / 2**20,
        "rss_peak_mb": rss.peak / 2**20 if rss.start is not None else None,
        "rss_peak_increase_mb": (rss.peak - rss.start) / 2**20 if rss.start is not None else None,
    }
    if cuda:
        mem["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return seconds, cpu_seconds, mem


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git_state():
    """HEAD of the repository and whether skal/ had uncommitted changes (None outside git)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "skal"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"head": head, "skal_dirty": bool(dirty)}


def _command():
    exe = sys.executable
    rel = os.path.relpath(exe)
    if not rel.startswith(".."):
        exe = rel
    env = f"PYTHONPATH={os.environ['PYTHONPATH']} " if os.environ.get("PYTHONPATH") else ""
    return env + shlex.join([exe] + sys.argv)


# ----------------------------------------------------------------------------- report
def _fmt_s(x):
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def _markdown(res):
    cfg, env, med, rat = res["config"], res["environment"], res["median_s"], res["ratios"]
    mem = res["memory"]
    P, S, T = cfg["pool_size"], cfg["naive_subset"], cfg["n_samples"]
    scale = P / S
    t, ct = res["timings_s"], res["cpu_timings_s"]
    cmed, crat = res["median_cpu_s"], res["ratios_cpu"]

    def per_round(times):
        return ", ".join(f"{b / q:.2f}" for q, b in zip(times["predict_proba"], times["bald"]))

    def both(ph):
        key = "naive_subset" if ph == "naive" else ph
        return " | ".join(
            f"{_fmt_s(m[key])} ({', '.join(_fmt_s(x) for x in times[ph])})"
            for m, times in ((med, t), (cmed, ct))
        )
    lines = [
        "# Query speed: skal.bald vs predict_proba vs naive MC dropout",
        "",
        "Command (from the repository root):",
        "",
        "```",
        res["command"],
        "```",
        "",
    ]
    if res.get("note"):
        lines += [f"Note: {res['note']}", ""]
    if not res["complete"]:
        lines += [f"**Partial results** ({res['rounds_done']} of {cfg['repeats']} rounds done).", ""]
    lines += [
        f"Pool: {P:,} real Fashion-MNIST training images (uint8, 1x28x28), disjoint from the "
        f"{cfg['fit_size']} images the `ResNet18Classifier(width={cfg['width']})` "
        f"({'standard full width' if cfg['width'] == 64 else 'standard width is 64'}) was "
        f"fitted on for {cfg['fit_epochs']} epoch(s) ({_fmt_s(res['fit_seconds'])}; only timing "
        f"matters here). batch_size={cfg['batch_size']} for every phase (skorch's predict_proba "
        f"iterator and sample_proba's own loop use the estimator's batch_size), T={T} MC samples.",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} logical CPUs, device `{cfg['device']}`, "
        f"torch {env['torch']} with torch.set_num_threads({env['torch_threads']}) "
        f"(interop {env['torch_interop_threads']}), skorch {env['skorch']}, "
        f"scikit-learn {env['sklearn']}, numpy {env['numpy']}, Python {env['python']}.",
        "",
    ]
    git = env.get("git")
    if git:
        lines += [
            f"Code: skal at commit `{git['head']}`"
            + (" with uncommitted changes under skal/" if git["skal_dirty"] else "") + ".",
            "",
        ]
    lines += [
        f"**The machine was shared** with other people's jobs (load average "
        f"{env['loadavg_start']} at the start, {env['loadavg_end']} at the end, on "
        f"{env['cpu_count']} CPUs), so absolute wall times are slower and noisier than on an idle "
        "machine. The ratios are what this benchmark is for: all phases ran in the same process, "
        f"interleaved round by round. Each time is the median of {cfg['repeats']} rounds "
        f"({cfg['naive_repeats']} for the naive way); every single time is in the JSON.",
        "",
        "Two clocks per phase: **wall** (`time.perf_counter`, what a user waits) and **CPU** "
        "(`time.process_time`, CPU seconds used by this process, all its threads). On a shared "
        "machine the wall time of a phase depends on how much CPU the other processes took "
        "meanwhile; the CPU time does not, so the CPU-time ratios are the reliable cost "
        "comparison and the wall-clock ratios show what the load did.",
        "",
        "| phase | what runs | wall: median (all runs) | CPU: median (all runs) |",
        "|---|---|---|---|",
        f"| predict_proba | 1 deterministic pass over {P:,} images | {both('predict_proba')} |",
        f"| `skal.bald(n_samples={T})` | trunk once + head {T}x over {P:,} images, BALD scores, "
        f"top-{cfg['n_instances']} | {both('bald')} |",
        f"| naive, measured | {T} full passes (`sample_proba(cache=False)`) + BALD scores over a "
        f"{S:,}-image subset | {both('naive')} |",
        f"| **naive, scaled to {P:,}** | the subset time x {scale:g} (linear scaling, not measured "
        f"on the full pool) | {_fmt_s(med['naive_scaled'])} | {_fmt_s(cmed['naive_scaled'])} |",
        "",
        "| ratio | wall clock | CPU time | target |",
        "|---|---|---|---|",
        f"| bald / predict_proba (ratio of medians) | {rat['bald_over_predict_proba']:.2f} "
        f"| **{crat['bald_over_predict_proba']:.2f}** | <= 1.3 |",
        f"| bald / predict_proba, per round | {per_round(t)} | {per_round(ct)} | |",
        f"| naive (scaled) / bald | {rat['naive_over_bald']:.1f} "
        f"| **{crat['naive_over_bald']:.1f}** | about T = {T} |",
        f"| naive (scaled) / predict_proba | {rat['naive_over_predict_proba']:.1f} "
        f"| {crat['naive_over_predict_proba']:.1f} | |",
        "",
        "Peak memory per phase, largest over the rounds (naive: on the subset, not scaled). "
        "`tracemalloc` sees NumPy buffers (the probabilities and scores), not torch's CPU "
        "allocator; RSS is the whole process, sampled every 10 ms, so it includes the model, "
        "the pool and torch's caches.",
        "",
        "| phase | tracemalloc peak (NumPy) | RSS peak | RSS increase during phase |"
        + (" CUDA max allocated |" if "cuda_max_allocated_mb" in mem["predict_proba"] else ""),
        "|---|---|---|---|" + ("---|" if "cuda_max_allocated_mb" in mem["predict_proba"] else ""),
    ]
    for ph in PHASES:
        m = mem[ph]
        row = (
            f"| {ph} | {m['tracemalloc_peak_mb']:.1f} MiB | {m['rss_peak_mb']:.0f} MiB "
            f"| {m['rss_peak_increase_mb']:.0f} MiB |"
        )
        if "cuda_max_allocated_mb" in m:
            row += f" {m['cuda_max_allocated_mb']:.0f} MiB |"
        lines.append(row)
    ex = res["exactness"]
    lines += [
        "",
        f"Process peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, whole run including "
        f"data loading and the fit): {res['ru_maxrss_mb']:.0f} MiB.",
        "",
        f"Exactness check (same seed, {ex['n_images']} pool images, T={T}): the head-only cache "
        f"and the naive full passes give samples that differ by at most "
        f"{ex['max_abs_diff_samples']:.2e} (probabilities) and BALD scores that differ by at most "
        f"{ex['max_abs_diff_bald']:.2e}: caching the trunk changes the cost, not the result.",
        "",
        f"Run finished {res['finished']} (UTC).",
        "",
    ]
    return "\n".join(lines)


def _medians_and_ratios(t, scale):
    med = {
        "predict_proba": statistics.median(t["predict_proba"]),
        "bald": statistics.median(t["bald"]),
        "naive_subset": statistics.median(t["naive"]),
    }
    med["naive_scaled"] = med["naive_subset"] * scale
    ratios = {
        "bald_over_predict_proba": med["bald"] / med["predict_proba"],
        "naive_over_bald": med["naive_scaled"] / med["bald"],
        "naive_over_predict_proba": med["naive_scaled"] / med["predict_proba"],
    }
    return med, ratios


def _summarise(res):
    cfg = res["config"]
    scale = cfg["pool_size"] / cfg["naive_subset"]
    res["median_s"], res["ratios"] = _medians_and_ratios(res["timings_s"], scale)
    res["median_cpu_s"], res["ratios_cpu"] = _medians_and_ratios(res["cpu_timings_s"], scale)
    res["memory"] = {
        ph: {
            key: max(m[key] for m in res["memory_per_round"][ph])
            for key in res["memory_per_round"][ph][0]
            if res["memory_per_round"][ph][0][key] is not None
        }
        for ph in PHASES
    }
    res["ru_maxrss_mb"] = _ru_maxrss_bytes() / 2**20
    res["environment"]["loadavg_end"] = _loadavg()
    res["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _write(res, out):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(out + ".md", "w") as f:
        f.write(_markdown(res))


# ----------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pool-size", type=int, default=10000)
    p.add_argument("--naive-subset", type=int, default=1000,
                   help="pool images the naive T-full-passes way is timed on (scaled linearly)")
    p.add_argument("--n-samples", type=int, default=20, help="MC samples T")
    p.add_argument("--width", type=int, default=64, help="ResNet18 width (64 = standard)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/query_speed",
                   help="output path without extension: writes OUT.json and OUT.md")
    p.add_argument("--repeats", type=int, default=3, help="timing rounds (median is reported)")
    p.add_argument("--naive-repeats", type=int, default=None,
                   help="rounds that also time the naive way (default: --repeats)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: number of CPUs)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fit-size", type=int, default=500)
    p.add_argument("--fit-epochs", type=int, default=1)
    p.add_argument("--n-instances", type=int, default=100, help="query size for bald")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default=None, help="free text added to the report (e.g. why --threads)")
    p.add_argument("--render-only", action="store_true",
                   help="only rewrite OUT.md from an existing OUT.json (no measurement)")
    args = p.parse_args(argv)
    if args.render_only:
        with open(args.out + ".json") as f:
            res = json.load(f)
        with open(args.out + ".md", "w") as f:
            f.write(_markdown(res))
        print(f"rewrote {args.out}.md from {args.out}.json", flush=True)
        return res
    naive_repeats = args.repeats if args.naive_repeats is None else args.naive_repeats
    if not 1 <= naive_repeats <= args.repeats:
        p.error("--naive-repeats must be between 1 and --repeats")
    if args.naive_subset > args.pool_size:
        p.error("--naive-subset cannot exceed --pool-size")

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    import sklearn
    import skorch

    res = {
        "benchmark": "query_speed",
        "command": _command(),
        "complete": False,
        "rounds_done": 0,
        "config": {
            "pool_size": args.pool_size,
            "naive_subset": args.naive_subset,
            "naive_scaled_linearly_by": args.pool_size / args.naive_subset,
            "n_samples": args.n_samples,
            "width": args.width,
            "device": args.device,
            "repeats": args.repeats,
            "naive_repeats": naive_repeats,
            "batch_size": args.batch_size,
            "fit_size": args.fit_size,
            "fit_epochs": args.fit_epochs,
            "n_instances": args.n_instances,
            "seed": args.seed,
            "dataset": "Fashion-MNIST train split (skal.datasets.load_fashion_mnist)",
        },
        "environment": {
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "skorch": skorch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "skal": skal.__version__,
            "python": platform.python_version(),
            "git": _git_state(),
            "cuda_device": torch.cuda.get_device_name(0)
            if args.device.startswith("cuda") and torch.cuda.is_available() else None,
            "loadavg_start": _loadavg(),
        },
        "note": args.note,
        "timings_s": {ph: [] for ph in PHASES},
        "cpu_timings_s": {ph: [] for ph in PHASES},
        "memory_per_round": {ph: [] for ph in PHASES},
    }

    X, y = load_fashion_mnist("train")
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(X))
    fit_idx = perm[: args.fit_size]
    X_pool = np.ascontiguousarray(X[perm[args.fit_size: args.fit_size + args.pool_size]])
    X_sub = X_pool[: args.naive_subset]
    T = args.n_samples

    clf = ResNet18Classifier(
        width=args.width, max_epochs=args.fit_epochs, batch_size=args.batch_size,
        random_state=args.seed, device=args.device,
    )
    t0 = time.perf_counter()
    clf.fit(X[fit_idx], y[fit_idx])
    res["fit_seconds"] = time.perf_counter() - t0
    # skorch's predict_proba iterates with iterator_valid, whose batch size is the estimator's
    # batch_size unless iterator_valid__batch_size is set; sample_proba loops with batch_size too.
    res["config"]["predict_proba_batch_size"] = clf.get_params().get(
        "iterator_valid__batch_size", clf.batch_size)
    res["config"]["sample_proba_batch_size"] = clf.batch_size
    print(f"fitted in {res['fit_seconds']:.1f} s; threads={threads}", flush=True)

    def run_predict():
        clf.predict_proba(X_pool)

    def run_bald():
        bald(clf, X_pool, n_instances=args.n_instances, n_samples=T, random_state=args.seed)

    def run_naive():
        samples = clf.sample_proba(X_sub, n_samples=T, cache=False, random_state=args.seed)
        select_top(bald_scores(samples), min(args.n_instances, len(X_sub)))

    # Warm-up (one-time costs: oneDNN primitive creation, allocator growth) and exactness check.
    n_check = min(64, len(X_sub))
    clf.predict_proba(X_pool[:n_check])
    cached = clf.sample_proba(X_sub[:n_check], n_samples=T, random_state=123)
    naive = clf.sample_proba(X_sub[:n_check], n_samples=T, random_state=123, cache=False)
    res["exactness"] = {
        "n_images": n_check,
        "max_abs_diff_samples": float(np.abs(cached - naive).max()),
        "max_abs_diff_bald": float(np.abs(bald_scores(cached) - bald_scores(naive)).max()),
    }
    print(f"exactness: {res['exactness']}", flush=True)

    tracemalloc.start()
    runs = {"predict_proba": run_predict, "bald": run_bald, "naive": run_naive}
    for r in range(args.repeats):
        for ph in PHASES:
            if ph == "naive" and r >= naive_repeats:
                continue
            seconds, cpu_seconds, mem = _measure(runs[ph], args.device)
            res["timings_s"][ph].append(seconds)
            res["cpu_timings_s"][ph].append(cpu_seconds)
            res["memory_per_round"][ph].append(mem)
            print(f"round {r + 1}/{args.repeats} {ph}: {seconds:.2f} s wall, "
                  f"{cpu_seconds:.2f} s CPU, {mem}", flush=True)
        res["rounds_done"] = r + 1
        res["complete"] = r + 1 == args.repeats
        _summarise(res)
        _write(res, args.out)
        print(f"round {r + 1}: ratios {res['ratios']}", flush=True)
    tracemalloc.stop()
    print(f"wrote {args.out}.json and {args.out}.md", flush=True)
    return res


if __name__ == "__main__":
    main()
