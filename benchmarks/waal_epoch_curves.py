"""Where on their training curves do the WAAL paper's 1K-label numbers sit? An early-stopping study.

``reproduce_waal.py`` trains every round for the paper's 80 epochs and finds the random baseline
14 points and WAAL 10 points *above* thesis Table B.3 at 1K labels (72.4 / 82.2 % vs 58.03 /
72.29 %), while both match the paper at 6K. The paper "adopt[s] early stopping" on its 20K
validation split (thesis p.54-55) without saying on what or with which patience. This script
trains round 0 of ``reproduce_waal.py`` (1K labels; same configuration and seeds, so the same pool,
labels and initialisation) for the random baseline and for WAAL, and records after every epoch

- the loss and accuracy on the **validation split**: the 20K training images outside the 40K
  pool, which ``reproduce_waal.py`` leaves unused, and
- the accuracy on the official 10K **test set**, i.e. what stopping after that epoch would report.

It then replays skorch-style early-stopping rules on these curves (stop once the monitored
validation metric has not improved for ``patience`` epochs; report the last or the best epoch's
model) and tables the test accuracy each rule would have reported for both methods, next to the
paper's. Scoring between epochs uses a forked torch RNG, so the training run is exactly
``reproduce_waal.py``'s (checked: the last epoch's test accuracy equals its round-0 result).

Usage (about 25 CPU minutes: 2 random runs of ~2 min and 2 WAAL runs of ~11 min, on 2 cores)::

    python benchmarks/waal_epoch_curves.py --repeats 2 --jobs 2

Results in ``benchmarks/results/waal/epoch_curves/`` (``results.md``, ``curves.json``, a plot).
"""

import dataclasses
import functools
import json
import os
import shutil

import numpy as np
import torch
from skorch.callbacks import Callback

import _bench  # benchmarks/ is on sys.path when run as a script
from reproduce_waal import (
    PAPER,
    RUN_NAMES,
    LabeledOnlyLeNet,
    PaperWAAL,
    _estimator,
    config_for,
    parse_args,
    register_methods,
)

from skal import random_sampling, waal_uncertainty_diversity
from skal.experiment import (
    ExperimentConfig,
    Method,
    RunCallback,
    load_experiment_data,
    load_run,
)

METHODS = {  # name -> (estimator class, strategy, trains on the unlabelled pool too)
    "random": (LabeledOnlyLeNet, random_sampling, False),
    "waal": (PaperWAAL, waal_uncertainty_diversity, True),
}
LABELS = {"random": "random", "waal": "WAAL"}
PATIENCES = (1, 2, 3, 5, 10)
MONITORS = ("valid_loss", "valid_acc")
SHOWN = (1, 2, 3, 5, 10, 15, 20, 30, 40, 60, 80)  # epochs listed in results.md


class EpochScores(Callback):
    """Record validation loss / accuracy and test accuracy after every epoch in ``curve``."""

    def __init__(self, X_val, y_val, X_test, y_test):
        self.X_val, self.y_val, self.X_test, self.y_test = X_val, y_val, X_test, y_test

    def initialize(self):
        self.curve = {"valid_loss": [], "valid_acc": [], "test_acc": []}
        return self

    def on_epoch_end(self, net, **kwargs):
        # predict's DataLoader draws a seed from torch's global RNG: keep it out of training's
        # random stream, so the run stays reproduce_waal's
        with torch.random.fork_rng(devices=[]):
            proba = net.predict_proba(self.X_val)  # (n_val, 10); classes are 0..9
            true = proba[np.arange(len(self.y_val)), self.y_val]
            self.curve["valid_loss"].append(float(-np.mean(np.log(np.maximum(true, 1e-12)))))
            self.curve["valid_acc"].append(float(np.mean(proba.argmax(1) == self.y_val)))
            self.curve["test_acc"].append(float(net.score(self.X_test, self.y_test)))


@functools.lru_cache(maxsize=2)
def _scored_sets(dataset, seed, pool_size, test_size):
    """The validation split (the train images outside the repeat's pool: 20K of the 60K) and
    the test set of a run, as reproduce_waal's runner defines them."""
    data = load_experiment_data(ExperimentConfig(dataset=dataset, method="random", seed=seed,
                                                 pool_size=pool_size, test_size=test_size))
    val = np.setdiff1d(data.candidates, data.pool_rows(0))
    return data.X_train[val], data.y_train[val], data.X_test, data.y_test


def _sets_of(config):
    return _scored_sets(config.dataset, config.seed, config.pool_size, config.test_size)


def _curve_estimator(cls):
    """reproduce_waal's estimator of ``cls``, scored after every epoch by :class:`EpochScores`."""
    def make(config, random_state, classes):
        scores = EpochScores(*_sets_of(config))
        return _estimator(cls)(config, random_state, classes).set_params(
            callbacks=[("epoch_scores", scores)])

    return make


# the curve arms' methods: reproduce_waal's, scored every epoch (run folders "<run name>-curve")
CURVE_METHODS = {f"{RUN_NAMES[m]}-curve": Method(strategy, make_estimator=_curve_estimator(cls),
                                                 pass_unlabeled=unlabeled)
                 for m, (cls, strategy, unlabeled) in METHODS.items()}


class KeepCurve(RunCallback):
    """The epoch curve of the run's round-0 model (its EpochScores callback)."""

    curve = None

    def on_fit_end(self, ctx, model, **kwargs):
        self.curve = dict(model.callbacks_)["epoch_scores"].curve


def record_curve(method, seed, out, epochs=80):
    """Train round 0 of reproduce_waal's ``method`` arm with ``seed``; return its epoch curve."""
    torch.set_num_threads(1)
    register_methods()  # reproduce_waal's method names, which config_for refers to
    _bench.register_methods(CURVE_METHODS)
    # reproduce_waal's defaults (80 epochs, 1K labels), round 0 only
    waal_args = parse_args(["--rounds", "0", "--epochs", str(epochs)])
    config = config_for(waal_args, method, seed)
    run_dir = _bench.run_dir(out, method, seed)
    shutil.rmtree(run_dir, ignore_errors=True)  # the curve is only recorded by a fresh fit
    keep = KeepCurve()
    _bench.run(dataclasses.replace(config, method=f"{RUN_NAMES[method]}-curve"), run_dir,
               callbacks=[keep], progress=False)
    curve = keep.curve
    final = load_run(run_dir).rows[0]["accuracy"]
    assert abs(curve["test_acc"][-1] - final) < 1e-9, (curve["test_acc"][-1], final)
    same = os.path.join(os.path.dirname(out), "runs", method, f"seed{seed}")
    if epochs == 80 and os.path.exists(os.path.join(same, "results.csv")):
        theirs = load_run(same).rows[0]["accuracy"]
        print(f"{method} seed {seed}: 80 epochs {100 * final:.2f} %, reproduce_waal's round 0 "
              f"{100 * theirs:.2f} %", flush=True)
    curve["n_validation"] = len(_sets_of(config)[1])
    return curve


def stop_epoch(values, patience, higher_is_better):
    """skorch EarlyStopping's rule (threshold 1e-4, relative): (stop epoch, best epoch), 1-based.

    Training stops after the first epoch that is ``patience`` epochs past the best one so far;
    if that never happens it runs to the end.
    """
    best, best_epoch = None, 0
    for epoch, value in enumerate(values, start=1):
        better = best is None or (value > best * (1 + 1e-4) if higher_is_better
                                  else value < best * (1 - 1e-4))
        if better:
            best, best_epoch = value, epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(values), best_epoch


def replay(curves):
    """Test accuracy (%) each early-stopping rule reports, per method: list of row dicts."""
    rows = []
    for monitor in MONITORS:
        for patience in PATIENCES:
            for restore in ("last", "best"):
                row = {"monitor": monitor, "patience": patience, "model": restore}
                for method in METHODS:
                    accs, epochs = [], []
                    for curve in curves.get(method, {}).values():
                        stop, best = stop_epoch(curve[monitor], patience, monitor == "valid_acc")
                        epoch = stop if restore == "last" else best
                        accs.append(100 * curve["test_acc"][epoch - 1])
                        epochs.append(epoch)
                    row[f"{method}_mean"] = round(float(np.mean(accs)), 2) if accs else None
                    row[f"{method}_std"] = round(float(np.std(accs)), 2) if accs else None
                    row[f"{method}_epochs"] = epochs
                rows.append(row)
    return rows


def write_report(args, curves):
    command = _bench.command_line()
    rules = replay(curves)
    paper = {m: PAPER[m][0] for m in METHODS}
    per_epoch = []
    n_epochs = min([len(c["test_acc"]) for runs in curves.values() for c in runs.values()] or [0])
    for epoch in [e for e in SHOWN if e <= n_epochs]:
        row = {"epoch": epoch}
        for method in METHODS:
            runs = list(curves.get(method, {}).values())
            for key in ("valid_loss", "valid_acc", "test_acc"):
                vals = [c[key][epoch - 1] for c in runs]
                scale = 1 if key == "valid_loss" else 100
                row[f"{method}_{key}"] = round(scale * float(np.mean(vals)), 3 if scale == 1
                                               else 2) if vals else None
        per_epoch.append(row)
    n = {m: len(curves.get(m, {})) for m in METHODS}
    _bench.write_summary(args.out, {"command": command, "paper_1k": paper, "repeats": n,
                             "per_epoch": per_epoch, "rules": rules}, rules)

    def acc(row, method):
        if row[f"{method}_mean"] is None:
            return "-"
        return (f"{row[f'{method}_mean']:.2f} ± {row[f'{method}_std']:.2f} (epochs "
                f"{'/'.join(map(str, row[f'{method}_epochs']))})")

    steps = {"random": -(-1000 // 64), "waal": -(-39000 // 64)}
    lines = [
        "# WAAL protocol at 1K labels: training curves and early stopping",
        "",
        f"Command: `{command}`",
        "",
        "Round 0 of `reproduce_waal.py` (1K labels; LeNet, SGD lr 0.01 momentum 0.5, lr x0.1 at "
        f"epochs 40 and 60 of 80, batch 64) for the random baseline ({steps['random']} steps per "
        f"epoch, labelled data only) and WAAL ({steps['waal']} steps per epoch: an epoch runs "
        "over the 39K unlabelled images), scored after every epoch on the validation split (the "
        "20K training images outside the pool) and on the official 10K test set. Mean over "
        f"{n['random']} (random) / {n['waal']} (WAAL) repeats, seeds 0, 1, ...",
        "",
        "## Early-stopping rules replayed on these curves",
        "",
        "Stop after the first epoch that is `patience` epochs past the best value of the "
        "monitored validation metric (skorch `EarlyStopping`, threshold 1e-4); report the model "
        "of that last epoch (`last`) or of the best epoch (`best`, skorch `load_best=True`). "
        "Test accuracy (%) at 1K labels, mean ± std, with the reported epoch of each repeat. "
        f"Paper (thesis Table B.3): random **{paper['random'][0]:.2f} ± {paper['random'][1]:.2f}"
        f"**, WAAL **{paper['waal'][0]:.2f} ± {paper['waal'][1]:.2f}**; 80 epochs, no early "
        "stopping (skal): the last line of the next table.",
        "",
    ]
    lines += _bench.md_table(["monitor", "patience", "model", "random", "WAAL"],
                             [[r["monitor"], r["patience"], r["model"], acc(r, "random"),
                               acc(r, "waal")] for r in rules])
    lines += ["", "## Per epoch (mean over repeats)", ""]
    keys = ("valid_loss", "valid_acc", "test_acc")
    lines += _bench.md_table(
        ["epoch"] + [f"{LABELS[m]}: {k.replace('_', ' ')}" for m in METHODS for k in keys],
        [[row["epoch"]] + ["-" if row[f"{m}_{k}"] is None else row[f"{m}_{k}"]
                           for m in METHODS for k in keys] for row in per_epoch])
    _bench.write_markdown(args.out, lines)
    plot(args, curves, paper)


def plot(args, curves, paper):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colors = {"random": "tab:gray", "waal": "tab:red"}
    for ax, x_steps in zip(axes, (False, True)):
        for method in METHODS:
            runs = list(curves.get(method, {}).values())
            if not runs:
                continue
            acc = 100 * np.array([c["test_acc"] for c in runs])  # (repeats, epochs)
            mean, std = acc.mean(axis=0), acc.std(axis=0)
            per_epoch = -(-1000 // 64) if method == "random" else -(-39000 // 64)
            x = np.arange(1, acc.shape[1] + 1) * (per_epoch if x_steps else 1)
            ax.plot(x, mean, color=colors[method], label=f"{LABELS[method]} (skal, test)")
            ax.fill_between(x, mean - std, mean + std, color=colors[method], alpha=0.2,
                            linewidth=0)
            ax.axhline(paper[method][0], color=colors[method], ls="--",
                       label=f"{LABELS[method]} at 1K (paper)")
        ax.set_xscale("log")
        ax.set_xlabel("SGD steps" if x_steps else "epoch (of 80; lr x0.1 after 40 and 60)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy at 1K labels (%)")
    axes[0].legend(fontsize="small")
    fig.savefig(os.path.join(args.out, "epoch_curves.png"), dpi=120)


def main(argv=None):
    p = _bench.new_parser(__doc__)
    p.add_argument("--epochs", type=int, default=80, help="fewer only for a quick check")
    _bench.add_run_options(p, out=os.path.join(os.path.dirname(__file__), "results", "waal",
                                               "epoch_curves"),
                           repeats=2, repeats_help="repeat k uses seed k (as reproduce_waal)",
                           arms=tuple(METHODS), arms_flag="--methods", seed=False,
                           jobs_help="runs in parallel, one process each", threads=False)
    args = p.parse_args(argv)
    methods = _bench.split_arms(p, args.methods, list(METHODS), flag="--methods")
    os.makedirs(args.out, exist_ok=True)
    curves_path = os.path.join(args.out, "curves.json")
    curves = json.load(open(curves_path)) if os.path.exists(curves_path) else {}
    todo = [] if args.report_only else [
        (m, s, args.out, args.epochs) for m in methods for s in range(args.repeats)
        if str(s) not in curves.get(m, {})]

    def done(job, curve):
        method, seed = job[:2]
        curves.setdefault(method, {})[str(seed)] = curve
        with open(curves_path, "w") as f:  # after every run, so a stop loses one run at most
            json.dump(curves, f)
        test = curve["test_acc"]
        print(f"{method} seed {seed}: test accuracy after epoch 1 / {len(test)}: "
              f"{100 * test[0]:.2f} / {100 * test[-1]:.2f} %", flush=True)
        write_report(args, curves)

    _bench.run_jobs(todo, record_curve, args.jobs, after=done)
    write_report(args, curves)


if __name__ == "__main__":
    main()
