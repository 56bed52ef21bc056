"""MC-dropout classifiers: skorch ``NeuralNetClassifier`` subclasses that obey scikit-learn.

skorch alone does not validate input, returns column indices from ``predict`` and fails on float64
or int32 data (docs/ecosystem.md, 'skorch's classifier: what it does not check'). The classes here
add the scikit-learn contract on top of skorch:
validation with clear errors, any label type through ``classes_``, ``n_features_in_``, image layouts,
``random_state`` and :meth:`MCDropoutClassifier.sample_proba` for MC dropout.
"""

import contextlib
import copy
import inspect
import math
import numbers
import warnings
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import is_dataset, to_tensor
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler

from ._pool import Pool, as_pool, is_lazy_pool
from ._precision import PrecisionMixin, as_float32, to_memory_format
from ._sources import images_and_labels, is_image_source
from ._typing import ArrayLike, RandomStateLike
from ._validation import (
    check_device,
    check_image_shape,
    resolve_seed,
    torch_rng,
    validate_images,
    validate_labels,
)
from .exceptions import DivergenceError
from .nets.resnet import PreActResNet18, ResNet18

__all__ = ["MCDropoutClassifier", "ResNet18Classifier", "DivergenceCheck"]

# Attributes skorch's __init__ sets; scikit-learn's rule is that __init__ stores parameters only,
# so skal moves them to class-level defaults (read-only where mutable) and sets them in fit.
_SKORCH_INIT_STATE = {
    "history_": None,
    "initialized_": False,
    "virtual_params_": MappingProxyType({}),
}


def _dropout_modules(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def _has_batchnorm(module):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


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


class DivergenceCheck(Callback):
    """Stop training with :class:`skal.exceptions.DivergenceError` when it diverges.

    Every skal classifier has one as its default callback ``divergence``. Training has diverged
    when a training batch's loss is NaN or infinite, when an epoch's mean training loss exceeds
    ``factor`` times the larger of the fit's first batch loss and ``log(n_classes)`` (the
    cross-entropy of a uniform guess), or when a weight became NaN or infinite. The error names the
    estimator and the parameter to lower. ``callbacks__divergence=None`` turns the check off.

    Parameters
    ----------
    factor : float, default=100
        How many times the reference loss an epoch's mean loss may reach. Measured on 300 digits
        (6 epochs), the epoch means of healthy runs stayed below their first batch loss; a
        ResNet18 with Adam at lr=10 reached 420 times it (epoch mean 1,215, chance accuracy),
        at lr=1e3 3.5 million times.
    """

    def __init__(self, factor=100.0):
        self.factor = factor

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.first_loss_ = None

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if not training or loss is None:
            return
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            raise DivergenceError(_diverged(net, f"the loss of a training batch is {value}"))
        if self.first_loss_ is None:
            self.first_loss_ = value

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        loss = row.get("train_loss")
        if loss is not None and self.first_loss_ is not None:
            n_classes = len(getattr(net, "classes_", ())) or 2
            reference = max(self.first_loss_, math.log(max(n_classes, 2)))
            if not loss <= self.factor * reference:
                raise DivergenceError(_diverged(
                    net,
                    f"the mean training loss of epoch {row['epoch']} is {loss:.4g}, more than "
                    f"{self.factor:g} times the reference {reference:.4g} (the first batch's "
                    f"loss or log(n_classes), whichever is larger)",
                ))
        for name in getattr(net, "_modules", ["module"]):
            module = getattr(net, name + "_", None)
            if not isinstance(module, nn.Module):
                continue
            if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                raise DivergenceError(_diverged(
                    net, f"the weights of {name}_ became NaN or infinite (epoch {row['epoch']})"
                ))


def _diverged(net, what):
    hint = getattr(net, "_divergence_hint", None)
    hint = hint() if callable(hint) else f"Lower lr (now {getattr(net, 'lr', None)!r})"
    return f"{type(net).__name__} training diverged: {what}. {hint}, or check the input scale."


def _dropout_free_features(module, dropouts, x_probe, device):
    """Whether ``module.features`` runs no dropout layer (so features may be reused across MC
    passes). Probed on one sample with forward hooks, on a forked RNG so no randomness is used up.
    """
    fired = []
    hooks = [m.register_forward_hook(lambda *_: fired.append(1)) for m in dropouts]
    try:
        with torch.random.fork_rng(devices=[]):
            module.features(torch.as_tensor(x_probe, device=device))
    finally:
        for h in hooks:
            h.remove()
    return not fired


class MCDropoutClassifier(PrecisionMixin, NeuralNetClassifier):
    """A skorch classifier with scikit-learn validation and Monte-Carlo dropout sampling.

    Wraps any torch module that returns logits: ``fit`` validates the data and the parameters,
    encodes labels of any type, seeds everything from ``random_state``, and
    :meth:`sample_proba` draws MC-dropout probabilities for BALD-style strategies.

    Parameters
    ----------
    module : torch module class or instance
        The network; it returns logits of shape ``(n, n_classes)``. A class (or factory) is
        built in ``fit`` and receives whichever of ``n_classes``, ``in_features``,
        ``in_channels`` and ``image_shape`` it accepts, derived from the data (``module__*``
        parameters take precedence). An instance is copied at every ``fit``, so refitting
        starts again from its initial weights. If it has ``features(x)`` and
        ``head(z)`` methods and all its dropout sits in ``head``, :meth:`sample_proba` computes the
        features once and samples only the head.
    criterion : torch criterion, default=torch.nn.CrossEntropyLoss
        The training loss, on logits (skorch's ``criterion``).
    optimizer : torch optimizer class, default=torch.optim.SGD
        Built in ``fit`` on the module's parameters; ``optimizer__*`` parameters reach it.
    lr : float, default=0.01
        Learning rate.
    max_epochs : int, default=10
        Passes over the training data per ``fit``.
    batch_size : int, default=128
        Samples per mini-batch (``-1``: one batch); training and prediction.
    train_split : callable or None, default=None
        No validation split by default: active-learning labelled sets are small. Pass
        ``skorch.dataset.ValidSplit(5)`` to hold some out (e.g. for ``EarlyStopping``).
    image_shape : tuple (C, H, W) or None, default=None
        Shape to reshape flat ``(n, C*H*W)`` input to; one entry may be -1. Without it, flat input
        goes to the module as it is and 3-D / 4-D input is taken as images.
    train_transform : callable or None, default=None
        Training-time augmentation, e.g. ``torchvision.transforms.v2.Compose([v2.RandomCrop(28,
        padding=2), v2.RandomHorizontalFlip()])``: called on every training sample, a float
        tensor ``(C, H, W)`` in [0, 1] for uint8 input, with fresh random parameters each time
        (drawn from the seeded ``random_state`` stream). Never applied when scoring
        (``predict_proba``, ``sample_proba``, validation batches). It must keep the shape. It is
        not called ``transform`` because scikit-learn takes an estimator with that attribute for a
        transformer.
    random_state : None, int, RandomState or Generator, default=None
        Seeds weight initialisation, shuffling and dropout in ``fit`` (reproducible on CPU) and the
        dropout masks of :meth:`sample_proba`.
    mixed_precision : {None, "bf16", "fp16"}, default=None
        Run forward passes (training and scoring) under ``torch.autocast`` in this dtype, on the
        estimator's ``device`` (``"cuda"`` is where it pays off); outputs and losses stay float32,
        fp16 training scales the loss (``torch.amp.GradScaler``). None: float32.
    memory_format : {"contiguous", "channels_last"}, default="contiguous"
        Memory format of the network's weights and 4-D inputs; ``"channels_last"`` speeds up
        convolutions on GPUs (this is about memory strides, not the layout of ``X``).
    verbose : int, default=0
        Verbosity of skorch's per-epoch log; 0 prints nothing.
    **kwargs
        Any other skorch parameter (``callbacks``, ``device``, ``module__*``, ``optimizer__*``,
        ``iterator_train__*``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``; ``predict`` returns values from it.
    n_features_in_ : int
        Number of input values per sample (``C*H*W`` for images).
    input_shape_ : tuple
        Per-sample shape the module receives, e.g. ``(1, 28, 28)``.
    module_ : torch.nn.Module
        The trained network, in eval mode.

    See Also
    --------
    ResNet18Classifier : The same with a ResNet18 built from the data.
    skal.WAALClassifier : Trains on unlabelled data too (WAAL).
    skal.BGADLMCDropoutClassifier : Trains jointly with a VAE-ACGAN (BGADL).

    Notes
    -----
    Training differs from a plain skorch net in a few ways that keep it correct on the small,
    acquisition-ordered labelled sets of active learning:

    - **Shuffling.** Every epoch visits the training set in a fresh random order, drawn from the
      seeded ``random_state`` stream (``iterator_train__shuffle=False`` keeps the given order).
    - **No batch of one.** When the last batch would hold a single sample (65 samples in batches
      of 64), that sample joins the batch before it, which then holds ``batch_size + 1``:
      BatchNorm cannot train on one sample, and dropping it instead would lose a sample for good
      whenever the order is fixed. Every sample is used in every epoch.
    - **Eval mode after fit.** ``module_`` is left in eval mode after ``fit`` / ``partial_fit``,
      so calling ``module_(x)`` directly (as modAL's ``mc_dropout_bald`` does) neither uses batch
      statistics nor changes BatchNorm's running statistics.
    - **Divergence.** A default callback ``divergence`` (:class:`DivergenceCheck`) raises
      :class:`skal.exceptions.DivergenceError` when the loss becomes non-finite or explodes.
    - **Checks at fit.** Parameters, the device, callbacks that monitor a validation score without
      ``train_split``, and the module's input and output shapes (one forward pass on one sample)
      are checked before training, with errors that say what to change.
    - **Global RNG.** ``fit``, ``predict_proba`` and :meth:`sample_proba` leave torch's global
      random state as they found it.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from skal import MCDropoutClassifier
    >>> X = np.random.default_rng(0).random((40, 4)).astype("float32")
    >>> y = np.array(["a", "b"] * 20)
    >>> mlp = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    >>> clf = MCDropoutClassifier(mlp, max_epochs=2, random_state=0).fit(X, y)
    >>> clf.sample_proba(X[:3], n_samples=5).shape
    (5, 3, 2)
    """

    def __init__(
        self,
        module: type[nn.Module] | Callable[..., nn.Module] | nn.Module,
        *,
        criterion: Any = nn.CrossEntropyLoss,
        optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
        lr: float = 0.01,
        max_epochs: int = 10,
        batch_size: int = 128,
        train_split: Callable[..., Any] | None = None,
        image_shape: tuple[int, ...] | None = None,
        train_transform: Callable[[Any], Any] | None = None,
        random_state: RandomStateLike = None,
        mixed_precision: str | None = None,
        memory_format: str = "contiguous",
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            **kwargs,
        )
        self.image_shape = image_shape
        self.train_transform = train_transform
        self.random_state = random_state
        self.mixed_precision = mixed_precision
        self.memory_format = memory_format
        for attr in _SKORCH_INIT_STATE:
            vars(self).pop(attr, None)

    # class-level defaults for the state skorch expects to exist before fit
    history_ = None
    initialized_ = False
    virtual_params_ = _SKORCH_INIT_STATE["virtual_params_"]

    _flat_ok = True

    def __setattr__(self, name, value):
        # Parameters such as ``module`` may be torch module *instances*; skorch would try to
        # register them as fitted components (its first-init test relies on ``initialized_``,
        # which skal keeps at class level), so parameters are plain attributes here.
        if not name.endswith("_") and not name.startswith("_") and "__" not in name:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # subclasses that build their own network set this: ``module`` is then not a parameter
    # (clone must not pass it back to a constructor that does not take it)
    _fixed_module = False

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", private bookkeeping included
        return [
            name for name in super()._get_param_names()
            if not name.startswith("_") and not (self._fixed_module and name == "module")
        ]

    def initialize_module(self) -> "MCDropoutClassifier":
        """Build the module; a module *class* gets data-derived arguments it accepts.

        ``n_classes``, ``in_features`` (values per sample), ``in_channels`` and ``image_shape``
        (for image input) are filled in from the training data unless set as ``module__*``.

        Returns
        -------
        self : MCDropoutClassifier
            This estimator, with ``module_`` set.
        """
        kwargs = self.get_params_for("module")
        if callable(self.module) and not isinstance(self.module, nn.Module):
            self._require_data_description()
            try:
                accepted = inspect.signature(self.module).parameters
            except (TypeError, ValueError):
                accepted = {}
            derived = {"n_classes": len(self.classes_), "in_features": self.n_features_in_}
            if len(self.input_shape_) == 3:
                derived.update(in_channels=self.input_shape_[0], image_shape=self.input_shape_)
            for key, value in derived.items():
                if key in accepted and key not in kwargs:
                    kwargs[key] = value
        if isinstance(self.module, nn.Module) and not kwargs:
            # a copy, so every fit starts from the given weights and the user's module is
            # never trained in place (skorch would keep training the same instance)
            self.module_ = copy.deepcopy(self.module)
        else:
            self.module_ = self.initialized_instance(self.module, kwargs)
        if not isinstance(self.module_, nn.Module):
            raise TypeError(
                f"The 'module' parameter of {type(self).__name__} must be a torch.nn.Module "
                f"instance or a class (or factory) that builds one; {self.module!r} built a "
                f"{type(self.module_).__name__}."
            )
        return self

    # ------------------------------------------------------------------ validation
    def _validate_X(self, X, reset):
        return validate_images(
            self, X, reset=reset, image_shape=self.image_shape, flat_ok=self._flat_ok
        )

    @property
    def classes_(self) -> np.ndarray:
        try:
            return self.label_encoder_.classes_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'classes_' before it is fitted."
            ) from None

    def _encode(self, X, y, reset):
        y = validate_labels(self, X, y, min_classes=2 if reset else 1)
        if reset:
            self.label_encoder_ = LabelEncoder().fit(
                y if self.classes is None else np.asarray(self.classes)
            )
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} not among the classes this "
                f"{type(self).__name__} was fitted with: {self.classes_.tolist()}."
            )
        return self.label_encoder_.transform(y).astype(np.int64)

    def _fit_seed(self, continued):
        seed = resolve_seed(self.random_state, owner=type(self).__name__)
        if continued and self.history_ is not None:
            # continued training draws fresh (but reproducible) randomness after earlier epochs
            seed = (seed + len(self.history_)) % (2**31 - 1)
        return seed

    # ------------------------------------------------------------------ checks
    def _bad_param(self, param, expected, value):
        raise ValueError(
            f"The '{param}' parameter of {type(self).__name__} must be {expected}. "
            f"Got {value!r} instead."
        )

    def _check_params(self):
        """Check the parameters skal relies on (at fit, before anything is built)."""
        if not self._fixed_module and not (
            isinstance(self.module, nn.Module) or callable(self.module)
        ):
            self._bad_param(
                "module", "a torch.nn.Module instance or a class (or factory) that builds one",
                self.module,
            )
        if not (_is_int(self.max_epochs) and self.max_epochs >= 1):
            self._bad_param("max_epochs", "an int >= 1", self.max_epochs)
        if not (_is_int(self.batch_size) and (self.batch_size >= 1 or self.batch_size == -1)):
            self._bad_param("batch_size", "an int >= 1 (or -1 for one batch)", self.batch_size)
        if not (_is_real(self.lr) and math.isfinite(self.lr) and self.lr > 0):
            self._bad_param("lr", "a finite float > 0", self.lr)
        if not callable(self.optimizer):
            self._bad_param(
                "optimizer", "a torch optimizer class such as torch.optim.SGD", self.optimizer
            )
        if not callable(self.criterion):
            self._bad_param(
                "criterion", "a torch loss class or instance such as torch.nn.CrossEntropyLoss",
                self.criterion,
            )
        if not (self.train_split is None or callable(self.train_split)):
            self._bad_param(
                "train_split", "None or a callable such as skorch.dataset.ValidSplit(5)",
                self.train_split,
            )
        if not (self.train_transform is None or callable(self.train_transform)):
            self._bad_param(
                "train_transform",
                "None or a callable such as a torchvision.transforms.v2 transform",
                self.train_transform,
            )
        check_device(self.device, type(self).__name__)

    def _divergence_hint(self):
        return f"Lower lr (now {self.lr!r})"

    def initialize_callbacks(self) -> "MCDropoutClassifier":
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
                "batch_size", "an int >= 2 for a module with BatchNorm layers (they cannot train "
                "on a batch of one sample)", batch_size,
            )
        x = torch.as_tensor(X[:1], device=self._compute_device())  # (1,) + input_shape_
        x = to_memory_format(x, self.memory_format)
        was_training = module.training
        module.eval()
        try:  # as training will run it: same device, precision and memory format
            with torch.no_grad(), torch.random.fork_rng(devices=[]), self._autocast():
                out = module(x)
        except RuntimeError as exc:
            raise ValueError(
                f"The module of {name} ({module_name}) cannot take the training data: a forward "
                f"pass on one sample of shape {tuple(x.shape)} failed with: {exc}. The module "
                f"must take input of shape (n, {expected_in}) and return logits of shape "
                f"(n, {n_classes})."
            ) from None
        finally:
            module.train(was_training)
        if isinstance(out, (tuple, list)) and len(out):  # skorch modules may return (logits, ...)
            out = out[0]
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        if shape != (1, n_classes):
            raise ValueError(
                f"The module of {name} ({module_name}) returns output of shape {shape} for one "
                f"sample of shape {tuple(x.shape)}; expected logits of shape (1, {n_classes}): "
                f"one per class, and y has {n_classes} classes."
            )

    # ------------------------------------------------------------------ training loop hooks
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
        self._set_training(False)

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        # after the scoring callbacks (it reads train_loss), before print_log
        return callbacks[:-1] + [("divergence", DivergenceCheck())] + callbacks[-1:]

    # ------------------------------------------------------------------ fitting
    @contextlib.contextmanager
    def _fit_context(self, seed):
        """Fit with torch's RNGs seeded from ``seed`` and restored afterwards (see ``torch_rng``).

        Initialisation, shuffling, dropout and the validation batches of a ``train_split`` all
        draw from that one seeded stream; outside fit, prediction batches use a private generator.
        """
        vars(self)["_fitting"] = True
        try:
            with torch_rng(seed, self._compute_device()):
                yield
        finally:
            vars(self).pop("_fitting", None)

    def fit(
        self, X: ArrayLike, y: ArrayLike | None = None, **fit_params: Any
    ) -> "MCDropoutClassifier":
        """Initialise (unless ``warm_start``) and train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), Dataset or PIL list
            Training samples; a torch ``Dataset`` or a list of PIL images works too. A
            ``Dataset`` yields images or ``(image, label)`` pairs (e.g. torchvision's
            ``ImageFolder``); all images must have one size.
        y : array-like of shape (n,), or None
            Class labels of any type scikit-learn accepts; None takes a ``Dataset``'s labels.
        **fit_params
            Passed on to skorch (and from there to the module's ``forward``).

        Returns
        -------
        self : MCDropoutClassifier
            This estimator, fitted.

        Raises
        ------
        ValueError
            For a bad parameter, bad data, a module whose input or output shape does not fit
            the data, or a callback that monitors a validation score without ``train_split``.
        skal.exceptions.DeviceError
            If ``device`` names a device this machine does not have.
        skal.exceptions.DivergenceError
            If training diverges (see :class:`DivergenceCheck`).
        """
        self._check_params()
        X, y = images_and_labels(X, y)
        reset = not (self.warm_start and self.initialized_)
        X = self._validate_X(X, reset=reset)
        y = self._encode(X, y, reset=reset)
        with self._fit_context(self._fit_seed(continued=not reset)):
            if reset:
                self.initialize()
            if not len(self.history):  # a fresh network (also one built by initialize())
                self._check_module_io(X)
            return super().partial_fit(X, y, **fit_params)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        classes: ArrayLike | None = None,
        **fit_params: Any,
    ) -> "MCDropoutClassifier":
        """Continue training on ``(X, y)`` without re-initialising the network.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), or a torch Dataset
            Training samples, in the layout of the first fit.
        y : array-like of shape (n,), or None
            Their labels, among ``classes_`` after the first call; None takes a ``Dataset``'s
            labels.
        classes : array-like of shape (n_classes,), default=None
            All classes, needed on the first call when ``y`` does not contain every class.
        **fit_params
            Passed on to skorch (and from there to the module's ``forward``).

        Returns
        -------
        self : MCDropoutClassifier
            This estimator, trained for ``max_epochs`` more epochs.
        """
        self._check_params()
        X, y = images_and_labels(X, y)
        seen = hasattr(self, "input_shape_")  # data seen, or described by image_shape
        X = self._validate_X(X, reset=not seen)
        if not hasattr(self, "label_encoder_") and classes is not None:
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
        y = self._encode(X, y, reset=not hasattr(self, "label_encoder_"))
        with self._fit_context(self._fit_seed(continued=self.initialized_)):
            if not self.initialized_:
                self.initialize()
            if not len(self.history):  # a fresh network (also one built by initialize())
                self._check_module_io(X)
            return super().partial_fit(X, y, **fit_params)

    def initialize(self) -> "MCDropoutClassifier":
        """Initialise the network, optimizer and callbacks.

        ``fit`` calls this after it has seen the data. Called before any data (as modAL's
        ``DeepActiveLearner`` does at construction), the network is built from the ``classes``
        and ``image_shape`` parameters.

        Returns
        -------
        self : MCDropoutClassifier
            This estimator, initialised (not trained).
        """
        self._check_params()
        if not hasattr(self, "input_shape_"):
            shape = check_image_shape(self.image_shape)
            if shape is not None and -1 not in shape:
                self.input_shape_ = shape
                self.n_features_in_ = int(np.prod(shape))
        if not hasattr(self, "label_encoder_") and self.classes is not None:
            self.label_encoder_ = LabelEncoder().fit(np.asarray(self.classes))
        return super().initialize()

    def _require_data_description(self):
        if not (hasattr(self, "input_shape_") and hasattr(self, "label_encoder_")):
            raise ValueError(
                f"{type(self).__name__} builds its network from the data. To initialise it "
                "before fit (as modAL's DeepActiveLearner does), pass classes=[...] and "
                "image_shape=(C, H, W)."
            )

    # ------------------------------------------------------------------ prediction
    def _check_fitted_X(self, X):
        check_is_fitted(self, ["module_", "label_encoder_"])
        return self._validate_X(X, reset=False)

    def _pool_chunks(self, X):
        """``(start, rows)`` per chunk of a pool (memmap, Dataset, Pool), rows validated.

        Chunks hold a whole number of batches, so the batches (and MC-dropout masks) are those of
        the unchunked pool.
        """
        pool = as_pool(X)
        batch = self.batch_size if self.batch_size and self.batch_size > 0 else pool.chunk_size
        pool = Pool(pool, chunk_size=max(batch, pool.chunk_size // batch * batch))
        if len(pool) == 0:  # the usual "0 sample(s)" error
            self._check_fitted_X(pool.read(0, 0))
        for start, rows in pool.chunks():
            yield start, self._check_fitted_X(rows)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Predict class probabilities from one deterministic pass (dropout off).

        ``X`` may be a pool larger than memory (``np.memmap``, torch ``Dataset``,
        :class:`skal._pool.Pool`): it is read and converted one chunk at a time.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), memmap or Dataset
            Samples, in the layout of the training data.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
            Probabilities of the classes in ``classes_`` order.
        """
        if is_lazy_pool(X):  # memmaps and user Datasets: one chunk at a time
            check_is_fitted(self, ["module_", "label_encoder_"])
            return np.concatenate(
                [super(MCDropoutClassifier, self).predict_proba(rows)
                 for _, rows in self._pool_chunks(X)]
            )
        if is_dataset(X) and not is_image_source(X):  # skorch's own scoring callbacks pass
            return super().predict_proba(X)  # validated datasets
        return super().predict_proba(self._check_fitted_X(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict labels, the most probable of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), memmap or Dataset
            Samples, in the layout of the training data.

        Returns
        -------
        y_pred : ndarray of shape (n,)
            Labels from ``classes_``.
        """
        if is_dataset(X) and not is_image_source(X):
            # internal scoring (e.g. skorch's valid_acc) compares with the encoded targets
            return super().predict_proba(X).argmax(axis=1)
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def sample_proba(
        self,
        X: ArrayLike,
        n_samples: int = 20,
        *,
        random_state: RandomStateLike = None,
        cache: bool = True,
    ) -> np.ndarray:
        """Monte-Carlo dropout: ``n_samples`` stochastic passes with only dropout active.

        BatchNorm and every other layer stay in eval mode. When the module has ``features`` and
        ``head`` and no dropout runs inside ``features``, the features are computed once per batch
        and only the head is sampled: exact, and about ``n_samples`` times cheaper.

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            A memmap or Dataset is read one chunk at a time (the output still holds
            ``n_samples * n * n_classes`` floats: :func:`skal.bald` calls this per chunk).
        n_samples : int, default=20
            Number of MC passes T.
        random_state : None, int, RandomState or Generator, default=None
            Seeds the dropout masks; ``None`` falls back to the estimator's ``random_state``.
        cache : bool, default=True
            Reuse the deterministic features across passes when the module allows it.

        Returns
        -------
        proba : ndarray of float32, shape (n_samples, n, n_classes)
            The layout of scikit-activeml's ``sample_proba``.
        """
        if is_lazy_pool(X):
            check_is_fitted(self, ["module_", "label_encoder_"])
            n_rows, chunks = len(X), self._pool_chunks(X)
        else:
            X = self._check_fitted_X(X)
            n_rows, chunks = len(X), iter([(0, X)])
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or (
            n_samples < 1
        ):
            raise ValueError(
                f"The 'n_samples' parameter of {type(self).__name__}.sample_proba must be an int "
                f">= 1. Got {n_samples!r} instead."
            )
        seed = resolve_seed(
            self.random_state if random_state is None else random_state,
            owner=f"{type(self).__name__}.sample_proba",
        )
        module = self.module_
        dropouts = _dropout_modules(module)
        if not self._n_dropout_layers():
            warnings.warn(
                f"The module of {type(self).__name__} has no dropout layer with p > 0, so the "
                f"{n_samples} passes of sample_proba are identical (no MC-dropout uncertainty).",
                UserWarning,
                stacklevel=2,
            )
        use_head = cache and callable(getattr(module, "features", None)) and callable(
            getattr(module, "head", None)
        )
        nonlin = self._get_predict_nonlinearity()
        out = np.empty((n_samples, n_rows, len(self.classes_)), dtype=np.float32)
        device = self._compute_device()
        was_training = module.training
        module.eval()
        for m in dropouts:
            m.train()
        try:
            with torch.no_grad(), torch_rng(seed, device):
                for offset, X in chunks:  # one chunk of the pool at a time
                    if use_head and offset == 0:
                        probe = to_memory_format(torch.as_tensor(X[:1], device=device),
                                                 self.memory_format)
                        with self._autocast():
                            use_head = _dropout_free_features(module, dropouts, probe, device)
                    for start in range(0, len(X), self.batch_size):
                        xb = torch.as_tensor(X[start:start + self.batch_size], device=device)
                        xb = to_memory_format(xb, self.memory_format)
                        stop = offset + start + len(xb)
                        with self._autocast():
                            if use_head:
                                z = module.features(xb)  # deterministic: once per batch
                            for t in range(n_samples):
                                logits = module.head(z) if use_head else module(xb)
                                if isinstance(logits, tuple):
                                    logits = logits[0]
                                proba = nonlin(as_float32(logits))
                                out[t, offset + start:stop] = proba.float().cpu().numpy()
        finally:
            module.train(was_training)
        return out

    def _n_dropout_layers(self):
        """How many dropout layers with p > 0 the fitted module has (MC dropout samples them)."""
        check_is_fitted(self, ["module_"])
        return sum(1 for m in _dropout_modules(self.module_) if m.p > 0)

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # tiny nets, few epochs in the common checks
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------------------ features
    def embed(
        self, X: ArrayLike, *, return_proba: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Penultimate features: the input of the network's last ``nn.Linear`` (eval mode).

        One forward pass per batch, dropout off; with ``return_proba=True`` the probabilities of
        the same pass come too (what BADGE needs). For :class:`ResNet18Classifier` the features
        are ``module_.features(x)``; for an MLP, its last hidden activation. The feature-space
        strategies (:func:`skal.badge`, :func:`skal.coreset`, :func:`skal.typiclust`) use it.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features)
            Samples, in the layout of the training data.
        return_proba : bool, default=False
            Also return the class probabilities of the same pass.

        Returns
        -------
        features : ndarray of float32, shape (n, d)
            The input of the last ``nn.Linear`` layer, per sample.
        proba : ndarray of float32, shape (n, n_classes)
            Only with ``return_proba=True``; equal to :meth:`predict_proba`.

        Raises
        ------
        TypeError
            If the module has no ``nn.Linear`` layer.
        """
        from ._embedding import penultimate_pass

        X = self._check_fitted_X(X)
        features, proba = penultimate_pass(
            self.module_, X, batch_size=self.batch_size, device=self.device,
            nonlinearity=self._get_predict_nonlinearity(), return_proba=return_proba,
            owner=type(self).__name__,
        )
        return (features, proba) if return_proba else features


class ResNet18Classifier(MCDropoutClassifier):
    """ResNet18 (or pre-activation ResNet18) with MC dropout before its last Linear layer.

    The network is built in ``fit`` from the data: input channels from the images, outputs from
    the classes. It works on 8x8, 28x28 and 32x32 images (any size, thanks to global pooling).

    Parameters
    ----------
    preact : bool, default=False
        Use the pre-activation ResNet18 ("ResNet18pa" in BGADL) instead of ResNet18.
    dropout : float, default=0.5
        Dropout probability before the last Linear layer; MC dropout samples this layer.
    width : int, default=64
        Channels of the first stage (64 is the standard ResNet18; smaller is faster on CPU).
    image_shape : tuple (C, H, W) or None, default=None
        Needed for flat ``(n, C*H*W)`` input, e.g. behind a ``MinMaxScaler`` in a ``Pipeline``.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Built in ``fit`` on the network's parameters; ``optimizer__*`` parameters reach it.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=10
        Passes over the training data per ``fit``.
    batch_size : int, default=64
        Samples per mini-batch; at least 2 (BatchNorm).
    random_state : None, int, RandomState or Generator, default=None
        Seeds weight initialisation, shuffling and dropout in ``fit`` and the dropout masks of
        ``sample_proba``.
    **kwargs
        Other :class:`MCDropoutClassifier` / skorch parameters.

    See Also
    --------
    MCDropoutClassifier : The same for any torch module.
    skal.BGADLClassifier : A ResNet18 trained jointly with a VAE-ACGAN (BGADL).

    References
    ----------
    Tran, Do, Reid, Carneiro. "Bayesian Generative Active Deep Learning." ICML 2019.
    He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition." CVPR 2016.

    Examples
    --------
    >>> from skal import ResNet18Classifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _flat_ok = False
    _fixed_module = True

    def __init__(
        self,
        preact: bool = False,
        dropout: float = 0.5,
        width: int = 64,
        *,
        image_shape: tuple[int, ...] | None = None,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        lr: float = 1e-3,
        max_epochs: int = 10,
        batch_size: int = 64,
        random_state: RandomStateLike = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ResNet18,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            image_shape=image_shape,
            random_state=random_state,
            **kwargs,
        )
        self.preact = preact
        self.dropout = dropout
        self.width = width

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.preact, (bool, np.bool_)):
            self._bad_param("preact", "a bool", self.preact)
        if not (_is_real(self.dropout) and 0 <= self.dropout < 1):
            self._bad_param("dropout", "a float in [0, 1)", self.dropout)
        if not (_is_int(self.width) and self.width >= 1):
            self._bad_param("width", "an int >= 1", self.width)
        if self.batch_size == 1:
            self._bad_param(
                "batch_size", "an int >= 2 (or -1): ResNet18 has BatchNorm layers, which cannot "
                "train on a batch of one sample", self.batch_size,
            )

    def initialize_module(self) -> "ResNet18Classifier":
        """Build the ResNet from the fitted input shape and classes.

        Returns
        -------
        self : ResNet18Classifier
            This estimator, with ``module_`` set.
        """
        self._require_data_description()
        net = PreActResNet18 if self.preact else ResNet18
        kwargs = self.get_params_for("module")
        self.module_ = net(
            in_channels=self.input_shape_[0],
            n_classes=len(self.classes_),
            width=self.width,
            dropout=self.dropout,
            **kwargs,
        )
        return self
