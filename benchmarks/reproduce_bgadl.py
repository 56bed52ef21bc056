"""BGADL on Fashion-MNIST with ResNet18: does generative augmentation help active learning?

The paper (Tran et al., ICML 2019) claims that BGADL, BALD acquisition plus a VAE-ACGAN trained
jointly with the classifier, learns more efficiently than active learning alone and than data
augmentation alone. Its numbers could not be retrieved (docs/bgadl.md, 'Reported results and what
skal measures instead'), so this
script measures the claim itself: at equal label budgets it compares

* ``bgadl``: BALD + the joint scheme (:func:`skal.experiment.make_bgadl`, a
  :class:`skal.BGADLClassifier`: every round the ResNet18 is trained from scratch as the ACGAN
  auxiliary classifier, on real, reconstructed G(E(x), y) and generated G(z, y) images);
* ``bald``: BALD without augmentation (same ResNet18, labelled images only);
* ``random``: random sampling without augmentation;
* ``random_gen``: random sampling + the same joint generative training as ``bgadl`` (the
  paper's "BDA on random labels" control: it differs from ``bgadl`` in the acquisition only);
* ``ceiling``: the same ResNet18 trained on every pool image with its label (full data).

Every arm of repeat k uses master seed SEED + k, so the arms share the pool, the initial labels
and the test subsample of that repeat. Each (arm, repeat) is one :func:`skal.experiment.run_experiment`
folder under ``OUT/runs/<arm>/seed<k>``, checkpointed after every round: running the same command
again resumes where it stopped. The report is rewritten after every finished (arm, repeat) and can
be rebuilt from partial results with ``--report-only``.

Generated samples: after the last round of each generative run, the final model's VAE-ACGAN
draws G(z, y) for every class and x' = G(E(x*), y*) for the last acquired batch x*. They are
shown in a per-class grid (``generated_samples.png`` for bgadl, repeat 0) and classified by the
repeat's ``ceiling`` model, a classifier that never saw a generated image: its accuracy on them
says whether they are recognisable as their label.

Defaults are a CPU-sized version of the protocol (sizes printed next to every result; about two
hours of one core): pool 4000, test 2000, 200 initial + 200 per round for 3 rounds, ResNet18 width
8, 15 epochs but at least 800 training steps per round (a VAE-ACGAN needs several hundred steps
before its samples look like the data), batch 32, 2 repeats::

    OMP_NUM_THREADS=1 python benchmarks/reproduce_bgadl.py

Full-size protocol (GPU): all 60K training images as pool, the 10K test set, 1K initial + 500
per round to 4K labels, width 64, 50 epochs (the authors' code) but at least 1000 steps, batch
100, 3 repeats::

    python benchmarks/reproduce_bgadl.py --full --out benchmarks/results/bgadl_full
"""

import json
import os
import pickle

import numpy as np
import torch

import _bench  # benchmarks/ is on sys.path when run as a script

from skal.datasets import load_fashion_mnist
from skal.experiment import (
    METHODS,
    ExperimentConfig,
    Method,
    RunCallback,
    derive_seed,
    load_experiment_data,
    load_run,
    make_resnet18,
)
from skal.query import random_sampling

ARMS = ("bgadl", "bald", "random", "random_gen")
GENERATIVE = ("bgadl", "random_gen")
LABELS = {
    "bgadl": "BGADL (BALD + joint VAE-ACGAN)",
    "bald": "BALD, no augmentation",
    "random": "random, no augmentation",
    "random_gen": "random + joint VAE-ACGAN",
    "ceiling": "full pool (ceiling)",
}
CLASS_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Boot"]

PRESETS = {
    "scaled": dict(pool_size=4000, test_size=2000, n_initial=200, query_size=200, rounds=3,
                   width=8, epochs=15, min_steps=800, batch_size=32, repeats=2, device="cpu"),
    "full": dict(pool_size=None, test_size=None, n_initial=1000, query_size=500, rounds=6,
                 width=64, epochs=50, min_steps=1000, batch_size=100, repeats=3,
                 device="cuda"),
}
PAPER_FULL = PRESETS["full"]  # what --full means, for the scaling note
# the ceiling arm: every pool image labelled, no query (the other arms are built-in methods)
OWN_METHODS = {"ceiling": Method(random_sampling, make_estimator=make_resnet18)}


class FinalModel(RunCallback):
    """Keeps the fitted model of a run's last round, for the generated-sample analysis."""

    model = None

    def on_fit_end(self, ctx, model, **kwargs):
        if ctx.round == ctx.config.n_rounds:
            self.model = model


# ---------------------------------------------------------------------------- configuration
def n_pool(args):
    if args.pool_size is not None:
        return args.pool_size
    return len(load_fashion_mnist("train")[1])


def config_for(args, arm, seed):
    common = dict(
        dataset="fashion_mnist", repeats=1, seed=seed, pool_size=args.pool_size,
        test_size=args.test_size, width=args.width, max_epochs=args.epochs,
        min_steps=args.min_steps, batch_size=args.batch_size, n_mc_samples=args.mc_samples,
        subsample=args.subsample, device=args.device,
    )
    if arm == "ceiling":  # every pool image labelled, no query
        return ExperimentConfig(method="ceiling", n_initial=n_pool(args), query_size=1,
                                n_rounds=0, **common)
    return ExperimentConfig(method=arm, n_initial=args.n_initial, query_size=args.query_size,
                            n_rounds=args.rounds, **common)


def sizes(args):
    return [args.n_initial + args.query_size * r for r in range(args.rounds + 1)]


def scaling_note(args):
    full = dict(PAPER_FULL)
    parts = []
    if args.pool_size != full["pool_size"]:
        parts.append(f"pool {args.pool_size} instead of all 60K")
    if args.test_size != full["test_size"]:
        parts.append(f"test subsample {args.test_size} instead of 10K")
    if (args.n_initial, args.query_size) != (full["n_initial"], full["query_size"]):
        parts.append(f"{args.n_initial} initial + {args.query_size}/round instead of 1K + 500")
    if sizes(args)[-1] < 4000:
        parts.append(f"up to {sizes(args)[-1]} labels instead of 4K")
    if args.width != full["width"]:
        parts.append(f"ResNet18 width {args.width} instead of 64")
    if args.epochs != full["epochs"]:
        parts.append(f"{args.epochs} epochs per round (classifier and VAE-ACGAN) instead of 50")
    if args.min_steps != full["min_steps"]:
        parts.append(f"at least {args.min_steps} training steps per round (more epochs on small "
                     "labelled sets)")
    if args.batch_size != full["batch_size"]:
        parts.append(f"batch {args.batch_size} instead of 100")
    if args.repeats != full["repeats"]:
        parts.append(f"{args.repeats} repeats instead of 3")
    return "; ".join(parts) if parts else "none (full-size protocol)"


# ---------------------------------------------------------------------------- generated samples
def _judge(args, seed, model=None):
    """The repeat's ceiling classifier (never saw a generated image): ``model``, the ceiling
    run's final model when this process ran it (pickled here), or from disk."""
    path = os.path.join(args.out, "checkpoints", f"ceiling_seed{seed}.pkl")
    if model is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(model, f)
        return model, "ceiling run"
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f), "ceiling run (pickled)"
    # the ceiling run finished in an earlier process that left no pickle: train one like it
    config = config_for(args, "ceiling", seed)
    result = load_run(_bench.run_dir(args.out, "ceiling", seed))
    X, y = load_fashion_mnist("train")
    model = make_resnet18(config, derive_seed(seed, 98), np.unique(y))
    pool = _pool_images(args, "ceiling", seed, result.labeled[0])
    model.fit(pool, result.labels[0])
    return model, "refitted ceiling classifier"


def _pool_images(args, arm, seed, indices):
    """Images of pool indices of a run (the pool is the run's stratified train subsample)."""
    data = load_experiment_data(config_for(args, arm, seed))  # the runner's own pools
    return data.X_train[data.pool_rows(0)[np.asarray(indices)]]


def _final_model(args, arm, seed, model=None):
    """The run's last-round model (a BGADLClassifier), or one refitted on its final labels."""
    if model is not None and hasattr(model, "generator_"):
        return model, "final-round model of the run"
    # finished in an earlier process: refit the arm's model on the final labelled set
    result = load_run(_bench.run_dir(args.out, arm, seed))
    config = config_for(args, arm, seed)
    model = METHODS[arm].make_estimator(config, derive_seed(seed, 99), np.unique(result.labels[0]))
    model.fit(_pool_images(args, arm, seed, result.labeled[0]), result.labels[0])
    return model, "model refitted on the final labelled set"


def analyse_generated(args, arm, seed, model=None, n_per_class=100):
    """Generate from the run's final VAE-ACGAN (``model`` when this process ran it), classify
    with the ceiling model, save a grid."""
    path = os.path.join(args.out, "generated", f"{arm}_seed{seed}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    result = load_run(_bench.run_dir(args.out, arm, seed))
    if len(result.rows) < args.rounds + 1:
        return None
    model, source = _final_model(args, arm, seed, model)
    judge, judge_source = _judge(args, seed)
    classes = model.classes_
    rng_seed = derive_seed(seed, 97)
    y_gen = np.repeat(classes, n_per_class)
    X_gen = model.generate(y_gen, random_state=rng_seed)
    last = result.labeled[0][-args.query_size:]  # the last acquired batch x*
    X_last = _pool_images(args, arm, seed, last)
    y_last = result.labels[0][-args.query_size:]
    X_rec, _ = model.sample(X_last, y_last, random_state=rng_seed)
    pred_gen = judge.predict(X_gen)
    per_class = {str(c): float(np.mean(pred_gen[y_gen == c] == c)) for c in classes}
    metrics = {
        "arm": arm,
        "seed": seed,
        "model": source,
        "judge": f"{judge_source}: ResNet18 width {args.width} trained on the whole pool, "
                 "no generated images",
        "n_labeled": int(len(result.labeled[0])),
        "n_generated_per_class": n_per_class,
        # G(z, y), z ~ N(0, I); x' = G(E(x*), y*) of the last acquired batch x*
        "judge_acc_generated": float(np.mean(pred_gen == y_gen)),
        "judge_acc_generated_per_class": per_class,
        "judge_acc_reconstructed": float(judge.score(X_rec, y_last)),
        "judge_acc_real_acquired": float(judge.score(X_last, y_last)),
        "own_acc_generated": float(model.score(X_gen, y_gen)),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    grid_png = os.path.join(args.out, "generated", f"{arm}_seed{seed}.png")
    plot_grid(grid_png, classes, X_gen, y_gen, X_last, X_rec, y_last,
              title=f"{LABELS[arm]}, repeat seed {seed}, {len(result.labeled[0])} labels")
    metrics["grid_png"] = os.path.relpath(grid_png, args.out)
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def plot_grid(out_png, classes, X_gen, y_gen, X_real, X_rec, y_real, title, n_pairs=2, n_gen=6):
    """One row per class: real x*, its x' = G(E(x*), y*) (pairs), then G(z, y) samples."""
    from matplotlib.figure import Figure

    n_cols = 2 * n_pairs + n_gen
    fig = Figure(figsize=(n_cols * 0.8 + 1.2, len(classes) * 0.8 + 0.8), layout="constrained")
    axes = fig.subplots(len(classes), n_cols, squeeze=False)
    for r, c in enumerate(classes):
        real = np.flatnonzero(y_real == c)[:n_pairs]
        cells = []
        for i in range(n_pairs):
            cells += [X_real[real[i]] if i < len(real) else None,
                      X_rec[real[i]] if i < len(real) else None]
        cells += list(X_gen[y_gen == c][:n_gen])
        for k, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            img = cells[k] if k < len(cells) else None
            if img is not None:
                img = np.asarray(img, dtype=np.float32)
                img = img / 255.0 if img.max() > 1 else img
                ax.imshow(img.reshape(img.shape[-2:]), cmap="gray", vmin=0, vmax=1)
            if k == 0:
                name = CLASS_NAMES[int(c)] if int(c) < len(CLASS_NAMES) else str(c)
                ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
            if r == 0:
                head = ("x*" if k % 2 == 0 else "x'") if k < 2 * n_pairs else "G(z,y)"
                ax.set_title(head, fontsize=8)
    fig.suptitle(title + "\nx*: acquired image, x' = G(E(x*), y*), G(z,y): z ~ N(0, I)",
                 fontsize=8)
    fig.savefig(out_png, dpi=100)


# ---------------------------------------------------------------------------- report
def collect(args):
    """{arm: [result rows of every finished round]} over the repeats."""
    return {arm: [row for k in range(args.repeats)
                  for row in _bench.load_rows(_bench.run_dir(args.out, arm, args.seed + k)) or []]
            for arm in (*ARMS, "ceiling")}


def write_report(args):
    data = collect(args)
    rows = []
    for n in sizes(args):
        row = {"n_labeled": n}
        for arm in ARMS:
            columns, at_n = _bench.size_columns(data[arm], arm, n)
            row.update(columns)
            row[f"{arm}_fit_s"], _ = _bench.mean_std([r["fit_seconds"] for r in at_n], 1)
            row[f"{arm}_query_s"], _ = _bench.mean_std([r["query_seconds"] for r in at_n], 1)
        rows.append(row)
    ceiling = [100 * r["accuracy"] for r in data["ceiling"]]
    generated = []
    for arm in GENERATIVE:
        for k in range(args.repeats):
            path = os.path.join(args.out, "generated", f"{arm}_seed{args.seed + k}.json")
            if os.path.exists(path):
                with open(path) as f:
                    generated.append(json.load(f))
    mean, std = _bench.mean_std(ceiling, 2)
    fit_s, _ = _bench.mean_std([r["fit_seconds"] for r in data["ceiling"]], 1)
    summary = {
        "protocol": "Fashion-MNIST, ResNet18 with dropout 0.5 before the last layer (MC "
                    "dropout, T=%d), Adam lr 1e-3, retrained from scratch every round; "
                    "arms share pool, initial labels and test subsample per repeat"
                    % args.mc_samples,
        "sizes": {"pool": args.pool_size or "all 60000", "test": args.test_size or "all 10000",
                  "n_initial": args.n_initial, "query_size": args.query_size,
                  "rounds": args.rounds, "labels": sizes(args), "width": args.width,
                  "epochs": args.epochs, "min_steps": args.min_steps,
                  "batch_size": args.batch_size,
                  "repeats": args.repeats, "device": args.device,
                  "torch_threads": torch.get_num_threads()},
        "scaling": scaling_note(args),
        "command": _bench.command_line(),
        "rows": rows,
        "ceiling": {"n_labeled": n_pool(args), "mean": mean, "std": std, "n": len(ceiling),
                    "fit_s": fit_s},
        "generated": generated,
    }
    _bench.write_summary(args.out, summary, rows)
    write_markdown(args, summary)
    plot_curves(args, summary)


def write_markdown(args, summary):
    def cell(row, arm):
        if row[f"{arm}_mean"] is None:
            return "-"
        return f"{row[f'{arm}_mean']:.2f} ± {row[f'{arm}_std']:.2f} (n={row[f'{arm}_n']})"

    s = summary["sizes"]
    ceil = summary["ceiling"]
    lines = [
        "# BGADL on Fashion-MNIST (ResNet18): BALD + joint VAE-ACGAN vs its ablations",
        "",
        f"Command: `{summary['command']}`",
        "",
        f"Sizes: pool {s['pool']}, test {s['test']}, {s['n_initial']} initial + "
        f"{s['query_size']} per round for {s['rounds']} rounds (labels {s['labels']}), "
        f"ResNet18 width {s['width']}, {s['epochs']} epochs per round (at least "
        f"{s['min_steps']} steps) for the classifier and the VAE-ACGAN alike, batch "
        f"{s['batch_size']}, {s['repeats']} repeats, {s['device']}, "
        f"{s['torch_threads']} torch thread(s).",
        "",
        f"Scaling vs the full-size protocol (`--full`): **{summary['scaling']}**.",
        "",
        "No accuracy of the paper is known here (docs/bgadl.md, 'Reported results and what",
        "skal measures instead'): the question is the",
        "paper's claim, BGADL >= BALD without augmentation and >= random + augmentation at equal",
        "label budgets. The two generative arms train the classifier jointly as the ACGAN",
        "auxiliary classifier on real + reconstructed + generated images (the authors' scheme);",
        "the other arms train it on the labelled images only.",
        "",
        "Test accuracy (%), mean ± std over repeats (n = repeats finished):",
        "",
    ]
    lines += _bench.md_table(["labels", *(LABELS[a] for a in ARMS)],
                             [[row["n_labeled"], *(cell(row, a) for a in ARMS)]
                              for row in summary["rows"]])
    if ceil["mean"] is not None:
        lines += ["", f"Ceiling, the same ResNet18 trained on all {ceil['n_labeled']} pool "
                      f"images: **{ceil['mean']:.2f} ± {ceil['std']:.2f}** (n={ceil['n']}, "
                      f"{ceil['fit_s']} s per fit)."]
    lines += ["", "Mean wall-clock seconds per round (fit / query), on a shared 2-core machine:",
              ""]
    lines += _bench.md_table(
        ["labels", *ARMS],
        [[row["n_labeled"], *("-" if row[f"{a}_fit_s"] is None
                              else f"{row[f'{a}_fit_s']} / {row[f'{a}_query_s']}" for a in ARMS)]
         for row in summary["rows"]])
    if summary["generated"]:
        lines += [
            "", "## Are the generated images recognisable as their label?", "",
            "Each generative run's final VAE-ACGAN draws 100 G(z, y) per class and reconstructs",
            "the last acquired batch x* as x' = G(E(x*), y*). The judge is the repeat's ceiling",
            "classifier (trained on the whole pool, never on a generated image); 'own' is the",
            "run's jointly trained classifier.", "",
        ]
        lines += _bench.md_table(
            ["arm", "seed", "labels", "judge on G(z,y)", "judge on x'", "judge on real x*",
             "own on G(z,y)", "grid"],
            [[g["arm"], g["seed"], g["n_labeled"], *(f"{100 * g[k]:.1f}" for k in (
                "judge_acc_generated", "judge_acc_reconstructed", "judge_acc_real_acquired",
                "own_acc_generated")), f"[png]({g['grid_png']})"] for g in summary["generated"]])
        lines += ["", "Per-class judge accuracy on G(z, y) (%):", ""]
        lines += _bench.md_table(
            ["arm", "seed", *CLASS_NAMES],
            [[g["arm"], g["seed"], *(f"{100 * pc[str(c)]:.0f}" if str(c) in pc else "-"
                                     for c in range(len(CLASS_NAMES)))]
             for g in summary["generated"] for pc in [g["judge_acc_generated_per_class"]]])
    _bench.write_markdown(args.out, lines)


def plot_curves(args, summary):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    colors = {"bgadl": "tab:red", "bald": "tab:blue", "random": "tab:gray",
              "random_gen": "tab:green"}
    for arm in ARMS:
        _bench.plot_mean_std(ax, summary["rows"], arm, colors[arm], LABELS[arm])
    ceil = summary["ceiling"]
    if ceil["mean"] is not None:
        ax.axhline(ceil["mean"], color="black", linestyle="--",
                   label=f"{LABELS['ceiling']}: {ceil['n_labeled']} labels")
    s = summary["sizes"]
    ax.set_title(f"Fashion-MNIST, ResNet18 width {s['width']}, pool {s['pool']}, test "
                 f"{s['test']}, {s['epochs']} epochs, {s['repeats']} repeats (mean ± std)",
                 fontsize="small")
    ax.set_xlabel("number of labelled samples")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(os.path.join(args.out, "bgadl_fashion_mnist.png"), dpi=120)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = _bench.new_parser(__doc__)
    _bench.add_presets(p, PRESETS, {"full": "full-size protocol defaults (GPU): "
                                            + json.dumps(PRESETS["full"])}, default="scaled")
    p.add_argument("--mc-samples", type=int, default=20, help="MC-dropout passes T for BALD")
    p.add_argument("--subsample", type=int, default=None,
                   help="BALD scores a random subset of this many pool images (default: all)")
    _bench.add_run_options(p, out=None, arms=(*ARMS, "ceiling"), jobs=False, out_help=(
        "default benchmarks/results/bgadl (--full: benchmarks/results/bgadl_full)"))
    args = p.parse_args(argv)
    _bench.apply_presets(args, PRESETS, default="scaled")
    args.arms = _bench.split_arms(p, args.arms, (*ARMS, "ceiling"))
    if args.out is None:  # benchmarks/results/bgadl (--full: benchmarks/results/bgadl_full)
        args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                "bgadl_full" if args.full else "bgadl")
    return args


def run_one(args, arm, seed):
    """One run; then the ceiling's judge is pickled, a generative run's samples analysed."""
    final = FinalModel()
    seconds = _bench.run(config_for(args, arm, seed), _bench.run_dir(args.out, arm, seed),
                         callbacks=[final])
    print(f"{arm} seed {seed} done in {seconds:.0f} s", flush=True)
    if arm == "ceiling":
        _judge(args, seed, final.model)  # pickle the judge while it is in memory
    if arm in GENERATIVE:
        metrics = analyse_generated(args, arm, seed, final.model)
        print(f"generated samples of {arm} seed {seed}: {json.dumps(metrics)}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    _bench.register_methods(OWN_METHODS)
    if args.report_only:
        write_report(args)
        return
    # ceiling first: its model judges the generated images of the same repeat
    arms = sorted(args.arms, key=lambda a: a != "ceiling")
    _bench.run_jobs([(args, arm, seed) for arm, seed in _bench.jobs_for(arms, args.seed,
                                                                         args.repeats)],
                    run_one, after=lambda job, _: write_report(args))


if __name__ == "__main__":
    main()
