"""Why skal's joint VAE-ACGAN differs from the authors' code: an ablation of two choices.

With a ResNet18 as the ACGAN auxiliary classifier C (BGADL's joint scheme), this trains
:class:`skal.GenerativeAugmenter` on the same labelled Fashion-MNIST images three ways and asks
whether the generated images are recognisable as their label:

* ``code``: the authors' per-pixel-mean reconstruction in L_G (``rec_reduction="mean"``) and,
  in C's BatchNorm (the authors' LeNet has none), generated batches normalised with their own
  batch statistics, running statistics updated by real images only (skal's earlier behaviour,
  ``gen_batchnorm="batch"``);
* ``bn``: generated batches normalised with the running statistics of real images (skal,
  ``gen_batchnorm="running"``), but the per-pixel-mean reconstruction;
* ``rec``: the per-image-sum reconstruction only (batch statistics for generated batches);
* ``skal``: both of skal's choices (running statistics, ``rec_reduction="sum"``).

The judge is a ResNet18 of the same width trained on other real images only; it classifies 100
``generate(y)`` images per class and ``sample(X, y)`` reconstructions of 500 real images. A grid
of generated images per variant is saved next to the JSON results (variants run in later calls
are merged into the same ``results.json``)::

    python benchmarks/bgadl_joint_ablation.py --out benchmarks/results/bgadl_joint_ablation
"""

import argparse
import json
import os
import time

import numpy as np
import torch

import _bench  # benchmarks/ is on sys.path when run as a script

from skal import GenerativeAugmenter, ResNet18Classifier
from skal.datasets import load_fashion_mnist

VARIANTS = {  # name: (rec_reduction, gen_batchnorm: C's BatchNorm on generated batches)
    "code": ("mean", "batch"),
    "bn": ("mean", "running"),
    "rec": ("sum", "batch"),
    "skal": ("sum", "running"),
}


def grid(path, X_gen, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 8.6), layout="constrained")
    axes = fig.subplots(10, 8)
    for c in range(10):
        for k in range(8):
            axes[c, k].imshow(X_gen[c * 100 + k, 0], cmap="gray", vmin=0, vmax=1)
            axes[c, k].set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def _commands(results):
    """The commands that made the results, once each: the first call's, then the variants'."""
    made = [results.get("command")] + [v.get("command") for v in results["variants"].values()]
    return list(dict.fromkeys(c for c in made if c))


def write_markdown(out, results):
    lines = [
        "# Joint VAE-ACGAN with ResNet18 as auxiliary classifier: two choices, ablated", "",
        "Commands: " + ", ".join(f"`{c}`" for c in _commands(results)),
        "", f"{results['steps']} training steps on the same labelled Fashion-MNIST images. Judge: a "
        f"ResNet18 trained on 4,000 other real images only (test accuracy "
        f"{100 * results['judge_test_accuracy']:.1f} % on 2,000 test images).", "",
        "| variant | L_G reconstruction | C's BatchNorm on generated batches | reconstruction MSE "
        "| judge on G(z, y) | judge on G(E(x), y) | grid |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in results["variants"].items():
        lines.append(
            f"| {name} | per-{'image sum' if v['rec_reduction'] == 'sum' else 'pixel mean'} | "
            f"{v['generated_batchnorm']} | {v['reconstruction_mse']:.3f} | "
            f"{100 * v['judge_acc_generated']:.1f} % | {100 * v['judge_acc_reconstructed']:.1f} % "
            f"| [png]({name}.png) |")
    _bench.write_markdown(out, lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=1000, help="labelled images for the GAN")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--width", type=int, default=8, help="ResNet18 width (C and the judge)")
    p.add_argument("--variants", default="code,bn,skal")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/bgadl_joint_ablation")
    p.add_argument("--report-only", action="store_true", help="rewrite results.md from the JSON")
    args = p.parse_args(argv)
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            write_markdown(args.out, json.load(f))
        return
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    X, y = load_fashion_mnist("train")
    rng = np.random.default_rng(args.seed)
    rows = rng.permutation(len(X))
    train, judge_rows = rows[:args.n_train], rows[args.n_train:args.n_train + 4000]
    judge = ResNet18Classifier(width=args.width, max_epochs=15, batch_size=32,
                               random_state=args.seed).fit(X[judge_rows], y[judge_rows])
    X_test, y_test = load_fashion_mnist("test")
    path = os.path.join(args.out, "results.json")
    results = {"variants": {}}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results.update(
        judge_test_accuracy=float(judge.score(X_test[:2000], y_test[:2000])),
        steps=args.epochs * -(-args.n_train // args.batch_size))
    command = _bench.command_line()
    y_gen = np.repeat(np.arange(10), 100)
    for name in args.variants.split(","):
        rec_reduction, gen_batchnorm = VARIANTS[name]
        aug = GenerativeAugmenter(
            max_epochs=args.epochs, batch_size=args.batch_size, rec_reduction=rec_reduction,
            gen_batchnorm=gen_batchnorm,
            classifier=ResNet18Classifier(width=args.width, random_state=args.seed),
            random_state=args.seed)
        start = time.perf_counter()
        aug.fit(X[train], y[train])
        seconds = time.perf_counter() - start
        X_gen = aug.generate(y_gen)
        X_rec, _ = aug.sample(X[train[:500]], y[train[:500]])
        results["variants"][name] = {
            "rec_reduction": rec_reduction,
            "generated_batchnorm": "running statistics of real images"
            if gen_batchnorm == "running" else "batch statistics of the generated batch",
            "final_losses": {k: round(v, 4) for k, v in aug.history_[-1].items()
                             if k.startswith("loss")},
            "reconstruction_mse": float(np.mean((X_rec - X[train[:500]] / 255.0) ** 2)),
            "judge_acc_generated": float(judge.score(X_gen, y_gen)),
            "judge_acc_reconstructed": float(judge.score(X_rec, y[train[:500]])),
            "fit_seconds": round(seconds, 1),
            "command": command,
        }
        grid(os.path.join(args.out, f"{name}.png"), X_gen, f"variant '{name}': G(z, y), "
             f"one class per row ({results['steps']} steps)")
        print(name, json.dumps(results["variants"][name]), flush=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        write_markdown(args.out, results)


if __name__ == "__main__":
    main()
