"""GenerativeAugmenter: the BGADL VAE-ACGAN as an imbalanced-learn style sampler.

The augmenter learns, from labelled images, an encoder E, a class-conditional generator G (also the
VAE decoder), a real/fake discriminator D and an auxiliary classifier C, trained jointly as in
Bayesian Generative Active Deep Learning (BGADL). It then produces new labelled images:

* :meth:`GenerativeAugmenter.sample` ``(X, y) -> G(E(x), y)``: variations of given labelled images,
  the BGADL step applied to the samples that BALD selected;
* :meth:`GenerativeAugmenter.generate` ``y -> G(z, y)``, z ~ N(0, I): class-conditional samples;
* :meth:`GenerativeAugmenter.fit_resample`: the imbalanced-learn sampler API, so the augmenter can
  sit in front of a classifier in an ``imblearn.pipeline.Pipeline`` (a scikit-learn ``Pipeline``
  cannot host a step that adds rows).

The networks, losses and training loop are those of :mod:`skal.estimators.bgadl` (a skorch net with E, G and
D as extra modules); this class is a thin sampler over such a net. Its parameters and input
checks are in :mod:`skal.estimators.bgadl._augment_params`, the building and fitting of the net in
:mod:`skal.estimators.bgadl._augment_training`. imbalanced-learn is optional: without it the class derives from
scikit-learn's ``BaseEstimator`` and keeps the same ``fit_resample`` method.
"""

from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ...exceptions import DivergenceError
from ...utils.seeds import wrap_seed
from ...utils.typing import ArrayLike, RandomStateLike
from ...utils.validation import resolve_seed
from ._augment_params import AUGMENTER_CONSTRAINTS, known_labels, unit_images
from ._augment_training import fit_augmenter

try:  # optional dependency
    from imblearn.base import BaseSampler as _SamplerBase
except ImportError:  # pragma: no cover - exercised by a test that hides imblearn
    _SamplerBase = BaseEstimator

__all__ = ["GenerativeAugmenter", "ConvergenceError"]

#: Kept for code written before :class:`skal.exceptions.DivergenceError`: the same class.
ConvergenceError = DivergenceError


class GenerativeAugmenter(_SamplerBase):
    """VAE-ACGAN data augmentation for images: BGADL's generative model as a sampler.

    ``fit`` trains an encoder E, a class-conditional generator G (the VAE decoder), a real/fake
    discriminator D and an ACGAN auxiliary classifier C on labelled images. The BGADL step,
    :meth:`sample`, maps labelled images x (e.g. those just queried with BALD) to variations
    x' = G(E(x), y) with the same labels; :meth:`generate` draws G(z, y) with z ~ N(0, I);
    :meth:`fit_resample` returns the real rows plus generated ones, for
    ``imblearn.pipeline.Pipeline``. With ``classifier=``, that classifier is the auxiliary
    classifier and is trained jointly with the GAN, as in the paper.

    Parameters
    ----------
    latent_dim : int, default=100
        Dimension of the latent code z.
    ratio : float, default=1.0
        :meth:`fit_resample` adds ``round(ratio * n_samples)`` generated rows to the real ones.
    max_epochs : int, default=20
        Passes over the labelled data (the authors' code uses 50). The VAE-ACGAN needs several
        hundred steps, ``max_epochs * ceil(n / batch_size)``, before its samples look like the
        data (about 600 on 28x28 Fashion-MNIST): raise it for small labelled sets.
    batch_size : int, default=100
        Mini-batch size (at least 2: the networks use BatchNorm). A last batch of one sample
        joins the batch before it.
    lr : float, default=2e-4
        Learning rate of the Adam optimisers of E, G, D and, without ``classifier``, C.
    betas : tuple of two floats, default=(0.5, 0.999)
        Adam's ``betas``.
    rec_weight : float, default=0.75
        Weight of the reconstruction term in the generator loss L_G.
    rec_reduction : {"sum", "mean"}, default="sum"
        How the squared reconstruction error in L_G is reduced over pixels: summed over each
        image (default) or averaged over pixels (the authors' ``nn.MSELoss``, ``1 / (C*H*W)`` as
        strong). See Notes. The encoder loss L_E always uses the per-pixel mean, as the authors do.
    kl_weight : float, default=1.0
        Weight of the KL term in the encoder loss L_E.
    kl_reduction : {"mean", "sum"}, default="mean"
        How the KL divergence is reduced over latent dimensions. ``"mean"`` is the authors' code
        (1 / latent_dim of the textbook KL); ``"sum"`` is the textbook per-sample KL, which with a
        per-pixel mean squared error weighs the prior much more and blurs reconstructions.
    gen_batchnorm : {"running", "batch"}, default="running"
        How the BatchNorm layers of C normalise generated and reconstructed batches: with the
        running statistics of real images (``"running"``) or with the batch's own statistics
        (``"batch"``); only real batches update the running statistics either way (see
        :class:`skal.estimators.bgadl.BGADLMixin`).
    classifier : MCDropoutClassifier or None, default=None
        An unfitted skal classifier (e.g. :class:`skal.ResNet18Classifier`) whose network serves
        as the auxiliary classifier C, trained jointly with the GAN on real, reconstructed and
        generated images with the classifier's own optimiser and learning rate (BGADL's scheme).
        Its BGADL counterpart (:class:`skal.BGADLClassifier` for a ResNet18Classifier,
        :class:`skal.BGADLMCDropoutClassifier` for an MCDropoutClassifier, a clone of a BGADL
        classifier) is fitted and is ``classifier_`` (a plain classifier's counterpart trains with
        the generated terms at weight 1, so by default, ``recalibrate_bn="auto"``, its BatchNorm
        statistics are re-estimated after training). The augmenter's ``max_epochs``,
        ``batch_size``, ``device``, ``random_state`` and VAE-ACGAN parameters replace the
        classifier's; its callbacks apply. When ``image_shape`` is given and the classifier has
        none, the classifier gets it too. Its module must return logits. ``None`` uses a small
        :class:`skal.nets.AuxiliaryClassifier`. To train an active learner this way, use
        :class:`skal.BGADLClassifier` directly.
    image_shape : tuple (C, H, W) or None, default=None
        Needed for flat ``(n, C*H*W)`` input, e.g. behind a ``MinMaxScaler`` in a pipeline.
    device : str or torch.device, default="cpu"
        Where the networks train and run (``"cuda"`` for a GPU).
    random_state : None, int, RandomState or Generator, default=None
        Seeds weight initialisation, shuffling and noise in ``fit``, the rows chosen by
        ``fit_resample`` and the noise of ``sample`` and ``generate``. With an int, results are
        reproducible on CPU and torch's global random state is left untouched.
    verbose : int, default=0
        Print the mean losses after every epoch when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels seen in ``fit``; :meth:`sample` and :meth:`generate` accept only these.
    n_features_in_ : int
        Number of values per input sample (``C*H*W``).
    input_shape_ : tuple of int
        Image shape ``(C, H, W)`` the networks work on.
    net_ : BGADLMCDropoutClassifier or BGADLClassifier
        The fitted skorch net that holds the networks (``classifier_`` in joint mode).
    encoder_, generator_, discriminator_ : torch.nn.Module
        The trained networks (in eval mode): ``net_.encoder_`` etc.
    auxiliary_classifier_ : torch.nn.Module
        The trained auxiliary classifier network (``classifier_.module_`` in joint mode).
    classifier_ : MCDropoutClassifier
        Only with ``classifier``: the fitted clone, ready for ``predict`` and ``sample_proba``.
    history_ : list of dict
        One dict per epoch: ``epoch``, the mean losses ``loss_E``, ``loss_G``, ``loss_D``,
        ``loss_C`` and ``dur`` (seconds).

    Raises
    ------
    skal.exceptions.DivergenceError
        From ``fit`` when training diverges (a loss or weight becomes NaN or infinite, or an
        epoch's mean loss exceeds 100 times the larger of its first batch value and 1); the
        message names the loss, the epoch and the learning rate to lower. ``ConvergenceError``
        (this module) is the same class; it is a ``RuntimeError`` and a ``FloatingPointError``.

    See Also
    --------
    skal.BGADLClassifier : The same joint training as an active learner's estimator.
    skal.ActiveLearner : Takes a ``GenerativeAugmenter`` as ``augmenter`` (BGADL in the loop).

    Notes
    -----
    The training is that of :class:`skal.estimators.bgadl.BGADLMixin` (skorch's fit loop, with E, G and D
    as extra modules of a classifier net): this class is a sampler over that net. Each
    mini-batch (x, y) makes three updates, each with its own optimiser:

    1. E: L_E = MSE(x', x) + kl_weight * KL(q(z | x) || N(0, I)), with x' = G(E(x), y).
    2. G: L_G = BCE(D(G(z, y)), 1) + CE(C(G(z, y)), y) + rec_weight * SE(x', x), z ~ N(0, I),
       where SE is the squared error summed over each image's pixels (``rec_reduction``).
    3. D and C: L_D = BCE(D(x), 1) + BCE(D(G(z, y)), 0) + BCE(D(x'), 0) and
       L_C = CE(C(x), y) + CE(C(G(z, y)), y) + CE(C(x'), y), on images regenerated by the
       updated G.

    Where skal departs from the authors' code (a real Gaussian encoder, the per-image summed
    reconstruction in L_G, Adam, detached D/C inputs, real-image BatchNorm statistics in C, ...)
    is listed in :class:`skal.estimators.bgadl.BGADLMixin`.

    :meth:`sample` and :meth:`generate` run the networks in eval mode (BatchNorm running
    statistics), so a sample does not depend on the rest of its batch. :meth:`sample` draws the
    latent code from q(z | x), so repeated calls with fresh seeds give different variations of x.
    How close they stay to x depends on the KL weight: with the defaults the posterior stays
    broad (on 8x8 digits its standard deviation is close to 1), so x' keeps the class of x more
    than its details; lower ``kl_weight`` for samples nearer to x.

    Only ``imblearn.pipeline.Pipeline`` can use :meth:`fit_resample`; samplers are skipped at
    prediction time. Images must lie in [0, 1] (uint8 images are scaled), the range of the
    generator's sigmoid output.

    References
    ----------
    .. [1] T. Tran, T.-T. Do, I. Reid, G. Carneiro, "Bayesian Generative Active Deep Learning",
       ICML 2019, arXiv:1904.11643. Code: https://github.com/toantm/BGADL.

    Examples
    --------
    >>> from skal import GenerativeAugmenter
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> aug = GenerativeAugmenter(latent_dim=8, max_epochs=1, random_state=0).fit(X[:40], y[:40])
    >>> X_new, y_new = aug.sample(X[:5], y[:5])
    >>> X_new.shape, X_new.dtype
    ((5, 1, 8, 8), dtype('float32'))
    >>> X_res, y_res = aug.fit_resample(X[:40], y[:40])
    >>> X_res.shape
    (80, 1, 8, 8)
    """

    _sampling_type = "over-sampling"
    _estimator_type = "sampler"

    def __init__(
        self,
        latent_dim: int = 100,
        ratio: float = 1.0,
        max_epochs: int = 20,
        batch_size: int = 100,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        rec_weight: float = 0.75,
        rec_reduction: str = "sum",
        kl_weight: float = 1.0,
        kl_reduction: str = "mean",
        gen_batchnorm: str = "running",
        classifier: Any = None,
        image_shape: tuple[int, ...] | None = None,
        device: str | torch.device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.ratio = ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.betas = betas
        self.rec_weight = rec_weight
        self.rec_reduction = rec_reduction
        self.kl_weight = kl_weight
        self.kl_reduction = kl_reduction
        self.gen_batchnorm = gen_batchnorm
        self.classifier = classifier
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters, fitted state
    _parameter_constraints: ClassVar[dict] = AUGMENTER_CONSTRAINTS  # see skal.estimators.bgadl._augment_params

    def _check_fitted(self):
        check_is_fitted(self, ["net_", "label_encoder_"])

    @property
    def classes_(self) -> np.ndarray:
        try:
            return self.label_encoder_.classes_
        except AttributeError:
            raise AttributeError(
                "GenerativeAugmenter has no attribute 'classes_' before it is fitted."
            ) from None

    # the networks live in the fitted net
    @property
    def encoder_(self) -> torch.nn.Module:
        return self._net_attr("encoder_")

    @property
    def generator_(self) -> torch.nn.Module:
        return self._net_attr("generator_")

    @property
    def discriminator_(self) -> torch.nn.Module:
        return self._net_attr("discriminator_")

    @property
    def auxiliary_classifier_(self) -> torch.nn.Module:
        return self._net_attr("module_")

    def _net_attr(self, name):
        try:
            return getattr(vars(self)["net_"], name)
        except KeyError:
            raise AttributeError(
                f"GenerativeAugmenter has no attribute {name!r} before it is fitted."
            ) from None

    # ------------------------------------------------------------------ fitting
    def fit(self, X: ArrayLike, y: ArrayLike) -> "GenerativeAugmenter":
        """Train the VAE-ACGAN on labelled images.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, C*H*W)
            Images with values in [0, 1], or uint8 images. Flat rows need ``image_shape``.
        y : array-like of shape (n,)
            Class labels; at least two classes.

        Returns
        -------
        self : GenerativeAugmenter
            This augmenter, fitted.

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss or a weight becomes NaN or infinite during training.
        """
        fit_augmenter(self, X, y, resolve_seed(self.random_state, owner="GenerativeAugmenter"))
        return self

    # ------------------------------------------------------------------ generation
    def sample(
        self, X: ArrayLike, y: ArrayLike, *, random_state: RandomStateLike = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate variations x' = G(E(x), y) of labelled images: the BGADL step.

        The latent code is drawn from the encoder's posterior q(z | x), so x' lies near x and
        keeps its label.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, C*H*W)
            Images of the fitted shape.
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

        Raises
        ------
        ValueError
            If the images do not have the fitted shape or ``y`` holds unseen labels.
        """
        self._check_fitted()
        X = unit_images(self, X, reset=False)
        y, y_idx = known_labels(self, X, y)
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self.net_._sample_encoded(X, y_idx, seed), y.copy()

    def generate(self, y: ArrayLike, *, random_state: RandomStateLike = None) -> np.ndarray:
        """Draw class-conditional images G(z, y) with z ~ N(0, I).

        Parameters
        ----------
        y : array-like of shape (n,)
            The class of each image to draw, among ``classes_``.
        random_state : None, int, RandomState or Generator, default=None
            Seeds z; ``None`` falls back to the estimator's ``random_state``.

        Returns
        -------
        X_gen : ndarray of float32, shape (n, C, H, W)
            Generated images with values in [0, 1].
        """
        self._check_fitted()
        _, y_idx = known_labels(self, None, y)
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self.net_._generate_encoded(y_idx, seed)

    # ------------------------------------------------------------------ sampler API
    def fit_resample(self, X: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Fit, then return the real rows plus ``round(ratio * n)`` generated rows.

        The generated rows are :meth:`sample` of real rows drawn at random (without replacement
        while ``ratio <= 1``), with their labels. In an ``imblearn.pipeline.Pipeline`` this runs
        at fit time only.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, C*H*W)
            Labelled images with values in [0, 1], or uint8 images. Flat rows need
            ``image_shape``.
        y : array-like of shape (n,)
            Their labels; at least two classes.

        Returns
        -------
        X_res : ndarray of float32
            Real rows (scaled to [0, 1]) followed by generated rows, in the fitted image layout
            ``(n_res, C, H, W)``, or flat ``(n_res, C*H*W)`` when ``X`` was flat, so the result
            composes with a classifier that takes the same input as this step.
        y_res : ndarray of shape (n_res,)
            The labels of the real rows, then those of the generated rows.
        """
        return self._fit_resample(X, y)

    def _fit_resample(self, X, y):
        flat = np.ndim(X) == 2
        seed = resolve_seed(self.random_state, owner="GenerativeAugmenter")
        X, y = fit_augmenter(self, X, y, seed)
        n = len(X)
        n_new = int(round(float(self.ratio) * n))
        rng = np.random.default_rng(seed)
        rows = rng.choice(n, size=n_new, replace=n_new > n)
        if n_new:
            X_gen, y_gen = self.sample(X[rows], y[rows], random_state=wrap_seed(seed + 2))
            X_res, y_res = np.concatenate([X, X_gen]), np.concatenate([y, y_gen])
        else:
            X_res, y_res = X, np.asarray(y).copy()
        if flat:
            X_res = X_res.reshape(len(X_res), -1)
        return X_res, y_res

    # ------------------------------------------------------------------ scikit-learn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if _SamplerBase is BaseEstimator:  # pragma: no cover - without imbalanced-learn
            tags.estimator_type = "sampler"
        tags.input_tags.sparse = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags
