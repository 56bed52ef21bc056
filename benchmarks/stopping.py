"""Stopping criteria on simulated-oracle runs: how far each stop is from the best stop.

A simulated-oracle active-learning loop on scikit-learn's digits (8x8, 10 classes), per repeat:
a random split into a test set (597 images, the "truth"), a labelled held-out set (``--heldout``
images, what a project would label for its learning curve), an unlabelled stop set (300 images,
for the kappa criterion) and the pool (the other 700); ``--initial`` random labels, then
``--query`` per round chosen by the strategy (``random_sampling`` or ``entropy_sampling``) and
answered by the oracle, up to ``--budget`` labels. The model is a multinomial
``LogisticRegression`` on the 64 pixels (fast enough for this loaded 2-core machine; the
criteria see only predictions and accuracies, whatever the model). Every round goes through
:func:`skal.stopping.round_report`, as ``skal run`` does, with the held-out accuracies as the
learning curve.

The criteria (each stops at the first round it says stop; at the budget if never):

- ``kappa``: :class:`skal.StabilizingPredictions` defaults (mean kappa of the last 3 rounds on the
  stop set >= 0.99); ``kappa_w5``: the mean of the last 5;
- ``plateau``: :func:`skal.stopping.accuracy_plateau` defaults (window 10 rounds, 95 % Wilson
  interval of the held-out accuracy); ``plateau_w2`` / ``plateau_w5``: windows of 2 and 5;
- ``plateau_boot``: :class:`skal.AccuracyPlateau` with the paired bootstrap (window 10, 95 %);
  ``plateau_boot_w2``: window 2;
- ``forecast``: :func:`skal.forecast_accuracy` predicts less than ``--min-gain`` points for the
  next ``5 * --query`` labels (4 rounds at least); ``forecast_1pt``: less than 1 point.

The variants are computed from the recorded rounds when the report is written.

The best stop of a repeat is the first round whose *test* accuracy is within 1 point of the best
test accuracy of the run (the oracle-optimal stop). For each criterion and repeat: ``wasted`` =
its labels minus the best stop's (positive: too late; negative: too early) and ``lost`` = the
best test accuracy minus the test accuracy at its stop (points). Means +- standard errors over
the repeats. The forecast's own accuracy: predicted gain at +``5 * --query`` labels against the
held-out gain observed there, with the share of observed gains within 2 s.d.

Resumable: one JSON line per (strategy, repeat) in ``OUT/runs.jsonl``; a finished pair is not
rerun. The committed results::

    OMP_NUM_THREADS=1 python benchmarks/stopping.py --repeats 10

"""

import json
import os
import platform
import sys
import time

import _bench  # benchmarks/ is on sys.path when run as a script
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from skal import AccuracyPlateau, entropy_sampling, random_sampling
from skal.datasets import load_digits_images
from skal.stopping import accuracy_plateau, round_report

STRATEGIES = {"random": random_sampling, "entropy": entropy_sampling}
N_TEST, N_STOP = 597, 300
AHEAD = 5  # the forecast looks this many rounds ahead


def _split(seed, n, heldout):
    order = np.random.default_rng(seed).permutation(n)
    test, rest = order[:N_TEST], order[N_TEST:]
    return test, rest[:heldout], rest[heldout:heldout + N_STOP], rest[heldout + N_STOP:]


def one_run(X, y, strategy, seed, args):
    """The rounds of one repeat: per round its labels, accuracies and round_report keys."""
    test, held, stop, pool = _split(seed, len(y), args.heldout)
    rng = np.random.default_rng(seed + 1000)
    labeled = rng.choice(len(pool), args.initial, replace=False)
    rounds, previous = [], None
    boots = {w: AccuracyPlateau(window=w, method="bootstrap", random_state=seed) for w in (2, 10)}
    while True:
        clf = LogisticRegression(max_iter=2000).fit(X[pool[labeled]], y[pool[labeled]])
        held_pred = clf.predict(X[held])
        row = {"n_labeled": len(labeled),
               "test_accuracy": float(np.mean(clf.predict(X[test]) == y[test])),
               "accuracy": float(np.mean(held_pred == y[held]))}
        stop_pred = clf.predict(X[stop])
        report = round_report(
            rounds + [row], stop_predictions=stop_pred, previous_stop_predictions=previous,
            heldout_proba=clf.predict_proba(X[held]), heldout_y=y[held], classes=clf.classes_,
            n_test=len(held), more=[AHEAD * args.query])
        row.update(report, **{f"stop_by_boot{w}": b.update(y[held], held_pred)
                              for w, b in boots.items()})
        rounds.append(row)
        previous = stop_pred
        if len(labeled) + args.query > args.budget:
            return rounds
        rest = np.setdiff1d(np.arange(len(pool)), labeled)
        picked, _ = STRATEGIES[strategy](clf, X[pool[rest]], args.query,
                                         random_state=seed + len(labeled))
        labeled = np.concatenate([labeled, rest[picked]])


def _kappa(threshold, window):
    def rule(rounds, i, protocol):
        kappas = [r["stop_kappa"] for r in rounds[:i + 1]][-window:]
        return (len(kappas) == window and None not in kappas
                and float(np.mean(kappas)) >= threshold)
    return rule


def _plateau(window):
    def rule(rounds, i, protocol):
        return accuracy_plateau([r["accuracy"] for r in rounds[:i + 1]], protocol["heldout"],
                                window=window)
    return rule


def _forecast(min_gain=None):
    def rule(rounds, i, protocol):
        r = rounds[i]
        gain = protocol["min_gain"] if min_gain is None else min_gain
        return (i >= 3 and r["forecast_gain_sd"] is not None
                and 100 * r["forecast_gain"][0] < gain)
    return rule


#: name -> rule(rounds, i, protocol): does the criterion say stop at round i
CRITERIA = {
    "kappa": _kappa(0.99, 3),  # Bloodgood & Vijay-Shanker's defaults
    "kappa_w5": _kappa(0.99, 5),
    "plateau_w2": _plateau(2),
    "plateau_w5": _plateau(5),
    "plateau": _plateau(10),  # the default window
    "plateau_boot_w2": lambda rounds, i, protocol: rounds[i]["stop_by_boot2"],
    "plateau_boot": lambda rounds, i, protocol: rounds[i]["stop_by_boot10"],
    "forecast": _forecast(),  # --min-gain
    "forecast_1pt": _forecast(1.0),
}


def stops(rounds, protocol):
    """The round index at which each criterion stops (the last round if never) and whether it
    did."""
    out = {}
    for name, rule in CRITERIA.items():
        hits = [i for i in range(len(rounds)) if rule(rounds, i, protocol)]
        out[name] = (hits[0], True) if hits else (len(rounds) - 1, False)
    return out


def evaluate(rounds, protocol):
    acc = np.array([r["test_accuracy"] for r in rounds])
    n = np.array([r["n_labeled"] for r in rounds])
    best = int(np.argmax(acc >= acc.max() - 0.01))
    out = {"best_n": int(n[best]), "best_accuracy": float(100 * acc.max())}
    for name, (i, stopped) in stops(rounds, protocol).items():
        out[name] = {"n": int(n[i]), "stopped": stopped, "wasted": int(n[i] - n[best]),
                     "lost": float(100 * (acc.max() - acc[i]))}
    # the forecast against what the held-out accuracy did AHEAD rounds later
    errors = []
    for i, r in enumerate(rounds[:-AHEAD]):
        if r["forecast_gain_sd"] is None or i < 3:
            continue
        observed = rounds[i + AHEAD]["accuracy"] - r["accuracy"]
        errors.append((100 * r["forecast_gain"][0], 100 * observed, 100 * r["forecast_gain_sd"][0]))
    out["forecast_check"] = errors
    eces = [(r["ece"], r["ece_calibrated"]) for r in rounds if r["ece"] is not None]
    out["ece"] = [float(np.mean([e[0] for e in eces])), float(np.mean([e[1] for e in eces]))]
    return out


def _command():
    """The command that made the runs (a --report-only rerun quotes it without the flag)."""
    return _bench.command_line().replace(" --report-only", "")


def _se(values):
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def report(records, args, seconds):
    lines = ["# Stopping criteria on simulated-oracle runs (digits, LogisticRegression)", "",
             f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} "
             f"{_command()}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
             f"(load {os.getloadavg()[0]:.1f}), torch threads {torch.get_num_threads()}, "
             f"{seconds:.0f} s of this invocation, {sum(r['seconds'] for r in records):.0f} s "
             "in all the runs (wall clock).", "",
             f"Protocol: {args.initial} initial labels + {args.query} per round up to "
             f"{args.budget}; held-out {args.heldout} labels, stop set {N_STOP}, test {N_TEST}; "
             f"forecast stop below {args.min_gain} points for the next {AHEAD * args.query} "
             "labels. Best stop: first round within 1 point of the run's best test accuracy. "
             "wasted = labels at the criterion's stop minus at the best stop; lost = best test "
             "accuracy minus the accuracy at the stop (points). Mean +- standard error over "
             "repeats.", ""]
    summary = {"command": _command(), "threads": torch.get_num_threads(),
               "machine": platform.machine(), "strategies": {}}
    table = []
    for r in records:
        r["eval"] = evaluate(r["rounds"], r["protocol"])
    for strategy in STRATEGIES:
        recs = [r for r in records if r["strategy"] == strategy]
        if not recs:
            continue
        best_n = [r["eval"]["best_n"] for r in recs]
        entry = {"repeats": len(recs), "best_n": [float(np.mean(best_n)), _se(best_n)]}
        for name in CRITERIA:
            wasted = [r["eval"][name]["wasted"] for r in recs]
            lost = [r["eval"][name]["lost"] for r in recs]
            stopped = sum(r["eval"][name]["stopped"] for r in recs)
            n = [r["eval"][name]["n"] for r in recs]
            entry[name] = {"n": [float(np.mean(n)), _se(n)],
                           "wasted": [float(np.mean(wasted)), _se(wasted)],
                           "lost": [float(np.mean(lost)), _se(lost)], "stopped": stopped}
            table.append([strategy, name, f"{np.mean(n):.0f} +- {_se(n):.0f}",
                          f"{np.mean(best_n):.0f} +- {_se(best_n):.0f}",
                          f"{np.mean(wasted):+.0f} +- {_se(wasted):.0f}",
                          f"{np.mean(lost):.2f} +- {_se(lost):.2f}",
                          f"{stopped}/{len(recs)}"])
        checks = [c for r in recs for c in r["eval"]["forecast_check"]]
        if checks:
            pred, obs, sd = map(np.array, zip(*checks))
            entry["forecast_check"] = {
                "n": len(checks), "mean_abs_error_points": float(np.mean(np.abs(pred - obs))),
                "mean_predicted": float(pred.mean()), "mean_observed": float(obs.mean()),
                "within_2sd": float(np.mean(np.abs(pred - obs) <= 2 * sd))}
        ece = np.array([r["eval"]["ece"] for r in recs])
        entry["ece"] = {"before": float(ece[:, 0].mean()), "after": float(ece[:, 1].mean()),
                        "paired_diff": [float((ece[:, 1] - ece[:, 0]).mean()),
                                        _se(ece[:, 1] - ece[:, 0])]}
        summary["strategies"][strategy] = entry
    lines += _bench.md_table(["strategy", "criterion", "stop at (labels)", "best stop",
                              "wasted labels", "accuracy lost (points)", "stopped"], table)
    lines += ["", "Forecast check (predicted vs observed held-out gain "
              f"{AHEAD} rounds later, points):", ""]
    rows = []
    for strategy, e in summary["strategies"].items():
        c = e.get("forecast_check")
        if c:
            rows.append([strategy, c["n"], f"{c['mean_predicted']:.2f}",
                         f"{c['mean_observed']:.2f}", f"{c['mean_abs_error_points']:.2f}",
                         f"{100 * c['within_2sd']:.0f} %"])
    lines += _bench.md_table(["strategy", "forecasts", "mean predicted", "mean observed",
                              "mean abs. error", "within 2 s.d."], rows)
    lines += ["", "Held-out ECE (15 bins; temperature fitted on the even rows, ECE on the odd), "
              "mean over rounds, then over repeats:", ""]
    lines += _bench.md_table(
        ["strategy", "ECE before", "ECE after", "paired difference"],
        [[s, f"{e['ece']['before']:.4f}", f"{e['ece']['after']:.4f}",
          f"{e['ece']['paired_diff'][0]:+.4f} +- {e['ece']['paired_diff'][1]:.4f}"]
         for s, e in summary["strategies"].items()])
    _bench.write_json(args.out, summary)
    _bench.write_markdown(args.out, lines)
    print("\n".join(lines))


def main():
    p = _bench.new_parser(__doc__)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="repeat k uses seed SEED + k")
    p.add_argument("--initial", type=int, default=20)
    p.add_argument("--query", type=int, default=10)
    p.add_argument("--budget", type=int, default=400)
    p.add_argument("--heldout", type=int, default=200)
    p.add_argument("--min-gain", type=float, default=0.5,
                   help="forecast stop: points expected from the next 5 rounds' labels")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--out", default="benchmarks/results/stopping")
    args = p.parse_args()
    strategies = _bench.split_arms(p, args.strategies, STRATEGIES, "--strategies")
    torch.set_num_threads(1)
    X, y = load_digits_images()
    X = X.reshape(len(X), -1).astype(np.float64)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "runs.jsonl")
    records = []
    if os.path.exists(path):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    protocol = {k: getattr(args, k) for k in ("initial", "query", "budget", "heldout", "min_gain")}
    records = [r for r in records if r.get("protocol") == protocol]  # another protocol: not ours
    done = {(r["strategy"], r["seed"]) for r in records}
    start = time.perf_counter()
    for k in range(args.repeats):
        for strategy in strategies:
            seed = args.seed + k
            if args.report_only or (strategy, seed) in done:
                continue
            t0 = time.perf_counter()
            rounds = one_run(X, y, strategy, seed, args)
            record = {"strategy": strategy, "seed": seed, "protocol": protocol,
                      "seconds": time.perf_counter() - t0,
                      "rounds": rounds}
            records.append(record)
            with open(path, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"{strategy} seed {seed}: {len(rounds)} rounds in {record['seconds']:.0f} s",
                  file=sys.stderr, flush=True)
    report(records, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
