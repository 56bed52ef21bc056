"""Everything skal assumes about skorch's internals, in one file.

skal's estimators are skorch nets that also obey scikit-learn's rules, and a few of those rules
need skorch's private behaviour: what its ``__init__`` sets, how ``__setattr__`` registers torch
components, which attributes ``_get_param_names`` lists, how ``set_params`` treats an optimizer's
parameters, and where the training data sit in the dataset its fit loop hands to
``get_iterator``. Each assumption is used here and nowhere else, and ``tests/test_skorch_compat.py``
pins each one against the installed skorch, so a skorch release that changes one breaks this file
and its test, loudly, instead of every estimator quietly.
"""

from types import MappingProxyType
from typing import Any

import numpy as np
import torch

__all__ = [
    "SkorchParamsMixin",
    "add_default_callbacks",
    "dataset_arrays",
    "full_length",
    "keep_virtual_params",
    "module_names",
    "predict_nonlinearity",
    "set_training",
]

#: What skorch's ``NeuralNet.__init__`` sets besides the parameters. scikit-learn's rule is that
#: ``__init__`` stores parameters only, so :class:`SkorchParamsMixin` removes them there and keeps
#: read-only class-level defaults instead; ``fit`` sets the real ones.
SKORCH_INIT_STATE = {
    "history_": None,
    "initialized_": False,
    "virtual_params_": MappingProxyType({}),
}


class SkorchParamsMixin:
    """scikit-learn's parameter rules for a skorch net (mix in before ``NeuralNet``).

    * ``__init__`` leaves only parameters on the instance (call :meth:`_drop_init_state` at the
      end of the subclass's ``__init__``): skorch's ``history_``, ``initialized_`` and
      ``virtual_params_`` become class-level defaults.
    * Parameters are plain attributes: a parameter may be a torch module *instance* (``module``,
      ``features``), which skorch's ``__setattr__`` would register as a fitted component once
      ``initialized_`` exists (here: always, at class level).
    * ``get_params`` lists parameters only: skorch lists every attribute not ending in ``_``,
      private bookkeeping included; a subclass that builds its own network sets
      ``_fixed_module = True`` so that ``module`` is not a parameter either.
    * ``set_params(optimizer__momentum=...)`` on a fitted net is kept as a parameter: skorch
      applies an optimizer's parameters to the live optimizer without storing them, so
      ``get_params`` and ``clone`` would lose them.
    """

    history_ = SKORCH_INIT_STATE["history_"]
    initialized_ = SKORCH_INIT_STATE["initialized_"]
    virtual_params_ = SKORCH_INIT_STATE["virtual_params_"]

    _fixed_module = False

    def _drop_init_state(self):
        for attr in SKORCH_INIT_STATE:
            vars(self).pop(attr, None)

    def __setattr__(self, name, value):
        if not name.endswith("_") and not name.startswith("_") and "__" not in name:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _get_param_names(self):
        return [
            name for name in super()._get_param_names()
            if not name.startswith("_") and not (self._fixed_module and name == "module")
        ]

    def set_params(self, **params: Any) -> Any:
        """Set parameters, keeping a fitted net's ``*optimizer__*`` ones as parameters too.

        Parameters
        ----------
        **params : dict
            Estimator parameters, skorch's ``module__*``, ``optimizer__*``, ``callbacks__*``
            and the like included.

        Returns
        -------
        self : estimator
            This estimator.
        """
        super().set_params(**params)
        keep_virtual_params(self, params)
        return self


def keep_virtual_params(net, params):
    """Store the optimizer parameters (``optimizer__*``, ``critic_optimizer__*``, ...) of a
    ``set_params`` call on ``net`` when skorch applied them to a live optimizer only.

    skorch registers them as "virtual" parameters of an initialised net (``virtual_params_``):
    ``set_params`` then changes the optimizer's ``param_groups`` and stores nothing, except for
    ``lr``, which it sets on the net itself.
    """
    for key, value in params.items():
        if key != "lr" and "__" in key and net._is_virtual_param(key):
            setattr(net, key, value)


def dataset_arrays(dataset, owner):
    """``(X, y, rows)`` of the training dataset skorch's fit loop passes to ``get_iterator``.

    skorch wraps ``fit``'s arrays in a ``skorch.dataset.Dataset`` (attributes ``X`` and ``y``) and
    a ``train_split`` returns ``torch.utils.data.Subset`` s of it; ``rows`` are the indices a
    split kept (None without a split).

    Raises
    ------
    TypeError
        For any other dataset (a custom ``dataset`` or ``train_split``), naming ``owner``.
    """
    rows = None
    if isinstance(dataset, torch.utils.data.Subset):
        rows = np.asarray(dataset.indices)
        dataset = dataset.dataset
    X, y = getattr(dataset, "X", None), getattr(dataset, "y", None)
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            f"{owner} trains from numpy arrays; got a training dataset of type "
            f"{type(dataset).__name__} (a custom 'dataset' or 'train_split' is not supported)."
        )
    if rows is not None:
        X, y = X[rows], y[rows]
    return X, y, rows


def full_length(dataset):
    """The number of rows of the data behind skorch's training dataset (before any split)."""
    if isinstance(dataset, torch.utils.data.Subset):
        return len(dataset.dataset)
    return len(dataset)


def add_default_callbacks(callbacks, extra):
    """skorch's default callbacks (``net._default_callbacks``, a list of ``(name, callback)``)
    with ``extra`` inserted before ``print_log``, which must stay last to print the epoch's
    scores (skal's own default callbacks record some of them)."""
    callbacks = list(callbacks)
    names = [name for name, _ in callbacks]
    at = names.index("print_log") if "print_log" in names else len(callbacks)
    return callbacks[:at] + list(extra) + callbacks[at:]


def set_training(net, training):
    """Train or eval mode for every module the net registered (skorch's ``_set_training``)."""
    net._set_training(training)


def module_names(net):
    """The names of the torch modules a net registered (``"module"``, ``"critic"``, ...)."""
    return list(getattr(net, "_modules", ["module"]))


def predict_nonlinearity(net):
    """The callable ``predict_proba`` applies to the module's output (skorch resolves
    ``predict_nonlinearity="auto"`` from the criterion)."""
    return net._get_predict_nonlinearity()
