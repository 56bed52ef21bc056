"""Simulated-oracle active-learning experiments: rounds, checkpoints, results and plots.

One experiment runs one query method on one data set for ``repeats`` independent repeats. Each
repeat starts from ``n_initial`` random labelled pool samples and does ``n_rounds`` acquisition
rounds of ``query_size`` samples; the oracle is the data set's true labels. Every round the model
is trained (from scratch by default), scored on the test set and asked for the next batch.

Everything random is a pure function of ``(seed, repeat, round, purpose)`` (see
:mod:`skal.experiment.runner`). That is what makes a run resumable: ``state.json`` stores the
labelled pool indices (in acquisition order) and their labels, the number of rounds done and the
results so far, and is replaced atomically after every round. Running the same experiment again
in the same folder skips what is done, retrains the model of the next round from its seed and
continues, so an interrupted run ends with exactly the labelled set of an uninterrupted one (on
CPU, where torch is deterministic for a given thread count and machine: the count is recorded
and a resume with another one is refused; the machines are recorded too, see
:func:`machine_info`). More rounds or repeats extend a finished run; the device may
change between runs. With ``warm_start=True`` the model carries over between rounds in memory
only; after a resume it restarts from scratch, so the rest of that run differs from an
uninterrupted one.

The package has seven parts: :mod:`~skal.experiment.config` (the configuration, no torch),
:mod:`~skal.experiment.data` (the train split, test set, pools and initial labels:
:func:`load_experiment_data`), :mod:`~skal.experiment.methods` (the registry),
:mod:`~skal.experiment.runner` (the loop), :mod:`~skal.experiment.callbacks` (the hooks of a
run: :class:`RunCallback`), :mod:`~skal.experiment.storage` (files, lock, checkpoint checks) and
:mod:`~skal.experiment.plots`. Methods live in :data:`METHODS`; add one with
:func:`register_method` (see :class:`Method`). The names that need torch are imported on first
use, so ``from skal.experiment import ExperimentConfig`` stays light.
"""

import importlib

from .config import ExperimentConfig, derive_seed

__all__ = [
    "ExperimentConfig",
    "ExperimentData",
    "ExperimentResult",
    "METHODS",
    "Method",
    "RoundContext",
    "RunCallback",
    "compare_runs",
    "derive_seed",
    "labels_saved",
    "load_experiment_data",
    "load_run",
    "machine_info",
    "make_bgadl",
    "make_random_gen",
    "make_resnet18",
    "make_waal",
    "plot_learning_curves",
    "register_method",
    "run_experiment",
]

# name -> submodule, for the names imported on first use (PEP 562)
_LAZY = {
    "METHODS": "methods",
    "Method": "methods",
    "make_bgadl": "methods",
    "make_random_gen": "methods",
    "make_resnet18": "methods",
    "make_waal": "methods",
    "register_method": "methods",
    "run_experiment": "runner",
    "ExperimentData": "data",
    "load_experiment_data": "data",
    "RoundContext": "callbacks",
    "RunCallback": "callbacks",
    "ExperimentResult": "storage",
    "load_run": "storage",
    "machine_info": "storage",
    "CONFIG_FILE": "storage",
    "STATE_FILE": "storage",
    "RESULTS_JSONL": "storage",
    "RESULTS_CSV": "storage",
    "CURVE_PNG": "storage",
    "RESULT_COLUMNS": "storage",
    "compare_runs": "plots",
    "plot_learning_curves": "plots",
    "labels_saved": "savings",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
