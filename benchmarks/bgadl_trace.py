"""Trace one run of the BGADL ablation epoch by epoch: test accuracy and losses after each epoch.

``bgadl_ablation.py`` scores each round's classifier once, after its last epoch, and with the
generated terms at weight 1 single rounds fall far below their neighbours (e.g. 15 % test
accuracy at 200 labels where the other repeats reach 62-67 %). This script re-runs one (arm,
seed) of the ablation, on its protocol and seeds, up to ``--round``, and scores the classifier
on the test images after every epoch, to tell a training that collapses late from one that never
learnt. The scoring runs with torch's and numpy's random states saved and restored, so the run is
the ablation's run bit for bit on the same machine: the report compares each round's final
accuracy with the ablation's run folder when there is one.

Example (one thread, as the ablation ran)::

    OMP_NUM_THREADS=1 python benchmarks/bgadl_trace.py --arm filter_disc --seed 1 --round 0

Writes ``OUT/<arm>_seed<k>.csv`` (one row per round and epoch: the classifier's training loss,
the VAE-ACGAN losses, the fraction of generated images kept, the test accuracy),
``OUT/<arm>_seed<k>.png`` and ``OUT/<arm>_seed<k>.md`` (per round: the final, best and
last-ten-epoch accuracy). The trace's own run folder is ``OUT/runs/<arm>_seed<k>`` (resumable).
"""

import copy
import csv
import dataclasses
import os

import numpy as np
import torch
from skorch.callbacks import Callback

import _bench  # benchmarks/ is on sys.path when run as a script
import bgadl_ablation as ablation

from skal.callbacks import recalibrate_batchnorm
from skal.experiment import RunCallback

LOSSES = ("train_loss", "loss_E", "loss_G", "loss_D", "gen_kept")


def recalibrated_score(net, X_train, X, y):
    """Test accuracy with BatchNorm's running statistics re-estimated on ``X_train``
    (:func:`skal.callbacks.recalibrate_batchnorm`); the network is left as it was. None for a
    network without BatchNorm."""
    saved = copy.deepcopy(net.module_.state_dict())
    if X_train.dtype == np.uint8:  # scaled to [0, 1], as the estimator does
        X_train = X_train.astype(np.float32) / 255.0
    try:
        if not recalibrate_batchnorm(net, X_train):
            return None
        return float(net.score(X, y))
    finally:
        net.module_.load_state_dict(saved)


class TestScore(Callback):
    """Record ``test_acc`` in the history after every epoch, and ``test_acc_bn``, the same
    with BatchNorm's statistics re-estimated on the training images, leaving the network and
    the random states as they were (``predict`` builds a DataLoader, which draws from torch's
    generator)."""

    def __init__(self):
        self.X, self.y, self.X_train = None, None, None

    def on_epoch_end(self, net, **kwargs):
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            accuracy = float(net.score(self.X, self.y))
            recalibrated = recalibrated_score(net, self.X_train, self.X, self.y)
        np.random.set_state(numpy_state)
        net.history.record("test_acc", accuracy)
        net.history.record("test_acc_bn", recalibrated if recalibrated is not None else "")


class Tracer(RunCallback):
    """The traced arm's ``make_estimator`` (with :class:`TestScore` added), and the run
    callback that hands it the test images and keeps each round's history."""

    def __init__(self, make):
        self.make, self.score, self.rows = make, TestScore(), []

    def __call__(self, config, random_state, classes):
        model = self.make(config, random_state, classes)
        return model.set_params(callbacks=[("test_score", self.score)])

    def on_round_begin(self, ctx, **kwargs):
        self.score.X, self.score.y = ctx.X_test, ctx.y_test
        self.score.X_train = ctx.X_pool[ctx.labeled]

    def on_fit_end(self, ctx, model, **kwargs):
        for epoch in model.history_:
            row = {"round": ctx.round, "n_labeled": len(ctx.labeled), "epoch": epoch["epoch"],
                   "test_acc": epoch["test_acc"], "test_acc_bn": epoch["test_acc_bn"]}
            for key in LOSSES:
                values = [b[key] for b in epoch["batches"] if key in b]
                row[key] = float(np.mean(values)) if values else ""
            row["train_loss"] = epoch["train_loss"]
            self.rows.append(row)


def summary(rows, ablation_rows):
    """Per round: final, best (epoch), mean and min of the last ten epochs, the ablation's."""
    done = {int(r["round"]): float(r["accuracy"]) for r in ablation_rows or []}
    table = []
    for rnd in sorted({r["round"] for r in rows}):
        acc = [100 * r["test_acc"] for r in rows if r["round"] == rnd]
        bn = [100 * r["test_acc_bn"] for r in rows if r["round"] == rnd and r["test_acc_bn"] != ""]
        best = int(np.argmax(acc))
        ref = f"{100 * done[rnd]:.2f}" if rnd in done else ""
        table.append([rnd, rows[[r["round"] for r in rows].index(rnd)]["n_labeled"],
                      len(acc), f"{acc[-1]:.2f}", ref, f"{acc[best]:.2f} ({best + 1})",
                      f"{np.mean(acc[-10:]):.2f}", f"{np.min(acc[-10:]):.2f}",
                      f"{bn[-1]:.2f}" if bn else "", f"{np.min(bn[-10:]):.2f}" if bn else ""])
    return table


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for rnd in sorted({r["round"] for r in rows}):
        mine = [r for r in rows if r["round"] == rnd]
        label = f"{mine[0]['n_labeled']} labels"
        line, = axes[0].plot([r["epoch"] for r in mine], [100 * r["test_acc"] for r in mine],
                             label=label)
        if mine[0]["test_acc_bn"] != "":
            axes[0].plot([r["epoch"] for r in mine], [100 * r["test_acc_bn"] for r in mine],
                         ls=":", color=line.get_color(), label=label + ", BN re-estimated")
        axes[1].plot([r["epoch"] for r in mine], [r["train_loss"] for r in mine], label=label)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
    axes[1].set(xlabel="epoch", ylabel="classifier training loss (L_C)", yscale="log")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv=None):
    # the ablation's protocol options, plus which run to trace
    p = _bench.new_parser(__doc__)
    p.add_argument("--arm", required=True, choices=list(ablation.ARMS))
    p.add_argument("--round", type=int, default=0, help="trace rounds 0..ROUND (default 0)")
    p.add_argument("--ablation-out", default=ablation.parse_args([]).out,
                   help="the ablation's results, to compare the final accuracies with")
    own, rest = p.parse_known_args(argv)
    args = ablation.parse_args(rest + ["--out", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "bgadl_trace")]
        if "--out" not in rest else rest)
    args.arm, args.round, args.ablation_out = own.arm, own.round, own.ablation_out
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = ablation.methods_for(args)
    arm_method = methods[ablation.method_name(args.arm)]
    tracer = Tracer(arm_method.make_estimator)
    name = f"trace_{args.arm}"
    _bench.register_methods({**methods, name: dataclasses.replace(
        arm_method, make_estimator=tracer)})
    config = dataclasses.replace(ablation.config_for(args, args.arm, args.seed), method=name,
                                 n_rounds=args.round)
    stem = f"{args.arm}_seed{args.seed}"
    folder = os.path.join(args.out, "runs", stem)
    callbacks = [tracer] + ([arm_method.make_estimator]
                            if isinstance(arm_method.make_estimator, ablation.WarmGAN) else [])
    _bench.run(config, folder, callbacks=callbacks)
    if not tracer.rows:
        print(f"{folder} holds the traced rounds already; delete it to trace again")
        return
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, stem + ".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(tracer.rows[0]))
        writer.writeheader()
        writer.writerows(tracer.rows)
    plot(tracer.rows, os.path.join(args.out, stem + ".png"),
         f"{args.arm}, seed {args.seed}: test accuracy per epoch")
    ref = _bench.load_rows(_bench.run_dir(args.ablation_out, args.arm, args.seed))
    lines = [f"# {args.arm} ({ablation.ARMS[args.arm].label}), seed {args.seed}, epoch by epoch",
             "", f"Command: `{_bench.command_line()}`", "",
             f"{torch.get_num_threads()} torch thread(s). Test accuracy (%) after the last "
             "epoch, in the ablation's run of the same seed (the same on the same kind of "
             "machine), the best epoch, and the mean and min of the last ten epochs; then the "
             "final and last-ten min accuracy with BatchNorm's running statistics re-estimated "
             "on the round's labelled images (the weights unchanged).", ""]
    lines += _bench.md_table(["round", "labels", "epochs", "final", "ablation", "best (epoch)",
                              "last 10 mean", "last 10 min", "final, BN re-estimated",
                              "last 10 min, BN re-estimated"], summary(tracer.rows, ref))
    with open(os.path.join(args.out, stem + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
