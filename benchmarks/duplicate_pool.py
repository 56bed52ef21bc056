"""BatchBALD on a pool of duplicates: consistent MC dropout against a dropout mask per row.

The pool is 20 digits images, each repeated 25 times. A batch of 10 from it should hold 10
different images: a copy of an image already in the batch tells little that the first copy did
not. BatchBALD sees this only when pass t of ``sample_proba`` is one weight draw for the whole
pool (consistent MC dropout, what skal does); with a fresh mask per row (what skal did before),
the copies of an image look like independent points. For each setting, model and seed, this
counts the distinct images among the 10 picks of

- ``batch_bald`` on consistent samples (``sample_proba`` of the pool);
- BatchBALD on per-row masks (each row scored alone with its own seed: the distribution skal's
  ``sample_proba`` had before) through the same selector;
- top-k ``bald`` (consistent: the copies tie, so top-k takes copies of one image), and
- top-k BALD on per-row masks;

and reports the batch's joint mutual information against its ceiling log T: with T passes no
batch can tell more than log T nats about which pass is the true one, and once the batch reaches
it, every further gain is zero and the picks are ties.

Models: a ResNet18 (width 8, 40 epochs) on 1,000 digits images; the pool from the other 797,
either the first 20 (``first``) or the 20 with the highest BALD (``uncertain``)::

    OMP_NUM_THREADS=1 python benchmarks/duplicate_pool.py

Results: ``OUT/results.{md,json,csv}`` (default ``benchmarks/results/duplicate_pool``).
"""

import argparse
import os
import platform
import time

import numpy as np
import torch
from _bench import command_line, md_table, write_markdown, write_summary  # benchmarks/ on sys.path

from skal import ResNet18Classifier, bald, batch_bald
from skal.datasets import load_digits_images
from skal.query import bald_scores
from skal.query.selection import batchbald_select

COPIES, N_IMAGES, BATCH = 25, 20, 10


def per_row_samples(clf, pool, n_samples, seed):
    """MC samples with a fresh mask per row: each row scored alone, with a seed of its own."""
    seeds = np.random.SeedSequence(seed).generate_state(len(pool))
    return np.concatenate([clf.sample_proba(pool[i:i + 1], n_samples=n_samples,
                                            random_state=int(s) % (2**31 - 1))
                           for i, s in enumerate(seeds)], axis=1)  # (T, n, C)


def distinct(idx):
    return len(set((np.asarray(idx) // COPIES).tolist()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join("benchmarks", "results", "duplicate_pool"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = load_digits_images()
    t0 = time.process_time()
    clf = ResNet18Classifier(width=8, max_epochs=40, random_state=0).fit(X[:1000], y[:1000])
    fit_seconds = time.process_time() - t0
    held_out = X[1000:]
    uncertainty = bald_scores(clf.sample_proba(held_out, n_samples=50, random_state=123))
    pools = {"first": held_out[:N_IMAGES],
             "uncertain": held_out[np.argsort(-uncertainty)[:N_IMAGES]]}
    rows = []
    for pool_name, images in pools.items():
        pool = np.repeat(images, COPIES, axis=0)  # (500, 1, 8, 8): copies of a row adjacent
        for T in (20, 50):
            for seed in range(args.seeds):
                idx, gains = batch_bald(clf, pool, BATCH, n_samples=T, random_state=seed)
                old = per_row_samples(clf, pool, T, seed)
                idx_old, _ = batchbald_select(old, BATCH, random_state=seed)
                top, _ = bald(clf, pool, BATCH, n_samples=T, random_state=seed)
                top_old = np.argsort(-bald_scores(old), kind="stable")[:BATCH]
                rows.append({
                    "pool": pool_name, "T": T, "seed": seed,
                    "batch_bald": distinct(idx), "batch_bald_per_row_masks": distinct(idx_old),
                    "bald_top_k": distinct(top), "bald_top_k_per_row_masks": distinct(top_old),
                    "joint_mi": round(float(np.sum(gains)), 3),
                    "log_T": round(float(np.log(T)), 3),
                })
    summary = {"command": command_line(), "threads": args.threads,
               "machine": platform.processor() or platform.machine(),
               "fit_cpu_seconds": round(fit_seconds, 1),
               "test_accuracy": round(float(clf.score(X[1000:], y[1000:])), 4), "rows": rows}
    write_summary(args.out, summary, rows)
    header = ["pool", "T", "seed", "batch_bald", "BatchBALD, mask per row", "top-k bald",
              "top-k BALD, mask per row", "batch's joint MI (nats)", "log T"]
    lines = ["# BatchBALD on a pool of duplicates (20 digits images x 25 copies, batch of 10)", "",
             f"Command: `{summary['command']}` ({args.threads} torch thread(s)).", "",
             f"ResNet18 width 8, 40 epochs on 1,000 digits images (test accuracy on the other "
             f"797: {summary['test_accuracy']:.3f}). Each cell: distinct images among the 10 "
             "picks (10 is the most).", ""]
    lines += md_table(header, [[r["pool"], r["T"], r["seed"], r["batch_bald"],
                                r["batch_bald_per_row_masks"], r["bald_top_k"],
                                r["bald_top_k_per_row_masks"], r["joint_mi"], r["log_T"]]
                               for r in rows])
    write_markdown(args.out, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
