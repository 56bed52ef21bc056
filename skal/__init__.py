"""skal: deep active learning (BALD, BGADL, WAAL) as scikit-learn citizens.

Estimators are skorch ``NeuralNetClassifier`` subclasses that follow scikit-learn's rules; query
strategies are modAL-style callables returning ``(indices, scores)``; :class:`ActiveLearner` has
modAL's interface.

The public names are imported on first use (PEP 562), so ``import skal`` costs next to nothing and
``from skal import X`` loads only the package that defines ``X`` (``from skal import bald``
loads :mod:`skal.query`, not the estimators of :mod:`skal.estimators`). ``from skal import X`` works for
every name in ``__all__``, and ``dir(skal)`` lists them; ``benchmarks/import_time.py`` measures it.
"""

import importlib as _importlib

__version__ = "0.1.0.dev0"

# Public name -> the submodule that defines it.
_LAZY = {
    "GenerativeAugmenter": "estimators",
    "BGADLClassifier": "estimators",
    "BGADLMCDropoutClassifier": "estimators",
    "MCDropoutClassifier": "estimators",
    "ResNet18Classifier": "estimators",
    "FixMatchClassifier": "estimators",
    "EmbeddingHeadClassifier": "estimators",
    "FixMatchMCDropoutClassifier": "estimators",
    "ContrastiveEncoder": "estimators",
    "InitTrunk": "estimators",
    "init_trunk": "estimators",
    "ActiveLearner": "learner",
    "bald": "query",
    "entropy_sampling": "query",
    "margin_sampling": "query",
    "random_sampling": "query",
    "uncertainty_sampling": "query",
    "waal_uncertainty_diversity": "query",
    "WAALClassifier": "estimators",
    "badge": "query",
    "batch_bald": "query",
    "coreset": "query",
    "power_bald": "query",
    "stochastic_batch": "query",
    "typiclust": "query",
    "epig": "query",
    "probcover": "query",
    "TemperatureScaling": "calibration",
    "expected_calibration_error": "calibration",
    "AccuracyPlateau": "stopping",
    "StabilizingPredictions": "stopping",
    "forecast_accuracy": "stopping",
    "ClassTimeModel": "cost",
    "CostAwareStrategy": "cost",
    "RegressorTimeModel": "cost",
    "RECIPES": "recipe",
    "Recipe": "recipe",
    "get_recipe": "recipe",
    "make_recipe": "recipe",
}

# Submodules reachable as attributes after a bare ``import skal`` (as they were when this file
# imported them eagerly).
_SUBMODULES = frozenset({
    "calibration", "callbacks", "cost", "data", "datasets", "distributed", "estimators",
    "exceptions", "experiment", "labeling", "learner", "losses", "nets", "query", "recipe",
    "stopping", "utils",
})

__all__ = [
    "ActiveLearner",
    "ContrastiveEncoder",
    "InitTrunk",
    "init_trunk",
    "BGADLClassifier",
    "BGADLMCDropoutClassifier",
    "EmbeddingHeadClassifier",
    "FixMatchClassifier",
    "FixMatchMCDropoutClassifier",
    "GenerativeAugmenter",
    "MCDropoutClassifier",
    "ResNet18Classifier",
    "WAALClassifier",
    "bald",
    "entropy_sampling",
    "margin_sampling",
    "random_sampling",
    "uncertainty_sampling",
    "waal_uncertainty_diversity",
    "batch_bald",
    "stochastic_batch",
    "power_bald",
    "badge",
    "coreset",
    "typiclust",
    "probcover",
    "epig",
    "TemperatureScaling",
    "expected_calibration_error",
    "AccuracyPlateau",
    "StabilizingPredictions",
    "forecast_accuracy",
    "ClassTimeModel",
    "CostAwareStrategy",
    "RegressorTimeModel",
    "RECIPES",
    "Recipe",
    "get_recipe",
    "make_recipe",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
