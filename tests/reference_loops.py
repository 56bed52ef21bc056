"""Tiny `skal run` experiments and `skal label` rounds whose outputs are committed, so that a
refactor of the active-learning loop can prove them unchanged (``test_reference_loops.py``).

``python tests/reference_loops.py`` (from the repository root, ``OMP_NUM_THREADS=1``) writes
``tests/fixtures/reference_loops/``: per run, its ``results.jsonl`` without the wall-clock columns and
its labelled pool indices in acquisition order; per labelling round, the batch it picked (image
ids, scores, guesses, confidences). ``machine.json`` records the torch build and CPU kernels:
the same seed gives other weights with other kernels, so the files are compared on such a
machine only.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "fixtures", "reference_loops")

#: wall-clock columns of results.jsonl (never reproducible)
TIMINGS = ("fit_seconds", "query_seconds")

_TINY = dict(dataset="digits", n_initial=20, query_size=10, n_rounds=2, repeats=1,
             pool_size=120, test_size=60, width=2, max_epochs=1, batch_size=32,
             n_mc_samples=4)

#: name -> ExperimentConfig fields: every path of the loop (plain strategy, MC dropout, WAAL's
#: unlabelled pool, BGADL's joint training, a learner-wrapped method, FixMatch, an encoder,
#: warm start)
RUNS = {
    "random": dict(_TINY, method="random"),
    "bald": dict(_TINY, method="bald", subsample=60),
    "waal": dict(_TINY, method="waal", lr=0.01),
    "bgadl": dict(_TINY, method="bgadl"),
    "random_gen": dict(_TINY, method="random_gen"),
    "coreset": dict(_TINY, method="coreset"),
    "badge": dict(_TINY, method="badge"),
    "margin_fixmatch": dict(_TINY, method="margin", recipe="scratch+fixmatch"),
    "ssl_head": dict(_TINY, recipe="ssl-head", encoder_width=2, encoder_epochs=1,
                     encoder_batch_size=64),
    "ssl_finetune": dict(_TINY, recipe="ssl-finetune", encoder_width=2, encoder_epochs=1,
                         encoder_batch_size=64),
    "bald_warm": dict(_TINY, method="bald", warm_start=True, min_steps=3),
}

#: name -> project settings of a round after the first (random) batch
ROUNDS = {
    "bald": dict(strategy="bald"),
    "waal": dict(strategy="waal_uncertainty_diversity"),
    "badge": dict(strategy="badge"),
    "coreset": dict(strategy="coreset"),
    "margin_fixmatch": dict(strategy="margin_sampling", recipe="scratch+fixmatch"),
    "ssl_head": dict(strategy="margin_sampling", recipe="ssl-head", encoder_epochs=1,
                     encoder_width=2),
    "ssl_finetune": dict(strategy="entropy_sampling", recipe="ssl-finetune", encoder_epochs=1,
                         encoder_width=2),
}
_LABEL_TINY = dict(batch_size=6, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.25,
                   seed=3)


def machine():
    """What the outputs depend on beyond the code: torch's build and its CPU kernels."""
    import torch

    return {"torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def run_lines(config, out_dir):
    """``(results, labeled)``: the run's results.jsonl without timings, and its labels."""
    from skal.experiment import run_experiment

    run_experiment(config, out_dir, progress=False)
    return _run_files(out_dir)


def _run_files(out_dir):
    with open(os.path.join(out_dir, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    results = "".join(json.dumps({k: v for k, v in row.items() if k not in TIMINGS}) + "\n"
                      for row in rows)
    with open(os.path.join(out_dir, "state.json")) as f:
        state = json.load(f)
    labeled = "".join(json.dumps(r["labeled"]) + "\n" for r in state["repeats"])
    return results, labeled


def label_round(settings, folder):
    """The batch a labelling project's second round picks: one JSON line per image."""
    sys.path.insert(0, HERE)
    from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs

    from skal.labeling import Project

    images = os.path.join(folder, "png")
    write_digit_pngs(images, 50, size=8)
    project = Project.init(os.path.join(folder, "project"), images, DIGIT_CLASSES,
                           **dict(_LABEL_TINY, **settings))
    try:
        for item in project.next_batch():  # round 1's random batch
            project.label(item.image_id, true_label(item.path), annotator="me")
        project.train_and_query()
        return "".join(
            json.dumps({"image_id": b.image_id, "path": b.path, "score": b.score,
                        "guess": b.guess, "confidence": b.confidence}) + "\n"
            for b in project.next_batch())
    finally:
        project.close()


def write_reference(folder):
    """Run every reference run and round in ``folder`` and write their outputs to the tests'
    data folder."""
    os.makedirs(REFERENCE, exist_ok=True)
    for name, config in RUNS.items():
        results, labeled = run_lines(config, os.path.join(folder, "run-" + name))
        _write(f"run-{name}.results.jsonl", results)
        _write(f"run-{name}.labeled.jsonl", labeled)
    for name, settings in ROUNDS.items():
        _write(f"label-{name}.batch.jsonl", label_round(settings, os.path.join(folder, name)))
    _write("machine.json", json.dumps(machine(), indent=1) + "\n")


def _write(name, text):
    with open(os.path.join(REFERENCE, name), "w") as f:
        f.write(text)


if __name__ == "__main__":
    import tempfile
    import warnings

    import torch

    torch.set_num_threads(1)  # as conftest.py pins it
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        write_reference(tmp)
