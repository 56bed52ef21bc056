"""The skeleton the benchmark scripts share (they run as ``python benchmarks/<name>.py``).

An *arms x repeats* benchmark compares arms (query methods, model settings) over repeats:
repeat k of every arm uses master seed SEED + k, so the arms of a repeat share the pool, the
initial labels and the test subsample. Every (arm, repeat) is one
:func:`skal.experiment.run_experiment` folder ``OUT/runs/<arm>/seed<k>``, checkpointed after
every round, so running the same command again resumes where it stopped, and ``--report-only``
rebuilds the report from what is on disk. This module holds what the scripts have in common:

- the command-line options (``--out``, ``--seed``, ``--repeats``, ``--jobs``, ``--threads``,
  ``--report-only``, ``--arms`` and protocol presets such as ``--full`` / ``--tiny``);
- the run loop: every job in order, or in a pool of spawned processes;
- the benchmark's own methods, registered under its own names (never over another one);
- reading finished runs back, mean ± std, the normalised area under the learning curve;
- the report files: ``results.json``, ``results.csv`` (the ``csv`` module) and ``results.md``.
"""

import argparse
import concurrent.futures
import csv
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from skal.exceptions import RunFolderError
from skal.experiment import METHODS, load_run, register_method, run_experiment


# ---------------------------------------------------------------------------- options
def command_line():
    """The command that is running, as the reports quote it."""
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def new_parser(doc):
    """An argument parser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_run_options(p, *, out, repeats=None, repeats_help=None, arms=None, arms_flag="--arms",
                    arms_help=None, seed=True, seed_help="repeat k uses seed SEED + k",
                    jobs=True, jobs_help="runs in parallel (processes)", threads=True,
                    threads_help="torch CPU threads (per run)", out_help=None,
                    report_only=True):
    """The options every arms x repeats benchmark has.

    ``repeats`` is the default of ``--repeats`` (None: the protocol presets set it), ``arms``
    the default of ``arms_flag`` (None: no such option); ``seed``, ``jobs``, ``threads`` and
    ``report_only`` False leave those options out.
    """
    if repeats is not None:
        p.add_argument("--repeats", type=int, default=repeats, help=repeats_help)
    if arms is not None:
        p.add_argument(arms_flag, default=",".join(arms),
                       help=arms_help or "comma-separated subset of " + ",".join(arms))
    if seed:
        p.add_argument("--seed", type=int, default=0, help=seed_help)
    if jobs:
        p.add_argument("--jobs", type=int, default=1, help=jobs_help)
    if threads:
        p.add_argument("--threads", type=int, default=1, help=threads_help)
    if report_only:
        p.add_argument("--report-only", action="store_true",
                       help="rebuild the report from the runs on disk, run nothing")
    p.add_argument("--out", default=out, help=out_help or f"output folder (default {out})")


def split_arms(p, text, known, flag="--arms"):
    """The arms of a comma-separated ``text``; an unknown one is a usage error."""
    arms = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if a not in known]
    if unknown:
        p.error(f"unknown {flag} {unknown}; choose from {list(known)}")
    return arms


def add_presets(p, presets, flags, default, types=None):
    """Protocol presets: one option per size (None: from the preset) and a flag per preset.

    ``presets`` maps a preset name to its sizes (``{"scaled": {...}, "full": {...}}``),
    ``flags`` a preset other than ``default`` to the help of its flag (``--full``); ``types``
    overrides the type of an option (the default preset's value gives it otherwise).
    """
    for name, help in flags.items():
        p.add_argument("--" + name, action="store_true", help=help)
    others = [name for name in presets if name != default]
    for key, value in presets[default].items():
        kind = (types or {}).get(key) or (str if isinstance(value, str) else int)
        shown = ", ".join(f"--{name}: {_shown(presets[name][key])}" for name in others)
        p.add_argument("--" + key.replace("_", "-"), type=kind, default=None,
                       help=f"default {_shown(value)}" + (f" ({shown})" if shown else ""))


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def apply_presets(args, presets, default):
    """Fill the sizes left None from the first preset flag given (or ``default``)."""
    chosen = next((name for name in presets if name != default and getattr(args, name)),
                  default)
    for key, value in presets[chosen].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return chosen


# ---------------------------------------------------------------------------- methods
def register_methods(methods):
    """Register a benchmark's own methods (``{name: Method}``) under their names.

    Idempotent for the same objects (each process registers once; a worker process does it
    again for itself), and never replaces a method: a name that another definition holds
    already (a built-in one, or another benchmark's) raises ``register_method``'s ValueError.
    """
    for name, method in methods.items():
        if METHODS.get(name) is not method:
            register_method(name, method)


# ---------------------------------------------------------------------------- runs
def run_dir(out, arm, seed):
    """The run folder of one (arm, repeat): ``OUT/runs/<arm>/seed<k>``."""
    return os.path.join(out, "runs", arm, f"seed{seed}")


def jobs_for(arms, seed, repeats):
    """(arm, seed) of every run, repeat by repeat, the arms of a repeat in order."""
    return [(arm, seed + k) for k in range(repeats) for arm in arms]


def run(config, folder, callbacks=None, progress=True):
    """``run_experiment(config, folder)``; the seconds it took."""
    start = time.perf_counter()
    run_experiment(config, folder, progress=progress, callbacks=callbacks)
    return time.perf_counter() - start


def run_jobs(jobs, run_one, n_jobs=1, after=None):
    """Call ``run_one(*job)`` for every job and ``after(job, result)`` in this process.

    With ``n_jobs`` > 1 the jobs run in a pool of that many spawned processes (``run_one``
    must then be a module-level function of the script, with picklable arguments) and
    ``after`` follows each as it finishes; otherwise they run here, in order. A run folder
    that cannot be used (another process is running it, or another experiment made it) stops
    the script with that message, not a traceback: the folder is left as it was.
    """
    try:
        if n_jobs <= 1:
            for job in jobs:
                result = run_one(*job)
                if after is not None:
                    after(job, result)
            return
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
            futures = {pool.submit(run_one, *job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                if after is not None:
                    after(futures[future], result)
    except RunFolderError as exc:
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: error: {exc}") from None


def check_arm_file(folder, record):
    """Write ``arm.json`` (the arm's definition) in a run folder, or refuse a folder that
    another definition of the arm made (its runs would not be this arm's)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "arm.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != record:
            raise ValueError(f"{folder} was made by another definition of arm "
                             f"{record.get('arm')!r} ({saved} != {record}); use another --out "
                             "or delete the folder.")
        return
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def load_rows(folder):
    """The result rows of a run folder (every finished round), or None without a run."""
    try:
        return load_run(folder).rows
    except FileNotFoundError:
        return None


def seed_folders(out, arm):
    """The run folders of an arm on disk, whatever the seeds (sorted by name)."""
    root = os.path.join(out, "runs", arm)
    return [os.path.join(root, sub) for sub in sorted(os.listdir(root))] if os.path.isdir(
        root) else []


# ---------------------------------------------------------------------------- statistics
def by_size(rows, key="accuracy", scale=100):
    """``{n_labeled: [scale * row[key], ...]}`` over result rows, by increasing size."""
    out = {}
    for row in rows:
        out.setdefault(int(row["n_labeled"]), []).append(scale * row[key])
    return dict(sorted(out.items()))


def mean_std(values, digits):
    """``(mean, std)`` of ``values`` rounded to ``digits``, or ``(None, None)`` for none."""
    if not len(values):
        return None, None
    return round(float(np.mean(values)), digits), round(float(np.std(values)), digits)


def size_columns(rows, arm, n, digits=2):
    """``{arm}_mean``, ``{arm}_std`` (test accuracy %) and ``{arm}_n`` of the rows at ``n``
    labels, for the per-size tables of the reports; the rows themselves too."""
    at_n = [r for r in rows if int(r["n_labeled"]) == n]
    mean, std = mean_std([100 * r["accuracy"] for r in at_n], digits)
    return {f"{arm}_mean": mean, f"{arm}_std": std, f"{arm}_n": len(at_n)}, at_n


def plot_mean_std(ax, rows, arm, color, label):
    """One arm's ``{arm}_mean`` ± ``{arm}_std`` against ``n_labeled`` (a line and a band)."""
    points = [(r["n_labeled"], r[f"{arm}_mean"], r[f"{arm}_std"]) for r in rows
              if r[f"{arm}_mean"] is not None]
    if points:
        n, mean, std = map(np.array, zip(*points))
        ax.plot(n, mean, "o-", color=color, label=label)
        ax.fill_between(n, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)


def auc(rows):
    """Normalised area under the learning curve: trapezoid over labels / budget width."""
    n = np.array([r["n_labeled"] for r in rows], dtype=float)
    acc = np.array([r["accuracy"] for r in rows], dtype=float)
    return float(np.trapezoid(acc, n) / (n[-1] - n[0])) if len(n) > 1 else float(acc[0])


# ---------------------------------------------------------------------------- reports
def write_csv(path, rows, fieldnames=None, lineterminator="\n"):
    """Write row dicts as a CSV table (None as an empty cell, quoting where needed)."""
    fieldnames = list(fieldnames or (rows[0] if rows else []))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, lineterminator=lineterminator)
        writer.writeheader()
        writer.writerows(rows)


def write_json(out_dir, summary):
    """Write ``OUT/results.json`` (the summary, indented), making ``OUT`` if needed."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)


def write_summary(out_dir, summary, rows):
    """Write ``results.json`` (the summary) and ``results.csv`` (one line per row dict)."""
    write_json(out_dir, summary)
    write_csv(os.path.join(out_dir, "results.csv"), rows)


def md_table(header, rows):
    """The lines of a markdown table."""
    return (["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(str, cells)) + " |" for cells in rows])


def write_markdown(out_dir, lines, name="results.md"):
    """Write the report's lines to ``OUT/results.md``."""
    with open(os.path.join(out_dir, name), "w") as f:
        f.write("\n".join(lines) + "\n")
