"""Labels saved: how few labels the recipe needs to match today's supervised training.

Arms, on one pool and test set, each over repeats (repeat k: seed SEED + k for the random picks,
the heads and the strategies; the arms of a repeat share the same random order of the pool):

- ``random_scratch`` (a): random picks + skal's ResNet18 trained from scratch on them (today's
  training: width 8, Adam, batch 32, at least 15 epochs and 800 steps per fit);
- ``random_recipe`` (b): random picks + the recipe: a SimCLR :class:`skal.ContrastiveEncoder`
  pretrained once on the unlabelled pool (no labels), frozen, and an MC-dropout
  :class:`skal.EmbeddingHeadClassifier` trained on its features of the labelled rows;
- ``<strategy>_recipe`` (c): the same recipe, the labels chosen by an active-learning loop with
  that strategy on the encoder's features (``probcover`` and ``typiclust`` also pick the first
  batch, from the features alone; the others start from the random first batch of (b));
- ``random_finetune`` and ``<strategy>_finetune``: the labels of ``random_recipe`` or
  ``<strategy>_recipe`` (the same picks: the frozen head's loop chooses them), and the model
  scored is a ResNet18 of the encoder's width whose trunk starts from the encoder
  (:func:`skal.init_trunk`) and is fine-tuned on them with the scratch arm's training. It says
  what fine-tuning adds to the frozen features once the labels are picked.

The budgets are cumulative label counts (each round adds the difference). The headline is the
number of **labels saved**: per repeat, the budget at which an arm first reaches the accuracy
that (a) has at 1,000 and at 2,000 labels (linear interpolation between budgets), and the ratio
to 1,000 or 2,000. Paired differences to (b) per budget (mean ± standard error over repeats) say
whether a strategy adds anything on top of the recipe.

The encoder is pretrained once (seed SEED) and shared by all repeats: its cost is paid once, and
the repeats measure the label picks and the heads, not the pretraining's own variance. It is
cached in ``OUT/encoder.pkl`` with the features (``OUT/features.npz``); every (arm, repeat) is
one ``OUT/runs/<arm>/seed<k>.json``, so the same command resumes where it stopped.

CPU protocol (the default): Fashion-MNIST, a 10,000-image pool from the training set, 5,000
test images, budgets 20 ... 2,000, 5 repeats::

    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --jobs 2

A smoke run on digits (a minute)::

    python benchmarks/label_efficiency.py --tiny --out /tmp/label_efficiency_tiny

``--full`` is the GPU protocol: the whole 60K training set as pool, the 10K test set, width 64.
"""

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import pickle
import platform
import time

import numpy as np
import torch
from _bench import command_line, md_table, write_json, write_markdown  # benchmarks/ on sys.path
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR

from skal import (
    ContrastiveEncoder,
    EmbeddingHeadClassifier,
    ResNet18Classifier,
    badge,
    bald,
    init_trunk,
    margin_sampling,
    probcover,
    typiclust,
)
from skal.datasets import load_digits_images, load_fashion_mnist

PRESETS = {
    "cpu": dict(data="fashion_mnist", pool=10_000, test=5_000, repeats=5,
                budgets=(20, 50, 100, 200, 500, 1000, 2000), enc_width=8, enc_stem_stride=1,
                enc_epochs=40, enc_batch=256, scratch_width=8, flip=True, crop_min=0.2,
                device="cpu"),
    "tiny": dict(data="digits", pool=1_000, test=500, repeats=2, budgets=(10, 20, 50, 100, 200),
                 enc_width=4, enc_stem_stride=1, enc_epochs=3, enc_batch=128, scratch_width=4,
                 flip=False, crop_min=0.5, device="cpu"),
    "full": dict(data="fashion_mnist", pool=None, test=None, repeats=5,
                 budgets=(20, 50, 100, 200, 500, 1000, 2000), enc_width=64, enc_stem_stride=1,
                 enc_epochs=200, enc_batch=512, scratch_width=64, flip=True, crop_min=0.2,
                 device="cuda"),
}
#: strategy arms: (query function, keyword arguments, picks its own first batch)
STRATEGIES = {
    "probcover": (probcover, {"embedding": "input"}, True),
    "typiclust": (typiclust, {"embedding": "input"}, True),
    "margin": (margin_sampling, {}, False),
    "bald": (bald, {"n_samples": 20}, False),
    "badge": (badge, {}, False),
}
ARMS = (["random_scratch", "random_recipe"] + [f"{s}_recipe" for s in STRATEGIES]
        + ["random_finetune", "badge_finetune"])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="digits, a minute")
    p.add_argument("--full", action="store_true", help="the GPU protocol")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--enc-epochs", type=int, default=None,
                   help="the encoder's pretraining epochs (overrides the preset)")
    p.add_argument("--enc-width", type=int, default=None,
                   help="the encoder's width (overrides the preset)")
    p.add_argument("--enc-stem-stride", type=int, choices=(1, 2), default=None,
                   help="the stride of the encoder's stem (overrides the preset)")
    p.add_argument("--enc-feature-stages", choices=("last", "all"), default="last",
                   help="the encoder's feature_stages: the head learns on the pooled last "
                        "stage (default) or on all four stages side by side")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    preset = "tiny" if args.tiny else "full" if args.full else "cpu"
    for key, value in PRESETS[preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.preset = preset
    args.out = args.out or os.path.join("benchmarks", "results", "label_efficiency"
                                        + ("" if preset == "cpu" else f"_{preset}"))
    args.arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        p.error(f"unknown arms {unknown}; known: {ARMS}")
    return args


# ---------------------------------------------------------------------------- data, encoder
def load_data(args):
    """``(X_pool, y_pool, X_test, y_test)``: a seeded subset of the training and test sets."""
    rng = np.random.default_rng(12345)
    if args.data == "digits":
        X, y = load_digits_images()
        order = rng.permutation(len(X))
        pool, test = order[:args.pool], order[args.pool:args.pool + args.test]
        return X[pool], y[pool], X[test], y[test]
    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    pool = np.sort(rng.permutation(len(X))[:args.pool]) if args.pool else np.arange(len(X))
    test = (np.sort(rng.permutation(len(X_test))[:args.test]) if args.test
            else np.arange(len(X_test)))
    return X[pool], y[pool], X_test[test], y_test[test]


def new_encoder(args):
    """The unfitted SimCLR encoder of the protocol."""
    return ContrastiveEncoder(
        width=args.enc_width, stem_stride=args.enc_stem_stride,
        feature_stages=args.enc_feature_stages, max_epochs=args.enc_epochs,
        batch_size=args.enc_batch, lr=2e-3,
        temperature=0.5, flip=args.flip, crop_scale=(args.crop_min, 1.0),
        random_state=args.seed, device=args.device,
        callbacks=[("cosine", LRScheduler(CosineAnnealingLR, T_max=args.enc_epochs))],
    )


def encoder_features(args):
    """The encoder's features of pool and test (pretrained and cached on the first call)."""
    path = os.path.join(args.out, "features.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return f["Z_pool"], f["Z_test"], json.loads(str(f["info"]))
    X_pool, _, X_test, _ = load_data(args)
    torch.set_num_threads(args.threads * max(args.jobs, 1))
    enc = new_encoder(args)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    enc.fit(X_pool)  # the pool's images, no labels
    info = {"pretrain_cpu_s": round(time.process_time() - cpu0, 1),
            "pretrain_wall_s": round(time.perf_counter() - wall0, 1),
            "pretrain_threads": torch.get_num_threads()}
    Z_pool, Z_test = enc.transform(X_pool), enc.transform(X_test)
    with open(os.path.join(args.out, "encoder.pkl"), "wb") as f:
        pickle.dump(enc, f)
    np.savez(path, Z_pool=Z_pool, Z_test=Z_test, info=json.dumps(info))
    return Z_pool, Z_test, info


# ---------------------------------------------------------------------------- one run
def _steps_epochs(n, batch, min_epochs, min_steps):
    return max(min_epochs, math.ceil(min_steps / math.ceil(n / batch)))


def fit_scratch(args, X, y, seed):
    epochs = _steps_epochs(len(X), 32, 15, 800)
    return ResNet18Classifier(width=args.scratch_width, batch_size=32, max_epochs=epochs,
                              device=args.device, random_state=seed).fit(X, y)


def load_encoder(args):
    """The pretrained encoder of ``OUT/encoder.pkl`` (after :func:`encoder_features`)."""
    with open(os.path.join(args.out, "encoder.pkl"), "rb") as f:
        return pickle.load(f)


def fit_finetune(args, X, y, seed, encoder):
    """A ResNet18 of the encoder's width, its trunk started from the encoder, trained as
    :func:`fit_scratch` trains (the same epochs, steps, batch and optimiser)."""
    epochs = _steps_epochs(len(X), 32, 15, 800)
    model = ResNet18Classifier(width=args.enc_width, stem_stride=args.enc_stem_stride,
                               batch_size=32, max_epochs=epochs,
                               device=args.device, random_state=seed)
    return init_trunk(model, encoder).fit(X, y)


def fit_head(Z, y, seed, hidden=128):
    epochs = _steps_epochs(len(Z), 64, 30, 500)
    return EmbeddingHeadClassifier(hidden=hidden, dropout=0.5, max_epochs=epochs, batch_size=64,
                                   random_state=seed).fit(Z, y)


def run_one(args, arm, k):
    """One (arm, repeat): accuracy at every budget, written to ``OUT/runs/<arm>/seed<k>.json``."""
    path = os.path.join(args.out, "runs", arm, f"seed{args.seed + k}.json")
    if os.path.exists(path):
        return path
    torch.set_num_threads(args.threads)
    seed = args.seed + k
    X_pool, y_pool, X_test, y_test = load_data(args)
    if arm != "random_scratch":  # the baseline needs no encoder
        Z_pool, Z_test, _ = encoder_features(args)
    encoder = load_encoder(args) if arm.endswith("_finetune") else None
    picks = arm.replace("_finetune", "_recipe")  # a fine-tune arm takes a head arm's labels
    order = np.random.default_rng(seed).permutation(len(X_pool))  # the repeat's random picks
    rows, labeled, t0 = [], np.array([], dtype=np.int64), time.process_time()
    for budget in args.budgets:
        if arm == "random_scratch":
            labeled = order[:budget]
            model = fit_scratch(args, X_pool[labeled], y_pool[labeled], seed)
            accuracy = model.score(X_test, y_test)
        else:
            labeled = _pick(picks, labeled, budget, order, Z_pool, y_pool, seed, model_of=rows)
            # the head: the model scored (head arms) and the next round's query model (a
            # strategy's picks); random picks with a fine-tuned model need no head
            rows_model = (None if picks == "random_recipe" and encoder is not None
                          else fit_head(Z_pool[labeled], y_pool[labeled], seed))
            if encoder is None:
                accuracy = rows_model.score(Z_test, y_test)
            else:
                finetuned = fit_finetune(args, X_pool[labeled], y_pool[labeled], seed, encoder)
                accuracy = finetuned.score(X_test, y_test)
        rows.append({"n_labeled": int(budget), "accuracy": float(accuracy),
                     "cpu_s": round(time.process_time() - t0, 2)})
        if arm != "random_scratch":
            rows[-1]["_model"] = rows_model
    result = {"arm": arm, "seed": seed, "threads": args.threads,
              "machine": platform.processor() or platform.machine(),
              "rows": [{k: v for k, v in r.items() if k != "_model"} for r in rows]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)  # atomic: a killed run leaves no half file
    return path


def _pick(arm, labeled, budget, order, Z_pool, y_pool, seed, model_of):
    """The labelled positions after growing ``labeled`` to ``budget`` in arm ``arm``."""
    n_new = budget - len(labeled)
    if arm == "random_recipe":
        return order[:budget]
    name = arm[:-len("_recipe")]
    strategy, kwargs, cold_start = STRATEGIES[name]
    if len(labeled) == 0 and not cold_start:
        return order[:budget]  # the random first batch of (b)
    rest = np.setdiff1d(np.arange(len(Z_pool)), labeled)
    if len(labeled) == 0:
        learner = EmbeddingHeadClassifier()  # unfitted: the strategy uses the features alone
    else:
        learner = model_of[-1]["_model"]
    if name in ("probcover", "typiclust"):
        kwargs = dict(kwargs, X_labeled=Z_pool[labeled] if len(labeled) else None)
    if name == "probcover":  # the number of classes is known (not the labels)
        kwargs["n_classes"] = len(np.unique(y_pool))
    idx, _ = strategy(learner, Z_pool[rest], n_new, random_state=seed + budget, **kwargs)
    return np.concatenate([labeled, rest[idx]])


# ---------------------------------------------------------------------------- report
def load_runs(args):
    out = {}
    for arm in args.arms:
        for k in range(args.repeats):
            path = os.path.join(args.out, "runs", arm, f"seed{args.seed + k}.json")
            if os.path.exists(path):
                with open(path) as f:
                    out.setdefault(arm, {})[args.seed + k] = json.load(f)
    return out


def budget_to_reach(rows, target):
    """The first budget at which the curve reaches ``target`` (linear between budgets), or
    None if it never does."""
    n = [r["n_labeled"] for r in rows]
    acc = [r["accuracy"] for r in rows]
    if acc[0] >= target:
        return float(n[0])
    for i in range(1, len(n)):
        if acc[i] >= target:
            return n[i - 1] + (target - acc[i - 1]) / (acc[i] - acc[i - 1]) * (n[i] - n[i - 1])
    return None


def _mean_se(values):
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _fmt(mean, se, digits=1):
    return "-" if mean is None else f"{mean:.{digits}f} ± {se:.{digits}f}"


def linear_probe(args):
    """Test accuracies of a standardised logistic regression fitted on the whole labelled pool:
    on the encoder's features, on those of the same encoder before pretraining (its initial
    weights, the same ``feature_stages``) and on the raw pixels."""
    path = os.path.join(args.out, "features.npz")
    if not os.path.exists(path):
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_pool, y_pool, X_test, y_test = load_data(args)

    def score(Z, Z_t):
        clf = make_pipeline(StandardScaler(),
                            LogisticRegression(max_iter=2000, random_state=args.seed))
        return float(clf.fit(Z, y_pool).score(Z_t, y_test))

    with np.load(path) as f:
        trained = score(f["Z_pool"], f["Z_test"])
    initial = new_encoder(args).set_params(image_shape=tuple(X_pool.shape[1:]))
    with torch.random.fork_rng(devices=[]):  # fit seeds torch with random_state, then builds
        torch.manual_seed(args.seed)  # the net: so do we, for the same initial weights
        initial.initialize()
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32)  # (n, C, H, W) -> (n, C*H*W)
    return {"accuracy": trained,
            "random_init_accuracy": score(initial.transform(X_pool), initial.transform(X_test)),
            "raw_pixels_accuracy": score(flat(X_pool), flat(X_test)),
            "n_train": int(len(X_pool)), "n_test": int(len(X_test))}


_STAGES = {"last": "pooled last stage", "all": "pooled four stages side by side"}


def report(args, info):
    runs = load_runs(args)
    base = runs.get("random_scratch", {})
    recipe = runs.get("random_recipe", {})
    budgets = list(args.budgets)
    lines = [f"# Labels saved on {args.data} ({args.preset} protocol)", "",
             f"Command: `{command_line()}` ({args.threads} torch thread(s) per run; encoder "
             f"pretrained once with {info.get('pretrain_threads')} thread(s) in "
             f"{info.get('pretrain_cpu_s')} CPU s / {info.get('pretrain_wall_s')} wall s).", "",
             f"Pool {args.pool or 'all'}, test {args.test or 'all'}, budgets {budgets}; "
             f"encoder: SimCLR ResNet18 width {args.enc_width}, stem stride "
             f"{args.enc_stem_stride}, {args.enc_epochs} epochs, batch "
             f"{args.enc_batch}, features of the {_STAGES[args.enc_feature_stages]}; "
             "head: EmbeddingHeadClassifier(hidden=128); scratch: "
             f"ResNet18 width {args.scratch_width}, >= 800 steps; fine-tune (the `_finetune` "
             f"arms): ResNet18 width {args.enc_width} (stem stride {args.enc_stem_stride}) "
             "started from the encoder's trunk, the "
             "scratch arm's training, on the labels its `_recipe` arm picked. Accuracy in %, "
             "mean ± std over repeats (n).", ""]
    probe = linear_probe(args)
    if probe is not None:
        lines += [f"Linear probe with all {probe['n_train']} pool labels (standardised "
                  f"logistic regression), test accuracy: **{100 * probe['accuracy']:.1f} %** on "
                  "the encoder's features (issue 29's target: 85 %), "
                  f"{100 * probe['random_init_accuracy']:.1f} % on the same encoder's features "
                  f"before pretraining, {100 * probe['raw_pixels_accuracy']:.1f} % on the raw "
                  "pixels.", ""]
    header = ["arm"] + [str(b) for b in budgets]
    table = []
    for arm in args.arms:
        if arm not in runs:
            continue
        acc = np.array([[r["accuracy"] for r in run["rows"]] for run in runs[arm].values()])
        cells = [f"{100 * acc[:, i].mean():.1f} ± {100 * acc[:, i].std():.1f} ({len(acc)})"
                 for i in range(len(budgets))]
        table.append([arm] + cells)
    lines += md_table(header, table)
    summary = {"command": command_line(), "encoder": info, "linear_probe": probe,
               "labels_saved": [], "paired": []}
    for ref in (1000, 2000):
        if ref not in budgets or not base:
            continue
        lines += ["", f"## Labels to reach (a)'s accuracy at {ref} labels", "",
                  "Per repeat, the budget at which the arm first reaches the accuracy "
                  f"random_scratch has at {ref} labels in the same repeat; mean ± standard "
                  "error over the repeats that reach it; ratio = "
                  f"{ref} / that budget.", ""]
        rows_md = []
        for arm in args.arms:
            if arm not in runs:
                continue
            reached, missed = [], 0
            for seed, run in runs[arm].items():
                if seed not in base:
                    continue
                target = base[seed]["rows"][budgets.index(ref)]["accuracy"]
                b = budget_to_reach(run["rows"], target)
                if b is None:
                    missed += 1
                else:
                    reached.append(b)
            mean, se = _mean_se(reached)
            ratio = "-" if not mean else f"{ref / mean:.1f}x"
            rows_md.append([arm, _fmt(mean, se, 0), len(reached), missed, ratio])
            summary["labels_saved"].append({"reference": ref, "arm": arm, "mean": mean, "se": se,
                                            "reached": len(reached), "missed": missed})
        lines += md_table(["arm", "labels needed", "repeats reaching", "never reaching",
                           "label saving"], rows_md)
    if recipe:
        lines += ["", "## Paired with random_recipe (b)", "",
                  "Accuracy difference to random picks with the same recipe and seed, in "
                  "points, mean ± standard error over the pairs.", ""]
        rows_md = []
        for arm in args.arms:
            if arm in ("random_recipe", "random_scratch") or arm not in runs:
                continue
            cells = []
            for i, b in enumerate(budgets):
                d = [100 * (run["rows"][i]["accuracy"] - recipe[s]["rows"][i]["accuracy"])
                     for s, run in runs[arm].items() if s in recipe]
                mean, se = _mean_se(d)
                cells.append(_fmt(mean, se) + f" ({len(d)})")
                summary["paired"].append({"arm": arm, "n_labeled": b, "mean": mean, "se": se,
                                          "pairs": len(d)})
            rows_md.append([arm] + cells)
        lines += md_table(header, rows_md)
    cpu = {arm: round(float(np.mean([run["rows"][-1]["cpu_s"] for run in r.values()])), 1)
           for arm, r in runs.items()}
    lines += ["", "CPU seconds per repeat (all budgets, fits and queries): "
              + ", ".join(f"{a} {s}" for a, s in cpu.items()) + "."]
    summary["cpu_s_per_repeat"] = cpu
    write_json(args.out, summary)
    write_markdown(args.out, lines)
    _plot(args, runs)
    print("\n".join(lines))


def _plot(args, runs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, r in runs.items():
        acc = 100 * np.array([[row["accuracy"] for row in run["rows"]] for run in r.values()])
        ax.errorbar(args.budgets, acc.mean(0), yerr=acc.std(0), label=arm, capsize=2,
                    linestyle="--" if arm == "random_scratch"
                    else ":" if arm.endswith("_finetune") else "-")
    ax.set_xscale("log")
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Labels saved on {args.data}: recipe vs supervised from scratch")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "label_efficiency.png"), dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "features.npz")
    if args.report_only:
        info = {}
        if os.path.exists(path):
            with np.load(path) as f:
                info = json.loads(str(f["info"]))
        report(args, info)
        return 0
    info = {}
    if set(args.arms) - {"random_scratch"}:
        _, _, info = encoder_features(args)
        print(f"[label_efficiency] encoder ready: {info}", flush=True)
    jobs = [(arm, k) for k in range(args.repeats) for arm in args.arms]
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = {pool.submit(run_one, args, arm, k): (arm, k) for arm, k in jobs}
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
                print(f"[label_efficiency] {futures[fut]} done", flush=True)
    else:
        for arm, k in jobs:
            run_one(args, arm, k)
            print(f"[label_efficiency] {(arm, k)} done", flush=True)
    report(args, info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
