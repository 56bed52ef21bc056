"""BALD over pools larger than memory: peak memory, time against n, 1 vs 2 processes, a cost model.

For each pool size n (default 10K, 100K and 1M synthetic 1x28x28 uint8 images, each stored as its
own ``.npy`` file and opened with ``np.load(mmap_mode="r")``), a *fresh* Python process loads a
fitted ``ResNet18Classifier(width=W)`` and runs ``skal.bald(clf, memmap, n_instances=100,
n_samples=20, random_state=0)`` once. It reports the wall and CPU time of the query and its peak
resident memory: the process's high-water mark (Linux ``VmHWM``; ``ru_maxrss`` is recorded too,
but Linux carries it over from the parent process), which also counts torch, the model and the
interpreter: the *increase* over the RSS just before the query is the query's own.
With ``--processes 1 2`` the same query also runs under ``torchrun --nproc_per_node 2`` (gloo,
one process per CPU core), and the ratio of the two wall times is reported. A cost model then
scales the measured per-image cost to a 10M-image pool on 1, 8 and 64 GPUs, from the FLOPs of
one image (counted with ``torch.utils.flop_counter``) and an *assumed* sustained GPU throughput.

``--calibrate`` instead times the query on a small pool at several widths (per-image cost), to
choose a width whose 1M-image run fits the time at hand.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/scale.py --sizes 10000 100000 1000000 \\
        --width 16 --threads 1 --processes 1 2 --out benchmarks/results/scale/scale
    PYTHONPATH=. .venv/bin/python benchmarks/scale.py --calibrate --widths 8 16 32 64 \\
        --calibrate-size 1000 --out benchmarks/results/scale/calibrate

write ``<out>.json`` (every number) and ``<out>.md`` (tables, the command, the machine and the
assumptions), rewritten after every run. Pools and the fitted model are cached in ``--data-dir``.
"""

import argparse
import datetime
import json
import os
import pickle
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TOP_K = 100

# Assumptions of the cost model (not measured here; override on the command line).
GPU_NAME = "NVIDIA A100 (bf16)"
GPU_PEAK_TFLOPS = 312.0  # dense bf16 tensor-core peak, NVIDIA A100 datasheet
GPU_UTILISATION = 0.30  # fraction of peak sustained by small-image ResNet convolutions (assumed)
SCALING_EFFICIENCY = 0.90  # multi-GPU efficiency (each GPU scores its own chunks; assumed)
READ_GBPS = 2.0  # sequential read bandwidth per node, GB/s (one NVMe SSD; assumed)
GPUS_PER_NODE = 8


# ----------------------------------------------------------------------------- helpers
def _ru_maxrss_mib():
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20 if sys.platform == "darwin" else kib / 2**10  # macOS: bytes; Linux: KiB


def _vm_hwm_mib():
    """This process image's peak RSS (Linux ``VmHWM``): unlike ``ru_maxrss``, which Linux
    carries over from the parent when a child is forked and exec'd (so a child of a process that
    holds 1.2 GB reports at least 1.2 GB), it starts afresh at exec. None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.lower().startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = None
    import skorch
    import sklearn

    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "memory_gib": mem,
        "python": platform.python_version(), "torch": torch.__version__,
        "skorch": skorch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# ----------------------------------------------------------------------------- data
def make_pool(path, n, seed=0, block=50_000):
    """A synthetic (n, 1, 28, 28) uint8 pool written block by block (never in memory whole)."""
    path = Path(path)
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.npy")
    X = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 1, 28, 28))
    rng = np.random.default_rng(seed)
    for start in range(0, n, block):
        stop = min(start + block, n)
        X[start:stop] = rng.integers(0, 256, size=(stop - start, 1, 28, 28), dtype=np.uint8)
    X.flush()
    del X
    tmp.rename(path)
    return path


def make_model(path, width, batch_size, threads, seed=0):
    """A ResNet18Classifier(width) fitted for 1 epoch on 512 synthetic images (timing only)."""
    path = Path(path)
    if path.exists():
        return path
    from skal import ResNet18Classifier

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(512, 1, 28, 28), dtype=np.uint8)
    y = np.arange(512) % 10
    clf = ResNet18Classifier(width=width, max_epochs=1, batch_size=batch_size,
                             random_state=seed).fit(X, y)
    with open(path, "wb") as f:
        pickle.dump(clf, f)
    return path


def flops_per_image(width, n_samples):
    """FLOPs of one BALD image: the trunk once and the dropout head ``n_samples`` times."""
    from torch.utils.flop_counter import FlopCounterMode

    from skal.nets.resnet import ResNet18

    net = ResNet18(in_channels=1, n_classes=10, width=width, dropout=0.5).eval()
    x = torch.zeros(8, 1, 28, 28)
    with torch.no_grad():
        with FlopCounterMode(display=False) as trunk:
            z = net.features(x)
        with FlopCounterMode(display=False) as head:
            net.head(z)
    return (trunk.get_total_flops() + n_samples * head.get_total_flops()) / len(x)


# ----------------------------------------------------------------------------- worker
def worker(args):
    """One process of one measurement: load, query once, write the numbers (per rank)."""
    torch.set_num_threads(args.threads)
    from skal import bald, distributed

    distributed.init()  # joins torchrun's group (not timed)
    rank, world = distributed.rank(), distributed.world_size()
    with open(args.model, "rb") as f:
        clf = pickle.load(f)
    pool = np.load(args.pool, mmap_mode="r")
    rss_before, maxrss_before, hwm_before = _rss_mib(), _ru_maxrss_mib(), _vm_hwm_mib()
    distributed.barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    idx, scores = bald(clf, pool, n_instances=TOP_K, n_samples=args.n_samples, random_state=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    distributed.barrier()
    total_wall = time.perf_counter() - t0  # until the slowest process is done
    result = {
        "rank": rank, "world_size": world, "n": len(pool), "wall_s": wall, "cpu_s": cpu,
        "wall_all_s": total_wall, "rss_before_mib": rss_before,
        "maxrss_before_mib": maxrss_before, "ru_maxrss_mib": _ru_maxrss_mib(),
        "hwm_before_mib": hwm_before, "peak_rss_mib": _vm_hwm_mib() or _ru_maxrss_mib(),
        "threads": torch.get_num_threads(), "top_indices": idx[:10].tolist(),
        "top_scores": scores[:10].tolist(),
    }
    with open(args.result.replace("{rank}", str(rank)), "w") as f:
        json.dump(result, f)
    distributed.shutdown()  # leave the group before exiting (gloo can abort at exit otherwise)


def _run_worker(pool, model, n_samples, threads, processes, result_dir, tag, timeout):
    """Run one measurement in fresh process(es); the per-rank result dicts."""
    result = str(Path(result_dir) / f"{tag}.rank{{rank}}.json")
    script = [str(Path(__file__).resolve()), "--worker", "--pool", str(pool), "--model", str(model),
              "--n-samples", str(n_samples), "--threads", str(threads), "--result", result]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    if processes == 1:
        cmd = [sys.executable] + script
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(processes)] + script
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return [json.loads(Path(result.replace("{rank}", str(r))).read_text())
            for r in range(processes)]


# ----------------------------------------------------------------------------- analysis
def summarize(runs):
    """One row per (n, processes): times, per-image cost, memory (max over the processes)."""
    rows = []
    for run in runs:
        ranks = run["ranks"]
        wall = max(r["wall_all_s"] for r in ranks)
        cpu = sum(r["cpu_s"] for r in ranks)
        rows.append({
            "n": run["n"], "processes": run["processes"], "wall_s": wall, "cpu_s": cpu,
            "wall_per_image_ms": 1e3 * wall / run["n"], "cpu_per_image_ms": 1e3 * cpu / run["n"],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in ranks),
            "ru_maxrss_mib": max(r.get("ru_maxrss_mib", r["peak_rss_mib"]) for r in ranks),
            "rss_before_mib": max(r["rss_before_mib"] or 0 for r in ranks),
            "rss_increase_mib": max(r["peak_rss_mib"] - (r["rss_before_mib"] or 0)
                                    for r in ranks),
            "same_indices_as_1_process": None,
            "top_indices": ranks[0]["top_indices"],
        })
    one = {r["n"]: r for r in rows if r["processes"] == 1}
    for r in rows:
        if r["processes"] > 1 and r["n"] in one:
            r["same_indices_as_1_process"] = r["top_indices"] == one[r["n"]]["top_indices"]
            r["speedup_vs_1_process"] = one[r["n"]]["wall_s"] / r["wall_s"]
            r["cpu_ratio_vs_1_process"] = r["cpu_s"] / one[r["n"]]["cpu_s"]
    return rows


def linear_fit(rows):
    """How time grows with n (one-process rows, 2 sizes or more): the slope of log(time) against
    log(n) (1 = linear) for wall and CPU time, and the spread of the CPU time per image."""
    pts = sorted((r["n"], r["wall_s"], r["cpu_s"]) for r in rows if r["processes"] == 1)
    if len(pts) < 2:
        return None
    n, wall, cpu = np.array(pts, dtype=float).T
    per_image = cpu / n
    return {"n_sizes": len(pts),
            "loglog_slope_wall": float(np.polyfit(np.log(n), np.log(wall), 1)[0]),
            "loglog_slope_cpu": float(np.polyfit(np.log(n), np.log(cpu), 1)[0]),
            "cpu_ms_per_image_min": 1e3 * float(per_image.min()),
            "cpu_ms_per_image_max": 1e3 * float(per_image.max())}


def cost_model(rows, args, flops_w, flops_64):
    """Seconds to score a 10M-image pool with BALD (T=20) on 1, 8 and 64 GPUs (assumed rates)."""
    one = [r for r in rows if r["processes"] == 1]
    cpu_ms = min(r["cpu_per_image_ms"] for r in one) if one else None  # largest-n rows agree
    n = args.cost_pool
    sustained = args.gpu_peak_tflops * 1e12 * args.gpu_utilisation  # FLOP/s, an assumption
    out = {"pool": n, "flops_per_image_width": flops_w, "flops_per_image_width64": flops_64,
           "cpu_ms_per_image_measured": cpu_ms,
           "cpu_effective_gflops": flops_w / (cpu_ms * 1e-3) / 1e9 if cpu_ms else None,
           "gpu_sustained_tflops_assumed": sustained / 1e12, "rows": []}
    read_s_node = n * 28 * 28 / (args.read_gbps * 1e9)  # reading the pool once, one node
    for gpus in (1, 8, 64):
        nodes = max(1, -(-gpus // GPUS_PER_NODE))
        eff = 1.0 if gpus == 1 else args.scaling_efficiency
        for width, flops in ((args.width, flops_w), (64, flops_64)):
            compute = n * flops / (sustained * gpus * eff)
            read = read_s_node / nodes
            out["rows"].append({"gpus": gpus, "width": width, "compute_s": compute,
                                "read_s": read, "total_s": max(compute, read)})
    if cpu_ms:
        out["cpu_1_process_s"] = n * cpu_ms * 1e-3
    return out


# ----------------------------------------------------------------------------- report
def _fmt_s(s):
    if s is None:
        return "-"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s" if s >= 1 else f"{s * 1e3:.0f} ms"


def write_report(out, state):
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(state, indent=1))
    cfg, lines = state["config"], []
    lines += [
        "# BALD over pools larger than memory", "",
        "Command (from the repository root):", "", "```", state["command"], "```", "",
        f"Machine: {state['machine']['cpu']}, {state['machine']['logical_cpus']} logical CPUs, "
        f"{state['machine']['memory_gib']:.0f} GiB; torch {state['machine']['torch']}, "
        f"Python {state['machine']['python']}; skal at commit `{state['commit']}`. "
        f"Load average {state['loadavg_start']} at the start, {state.get('loadavg_end')} at the "
        "end (the machine is shared: wall times are noisy, CPU times less so).", "",
    ]
    if cfg.get("calibrate"):
        lines += [
            f"Per-image cost of `bald(n_samples={cfg['n_samples']})` on a "
            f"{cfg['calibrate_size']:,}-image memmap pool, one fresh process, "
            f"{cfg['threads']} thread(s), `batch_size={cfg['batch_size']}`.", "",
            "| width | wall | CPU | CPU per image | FLOPs per image | 1M images at this rate |",
            "|---|---|---|---|---|---|",
        ]
        for r in state["calibration"]:
            lines.append(
                f"| {r['width']} | {_fmt_s(r['wall_s'])} | {_fmt_s(r['cpu_s'])} | "
                f"{r['cpu_per_image_ms']:.2f} ms | {r['flops_per_image'] / 1e6:.1f} M | "
                f"{_fmt_s(r['cpu_per_image_ms'] * 1e-3 * 1e6)} |")
        Path(f"{out}.md").write_text("\n".join(lines) + "\n")
        return
    lines += [
        f"Query: `skal.bald(clf, np.load(pool, mmap_mode='r'), n_instances={TOP_K}, "
        f"n_samples={cfg['n_samples']}, random_state=0)` with a `ResNet18Classifier("
        f"width={cfg['width']}, batch_size={cfg['batch_size']})` (the standard ResNet18 has width "
        f"64); synthetic 1x28x28 uint8 pools, one `.npy` file each; default chunks of 2,048 "
        f"images (dealt out round-robin to the processes); {cfg['threads']} torch thread(s) per "
        "process; every "
        "measurement in fresh process(es).", "",
        "| n | processes | wall | CPU (all processes) | CPU per image | peak RSS | RSS before the "
        "query | increase | same top-10 as 1 process | wall speed-up | CPU vs 1 process |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in state["rows"]:
        same = "-" if r["same_indices_as_1_process"] is None else (
            "yes" if r["same_indices_as_1_process"] else "**no**")
        speed = f"{r['speedup_vs_1_process']:.2f}x" if "speedup_vs_1_process" in r else "-"
        work = f"{r['cpu_ratio_vs_1_process']:.2f}x" if "cpu_ratio_vs_1_process" in r else "-"
        lines.append(
            f"| {r['n']:,} | {r['processes']} | {_fmt_s(r['wall_s'])} | {_fmt_s(r['cpu_s'])} | "
            f"{r['cpu_per_image_ms']:.3f} ms | {r['peak_rss_mib']:.0f} MiB | "
            f"{r['rss_before_mib']:.0f} MiB | {r['rss_increase_mib']:.0f} MiB | {same} | "
            f"{speed} | {work} |")
    lines += [
        "",
        "Peak RSS is the high-water mark of each measuring process (Linux `VmHWM`, largest over "
        "the processes), which counts the interpreter, torch and the model (the RSS before the "
        "query); the increase is the query's own working set: one chunk, its MC samples and "
        "scores, never the pool. `resource.getrusage(RUSAGE_SELF).ru_maxrss` is in the JSON too "
        "(`ru_maxrss_mib`), but Linux carries it over from the parent at fork + exec, so a "
        "worker started by this script (which holds torch and the FLOP counter) or by torchrun "
        "reports at least its parent's RSS. Wall "
        "speed-up = 1-process wall / 2-process wall; CPU vs 1 process = total CPU seconds of the "
        "processes / those of one process (1.00 = sharding adds no work).", "",
    ]
    one = {r["n"]: r for r in state["rows"] if r["processes"] == 1}
    if len(one) >= 2:
        sizes = sorted(one)
        a, b = one[sizes[-2]], one[sizes[-1]]
        lines.append(
            f"Peak RSS from {sizes[-2]:,} to {sizes[-1]:,} images: x"
            f"{b['peak_rss_mib'] / a['peak_rss_mib']:.2f} (pool x{sizes[-1] / sizes[-2]:.0f}).")
    if state.get("fit"):
        fit = state["fit"]
        lines.append(
            f"Time against n (1 process, {fit['n_sizes']} sizes): slope of log(time) against "
            f"log(n) {fit['loglog_slope_cpu']:.3f} for CPU time and "
            f"{fit['loglog_slope_wall']:.3f} for wall time (1 = linear); CPU time per image "
            f"{fit['cpu_ms_per_image_min']:.3f}-{fit['cpu_ms_per_image_max']:.3f} ms across sizes.")
    cm = state.get("cost_model")
    if cm:
        lines += [
            "", f"## Cost model: a {cm['pool']:,}-image pool", "",
            f"Measured: {cm['flops_per_image_width'] / 1e6:.1f} MFLOP per image at width "
            f"{cfg['width']} and {cm['flops_per_image_width64'] / 1e6:.1f} MFLOP at width 64 "
            "(trunk once + head T times, `torch.utils.flop_counter`); "
            + (f"{cm['cpu_ms_per_image_measured']:.3f} CPU-ms per image here, i.e. "
               f"{cm['cpu_effective_gflops']:.1f} GFLOP/s per thread; one such process would "
               f"take {_fmt_s(cm.get('cpu_1_process_s'))} for the pool."
               if cm["cpu_ms_per_image_measured"] else ""),
            "",
            f"**Assumed, not measured:** one GPU sustains {cm['gpu_sustained_tflops_assumed']:.0f}"
            f" TFLOP/s on these convolutions ({cfg['gpu_utilisation']:.0%} of the "
            f"{cfg['gpu_peak_tflops']:.0f} TFLOP/s dense bf16 peak of the {GPU_NAME} datasheet; "
            f"small 28x28 images rarely reach more), {cfg['scaling_efficiency']:.0%} scaling "
            f"efficiency on several GPUs (each scores its own chunks; the processes exchange only "
            f"{TOP_K} candidates each), {GPUS_PER_NODE} GPUs per node, and {cfg['read_gbps']:g} "
            "GB/s of pool reading per node. A query takes the larger of compute and reading. "
            "Narrow nets (width 16) do not keep a GPU's tensor cores busy, so their row is a lower "
            "bound; the width-64 row (the standard ResNet18) is the realistic one.", "",
            "| GPUs | width | compute | reading the pool | estimate |", "|---|---|---|---|---|",
        ]
        for r in cm["rows"]:
            lines.append(f"| {r['gpus']} | {r['width']} | {_fmt_s(r['compute_s'])} | "
                         f"{_fmt_s(r['read_s'])} | {_fmt_s(r['total_s'])} |")
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--ratio-sizes", type=int, nargs="*", default=None,
                   help="sizes to also run with more than 1 process (default: all)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--n-samples", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--data-dir", default="/tmp/skal-scale")
    p.add_argument("--out", default="benchmarks/results/scale/scale")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="per measurement, seconds")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--calibrate-size", type=int, default=1000)
    p.add_argument("--cost-pool", type=int, default=10_000_000)
    p.add_argument("--gpu-peak-tflops", type=float, default=GPU_PEAK_TFLOPS)
    p.add_argument("--gpu-utilisation", type=float, default=GPU_UTILISATION)
    p.add_argument("--scaling-efficiency", type=float, default=SCALING_EFFICIENCY)
    p.add_argument("--read-gbps", type=float, default=READ_GBPS)
    p.add_argument("--report", help="re-render <out>.md from a results JSON; no measurement")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pool", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.report:
        state = json.loads(Path(args.report).read_text())
        for key in ("gpu_peak_tflops", "gpu_utilisation", "scaling_efficiency", "read_gbps"):
            state["config"].setdefault(key, getattr(args, key))
        if state.get("rows"):
            state["rows"] = summarize(state["runs"])
            state["fit"] = linear_fit(state["rows"])
        return write_report(args.out, state)

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    results = data / "results"
    results.mkdir(exist_ok=True)
    state = {
        "command": "PYTHONPATH=. .venv/bin/python benchmarks/scale.py "
                   + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "config": {k: v for k, v in vars(args).items()
                   if k not in ("worker", "pool", "model", "result")},
        "machine": _machine(), "commit": _git_commit(), "loadavg_start": _loadavg(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }

    if args.calibrate:
        pool = make_pool(data / f"pool_{args.calibrate_size}.npy", args.calibrate_size)
        state["calibration"] = []
        for width in args.widths:
            model = make_model(data / f"model_w{width}_b{args.batch_size}.pkl", width,
                               args.batch_size, args.threads)
            (r,) = _run_worker(pool, model, args.n_samples, args.threads, 1, results,
                               f"calibrate_w{width}", args.timeout)
            state["calibration"].append({
                "width": width, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                "cpu_per_image_ms": 1e3 * r["cpu_s"] / r["n"],
                "flops_per_image": flops_per_image(width, args.n_samples)})
            state["loadavg_end"] = _loadavg()
            write_report(args.out, state)
            print(f"width {width}: {1e3 * r['cpu_s'] / r['n']:.2f} CPU-ms per image", flush=True)
        return

    model = make_model(data / f"model_w{args.width}_b{args.batch_size}.pkl", args.width,
                       args.batch_size, args.threads)
    ratio_sizes = set(args.sizes if args.ratio_sizes is None else args.ratio_sizes)
    state["runs"] = []
    for n in args.sizes:
        pool = make_pool(data / f"pool_{n}.npy", n)
        for processes in args.processes:
            if processes > 1 and n not in ratio_sizes:
                continue
            ranks = _run_worker(pool, model, args.n_samples, args.threads, processes, results,
                                f"n{n}_p{processes}", args.timeout)
            state["runs"].append({"n": n, "processes": processes, "ranks": ranks})
            state["rows"] = summarize(state["runs"])
            state["fit"] = linear_fit(state["rows"])
            state["cost_model"] = cost_model(state["rows"], args,
                                             flops_per_image(args.width, args.n_samples),
                                             flops_per_image(64, args.n_samples))
            state["loadavg_end"] = _loadavg()
            write_report(args.out, state)
            row = state["rows"][-1]
            print(f"n={n:,} processes={processes}: wall {row['wall_s']:.1f} s, peak RSS "
                  f"{row['peak_rss_mib']:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
