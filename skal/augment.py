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

imbalanced-learn is optional: without it the class derives from scikit-learn's ``BaseEstimator``
and keeps the same ``fit_resample`` method.
"""

import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.validation import check_is_fitted
from torch.nn import functional as F

from ._validation import check_device, resolve_seed, torch_rng, validate_images, validate_labels
from .exceptions import DivergenceError
from .losses import (
    auxiliary_classifier_loss,
    discriminator_loss,
    encoder_loss,
    generator_loss,
)
from .nets.vae_acgan import (
    AuxiliaryClassifier,
    Discriminator,
    Encoder,
    Generator,
    init_normal_,
    reparameterize,
)

try:  # optional dependency
    from imblearn.base import BaseSampler as _SamplerBase
except ImportError:  # pragma: no cover - exercised by a test that hides imblearn
    _SamplerBase = BaseEstimator

__all__ = ["GenerativeAugmenter", "ConvergenceError"]

_LOSS_NAMES = ("loss_E", "loss_G", "loss_D", "loss_C")
_LOSS_LABELS = {
    "loss_E": "encoder loss L_E",
    "loss_G": "generator loss L_G",
    "loss_D": "discriminator loss L_D",
    "loss_C": "auxiliary classifier loss L_C",
}
_RANGE_TOL = 1e-4  # float images may overshoot [0, 1] by rounding (e.g. after a MinMaxScaler)
# An epoch whose mean loss exceeds this many times max(the loss's first batch value, 1) has
# diverged. On 300 digits (8 epochs) healthy runs (lr 2e-4 and 2e-3) never exceeded their first
# batch's losses; at lr=2e-2 L_E's first epoch mean reached 75 and recovered; at lr >= 0.2 the
# losses became infinite within two batches.
_EXPLOSION_FACTOR = 100.0

#: The error GenerativeAugmenter raised before skal had one for every estimator; an alias of
#: :class:`skal.exceptions.DivergenceError`, kept so that ``except ConvergenceError`` still works.
ConvergenceError = DivergenceError


def _is_int(value, minimum):
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and value >= minimum
    )


def _is_real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _logits(output):
    """Some skorch modules return ``(logits, ...)``; keep the logits."""
    return output[0] if isinstance(output, tuple) else output


class _EvalMode:
    """Context manager: put modules in eval mode, restore their previous modes on exit."""

    def __init__(self, *modules):
        self.modules = modules

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)
        return False


class _Frozen:
    """Context manager: stop gradients to the parameters of some modules (inputs still get them).

    Used where a loss updates one network but flows through others, so that no time is spent on
    weight gradients that the next ``zero_grad`` would discard.
    """

    def __init__(self, *modules):
        self.params = [p for m in modules for p in m.parameters()]

    def __enter__(self):
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p, flag in zip(self.params, self.flags):
            p.requires_grad_(flag)
        return False


class _RealDataStats(_EvalMode):
    """Context manager: the BatchNorm layers of some modules normalise with their running
    statistics, which only real images update, and are left unchanged (eval mode for BatchNorm
    only; dropout and the rest keep their mode).

    The auxiliary classifier sees generated and reconstructed batches as well as real ones. A
    classifier with BatchNorm (e.g. ResNet18 in joint mode) should judge them as it judges real
    images at prediction time:

    * updating the running statistics with generated batches makes the classifier predict real
      images with the statistics of generated ones (test accuracy collapsed to ~10-20 %);
    * with the batch's own statistics, a batch of near-constant images is rescaled to unit
      variance, so faint textures become strong features that generator and classifier can
      agree on. ``benchmarks/bgadl_joint_ablation.py`` measured how much this matters: the
      classifier fitted grey generated images more easily with batch statistics (its loss 0.21 vs
      0.61), but the images were not recognisable either way (a real-data classifier labels 10 % vs
      12 % correctly); with the summed reconstruction of L_G they were, about equally (70 % vs
      72 %).
    """

    def __init__(self, *modules):
        super().__init__(*(
            m for module in modules for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ))


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
        Mini-batch size (at least 2: the networks use BatchNorm). A last batch of one sample is
        dropped.
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
    classifier : MCDropoutClassifier or None, default=None
        An unfitted skal classifier (e.g. :class:`skal.ResNet18Classifier`) whose network serves
        as the auxiliary classifier C, trained jointly with the GAN on real, reconstructed and
        generated images with the classifier's own optimiser and learning rate (BGADL's scheme).
        It is cloned; the fitted clone is ``classifier_``. Its ``max_epochs``, ``batch_size``,
        ``callbacks`` and ``random_state`` are not used for this training (the augmenter's are),
        its ``device`` is set to ``device``, and, when ``image_shape`` is given and the
        classifier has none, the classifier gets it too. Its module must return logits.
        ``None`` uses a small :class:`skal.nets.AuxiliaryClassifier`.
    image_shape : tuple (C, H, W) or None, default=None
        Needed for flat ``(n, C*H*W)`` input, e.g. behind a ``MinMaxScaler`` in a pipeline.
    device : str or torch.device, default="cpu"
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
    encoder_, generator_, discriminator_ : torch.nn.Module
        The trained networks (in eval mode).
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

    Notes
    -----
    Training follows the authors' code (BGADL.md section 2). Each mini-batch (x, y) makes three
    updates, each with its own optimiser:

    1. E: L_E = MSE(x', x) + kl_weight * KL(q(z | x) || N(0, I)), with x' = G(E(x), y).
    2. G: L_G = BCE(D(G(z, y)), 1) + CE(C(G(z, y)), y) + rec_weight * SE(x', x), z ~ N(0, I),
       where SE is the squared error summed over each image's pixels (``rec_reduction``).
    3. D and C: L_D = BCE(D(x), 1) + BCE(D(G(z, y)), 0) + BCE(D(x'), 0) and
       L_C = CE(C(x), y) + CE(C(G(z, y)), y) + CE(C(x'), y), on images regenerated by the
       updated G.

    Where skal departs from the authors' code (``toantm/BGADL``, ``demo_mnist.py``):

    * The encoder has a real Gaussian latent: conv blocks, FC 1024 and linear heads for the mean
      and log-variance, instead of one non-negative scalar per image and sigmoid heads, which
      confine the mean and log-variance to (0, 1).
    * In the D/C step, the generated and reconstructed images are detached (computed without
      gradients); the authors' code lets gradients reach G and E and then discards them. The
      updates are the same, at less cost.
    * E, G, D and the default C use Adam(lr=2e-4, betas=(0.5, 0.999)), as the authors' earlier
      BDA code, instead of Adadelta(lr=1.0, rho=0.9) with a step schedule.
    * The reconstruction term of L_G is the squared error summed over each image's pixels, not
      their mean (``rec_reduction="sum"``; ``"mean"`` is the authors' code). In L_E only the
      ratio of reconstruction and KL matters to Adam, but in L_G the reconstruction competes with
      the adversarial and classification terms, and at 1/784 of the per-image error it loses.
      ``benchmarks/bgadl_joint_ablation.py`` (1,000 Fashion-MNIST images, 600 steps, ResNet18 as
      C): with the per-pixel mean the generator stayed at grey, textured images (reconstruction
      MSE 0.14-0.16; a classifier trained on real images labelled 10-12 % of G(z, y) correctly,
      chance level), with the per-image sum it reached MSE 0.05 and 70-72 %. The authors' own commented-out alternative, a BCE summed over pixels, has the
      per-image scale too.
    * The KL term's reduction is a parameter (``kl_reduction``); the default, ``"mean"``, is the
      authors' choice.
    * D returns logits and the losses use binary cross-entropy with logits (the same function as
      the authors' sigmoid + BCE, numerically stable).
    * Batches are shuffled every epoch (the authors use a fixed order).
    * The networks are sized from the image shape, so 8x8, 28x28 and 32x32 images all work.
    * Divergence is detected: a NaN, infinite or exploding loss stops training with
      :class:`~skal.exceptions.DivergenceError`.
    * The auxiliary classifier's BatchNorm layers normalise generated and reconstructed batches
      with the running statistics of real images, and only real batches update them (the
      authors' LeNet has no BatchNorm). Running statistics of generated images ruined C on real
      ones; batch statistics of generated batches made them easier for C to fit without making
      them more recognisable (see ``_RealDataStats``).

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
        latent_dim=100,
        ratio=1.0,
        max_epochs=20,
        batch_size=100,
        lr=2e-4,
        betas=(0.5, 0.999),
        rec_weight=0.75,
        rec_reduction="sum",
        kl_weight=1.0,
        kl_reduction="mean",
        classifier=None,
        image_shape=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
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
        self.classifier = classifier
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        def bad(name, expected):
            value = getattr(self, name)
            raise ValueError(
                f"The '{name}' parameter of GenerativeAugmenter must be {expected}. "
                f"Got {value!r} instead."
            )

        check_device(self.device, "GenerativeAugmenter")
        if not _is_int(self.latent_dim, 1):
            bad("latent_dim", "an int >= 1")
        if not _is_int(self.max_epochs, 1):
            bad("max_epochs", "an int >= 1")
        if not _is_int(self.batch_size, 2):
            bad("batch_size", "an int >= 2 (the networks use BatchNorm)")
        if not (_is_real(self.ratio) and self.ratio >= 0):
            bad("ratio", "a float >= 0")
        if not (_is_real(self.lr) and self.lr > 0):
            bad("lr", "a float > 0")
        for name in ("rec_weight", "kl_weight"):
            value = getattr(self, name)
            if not (_is_real(value) and value >= 0):
                bad(name, "a float >= 0")
        betas = self.betas
        if not (
            isinstance(betas, (tuple, list))
            and len(betas) == 2
            and all(_is_real(b) and 0 <= b < 1 for b in betas)
        ):
            bad("betas", "a pair of floats in [0, 1)")
        if self.kl_reduction not in ("mean", "sum"):
            bad("kl_reduction", "'mean' or 'sum'")
        if self.rec_reduction not in ("mean", "sum"):
            bad("rec_reduction", "'sum' or 'mean'")
        if self.classifier is not None:
            from .classifier import MCDropoutClassifier

            if not isinstance(self.classifier, MCDropoutClassifier):
                raise TypeError(
                    "The 'classifier' parameter of GenerativeAugmenter must be None or a skal "
                    "MCDropoutClassifier (e.g. ResNet18Classifier), whose network becomes the "
                    f"ACGAN auxiliary classifier. Got {type(self.classifier).__name__} instead."
                )

    def _validate_X(self, X, reset):
        X = validate_images(self, X, reset=reset, image_shape=self.image_shape, flat_ok=False)
        if X.size and (X.min() < -_RANGE_TOL or X.max() > 1 + _RANGE_TOL):
            raise ValueError(
                "GenerativeAugmenter needs images with values in [0, 1] (the range of its "
                f"generator); X ranges over [{X.min():.4g}, {X.max():.4g}]. Pass uint8 images "
                "(scaled automatically) or scale the data, e.g. with sklearn's MinMaxScaler."
            )
        return np.clip(X, 0.0, 1.0)

    def _encode_known(self, X, y):
        """Validate labels for sample/generate; return them and their class indices."""
        if y is None:
            raise ValueError(
                "GenerativeAugmenter requires y to be passed, but the target y is None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        if X is not None:
            check_consistent_length(X, y)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} not among the classes this "
                f"GenerativeAugmenter was fitted with: {self.classes_.tolist()}."
            )
        return y, self.label_encoder_.transform(y).astype(np.int64)

    def _check_fitted(self):
        check_is_fitted(self, ["encoder_", "generator_", "label_encoder_"])

    @property
    def classes_(self):
        try:
            return self.label_encoder_.classes_
        except AttributeError:
            raise AttributeError(
                "GenerativeAugmenter has no attribute 'classes_' before it is fitted."
            ) from None

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Train the VAE-ACGAN on labelled images.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, C*H*W)
            Images with values in [0, 1], or uint8 images. Flat rows need ``image_shape``.
        y : array-like of shape (n,)
            Class labels; at least two classes.

        Returns
        -------
        self

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss or a weight becomes NaN or infinite, or a loss explodes, during training.
        """
        self._fit(X, y, resolve_seed(self.random_state, owner="GenerativeAugmenter"))
        return self

    def _fit(self, X, y, seed):
        for attr in ("classifier_", "encoder_", "generator_", "discriminator_",
                     "auxiliary_classifier_", "history_", "label_encoder_"):
            vars(self).pop(attr, None)  # a failed refit must not leave the previous fit behind
        self._check_params()
        X = self._validate_X(X, reset=True)
        y = validate_labels(self, X, y, min_classes=2)
        self.label_encoder_ = LabelEncoder().fit(y)
        y_idx = self.label_encoder_.transform(y).astype(np.int64)
        self._train(X, y_idx, seed)
        return X, y

    def _init_classifier(self, device):
        """Clone ``classifier`` and initialise it as if fitted on this data (joint mode)."""
        clf = clone(self.classifier)
        clf.set_params(device=device)
        if self.image_shape is not None and getattr(clf, "image_shape", None) is None:
            clf.set_params(image_shape=self.image_shape)
        # what MCDropoutClassifier.fit would set from the data before initialize()
        clf.label_encoder_ = self.label_encoder_
        clf.n_features_in_ = self.n_features_in_
        clf.input_shape_ = tuple(self.input_shape_)
        clf.initialize()
        return clf

    def _train(self, X, y_idx, seed):
        device = torch.device(self.device)
        image_shape = tuple(self.input_shape_)
        n_classes = len(self.classes_)
        n = len(X)
        batch_size = min(int(self.batch_size), n)
        betas = tuple(float(b) for b in self.betas)

        init_gen = torch.Generator().manual_seed(seed)  # weights and shuffling (CPU)
        noise_gen = torch.Generator(device=device).manual_seed((seed + 1) % (2**31 - 1))

        with torch_rng(seed, device):
            encoder = init_normal_(Encoder(image_shape, self.latent_dim), generator=init_gen)
            generator = init_normal_(
                Generator(image_shape, n_classes, self.latent_dim), generator=init_gen
            )
            discriminator = init_normal_(Discriminator(image_shape), generator=init_gen)
            encoder, generator, discriminator = (
                net.to(device) for net in (encoder, generator, discriminator)
            )
            optimizers = {
                "E": torch.optim.Adam(encoder.parameters(), lr=self.lr, betas=betas),
                "G": torch.optim.Adam(generator.parameters(), lr=self.lr, betas=betas),
                "D": torch.optim.Adam(discriminator.parameters(), lr=self.lr, betas=betas),
            }
            classifier = None
            if self.classifier is not None:
                classifier = self._init_classifier(self.device)
                aux = classifier.module_
                optimizers["C"] = classifier.optimizer_
            else:
                aux = AuxiliaryClassifier(image_shape, n_classes).to(device)
                optimizers["C"] = torch.optim.Adam(aux.parameters(), lr=self.lr, betas=betas)
            nets = (encoder, generator, discriminator, aux)
            for net in nets:
                net.train()

            X_t = torch.as_tensor(X, device=device)
            y_t = torch.as_tensor(y_idx, device=device)
            history = []
            first = None  # each loss's first batch value: the reference for explosions
            for epoch in range(1, self.max_epochs + 1):
                start = time.time()
                batches = list(torch.randperm(n, generator=init_gen).split(batch_size))
                if len(batches[-1]) == 1:  # BatchNorm cannot train on one sample
                    batches.pop()
                totals = torch.zeros(len(_LOSS_NAMES), dtype=torch.float64)
                for b, idx in enumerate(batches, start=1):
                    idx = idx.to(device)
                    losses = self._train_step(nets, optimizers, X_t[idx], y_t[idx], noise_gen)
                    values = torch.stack([loss.detach() for loss in losses]).cpu().double()
                    self._check_finite(values, epoch, b, len(batches))
                    first = values.clone() if first is None else first
                    totals += values
                means = (totals / len(batches)).tolist()
                self._check_explosion(means, first.tolist(), epoch)
                self._check_weights(nets, epoch)
                record = {"epoch": epoch, **dict(zip(_LOSS_NAMES, means))}
                record["dur"] = time.time() - start
                history.append(record)
                if classifier is not None:
                    classifier.history_.new_epoch()
                    classifier.history_.record("epoch", epoch)
                    classifier.history_.record("train_loss", record["loss_C"])
                    classifier.history_.record("dur", record["dur"])
                if self.verbose > 0:
                    print(
                        f"epoch {epoch:3d}/{self.max_epochs}  "
                        + "  ".join(f"{k} {record[k]:.4f}" for k in _LOSS_NAMES)
                        + f"  ({record['dur']:.1f}s)",
                        flush=True,
                    )

        for net in nets:
            net.eval()

        self.encoder_, self.generator_, self.discriminator_ = encoder, generator, discriminator
        self.auxiliary_classifier_ = aux
        if classifier is not None:
            self.classifier_ = classifier
        self.history_ = history

    def _train_step(self, nets, optimizers, x, y, noise_gen):
        """One BGADL mini-batch: the E step, the G step, then the D and C step."""
        encoder, generator, discriminator, aux = nets
        y_onehot = F.one_hot(y, len(self.classes_)).to(x.dtype)

        # 1. E step: reconstruct x through the VAE; only E is updated.
        with _Frozen(generator):
            mu, log_var = encoder(x)
            z_rec = reparameterize(mu, log_var, generator=noise_gen)
            x_rec = generator(z_rec, y_onehot)
            loss_e = encoder_loss(
                x_rec, x, mu, log_var, kl_reduction=self.kl_reduction, kl_weight=self.kl_weight
            )
            optimizers["E"].zero_grad(set_to_none=True)
            loss_e.backward()
        optimizers["E"].step()

        # 2. G step: fool D, be recognised by C, reconstruct x; only G is updated.
        z_rec = z_rec.detach()
        z = torch.randn(z_rec.shape, generator=noise_gen, device=x.device, dtype=x.dtype)
        with _Frozen(discriminator, aux):
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
            with _RealDataStats(aux):
                logits_fake = _logits(aux(x_fake))
            loss_g = generator_loss(
                discriminator(x_fake), logits_fake, y, x_rec, x, rec_weight=self.rec_weight,
                rec_reduction=self.rec_reduction,
            )
            optimizers["G"].zero_grad(set_to_none=True)
            loss_g.backward()
        optimizers["G"].step()

        # 3. D and C step on images from the updated G, without gradients to G or E.
        with torch.no_grad():
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
        loss_d = discriminator_loss(discriminator(x), discriminator(x_fake), discriminator(x_rec))
        logits_real = _logits(aux(x))
        with _RealDataStats(aux):  # C's running BatchNorm statistics: real images only
            logits_fake, logits_rec = _logits(aux(x_fake)), _logits(aux(x_rec))
        loss_c = auxiliary_classifier_loss(logits_real, logits_fake, logits_rec, y)
        optimizers["D"].zero_grad(set_to_none=True)
        optimizers["C"].zero_grad(set_to_none=True)
        (loss_d + loss_c).backward()  # D and C share no parameters
        optimizers["D"].step()
        optimizers["C"].step()
        return loss_e, loss_g, loss_d, loss_c

    def _lower_lr_hint(self, name):
        """Which learning rate to lower for a diverging loss (joint mode: C is the classifier's)."""
        if name == "loss_C" and self.classifier is not None:
            clf = type(self.classifier).__name__
            lr = self.classifier.lr
            return (f"The auxiliary classifier is the {clf} given as classifier=, trained with "
                    f"its own optimizer: lower its lr (now {lr!r}, e.g. {clf}(lr={lr / 10:g})).")
        return (f"GAN training is unstable at lr={self.lr!r}; try a lower learning rate "
                f"(e.g. lr={self.lr / 10:g}) or a smaller kl_weight.")

    def _check_finite(self, values, epoch, batch, n_batches):
        finite = torch.isfinite(values)
        if bool(finite.all()):
            return
        name = _LOSS_NAMES[int((~finite).nonzero()[0])]
        value = float(values[_LOSS_NAMES.index(name)])
        raise DivergenceError(
            f"GenerativeAugmenter training diverged: the {_LOSS_LABELS[name]} is {value} at "
            f"epoch {epoch}/{self.max_epochs}, batch {batch}/{n_batches}. "
            + self._lower_lr_hint(name)
        )

    def _check_explosion(self, means, first, epoch):
        for name, mean, ref in zip(_LOSS_NAMES, means, first):
            limit = _EXPLOSION_FACTOR * max(ref, 1.0)
            if mean > limit:
                raise DivergenceError(
                    f"GenerativeAugmenter training diverged: the {_LOSS_LABELS[name]} averaged "
                    f"{mean:.4g} over epoch {epoch}/{self.max_epochs}, more than "
                    f"{_EXPLOSION_FACTOR:g} times max(its first batch value {ref:.4g}, 1). "
                    + self._lower_lr_hint(name)
                )

    def _check_weights(self, nets, epoch):
        names = ("encoder", "generator", "discriminator", "auxiliary classifier")
        for name, net in zip(names, nets):
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                raise DivergenceError(
                    f"GenerativeAugmenter training diverged: the {name}'s weights became NaN or "
                    f"infinite (epoch {epoch}/{self.max_epochs}). "
                    + self._lower_lr_hint("loss_C" if name.startswith("aux") else "loss_G")
                )

    # ------------------------------------------------------------------ generation
    def _noise_generator(self, random_state):
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return torch.Generator(device=torch.device(self.device)).manual_seed(seed)

    def _batches(self, n):
        step = max(int(self.batch_size), 1)
        return (slice(start, min(start + step, n)) for start in range(0, n, step))

    def _finite_images(self, out):
        if not np.isfinite(out).all():  # pragma: no cover - fit checks the weights
            raise DivergenceError(
                "GenerativeAugmenter produced NaN or infinite images; refit it with a lower lr."
            )
        return out

    def sample(self, X, y, *, random_state=None):
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
        X = self._validate_X(X, reset=False)
        y, y_idx = self._encode_known(X, y)
        noise_gen = self._noise_generator(random_state)
        device = torch.device(self.device)
        out = np.empty(X.shape, dtype=np.float32)
        with _EvalMode(self.encoder_, self.generator_), torch.no_grad():
            for sl in self._batches(len(X)):
                xb = torch.as_tensor(X[sl], device=device)
                yb = torch.as_tensor(y_idx[sl], device=device)
                mu, log_var = self.encoder_(xb)
                z = reparameterize(mu, log_var, generator=noise_gen)
                x_gen = self.generator_(z, F.one_hot(yb, len(self.classes_)).to(z.dtype))
                out[sl] = x_gen.cpu().numpy()
        return self._finite_images(out), y.copy()

    def generate(self, y, *, random_state=None):
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
        _, y_idx = self._encode_known(None, y)
        noise_gen = self._noise_generator(random_state)
        device = torch.device(self.device)
        out = np.empty((len(y_idx), *self.input_shape_), dtype=np.float32)
        with _EvalMode(self.generator_), torch.no_grad():
            for sl in self._batches(len(y_idx)):
                yb = torch.as_tensor(y_idx[sl], device=device)
                z = torch.randn(
                    (len(yb), self.latent_dim), generator=noise_gen, device=device
                )
                x_gen = self.generator_(z, F.one_hot(yb, len(self.classes_)).to(z.dtype))
                out[sl] = x_gen.cpu().numpy()
        return self._finite_images(out)

    # ------------------------------------------------------------------ sampler API
    def fit_resample(self, X, y):
        """Fit, then return the real rows plus ``round(ratio * n)`` generated rows.

        The generated rows are :meth:`sample` of real rows drawn at random (without replacement
        while ``ratio <= 1``), with their labels. In an ``imblearn.pipeline.Pipeline`` this runs
        at fit time only.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, C*H*W)
        y : array-like of shape (n,)

        Returns
        -------
        X_res : ndarray of float32
            Real rows (scaled to [0, 1]) followed by generated rows, in the fitted image layout
            ``(n_res, C, H, W)``, or flat ``(n_res, C*H*W)`` when ``X`` was flat, so the result
            composes with a classifier that takes the same input as this step.
        y_res : ndarray of shape (n_res,)
        """
        return self._fit_resample(X, y)

    def _fit_resample(self, X, y):
        flat = np.ndim(X) == 2
        seed = resolve_seed(self.random_state)
        X, y = self._fit(X, y, seed)
        n = len(X)
        n_new = int(round(float(self.ratio) * n))
        rng = np.random.default_rng(seed)
        rows = rng.choice(n, size=n_new, replace=n_new > n)
        if n_new:
            X_gen, y_gen = self.sample(X[rows], y[rows], random_state=(seed + 2) % (2**31 - 1))
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
