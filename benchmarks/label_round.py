"""A ``skal label`` round of the ``ssl-head`` recipe at 1,000 labels over 10,000 images: CPU time.

Issue 29's target: "a labelling-loop round with the frozen-embedding head in at most 5 s CPU at
1,000 labels over 10K images". The benchmark writes the first ``--pool`` Fashion-MNIST training
images as PNG files into a temporary folder and makes a labelling project of them with
:meth:`skal.labeling.Project.init` (``recipe="ssl-head"``, the recipe's ``badge`` strategy,
batches of 20, the default 20 % held out). A simulated oracle answers every round's batch with
the true labels through :meth:`Project.label` (stored as a person's answers are: one committed
transaction each) before the next round, from the random first batch on, so the project grows
to ``--labels`` labels round by round, with the history (stopping reports, checkpoints) a real
one has. Timed, as :meth:`Project.train_and_query` calls:

1. the **first** round (20 labels), which fits the SimCLR encoder on all the project's images
   (reported separately: it happens once per project);
2. the **growing** rounds up to ``--labels``, then ``--repeats`` **following** rounds at
   ``--labels`` labels and more, in the same process (encoder and features in memory);
3. ``--repeats`` rounds each in a **fresh process after a server restart**: the process first
   imports what ``skal label serve`` imports when it starts (``skal.labeling.app``), then opens
   the project, the oracle answers the batch and the round runs; and ``--repeats`` rounds in a
   **fresh CLI process** (``skal label train``: only ``skal.labeling`` imported before the
   round, which then pays for importing scikit-learn too).

Each round is measured as CPU seconds of the process (``time.process_time``: every thread, plus
the CPU of child processes, of which there are none) and wall seconds, broken down by the round's
own progress reports (``checks`` is what :meth:`Project.train_and_query` does before its first
report). Every setting runs with 1 and with 2 torch threads, and with 2 threads whose OpenMP
workers sleep instead of spinning while they wait (``OMP_WAIT_POLICY=PASSIVE``: ``2p``), each
in its own processes and project (``--threads``). Then one server-restart round and one
following round run under ``cProfile`` (1 thread, a CPU-time clock) to say where the time goes:
the cumulative CPU seconds of the round's steps (reading the images, loading the encoder, the
features, training the head, the stopping / calibration report, querying, writing files).

The encoder trains for ``--encoder-epochs`` (default 1, not the recipe's 15): a round with a
cached encoder does not depend on how long the encoder trained (the same network is loaded and
run forward, or its features read back; only its weights differ), so this keeps the benchmark
short. The first round's encoder fit is therefore about 1/15 of what the recipe's default costs.

Usage::

    python benchmarks/label_round.py            # 10,000 images, 1,000 labels, 1, 2, 2p threads
    python benchmarks/label_round.py --tiny     # 1,200 images, 200 labels, 1 thread (a smoke run)

Results go to ``benchmarks/results/label_round/`` (``--tiny``: ``.../label_round/tiny/``):
``results.json`` and ``results.md``, with the command, the threads and the machine.
"""

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

# the children import no more of skal than ``skal label`` does before a round (skal.labeling),
# so that a fresh process's round pays the imports it would pay after a restart
from skal.labeling import Project

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "label_round")
CLASSES = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle_boot"]
TARGET_CPU_S = 5.0
ORACLE = "oracle"
BATCH_SIZE = 20
#: the kinds of timed rounds, as the report names them
KINDS = {"first": "first round (fits the encoder)", "growing": "growing",
         "following": "following round, same process",
         "serve": "fresh process after a server restart", "cli": "fresh CLI process"}

#: (file name ending, function name) -> what the profile table calls it, in order
STEPS = [
    (("skal/labeling/project.py", "train_and_query"), "the whole round"),
    (("skal/labeling/rounds.py", "check_ready"), "checks (settings, files, labels, pool)"),
    (("skal/labeling/rounds.py", "load"), "reading the images (PixelCache.load)"),
    (("skal/labeling/service.py", "project_encoder"), "loading the encoder"),
    (("skal/labeling/service.py", "project_features"), "the features of every image"),
    (("skal/labeling/rounds.py", "_fit"), "training the head"),
    (("skal/labeling/rounds.py", "_stopping"), "stopping / calibration report"),
    (("skal/labeling/batch_report.py", "plan_query"), "query plan"),
    (("skal/labeling/rounds.py", "_query"), "querying"),
    (("skal/labeling/files.py", "save_checkpoint"), "writing the checkpoint"),
    (("skal/labeling/batch_report.py", "store_report"), "writing the batch report"),
    (("skal/labeling/store.py", "finish_round"), "committing the round"),
    (("skal/estimators/_encoder.py", "transform"), "running the encoder (within the steps "
                                                   "above)"),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="1,200 images, 200 labels, 1 thread")
    p.add_argument("--pool", type=int, default=None, help="images (default 10000)")
    p.add_argument("--labels", type=int, default=None, help="labels (default 1000)")
    p.add_argument("--threads", default=None,
                   help="torch thread counts; Np: N threads with OMP_WAIT_POLICY=PASSIVE "
                        "(default 1,2,2p)")
    p.add_argument("--repeats", type=int, default=2,
                   help="following rounds, and fresh processes of each kind, per thread count")
    p.add_argument("--encoder-epochs", type=int, default=1)
    p.add_argument("--strategy", default="badge", help="the project's strategy")
    p.add_argument("--no-profile", dest="profile", action="store_false")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    # the child processes' options (the benchmark starts them itself)
    p.add_argument("--child", choices=("session", "serve", "cli", "profile"),
                   help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--project", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    tiny = dict(pool=1_200, labels=200, threads="1")
    full = dict(pool=10_000, labels=1_000, threads="1,2,2p")
    for key, value in (tiny if args.tiny else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.settings = [t.strip() for t in str(args.threads).split(",") if t.strip()]
    for setting in args.settings:
        if not setting.rstrip("p").isdigit() or int(setting.rstrip("p")) < 1:
            p.error(f"--threads takes N or Np (N >= 1), comma-separated; got {setting!r}")
    args.out = args.out or (os.path.join(OUT, "tiny") if args.tiny else OUT)
    return args


# ---------------------------------------------------------------------------- timing
def cpu_seconds():
    """CPU seconds of this process (every thread) and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class PhaseClock:
    """A ``progress`` callback that notes the CPU and wall clock at every change of phase."""

    def __init__(self):
        self.marks = [("checks", cpu_seconds(), time.perf_counter())]

    def __call__(self, phase, done, total):
        if phase != self.marks[-1][0]:
            self.marks.append((phase, cpu_seconds(), time.perf_counter()))

    def phases(self, cpu_end, wall_end):
        """``[{phase, cpu_s, wall_s}]``: each phase until the next one (or the end)."""
        ends = self.marks[1:] + [("end", cpu_end, wall_end)]
        out = {}
        for (phase, cpu0, wall0), (_, cpu1, wall1) in zip(self.marks, ends):
            cpu, wall = out.get(phase, (0.0, 0.0))
            out[phase] = (cpu + cpu1 - cpu0, wall + wall1 - wall0)
        return [{"phase": k, "cpu_s": round(c, 3), "wall_s": round(w, 3)}
                for k, (c, w) in out.items()]


def timed_round(project, kind):
    """Run one round with the project's settings; its CPU and wall seconds and phases."""
    clock = PhaseClock()
    cpu0, wall0 = clock.marks[0][1], clock.marks[0][2]
    result = project.train_and_query(progress=clock)
    cpu1, wall1 = cpu_seconds(), time.perf_counter()
    from skal.labeling.diagnostics import load_report  # imported by the round already

    stopping = load_report(project.path, result["id"]) or {}
    row = next(r for r in project.store.rounds() if r["id"] == result["id"])
    checkpoint = os.path.join(project.path, *row["checkpoint"].split("/"))
    return {"checkpoint_bytes": os.path.getsize(checkpoint), "kind": kind,
            "round": result["id"], "n_labeled": result["n_labeled"],
            "n_train": result["n_train"], "n_holdout": result["n_holdout"],
            "accuracy": result["accuracy"], "cpu_s": round(cpu1 - cpu0, 3),
            "wall_s": round(wall1 - wall0, 3), "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "phases": clock.phases(cpu1, wall1),
            # whether the stopping report's forecast had its bootstrap (from 3 rounds on)
            "forecast_bootstrap": stopping.get("forecast_gain_sd") is not None}


# ---------------------------------------------------------------------------- the oracle
def read_truth(work):
    with open(os.path.join(work, "truth.json")) as f:
        return json.load(f)


def answer_batch(project, truth):
    """The oracle labels the current batch (its unanswered items); how many it answered."""
    items = [it for it in project.next_batch() if it.answer is None]
    for item in items:
        project.label(item.path, truth[item.path], annotator=ORACLE, source="benchmark")
    return len(items)


# ---------------------------------------------------------------------------- the children
def session(args):
    """Make the project, grow it to ``--labels`` labels round by round (as a person would),
    then the following rounds; all in this process."""
    truth = read_truth(args.work)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    project = Project.init(args.project, images=os.path.join(args.work, "images"),
                           classes=CLASSES, recipe="ssl-head", batch_size=BATCH_SIZE,
                           encoder_epochs=args.encoder_epochs, strategy=args.strategy,
                           seed=args.seed)
    init = {"cpu_s": round(cpu_seconds() - cpu0, 2),
            "wall_s": round(time.perf_counter() - wall0, 2)}
    answer_batch(project, truth)  # the random first batch
    rounds = [timed_round(project, "first")]
    answering = 0.0
    while sum(r["kind"] == "following" for r in rounds) < args.repeats:
        wall0 = time.perf_counter()
        answer_batch(project, truth)
        answering += time.perf_counter() - wall0
        kind = "growing" if len(project.labels()) < args.labels else "following"
        rounds.append(timed_round(project, kind))
    project.close()
    return {"init": init, "answer_wall_s": round(answering, 2), "rounds": rounds}


def fresh(args):
    """Open the project in this new process, answer the batch and run one round; for
    ``serve``, import first what ``skal label serve`` imports when it starts."""
    imported = "skal.labeling"
    if args.child == "serve":
        try:
            import skal.labeling.app  # noqa: F401 (the server's module, loaded at its start)

            imported = "skal.labeling.app"
        except ImportError:  # no web extra: as a CLI process
            pass
    truth = read_truth(args.work)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    project = Project(args.project)
    opened = {"cpu_s": round(cpu_seconds() - cpu0, 3),
              "wall_s": round(time.perf_counter() - wall0, 3)}
    answer_batch(project, truth)
    before = cpu_seconds()
    row = timed_round(project, args.child)
    project.close()
    row.update(open=opened, imported=imported, process_cpu_s_before_round=round(before, 3),
               process_cpu_s=round(cpu_seconds(), 3))  # start-up, imports, opening, the round
    return row


def profile_steps(stats):
    """The cumulative CPU seconds of each of :data:`STEPS` in a ``pstats.Stats``."""
    found = {}
    for (filename, _, name), (_, calls, _, cumulative, _) in stats.stats.items():
        path = filename.replace(os.sep, "/")
        for (suffix, func), label in STEPS:
            if name == func and path.endswith(suffix):
                total, n = found.get(label, (0.0, 0))
                found[label] = (total + cumulative, n + calls)
    return [{"step": label, "cpu_s": round(found[label][0], 3), "calls": found[label][1]}
            for _, label in STEPS if label in found]


def profiled_round(project, truth, kind, top=30):
    """One round under cProfile (a CPU-time clock): the steps and the ``top`` functions."""
    answer_batch(project, truth)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    project.train_and_query()
    profiler.disable()
    stats = pstats.Stats(profiler)
    lines = []
    for (filename, line, name), (_, calls, own, cumulative, _) in sorted(
            stats.stats.items(), key=lambda kv: -kv[1][3])[:top]:
        where = filename.replace(os.sep, "/").split("site-packages/")[-1]
        lines.append({"function": f"{where}:{line}({name})", "calls": calls,
                      "own_cpu_s": round(own, 3), "cumulative_cpu_s": round(cumulative, 3)})
    return {"kind": kind, "steps": profile_steps(stats), "top": lines}


def profile(args):
    """A round after a server restart, then a following one, under cProfile."""
    try:
        import skal.labeling.app  # noqa: F401 (as ``serve``)
    except ImportError:
        pass
    truth = read_truth(args.work)
    project = Project(args.project)
    out = [profiled_round(project, truth, "serve"), profiled_round(project, truth, "following")]
    project.close()
    return out


# ---------------------------------------------------------------------------- the parent
def write_images(work, n):
    """The first ``n`` Fashion-MNIST training images as PNG files; their true labels."""
    from PIL import Image

    from skal.datasets import load_fashion_mnist

    X, y = load_fashion_mnist("train")
    folder = os.path.join(work, "images")
    os.makedirs(folder)
    truth = {}
    for i in range(n):
        name = f"fm_{i:05d}.png"
        Image.fromarray(X[i, 0]).save(os.path.join(folder, name))  # (1, 28, 28) -> (28, 28)
        truth[name] = CLASSES[int(y[i])]
    with open(os.path.join(work, "truth.json"), "w") as f:
        json.dump(truth, f)
    return folder


def child(args, mode, setting, project):
    """Run this script as a child process in ``mode`` with a ``--threads`` setting (``N`` or
    ``Np``); its result."""
    result = os.path.join(args.work, f"{mode}-{setting}-{time.monotonic_ns()}.json")
    env = dict(os.environ)
    if setting.endswith("p"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # read when the OpenMP runtime starts (torch import)
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--work", args.work,
               "--project", project, "--result", result, "--threads", setting.rstrip("p"),
               "--labels", str(args.labels), "--repeats", str(args.repeats),
               "--encoder-epochs", str(args.encoder_epochs), "--strategy", args.strategy,
               "--seed", str(args.seed)]
    subprocess.run(command, check=True, env=env)
    with open(result) as f:
        return json.load(f)


def summary_of(rounds):
    cpu = [r["cpu_s"] for r in rounds]
    if not cpu:
        return None
    return {"n": len(cpu), "cpu_s_mean": round(float(np.mean(cpu)), 2),
            "cpu_s_max": round(float(np.max(cpu)), 2),
            "wall_s_mean": round(float(np.mean([r["wall_s"] for r in rounds])), 2),
            "n_labeled": [r["n_labeled"] for r in rounds],
            "within_target": bool(max(cpu) <= TARGET_CPU_S)}


def folder_bytes(folder):
    """The total size of the files in ``folder`` (a project's ``models/`` or ``encoder/``)."""
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def run_all(args):
    from skal.experiment import machine_info

    load_at_start = [round(v, 2) for v in os.getloadavg()]
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skal-label-round-") as work:
        args.work = work
        t = time.perf_counter()
        write_images(work, args.pool)
        png_s = round(time.perf_counter() - t, 2)
        by_threads = {}
        for setting in args.settings:
            project = os.path.join(work, f"project-t{setting}")
            data = child(args, "session", setting, project)
            for _ in range(args.repeats):
                for kind in ("serve", "cli"):
                    data["rounds"].append(child(args, kind, setting, project))
            data["folder_bytes"] = {name: folder_bytes(os.path.join(project, name))
                                    for name in ("models", "encoder")}
            by_threads[setting] = data
            print(f"threads {setting}: " + ", ".join(
                f"{r['kind']} {r['cpu_s']:.2f} CPU s" for r in data["rounds"]
                if r["kind"] != "growing"), flush=True)
        profiled = None
        if args.profile:
            project = os.path.join(work, f"project-t{args.settings[0]}")
            profiled = child(args, "profile", args.settings[0], project)
        load_at_end = [round(v, 2) for v in os.getloadavg()]
    result = {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "setting": {"data": "fashion_mnist (train)", "pool": args.pool, "labels": args.labels,
                    "recipe": "ssl-head", "encoder_epochs": args.encoder_epochs,
                    "strategy": args.strategy, "batch_size": BATCH_SIZE, "holdout": 0.2,
                    "seed": args.seed, "repeats": args.repeats},
        "target_cpu_s": TARGET_CPU_S,
        "summary": {threads: {kind: summary_of([r for r in d["rounds"] if r["kind"] == kind])
                              for kind in KINDS} for threads, d in by_threads.items()},
        "by_threads": by_threads, "profile": profiled,
        "png_write_wall_s": png_s, "total_wall_s": round(time.perf_counter() - wall0, 1),
        "machine": {**machine_info(), "cores": os.cpu_count(),
                    "load_average_at_start": load_at_start,
                    "load_average_at_end": load_at_end},
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    lines = report_lines(result)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


# ---------------------------------------------------------------------------- the report
def _table(header, rows):
    return (["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(str, cells)) + " |" for cells in rows])


def _phase_table(rounds):
    phases = []
    for r in rounds:
        phases += [p["phase"] for p in r["phases"] if p["phase"] not in phases]
    rows = []
    for r in rounds:
        cells = {p["phase"]: p["cpu_s"] for p in r["phases"]}
        rows.append([KINDS[r["kind"]], _threads(r), r["n_labeled"], f"{r['cpu_s']:.2f}",
                     f"{r['wall_s']:.2f}"] + [f"{cells[p]:.2f}" if p in cells else ""
                                              for p in phases])
    return _table(["round", "threads", "labels", "CPU s", "wall s"] + phases, rows)


def _setting(setting):
    return setting.rstrip("p") + (" (OMP_WAIT_POLICY=PASSIVE)" if setting.endswith("p") else "")


def _threads(row):
    return f"{row['threads']}" + (" passive" if row.get("omp_wait_policy") == "PASSIVE" else "")


def _cell(summary, digits=2):
    if summary is None:
        return ""
    return f"{summary['cpu_s_mean']:.{digits}f} / {summary['cpu_s_max']:.{digits}f}"


def report_lines(result):
    s, m = result["setting"], result["machine"]
    lines = [
        "# A labelling round with the ssl-head recipe (benchmarks/label_round.py)", "",
        f"Command: `{result['command']}`", "",
        f"Setting: {s['pool']} {s['data']} images as PNG files, a `skal label` project "
        f"(`recipe=\"ssl-head\"`, strategy `{s['strategy']}`, batches of {s['batch_size']}, "
        f"{s['holdout']:.0%} held out). A simulated oracle answers each round's batch with the "
        "true labels through `Project.label` before the next round, from the random first "
        f"batch to {s['labels']} labels and on. Encoder: {s['encoder_epochs']} SimCLR "
        "epoch(s), fitted in the first round (a round with a cached encoder runs the same "
        "network, or reads its features back, whatever it trained for). CPU seconds: "
        "`time.process_time` of the process (all threads) plus its child processes (none).", "",
        f"Machine: {m['processor']}, {m['cores']} cores shared with other jobs (load average "
        f"{m['load_average_at_start']} at the start, {m['load_average_at_end']} at the end), "
        f"torch {m['torch']} ({m['cpu_capability']}).", "",
        f"Target (issue 29): a round at {s['labels']} labels over {s['pool']} images in at most "
        f"{result['target_cpu_s']:g} CPU seconds. CPU seconds of a round, mean / max over the "
        f"rounds (at {s['labels']} labels and the next batches):", "",
    ]
    rows = []
    for setting, row in result["summary"].items():
        timed = [row[k] for k in ("following", "serve", "cli") if row[k]]
        ok = all(t["within_target"] for t in timed)
        rows.append([_setting(setting), _cell(row["following"]), _cell(row["serve"]),
                     _cell(row["cli"]),
                     _cell(row["first"], 1), "met" if ok else "missed"])
    lines += _table(["torch threads", KINDS["following"], KINDS["serve"], KINDS["cli"],
                     KINDS["first"], "target"], rows)
    shown = [r for d in result["by_threads"].values() for r in d["rounds"]
             if r["kind"] != "growing"]
    lines += ["", "CPU seconds by phase (the round's progress reports; `checks` is what "
              "`train_and_query` does before its first report; `evaluating` includes the "
              "stopping / calibration report):", ""] + _phase_table(shown)
    for setting, d in result["by_threads"].items():
        growing = [r for r in d["rounds"] if r["kind"] == "growing"]
        if growing:
            cpu = [r["cpu_s"] for r in growing]
            lines += ["", f"{_setting(setting)} thread(s), the {len(growing)} growing rounds from "
                      f"{growing[0]['n_labeled']} to {growing[-1]['n_labeled']} labels: CPU s "
                      f"min {min(cpu):.2f}, median {np.median(cpu):.2f}, max {max(cpu):.2f}. "
                      f"Project init (hashing and reading the {s['pool']} files) "
                      f"{d['init']['cpu_s']:.1f} CPU s; the oracle's answers through "
                      f"`Project.label`: {d['answer_wall_s']:.1f} s wall in all."]
        if "folder_bytes" in d:
            size = d["folder_bytes"]
            ckpt = [r["checkpoint_bytes"] for r in d["rounds"] if "checkpoint_bytes" in r]
            lines += ["", f"{_setting(setting)} thread(s), disk: {len(ckpt)} rounds' checkpoints "
                      f"of {min(ckpt) / 1e6:.2f} to {max(ckpt) / 1e6:.2f} MB each (the encoder is "
                      f"referred to, not copied); `models/` {size['models'] / 1e6:.1f} MB, "
                      f"`encoder/` {size['encoder'] / 1e6:.1f} MB (the encoder and the "
                      "features)."]
    fresh = [r for r in shown if r["kind"] in ("serve", "cli")]
    lines += ["", "A fresh process pays its start-up (the interpreter, imports) and opening the "
              "project before the round, in CPU seconds:", ""]
    lines += _table(["process", "threads", "before the round (imported)", "the round",
                     "in all"],
                    [[KINDS[r["kind"]], _threads(r),
                      f"{r['process_cpu_s_before_round']:.2f} (`{r['imported']}`)",
                      f"{r['cpu_s']:.2f}", f"{r['process_cpu_s']:.2f}"] for r in fresh])
    if result["profile"]:
        lines += ["", "Where the time goes (cProfile with a CPU-time clock, 1 thread; cumulative "
                  "CPU seconds: a step includes what it calls, imports too; profiling slows "
                  "Python code down, so the sums exceed the timings above):", ""]
        by_kind = {p["kind"]: {x["step"]: x for x in p["steps"]} for p in result["profile"]}
        rows = []
        for _, label in STEPS:
            cells = [by_kind.get(k, {}).get(label) for k in ("serve", "following")]
            if any(cells):
                rows.append([label] + [f"{c['cpu_s']:.2f} ({c['calls']} calls)" if c else ""
                                       for c in cells])
        lines += _table(["step", KINDS["serve"], KINDS["following"]], rows)
    lines += ["", f"Total: {result['total_wall_s']:.0f} s wall (writing the PNG files "
              f"{result['png_write_wall_s']:.1f} s)."]
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.child is None:
        return run_all(args)
    torch.set_num_threads(int(args.settings[0].rstrip("p")))
    run = {"session": session, "serve": fresh, "cli": fresh, "profile": profile}[args.child]
    data = run(args)
    with open(args.result, "w") as f:
        json.dump(data, f)
    return data


if __name__ == "__main__":
    main()
