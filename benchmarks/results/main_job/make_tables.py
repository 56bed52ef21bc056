"""Collect a finished `bash scripts/main.sh` run (runs/main) into this folder: results.csv (every
round of the three arms, with a recipe column), config.json (the three configurations) and
tables.md (accuracy per budget, mean and min-max over the repeats; paired differences, mean ±
standard error over the repeats). Usage: python benchmarks/results/main_job/make_tables.py [RUN]"""

import csv
import json
import os
import sys

import numpy as np

RUN = sys.argv[1] if len(sys.argv) > 1 else "runs/main"
HERE = os.path.dirname(os.path.abspath(__file__))
FOLDERS = [("scratch", "scratch"), ("ssl-head", "ssl-head/random"), ("ssl-head", "ssl-head/badge")]

rows, configs = [], {}
for recipe, sub in FOLDERS:
    folder = os.path.join(RUN, sub)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    configs[f"{config['method']} + {recipe}"] = config
    with open(os.path.join(folder, "results.csv")) as f:
        rows += [{"recipe": recipe, **r} for r in csv.DictReader(f)]
with open(os.path.join(HERE, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
with open(os.path.join(HERE, "config.json"), "w") as f:
    json.dump(configs, f, indent=2)

acc = {}
for r in rows:
    arm = acc.setdefault(f"{r['method']} + {r['recipe']}", {})
    arm.setdefault(int(r["n_labeled"]), {})[int(r["repeat"])] = 100 * float(r["accuracy"])
arms = list(acc)


def paired(a, b, n):
    d = np.array([acc[a][n][k] - acc[b][n][k] for k in sorted(acc[a][n])])
    return f"{d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(len(d)):.1f}"


lines = ["| labels | " + " | ".join(arms) + " | random + ssl-head − random + scratch | "
         "badge + ssl-head − random + ssl-head |", "|---:|" + "---|" * len(arms) + "---:|---:|"]
for n in sorted(acc[arms[0]]):
    cells = []
    for a in arms:
        v = np.array(list(acc[a][n].values()))
        cells.append(f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})")
    lines.append(f"| {n} | " + " | ".join(cells) + f" | {paired('random + ssl-head', 'random + scratch', n)}"
                 f" | {paired('badge + ssl-head', 'random + ssl-head', n)} |")
with open(os.path.join(HERE, "tables.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
