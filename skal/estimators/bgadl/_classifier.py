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

:class:`BGADLMixin` holds the parameters and the fit flow; its pieces are mixins with one job each:
the networks and their optimizers (``skal.estimators.bgadl._networks.BGADLNetworksMixin``), the per-fit data
of the generative terms (``skal.estimators.bgadl._data.BGADLFitDataMixin``), the update
(``skal.estimators.bgadl._step.BGADLStepMixin``) and generation (``sample``, ``generate``)
``skal.estimators.bgadl._generation.BGADLGenerationMixin``. :class:`BGADLClassifier` (ResNet18) and
:class:`BGADLMCDropoutClassifier` (any module) are the estimators. :class:`skal.GenerativeAugmenter`
is the imbalanced-learn sampler over the same networks and losses.
"""

from typing import Any, ClassVar

import torch
from sklearn.base import clone
from skorch.callbacks import PassthroughScoring

from ...callbacks import RecalibrateBatchNorm
from ...nets.vae_acgan import (
    AuxiliaryClassifier,
)
from ...utils.params import Choice, Float, Int, Satisfies
from ...utils.seeds import derive_seed
from ...utils.skorch_compat import (
    add_default_callbacks,
    set_training,
)
from ...utils.typing import ArrayLike
from ...utils.validation import accepts, resolve_seed
from .._classifier import MCDropoutClassifier, ResNet18Classifier
from ._data import BGADLFitDataMixin
from ._generation import BGADLGenerationMixin
from ._networks import BGADLNetworksMixin
from ._step import BGADLStepMixin

__all__ = ["BGADLMixin", "BGADLClassifier", "BGADLMCDropoutClassifier"]

#: The BGADL parameters and their defaults (the constructor arguments :class:`BGADLMixin` adds).
#: The paper's (and the authors' code's) weight of the generated terms; the default is 0.
PAPER_GEN_WEIGHT = 1.0

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
    "gen_weight": 0.0,
    "gen_warmup": 0.0,
    "gen_filter": None,
    "gen_threshold": 0.5,
    "gen_batchnorm": "running",
    "recalibrate_bn": "auto",
    "rec_source": "all",
    "augment": None,
}


# ------------------------------------------------------------------------------- helpers
class _RecalibrateIfAsked(RecalibrateBatchNorm):
    """The default callback behind ``recalibrate_bn``: re-estimates only when it resolves True."""

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if net._recalibrates_bn():
            super().on_train_end(net, X=X, y=y, **kwargs)


def _is_optimizer_class(value):
    return isinstance(value, type) and issubclass(value, torch.optim.Optimizer)


#: Adam's ``betas``: two floats in [0, 1).
BETAS = Satisfies(
    lambda b: isinstance(b, (tuple, list)) and len(b) == 2
    and all(Float(0, 1, closed="left").is_satisfied_by(v) for v in b),
    "a pair of floats, each in the range [0.0, 1.0)",
)


# ------------------------------------------------------------------------------- the mixin
class BGADLMixin(BGADLNetworksMixin, BGADLFitDataMixin, BGADLStepMixin, BGADLGenerationMixin):
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
       updated G, with w = ``gen_weight`` (1 in the paper, 0 by default here: see below).

    ``train_loss`` in ``history_`` is L_C; the epoch means of the four losses are recorded as
    ``loss_E``, ``loss_G``, ``loss_D``, ``loss_C``, and the generated-term weight of each epoch
    as ``gen_weight``. Validation (``train_split``) scores C on real images only.

    Parameters
    ----------
    *args
        Positional parameters of the classifier it is mixed into.
    **kwargs
        Keyword parameters of that classifier, and the mixin's own:

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
        gen_weight : float, default=0.0
            The weight w of the generated terms in the classifier's loss; the paper uses 1. The
            default 0 trains C on real images only (the VAE-ACGAN still trains, so :meth:`sample`
            and :meth:`generate` work); with the same ``random_state`` the classifier is then the
            one the plain classifier class would fit, so BGADL with BALD is never less accurate
            than BALD alone. It is the default because every positive weight measured in
            ``benchmarks/bgadl_ablation.py`` was below BALD alone at some label budget (the paper's
            1 by up to 10 points; see docs/bgadl_ablation.md); set ``gen_weight=1.0`` for the
            paper's scheme.
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
        gen_batchnorm : {"running", "batch"}, default="running"
            How the classifier's BatchNorm layers normalise generated and reconstructed batches:
            with the running statistics of real images, as at prediction time (``"running"``), or
            with the batch's own statistics (``"batch"``, skal's earlier behaviour, what
            ``benchmarks/bgadl_joint_ablation.py`` compares). Only real batches update the running
            statistics either way.
        recalibrate_bn : bool or "auto", default="auto"
            After training, re-estimate the classifier's BatchNorm running statistics on the real
            training images (:class:`skal.callbacks.RecalibrateBatchNorm`; the weights do not
            change). With the generated terms in the loss the running statistics can fall out of
            step with the weights: ``benchmarks/bgadl_trace.py`` found a weight-1 run whose test
            accuracy swung between 10 % and 67 % from epoch to epoch and ended at 15 %, and at
            58-67 % with the statistics re-estimated. ``"auto"`` is True when the generated terms
            are in the classifier's loss (``generative`` and ``gen_weight > 0``) and False
            otherwise, so that ``gen_weight=0`` stays bit for bit the plain classifier. The default
            was False before; the committed BGADL benchmark numbers with a positive weight and no
            ``recalibrate_bn`` were made with False.
        rec_source : {"all", "new"}, default="all"
            Which labelled images the classifier's generated terms come from: every labelled image
            (``"all"``, the authors' code: x' and G(z, y) of each real batch), or only the newly
            acquired ones (``"new"``, the paper's x' = G(E(x*), y*)), given to :meth:`fit` as
            ``new_rows`` (every row when not given); a batch of new rows is drawn at random for
            each step. E, G and D always train on all labelled images.
        augment : None, "crop_flip" or callable, default=None
            Ordinary data augmentation of the real images in the classifier's loss:
            ``"crop_flip"`` is :func:`skal.data.transforms.random_crop_flip`; a callable maps a batch
            tensor ``(n, C, H, W)`` to one of the same shape. E, G and D see the images unchanged.
            The inherited ``train_transform`` (a per-image transform) applies to the same real
            images, after ``augment``; generated images get neither.

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

    See Also
    --------
    BGADLClassifier : The mixin on a ResNet18.
    BGADLMCDropoutClassifier : The mixin on any MC-dropout network.
    skal.GenerativeAugmenter : A separately trained VAE-ACGAN as a sampler.

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
      images, and only real batches update them (``gen_batchnorm``). In the G step C runs in
      eval mode (no dropout), so G learns to be recognised by the classifier that predicts.
    * Divergence is detected: a NaN or infinite loss, an epoch mean of a loss above 100 times
      max(its first batch value, 1), or non-finite weights raise ``DivergenceError``.
    * E, G and D are initialised and draw their noise from their own ``torch.Generator`` seeded
      from ``random_state``, so they leave the classifier's random stream (batch order, dropout)
      alone.

    Examples
    --------
    >>> from skal import MCDropoutClassifier
    >>> from skal.estimators.bgadl import BGADLMixin
    >>> class BGADLMLP(BGADLMixin, MCDropoutClassifier):
    ...     pass
    >>> BGADLMLP(module=None, gen_weight=0.3).gen_weight
    0.3
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
        extra = [
            (name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
            for name in ("loss_E", "loss_G", "loss_D", "loss_C", "gen_kept")
        ]
        extra.append(("recalibrate_bn", _RecalibrateIfAsked()))
        return add_default_callbacks(super()._default_callbacks, extra)

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

    _parameter_constraints: ClassVar[dict] = {
        "generative": ["boolean"],
        "joint": ["boolean"],
        "gan_warm_start": ["boolean"],
        "latent_dim": [Int(1)],
        "gan_width": [Int(1)],
        "gan_hidden": [Int(1)],
        "gan_lr": [Float(0, None, closed="neither")],
        "gan_betas": [BETAS],
        "gan_steps": [Float(0, None, closed="neither")],
        "rec_weight": [Float(0, None, closed="left")],
        "kl_weight": [Float(0, None, closed="left")],
        "gen_weight": [Float(0, None, closed="left")],
        "gen_warmup": [Float(0, 1)],
        "gen_threshold": [Float(0, 1)],
        "rec_reduction": [Choice("sum", "mean")],
        "kl_reduction": [Choice("mean", "sum")],
        "gen_filter": [None, Choice("classifier", "discriminator")],
        "gen_batchnorm": [Choice("running", "batch")],
        "recalibrate_bn": ["boolean", Choice("auto")],
        "rec_source": [Choice("all", "new")],
        "augment": [None, Choice("crop_flip"), callable],
        "gan_optimizer": [Satisfies(_is_optimizer_class, "a torch optimizer class")],
    }

    def _recalibrates_bn(self):
        """``recalibrate_bn`` resolved: ``"auto"`` is whether generated terms are in C's loss."""
        if isinstance(self.recalibrate_bn, str):  # "auto" (validated at fit)
            return bool(self.generative) and float(self.gen_weight) > 0
        return bool(self.recalibrate_bn)

    def _check_bgadl_params(self):
        if self.gan_warm_start and not self.joint:
            raise ValueError(
                f"The 'gan_warm_start' parameter of {type(self).__name__} needs joint=True (the "
                "separate VAE-ACGAN of joint=False is retrained every fit). Got "
                "gan_warm_start=True with joint=False instead."
            )

    # ------------------------------------------------------------------ fitting
    def _fit_seed(self, continued):
        seed = super()._fit_seed(continued)
        # E, G, D and their noise draw from a stream of their own
        self._gan_seed = derive_seed(seed, 7)
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
        if accepts(self.gan_optimizer, "betas"):
            gan.set_params(optimizer__betas=tuple(float(b) for b in self.gan_betas))
        gan.fit(X, y)
        set_training(gan, False)
        self.vae_acgan_ = gan
        src_X, src_y = X[mask], y[mask]
        X_gen = gan._sample_encoded(src_X, gan.label_encoder_.transform(src_y), seed + 3)
        return {"X_gen": torch.from_numpy(X_gen), "y_gen": torch.from_numpy(src_y)}


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
