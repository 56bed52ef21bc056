"""skorch's training-loop hooks of skal's classifiers: batches, the step, modes, pre-flight checks.

:class:`TrainingHooksMixin` is mixed into :class:`skal.MCDropoutClassifier` (before skorch's
``NeuralNet``): every epoch visits the training set in a fresh seeded order without a batch of one
sample, ``train_transform`` augments the training batches, the modules are left in eval mode after
training, and the module's input and output shapes and the callbacks are checked before the first
epoch, with errors that say what to change.
"""

from typing import Any

import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler

from ..callbacks import DivergenceCheck
from ..utils.modes import EvalMode
from ..utils.params import Int
from ..utils.skorch_compat import add_default_callbacks, set_training
from ._precision import to_memory_format

__all__ = ["TrainingHooksMixin", "batch_bounds"]


def batch_bounds(n, batch_size):
    """``(start, stop)`` of the mini-batches over ``n`` rows, in order.

    Batches of ``batch_size``, except that a last batch of a single row joins the batch before
    it (a batch of ``batch_size + 1``): BatchNorm cannot train on one sample, and dropping the row
    would lose it for good whenever the order is fixed.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


class _FoldedBatchSampler(Sampler):
    """Batches of ``batch_size`` indices from ``sampler``, folded as in :func:`batch_bounds`."""

    def __init__(self, sampler, batch_size):
        self.sampler = sampler
        self.batch_size = int(batch_size)

    def __iter__(self):
        indices = list(self.sampler)  # one epoch's order (a fresh permutation when shuffling)
        for start, stop in batch_bounds(len(indices), self.batch_size):
            yield indices[start:stop]

    def __len__(self):
        return len(batch_bounds(len(self.sampler), self.batch_size))


def _has_batchnorm(module):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class TrainingHooksMixin:
    """skorch's training hooks as skal's classifiers need them (see the module docstring)."""

    def _bad_param(self, param, expected, value):
        raise ValueError(
            f"The '{param}' parameter of {type(self).__name__} must be {expected}. "
            f"Got {value!r} instead."
        )

    def _divergence_hint(self):
        return f"Lower lr (now {self.lr!r})"

    def initialize_callbacks(self) -> "TrainingHooksMixin":
        """Initialise the callbacks; refuse one that monitors a missing validation score.

        Without a ``train_split`` there is no validation score, and skorch would fail with a
        ``KeyError`` after the first epoch; this fails before training, with what to change.

        Returns
        -------
        self : MCDropoutClassifier
            This estimator, with ``callbacks_`` set.

        Raises
        ------
        ValueError
            If a callback monitors ``valid_*`` while ``train_split`` is None.
        """
        super().initialize_callbacks()
        if self.train_split is not None:
            return self
        for name, callback in self.callbacks_:
            monitor = getattr(callback, "monitor", None)
            if isinstance(monitor, str) and monitor.startswith("valid_"):
                raise ValueError(
                    f"The callback {name!r} ({type(callback).__name__}) monitors {monitor!r}, but "
                    f"{type(self).__name__} has no validation split (train_split=None), so there "
                    "is no validation score. Pass train_split=skorch.dataset.ValidSplit(5) (or "
                    f"another split), or let the callback monitor the training loss (e.g. "
                    f"{type(callback).__name__}(monitor='train_loss'))."
                )
        return self

    def _check_module_io(self, X):
        """One forward pass on one sample: the module must take it and return ``(1, n_classes)``
        logits. Turns torch's shape errors into one that names the module and both shapes."""
        module, name = self.module_, type(self).__name__
        n_classes = len(self.classes_)
        module_name = type(module).__name__
        expected_in = ", ".join(str(d) for d in self.input_shape_)
        batch_size = self.get_params_for("iterator_train").get("batch_size", self.batch_size)
        if batch_size == 1 and _has_batchnorm(module):
            self._bad_param(
                "batch_size", f"{Int(2)} for a module with BatchNorm layers (they cannot "
                "train on a batch of one sample)", batch_size,
            )
        x = torch.as_tensor(X[:1], device=self._compute_device())  # (1,) + input_shape_
        x = to_memory_format(x, self.memory_format)
        try:  # as training will run it: same device, precision and memory format
            with EvalMode(module), torch.no_grad(), torch.random.fork_rng(devices=[]), \
                    self._autocast():
                out = module(x)
        except RuntimeError as exc:
            raise ValueError(
                f"The module of {name} ({module_name}) cannot take the training data: a forward "
                f"pass on one sample of shape {tuple(x.shape)} failed with: {exc}. The module "
                f"must take input of shape (n, {expected_in}) and return logits of shape "
                f"(n, {n_classes})."
            ) from None
        if isinstance(out, (tuple, list)) and len(out):  # skorch modules may return (logits, ...)
            out = out[0]
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        if shape != (1, n_classes):
            raise ValueError(
                f"The module of {name} ({module_name}) returns output of shape {shape} for one "
                f"sample of shape {tuple(x.shape)}; expected logits of shape (1, {n_classes}): "
                f"one per class, and y has {n_classes} classes."
            )

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return skorch's ``DataLoader``, with shuffled training batches and no batch of one.

        Training batches come in a fresh random order every epoch (``iterator_train__shuffle``
        defaults to True here; it is False in skorch) drawn from the seeded ``random_state``
        stream, and a last batch of one sample joins the one before (see :func:`batch_bounds`).
        Prediction batches use a private ``torch.Generator``, so that ``predict_proba`` does not
        advance torch's global random state (a DataLoader draws a seed from it on every pass).
        ``iterator_train__sampler`` / ``batch_sampler`` / ``drop_last`` hand batching back to
        the user.

        Parameters
        ----------
        dataset : torch Dataset
            The data to iterate over (skorch's ``Dataset`` of the validated input).
        training : bool, default=False
            Training batches (``iterator_train``) or prediction batches (``iterator_valid``).

        Returns
        -------
        iterator : torch.utils.data.DataLoader
            The batches.
        """
        prefix, iterator = (
            ("iterator_train", self.iterator_train) if training
            else ("iterator_valid", self.iterator_valid)
        )
        if not (isinstance(iterator, type) and issubclass(iterator, DataLoader)):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for(prefix)
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(dataset)
        if not training:
            if not vars(self).get("_fitting"):  # in fit, the seeded stream of _fit_context
                kwargs.setdefault("generator", torch.Generator())
            return iterator(dataset, batch_size=batch_size, **kwargs)
        if any(key in kwargs for key in ("sampler", "batch_sampler", "drop_last")):
            kwargs.setdefault("shuffle", "sampler" not in kwargs and "batch_sampler" not in kwargs)
            if "batch_sampler" not in kwargs:
                kwargs["batch_size"] = batch_size
            return iterator(dataset, **kwargs)
        if kwargs.pop("shuffle", True):
            sampler = RandomSampler(dataset, generator=kwargs.get("generator"))
        else:
            sampler = SequentialSampler(dataset)
        return iterator(dataset, batch_sampler=_FoldedBatchSampler(sampler, batch_size), **kwargs)

    def _augment(self, X):
        """``train_transform`` applied to each sample of a training batch ``(B, C, H, W)``."""
        if self.train_transform is None:
            return X
        out = torch.stack([torch.as_tensor(self.train_transform(x)) for x in X])  # (B, C, H, W)
        if out.shape != X.shape:
            raise ValueError(
                f"The 'train_transform' parameter of {type(self).__name__} changed the shape of "
                f"a training batch from {tuple(X.shape)} to {tuple(out.shape)}; it must keep the "
                "shape (scoring sees the images untransformed). Resize the data instead."
            )
        return out.to(dtype=X.dtype, device=X.device)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run skorch's training step on a batch whose images went through ``train_transform``.

        Parameters
        ----------
        batch : tuple of (X, y) tensors
            One training mini-batch.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The result of skorch's step: the ``loss`` and ``y_pred`` of the batch.
        """
        if self.train_transform is not None:
            Xi, yi = unpack_data(batch)
            batch = (self._augment(to_tensor(Xi, self.device)), yi)
        return super().train_step_single(batch, **fit_params)

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run skorch's training step, with a clear error for a BatchNorm batch of one.

        Parameters
        ----------
        batch : tuple of (X, y) tensors
            One training mini-batch.
        **fit_params
            Passed on to skorch's ``train_step``.

        Returns
        -------
        step : dict
            The result of skorch's step: the ``loss`` and ``y_pred`` of the batch.

        Raises
        ------
        ValueError
            If the module has BatchNorm layers and the batch holds one sample.
        """
        try:
            return super().train_step(batch, **fit_params)
        except ValueError as exc:
            if "Expected more than 1 value per channel" not in str(exc):
                raise
            raise ValueError(
                f"{type(self).__name__} cannot train on a batch of one sample: its module has "
                "BatchNorm layers, which need at least 2 samples per training batch. Use "
                "batch_size >= 2 and at least 2 training samples."
            ) from exc

    def on_train_end(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Leave every module in eval mode (skorch leaves it in train mode after training).

        Parameters
        ----------
        net : MCDropoutClassifier
            This estimator (skorch's callback protocol).
        X : array-like, default=None
            The training samples.
        y : array-like, default=None
            The training labels.
        **kwargs
            Other arguments of skorch's ``on_train_end``.
        """
        super().on_train_end(net, X=X, y=y, **kwargs)
        set_training(self, False)

    @property
    def _default_callbacks(self):
        # after the scoring callbacks (it reads train_loss), before print_log
        return add_default_callbacks(super()._default_callbacks,
                                     [("divergence", DivergenceCheck())])
