"""Why do BGADL's generated samples hurt, and what makes BGADL pay for itself? An ablation.

Every arm is one :class:`skal.BGADLClassifier` setting (a documented parameter, no code edit) or a
baseline, run as an active-learning experiment with :func:`skal.experiment.run_experiment` on the
scaled Fashion-MNIST protocol of ``reproduce_bgadl.py`` (pool 4000, test 2000, 200 initial + 200
per round for 3 rounds, ResNet18 width 8, 15 epochs but at least 800 steps per round, batch 32),
3 repeats. Repeat k uses master seed SEED + k for every arm, so the arms of a repeat share the
pool, the initial labels and the test subsample.

Arms (``--arms`` takes a comma-separated subset; ``--list`` prints them):

* baselines: ``bald``, ``random`` (no augmentation), ``random_gen`` (random + the default joint
  VAE-ACGAN), ``bgadl`` (BALD + the default joint VAE-ACGAN, generated-term weight 1);
* the weight of the generated terms: ``w0``, ``w0.1``, ``w0.3`` (``bgadl`` is 1) and
  ``warmup`` (weight 1 reached after half the epochs);
* confidence filters: ``filter_clf`` (classifier's p(y) >= 0.8), ``filter_disc`` (D's
  p(real) >= 0.5);
* ``bn``: weight 1 with the classifier's BatchNorm statistics re-estimated on the labelled
  images after training (``recalibrate_bn``; ``bgadl_trace.py`` found the running statistics
  of weight-1 runs out of step with the weights);
* on top of ``bn`` (each adds one factor to it; they were first run after bn's finding):
  ``new``: x' from the newly acquired batch only (the authors' code: all labelled images);
  ``separate``: the non-joint path (VAE-ACGAN trained first, on its own; classifier on real +
  x'); ``warm_gan``: E/G/D warm-started across rounds (classifier retrained from scratch);
  ``gan2``: two VAE-ACGAN updates per classifier step; ``bgadl_crop_flip``: random crop and
  flip of the real images; ``small_gan``: a smaller E/G/D (width 32, FC 256);
* ``crop_flip``: BALD + random crop and flip, no generative samples;
* ``small_gan_half`` (weight 1, no recalibration): the small E/G/D updated every other step;
* the authors' own setting: ``lenet_bald`` and ``lenet_bgadl``, their LeNet (plus dropout, see
  :class:`skal.nets.BGADLLeNet`) on 28x28, 100 initial + 100 per round to the same final budget,
  50 epochs, batch 100, BALD on a random 2000-image pool subset.

An arm that does not set ``recalibrate_bn`` runs with ``recalibrate_bn=False``, skal's default
when the committed runs were made (:data:`MADE_WITH`; the default is now ``"auto"``, True with
a positive ``gen_weight``), so ``bgadl``, ``w0.1``, ``w0.3``, ``warmup``, the filters,
``random_gen``, ``small_gan_half`` and ``lenet_bgadl`` keep reproducing their numbers.

Each (arm, repeat) is its own run folder ``OUT/runs/<arm>/seed<k>`` (``run_experiment``
checkpoints every round, so rerunning the command skips finished rounds and resumes; an
``arm.json`` beside it refuses a folder made by a different arm definition). ``warm_gan`` keeps
its model in memory between rounds: after an interruption its next round starts the VAE-ACGAN
from scratch. The report (``results.md``, ``results.csv``, ``learning_curves.png``) is rewritten
after every finished (arm, repeat) and by ``--report-only``: accuracy per label budget (mean ± std
over the repeats finished), the mean cost of a round (fit + query seconds) and its ratio to the
``bald`` round of the same protocol, and each arm's mean difference to the BALD run of the same
seed on the same machine (torch's CPU kernels change the numbers; ``--baseline-out DIR`` adds the
``bald`` runs another machine made in DIR, e.g. ``benchmarks/results/bgadl_ablation_avx2``).

Full run (CPU, one thread per process; about 15 CPU-hours, see docs/bgadl_ablation.md)::

    OMP_NUM_THREADS=1 python benchmarks/bgadl_ablation.py

Several processes can share the work by arm, e.g. ``--arms bald,random,bgadl`` in one and
``--arms w0.1,w0.3`` in another (each writes only its own run folders; run ``--report-only`` at the
end). Tiny end-to-end check (about a minute)::

    python benchmarks/bgadl_ablation.py --out /tmp/abl --pool-size 300 --test-size 200 \\
        --n-initial 20 --query-size 20 --rounds 1 --width 2 --epochs 1 --min-steps 0 \\
        --batch-size 16 --mc-samples 3 --repeats 1 --authors-epochs 1 --gan-width 8 \\
        --gan-hidden 32 --latent-dim 8
"""

import argparse
import dataclasses
import functools
import os

import numpy as np
import torch

import _bench  # benchmarks/ is on sys.path when run as a script

from skal import BGADLMCDropoutClassifier, MCDropoutClassifier
from skal.experiment import (
    ExperimentConfig,
    Method,
    RunCallback,
    load_run,
    make_bgadl,
    plot_learning_curves,
)
from skal.estimators.bgadl import PAPER_GEN_WEIGHT
from skal.nets import BGADLLeNet
from skal.query import bald, random_sampling


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm: a query strategy, a model and the protocol it runs on."""

    label: str
    query: str = "bald"  # "bald" or "random"
    params: dict = dataclasses.field(default_factory=dict)  # BGADLClassifier parameters
    model: str = "bgadl"  # "bgadl" (BGADLClassifier), "lenet" (BGADLMCDropoutClassifier)
    protocol: str = "scaled"  # "scaled" or "authors"


PLAIN = {"generative": False}  # the classifier alone (no VAE-ACGAN)
#: What an arm that does not set them runs with: skal's defaults when the committed runs were
#: made (recalibrate_bn is "auto" since, True with a positive gen_weight). Not in arm.json, so
#: the committed run folders still resume.
MADE_WITH = {"recalibrate_bn": False}
SMALL = {"gan_width": 32, "gan_hidden": 256}
BN = {"recalibrate_bn": True}  # the bn arm's one change to weight 1
ARMS = {
    "bald": Arm("BALD, no augmentation", params=PLAIN),
    "random": Arm("random, no augmentation", query="random", params=PLAIN),
    "random_gen": Arm("random + joint VAE-ACGAN", query="random"),
    "bgadl": Arm("BGADL (BALD + joint VAE-ACGAN, weight 1)"),
    "w0": Arm("BGADL, generated-term weight 0", params={"gen_weight": 0.0}),
    "w0.1": Arm("BGADL, weight 0.1", params={"gen_weight": 0.1}),
    "w0.3": Arm("BGADL, weight 0.3", params={"gen_weight": 0.3}),
    "warmup": Arm("BGADL, weight warm-up 0 -> 1 over half the epochs",
                  params={"gen_warmup": 0.5}),
    "filter_clf": Arm("BGADL, generated kept if classifier p(y) >= 0.8",
                      params={"gen_filter": "classifier", "gen_threshold": 0.8}),
    "filter_disc": Arm("BGADL, generated kept if D p(real) >= 0.5",
                       params={"gen_filter": "discriminator", "gen_threshold": 0.5}),
    "bn": Arm("BGADL, weight 1, BatchNorm statistics re-estimated after training", params=BN),
    # The arms below were first run after ``bn``: each adds its factor to bn (weight 1 with
    # recalibrate_bn), so that the BatchNorm collapse does not hide what the factor changes.
    "new": Arm("bn + x' from the new batch only", params={**BN, "rec_source": "new"}),
    "separate": Arm("bn, non-joint (VAE-ACGAN first, classifier on real + x')",
                    params={**BN, "joint": False}),
    "warm_gan": Arm("bn + E/G/D warm-started across rounds",
                    params={**BN, "gan_warm_start": True}),
    "gan2": Arm("bn + 2 VAE-ACGAN steps per classifier step", params={**BN, "gan_steps": 2.0}),
    "crop_flip": Arm("BALD + crop/flip, no generative samples",
                     params={**PLAIN, "augment": "crop_flip"}),
    "bgadl_crop_flip": Arm("bn + crop/flip", params={**BN, "augment": "crop_flip"}),
    "small_gan": Arm("bn + small E/G/D (width 32, FC 256)", params={**BN, **SMALL}),
    "small_gan_half": Arm("BGADL, small E/G/D, updated every other step",
                          params={**SMALL, "gan_steps": 0.5}),
    "lenet_bald": Arm("authors' setting: LeNet, BALD", params=PLAIN, model="lenet",
                      protocol="authors"),
    "lenet_bgadl": Arm("authors' setting: LeNet, BGADL", model="lenet", protocol="authors"),
}
BASELINE = {"scaled": "bald", "authors": "lenet_bald"}
SCALED = dict(pool_size=4000, test_size=2000, n_initial=200, query_size=200, rounds=3, width=8,
              epochs=15, min_steps=800, batch_size=32, mc_samples=20)
GAN_SIZES = ("gan_width", "gan_hidden", "latent_dim")


# ---------------------------------------------------------------------------- models
def _gan_overrides(args):
    """VAE-ACGAN sizes from the command line (the tiny check); empty for the real run."""
    return {name: getattr(args, name) for name in GAN_SIZES if getattr(args, name) is not None}


def arm_params(name, overrides):
    """The arm's BGADL parameters, with the VAE-ACGAN sizes ``overrides`` (its arm.json record)."""
    params = {**ARMS[name].params}
    if params.get("generative", True):
        params.update(overrides)
    return params


def estimator_params(name, overrides):
    """What the arm's estimator gets: :data:`MADE_WITH`, then :func:`arm_params`."""
    return {**MADE_WITH, **arm_params(name, overrides)}


def _make_lenet(config, random_state, classes, **params):
    """The authors' LeNet (+ dropout), as a BGADL classifier or, with generative=False, alone."""
    common = dict(optimizer=torch.optim.Adam, lr=config.lr, max_epochs=config.max_epochs,
                  batch_size=config.batch_size, random_state=random_state,
                  device=config.device, classes=classes)
    if params.get("generative", True) is False:
        return MCDropoutClassifier(BGADLLeNet, **common)
    params.setdefault("gen_weight", PAPER_GEN_WEIGHT)  # as make_bgadl: the paper's scheme
    return BGADLMCDropoutClassifier(BGADLLeNet, **common, **params)


class WarmGAN(RunCallback):
    """warm_gan's ``make_estimator``, and the run callback that keeps its model: every round
    continues the fitted model of the round before (E/G/D go on training, the classifier
    restarts) with its own epochs and seed, until the run's last round."""

    def __init__(self, params):
        self.params, self.model = params, None

    def __call__(self, config, random_state, classes):
        if self.model is None:
            return make_bgadl(config, random_state, classes, **self.params)
        return self.model.set_params(max_epochs=config.max_epochs, random_state=random_state)

    def on_fit_end(self, ctx, model, **kwargs):
        self.model = model

    def on_round_end(self, ctx, model, row, **kwargs):
        if ctx.round == ctx.config.n_rounds:
            self.model = None


def _bald_kwargs(config):
    return {"n_samples": config.n_mc_samples, "subsample": config.subsample}


def method_name(arm):
    return f"ablation_{arm}"


@functools.lru_cache(maxsize=None)
def _methods(overrides):
    """{method name: Method} of every arm for VAE-ACGAN sizes ``overrides``, once a process."""
    methods = {}
    for name, arm in ARMS.items():
        params = estimator_params(name, dict(overrides))
        if arm.model == "lenet":
            make = functools.partial(_make_lenet, **params)
        elif params.get("gan_warm_start"):
            make = WarmGAN(params)
        else:
            make = functools.partial(make_bgadl, **params)
        query = dict(query_strategy=bald, query_kwargs=_bald_kwargs) if arm.query == "bald" \
            else dict(query_strategy=random_sampling)
        methods[method_name(name)] = Method(make_estimator=make, **query)
    return methods


def methods_for(args):
    """The arms' methods (the same objects for the same sizes, so registering is idempotent)."""
    return _methods(tuple(sorted(_gan_overrides(args).items())))


# ---------------------------------------------------------------------------- protocol
def authors_sizes(args):
    """The authors' schedule: steps of half the scaled query size to the same final budget."""
    step = max(1, args.query_size // 2)
    final = args.n_initial + args.rounds * args.query_size
    return step, max(0, (final - step) // step)


def config_for(args, name, seed):
    arm = ARMS[name]
    common = dict(dataset="fashion_mnist", method=method_name(name), repeats=1, seed=seed,
                  pool_size=args.pool_size, test_size=args.test_size, width=args.width,
                  n_mc_samples=args.mc_samples, device=args.device)
    if arm.protocol == "authors":
        step, rounds = authors_sizes(args)
        return ExperimentConfig(n_initial=step, query_size=step, n_rounds=rounds,
                                max_epochs=args.authors_epochs, min_steps=0,
                                batch_size=args.authors_batch_size,
                                subsample=min(2000, args.pool_size), **common)
    return ExperimentConfig(n_initial=args.n_initial, query_size=args.query_size,
                            n_rounds=args.rounds, max_epochs=args.epochs,
                            min_steps=args.min_steps, batch_size=args.batch_size, **common)


def _arm_record(args, name):
    arm = ARMS[name]
    return {"arm": name, "label": arm.label, "query": arm.query, "model": arm.model,
            "protocol": arm.protocol, "params": arm_params(name, _gan_overrides(args))}


def run_one(args, name, seed):
    torch.set_num_threads(args.threads)
    _bench.register_methods(methods_for(args))
    folder = _bench.run_dir(args.out, name, seed)
    _bench.check_arm_file(folder, _arm_record(args, name))
    make = methods_for(args)[method_name(name)].make_estimator
    callbacks = [make] if isinstance(make, WarmGAN) else []
    return _bench.run(config_for(args, name, seed), folder, callbacks=callbacks)


# ---------------------------------------------------------------------------- report
def collect(args, names):
    """{arm: {"arm/seedK": ExperimentResult}} of every run folder found on disk (read once)."""
    out = {}
    for name in names:
        out[name] = {}
        for k in range(args.repeats):
            try:
                result = load_run(_bench.run_dir(args.out, name, args.seed + k))
            except FileNotFoundError:
                continue
            out[name][f"{name}/seed{args.seed + k}"] = result
    return out


def machines(runs):
    """[(machine, [arm/seedK, ...])] of the ``collect``-ed runs; machine None: not recorded."""
    found = {}
    for by_seed in runs.values():
        for run, result in by_seed.items():
            for machine in result.machines or [None]:
                key = None if machine is None else tuple(sorted(machine.items()))
                found.setdefault(key, []).append(run)
    return [(dict(key) if key is not None else None, listed) for key, listed in found.items()]


def machine_lines(runs):
    """The report's account of where the ``collect``-ed runs ran (torch's CPU kernels change
    the numbers)."""
    listed = machines(runs)
    if not listed:
        return []
    lines = ["Machines (on the CPU the same seed and thread count give other numbers with other "
             "kernels, so differences between arms run on different machines include that "
             "noise):", ""]
    for machine, runs in listed:
        where = ("not recorded (run before skal recorded the machine)" if machine is None else
                 f"{machine['processor']}, torch {machine['torch']}, "
                 f"{machine['cpu_capability']} kernels")
        lines.append(f"- {where}: {', '.join(runs)}")
    return lines


def _machine_key(result):
    """The one machine a run ran on, hashable; None when unrecorded or when it moved."""
    if len(result.machines or []) != 1:
        return None
    return tuple(sorted(result.machines[0].items()))


def baseline_runs(args, runs):
    """{(baseline arm, seed, machine): ExperimentResult} of the baseline arms' runs, from
    ``OUT`` (``runs``) and from every ``--baseline-out`` folder (re-runs on other machines)."""
    names = sorted(set(BASELINE.values()))
    found = [(name, r) for name in names for r in runs.get(name, {}).values()]
    for folder in args.baseline_out:
        there = collect(argparse.Namespace(**{**vars(args), "out": folder}), names)
        found += [(name, r) for name in names for r in there[name].values()]
    return {(name, result.config.seed, _machine_key(result)): result
            for name, result in found if _machine_key(result) is not None}


def pairs(args, runs, names):
    """{arm: [(run, partner)]}: each run with its protocol's baseline run of the same seed on
    the same machine (pairs share the pool, the initial labels, the test images and torch's
    kernels); runs without such a partner (an unrecorded machine never has one) or without a
    finished round are left out."""
    bases = baseline_runs(args, runs)
    out = {}
    for name in names:
        base_name = BASELINE[ARMS[name].protocol]
        if name == base_name:
            continue
        for result in runs.get(name, {}).values():
            base = bases.get((base_name, result.config.seed, _machine_key(result)))
            if base is not None and result.rows:
                out.setdefault(name, []).append((result, base))
    return out


def _round_seconds(result):
    """Mean wall-clock seconds of a run's rounds (fit + query)."""
    return float(np.mean([row["fit_seconds"] + row["query_seconds"] for row in result.rows]))


def paired_deltas(args, runs, names):
    """{arm: {budget: [points]}}: each run's accuracy minus that of its partner (``pairs``)."""
    out = {}
    for name, found in pairs(args, runs, names).items():
        for result, base in found:
            base_acc = {row["n_labeled"]: row["accuracy"] for row in base.rows}
            for row in result.rows:
                if row["n_labeled"] in base_acc:
                    out.setdefault(name, {}).setdefault(row["n_labeled"], []).append(
                        100 * (row["accuracy"] - base_acc[row["n_labeled"]]))
    return out


def paired_cost_ratios(args, runs, names):
    """{arm: [ratio]}: each run's mean round time over that of its partner (``pairs``)."""
    return {name: [_round_seconds(result) / _round_seconds(base) for result, base in found]
            for name, found in pairs(args, runs, names).items()}


def paired_lines(args, runs, names, budgets):
    """The report's table of paired differences (see ``paired_deltas``) and round-time ratios
    (``paired_cost_ratios``)."""
    deltas = paired_deltas(args, runs, names)
    if not deltas:
        return []
    ratios = paired_cost_ratios(args, runs, names)
    table = []
    for name, by_budget in deltas.items():
        cells = [_paired_cell(by_budget[n]) if n in by_budget else "" for n in budgets]
        worst = min(float(np.mean(v)) for v in by_budget.values())
        table.append([f"`{name}`", *cells, f"{worst:+.1f}", f"{np.mean(ratios[name]):.1f}"])
    return ["", "Paired with the BALD run (`lenet_bald` for the authors' setting) of the same "
            "seed on the same machine: mean difference in points ± its standard error (the "
            "pairs' sample standard deviation over √pairs; none for one pair) (pairs), and the "
            "mean ratio of round times (wall clock) to the partner's. This removes the "
            "noise of machines and of the drawn pool and initial labels; BALD runs from "
            "other machines come from `--baseline-out`. A mean within about two standard "
            "errors of 0 does not tell the arm from BALD.", "",
            *_bench.md_table(["arm", *budgets, "min", "× BALD"], table)]


def _paired_cell(points):
    """``+m.m ± s.s (n)``: the mean paired difference and its standard error (n >= 2)."""
    mean = float(np.mean(points))
    if len(points) < 2:
        return f"{mean:+.1f} (1)"
    se = float(np.std(points, ddof=1) / np.sqrt(len(points)))
    return f"{mean:+.1f} ± {se:.1f} ({len(points)})"


def summarise(rows):
    """Per budget: accuracy mean/std/n; and the mean round cost (fit + query seconds)."""
    acc = {n: (float(np.mean(a)), float(np.std(a)), len(a))
           for n, a in _bench.by_size(rows).items()}
    cost = [row["fit_seconds"] + row["query_seconds"] for row in rows]
    return acc, (float(np.mean(cost)) if cost else None)


def write_report(args, names):
    runs = collect(args, names)
    data = {name: [row for result in by_seed.values() for row in result.rows]
            for name, by_seed in runs.items()}
    summaries = {name: summarise(rows) for name, rows in data.items()}
    budgets = sorted({n for acc, _ in summaries.values() for n in acc})
    csv_rows = []
    for name in names:
        acc, cost = summaries[name]
        base_acc, base_cost = summaries.get(BASELINE[ARMS[name].protocol], ({}, None))
        ratio = cost / base_cost if cost is not None and base_cost else None
        for n, (mean, std, count) in acc.items():
            base = base_acc.get(n)
            csv_rows.append({
                "arm": name, "label": ARMS[name].label, "protocol": ARMS[name].protocol,
                "n_labeled": n, "accuracy_mean": round(mean, 2), "accuracy_std": round(std, 2),
                "repeats": count,
                "delta_vs_bald": round(mean - base[0], 2) if base else "",
                "round_seconds": round(cost, 1), "cost_ratio_vs_bald":
                    round(ratio, 2) if ratio is not None else "",
            })
    os.makedirs(args.out, exist_ok=True)
    _bench.write_csv(os.path.join(args.out, "results.csv"), csv_rows,
                     fieldnames=None if csv_rows else ["arm"], lineterminator="\r\n")

    step, rounds = authors_sizes(args)
    lines = [
        "# BGADL ablation on Fashion-MNIST: which choice makes the generated samples help?", "",
        f"Command: `{_bench.command_line()}`", "",
        f"Scaled protocol: pool {args.pool_size}, test {args.test_size}, {args.n_initial} "
        f"initial + {args.query_size} per round for {args.rounds} rounds, ResNet18 width "
        f"{args.width}, {args.epochs} epochs but at least {args.min_steps} steps per round, "
        f"batch {args.batch_size}, BALD with T={args.mc_samples}. Authors' setting: LeNet, "
        f"{step} initial + {step} per round for {rounds} rounds, {args.authors_epochs} epochs, "
        f"batch {args.authors_batch_size}, BALD on a random {min(2000, args.pool_size)}-image "
        f"pool subset. Up to {args.repeats} repeats (seeds {args.seed}..."
        f"{args.seed + args.repeats - 1}); {args.device}, {torch.get_num_threads()} torch "
        "thread(s).", "",
        "Test accuracy (%), mean ± std over the repeats finished (n); Δ: mean minus the BALD arm "
        "of the same protocol at that budget (min over budgets); cost: mean seconds per round "
        "(fit + query) and its ratio to the BALD round, in wall-clock time on a shared machine, "
        "so it moves with the load of the runs beside it (`bgadl_cost.py` measures the CPU time "
        "of a round instead).", "",
    ]
    table = []
    for name in names:
        acc, cost = summaries[name]
        if not acc:
            continue
        base_acc, base_cost = summaries.get(BASELINE[ARMS[name].protocol], ({}, None))
        cells, deltas = [], []
        for n in budgets:
            if n not in acc:
                cells.append("")
                continue
            mean, std, count = acc[n]
            cells.append(f"{mean:.1f} ± {std:.1f} ({count})")
            if n in base_acc:
                deltas.append(mean - base_acc[n][0])
        delta = f"{min(deltas):+.1f}" if deltas and name != BASELINE[ARMS[name].protocol] else ""
        ratio = f"{cost / base_cost:.1f}" if base_cost else ""
        table.append([f"`{name}` {ARMS[name].label}", *cells, delta, f"{cost:.1f}", ratio])
    lines += _bench.md_table(["arm", *budgets, "min Δ", "s/round", "× BALD"], table)
    lines += paired_lines(args, runs, names, budgets)
    where = machine_lines(runs)
    lines += ["", *where] if where else []
    _bench.write_markdown(args.out, lines)
    curves = {name: rows for name, rows in data.items() if rows}
    if curves:
        plot_learning_curves(curves, os.path.join(args.out, "learning_curves.png"),
                             title=f"BGADL ablation, Fashion-MNIST pool {args.pool_size}")


# ---------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = _bench.new_parser(__doc__)
    for name, value in SCALED.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=value,
                       help=f"scaled protocol (default {value})")
    p.add_argument("--authors-epochs", type=int, default=50)
    p.add_argument("--authors-batch-size", type=int, default=100)
    for name in GAN_SIZES:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                       help="override the VAE-ACGAN size of every generative arm (tiny checks)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--list", action="store_true", help="print the arms and exit")
    p.add_argument("--baseline-out", action="append", default=[], metavar="DIR",
                   help="another output folder whose bald / lenet_bald runs (made on another "
                        "machine) the report pairs with this folder's runs of that machine; "
                        "repeatable")
    _bench.add_run_options(p, out=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "results", "bgadl_ablation"),
                           repeats=3, arms=list(ARMS), arms_help="comma-separated arms")
    args = p.parse_args(argv)
    args.arms = _bench.split_arms(p, args.arms, list(ARMS))
    missing = [d for d in args.baseline_out if not os.path.isdir(d)]
    if missing:
        p.error(f"--baseline-out must name existing output folders; got {missing}, which do "
                "not exist")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for name, arm in ARMS.items():
            print(f"{name:16s} {arm.label}  {arm.params or ''}")
        return
    torch.set_num_threads(args.threads)
    _bench.register_methods(methods_for(args))  # load_run needs them for the report
    if args.report_only:
        write_report(args, list(ARMS))
        return

    def done(job, seconds):
        _, name, seed = job
        print(f"{name} seed {seed} done in {seconds:.0f} s", flush=True)
        write_report(args, list(ARMS))

    jobs = [(args, name, seed) for name, seed in _bench.jobs_for(args.arms, args.seed,
                                                                  args.repeats)]
    _bench.run_jobs(jobs, run_one, args.jobs, after=done)


if __name__ == "__main__":
    main()
