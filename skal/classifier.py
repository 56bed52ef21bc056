"""MC-dropout classifiers: skorch ``NeuralNetClassifier`` subclasses that obey scikit-learn.

skorch alone does not validate input, returns column indices from ``predict`` and fails on float64
or int32 data (ECOSYSTEM.md 2.1). The classes here add the scikit-learn contract on top of skorch:
validation with clear errors, any label type through ``classes_``, ``n_features_in_``, image layouts,
``random_state`` and :meth:`MCDropoutClassifier.sample_proba` for MC dropout.
"""

import copy
import inspect
from types import MappingProxyType

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.utils import is_dataset
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._pool import Pool, as_pool, is_lazy_pool
from ._precision import PrecisionMixin, as_float32, to_memory_format
from ._validation import (
    check_image_shape,
    resolve_seed,
    torch_rng,
    validate_images,
    validate_labels,
)
from .nets.resnet import PreActResNet18, ResNet18

__all__ = ["MCDropoutClassifier", "ResNet18Classifier"]

# Attributes skorch's __init__ sets; scikit-learn's rule is that __init__ stores parameters only,
# so skal moves them to class-level defaults (read-only where mutable) and sets them in fit.
_SKORCH_INIT_STATE = {
    "history_": None,
    "initialized_": False,
    "virtual_params_": MappingProxyType({}),
}


def _dropout_modules(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


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
    optimizer : torch optimizer class, default=torch.optim.SGD
    lr : float, default=0.01
    max_epochs : int, default=10
    batch_size : int, default=128
    train_split : callable or None, default=None
        No validation split by default: active-learning labelled sets are small. Pass
        ``skorch.dataset.ValidSplit(5)`` to hold some out (e.g. for ``EarlyStopping``).
    image_shape : tuple (C, H, W) or None, default=None
        Shape to reshape flat ``(n, C*H*W)`` input to; one entry may be -1. Without it, flat input
        goes to the module as it is and 3-D / 4-D input is taken as images.
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
        The trained network.

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
        module,
        *,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.01,
        max_epochs=10,
        batch_size=128,
        train_split=None,
        image_shape=None,
        random_state=None,
        mixed_precision=None,
        memory_format="contiguous",
        verbose=0,
        **kwargs,
    ):
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

    def initialize_module(self):
        """Build the module; a module *class* gets data-derived arguments it accepts.

        ``n_classes``, ``in_features`` (values per sample), ``in_channels`` and ``image_shape``
        (for image input) are filled in from the training data unless set as ``module__*``.
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
        return self

    # ------------------------------------------------------------------ validation
    def _validate_X(self, X, reset):
        return validate_images(
            self, X, reset=reset, image_shape=self.image_shape, flat_ok=self._flat_ok
        )

    @property
    def classes_(self):
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
        seed = resolve_seed(self.random_state)
        if continued and self.history_ is not None:
            # continued training draws fresh (but reproducible) randomness after earlier epochs
            seed = (seed + len(self.history_)) % (2**31 - 1)
        return seed

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, **fit_params):
        """Initialise (unless ``warm_start``) and train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features)
        y : array-like of shape (n,)
            Class labels of any type scikit-learn accepts.
        **fit_params
            Passed on to skorch (and from there to the module's ``forward``).

        Returns
        -------
        self
        """
        reset = not (self.warm_start and self.initialized_)
        X = self._validate_X(X, reset=reset)
        y = self._encode(X, y, reset=reset)
        with torch_rng(self._fit_seed(continued=not reset), self._compute_device()):
            if reset:
                self.initialize()
            return super().partial_fit(X, y, **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Continue training on ``(X, y)`` without re-initialising the network.

        Parameters
        ----------
        X : array-like
        y : array-like of shape (n,)
        classes : array-like of shape (n_classes,), default=None
            All classes, needed on the first call when ``y`` does not contain every class.

        Returns
        -------
        self
        """
        seen = hasattr(self, "input_shape_")  # data seen, or described by image_shape
        X = self._validate_X(X, reset=not seen)
        if not hasattr(self, "label_encoder_") and classes is not None:
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
        y = self._encode(X, y, reset=not hasattr(self, "label_encoder_"))
        with torch_rng(self._fit_seed(continued=self.initialized_), self._compute_device()):
            if not self.initialized_:
                self.initialize()
            return super().partial_fit(X, y, **fit_params)

    def initialize(self):
        """Initialise the network, optimizer and callbacks.

        ``fit`` calls this after it has seen the data. Called before any data (as modAL's
        ``DeepActiveLearner`` does at construction), the network is built from the ``classes``
        and ``image_shape`` parameters.
        """
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

    def predict_proba(self, X):
        """Class probabilities from one deterministic pass (dropout off).

        ``X`` may be a pool larger than memory (``np.memmap``, torch ``Dataset``,
        :class:`skal._pool.Pool`): it is read and converted one chunk at a time.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
        """
        if is_lazy_pool(X):
            check_is_fitted(self, ["module_", "label_encoder_"])
            return np.concatenate(
                [super(MCDropoutClassifier, self).predict_proba(rows)
                 for _, rows in self._pool_chunks(X)]
            )
        if is_dataset(X):  # skorch's own scoring callbacks pass validated datasets
            return super().predict_proba(X)
        return super().predict_proba(self._check_fitted_X(X))

    def predict(self, X):
        """Predicted labels, drawn from ``classes_``.

        Returns
        -------
        y_pred : ndarray of shape (n,)
        """
        if is_dataset(X):
            # internal scoring (e.g. skorch's valid_acc) compares with the encoded targets
            return super().predict_proba(X).argmax(axis=1)
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def sample_proba(self, X, n_samples=20, *, random_state=None, cache=True):
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
                f"The 'n_samples' parameter must be an int >= 1. Got {n_samples!r} instead."
            )
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        module = self.module_
        dropouts = _dropout_modules(module)
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

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # tiny nets, few epochs in the common checks
        tags.input_tags.allow_nan = False
        return tags


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
    lr : float, default=1e-3
    max_epochs : int, default=10
    batch_size : int, default=64
    random_state : None, int, RandomState or Generator, default=None
    **kwargs
        Other :class:`MCDropoutClassifier` / skorch parameters.

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
        preact=False,
        dropout=0.5,
        width=64,
        *,
        image_shape=None,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=10,
        batch_size=64,
        random_state=None,
        **kwargs,
    ):
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

    def initialize_module(self):
        """Build the ResNet from the fitted input shape and classes."""
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
