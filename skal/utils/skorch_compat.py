"""Everything skal assumes about skorch's internals, in one file.

skal's estimators are skorch nets that also obey scikit-learn's rules, and a few of those rules
need skorch's private behaviour: what its ``__init__`` sets, how ``__setattr__`` registers torch
components, which attributes ``_get_param_names`` lists, how ``set_params`` treats an optimizer's
parameters, and where the training data sit in the dataset its fit loop hands to
``get_iterator``. Each assumption is used here and nowhere else, and ``tests/utils/test_skorch_compat.py``
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
    """Mixin: scikit-learn's parameter rules for a skorch net (list it before ``NeuralNet``).

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

    See Also
    --------
    keep_virtual_params : What ``set_params`` calls to keep the optimizer's parameters.
    skal.MCDropoutClassifier : An estimator built on it.

    Examples
    --------
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> class Net(SkorchParamsMixin, NeuralNetClassifier):
    ...     def __init__(self, module, **kwargs):
    ...         super().__init__(module, **kwargs)
    ...         self._drop_init_state()
    >>> net = Net(torch.nn.Linear(2, 2), max_epochs=1)
    >>> "history_" in vars(net), "_params_to_validate" in net.get_params()
    (False, False)
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
    """Store on ``net`` the optimizer parameters that skorch's ``set_params`` only applied.

    skorch registers an initialised net's optimizer parameters (``optimizer__*``,
    ``critic_optimizer__*``, ...) as "virtual" parameters (``virtual_params_``): ``set_params``
    then changes the live optimizer's ``param_groups`` and stores nothing, except for ``lr``,
    which it sets on the net itself. This sets each such parameter as an attribute of ``net``,
    so that ``get_params`` and ``clone`` keep it.

    Parameters
    ----------
    net : skorch net
        The net ``set_params`` was called on.
    params : dict
        The keyword arguments of that call; those that are not virtual parameters of ``net``
        (all of them, before it is initialised) are left alone.
    """
    for key, value in params.items():
        if key != "lr" and "__" in key and net._is_virtual_param(key):
            setattr(net, key, value)


def dataset_arrays(dataset, owner):
    """The arrays of the training dataset skorch's fit loop passes to ``get_iterator``.

    skorch wraps ``fit``'s arrays in a ``skorch.dataset.Dataset`` (attributes ``X`` and ``y``) and
    a ``train_split`` returns ``torch.utils.data.Subset`` s of it.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset or torch.utils.data.Subset
        The dataset, or a ``Subset`` of it; it must hold numpy arrays ``X`` and ``y``.
    owner : str
        The estimator named in the error message.

    Returns
    -------
    X : ndarray
        The training samples (only the split's rows, for a ``Subset``).
    y : ndarray
        Their labels.
    rows : ndarray of int or None
        The indices a split kept, None without a split.

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
    """The number of rows of the data behind skorch's training dataset (before any split).

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The dataset, or a ``Subset`` of it (a split).

    Returns
    -------
    n_rows : int
        The length of the dataset, or of the one a ``Subset`` takes its rows from.
    """
    if isinstance(dataset, torch.utils.data.Subset):
        return len(dataset.dataset)
    return len(dataset)


def add_default_callbacks(callbacks, extra):
    """Insert callbacks into skorch's default callbacks, before ``print_log``.

    ``print_log`` must stay last to print the epoch's scores, some of which skal's own default
    callbacks record.

    Parameters
    ----------
    callbacks : list of (str, callback)
        The default callbacks of skorch (``net._default_callbacks``).
    extra : list of (str, callback)
        The callbacks to add, in order.

    Returns
    -------
    callbacks : list of (str, callback)
        A new list: ``extra`` just before ``print_log`` (at the end without one).
    """
    callbacks = list(callbacks)
    names = [name for name, _ in callbacks]
    at = names.index("print_log") if "print_log" in names else len(callbacks)
    return callbacks[:at] + list(extra) + callbacks[at:]


def set_training(net, training):
    """Set training or eval mode on every module and criterion the net registered.

    This is skorch's ``_set_training``.

    Parameters
    ----------
    net : skorch net
        An initialised net.
    training : bool
        True for training mode, False for eval mode.
    """
    net._set_training(training)


def module_names(net):
    """The names of the torch modules a net registered (``"module"``, ``"critic"``, ...).

    Parameters
    ----------
    net : skorch net
        The net.

    Returns
    -------
    names : list of str
        The names, without the trailing ``_`` of the fitted attributes; empty before the net is
        initialised, and ``["module"]`` for an object that keeps no such list.
    """
    return list(getattr(net, "_modules", ["module"]))


def predict_nonlinearity(net):
    """The callable ``predict_proba`` applies to the module's output.

    skorch resolves ``predict_nonlinearity="auto"`` from the criterion (e.g. a softmax for
    ``CrossEntropyLoss``), and None to the identity.

    Parameters
    ----------
    net : skorch net
        An initialised net (skorch raises ``NotInitializedError`` otherwise).

    Returns
    -------
    nonlinearity : callable
        Takes the module's output tensor and returns the probabilities.
    """
    return net._get_predict_nonlinearity()
