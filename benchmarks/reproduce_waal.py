"""Reproduce WAAL's Fashion-MNIST experiment (Shui et al., AISTATS 2020, thesis Table B.3).

Protocol of the paper (thesis §3.4, Table B.1): a 40K pool and a 20K validation split from the
60K training images, the official 10K test set, 1K random initial labels, +500 per round up to
6K labels (10 rounds), 5 repeats, no augmentation, every network retrained from scratch each
round, at most 80 epochs per round. Methods here: WAAL (:class:`skal.WAALClassifier` trained on
the labelled set plus the rest of the pool, queried with :func:`skal.waal_uncertainty_diversity`),
and the random and max-entropy baselines, which the paper trains on labelled data only with the
same LeNet network. All three use the paper's optimiser (SGD, lr 0.01, momentum 0.5, lr x0.1 at
50 % and 75 % of the epochs, batch 64) and the authors' input normalisation (MNIST mean/std).

Early stopping: the paper stops early on the 20K validation split but does not say on what, so
the paper's arms train every round for the full number of epochs. The ``*_es`` arms
(``random_es``, ``entropy_es``, ``waal_es``) stop instead once the loss on the validation split
(the 20K training images outside the pool) has not improved for ``ES_PATIENCE`` epoch(s):
the rule of ``benchmarks/waal_epoch_curves.py`` (which replays many rules on per-epoch curves at
1K labels) that puts the random baseline nearest to the paper's 1K-label number.

Two arms the paper does not have (docs/waal.md, 'Training length'). WAAL's epochs run over the
unlabelled
pool, so at 1K labels it trains 38 times longer than the paper's baselines (80 x ceil(39K / 64)
= 48,800 SGD steps against 80 x ceil(1K / 64) = 1,280). ``random_steps`` is random sampling
with the labelled-only LeNet trained for at least WAAL's first-round step count (WAAL's later
rounds take 2-13 % fewer); ``waal_short`` is WAAL with ``epoch_over="labeled"`` (each epoch a
pass over the labelled set, each batch paired with random unlabelled images), i.e. the
baselines' step count. Together with the paper's arms they compare WAAL and random sampling at
both training lengths, which separates the effect of longer training from the effect of the
unlabelled data, the critic and the query.

The experiment loop is :func:`skal.experiment.run_experiment`: one folder per method and repeat
under ``OUT/runs/<method>/seed<k>``, checkpointed after every round, so running the same command
again resumes where it stopped. The report (``OUT/results.{json,csv,md}`` and
``OUT/waal_fashion_mnist.png``) is rewritten after every finished run and can be rebuilt from
partial results with ``--report-only``. The query-speed comparison (paper Table 1) times
``waal_uncertainty_diversity`` against ``entropy_sampling`` on a 40K pool with the same model.

Full protocol (hours of CPU per repeat)::

    python benchmarks/reproduce_waal.py

Scaled down (what fits in about 90 CPU minutes; the scaling is written into the results)::

    python benchmarks/reproduce_waal.py --epochs 2 --baseline-epochs 20 --repeats 2
"""

import functools
import json
import os
import time
import warnings

import numpy as np
import torch
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split

import _bench  # benchmarks/ is on sys.path when run as a script

from skal import WAALClassifier, entropy_sampling, random_sampling, waal_uncertainty_diversity
from skal.datasets import load_fashion_mnist
from skal.experiment import ExperimentConfig, Method, load_experiment_data

MEAN, STD = 0.1307, 0.3081  # the authors' normalisation (MNIST statistics, also for FMNIST)
SIZES = [1000 + 500 * i for i in range(11)]

# Thesis Table B.3 (Fashion-MNIST test accuracy %, mean and std over 5 repeats).
PAPER = {
    "random": [(58.03, 2.81), (66.81, 1.02), (71.21, 2.35), (73.12, 2.1), (75.80, 0.64),
               (77.34, 0.67), (78.68, 0.41), (79.58, 0.47), (80.02, 0.45), (80.93, 0.33),
               (81.30, 0.25)],
    "entropy": [(57.40, 1.75), (66.37, 0.62), (69.70, 0.88), (71.60, 1.42), (74.84, 1.29),
                (76.66, 1.26), (79.00, 0.24), (79.89, 0.78), (80.85, 0.87), (82.26, 0.77),
                (83.66, 0.98)],
    "waal": [(72.29, 1.16), (76.99, 1.05), (79.85, 0.49), (81.08, 0.68), (82.04, 0.58),
             (82.74, 0.79), (83.25, 0.62), (83.96, 0.54), (84.45, 0.45), (85.20, 0.44),
             (85.99, 0.43)],
}
PAPER_SPEED = {"waal": 1.0, "entropy": 0.95}  # Table 1 (SVHN), relative query time, WAAL = 1

# run-folder method names (registered below) -> report names
# Early stopping of the *_es arms: the paper stops early on its 20K validation split without
# saying how; this rule (stop once the validation loss has not improved for 1 epoch, keep the last
# model) is the one of benchmarks/waal_epoch_curves.py that puts the random baseline nearest to
# the paper's 58.03 % at 1K labels (61.05 % there, against 72.38 % after 80 epochs).
ES_MONITOR, ES_PATIENCE = "valid_loss", 1
_ES = f"es-{ES_MONITOR.replace('_', '')}-p{ES_PATIENCE}"

ARM_ORDER = ("random", "entropy", "waal", "random_steps", "waal_short", "random_es",
             "entropy_es", "waal_es")  # the default --methods, in the order they run
RUN_NAMES = {"waal": "waal-lenet", "random": "random-lenet", "entropy": "entropy-lenet",
             "random_steps": "random-lenet-waal-steps", "waal_short": "waal-lenet-labeled-epochs",
             "random_es": f"random-lenet-{_ES}", "entropy_es": f"entropy-lenet-{_ES}",
             "waal_es": f"waal-lenet-{_ES}"}
LABELS = {"random": "random", "entropy": "entropy", "waal": "WAAL",
          "random_steps": "random, WAAL's steps", "waal_short": "WAAL, baselines' steps",
          "random_es": "random, early stopping", "entropy_es": "entropy, early stopping",
          "waal_es": "WAAL, early stopping"}


class PaperWAAL(WAALClassifier):
    """WAALClassifier on inputs normalised as in the authors' code: ``(x - 0.1307) / 0.3081``."""

    def _validate_X(self, X, reset):
        return (super()._validate_X(X, reset) - MEAN) / STD

    def _validate_X_unlabeled(self, X_unlabeled):
        return (super()._validate_X_unlabeled(X_unlabeled) - MEAN) / STD


class LabeledOnlyLeNet(PaperWAAL):
    """The paper's baselines: the same LeNet network and optimiser, trained on labels only."""

    def fit(self, X, y, X_unlabeled=None, **fit_params):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*got no unlabelled data.*")
            return super().fit(X, y, **fit_params)


@functools.lru_cache(maxsize=2)
def validation_split(dataset, seed, pool_size):
    """The paper's validation split: the train images outside this repeat's pool (20K), as a
    skorch Dataset of normalised float32 images (a predefined split bypasses input validation)."""
    config = ExperimentConfig(dataset=dataset, method="random", seed=seed, pool_size=pool_size)
    data = load_experiment_data(config)
    rows = np.setdiff1d(data.candidates, data.pool_rows(0))
    X = (data.X_train[rows].astype(np.float32) / 255 - MEAN) / STD  # (n_val, 1, 28, 28)
    return Dataset(X, data.y_train[rows].astype(np.int64))  # classes 0..9 encode as themselves


def _early_stopping(config):
    """skorch parameters that stop training early on the validation split."""
    return {
        "train_split": predefined_split(
            validation_split(config.dataset, config.seed, config.pool_size)),
        "callbacks": [("early_stopping", EarlyStopping(
            monitor=ES_MONITOR, patience=ES_PATIENCE, lower_is_better=ES_MONITOR == "valid_loss",
            sink=lambda *a, **k: None))],
    }


def _estimator(cls, early_stopping=False, **params):
    def make(config, random_state, classes):
        kwargs = dict(params)
        if early_stopping:
            assert np.array_equal(classes, np.arange(10)), classes
            kwargs.update(_early_stopping(config))
        return cls(
            features="lenet",
            max_epochs=config.max_epochs,
            batch_size=config.batch_size,
            query_size=config.query_size,
            random_state=random_state,
            device=config.device,
            classes=classes,
            **kwargs,
        )

    return make


# the arms' methods, by run-folder name (registered by register_methods, never on import)
RUN_METHODS = {
    RUN_NAMES[name]: Method(strategy, make_estimator=_estimator(cls, **params),
                            pass_unlabeled=unlabeled)
    for name, strategy, cls, unlabeled, params in (
        ("waal", waal_uncertainty_diversity, PaperWAAL, True, {}),
        ("random", random_sampling, LabeledOnlyLeNet, False, {}),
        ("entropy", entropy_sampling, LabeledOnlyLeNet, False, {}),
        ("random_steps", random_sampling, LabeledOnlyLeNet, False, {}),
        # epochs over the labelled set: the labelled-only baselines' step count
        ("waal_short", waal_uncertainty_diversity, PaperWAAL, True, {"epoch_over": "labeled"}),
        ("random_es", random_sampling, LabeledOnlyLeNet, False, {"early_stopping": True}),
        ("entropy_es", entropy_sampling, LabeledOnlyLeNet, False, {"early_stopping": True}),
        ("waal_es", waal_uncertainty_diversity, PaperWAAL, True, {"early_stopping": True}),
    )
}


def register_methods():
    """Register the arms' methods under their run-folder names (once a process)."""
    _bench.register_methods(RUN_METHODS)


def waal_steps(args, n_labeled):
    """SGD steps of one WAAL round: its epochs run over the U = pool - L unlabelled samples."""
    return args.epochs * -(-(args.pool_size - n_labeled) // 64)


def config_for(args, method, seed):
    return ExperimentConfig(
        dataset="fashion_mnist",
        method=RUN_NAMES[method],
        n_initial=args.n_initial,
        query_size=args.query_size,
        n_rounds=args.rounds,
        repeats=1,
        seed=seed,
        pool_size=args.pool_size,
        test_size=args.test_size,
        max_epochs=args.epochs if method == "waal" else args.baseline_epochs,
        # the step-matched baseline: epochs raised to at least WAAL's first-round step count
        min_steps=waal_steps(args, args.n_initial) if method == "random_steps" else 0,
        batch_size=64,
        device=args.device,
    )


# ---------------------------------------------------------------------------- query speed
def measure_speed(args):
    """Time one WAAL epoch at full protocol size and the two queries on a 40K pool."""
    path = os.path.join(args.out, "speed.json")
    if os.path.exists(path) and not args.redo_speed:
        return json.load(open(path))
    X, y = load_fashion_mnist("train")
    rng = np.random.default_rng(args.seed)
    pool = rng.permutation(len(X))[:40000]
    lab, unl = pool[:1000], pool[1000:]
    clf = PaperWAAL(features="lenet", max_epochs=1, query_size=500, random_state=args.seed,
                    device=args.device)
    start = time.perf_counter()
    clf.fit(X[lab], y[lab], X_unlabeled=X[unl])
    epoch_seconds = time.perf_counter() - start
    steps = int(clf.history[-1]["train_batch_count"])
    X_pool = X[pool]
    times = {"waal": [], "entropy": []}
    for _ in range(args.speed_repeats):  # interleaved, so load changes hit both alike
        for name, strategy in (("waal", waal_uncertainty_diversity), ("entropy", entropy_sampling)):
            start = time.perf_counter()
            strategy(clf, X_pool, 500)
            times[name].append(time.perf_counter() - start)
    waal_s, entropy_s = np.median(times["waal"]), np.median(times["entropy"])
    # full protocol: 80 epochs per round over U = 40K - L unlabelled samples, 11 rounds
    step_s = epoch_seconds / steps
    full_round_steps = [80 * -(-(40000 - n) // 64) for n in SIZES]
    speed = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "pool": 40000,
        "query_size": 500,
        "waal_epoch_seconds_1k_labeled_39k_unlabeled": round(epoch_seconds, 2),
        "waal_steps_per_epoch": steps,
        "waal_seconds_per_step": round(step_s, 4),
        "full_protocol_waal_hours_per_repeat": round(sum(full_round_steps) * step_s / 3600, 1),
        "query_seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "query_seconds_median": {"waal": round(waal_s, 3), "entropy": round(entropy_s, 3)},
        "ratio_waal_over_entropy": round(waal_s / entropy_s, 3),
        "paper_ratio_waal_over_entropy": round(1 / PAPER_SPEED["entropy"], 3),
        "target_ratio": 1.1,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(speed, f, indent=2)
    print(f"speed: {json.dumps(speed)}", flush=True)
    return speed


# ---------------------------------------------------------------------------- report
def paper_key(method):
    """The paper's arm a run compares with: random_es -> random."""
    return method.removesuffix("_es")


def n_seeds(args, method):
    """How many seeds of ``method`` have a run folder with results."""
    return sum(os.path.exists(os.path.join(folder, "results.csv"))
               for folder in _bench.seed_folders(args.out, method))


def repeat_range(args):
    """(fewest, most) seeds with results over the arms that have any."""
    counts = [n for n in (n_seeds(args, m) for m in RUN_NAMES) if n] or [0]
    return min(counts), max(counts)


def collect(args):
    """{method: [result rows of every finished round]} over every seed folder on disk (a report
    filled by several invocations shows them all)."""
    return {method: [row for folder in _bench.seed_folders(args.out, method)
                     for row in _bench.load_rows(folder) or []] for method in RUN_NAMES}


def scaling_note(args, repeats=None):
    """How this run departs from the paper's protocol; ``repeats``: (fewest, most) repeats of
    any arm with results."""
    parts = []
    if args.pool_size != 40000:
        parts.append(f"pool {args.pool_size} instead of 40K")
    if args.epochs != 80:
        parts.append(f"WAAL {args.epochs} epochs per round instead of 80")
    if args.baseline_epochs != 80:
        parts.append(f"baselines {args.baseline_epochs} epochs per round instead of 80")
    if args.rounds != 10:
        parts.append(f"{args.rounds} rounds instead of 10")
    low, high = (args.repeats, args.repeats) if repeats is None else repeats
    if (low, high) != (5, 5):
        count = str(low) if low == high else f"{low}-{high}"
        parts.append(f"{count} repeats instead of 5" + ("" if low == high else
                                                        " (n per cell in the tables)"))
    if args.test_size is not None:
        parts.append(f"test subsample of {args.test_size} instead of 10K")
    return "; ".join(parts) if parts else "none (full protocol)"


def canonical_command(args, repeats):
    """The one command that (re)makes every run folder the report reads.

    Run folders are resumable and shared by all invocations with the same protocol settings, so
    a report filled by several invocations (a subset of ``--methods``, another ``--seed``) is
    what this single command would produce; re-running it skips what is finished.
    """
    defaults = parse_args([])
    parts = ["benchmarks/reproduce_waal.py"]
    for name in ("pool_size", "epochs", "baseline_epochs", "rounds", "test_size", "device"):
        value = getattr(args, name)
        if value != getattr(defaults, name) and not (
                name == "baseline_epochs" and value == args.epochs):
            parts += ["--" + name.replace("_", "-"), str(value)]
    parts += ["--repeats", str(repeats), "--jobs", "2"]
    return "python " + " ".join(parts)


def write_report(args, speed=None):
    data = collect(args)
    rows = []
    for n in SIZES[: args.rounds + 1]:
        row = {"n_labeled": n}
        for method in RUN_NAMES:
            columns, at_n = _bench.size_columns(data[method], method, n)
            row.update(columns)
            row[f"{method}_epochs"], _ = _bench.mean_std(
                [r["epochs_trained"] for r in at_n if r.get("epochs_trained") is not None], 1)
            i = SIZES.index(n)
            row[f"{method}_paper_mean"], row[f"{method}_paper_std"] = (
                PAPER[paper_key(method)][i] if paper_key(method) in PAPER else (None, None))
        rows.append(row)
    repeats = repeat_range(args)
    command = canonical_command(args, repeats[1])
    summary = {
        "protocol": "WAAL Fashion-MNIST (thesis Table B.1): 40K pool + 20K validation, 10K test, "
                    "1K initial, +500 per round to 6K, no augmentation, retrained from scratch",
        "scaling": scaling_note(args, repeats),
        "not_reproduced": "the paper's early-stopping rule (unspecified; the *_es arms try one)",
        "command": command,
        "settings": {k: getattr(args, k) for k in SETTINGS},
        "rows": rows,
        "speed": speed,
    }
    _bench.write_summary(args.out, summary, rows)

    def cell(row, method, show_epochs=False):
        if row[f"{method}_mean"] is None:
            return "-"
        n = f"n={row[f'{method}_n']}"
        if show_epochs and row[f"{method}_epochs"] is not None:
            n += f", {row[f'{method}_epochs']:g} epochs"
        return f"{row[f'{method}_mean']:.2f} ± {row[f'{method}_std']:.2f} ({n})"

    lines = [
        "# WAAL on Fashion-MNIST: skal vs the paper (thesis Table B.3)",
        "",
        f"Command: `{command}` (each arm and seed is a resumable run folder under `runs/`; "
        "running it again skips what is finished, and subsets such as `--methods random_steps "
        "--seed 1 --repeats 1` fill the same folders).",
        "",
        f"Scaling: **{summary['scaling']}**. Not reproduced: {summary['not_reproduced']}.",
        "All methods use the same LeNet network, SGD (lr 0.01, momentum 0.5, lr x0.1 at 50 % and",
        "75 % of the epochs), batch 64, MNIST normalisation; the baselines train on labelled data",
        "only (as in the paper), WAAL on labelled data plus the rest of the pool.",
        "",
        f"SGD steps per round: WAAL {args.epochs} x ceil(U / 64) = "
        f"{args.epochs * -(-(args.pool_size - SIZES[0]) // 64)} at 1K labels, "
        f"{args.epochs * -(-(args.pool_size - SIZES[args.rounds]) // 64)} at the end; baselines "
        f"{args.baseline_epochs} x ceil(L / 64) = {args.baseline_epochs * -(-SIZES[0] // 64)} to "
        f"{args.baseline_epochs * -(-SIZES[args.rounds] // 64)} (docs/waal.md, 'Training length': "
        "WAAL's epochs run "
        "over the unlabelled pool, so it takes many more steps than a labelled-only baseline).",
        "",
        "Test accuracy (%), mean ± std over repeats (n = repeats finished); paper: mean ± std "
        "over 5.",
        "",
        "## The paper's protocol",
        "",
    ]

    def paper_table(methods, tag, show_epochs=False):
        """A markdown table: each of ``methods`` next to the paper's number."""
        header = ["labels"] + [f"{LABELS[paper_key(m)]}{tag} ({who})" if who == "skal"
                               else f"{LABELS[paper_key(m)]} ({who})"
                               for m in methods for who in ("skal", "paper")]
        return _bench.md_table(header, [[row["n_labeled"]] + [
            text for m in methods for text in (
                cell(row, m, show_epochs),
                f"{row[f'{m}_paper_mean']:.2f} ± {row[f'{m}_paper_std']:.2f}")] for row in rows])

    lines += paper_table(("random", "entropy", "waal"), "")
    lines += [
        "",
        "## With early stopping on the validation split",
        "",
        "The paper stops early on its 20K validation split (the training images outside the "
        "pool) without saying on what. Here every arm stops once the validation "
        f"{ES_MONITOR.replace('valid_', '')} has not improved for {ES_PATIENCE} epoch(s) "
        "(skorch `EarlyStopping`, last model kept), at most 80 epochs; the rule is the one of "
        "`benchmarks/waal_epoch_curves.py` that puts the random baseline nearest to the paper at "
        "1K labels ([epoch_curves/results.md](epoch_curves/results.md)). The epochs are "
        "the mean number trained before the stop.",
        "",
    ]
    lines += paper_table(("random_es", "entropy_es", "waal_es"), ", ES", show_epochs=True)
    lines += [
        "",
        "## At equal training length (not in the paper)",
        "",
        "Two arms the paper does not have separate WAAL's objective and query from its longer "
        "training (docs/waal.md, 'Training length'): \"random, WAAL's steps\" is the random "
        "baseline trained for "
        f"at least {waal_steps(args, SIZES[0])} steps per round (WAAL's first-round count; "
        f"{args.baseline_epochs}+ epochs, e.g. "
        f"{-(-waal_steps(args, SIZES[0]) // -(-SIZES[0] // 64))} at 1K labels); \"WAAL, "
        "baselines' steps\" is WAAL with `epoch_over=\"labeled\"`: each epoch one pass over the "
        "labelled set, each batch paired with 64 unlabelled images drawn at random, so it takes "
        "the baselines' steps. Same seeds, hence the same initial labels, as the other arms.",
        "",
    ]
    lines += _bench.md_table(
        ["labels", "random, baselines' steps", "WAAL, baselines' steps", "random, WAAL's steps",
         "WAAL, WAAL's steps"],
        [[row["n_labeled"]] + [cell(row, m) for m in ("random", "waal_short", "random_steps",
                                                      "waal")] for row in rows])
    if speed:
        waal_s = speed["query_seconds_median"]["waal"]
        entropy_s = speed["query_seconds_median"]["entropy"]
        lines += [
            "",
            "## Query speed (paper Table 1)",
            "",
            f"Pool of {speed['pool']} Fashion-MNIST images, {speed['query_size']} queried, same "
            f"fitted model, {speed['device']}, {speed['torch_threads']} torch thread(s), median "
            "of repeated interleaved calls"
            + (f" (machine load average {speed['load_average_1min']} on {speed['cpu_count']} "
               "shared cores)" if "load_average_1min" in speed else "")
            + ":",
            "",
            *_bench.md_table(["strategy", "seconds", "relative (WAAL = 1)"], [
                ["waal_uncertainty_diversity", f"{waal_s:.3f}", "1.00"],
                ["entropy_sampling", f"{entropy_s:.3f}", f"{entropy_s / waal_s:.2f}"]]),
            "",
            f"Ratio waal / entropy: **{speed['ratio_waal_over_entropy']}** (paper: 1 / 0.95 = "
            f"{speed['paper_ratio_waal_over_entropy']}; target <= {speed['target_ratio']}).",
            "",
            f"Training cost: one WAAL epoch with 1K labelled + 39K unlabelled samples "
            f"({speed['waal_steps_per_epoch']} steps of 64 + 64) took "
            f"{speed['waal_epoch_seconds_1k_labeled_39k_unlabeled']} s here, so the full protocol "
            f"(80 epochs, 11 trainings) needs about {speed['full_protocol_waal_hours_per_repeat']} "
            "h per repeat for WAAL alone.",
        ]
    _bench.write_markdown(args.out, lines)
    plot(args, rows)


def plot(args, rows):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    colors = {"random": "tab:gray", "entropy": "tab:blue", "waal": "tab:red",
              "random_steps": "tab:green", "waal_short": "tab:orange"}
    panels = ((axes[0], ("random", "entropy", "waal"), True, "the paper's protocol (80 epochs)"),
              (axes[1], ("random_es", "entropy_es", "waal_es"), True,
               f"early stopping ({ES_MONITOR}, patience {ES_PATIENCE})"),
              (axes[2], ("random", "waal_short", "random_steps", "waal"), False,
               "equal training length (not in the paper)"))
    for ax, methods, with_paper, title in panels:
        for method in methods:
            color = colors.get(method, colors.get(paper_key(method)))
            if with_paper:
                sizes = [r["n_labeled"] for r in rows]
                paper = [r[f"{method}_paper_mean"] for r in rows]
                ax.plot(sizes, paper, "--", color=color, alpha=0.7,
                        label=f"{LABELS[paper_key(method)]} (paper)")
            _bench.plot_mean_std(ax, rows, method, color, f"{LABELS[method]} (skal)")
        ax.set_xlabel("number of labelled samples")
        ax.set_title(title, fontsize="small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2 if with_paper else 1)
    axes[0].set_ylabel("test accuracy (%)")
    repeats = repeat_range(args)
    fig.suptitle(f"Fashion-MNIST, WAAL protocol; scaling: {scaling_note(args, repeats)}",
                 fontsize="small")
    fig.savefig(os.path.join(args.out, "waal_fashion_mnist.png"), dpi=120)


# ---------------------------------------------------------------------------- main
# the options results.json records as "settings", in this order
SETTINGS = ("pool_size", "epochs", "baseline_epochs", "repeats", "rounds", "n_initial",
            "query_size", "test_size", "methods", "seed", "device", "threads", "jobs",
            "speed_repeats", "redo_speed", "no_speed", "out")


def parse_args(argv=None):
    p = _bench.new_parser(__doc__)
    p.add_argument("--pool-size", type=int, default=40000)
    p.add_argument("--epochs", type=int, default=80, help="WAAL epochs per round")
    p.add_argument("--baseline-epochs", type=int, default=None,
                   help="epochs per round of the random/entropy baselines (default: --epochs)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--n-initial", type=int, default=1000)
    p.add_argument("--query-size", type=int, default=500)
    p.add_argument("--test-size", type=int, default=None, help="subsample the 10K test set")
    p.add_argument("--device", default="cpu")
    p.add_argument("--speed-repeats", type=int, default=5)
    p.add_argument("--redo-speed", action="store_true")
    p.add_argument("--no-speed", action="store_true")
    _bench.add_run_options(p, out=os.path.join(os.path.dirname(__file__), "results", "waal"),
                           repeats=5, arms=ARM_ORDER, arms_flag="--methods",
                           jobs_help="runs in parallel, one process each (e.g. 2 on 2 cores)",
                           threads_help="torch CPU threads (per job)")
    args = p.parse_args(argv)
    if args.baseline_epochs is None:
        args.baseline_epochs = args.epochs
    if args.n_initial != 1000 or args.query_size != 500:
        raise SystemExit("the paper's table is for --n-initial 1000 --query-size 500")
    # args.methods stays the string it was (results.json records it)
    args.arm_list = _bench.split_arms(p, args.methods, list(RUN_NAMES), flag="--methods")
    return args


def run_one(args, method, seed):
    torch.set_num_threads(args.threads)
    register_methods()
    return _bench.run(config_for(args, method, seed), _bench.run_dir(args.out, method, seed))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    register_methods()
    speed_path = os.path.join(args.out, "speed.json")
    speed = json.load(open(speed_path)) if os.path.exists(speed_path) else None
    if args.report_only:
        write_report(args, speed)
        return
    os.makedirs(args.out, exist_ok=True)
    if not args.no_speed:
        speed = measure_speed(args)
        write_report(args, speed)

    def done(job, seconds):  # the report is rewritten after every finished run
        _, method, seed = job
        print(f"{method} seed {seed} done in {seconds:.0f} s", flush=True)
        write_report(args, speed)

    jobs = _bench.jobs_for(args.arm_list, args.seed, args.repeats)
    _bench.run_jobs([(args, *job) for job in jobs], run_one, args.jobs, after=done)


if __name__ == "__main__":
    main()
