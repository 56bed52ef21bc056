"""Which classifier on the frozen features: the recipe's MLP head against linear ones.

The label-efficiency benchmark trains :class:`skal.EmbeddingHeadClassifier` (hidden 128,
dropout 0.5) on the encoder's features of the labelled rows. This script keeps its picks and
its features and changes only the classifier, so a paired difference says what the head alone
costs or gains:

- ``head``: the benchmark's head (the reference of the paired differences);
- ``linear_head``: ``EmbeddingHeadClassifier(hidden=0)`` (LayerNorm, dropout 0.5, one linear
  layer), the same epochs and steps; it keeps MC dropout, so every strategy can query it;
- ``logreg_C``: scikit-learn's ``LogisticRegression(C=C)`` on standardised features (no MC
  dropout: a scorer, not a query model);
- ``head_flip``: the head trained on the features of the labelled images and of their mirror
  images, scored on the mean probability of a test image and its mirror image.

Picks: random (the benchmark's ``random_recipe``: repeat k's random order of the pool) and
TypiClust on the features (``typiclust_recipe``; it needs no model), budgets 20 ... 500, each
repeat k with seed k. It reads the encoder and its features from a label-efficiency output
folder (``--features``, made by ``benchmarks/label_efficiency.py`` with the same options), so
the encoder is the one that folder's head arms were measured with only on the machine that made
it::

    OMP_NUM_THREADS=1 python benchmarks/head_variants.py \\
        --features benchmarks/results/label_efficiency_stages \\
        --out benchmarks/results/head_variants
"""

import argparse
import json
import os
import pickle
import platform
import sys
import time

import numpy as np
import torch
from _bench import command_line, md_table, write_json, write_markdown  # benchmarks/ on sys.path
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import label_efficiency as le  # benchmarks/ on sys.path: the same data, picks and head
from skal import EmbeddingHeadClassifier

BUDGETS = (20, 50, 100, 200, 500)
PICKS = ("random_recipe", "typiclust_recipe")
VARIANTS = ("head", "linear_head", "logreg_0.05", "logreg_0.3", "head_flip")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True,
                   help="a label_efficiency output folder with encoder.pkl and features.npz")
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "head_variants"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--enc-width", type=int, default=24)
    p.add_argument("--enc-stem-stride", type=int, choices=(1, 2), default=2)
    p.add_argument("--enc-feature-stages", choices=("last", "all"), default="all")
    return p.parse_args(argv)


def _accuracy(model, proba, y):
    # the columns are model.classes_: a budget may miss a class
    return float((model.classes_[proba.argmax(1)] == y).mean())


def score_variants(Z, y, Z_test, y_test, Zf, Zf_test, seed):
    """Test accuracy of every classifier variant trained on ``(Z, y)``."""
    out = {"head": le.fit_head(Z, y, seed).score(Z_test, y_test)}
    out["linear_head"] = le.fit_head(Z, y, seed, hidden=0).score(Z_test, y_test)
    for C in (0.05, 0.3):
        logreg = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
        out[f"logreg_{C}"] = logreg.fit(Z, y).score(Z_test, y_test)
    flip = le.fit_head(np.concatenate([Z, Zf]), np.concatenate([y, y]), seed)
    out["head_flip"] = _accuracy(flip, flip.predict_proba(Z_test) + flip.predict_proba(Zf_test),
                                 y_test)
    return {k: float(v) for k, v in out.items()}


def mirrored_features(args, X_pool, X_test):
    """The encoder's features of the mirror images (cached in ``OUT/mirrored.npz``)."""
    path = os.path.join(args.out, "mirrored.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return f["Z_pool"], f["Z_test"]
    with open(os.path.join(args.features, "encoder.pkl"), "rb") as f:
        encoder = pickle.load(f)
    Zf_pool = encoder.transform(np.ascontiguousarray(X_pool[..., ::-1]))  # (n, C, H, W) mirrored
    Zf_test = encoder.transform(np.ascontiguousarray(X_test[..., ::-1]))
    np.savez(path, Z_pool=Zf_pool, Z_test=Zf_test)
    return Zf_pool, Zf_test


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    le_args = le.parse_args(["--out", args.features, "--enc-width", str(args.enc_width),
                             "--enc-stem-stride", str(args.enc_stem_stride),
                             "--enc-feature-stages", args.enc_feature_stages])
    if not os.path.exists(os.path.join(args.features, "features.npz")):
        sys.exit(f"{args.features} has no features.npz: run benchmarks/label_efficiency.py "
                 f"--out {args.features} with the same --enc-* options first")
    X_pool, y_pool, X_test, y_test = le.load_data(le_args)
    Z_pool, Z_test, _ = le.encoder_features(le_args)
    Zf_pool, Zf_test = mirrored_features(args, X_pool, X_test)
    unfitted = [{"_model": EmbeddingHeadClassifier()}]  # TypiClust uses the features alone
    rows, t0 = [], time.process_time()
    for seed in range(args.repeats):
        order = np.random.default_rng(seed).permutation(len(X_pool))  # as label_efficiency
        for picks in PICKS:
            labeled = np.array([], dtype=np.int64)
            for budget in BUDGETS:
                labeled = le._pick(picks, labeled, budget, order, Z_pool, y_pool, seed, unfitted)
                acc = score_variants(Z_pool[labeled], y_pool[labeled], Z_test, y_test,
                                     Zf_pool[labeled], Zf_test, seed)
                rows.append({"picks": picks, "seed": seed, "n_labeled": budget, **acc})
                print(f"[head_variants] {picks} seed {seed} {budget}: "
                      + ", ".join(f"{k} {100 * v:.1f}" for k, v in acc.items()), flush=True)
    cpu_s = round(time.process_time() - t0, 1)
    write_json(args.out, {"command": command_line(), "threads": 1, "cpu_s": cpu_s,
                          "machine": platform.processor() or platform.machine(), "rows": rows})
    write_markdown(args.out, report(args, rows, cpu_s))


def report(args, rows, cpu_s):
    lines = ["# The classifier on the frozen features", "",
             f"Command: `{command_line()}` (1 torch thread, {cpu_s} CPU s in all). Features: "
             f"`{args.features}` (width {args.enc_width}, stem stride {args.enc_stem_stride}, "
             f"feature stages {args.enc_feature_stages}). Accuracy in %, mean over "
             f"{args.repeats} repeats; in brackets the paired difference to `head` (mean ± "
             "standard error).", ""]
    for picks in PICKS:
        table = []
        for variant in VARIANTS:
            cells = []
            for budget in BUDGETS:
                sel = [r for r in rows if r["picks"] == picks and r["n_labeled"] == budget]
                acc = 100 * np.array([r[variant] for r in sel])
                diff = acc - 100 * np.array([r["head"] for r in sel])
                se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
                cells.append(f"{acc.mean():.1f}" if variant == "head"
                             else f"{acc.mean():.1f} ({diff.mean():+.1f} ± {se:.1f})")
            table.append([variant] + cells)
        lines += ([f"## {picks.replace('_recipe', '')} picks", ""]
                  + md_table(["classifier"] + [str(b) for b in BUDGETS], table) + [""])
    return lines


if __name__ == "__main__":
    main()
