"""BGADL as a skorch classifier: the VAE-ACGAN as extra modules of the active learner.

Bayesian Generative Active Deep Learning (Tran et al., ICML 2019) trains the learner C jointly
with an encoder E, a class-conditional generator G (the VAE decoder) and a real/fake
discriminator D: C is the ACGAN's auxiliary classifier and learns from real images x, their
reconstructions x' = G(E(x), y) and samples G(z, y). Here that is a classifier concern, built the
way skorch builds extra modules (as :class:`skal.WAALClassifier` builds its critic):

* ``initialize_module`` makes ``module_`` (C) and ``encoder_``, ``generator_``,
  ``discriminator_``; ``initialize_optimizer`` gives each its optimizer (``optimizer_`` for C,
  ``encoder_optimizer_``, ``generator_optimizer_``, ``discriminator_optimizer_``);
* ``train_step`` makes one BGADL update (E step, G step, then D and C) per mini-batch of
  skorch's own fit loop, so ``history_``, ``train_split`` and every callback (EarlyStopping,
  LRScheduler, Checkpoint, ProgressBar, ...) work as in any skorch net.

:class:`BGADLMixin` holds all of it; :class:`BGADLClassifier` (ResNet18) and
:class:`BGADLMCDropoutClassifier` (any module) are the estimators. :class:`skal.GenerativeAugmenter`
is the imbalanced-learn sampler over the same networks and losses.
"""

import inspect
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from skorch.callbacks import PassthroughScoring
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor
from sklearn.base import clone
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_is_fitted
from torch.nn import functional as F

from ._modes import _EvalMode, _Frozen, _RealDataStats
from ._typing import ArrayLike, RandomStateLike
from ._validation import resolve_seed
from .classifier import MCDropoutClassifier, ResNet18Classifier
from .exceptions import DivergenceError
from .losses import discriminator_loss, encoder_loss, generator_loss, masked_cross_entropy
from .nets.vae_acgan import (
    AuxiliaryClassifier,
    Discriminator,
    Encoder,
    Generator,
    init_normal_,
    reparameterize,
)
from .transforms import random_crop_flip

__all__ = ["BGADLMixin", "BGADLClassifier", "BGADLMCDropoutClassifier"]

_GAN_NETS = ("encoder", "generator", "discriminator")
_LOSS_LABELS = {
    "loss_E": "encoder loss L_E",
    "loss_G": "generator loss L_G",
    "loss_D": "discriminator loss L_D",
    "loss_C": "classifier loss L_C",
}
_RANGE_TOL = 1e-4  # float images may overshoot [0, 1] by rounding (e.g. after a MinMaxScaler)
# An epoch whose mean loss exceeds this many times max(the loss's first batch value, 1) has
# diverged (the threshold GenerativeAugmenter used before it became a sampler over this class).
_EXPLOSION_FACTOR = 100.0

#: The BGADL parameters and their defaults (the constructor arguments :class:`BGADLMixin` adds).
BGADL_DEFAULTS = {
    "generative": True,
    "joint": True,
    "latent_dim": 100,
    "gan_width": 64,
    "gan_hidden": 1024,
    "gan_optimizer": torch.optim.Adam,
    "gan_lr": 2e-4,
    "gan_betas": (0.5, 0.999),
    "gan_steps": 1.0,
    "gan_warm_start": False,
    "rec_weight": 0.75,
    "rec_reduction": "sum",
    "kl_weight": 1.0,
    "kl_reduction": "mean",
    "gen_weight": 1.0,
    "gen_warmup": 0.0,
    "gen_filter": None,
    "gen_threshold": 0.5,
    "rec_source": "all",
    "augment": None,
}


# ------------------------------------------------------------------------------- helpers
def _logits(output):
    """Some skorch modules return ``(logits, ...)``; keep the logits."""
    return output[0] if isinstance(output, tuple) else output


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)


def _is_int(value, minimum):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def _accepts(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _dataset_arrays(dataset):
    """(X, y, rows) of skorch's training dataset; ``rows`` are the indices a split kept."""
    rows = None
    if isinstance(dataset, torch.utils.data.Subset):
        rows = np.asarray(dataset.indices)
        dataset = dataset.dataset
    X, y = getattr(dataset, "X", None), getattr(dataset, "y", None)
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            "BGADL classifiers train from numpy arrays; got a training dataset of type "
            f"{type(dataset).__name__} (a custom 'dataset' or 'train_split' is not supported)."
        )
    if rows is not None:
        X, y = X[rows], y[rows]
    return X, y, rows


def warmup_weight(epoch, max_epochs, gen_weight, gen_warmup):
    """The weight of the generated terms in epoch ``epoch`` (0-based) of a fit.

    ``gen_weight * min(1, epoch / (gen_warmup * max_epochs))``: 0 in the first epoch, rising
    linearly to ``gen_weight`` after ``gen_warmup * max_epochs`` epochs; ``gen_warmup=0`` gives
    ``gen_weight`` throughout.

    Examples
    --------
    >>> [warmup_weight(e, 10, 1.0, 0.5) for e in range(7)]
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """
    ramp = float(gen_warmup) * int(max_epochs)
    if ramp <= 0:
        return float(gen_weight)
    return float(gen_weight) * min(1.0, epoch / ramp)


# ------------------------------------------------------------------------------- the mixin
class BGADLMixin:
    """BGADL's joint VAE-ACGAN training for a skal MC-dropout classifier (a skorch net).

    Mix it in before an :class:`skal.MCDropoutClassifier` subclass (see
    :class:`BGADLClassifier`): the classifier's network becomes the ACGAN auxiliary classifier
    C and trains together with an encoder E, a generator G and a discriminator D, extra skorch
    modules ``encoder_``, ``generator_`` and ``discriminator_`` with their own optimizers. Each
    mini-batch (x, y) of skorch's fit loop makes three updates (the authors' scheme):

    1. E: L_E = MSE(x', x) + kl_weight * KL(q(z | x) || N(0, I)), with x' = G(E(x), y);
    2. G: L_G = BCE(D(G(z, y)), 1) + CE(C(G(z, y)), y) + rec_weight * SE(x', x), z ~ N(0, I);
    3. D and C: L_D = BCE(D(x), 1) + BCE(D(G(z, y)), 0) + BCE(D(x'), 0) and
       L_C = CE(C(x), y) + w * [CE(C(G(z, y)), y) + CE(C(x'), y)], on images regenerated by the
       updated G, with w = ``gen_weight`` (1 in the paper).

    ``train_loss`` in ``history_`` is L_C; the epoch means of the four losses are recorded as
    ``loss_E``, ``loss_G``, ``loss_D``, ``loss_C``, and the generated-term weight of each epoch
    as ``gen_weight``. Validation (``train_split``) scores C on real images only.

    Parameters
    ----------
    generative : bool, default=True
        ``False``: no VAE-ACGAN at all; the classifier trains on real images only (with
        ``augment``), a plain classifier (the data-augmentation baseline).
    joint : bool, default=True
        ``True``: the joint scheme above. ``False``: the non-joint path; each fit first trains a
        separate VAE-ACGAN (with its own small auxiliary classifier,
        :class:`skal.nets.AuxiliaryClassifier`; fitted attribute ``vae_acgan_``) on the training
        rows, makes one fixed x' = G(E(x), y) per source row (see ``rec_source``), and then
        trains the classifier on real images plus x' (each step: a real batch and as many x'
        drawn at random, loss CE(C(x), y) + w * CE(C(x'), y)); C never sends gradients to G.
    latent_dim : int, default=100
        Dimension of the latent code z.
    gan_width, gan_hidden : int, default=64, 1024
        Channels of the first conv layer and units of the fully connected layers of E, G and D
        (:class:`skal.nets.Encoder` etc.); smaller is cheaper.
    gan_optimizer : torch optimizer class, default=torch.optim.Adam
        Optimizer of E, G and D (``encoder_optimizer__*`` etc. parameters override its
        arguments).
    gan_lr : float, default=2e-4
        Learning rate of E, G and D.
    gan_betas : tuple of two floats, default=(0.5, 0.999)
        Adam's ``betas`` for E, G and D (ignored by optimizers without ``betas``).
    gan_steps : float, default=1.0
        E/G/D updates per classifier update. An int k > 1 adds k - 1 updates on real batches
        drawn at random from the training rows before the one on the classifier's batch; a
        fraction makes one update every ``1 / gan_steps`` classifier steps (the classifier still
        gets generated images from the current networks every step). With ``joint=False`` the
        separate VAE-ACGAN trains for ``round(gan_steps * max_epochs)`` epochs.
    gan_warm_start : bool, default=False
        Keep E, G, D and their optimizers across fits (a refit retrains the classifier from
        scratch unless ``warm_start``, but continues the VAE-ACGAN), when the image shape, the
        classes and the sizes are unchanged. The authors retrain everything every round.
        Needs ``joint=True``.
    rec_weight : float, default=0.75
        Weight of the reconstruction term of L_G.
    rec_reduction : {"sum", "mean"}, default="sum"
        Squared reconstruction error in L_G summed over each image's pixels, or averaged over
        pixels (the authors' code, about 1/784 as strong on 28x28; see Notes).
    kl_weight : float, default=1.0
        Weight of the KL term in L_E.
    kl_reduction : {"mean", "sum"}, default="mean"
        KL averaged over latent dimensions (the authors' code) or summed (the textbook KL).
    gen_weight : float, default=1.0
        w, the weight of the generated terms in the classifier's loss. 0 trains C on real
        images only (the VAE-ACGAN still trains, so :meth:`sample` and :meth:`generate` work);
        with the same ``random_state`` the classifier is then the one the plain classifier
        class would fit.
    gen_warmup : float in [0, 1], default=0.0
        Fraction of ``max_epochs`` over which w rises linearly from 0 to ``gen_weight``, per
        epoch (see :func:`warmup_weight`): early generated images are noise.
    gen_filter : {None, "classifier", "discriminator"}, default=None
        Keep a generated image in the classifier's loss only if the classifier gives its
        intended label a probability >= ``gen_threshold`` (``"classifier"``), or if the
        discriminator's probability that it is real is >= ``gen_threshold``
        (``"discriminator"``). Dropped images count 0, the divisor stays the batch size
        (:func:`skal.losses.masked_cross_entropy`); ``history_`` records the fraction kept as
        ``gen_kept``.
    gen_threshold : float in [0, 1], default=0.5
        The probability ``gen_filter`` compares with.
    rec_source : {"all", "new"}, default="all"
        Which labelled images the classifier's generated terms come from: every labelled image
        (``"all"``, the authors' code: x' and G(z, y) of each real batch), or only the newly
        acquired ones (``"new"``, the paper's x' = G(E(x*), y*)), given to :meth:`fit` as
        ``new_rows`` (every row when not given); a batch of new rows is drawn at random for
        each step. E, G and D always train on all labelled images.
    augment : None, "crop_flip" or callable, default=None
        Ordinary data augmentation of the real images in the classifier's loss:
        ``"crop_flip"`` is :func:`skal.transforms.random_crop_flip`; a callable maps a batch
        tensor ``(n, C, H, W)`` to one of the same shape. E, G and D see the images unchanged.

    Attributes
    ----------
    encoder_, generator_, discriminator_ : torch.nn.Module
        The VAE-ACGAN networks (``joint=True``).
    encoder_optimizer_, generator_optimizer_, discriminator_optimizer_ : torch optimizers
        Their optimizers (``joint=True``).
    vae_acgan_ : BGADLMCDropoutClassifier
        The separately trained VAE-ACGAN (``joint=False``).

    Raises
    ------
    skal.exceptions.DivergenceError
        From ``fit`` when a loss or a VAE-ACGAN weight becomes NaN or infinite; the message
        names the loss, the epoch and the batch.

    Notes
    -----
    Where skal departs from the authors' code (``toantm/BGADL``, ``demo_mnist.py``):

    * The encoder has a real Gaussian latent (conv blocks, FC, linear heads for the mean and the
      log-variance) instead of one non-negative scalar per image and sigmoid heads.
    * In the D/C step the generated and reconstructed images are detached; the authors let
      gradients reach G and E and then discard them. Same updates, less work.
    * E, G, D use Adam(lr=2e-4, betas=(0.5, 0.999)), as the authors' earlier BDA code, instead of
      Adadelta(lr=1.0) with a step schedule.
    * The reconstruction term of L_G is summed over each image's pixels (``rec_reduction``).
      ``benchmarks/bgadl_joint_ablation.py`` (1,000 Fashion-MNIST images, 600 steps, ResNet18 as
      C): with the per-pixel mean the generator stayed at grey, textured images (a classifier
      trained on real images labelled 10-12 % of G(z, y) correctly), with the sum 70-72 %.
    * D returns logits (BCE with logits: the authors' sigmoid + BCE, numerically stable).
    * Batches are shuffled every epoch (as in every skal classifier).
    * C's BatchNorm layers normalise generated batches with the running statistics of real
      images, and only real batches update them (see ``_RealDataStats``). In the G step C runs in
      eval mode (no dropout), so G learns to be recognised by the classifier that predicts.
    * Divergence is detected: a NaN or infinite loss, an epoch mean of a loss above 100 times
      max(its first batch value, 1), or non-finite weights raise ``DivergenceError``.
    * E, G and D are initialised and draw their noise from their own ``torch.Generator`` seeded
      from ``random_state``, so they leave the classifier's random stream (batch order, dropout)
      alone.
    """

    _flat_ok = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bgadl = {name: kwargs.pop(name, default) for name, default in BGADL_DEFAULTS.items()}
        super().__init__(*args, **kwargs)
        for name, value in bgadl.items():
            setattr(self, name, value)

    _fit_state = None  # per-fit tensors and generators (never pickled)

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        extra = [
            (name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
            for name in ("loss_E", "loss_G", "loss_D", "loss_C", "gen_kept")
        ]
        return callbacks[:-1] + extra + callbacks[-1:]  # print_log stays last

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_fit_state", None)
        return state

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        self._check_bgadl_params()

    def _divergence_hint(self):
        return (f"Lower lr (now {self.lr!r}) for the classifier, or gan_lr (now "
                f"{self.gan_lr!r}) for the VAE-ACGAN")

    def _check_bgadl_params(self):
        name = type(self).__name__

        def bad(param, expected):
            raise ValueError(
                f"The '{param}' parameter of {name} must be {expected}. "
                f"Got {getattr(self, param)!r} instead."
            )

        for param in ("generative", "joint", "gan_warm_start"):
            if not isinstance(getattr(self, param), (bool, np.bool_)):
                bad(param, "a bool")
        for param in ("latent_dim", "gan_width", "gan_hidden"):
            if not _is_int(getattr(self, param), 1):
                bad(param, "an int >= 1")
        if not (_is_real(self.gan_lr) and self.gan_lr > 0):
            bad("gan_lr", "a float > 0")
        betas = self.gan_betas
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(_is_real(b) and 0 <= b < 1 for b in betas)):
            bad("gan_betas", "a pair of floats in [0, 1)")
        if not (_is_real(self.gan_steps) and self.gan_steps > 0):
            bad("gan_steps", "a float > 0")
        for param in ("rec_weight", "kl_weight", "gen_weight"):
            if not (_is_real(getattr(self, param)) and getattr(self, param) >= 0):
                bad(param, "a float >= 0")
        for param in ("gen_warmup", "gen_threshold"):
            if not (_is_real(getattr(self, param)) and 0 <= getattr(self, param) <= 1):
                bad(param, "a float in [0, 1]")
        if self.rec_reduction not in ("sum", "mean"):
            bad("rec_reduction", "'sum' or 'mean'")
        if self.kl_reduction not in ("mean", "sum"):
            bad("kl_reduction", "'mean' or 'sum'")
        if self.gen_filter not in (None, "classifier", "discriminator"):
            bad("gen_filter", "None, 'classifier' or 'discriminator'")
        if self.rec_source not in ("all", "new"):
            bad("rec_source", "'all' or 'new'")
        if not (self.augment is None or self.augment == "crop_flip" or callable(self.augment)):
            bad("augment", "None, 'crop_flip' or a callable")
        if not (isinstance(self.gan_optimizer, type)
                and issubclass(self.gan_optimizer, torch.optim.Optimizer)):
            bad("gan_optimizer", "a torch optimizer class")
        if self.gan_warm_start and not self.joint:
            raise ValueError(
                f"The 'gan_warm_start' parameter of {name} needs joint=True (the separate "
                "VAE-ACGAN of joint=False is retrained every fit). Got gan_warm_start=True "
                "with joint=False instead."
            )

    # ------------------------------------------------------------------ fitting
    def _fit_seed(self, continued):
        seed = super()._fit_seed(continued)
        # E, G, D and their noise draw from a stream of their own
        self._gan_seed = int(np.random.SeedSequence([seed, 7]).generate_state(1)[0]) % (
            2**31 - 1)
        return seed

    def _gan_seed_now(self):
        seed = getattr(self, "_gan_seed", None)
        if seed is None:
            return resolve_seed(self.random_state, owner=type(self).__name__)
        return seed

    def fit(
        self, X: ArrayLike, y: ArrayLike, new_rows: Any = None, **fit_params: Any
    ) -> "BGADLMixin":
        """Train the classifier (and, unless ``generative=False``, the VAE-ACGAN) on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Images with values in [0, 1] (uint8 images are scaled).
        y : array-like of shape (n,)
            Their labels.
        new_rows : None, int or array-like, default=None
            The newly acquired rows of X, for ``rec_source="new"``: their number k (the last k
            rows, as :class:`skal.ActiveLearner` and :func:`skal.experiment.run_experiment`
            order the labelled set), their indices, or a boolean mask. ``None``: every row.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : BGADLMixin
            This estimator, fitted.
        """
        self._new_rows = new_rows
        try:
            return super().fit(X, y, **fit_params)
        finally:
            self._new_rows = None
            self._fit_state = None

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        new_rows: Any = None,
        **fit_params: Any,
    ) -> "BGADLMixin":
        """Continue training without re-initialising the networks.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Images with values in [0, 1], of the shape of the first fit.
        y : array-like of shape (n,)
            Their labels.
        classes : array-like of shape (n_classes,), default=None
            All classes, needed on the first call when ``y`` does not contain every class.
        new_rows : None, int or array-like, default=None
            The newly acquired rows of X, as in :meth:`fit`.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : BGADLMixin
            This estimator, trained for ``max_epochs`` more epochs.
        """
        self._new_rows = new_rows
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        finally:
            self._new_rows = None
            self._fit_state = None

    def _new_mask(self, n):
        """The ``new_rows`` of the current fit as a boolean mask over the n rows of X."""
        new_rows = getattr(self, "_new_rows", None)
        mask = np.zeros(n, dtype=bool)
        if new_rows is None:
            mask[:] = True
            return mask
        owner = type(self).__name__
        if _is_int(new_rows, 1) and new_rows <= n:
            mask[n - int(new_rows):] = True
            return mask
        rows = np.asarray(new_rows)
        if rows.dtype == bool and rows.shape == (n,) and rows.any():
            return rows.copy()
        if rows.ndim == 1 and rows.size and rows.dtype.kind in "iu" and rows.min() >= 0 and (
                rows.max() < n):
            mask[rows] = True
            return mask
        raise ValueError(
            f"The 'new_rows' parameter of {owner}.fit must be None, an int in [1, {n}], indices "
            f"of rows of X or a boolean mask of length {n} with a True. Got {new_rows!r} "
            "instead."
        )

    # ------------------------------------------------------------------ networks
    def _gan_signature(self):
        return (tuple(self.input_shape_), len(self.classes_), int(self.latent_dim),
                int(self.gan_width), int(self.gan_hidden))

    def initialize_module(self) -> "BGADLMixin":
        """Build the classifier ``module_`` and, in joint mode, the VAE-ACGAN networks.

        ``encoder_``, ``generator_`` and ``discriminator_`` are kept from the previous fit with
        ``gan_warm_start``.

        Returns
        -------
        self : BGADLMixin
            This estimator, with its modules set.
        """
        super().initialize_module()
        self._gan_kept = False
        if not (self.generative and self.joint):
            return self
        signature = self._gan_signature()
        if self.gan_warm_start and getattr(self, "gan_signature_", None) == signature and all(
                hasattr(self, f"{net}_") for net in _GAN_NETS):
            self._gan_kept = True
            return self
        shape, n_classes = signature[0], signature[1]
        width, hidden = int(self.gan_width), int(self.gan_hidden)
        init = torch.Generator().manual_seed(self._gan_seed_now())
        with torch.random.fork_rng(devices=[]):  # torch's default init must not use up the
            # classifier's random stream; init_normal_ then draws every weight from ``init``
            encoder = Encoder(shape, int(self.latent_dim), width=width, hidden=hidden)
            generator = Generator(shape, n_classes, int(self.latent_dim), width=width,
                                  hidden=hidden)
            discriminator = Discriminator(shape, width=width, hidden=hidden)
        self.encoder_ = init_normal_(encoder, generator=init)
        self.generator_ = init_normal_(generator, generator=init)
        self.discriminator_ = init_normal_(discriminator, generator=init)
        self.gan_signature_ = signature
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> "BGADLMixin":
        """Build ``optimizer_`` for the classifier only, and one optimizer per VAE-ACGAN net.

        skorch's default would put every module's parameters in ``optimizer_``; here
        ``encoder_optimizer_``, ``generator_optimizer_`` and ``discriminator_optimizer_`` are
        ``gan_optimizer`` instances of their own.

        Parameters
        ----------
        triggered_directly : None, default=None
            Deprecated in skorch and unused; kept for skorch's signature.

        Returns
        -------
        self : BGADLMixin
            This estimator, with its optimizers set.
        """
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kwargs)
        if not (self.generative and self.joint):
            return self
        for net in _GAN_NETS:
            name = f"{net}_optimizer"
            if getattr(self, "_gan_kept", False) and hasattr(self, name + "_"):
                continue
            module = getattr(self, net + "_")
            args, kwargs = self.get_params_for_optimizer(name, module.named_parameters())
            given = self.get_params_for(name)
            if "lr" not in given:
                kwargs["lr"] = float(self.gan_lr)
            if "betas" not in given and _accepts(self.gan_optimizer, "betas"):
                kwargs["betas"] = tuple(float(b) for b in self.gan_betas)
            setattr(self, name + "_", self.gan_optimizer(*args, **kwargs))
        return self

    # ------------------------------------------------------------------ data
    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return the parent's loader; for training, also prepare the per-fit BGADL data.

        The loader shuffles training batches and joins a last batch of one to the one before.
        For the generative modes a training loader also prepares the training rows (for extra
        VAE-ACGAN batches), the new rows (``rec_source="new"``) and, with ``joint=False``, the
        separate VAE-ACGAN and its x'.

        Parameters
        ----------
        dataset : torch Dataset
            The data to iterate over.
        training : bool, default=False
            Training batches or prediction batches.

        Returns
        -------
        iterator : torch.utils.data.DataLoader
            The batches.
        """
        iterator = super().get_iterator(dataset, training=training)
        if training and self.generative:
            self._prepare_fit_state(dataset, len(iterator))
        return iterator

    def _prepare_fit_state(self, dataset, n_batches):
        X, y, rows = _dataset_arrays(dataset)
        _check_unit_range(self, X)
        mask = self._new_mask(len(dataset.dataset) if rows is not None else len(X))
        mask = mask[rows] if rows is not None else mask
        if not mask.any():
            warnings.warn(
                f"None of the new_rows of this {type(self).__name__}.fit is in the training "
                "split (train_split held them all out); the generated terms use every training "
                "row instead.",
                UserWarning,
                stacklevel=4,
            )
            mask[:] = True
        seed = self._gan_seed_now()
        state = {
            "n_batches": n_batches,
            "X": torch.from_numpy(np.ascontiguousarray(X)),
            "y": torch.from_numpy(np.ascontiguousarray(y)),
            "X_new": torch.from_numpy(np.ascontiguousarray(X[mask])),
            "y_new": torch.from_numpy(np.ascontiguousarray(y[mask])),
            "noise": torch.Generator(device=torch.device(self.device)).manual_seed(seed + 1),
            "draw": torch.Generator().manual_seed(seed + 2),
            "credit": 0.0,
            "epoch": 0,
            "weight": 0.0,
            "first": {},  # each loss's first batch value: the reference for explosions
        }
        if not self.joint:
            state.update(self._fit_separate_vae_acgan(X, y, mask, seed))
        self._fit_state = state

    def _fit_separate_vae_acgan(self, X, y, mask, seed):
        """``joint=False``: train a VAE-ACGAN of its own on the training rows; make x'."""
        gan = BGADLMCDropoutClassifier(
            AuxiliaryClassifier,
            optimizer=self.gan_optimizer,
            lr=float(self.gan_lr),
            max_epochs=max(1, int(round(float(self.gan_steps) * self.max_epochs))),
            batch_size=self.batch_size,
            device=self.device,
            random_state=seed,
            **{k: getattr(self, k) for k in BGADL_DEFAULTS
               if k not in ("generative", "joint", "gen_weight", "gen_warmup", "gen_filter",
                            "gen_threshold", "rec_source", "augment", "gan_steps",
                            "gan_warm_start")},
        )
        if _accepts(self.gan_optimizer, "betas"):
            gan.set_params(optimizer__betas=tuple(float(b) for b in self.gan_betas))
        gan.fit(X, y)
        gan._set_training(False)
        self.vae_acgan_ = gan
        src_X, src_y = X[mask], y[mask]
        X_gen = gan._sample_encoded(src_X, gan.label_encoder_.transform(src_y), seed + 3)
        return {"X_gen": torch.from_numpy(X_gen), "y_gen": torch.from_numpy(src_y)}

    # ------------------------------------------------------------------ epochs
    def on_epoch_begin(
        self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any
    ) -> None:
        """Set this epoch's weight of the generated terms (``gen_warmup``) and record it.

        Parameters
        ----------
        net : BGADLMixin
            This estimator (skorch's callback protocol).
        dataset_train : torch Dataset, default=None
            The training data.
        dataset_valid : torch Dataset, default=None
            The validation data, if any.
        **kwargs
            Other arguments of skorch's ``on_epoch_begin``.
        """
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        state = self._fit_state
        if state is None:  # generative=False
            return
        weight = warmup_weight(state["epoch"], self.max_epochs, self.gen_weight, self.gen_warmup)
        state["weight"] = weight
        state["epoch"] += 1
        self.history.record("gen_weight", weight)

    def on_epoch_end(
        self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any
    ) -> None:
        """Refuse an epoch whose mean VAE-ACGAN or classifier loss exploded.

        Exploded means more than 100 times the larger of the loss's first batch value and 1
        (skal's ``DivergenceCheck`` callback checks NaN batch losses and the weights of every
        module).

        Parameters
        ----------
        net : BGADLMixin
            This estimator (skorch's callback protocol).
        dataset_train : torch Dataset, default=None
            The training data.
        dataset_valid : torch Dataset, default=None
            The validation data, if any.
        **kwargs
            Other arguments of skorch's ``on_epoch_end``.

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss exploded.
        """
        super().on_epoch_end(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        state = self._fit_state
        if state is None:
            return
        batches = self.history[-1, "batches"]
        for key, ref in state["first"].items():
            values = [b[key] for b in batches if key in b]
            if not values:
                continue
            mean = float(np.mean(values))
            limit = _EXPLOSION_FACTOR * max(ref, 1.0)
            if not mean <= limit:
                self._diverged(key, f"averaged {mean:.4g} over epoch {len(self.history)}/"
                               f"{self.max_epochs}, more than {_EXPLOSION_FACTOR:g} times "
                               f"max(its first batch value {ref:.4g}, 1)")

    # ------------------------------------------------------------------ training step
    def _augment(self, x):
        if self.augment is None:
            return x
        if self.augment == "crop_flip":
            return random_crop_flip(x)
        return self.augment(x)

    def _diverged(self, key, detail):
        """Raise DivergenceError for loss ``key``; ``loss_name`` and ``detail`` ride along so
        that a wrapper (GenerativeAugmenter) can word the error for its own parameters."""
        lr_hint = (f"try a lower learning rate (e.g. lr={self.lr / 10:g})" if key == "loss_C"
                   else f"GAN training is unstable at gan_lr={self.gan_lr!r}; try a lower "
                        f"learning rate (e.g. gan_lr={self.gan_lr / 10:g}) or a smaller "
                        "kl_weight")
        exc = DivergenceError(
            f"{type(self).__name__} training diverged: the {_LOSS_LABELS[key]} {detail}. "
            f"{lr_hint[0].upper()}{lr_hint[1:]}."
        )
        exc.loss_name, exc.detail = key, detail
        raise exc

    def _check_finite(self, losses):
        state = self._fit_state
        for key, value in losses.items():
            if value is None:
                continue
            value = float(value.detach())
            if not np.isfinite(value):
                self._diverged(key, f"is {value} at epoch {len(self.history)}/"
                               f"{self.max_epochs}, batch {len(self.history[-1, 'batches'])}/"
                               f"{state['n_batches']}")
            state["first"].setdefault(key, value)

    def _onehot(self, y, dtype):
        return F.one_hot(y, len(self.classes_)).to(dtype)

    def _draw(self, X, y, n):
        """n rows drawn at random (with replacement) from the CPU tensors X, y, on the device."""
        idx = torch.randint(len(X), (n,), generator=self._fit_state["draw"])
        return X[idx].to(self.device), y[idx].to(self.device)

    def _take_gan_updates(self):
        state = self._fit_state
        state["credit"] += float(self.gan_steps)
        n = int(state["credit"] + 1e-9)
        state["credit"] -= n
        return n

    def _vae_acgan_update(self, x, y, last):
        """The E step and the G step; then L_D on images of the updated G. D is stepped here
        unless ``last`` (then with C, as in the authors' code). Returns the losses and the
        detached images and D logits for the classifier."""
        encoder, generator, discriminator = self.encoder_, self.generator_, self.discriminator_
        noise = self._fit_state["noise"]
        y_onehot = self._onehot(y, x.dtype)

        # 1. E step: reconstruct x through the VAE; only E is updated.
        with _Frozen(generator):
            mu, log_var = encoder(x)
            z_rec = reparameterize(mu, log_var, generator=noise)
            loss_e = encoder_loss(generator(z_rec, y_onehot), x, mu, log_var,
                                  kl_reduction=self.kl_reduction, kl_weight=self.kl_weight)
            self._check_finite({"loss_E": loss_e})
            self.encoder_optimizer_.zero_grad(set_to_none=True)
            loss_e.backward()
        self.encoder_optimizer_.step()

        # 2. G step: fool D, be recognised by C (in eval mode), reconstruct x; only G learns.
        z_rec = z_rec.detach()
        z = torch.randn(z_rec.shape, generator=noise, device=x.device, dtype=x.dtype)
        with _Frozen(discriminator, self.module_), _EvalMode(self.module_):
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
            loss_g = generator_loss(
                discriminator(x_fake), _logits(self.module_(x_fake)), y, x_rec, x,
                rec_weight=self.rec_weight, rec_reduction=self.rec_reduction,
            )
            self._check_finite({"loss_G": loss_g})
            self.generator_optimizer_.zero_grad(set_to_none=True)
            loss_g.backward()
        self.generator_optimizer_.step()

        # 3. L_D on images from the updated G, without gradients to G or E.
        with torch.no_grad():
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
        d_fake, d_rec = discriminator(x_fake), discriminator(x_rec)
        loss_d = discriminator_loss(discriminator(x), d_fake, d_rec)
        self._check_finite({"loss_D": loss_d})
        if not last:
            self.discriminator_optimizer_.zero_grad(set_to_none=True)
            loss_d.backward()
            self.discriminator_optimizer_.step()
        generated = (x_fake, x_rec, y, d_fake.detach(), d_rec.detach())
        return loss_e, loss_g, loss_d, generated

    @torch.no_grad()
    def _generate_for_classifier(self, x, y):
        """x_fake = G(z, y) and x_rec = G(E(x), y) from the current networks (no update)."""
        noise = self._fit_state["noise"]
        y_onehot = self._onehot(y, x.dtype)
        mu, log_var = self.encoder_(x)
        z_rec = reparameterize(mu, log_var, generator=noise)
        z = torch.randn(z_rec.shape, generator=noise, device=x.device, dtype=x.dtype)
        x_fake, x_rec = self.generator_(z, y_onehot), self.generator_(z_rec, y_onehot)
        d_fake = d_rec = None
        if self.gen_filter == "discriminator":
            d_fake, d_rec = self.discriminator_(x_fake), self.discriminator_(x_rec)
        return x_fake, x_rec, y, d_fake, d_rec

    def _keep(self, logits, d_logits, y):
        """Mask of the generated images the classifier's loss keeps (None: all)."""
        if self.gen_filter is None:
            return None
        if self.gen_filter == "classifier":
            confidence = torch.softmax(logits.detach(), dim=1).gather(1, y[:, None])[:, 0]
        else:
            confidence = torch.sigmoid(d_logits.detach())
        return confidence >= float(self.gen_threshold)

    def _generated_loss(self, images, y, d_logits):
        """Sum over the generated batches of the masked CE of C, and the fraction kept."""
        loss, kept, total = 0.0, 0.0, 0
        with _RealDataStats(self.module_):  # running BatchNorm statistics: real images only
            for x_gen, d_gen in zip(images, d_logits):
                logits = _logits(self.module_(x_gen))
                keep = self._keep(logits, d_gen, y)
                loss = loss + masked_cross_entropy(logits, y, keep)
                kept += len(y) if keep is None else float(keep.sum())
                total += len(y)
        return loss, kept / max(total, 1)

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run one BGADL step on a mini-batch: the VAE-ACGAN updates, then the classifier's.

        Parameters
        ----------
        batch : tuple of (X, y) tensors
            One training mini-batch.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The classifier's ``loss`` (L_C) and ``y_pred`` of the batch, as skorch expects.
        """
        if not self.generative:
            return self._plain_step(batch, **fit_params)
        self._set_training(True)
        x, y = (to_tensor(b, self.device) for b in unpack_data(batch))
        state = self._fit_state
        losses = {"loss_E": None, "loss_G": None, "loss_D": None}
        generated = loss_d = None
        if self.joint:
            n_updates = self._take_gan_updates()
            for k in range(n_updates):  # extra updates on random batches first, then on (x, y)
                last = k == n_updates - 1
                xb, yb = (x, y) if last else self._draw(state["X"], state["y"], len(x))
                loss_e, loss_g, loss_d, generated = self._vae_acgan_update(xb, yb, last)
                losses.update(loss_E=loss_e, loss_G=loss_g, loss_D=loss_d)

        # the classifier: real images (augmented) + weight * generated images
        self.optimizer_.zero_grad()
        x_real = self._augment(x)
        y_pred = self.infer(x_real, **fit_params)
        loss_c = self.get_loss(_logits(y_pred), y, X=x_real, training=True)
        weight, kept = state["weight"], None
        if weight > 0:
            if not self.joint:
                x_gen, y_gen = self._draw(state["X_gen"], state["y_gen"], len(x))
                loss_gen, kept = self._generated_loss(
                    [x_gen], y_gen, [self._draw_d_logits(x_gen)])
            else:
                if self.rec_source == "new" or generated is None:
                    xs, ys = (self._draw(state["X_new"], state["y_new"], len(x))
                              if self.rec_source == "new" else (x, y))
                    generated = self._generate_for_classifier(xs, ys)
                x_fake, x_rec, y_gen, d_fake, d_rec = generated
                loss_gen, kept = self._generated_loss([x_fake, x_rec], y_gen, [d_fake, d_rec])
            loss_c = loss_c + weight * loss_gen
        self._check_finite({"loss_C": loss_c})
        if loss_d is not None:
            self.discriminator_optimizer_.zero_grad(set_to_none=True)
            (loss_d + loss_c).backward()  # D and C share no parameters
        else:
            loss_c.backward()
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.module_.named_parameters()), batch=batch, training=True)
        if loss_d is not None:
            self.discriminator_optimizer_.step()
        self.optimizer_.step()

        record = self.history.record_batch
        for key, value in {**losses, "loss_C": loss_c}.items():
            if value is not None:
                record(key, float(value.detach()))
        if kept is not None and self.gen_filter is not None:
            record("gen_kept", kept)
        return {"loss": loss_c.detach(), "y_pred": y_pred}

    def _draw_d_logits(self, x_gen):
        """joint=False: the separate discriminator's logits of x' (for gen_filter)."""
        if self.gen_filter != "discriminator":
            return None
        with torch.no_grad(), _EvalMode(self.vae_acgan_.discriminator_):
            return self.vae_acgan_.discriminator_(x_gen)

    def _plain_step(self, batch, **fit_params):
        """generative=False: skorch's own step, on augmented images when ``augment`` is set."""
        if self.augment is not None:
            x, y = unpack_data(batch)
            batch = (self._augment(to_tensor(x, self.device)), y)
        return super().train_step(batch, **fit_params)

    # ------------------------------------------------------------------ generation
    def _check_generator_fitted(self):
        if self.generative and not self.joint:
            check_is_fitted(self, ["vae_acgan_"])
        elif not self.generative:
            raise AttributeError(
                f"This {type(self).__name__} was built with generative=False: it has no "
                "VAE-ACGAN to sample from."
            )
        else:
            check_is_fitted(self, ["encoder_", "generator_", "label_encoder_"])

    def _encode_labels(self, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} not among the classes this "
                f"{type(self).__name__} was fitted with: {self.classes_.tolist()}."
            )
        return y, self.label_encoder_.transform(y).astype(np.int64)

    def _sample_encoded(self, X, y_idx, seed):
        """x' = G(E(x), y) for validated images X and class indices y_idx (eval mode)."""
        if not self.joint:
            gan = self.vae_acgan_
            return gan._sample_encoded(X, gan.label_encoder_.transform(y_idx), seed)
        noise = torch.Generator(device=torch.device(self.device)).manual_seed(seed)
        out = np.empty(X.shape, dtype=np.float32)
        with _EvalMode(self.encoder_, self.generator_), torch.no_grad():
            for s in _batches(len(X), self.batch_size):
                xb = torch.as_tensor(X[s], device=self.device)
                yb = torch.as_tensor(y_idx[s], device=self.device)
                mu, log_var = self.encoder_(xb)
                z = reparameterize(mu, log_var, generator=noise)
                out[s] = self.generator_(z, self._onehot(yb, z.dtype)).cpu().numpy()
        return _finite_images(self, out)

    def _generate_encoded(self, y_idx, seed):
        """G(z, y) for class indices y_idx, z ~ N(0, I) (eval mode)."""
        if not self.joint:
            gan = self.vae_acgan_
            return gan._generate_encoded(gan.label_encoder_.transform(y_idx), seed)
        noise = torch.Generator(device=torch.device(self.device)).manual_seed(seed)
        out = np.empty((len(y_idx), *self.input_shape_), dtype=np.float32)
        with _EvalMode(self.generator_), torch.no_grad():
            for s in _batches(len(y_idx), self.batch_size):
                yb = torch.as_tensor(y_idx[s], device=self.device)
                z = torch.randn((len(yb), int(self.latent_dim)), generator=noise,
                                device=torch.device(self.device))
                out[s] = self.generator_(z, self._onehot(yb, z.dtype)).cpu().numpy()
        return _finite_images(self, out)

    def sample(
        self, X: ArrayLike, y: ArrayLike, *, random_state: RandomStateLike = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate variations x' = G(E(x), y) of labelled images: the BGADL step.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Images of the fitted shape, values in [0, 1].
        y : array-like of shape (n,)
            Their labels, among ``classes_``.
        random_state : None, int, RandomState or Generator, default=None
            Seeds the latent noise; ``None`` falls back to the estimator's ``random_state``.

        Returns
        -------
        X_gen : ndarray of float32, shape (n, C, H, W)
            Generated images with values in [0, 1].
        y_gen : ndarray of shape (n,)
            The labels ``y``.
        """
        self._check_generator_fitted()
        X = self._validate_X(X, reset=False)
        _check_unit_range(self, X)
        y, y_idx = self._encode_labels(y)
        if len(y) != len(X):
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {len(X)} and {len(y)}."
            )
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self._sample_encoded(np.clip(X, 0.0, 1.0), y_idx, seed), y.copy()

    def generate(self, y: ArrayLike, *, random_state: RandomStateLike = None) -> np.ndarray:
        """Draw class-conditional images G(z, y), z ~ N(0, I).

        Parameters
        ----------
        y : array-like of shape (n,)
            The class of each image, among ``classes_``.
        random_state : None, int, RandomState or Generator, default=None
            Seeds z; ``None`` falls back to the estimator's ``random_state``.

        Returns
        -------
        X_gen : ndarray of float32, shape (n, C, H, W)
            Generated images with values in [0, 1], one per entry of ``y``.
        """
        self._check_generator_fitted()
        _, y_idx = self._encode_labels(y)
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self._generate_encoded(y_idx, seed)


def _batches(n, batch_size):
    step = max(int(batch_size), 1)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _finite_images(owner, out):
    if not np.isfinite(out).all():  # pragma: no cover - fit checks the weights
        raise DivergenceError(
            f"{type(owner).__name__} produced NaN or infinite images; refit it with a lower lr."
        )
    return out


def _check_unit_range(owner, X):
    if X.size and (X.min() < -_RANGE_TOL or X.max() > 1 + _RANGE_TOL):
        raise ValueError(
            f"{type(owner).__name__} needs images with values in [0, 1] (the range of its "
            f"generator); X ranges over [{X.min():.4g}, {X.max():.4g}]. Pass uint8 images "
            "(scaled automatically) or scale the data, e.g. with sklearn's MinMaxScaler."
        )


# ------------------------------------------------------------------------------- estimators
class BGADLClassifier(BGADLMixin, ResNet18Classifier):
    """ResNet18 with MC dropout, trained jointly with a VAE-ACGAN: BGADL's learner.

    A :class:`skal.ResNet18Classifier` (same parameters, same ``predict``, ``predict_proba`` and
    ``sample_proba``) whose network is the auxiliary classifier of a VAE-ACGAN trained in the
    same skorch fit loop; see :class:`BGADLMixin` for the training and the BGADL parameters
    (``gen_weight``, ``gen_warmup``, ``gen_filter``, ``rec_source``, ``joint``, ``gan_steps``,
    ``gan_warm_start``, ``augment``, ...). Query it with :func:`skal.bald`.

    Parameters
    ----------
    *args
        ``preact``, ``dropout`` and ``width``, in that order, as in
        :class:`skal.ResNet18Classifier`.
    **kwargs
        The other :class:`skal.ResNet18Classifier` parameters (``image_shape``, ``optimizer``,
        ``lr``, ``max_epochs``, ``batch_size``, ``random_state``), the BGADL parameters of
        :class:`BGADLMixin` and any skorch parameter (``callbacks``, ``train_split``,
        ``device``, ``encoder_optimizer__*``, ...).

    See Also
    --------
    BGADLMixin : The BGADL training and its parameters.
    BGADLMCDropoutClassifier : The same for any MC-dropout network.
    skal.bald : The query strategy of BGADL.

    References
    ----------
    .. [1] T. Tran, T.-T. Do, I. Reid, G. Carneiro, "Bayesian Generative Active Deep Learning",
       ICML 2019, arXiv:1904.11643. Code: https://github.com/toantm/BGADL.

    Examples
    --------
    >>> from skal import BGADLClassifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = BGADLClassifier(width=4, latent_dim=8, max_epochs=1, batch_size=20,
    ...                       random_state=0).fit(X[:40], y[:40])
    >>> clf.predict(X[:3]).shape, clf.sample(X[:2], y[:2])[0].shape
    ((3,), (2, 1, 8, 8))
    >>> sorted(k for k in clf.history_[-1] if k.startswith("loss_"))
    ['loss_C', 'loss_D', 'loss_E', 'loss_G']
    """


class BGADLMCDropoutClassifier(BGADLMixin, MCDropoutClassifier):
    """Any MC-dropout network (``module``), trained jointly with a VAE-ACGAN (BGADL).

    :class:`skal.MCDropoutClassifier` with the BGADL training of :class:`BGADLMixin`; e.g.
    ``BGADLMCDropoutClassifier(skal.nets.BGADLLeNet)`` is the authors' MNIST setting.

    Parameters
    ----------
    *args
        ``module``, the network: a torch module class or instance, as in
        :class:`skal.MCDropoutClassifier`; it takes images and returns logits.
    **kwargs
        :class:`skal.MCDropoutClassifier` / skorch parameters and the BGADL parameters of
        :class:`BGADLMixin`.

    See Also
    --------
    BGADLMixin : The BGADL training and its parameters.
    BGADLClassifier : The same with a ResNet18.

    Examples
    --------
    >>> import torch
    >>> from skal import BGADLMCDropoutClassifier
    >>> from skal.nets import AuxiliaryClassifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = BGADLMCDropoutClassifier(AuxiliaryClassifier, optimizer=torch.optim.Adam,
    ...                                lr=1e-3, latent_dim=8, max_epochs=1, batch_size=20,
    ...                                random_state=0).fit(X[:40], y[:40])
    >>> clf.generate([0, 1]).shape
    (2, 1, 8, 8)
    """


def bgadl_counterpart(classifier, owner="GenerativeAugmenter"):
    """An unfitted BGADL classifier with the parameters of a skal classifier.

    :class:`skal.ResNet18Classifier` becomes :class:`BGADLClassifier`,
    :class:`skal.MCDropoutClassifier` becomes :class:`BGADLMCDropoutClassifier`, and a BGADL
    classifier is cloned.

    Raises
    ------
    TypeError
        For any other estimator.
    """
    if isinstance(classifier, BGADLMixin):
        return clone(classifier)
    if type(classifier) is ResNet18Classifier:
        return BGADLClassifier(**clone(classifier).get_params(deep=False))
    if type(classifier) is MCDropoutClassifier:
        return BGADLMCDropoutClassifier(**clone(classifier).get_params(deep=False))
    raise TypeError(
        f"The 'classifier' parameter of {owner} must be None or a skal MCDropoutClassifier "
        "(MCDropoutClassifier, ResNet18Classifier, or a BGADL classifier such as "
        "BGADLClassifier), whose network becomes the ACGAN auxiliary classifier. Got "
        f"{type(classifier).__name__} instead."
    )
