"""How much CPU time ``import skal`` costs, next to ``import torch``.

Each statement runs in a fresh Python subprocess (nothing cached in ``sys.modules``), several
times, the statements interleaved so that a busy machine slows them alike. Two CPU times are
recorded per run: the statement's own (``time.process_time`` around it, in the child) and the whole
child process's (``resource.getrusage(RUSAGE_CHILDREN)`` in the parent: interpreter start-up
included). The table gives medians and the ratio of each statement's median to ``import torch``'s.

    python benchmarks/import_time.py                  # 7 runs per statement, 1 thread
    python benchmarks/import_time.py --repeats 3 --no-write
    python benchmarks/import_time.py --src /path/to/other/checkout --no-write   # another version

Results go to ``benchmarks/results/import_time.md`` (with the command and the thread count).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "import_time.md")

# (label, statement). "import torch" is the reference; "import torch, skorch" is the floor of any
# skal estimator (a skorch NeuralNetClassifier subclass), scikit-learn included.
STATEMENTS = [
    ("torch", "import torch"),
    ("torch + skorch", "import torch, skorch"),
    ("import skal", "import skal"),
    ("public API", "from skal import ResNet18Classifier, bald, ActiveLearner"),
    ("every name", "from skal import *"),
    ("torchvision", "import torchvision"),
]

# Runs in the child: time the statement, report what it loaded.
CHILD = r"""
import json, sys, time
t0, w0 = time.process_time(), time.perf_counter()
exec(compile(sys.argv[1], "<statement>", "exec"), {})
cpu, wall = time.process_time() - t0, time.perf_counter() - w0
mods = sys.modules
print(json.dumps({
    "cpu": cpu, "wall": wall,
    "torch_threads": mods["torch"].get_num_threads() if "torch" in mods else None,
    "skal": getattr(mods.get("skal"), "__file__", None),
    "loaded": sorted(m for m in ("torch", "sklearn", "scipy.stats", "skorch", "imblearn",
                                 "torchvision", "matplotlib") if m in mods),
}))
"""


def child_env(src, threads):
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_once(python, statement, env, src):
    """One fresh interpreter: (statement CPU s, process CPU s, wall s, info dict)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # cwd=src: ``python -c`` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.run(
        [python, "-c", CHILD, statement], env=env, capture_output=True, text=True, cwd=src
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{statement!r} failed in a fresh interpreter:\n{proc.stderr}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    process_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return info["cpu"], process_cpu, info["wall"], info


def measure(python, src, threads, repeats, statements=STATEMENTS):
    env = child_env(src, threads)
    runs = {label: [] for label, _ in statements}
    info = {}
    for _ in range(repeats):
        for label, statement in statements:  # interleaved: noise hits every statement alike
            cpu, process_cpu, wall, info[label] = run_once(python, statement, env, src)
            runs[label].append((cpu, process_cpu, wall))
    measured = info["import skal"]["skal"]
    if not measured or not os.path.abspath(measured).startswith(os.path.join(src, "")):
        raise SystemExit(f"the children imported skal from {measured}, not from {src}.")
    rows = []
    ref = statistics.median(c for c, _, _ in runs[statements[0][0]])
    for label, statement in statements:
        cpus = [c for c, _, _ in runs[label]]
        med = statistics.median(cpus)
        rows.append({
            "label": label,
            "statement": statement,
            "cpu_median": med,
            "cpu_min": min(cpus),
            "cpu_max": max(cpus),
            "ratio": med / ref,
            "process_cpu_median": statistics.median(p for _, p, _ in runs[label]),
            "wall_median": statistics.median(w for _, _, w in runs[label]),
            "torch_threads": info[label]["torch_threads"],
            "loaded": info[label]["loaded"],
        })
    return rows


def table(rows):
    lines = [
        "| statement | CPU s, median | min - max | x `import torch` | process CPU s | wall s "
        "| loads |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['statement']}` | {r['cpu_median']:.2f} | {r['cpu_min']:.2f} - "
            f"{r['cpu_max']:.2f} | {r['ratio']:.2f} | {r['process_cpu_median']:.2f} | "
            f"{r['wall_median']:.2f} | {', '.join(r['loaded']) or '-'} |"
        )
    return "\n".join(lines)


def versions(python, env):
    code = (
        "import json, platform, torch, sklearn, skorch; print(json.dumps({'python': "
        "platform.python_version(), 'torch': torch.__version__, 'scikit-learn': "
        "sklearn.__version__, 'skorch': skorch.__version__}))"
    )
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per statement (default 7)")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="OMP/MKL/OpenBLAS thread count of the children (default 1)",
    )
    parser.add_argument(
        "--src", default=ROOT, help="folder put first on the children's PYTHONPATH: the skal to "
        "measure (default: this checkout)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter to run")
    parser.add_argument("--out", default=DEFAULT_OUT, help="markdown report (default %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}.")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}.")
    src = os.path.abspath(args.src)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.strftime("%Y-%m-%d %H:%M")
    rows = measure(args.python, src, args.threads, args.repeats)
    text = table(rows)
    print(text)

    if args.no_write:
        return 0
    command = "python benchmarks/import_time.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    vers = versions(args.python, child_env(src, args.threads))
    skal_row = next(r for r in rows if r["label"] == "import skal")
    api_row = next(r for r in rows if r["label"] == "public API")
    floor_row = next(r for r in rows if r["label"] == "torch + skorch")
    where = "this checkout" if src == ROOT else f"`{src}`"
    report = f"""# `import skal` CPU time

Command: `{command.strip()}`, run {start} on {os.cpu_count()} CPUs (load average {load:.2f} at the
start); {args.repeats} fresh interpreters per statement, statements interleaved; skal from {where}.
Threads: `OMP_NUM_THREADS={args.threads}` (torch reports {rows[0]['torch_threads']} thread(s)).
Python {vers.get('python', platform.python_version())}, torch {vers.get('torch', '?')}, \
scikit-learn {vers.get('scikit-learn', '?')}, skorch {vers.get('skorch', '?')}.

"CPU s" is the statement's own CPU time in the child (`time.process_time`), "process CPU s" the
whole child's (`getrusage(RUSAGE_CHILDREN)`: interpreter start-up and shutdown included).

{text}

- `import skal`: {skal_row['cpu_median']:.2f} s, {skal_row['ratio']:.2f}x `import torch` (the
  public names are imported on first use).
- `from skal import ResNet18Classifier, bald, ActiveLearner`: {api_row['cpu_median']:.2f} s,
  {api_row['ratio']:.2f}x `import torch`. Its dependencies alone, `import torch, skorch` (skorch
  loads scikit-learn, and scikit-learn `scipy.stats`), take {floor_row['cpu_median']:.2f} s
  ({floor_row['ratio']:.2f}x).
"""
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
