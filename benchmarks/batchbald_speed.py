"""skal's BatchBALD selector next to batchbald-redux's, on the same MC-dropout probabilities.

Both run the same greedy algorithm (exact joint entropies while C^|A| <= M configurations, M
sampled configurations beyond; ``tests/query/test_batch_selection.py`` checks that they pick the same
batch when everything is exact). This measures the CPU time of one batch (process CPU time, one
thread; memory is not compared here: redux's allocations are torch tensors, which tracemalloc
does not see), on random probabilities drawn from a Dirichlet
distribution around a random class mixture per pool point, shape ``(T, n, C)``.

batchbald-redux 2.0.5 is a test-only reference (``pip install --no-deps batchbald-redux==2.0.5
toma``, as ``scripts/setup.sh`` does); its ``get_batchbald_batch(log_probs (n, T, C), batch_size,
num_samples, dtype)``::

    OMP_NUM_THREADS=1 python benchmarks/batchbald_speed.py

Results: ``OUT/results.{md,json}`` (default ``benchmarks/results/batchbald_speed``).
"""

import argparse
import time

import numpy as np
import torch
from _bench import command_line, md_table, write_markdown, write_summary  # benchmarks/ on sys.path

from skal.query.selection import batchbald_select


def probabilities(n, T, C, seed):
    """``(T, n, C)`` MC-dropout-like probabilities: per point a mean, per sample a Dirichlet."""
    rng = np.random.default_rng(seed)
    mean = rng.dirichlet(np.full(C, 0.3), size=n)  # (n, C)
    concentration = 20.0 * mean + 1e-3
    samples = np.stack([np.stack([rng.dirichlet(c) for c in concentration]) for _ in range(T)])
    return np.clip(samples, 1e-12, None) / np.clip(samples, 1e-12, None).sum(-1, keepdims=True)


def run_skal(samples, batch, M):
    return batchbald_select(samples, batch, n_configurations=M, random_state=0)[0].tolist()


def run_redux(samples, batch, M):
    from batchbald_redux.batchbald import get_batchbald_batch

    log_probs = torch.log(torch.as_tensor(samples).permute(1, 0, 2))  # (n, T, C) for redux
    return get_batchbald_batch(log_probs, batch, M, dtype=torch.double).indices


def measure(fn, samples, batch, M):
    start = time.process_time()
    picked = fn(samples, batch, M)
    return {"cpu_seconds": time.process_time() - start, "picked": picked}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="benchmarks/results/batchbald_speed")
    p.add_argument("--cases", default="1000:20,4000:20",
                   help="comma-separated n:batch pairs")
    p.add_argument("--mc-samples", type=int, default=20)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--configurations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warm = probabilities(50, args.mc_samples, args.classes, args.seed)
    run_skal(warm, 3, args.configurations), run_redux(warm, 3, args.configurations)  # imports
    rows = []
    for case in args.cases.split(","):
        n, batch = map(int, case.split(":"))
        samples = probabilities(n, args.mc_samples, args.classes, args.seed)
        for name, fn in (("skal", run_skal), ("batchbald-redux", run_redux)):
            row = {"n": n, "batch": batch, "implementation": name,
                   **measure(fn, samples, batch, args.configurations)}
            rows.append(row)
            print(f"[batchbald_speed] n={n} batch={batch} {name}: {row['cpu_seconds']:.2f} s CPU",
                  flush=True)
        a, b = rows[-2]["picked"], rows[-1]["picked"]
        same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
        rows[-2]["same_first"] = rows[-1]["same_first"] = same  # a property of the pair
    command = "OMP_NUM_THREADS=1 " + command_line()
    write_summary(args.out, {"command": command, "torch_threads": 1, "rows": rows},
                  [{k: v for k, v in r.items() if k != "picked"} for r in rows])
    lines = ["# BatchBALD: skal's selector vs batchbald-redux 2.0.5", "",
             f"Command: `{command}` (1 torch thread, process CPU time; T = {args.mc_samples} MC "
             f"samples, C = {args.classes} classes, M = {args.configurations} configurations; a "
             "shared 2-core machine, so compare the two columns, not absolute times).", ""]
    lines += md_table(
        ["pool n", "batch", "skal CPU s", "redux CPU s", "redux / skal", "same picks until"],
        [[s["n"], s["batch"], f"{s['cpu_seconds']:.2f}", f"{r['cpu_seconds']:.2f}",
          f"{r['cpu_seconds'] / s['cpu_seconds']:.1f}x", f"{r['same_first']} of {s['batch']}"]
         for s, r in zip(rows[::2], rows[1::2])])
    lines += ["", "'Same picks until': the first position where the two batches differ "
              "(beyond the exact steps both estimate joint entropies from sampled "
              "configurations, with different random draws)."]
    write_markdown(args.out, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
