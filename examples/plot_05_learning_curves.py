"""
Comparing query strategies: learning curves
===========================================

:func:`skal.experiment.run_experiment` runs a whole simulated active-learning experiment: the
oracle is the data set's labels, every round trains a model from its own seed, scores it on a
test set and queries the next batch. Its folder holds a checkpoint after every round (running it
again resumes or extends it) and the results as JSON lines and CSV;
:func:`skal.experiment.compare_runs` overlays several runs, as ``skal compare`` does. The same
experiment from the command line: ``skal run --dataset digits --methods random,entropy,bald ...``.
"""

# %%
# Three methods, the same initial labels
# --------------------------------------
# Every method run with the same ``seed`` starts from the same pool and initial labelled set, so
# the curves differ by the query strategy alone. The sizes are tiny (a 600-image pool, 30 + 4 x
# 20 labels, 2 repeats, a width-8 ResNet18): the curves show the mechanics, not which strategy
# wins (``benchmarks/`` has the real protocols). ``min_steps`` gives the small labelled sets of
# the first rounds more epochs (here at least 60 gradient steps per round).
import os
import tempfile

import matplotlib.pyplot as plt

from skal.experiment import ExperimentConfig, compare_runs, run_experiment

runs = tempfile.mkdtemp(prefix="skal-example-")
results = {}
for method in ("random", "entropy", "bald"):
    config = ExperimentConfig(dataset="digits", method=method, pool_size=600, test_size=300,
                              n_initial=30, query_size=20, n_rounds=4, repeats=2, width=8,
                              max_epochs=10, min_steps=60, batch_size=16, seed=0)
    results[method] = run_experiment(config, os.path.join(runs, method), progress=False)
    print(method, {n: round(a, 3) for n, a in results[method].mean_accuracy().items()})

# %%
# The result rows
# ---------------
# One row per repeat and round: the labels so far, the test accuracy, timings and the device.
row = results["bald"].rows[-1]
print({key: row[key] for key in ("repeat", "round", "n_labeled", "accuracy", "device")})

# %%
# The curves
# ----------
# ``compare_runs`` writes the PNG ``skal compare`` writes (mean over repeats, shaded min-max).
png = compare_runs([os.path.join(runs, m) for m in results], os.path.join(runs, "compare.png"))
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.imshow(plt.imread(os.path.join(runs, "compare.png")))
ax.set_axis_off()
fig.tight_layout()
