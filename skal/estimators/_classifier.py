"""MC-dropout classifiers: skorch ``NeuralNetClassifier`` subclasses that obey scikit-learn.

skorch alone does not validate input, returns column indices from ``predict`` and fails on float64
or int32 data (docs/ecosystem.md, 'skorch's classifier: what it does not check'). The classes here
add the scikit-learn contract on top of skorch:
validation with clear errors, any label type through ``classes_``, ``n_features_in_``, image
layouts, ``random_state`` and :meth:`MCDropoutClassifier.sample_proba` for MC dropout.

The pieces are mixins with one job each: ``skal.utils.skorch_compat.SkorchParamsMixin`` (scikit-learn's
parameter rules on a skorch net), ``skal.estimators._data_contract.ClassifierDataMixin`` (input validation,
labels through ``classes_``) and ``PoolPredictionMixin`` (``predict_proba`` / ``predict``, on
pools one chunk at a time), ``skal.estimators._training.TrainingHooksMixin`` (batches, the step, modes,
checks before training), ``skal.estimators._mc_dropout.MCDropoutSamplingMixin`` (``sample_proba``,
``embed``) and ``skal.estimators._precision.PrecisionMixin`` (autocast, memory format); this module holds the
parameters, the network and the fit flow.
"""

import contextlib
import copy
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from skorch import NeuralNetClassifier
from torch import nn

from ..data import images_and_labels
from ..nets.resnet import PreActResNet18, ResNet18
from ..utils.params import Float, Int, Satisfies, check_params
from ..utils.seeds import wrap_seed
from ..utils.skorch_compat import (
    SkorchParamsMixin,
)
from ..utils.typing import ArrayLike, RandomStateLike
from ..utils.validation import (
    accepted,
    check_device,
    check_image_shape,
    resolve_seed,
    torch_rng,
)
from ._data_contract import ClassifierDataMixin, PoolPredictionMixin
from ._mc_dropout import MCDropoutSamplingMixin
from ._precision import PrecisionMixin
from ._training import TrainingHooksMixin

__all__ = ["MCDropoutClassifier", "ResNet18Classifier"]

def _is_module_or_factory(value):
    return isinstance(value, nn.Module) or callable(value)


#: ``batch_size=-1``: the whole data set in one batch (skorch's convention).
ONE_BATCH = Satisfies(Int(-1, 0, closed="left").is_satisfied_by, "-1 (one batch)")


class MCDropoutClassifier(SkorchParamsMixin, ClassifierDataMixin, PoolPredictionMixin,
                          TrainingHooksMixin, MCDropoutSamplingMixin, PrecisionMixin,
                          NeuralNetClassifier):
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
        convolutions on GPUs (this is about memory strides, not the layout of ``X``). Use it on
        CUDA: on the CPU, torch 2.14.1's oneDNN channels-last convolution backward crashed
        the process on an AVX2 machine (a torch bug).
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
    - **Divergence.** A default callback ``divergence``
      (:class:`~skal.callbacks.DivergenceCheck`) raises :class:`skal.exceptions.DivergenceError`
      when the loss becomes non-finite or explodes.
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
        self._drop_init_state()  # scikit-learn's rule: __init__ stores parameters only

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
            derived = {"n_classes": len(self.classes_), "in_features": self.n_features_in_}
            if len(self.input_shape_) == 3:
                derived.update(in_channels=self.input_shape_[0], image_shape=self.input_shape_)
            for key, value in accepted(self.module, derived).items():
                kwargs.setdefault(key, value)
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

    # ------------------------------------------------------------------ parameters
    def _fit_seed(self, continued):
        seed = resolve_seed(self.random_state, owner=type(self).__name__)
        if continued and self.history_ is not None:
            # continued training draws fresh (but reproducible) randomness after earlier epochs
            seed = wrap_seed(seed + len(self.history_))
        return seed

    # the parameters skal relies on, checked at fit before anything is built (see skal.utils.params)
    _parameter_constraints: ClassVar[dict] = {
        "module": [Satisfies(_is_module_or_factory,
                             "a torch.nn.Module instance or a class (or factory) that builds one")],
        "max_epochs": [Int(1)],
        "batch_size": [Int(1), ONE_BATCH],
        "lr": [Float(0, None, closed="neither")],
        "optimizer": [Satisfies(callable, "a torch optimizer class such as torch.optim.SGD")],
        "criterion": [Satisfies(
            callable, "a torch loss class or instance such as torch.nn.CrossEntropyLoss")],
        "train_split": [None, Satisfies(callable,
                                        "a callable such as skorch.dataset.ValidSplit(5)")],
        "train_transform": [None, Satisfies(
            callable, "a callable such as a torchvision.transforms.v2 transform")],
    }

    def _check_params(self):
        """Check the parameters (``_parameter_constraints`` of this class and its parents) and the
        device, at fit, before anything is built."""
        check_params(self)
        check_device(self.device, type(self).__name__)

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
            If training diverges (see :class:`~skal.callbacks.DivergenceCheck`).
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, reset=reset, classes=None, partial=False, fit_params=fit_params)

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
        return self._fit(X, y, reset=not self.initialized_, classes=classes, partial=True,
                         fit_params=fit_params)

    def _fit(self, X, y, *, reset, classes, partial, fit_params, **data):
        """``fit`` and ``partial_fit``: check, validate, (re)initialise, train.

        Subclasses change what they need through three hooks: :meth:`_prepare_fit_data` (validate
        and encode the input), :meth:`_check_module_io` (a forward pass on one sample before
        training) and :meth:`_train` (skorch's fit loop); ``data`` are the extra arguments of
        their ``fit`` (e.g. WAAL's ``X_unlabeled``).
        """
        self._check_params()
        X, y = images_and_labels(X, y)
        X, y, context = self._prepare_fit_data(X, y, reset=reset, classes=classes,
                                               partial=partial, **data)
        with self._fit_context(self._fit_seed(continued=not reset)):
            if reset:
                self.initialize()
            if not len(self.history):  # a fresh network (also one built by initialize())
                self._check_module_io(X)
            return self._train(X, y, fit_params, **context)

    def _train(self, X, y, fit_params):
        """skorch's fit loop (its ``partial_fit``) on validated, encoded data."""
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
    stem_stride : {1, 2}, default=1
        Stride of the stem's convolution (2: the stages run at half the resolution). A trunk
        started from an encoder (:func:`skal.init_trunk`) must have the encoder's.
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
        stem_stride: int = 1,
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
        self.stem_stride = stem_stride

    _parameter_constraints: ClassVar[dict] = {
        "preact": ["boolean"],
        "dropout": [Float(0, 1, closed="left")],
        "width": [Int(1)],
        "stem_stride": [Int(1, 2)],
        "batch_size": [Int(2), Satisfies(
            ONE_BATCH.is_satisfied_by, "-1 (one batch): ResNet18 has BatchNorm layers, which "
            "cannot train on a batch of one sample")],
    }

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
            stem_stride=getattr(self, "stem_stride", 1),  # a pickle from before the parameter
            **kwargs,
        )
        return self
