"""A self-supervised (SimCLR) representation of the unlabelled pool, and classifiers that start
from it.

:class:`ContrastiveEncoder` is a scikit-learn transformer and a skorch ``NeuralNet``: ``fit`` trains
a backbone (skal's ResNet18 trunk by default) and a projection head on two augmented views of every
image with the NT-Xent loss (SimCLR, Chen et al. 2020), ``transform`` returns the backbone's
features. It plugs into skorch through its named hooks (``initialize_module``,
``initialize_criterion``, ``get_dataset``, ``train_step_single``, ``validation_step``,
``get_loss``, ``on_epoch_begin``), so skorch's fit loop, ``history_``, callbacks and checkpoints
work as for any skorch net.

Two ways to use the representation:

* **Start a classifier's trunk from it**: :func:`init_trunk` (or the callback :class:`InitTrunk`)
  copies the encoder's backbone weights into the ResNet18 of any skal estimator at the start of
  every fit from scratch, so an :class:`skal.ActiveLearner` that refits each round starts each
  round from the pretrained trunk.
* **A small head on frozen features**: ``Pipeline([("enc", FrozenEstimator(encoder)),
  ("head", MCDropoutClassifier(mlp))])``; every skal strategy transforms the pool with the
  pipeline's first steps. scikit-learn's ``FrozenEstimator`` keeps ``Pipeline.fit`` (and
  ``clone``, which :class:`skal.ActiveLearner` applies) from refitting the encoder.

The NT-Xent loss and the SimCLR projection head come from the ``lightly`` package (its ``ssl``
extra; ``pip install --no-deps lightly==1.6.0``: the two pieces need only torch).

The encoder's pieces are mixins with one job each: ``skal.estimators._simclr.SimCLRNetworksMixin`` (the
backbone, the projection head and the loss), ``skal.estimators._simclr.ContrastiveTrainingMixin`` (two
views per batch, the NT-Xent step, per-epoch seeds) and :class:`EncoderTransformMixin`
(``transform`` by chunks, ``trunk_``); this module holds the parameters, the data and the fit
flow, and the ways classifiers start from the trunk.

References
----------
.. [1] T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple Framework for Contrastive Learning
   of Visual Representations", ICML 2020.
"""

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

from ..data import Pool, as_pool, is_lazy_pool
from ..nets.resnet import PreActResNet18, ResNet18Base
from ..utils.params import Choice, Float, Int, Satisfies, check_params
from ..utils.skorch_compat import SkorchParamsMixin
from ..utils.typing import ArrayLike, RandomStateLike
from ..utils.validation import (
    check_device,
    check_image_shape,
    resolve_seed,
    torch_rng,
    validate_images,
)
from ._simclr import (
    BACKBONES,
    ContrastiveTrainingMixin,
    SimCLRNet,
    SimCLRNetworksMixin,
    lightly_parts,
)
from ._training import TrainingHooksMixin

__all__ = ["ContrastiveEncoder", "InitTrunk", "init_trunk"]

def _trunk_keys(trunk):
    """The state-dict entries of a trunk: a ResNet18's, less its head (``linear``)."""
    state = trunk.state_dict()
    if isinstance(trunk, ResNet18Base):
        state = {k: v for k, v in state.items() if not k.startswith("linear.")}
    return state


class _Rows(torch.utils.data.Dataset):
    """A map-style Dataset of validated float32 images read from a :class:`Pool`, a batch at a
    time (``__getitems__``: one ``Pool.take`` per batch, so a memmap or a user Dataset is read in
    batches, never whole). Items are ``(image, 0)``, batches ``(X, zeros)``, as skorch's own
    Dataset gives them without labels.

    ``validate`` converts raw rows (uint8 -> [0, 1], layouts, shape checks); None: the rows are
    validated already.
    """

    def __init__(self, pool, validate=None):
        self.pool = pool
        self.validate = validate

    def __len__(self):
        return len(self.pool)

    def __getitems__(self, indices):
        rows = self.pool.take(np.asarray(indices, dtype=np.int64))
        if self.validate is not None:
            rows = self.validate(rows)
        # (image, 0) pairs, as skorch's Dataset yields for y=None: batches unpack as (X, y)
        return [(x, 0) for x in torch.from_numpy(np.ascontiguousarray(rows))]

    def __getitem__(self, index):
        return self.__getitems__([index])[0]


def _images(X):
    """Samples of ``X``: a torch Dataset of ``(x, y)`` pairs or images stays lazy (a Pool)."""
    return as_pool(X) if is_lazy_pool(X) else X


class EncoderTransformMixin:
    """The transformer side of :class:`ContrastiveEncoder`: the backbone's features of images.

    ``transform`` reads a lazy pool (memmap, Dataset, :class:`skal.data.Pool`) a chunk at a time,
    each chunk a whole number of batches, and runs the backbone in eval mode without using any
    randomness; ``trunk_`` is the fitted backbone that :func:`init_trunk` copies.
    """

    def _pool_chunks(self, X):
        """Validated chunks of a pool (a whole number of batches each)."""
        pool = as_pool(X)
        batch = self.batch_size
        pool = Pool(pool, chunk_size=max(batch, pool.chunk_size // batch * batch))
        if len(pool) == 0:
            yield self._validate(pool.read(0, 0), reset=False)
        for _, rows in pool.chunks():
            yield self._validate(rows, reset=False)

    def evaluation_step(self, batch: Any, training: bool = False) -> torch.Tensor:
        """Compute the features ``feature_stages`` asks for (skorch's prediction step).

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` from the loader (``y`` is unused).
        training : bool, default=False
            Train mode (BatchNorm's batch statistics) instead of eval mode.

        Returns
        -------
        features : torch.Tensor of shape (B, d)
            ``d`` is ``embedding_dim_``.
        """
        if self.feature_stages != "all":
            return super().evaluation_step(batch, training=training)
        self.check_is_fitted()
        Xi = batch[0] if isinstance(batch, (tuple, list)) else batch
        with torch.set_grad_enabled(training):
            self._set_training(training)
            return self.infer(Xi, stages=True)  # (B, 15 * width)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """The backbone's features of ``X`` (eval mode: BatchNorm's running statistics).

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W), memmap, torch Dataset or Pool
            Images of the shape seen in ``fit``; a pool is read a chunk at a time.

        Returns
        -------
        features : ndarray of float32, shape (n, d)
            One row per image (the features ``feature_stages`` names); ``d`` is
            ``embedding_dim_``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValueError
            For images of another shape than in ``fit``.
        """
        check_is_fitted(self)
        X = _images(X)
        chunks = self._pool_chunks(X) if isinstance(X, Pool) else [self._validate(X, False)]
        out = []
        for rows in chunks:
            dataset = _Rows(as_pool(rows))
            with torch.random.fork_rng(devices=[]):  # nothing random, nothing changed
                parts = [h.float().cpu() for h in self.forward_iter(dataset, training=False)]
            out.append(torch.cat(parts).numpy() if parts else
                       np.empty((0, self.embedding_dim_), np.float32))
        return np.concatenate(out).astype(np.float32, copy=False)

    def fit_transform(self, X: ArrayLike, y: None = None, **fit_params: Any) -> np.ndarray:
        """Fit on ``X``, then return its features.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W), memmap, torch Dataset or Pool
            Unlabelled images.
        y : None
            Ignored.
        **fit_params
            Passed on to :meth:`fit`.

        Returns
        -------
        features : ndarray of float32, shape (n, d)
            ``transform(X)`` after ``fit(X)``; ``d`` is ``embedding_dim_``.
        """
        return self.fit(X, **fit_params).transform(X)

    def __setstate__(self, state):
        state.setdefault("feature_stages", "last")  # a pickle from before the parameter
        super().__setstate__(state)

    def set_params(self, **params: Any) -> Any:
        """Set parameters; a new ``feature_stages`` applies to a fitted encoder at once.

        Parameters
        ----------
        **params : dict
            Estimator and skorch parameters.

        Returns
        -------
        self : ContrastiveEncoder
            This estimator.
        """
        before = self.feature_stages
        super().set_params(**params)
        if "feature_stages" in params and self.initialized_:
            try:
                check_params(self)
                self.embedding_dim_ = self._embedding_dim(self.module_)
            except ValueError:
                self.feature_stages = before  # a refused value leaves the fitted encoder as it was
                raise
        return self

    @property
    def trunk_(self) -> nn.Module:
        """The fitted backbone: a ResNet18 without its head (``linear``), or the given module."""
        check_is_fitted(self)
        return self.module_.backbone

    @property
    def _n_features_out(self):
        return self.embedding_dim_


class ContrastiveEncoder(SkorchParamsMixin, SimCLRNetworksMixin, ContrastiveTrainingMixin,
                         EncoderTransformMixin, TrainingHooksMixin,
                         ClassNamePrefixFeaturesOutMixin, TransformerMixin, NeuralNet):
    """SimCLR: a self-supervised image representation, learnt from unlabelled images.

    ``fit(X)`` trains a backbone and a projection head so that two random augmentations of the
    same image get close projections and those of different images far ones (the NT-Xent loss,
    other images of the batch as negatives); ``transform(X)`` returns the backbone's features,
    ``(n, d)`` float32 (not the projections). Labels are not used (``y`` is ignored).

    It is a skorch ``NeuralNet``: ``history_``, ``callbacks`` (``ProgressBar``, ``Checkpoint``,
    ``LoadInitState``, ``EarlyStopping``, ``LRScheduler``, ...), ``train_split``,
    ``save_params`` / ``load_params`` and ``device`` work as in skorch.

    Parameters
    ----------
    backbone : {"resnet18", "preact_resnet18"}, torch module class or instance, default="resnet18"
        The encoder: skal's ResNet18 trunk (:class:`skal.nets.ResNet18` without its head; the
        features are its ``features(x)``, ``8 * width`` values), its pre-activation version, or
        any module that maps images ``(n, C, H, W)`` to features ``(n, d)`` (its ``features``
        method when it has one). A class is built with whichever of ``in_channels``, ``width``
        and ``image_shape`` it accepts; an instance is copied at every ``fit``.
    width : int, default=64
        Channels of the ResNet's first stage (64 is the standard ResNet18; 8 or 16 train fast
        on a CPU). A classifier that starts from this encoder (:func:`init_trunk`) needs the
        same width.
    stem_stride : {1, 2}, default=1
        Stride of the ResNet's stem convolution (a named ``backbone`` only). 2 runs the stages
        at half the resolution: a width-16 trunk then has about the multiply-adds of a width-8
        one at stride 1, with twice the features (``benchmarks/encoder_probe.py --stem-stride``).
        A classifier started from this encoder needs the same stride.
    feature_stages : {"last", "all"}, default="last"
        What :meth:`transform` returns. ``"last"``: the backbone's features (for a ResNet, the
        pooled last stage, ``8 * width`` values). ``"all"``: the pooled outputs of all four
        stages side by side (``15 * width`` values; a named ``backbone`` only): the early
        stages keep the texture and shape detail that the contrastive loss trains out of the
        last one, and a linear probe on them scores higher
        (``benchmarks/label_efficiency.py --enc-feature-stages all``). Training is the same either
        way (the projection head sees the last stage), so it can be changed on a fitted
        encoder with ``set_params``.
    projection_dim : int, default=128
        Output size of the projection head (``Linear -> BatchNorm -> ReLU -> Linear ->
        BatchNorm``, lightly's ``SimCLRProjectionHead``).
    hidden_dim : int or None, default=None
        Hidden size of the projection head; None: the feature size ``d``.
    temperature : float, default=0.5
        Temperature of the NT-Xent loss (lightly's ``NTXentLoss``).
    criterion : torch loss class or instance, or None, default=None
        The contrastive loss, called as ``loss(z0, z1)`` on the projections of the two views
        ``(B, projection_dim)``; None: lightly's ``NTXentLoss(temperature)``.
    augment : callable or None, default=None
        Makes one random view of a batch: takes and returns float tensors ``(B, C, H, W)`` with
        fresh random parameters per image, drawn from torch's default generator (which ``fit``
        seeds). None: SimCLR's augmentation from the parameters below, batched torchvision v2
        transforms (``skal.estimators._ssl_augment``). A per-image torchvision transform draws one set of
        parameters per call: apply it image by image.
    crop_scale : tuple of float, default=(0.2, 1.0)
        Range of the area of the random resized crop, a fraction of the image.
    flip : bool, default=True
        Random left-right flips. Turn them off where a mirror image is another class (digits,
        letters).
    jitter : float, default=0.4
        Strength of the brightness and contrast jitter (and saturation for colour images),
        applied to 80 % of the views; 0: none.
    grayscale : float, default=0.2
        Probability that a view of a colour image is made grey (grey images: no effect).
    blur : float, default=0.0
        Probability of a Gaussian blur of a view (kernel a tenth of the image side); 0: none.
        SimCLR leaves it out for 32x32 images.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Built in ``fit`` on the parameters of the backbone and the head.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=10
        Passes over the images per ``fit``.
    batch_size : int, default=256
        Images per batch (each gives two views, so the loss sees ``2 * batch_size - 2``
        negatives per view); at least 2. Larger batches help contrastive learning.
    train_split : callable or None, default=None
        No validation split by default; ``skorch.dataset.ValidSplit(5)`` holds some images out
        and records ``valid_loss`` (the same loss on augmented held-out views).
    image_shape : tuple (C, H, W) or None, default=None
        Shape to reshape flat ``(n, C*H*W)`` input to; also lets :meth:`initialize` build the
        network before any data (to ``load_params`` a checkpoint into it).
    random_state : None, int, RandomState or Generator, default=None
        Seeds initialisation, shuffling and augmentation. The same seed on the same data gives
        the same features (on the CPU); torch's global random state is left as it was. Each
        epoch reseeds from the seed and its number, so a run resumed from a checkpoint goes on
        as the uninterrupted run would.
    verbose : int, default=0
        Verbosity of skorch's per-epoch log.
    **kwargs
        Other skorch parameters (``callbacks``, ``device``, ``optimizer__*``, ``criterion__*``,
        ``iterator_train__*``, ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        ``backbone`` and ``projection_head``; ``module_(x)`` gives the features.
    criterion_ : torch.nn.Module
        The NT-Xent loss.
    augment_ : callable
        The augmentation in use.
    embedding_dim_ : int
        Number of features ``d`` that :meth:`transform` returns.
    n_features_in_ : int
        Number of values per input image (``C*H*W``).
    input_shape_ : tuple
        Per-image shape ``(C, H, W)`` seen in ``fit``.
    history_ : skorch.History
        skorch's record of the epochs (``train_loss``, ``valid_loss``, ...).

    See Also
    --------
    init_trunk : Start a classifier's ResNet18 trunk from a fitted encoder.
    InitTrunk : The same as a skorch callback.
    sklearn.frozen.FrozenEstimator : Keeps a fitted encoder fixed inside a ``Pipeline``.

    Notes
    -----
    Both views of a batch go through the network as one batch of ``2 * batch_size`` images,
    so BatchNorm normalises them together (as SimCLR's global BatchNorm does across devices).
    Pools larger than memory (``np.memmap``, a torch ``Dataset``, :class:`skal.data.Pool`) are
    read a batch of rows at a time in ``fit`` and a chunk at a time in ``transform``.

    In a ``Pipeline``, wrap a fitted encoder in scikit-learn's ``FrozenEstimator``:
    ``Pipeline([("enc", FrozenEstimator(encoder)), ("head", MCDropoutClassifier(mlp))])``.
    ``Pipeline.fit`` refits every step, and ``clone`` (which :class:`skal.ActiveLearner`
    applies to its estimator) returns an unfitted copy; a ``FrozenEstimator`` is neither
    refitted nor cloned, so every ``teach`` trains the head only, on the same features.

    References
    ----------
    Chen, Kornblith, Norouzi, Hinton. "A Simple Framework for Contrastive Learning of Visual
    Representations." ICML 2020.

    Examples
    --------
    >>> from skal import ContrastiveEncoder
    >>> from skal.datasets import load_digits_images
    >>> X, _ = load_digits_images()
    >>> enc = ContrastiveEncoder(width=2, max_epochs=1, batch_size=64, flip=False,
    ...                          random_state=0).fit(X[:128])
    >>> enc.transform(X[:3]).shape
    (3, 16)
    """

    _fixed_module = True

    def __init__(
        self,
        backbone: str | type[nn.Module] | Callable[..., nn.Module] | nn.Module = "resnet18",
        width: int = 64,
        *,
        stem_stride: int = 1,
        feature_stages: str = "last",
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.5,
        criterion: Any = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        flip: bool = True,
        jitter: float = 0.4,
        grayscale: float = 0.2,
        blur: float = 0.0,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        lr: float = 1e-3,
        max_epochs: int = 10,
        batch_size: int = 256,
        train_split: Callable[..., Any] | None = None,
        image_shape: tuple[int, ...] | None = None,
        random_state: RandomStateLike = None,
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            SimCLRNet,
            criterion=criterion,  # None: lightly's NTXentLoss, see initialize_criterion
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            **kwargs,
        )
        self.backbone = backbone
        self.width = width
        self.stem_stride = stem_stride
        self.feature_stages = feature_stages
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.temperature = temperature
        self.augment = augment
        self.crop_scale = crop_scale
        self.flip = flip
        self.jitter = jitter
        self.grayscale = grayscale
        self.blur = blur
        self.image_shape = image_shape
        self.random_state = random_state
        self._drop_init_state()  # scikit-learn's rule: __init__ stores parameters only

    _parameter_constraints: ClassVar[dict] = {
        "backbone": [Satisfies(
            lambda v: v in BACKBONES or isinstance(v, nn.Module)
            or (callable(v) and not isinstance(v, str)),
            f"one of {sorted(BACKBONES)}, a torch.nn.Module instance or a class that builds one",
        )],
        "width": [Int(1)],
        "stem_stride": [Int(1, 2)],
        "feature_stages": [Choice("last", "all")],
        "projection_dim": [Int(1)],
        "hidden_dim": [None, Int(1)],
        "temperature": [Float(0, None, closed="neither")],
        "augment": [None, Satisfies(callable, "a callable on batches (B, C, H, W)")],
        "crop_scale": [Satisfies(
            lambda v: isinstance(v, (tuple, list)) and len(v) == 2
            and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in v)
            and 0 < v[0] <= v[1] <= 1,
            "a pair (low, high) of floats, each in the range (0.0, 1.0], with low <= high",
        )],
        "flip": ["boolean"],
        "jitter": [Float(0, 1, closed="both")],
        "grayscale": [Float(0, 1, closed="both")],
        "blur": [Float(0, 1, closed="both")],
        "max_epochs": [Int(1)],
        "batch_size": [Int(2)],
        "lr": [Float(0, None, closed="neither")],
        "optimizer": [Satisfies(callable, "a torch optimizer class such as torch.optim.Adam")],
        "train_split": [None, Satisfies(callable,
                                        "a callable such as skorch.dataset.ValidSplit(5)")],
    }

    def _check_params(self):
        check_params(self)
        check_device(self.device, type(self).__name__)
        self._check_feature_stages(self.backbone)  # before skorch's Checkpoint writes
        if self.train_split is None:  # before skorch's Checkpoint makes its folder
            for entry in self.callbacks or ():
                callback = entry[1] if isinstance(entry, tuple) else entry
                monitor = getattr(callback, "monitor", None)
                if isinstance(monitor, str) and monitor.startswith("valid_"):
                    raise ValueError(
                        f"The callback {type(callback).__name__} monitors {monitor!r}, but "
                        f"{type(self).__name__} has no validation split (train_split=None), so "
                        "there is no validation score. Pass train_split=skorch.dataset."
                        "ValidSplit(5), or monitor the training loss (monitor='train_loss')."
                    )

    def _compute_device(self):
        return self.device

    # ------------------------------------------------------------------ skorch's hooks

    def initialize(self) -> "ContrastiveEncoder":
        """Initialise the network, loss, optimizer and callbacks.

        ``fit`` calls this after it has seen the images; before any data, ``image_shape`` gives
        the shape (e.g. to ``load_params`` a checkpoint, then ``partial_fit``).

        Returns
        -------
        self : ContrastiveEncoder
            This estimator, initialised (not trained).
        """
        self._check_params()
        if not hasattr(self, "input_shape_"):
            shape = check_image_shape(self.image_shape)
            if shape is not None and -1 not in shape:
                self.input_shape_ = shape
                self.n_features_in_ = int(np.prod(shape))
        return super().initialize()

    def get_dataset(self, dataset: Any, y: Any = None) -> Any:
        """The images as a torch Dataset that reads and converts a batch of rows at a time.

        Parameters
        ----------
        dataset : array-like, Pool or Dataset
            Images (``fit`` and ``transform`` pass them validated or as a lazy pool).
        y : None
            Ignored (no labels).

        Returns
        -------
        dataset : torch.utils.data.Dataset
            Yields float32 images ``(C, H, W)``.
        """
        if isinstance(dataset, _Rows):
            return dataset
        return _Rows(as_pool(self._validate(dataset, reset=False)))

    # ------------------------------------------------------------------ data
    def _validate(self, X, reset):
        return validate_images(self, X, reset=reset, image_shape=self.image_shape, flat_ok=False)

    def _fit_rows(self, X, reset):
        """The training images as a :class:`_Rows` dataset; a lazy pool stays lazy."""
        X = _images(X)
        if not isinstance(X, Pool):
            return _Rows(as_pool(self._validate(X, reset=reset)))
        if len(X) == 0:  # scikit-learn's "0 sample(s)" error
            self._validate(X.read(0, 0), reset=reset)
        self._validate(X.read(0, 1), reset=reset)  # learns (or checks) the image shape
        return _Rows(X, validate=lambda rows: self._validate(rows, reset=False))

    # ------------------------------------------------------------------ fit / transform
    def fit(self, X: ArrayLike, y: None = None, **fit_params: Any) -> "ContrastiveEncoder":
        """Initialise (unless ``warm_start``) and train on the images ``X``; ``y`` is ignored.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W), memmap, torch Dataset or Pool
            Unlabelled images (uint8 or float; channels-last works when unambiguous). A memmap,
            a ``Dataset`` (of images or ``(image, label)`` pairs) or a ``Pool`` is read a batch
            at a time.
        y : None
            Ignored: the encoder learns from the images alone (present for ``Pipeline``).
        **fit_params
            Passed on to skorch's fit loop.

        Returns
        -------
        self : ContrastiveEncoder
            This estimator, fitted.

        Raises
        ------
        ValueError
            For a bad parameter, bad images or a backbone that cannot take them.
        ImportError
            If the ``lightly`` package is not installed.
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, reset=reset, fit_params=fit_params)

    def partial_fit(self, X: ArrayLike, y: None = None,
                    **fit_params: Any) -> "ContrastiveEncoder":
        """Train ``max_epochs`` more epochs on ``X`` without re-initialising the network.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W), memmap, torch Dataset or Pool
            Unlabelled images, of the shape of the first fit.
        y : None
            Ignored.
        **fit_params
            Passed on to skorch's fit loop.

        Returns
        -------
        self : ContrastiveEncoder
            This estimator, trained further.
        """
        return self._fit(X, reset=not self.initialized_, fit_params=fit_params)

    def _fit(self, X, *, reset, fit_params):
        self._check_params()
        lightly_parts()  # the ImportError before anything is built
        rows = self._fit_rows(X, reset=reset or not hasattr(self, "input_shape_"))
        if len(rows) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 images (the other images of a batch are "
                f"the negatives of the contrastive loss); got {len(rows)}."
            )
        seed = resolve_seed(self.random_state, owner=type(self).__name__)
        vars(self)["_seed"] = seed
        vars(self)["_fitting"] = True
        try:
            with torch_rng(seed, self._compute_device()):
                if reset:
                    self.initialize()
                super().partial_fit(rows, None, **fit_params)
        finally:
            vars(self).pop("_fitting", None)
        return self

    def __sklearn_is_fitted__(self):
        return bool(self.initialized_) and hasattr(self, "module_") and hasattr(
            self, "input_shape_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# ---------------------------------------------------------------------------- classifiers
def _fitted_encoder(encoder, owner):
    """The fitted :class:`ContrastiveEncoder` behind ``encoder`` (a FrozenEstimator too)."""
    inner = getattr(encoder, "estimator", encoder) if not isinstance(
        encoder, ContrastiveEncoder) else encoder
    if not isinstance(inner, ContrastiveEncoder):
        raise TypeError(
            f"The 'encoder' parameter of {owner} must be a fitted skal.ContrastiveEncoder (or "
            f"a FrozenEstimator of one); got {type(encoder).__name__}."
        )
    check_is_fitted(inner)
    return inner


def _find_trunks(module, kind):
    return [m for m in module.modules() if type(m) is kind]


def _describe(trunk):
    if isinstance(trunk, ResNet18Base):
        stride = trunk.conv1.stride[0]
        return (f"{type(trunk).__name__}(in_channels={trunk.in_channels}, "
                f"width={trunk.conv1.out_channels}"
                + (f", stem_stride={stride})" if stride != 1 else ")"))
    return type(trunk).__name__


def _load_trunk(target, encoder, owner):
    """Copy the encoder's trunk into the one trunk of its kind inside ``target`` (a module)."""
    source = encoder.trunk_
    kind = type(source)
    found = _find_trunks(target, kind)
    if not found:
        if isinstance(source, ResNet18Base):
            other = [m for m in target.modules() if isinstance(m, ResNet18Base)]
            if other:
                raise ValueError(
                    f"{owner} has a {type(other[0]).__name__} trunk, but the encoder's backbone "
                    f"is a {kind.__name__}: set preact={kind is PreActResNet18} on the "
                    f"classifier, or backbone="
                    f"{'preact_resnet18' if type(other[0]) is PreActResNet18 else 'resnet18'!r} "
                    "on the encoder."
                )
        raise ValueError(
            f"{owner} ({type(target).__name__}) has no {kind.__name__} trunk to start from the "
            f"encoder's backbone ({_describe(source)}); expected a network that contains one "
            "(ResNet18Classifier, MCDropoutClassifier(skal.nets.ResNet18), "
            "WAALClassifier(features='resnet18'), ...)."
        )
    if len(found) > 1:
        raise ValueError(
            f"{owner} ({type(target).__name__}) contains {len(found)} {kind.__name__} modules; "
            "init_trunk needs exactly one. Call it on the submodule to start."
        )
    trunk = found[0]
    if isinstance(source, ResNet18Base):
        for what, theirs, ours, hint in (
            ("in_channels", trunk.in_channels, source.in_channels,
             "the images' channels: fit the encoder on images like the classifier's"),
            ("width", trunk.conv1.out_channels, source.conv1.out_channels,
             "set the classifier's width to the encoder's"),
            ("stem_stride", trunk.conv1.stride[0], source.conv1.stride[0],
             "set the classifier's stem_stride to the encoder's"),
        ):
            if theirs != ours:
                raise ValueError(
                    f"{owner}'s trunk has {what}={theirs}, but the encoder's backbone has "
                    f"{what}={ours} ({_describe(source)}); {hint}."
                )
    state = _trunk_keys(source)
    target_state = trunk.state_dict()
    for key, value in state.items():
        if key not in target_state or target_state[key].shape != value.shape:
            got = tuple(target_state[key].shape) if key in target_state else "nothing"
            raise ValueError(
                f"{owner}'s {type(trunk).__name__} does not match the encoder's backbone: "
                f"{key!r} has shape {tuple(value.shape)} in the encoder and {got} in the "
                f"classifier ({_describe(source)} expected)."
            )
    with torch.no_grad():
        for key, value in state.items():
            target_state[key].copy_(value)  # in place: the optimizer keeps its parameters
    return target


class InitTrunk(Callback):
    """Start a skorch net's ResNet18 trunk from a fitted :class:`ContrastiveEncoder`.

    At the start of training of a freshly initialised net (every ``fit`` from scratch, the first
    ``partial_fit``), the weights and BatchNorm statistics of the encoder's backbone are copied
    into the trunk of ``net.module_``: the one submodule of the backbone's class
    (:class:`skal.nets.ResNet18` for the default encoder); its head is left as initialised. The
    encoder is only read. ``clone`` keeps the same fitted encoder (scikit-learn's ``clone``
    would otherwise replace it by an unfitted copy), so an :class:`skal.ActiveLearner`, which
    fits a clone of its estimator, starts every round's classifier from it.

    Parameters
    ----------
    encoder : ContrastiveEncoder or FrozenEstimator
        A fitted encoder.
    module : str, default="module"
        The skorch name of the module that holds the trunk (``"module"`` is ``net.module_``).

    Attributes
    ----------
    done_ : bool
        Whether the trunk was copied since the net was last initialised.

    See Also
    --------
    init_trunk : Adds this callback to an estimator, or copies the trunk into a module.

    Examples
    --------
    >>> from skal import ContrastiveEncoder, InitTrunk, ResNet18Classifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> enc = ContrastiveEncoder(width=2, max_epochs=1, batch_size=64, flip=False,
    ...                          random_state=0).fit(X[:128])
    >>> clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0,
    ...                          callbacks=[("init_trunk", InitTrunk(enc))]).fit(X[:64], y[:64])
    """

    def __init__(self, encoder: Any, module: str = "module") -> None:
        self.encoder = encoder
        self.module = module

    def initialize(self) -> "InitTrunk":
        """Forget that the trunk was copied (skorch calls this when the net initialises).

        Returns
        -------
        self : InitTrunk
            This callback.
        """
        self.done_ = False
        return self

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Copy the encoder's trunk into the net's module, once per initialisation.

        Parameters
        ----------
        net : skorch net
            The net being trained.
        X, y : array-like, default=None
            The training data (unused).
        **kwargs
            Other arguments of skorch's ``on_train_begin``.
        """
        if getattr(self, "done_", False):
            return
        owner = type(net).__name__
        encoder = _fitted_encoder(self.encoder, owner)
        target = getattr(net, self.module + "_", None)
        if not isinstance(target, nn.Module):
            raise ValueError(
                f"InitTrunk's module={self.module!r} is not a module of {owner}."
            )
        _load_trunk(target, encoder, owner)
        self.done_ = True

    def __sklearn_clone__(self):
        return type(self)(encoder=self.encoder, module=self.module)


def init_trunk(estimator_or_module: Any, encoder: Any, *,
               name: str = "init_trunk") -> Any:
    """Start the ResNet18 trunk of a skal estimator (or a torch module) from a fitted encoder.

    * A skorch estimator (any skal classifier, or the last step of a ``Pipeline``) gets the
      callback :class:`InitTrunk` (added to ``callbacks`` as ``name``, replacing one of that
      name): every fit from scratch starts its trunk from the encoder. A ``width`` or
      ``preact`` that does not match the encoder is refused here, the number of image channels
      at fit.
    * A torch module gets the weights now, in its one trunk of the encoder's backbone class.

    Parameters
    ----------
    estimator_or_module : skorch net, Pipeline or torch.nn.Module
        What to start from the encoder; changed in place and returned.
    encoder : ContrastiveEncoder or FrozenEstimator
        A fitted encoder.
    name : str, default="init_trunk"
        Name of the callback.

    Returns
    -------
    estimator_or_module : the object given
        With the callback added, or with the trunk's weights copied.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the encoder is not fitted.
    ValueError
        If the trunk is of another architecture, width or number of input channels.

    See Also
    --------
    InitTrunk : The callback.

    Examples
    --------
    >>> from skal import ContrastiveEncoder, ResNet18Classifier, init_trunk
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> enc = ContrastiveEncoder(width=2, max_epochs=1, batch_size=64, flip=False,
    ...                          random_state=0).fit(X[:128])
    >>> clf = init_trunk(ResNet18Classifier(width=2, max_epochs=1, random_state=0), enc)
    >>> clf.fit(X[:64], y[:64]).predict(X[:2]).shape
    (2,)
    """
    if isinstance(estimator_or_module, nn.Module):
        enc = _fitted_encoder(encoder, type(estimator_or_module).__name__)
        return _load_trunk(estimator_or_module, enc, type(estimator_or_module).__name__)
    target = estimator_or_module
    if hasattr(target, "steps") and hasattr(target, "named_steps"):  # a Pipeline: its last step
        target = target.steps[-1][1]
    owner = type(target).__name__
    if not (hasattr(target, "get_params") and "callbacks" in target.get_params(deep=False)):
        raise TypeError(
            "init_trunk starts a skorch estimator (a skal classifier), a Pipeline ending in one, "
            f"or a torch module; got {owner}."
        )
    enc = _fitted_encoder(encoder, owner)
    source = enc.trunk_
    if isinstance(source, ResNet18Base):
        params = target.get_params(deep=False)
        preact = isinstance(source, PreActResNet18)
        if "preact" in params and bool(params["preact"]) != preact:
            raise ValueError(
                f"{owner} has preact={params['preact']!r}, but the encoder's backbone is a "
                f"{type(source).__name__}: set preact={preact} on {owner}."
            )
        width = source.conv1.out_channels
        if "width" in params and params["width"] != width:
            raise ValueError(
                f"{owner} has width={params['width']!r}, but the encoder's backbone has "
                f"width={width} ({_describe(source)}): set width={width} on {owner}."
            )
        stride = source.conv1.stride[0]
        if "stem_stride" in params and params["stem_stride"] != stride:
            raise ValueError(
                f"{owner} has stem_stride={params['stem_stride']!r}, but the encoder's backbone "
                f"has stem_stride={stride} ({_describe(source)}): set stem_stride={stride} on "
                f"{owner}."
            )
    callbacks = [cb for cb in (target.callbacks or [])
                 if not (isinstance(cb, tuple) and cb and cb[0] == name)]
    target.set_params(callbacks=[*callbacks, (name, InitTrunk(encoder))])
    return estimator_or_module
