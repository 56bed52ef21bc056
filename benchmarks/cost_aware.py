"""Time-aware queries: accuracy per annotation second, cost-aware against cost-blind.

Simulated-oracle runs on scikit-learn's digits (a multinomial ``LogisticRegression`` on the 64
pixels; test set 597 images, pool the other 1200): ``--initial`` random labels, then ``--query``
per round, until the annotation time spent reaches ``--seconds``. Every answer takes a time
drawn from a synthetic, documented cost model (the oracle's clock):

- ``per_class``: class ``k`` takes ``mu_k`` seconds on average, ``mu`` = 3, 3, 4, 5, 6, 8, 10, 14,
  20, 30 s assigned to the digits in a fixed shuffled order (seed 12345), times log-normal
  around ``mu_k`` (sigma 0.3) -- some classes are slow to tell apart;
- ``uncertain``: ``3 + 25 d(x)`` seconds, ``d`` the normalised entropy (in [0, 1]) of a
  reference ``LogisticRegression`` fitted on the whole pool, log-normal noise (sigma 0.3) -- an
  ambiguous image takes longer whatever its class.

Arms: ``blind`` (``entropy_sampling``), ``class`` (:class:`skal.CostAwareStrategy` over
``entropy_sampling`` with a :class:`skal.ClassTimeModel` fitted every round on the recorded
times, prior strength 5), ``regressor`` (the same with a :class:`skal.RegressorTimeModel` on the
model's probabilities and entropy, refitted every round on the answers' times and the current
model's probabilities of them), ``class_sqrt`` and ``regressor_sqrt`` (the same with
``cost_power=0.5``: score per square root of the expected seconds) and ``random``.
Repeat k of every arm shares the split, the initial labels and the answers' time draws (each
image's time is fixed per repeat).

Reported: test accuracy at 25, 50 and 100 % of ``--seconds`` (the last model trained within
that time) and the normalised area under accuracy-against-seconds; paired differences of each
cost-aware arm to ``blind`` over the repeats, mean +- standard error. Resumable: one JSON line
per (cost model, arm, repeat) in ``OUT/runs.jsonl``. The committed results::

    OMP_NUM_THREADS=1 python benchmarks/cost_aware.py --repeats 10 --seconds 3000

"""

import json
import os
import platform
import sys
import time

import _bench  # benchmarks/ is on sys.path when run as a script
import numpy as np
import torch
from scipy.special import xlogy
from sklearn.linear_model import LogisticRegression

from skal import (
    ClassTimeModel,
    CostAwareStrategy,
    RegressorTimeModel,
    entropy_sampling,
    random_sampling,
)
from skal.datasets import load_digits_images

ARMS = ("blind", "class", "regressor", "class_sqrt", "regressor_sqrt", "random")
COST_MODELS = ("per_class", "uncertain")
CLASS_SECONDS = np.array([3, 3, 4, 5, 6, 8, 10, 14, 20, 30], dtype=float)
N_TEST = 597
FRACTIONS = (0.25, 0.5, 1.0)


def answer_times(cost_model, X_pool, y_pool, seed):
    """Each pool image's annotation time (seconds) under the cost model, fixed per repeat."""
    rng = np.random.default_rng(seed + 777)
    noise = np.exp(rng.normal(0, 0.3, len(y_pool)))
    if cost_model == "per_class":
        mu = CLASS_SECONDS[np.random.default_rng(12345).permutation(10)]
        return mu[y_pool] * noise
    ref = LogisticRegression(max_iter=2000).fit(X_pool, y_pool).predict_proba(X_pool)
    d = -xlogy(ref, ref).sum(axis=1) / np.log(ref.shape[1])
    return (3 + 25 * d) * noise


def one_run(X, y, cost_model, arm, seed, args):
    order = np.random.default_rng(seed).permutation(len(y))
    test, pool = order[:N_TEST], order[N_TEST:]
    X_pool, y_pool = X[pool], y[pool]
    times = answer_times(cost_model, X_pool, y_pool, seed)
    labeled = np.random.default_rng(seed + 1000).choice(len(pool), args.initial, replace=False)
    curve = []
    while True:
        clf = LogisticRegression(max_iter=2000).fit(X_pool[labeled], y_pool[labeled])
        spent = float(times[labeled].sum())
        curve.append((spent, len(labeled),
                      float(np.mean(clf.predict(X[test]) == y[test]))))
        if spent >= args.seconds:
            return curve
        rest = np.setdiff1d(np.arange(len(pool)), labeled)
        n = min(args.query, len(rest))
        rs = seed * 1000 + len(labeled)
        if arm == "blind":
            picked, _ = entropy_sampling(clf, X_pool[rest], n, random_state=rs)
        elif arm == "random":
            picked, _ = random_sampling(clf, X_pool[rest], n, random_state=rs)
        else:
            if arm.startswith("class"):
                model = ClassTimeModel(classes=clf.classes_, prior_strength=5.0).fit(
                    None, y_pool[labeled], times[labeled])
            else:
                model = RegressorTimeModel().fit(
                    None, None, times[labeled], proba=clf.predict_proba(X_pool[labeled]))
            power = 0.5 if arm.endswith("_sqrt") else 1.0
            picked, _ = CostAwareStrategy(entropy_sampling, model, cost_power=power)(
                clf, X_pool[rest], n, random_state=rs)
        labeled = np.concatenate([labeled, rest[picked]])


def at_seconds(curve, t):
    """Test accuracy of the last model trained within ``t`` seconds of annotation."""
    within = [acc for spent, _, acc in curve if spent <= t]
    return within[-1] if within else curve[0][2]


def area(curve, budget):
    """Normalised area under accuracy (step function of the seconds spent) up to ``budget``."""
    grid = np.linspace(curve[0][0], budget, 200)
    return float(np.mean([at_seconds(curve, t) for t in grid]))


def _command():
    """The command that made the runs (a --report-only rerun quotes it without the flag)."""
    return _bench.command_line().replace(" --report-only", "")


def _se(values):
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def report(records, args, seconds):
    lines = ["# Cost-aware queries: accuracy per annotation second (digits, LogisticRegression)",
             "", f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} "
             f"{_command()}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
             f"(load {os.getloadavg()[0]:.1f}), torch threads {torch.get_num_threads()}, "
             f"{seconds:.0f} s of this invocation, {sum(r['seconds'] for r in records):.0f} s "
             "in all the runs (wall clock).", "",
             f"Protocol: {args.initial} initial labels + {args.query} per round until "
             f"{args.seconds:.0f} s of simulated annotation; accuracy (%) on the 597 test images "
             "of the last model trained within 25/50/100 % of that time, and the normalised area "
             "under accuracy-against-seconds (AUC, %). Paired differences to `blind` "
             "(entropy_sampling) over the repeats: mean +- standard error.", ""]
    summary = {"command": _command(), "threads": torch.get_num_threads(),
               "machine": platform.machine(), "cost_models": {}}
    for cm in COST_MODELS:
        by_arm = {a: {r["seed"]: r for r in records if r["cost_model"] == cm and r["arm"] == a}
                  for a in ARMS}
        seeds = sorted(set.intersection(*(set(v) for v in by_arm.values()))) if all(
            by_arm.values()) else []
        if not seeds:
            continue
        metric = {}
        for a in ARMS:
            metric[a] = {f"acc@{int(100 * f)}%": np.array(
                [100 * at_seconds(by_arm[a][s]["curve"], f * args.seconds) for s in seeds])
                for f in FRACTIONS}
            metric[a]["auc"] = np.array([100 * area(by_arm[a][s]["curve"], args.seconds)
                                         for s in seeds])
            metric[a]["labels"] = np.array([by_arm[a][s]["curve"][-1][1] for s in seeds])
        keys = list(metric["blind"])
        table = []
        entry = {"repeats": len(seeds)}
        for a in ARMS:
            cells = [a]
            entry[a] = {}
            for k in keys:
                m = metric[a][k]
                d = m - metric["blind"][k]
                entry[a][k] = {"mean": float(m.mean()), "se": _se(m),
                               "paired_diff": [float(d.mean()), _se(d)]}
                cells.append(f"{m.mean():.2f}" + ("" if a == "blind" or k == "labels" else
                                                  f" ({d.mean():+.2f} +- {_se(d):.2f})"))
            table.append(cells)
        summary["cost_models"][cm] = entry
        lines += [f"## Cost model `{cm}` ({len(seeds)} repeats)", ""]
        lines += _bench.md_table(["arm"] + keys, table) + [""]
    _bench.write_json(args.out, summary)
    _bench.write_markdown(args.out, lines)
    print("\n".join(lines))


def main():
    p = _bench.new_parser(__doc__)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="repeat k uses seed SEED + k")
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--query", type=int, default=10)
    p.add_argument("--seconds", type=float, default=1500.0)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--out", default="benchmarks/results/cost_aware")
    args = p.parse_args()
    torch.set_num_threads(1)
    X, y = load_digits_images()
    X = X.reshape(len(X), -1).astype(np.float64)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "runs.jsonl")
    protocol = {k: getattr(args, k) for k in ("initial", "query", "seconds")}
    records = []
    if os.path.exists(path):
        with open(path) as f:
            records = [r for r in map(json.loads, filter(str.strip, f))
                       if r.get("protocol") == protocol]
    done = {(r["cost_model"], r["arm"], r["seed"]) for r in records}
    start = time.perf_counter()
    for k in range(args.repeats):
        for cm in COST_MODELS:
            for arm in ARMS:
                seed = args.seed + k
                if args.report_only or (cm, arm, seed) in done:
                    continue
                t0 = time.perf_counter()
                record = {"cost_model": cm, "arm": arm, "seed": seed, "protocol": protocol,
                          "curve": one_run(X, y, cm, arm, seed, args)}
                record["seconds"] = time.perf_counter() - t0
                records.append(record)
                with open(path, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{cm} {arm} seed {seed}: {len(record['curve'])} rounds in "
                      f"{record['seconds']:.0f} s", file=sys.stderr, flush=True)
    report(records, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
