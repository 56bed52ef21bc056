"""WAALClassifier: Wasserstein Adversarial Active Learning (Shui et al., AISTATS 2020) for skorch.

WAAL trains a feature extractor ``f``, a classifier head ``h`` and a critic ``g`` on labelled *and*
unlabelled data: ``f`` and ``h`` minimise the cross-entropy on labelled samples plus mu' times an
estimate of the Wasserstein distance between the unlabelled and labelled feature distributions,
while ``g`` (a sigmoid MLP with a gradient penalty) maximises that estimate. The query rule of
:func:`skal.query.waal_uncertainty_diversity` then ranks the pool by ``U(x) - selection * g(x)``
(an upper bound on the unknown loss minus the critic's diversity score) and takes the *smallest*.

The paper's settings are the defaults; the authors' released code differs in several places and
its choices are available as options (see the :class:`WAALClassifier` docstring and
``docs/waal.md``, 'Departures from the authors' code').

References
----------
.. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled Method
   for Query and Training", AISTATS 2020, arXiv:1911.09162 (thesis chapter 3, Alg. 2).
"""

import copy
import inspect
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from skorch.callbacks import PassthroughScoring
from skorch.utils import TeeGenerator, to_tensor
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from ._pool import as_pool, is_lazy_pool
from ._precision import as_float32, to_memory_format
from ._sources import images_and_labels
from ._typing import ArrayLike, RandomStateLike
from ._validation import validate_images, validate_labels
from .classifier import MCDropoutClassifier, batch_bounds
from .exceptions import DivergenceError
from .losses import gradient_penalty, waal_adversarial_loss, waal_bias_coefficient, waal_query_score
from .nets.resnet import ResNet18
from .nets.waal import (
    LeNetFeatures,
    VGG16BNFeatures,
    WAALCritic,
    WAALHead,
    WAALNet,
    infer_out_features,
)

__all__ = ["WAALClassifier"]


def softmax(logits):
    """Softmax over the last axis: WAALClassifier's ``predict_nonlinearity`` (picklable)."""
    return torch.softmax(logits, dim=-1)


class MLPFeatures(nn.Module):
    """``flatten -> Linear -> ReLU``: the fallback feature extractor for flat or tiny inputs."""

    def __init__(self, in_features, out_features=128):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.out_features = out_features

    def forward(self, x):
        return F.relu(self.linear(x.flatten(1)))  # (n, out_features)


class ResNet18Features(nn.Module):
    """The trunk of :class:`skal.nets.ResNet18` (``ResNet18.features``) as a feature extractor."""

    def __init__(self, in_channels=1, width=64):
        super().__init__()
        net = ResNet18(in_channels=in_channels, n_classes=1, width=width, dropout=0.0)
        net.dropout, net.linear = nn.Identity(), nn.Identity()  # WAAL brings its own head
        self.net = net
        self.out_features = net.out_features

    def forward(self, x):
        return self.net.features(x)  # (n, 8 * width)


_NAMED_FEATURES = ("lenet", "vgg16bn", "resnet18", "mlp")


class _PairedBatches:
    """WAAL's mini-batches; each ``iter()`` is one epoch (skorch's fit loop iterates it per epoch).

    With unlabelled data and ``epoch_over="unlabeled"`` (paper and code) an epoch is one shuffled
    pass over the unlabelled set in batches of S, each paired with S labelled samples ("redundancy
    trick"): drawn uniformly *with replacement* (``sampling="replacement"``, the paper) or cycled as
    ``perm % L`` over the same shuffled range (``sampling="cyclic"``, the authors' loader
    ``dataset_WA.py``). If the labelled set is the larger one, the epoch runs over it instead and
    the unlabelled samples are cycled (as in the code, whose loader has length ``max(L, U)``).
    With ``epoch_over="labeled"`` an epoch is one shuffled pass over the labelled set (as for a
    labelled-only classifier, so both take the same number of steps), each batch paired with S
    unlabelled samples drawn uniformly with replacement. Without unlabelled data an epoch is one
    shuffled pass over the labelled set. ``shuffle=False`` (``iterator_train__shuffle=False``)
    makes the pass go in row order; the with-replacement draws stay random (they are the
    algorithm's). A last batch of one row joins the batch before it (see
    :func:`skal.classifier.batch_bounds`): BatchNorm cannot train on one sample. Randomness comes
    from torch's default generator, which ``fit`` seeds.

    Data-parallel (``rank``, ``world_size`` > 1, set by
    :class:`skal.distributed.AcceleratedWAALClassifier`): every process draws the same global
    batches of ``world_size * batch_size`` rows (same seed) and takes every ``world_size``-th row
    from ``rank`` on, so each process steps on ``batch_size`` rows of its own, as Accelerate's
    sharded loaders do (a last global batch too small to give every process 2 rows joins the one
    before). ``X_u`` may be a lazy pool (rows read per batch).
    """

    rank, world_size = 0, 1

    def __init__(self, X_l, y_l, X_u, batch_size, sampling, epoch_over="unlabeled", shuffle=True):
        self.X_l, self.y_l, self.X_u = X_l, y_l, X_u
        self.batch_size = int(batch_size)
        self.sampling = sampling
        self.epoch_over = epoch_over
        self.shuffle = shuffle

    def _n_rows(self):
        n_l, n_u = len(self.X_l), len(self.X_u)
        return n_l if n_u == 0 or self.epoch_over == "labeled" else max(n_l, n_u)

    def __len__(self):
        return len(self._bounds(self._n_rows()))

    def _bounds(self, n):
        """Global batches: ``batch_bounds`` over ``world_size * batch_size`` rows."""
        bounds = batch_bounds(n, self.batch_size * self.world_size)
        if self.world_size > 1 and len(bounds) > 1 and (
                bounds[-1][1] - bounds[-1][0] < 2 * self.world_size):
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def __iter__(self):
        n_l, n_u = len(self.X_l), len(self.X_u)
        n = self._n_rows()
        perm = torch.randperm(n) if self.shuffle else torch.arange(n)

        def mine(idx):  # this process's rows of a global batch
            return idx[self.rank::self.world_size]

        for start, stop in self._bounds(n):
            rows = perm[start:stop]
            if n_u == 0:
                yield self.X_l[mine(rows)], self.y_l[mine(rows)]
                continue
            if self.epoch_over == "labeled":
                unl = torch.randint(n_u, (len(rows),))
                yield self.X_l[mine(rows)], self.y_l[mine(rows)], self.X_u[mine(unl)]
                continue
            if self.sampling == "cyclic":
                lab = rows % n_l
            else:
                lab = torch.randint(n_l, (len(rows),))
            yield self.X_l[mine(lab)], self.y_l[mine(lab)], self.X_u[mine(rows % n_u)]


class _LazyRows:
    """Rows of a lazy pool (memmap, Dataset) read and validated per batch, as a float32 tensor."""

    def __init__(self, pool, validate):
        self.pool, self.validate = pool, validate

    def __len__(self):
        return len(self.pool)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)  # (b,) positions in the pool
        return torch.from_numpy(np.ascontiguousarray(self.validate(self.pool.take(rows))))


def _dataset_arrays(dataset):
    """(X, y) of skorch's training dataset (a skorch Dataset, or a Subset of one from a split)."""
    indices = None
    if isinstance(dataset, torch.utils.data.Subset):
        indices = np.asarray(dataset.indices)
        dataset = dataset.dataset
    X, y = getattr(dataset, "X", None), getattr(dataset, "y", None)
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            "WAALClassifier trains from numpy arrays; got a training dataset of type "
            f"{type(dataset).__name__} (a custom 'dataset' or 'train_split' is not supported)."
        )
    if indices is not None:
        X, y = X[indices], y[indices]
    return torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(y))


class WAALClassifier(MCDropoutClassifier):
    """Wasserstein Adversarial Active Learning (WAAL): a classifier that also learns from the pool.

    Trained on labelled and unlabelled data, with a critic that scores how unlike the labelled set
    a sample looks. Three networks: a feature extractor and a classifier head, together the
    skorch ``module_`` (a :class:`skal.nets.WAALNet`, so ``predict_proba`` and ``sample_proba``
    work as for any skal classifier), and a critic ``critic_`` (:class:`skal.nets.WAALCritic`,
    ``g(z)`` in [0, 1], 1 = "looks unlabelled"), registered through skorch so ``critic__*``
    parameters work, with its own optimizer ``critic_optimizer_`` (``critic_optimizer__*``
    parameters; by default the same optimizer class and ``lr`` as the main one).

    Unlabelled data is given as ``y == unlabeled_marker`` rows (scikit-learn's semi-supervised
    convention, -1) or as ``fit(X, y, X_unlabeled=...)``; :class:`skal.ActiveLearner` passes the
    remaining pool that way. Without unlabelled data the net is trained as a plain classifier (with
    a warning). Every ``fit`` retrains from scratch, as in the paper.

    Training (thesis Alg. 2), per step: S unlabelled samples (an epoch is one shuffled pass over the
    unlabelled set; ``epoch_over="labeled"`` makes it a pass over the labelled set instead) and S
    labelled samples (drawn with replacement);

    1. feature extractor + head: one SGD step on
       ``CE(h(f(x_l)), y_l) + mu' * (mean_U g(f(x_u)) - C0 * mean_L g(f(x_l)))`` (critic frozen);
    2. critic: one step of its own optimizer on
       ``mu' * (gp_weight * GP - (mean_U g(z_u) - C0 * mean_L g(z_l)))`` on the *detached* features
       of step 1 (so both updates use gradients at the same point, as in Alg. 2), where GP is the
       WGAN-GP penalty ``mean((||grad g|| - 1)^2)`` on interpolates of z_u and z_l.

    Here ``mu' = mu * U / (L + U)`` and ``C0 = (gamma - alpha) / (gamma^2 (1 + alpha))`` with
    ``gamma = U / L`` and ``alpha = B / L`` (Eq. 3.8; B = ``query_size``). Losses are checked
    every step: a non-finite loss raises :class:`skal.exceptions.DivergenceError` (a
    ``FloatingPointError``) instead of producing NaN scores, and the default ``divergence``
    callback (:class:`skal.classifier.DivergenceCheck`) also stops a loss that explodes while
    staying finite, or weights that become non-finite.

    Paper versus the authors' released code (``cjshui/WAAL``; docs/waal.md, 'Departures from the
    authors' code' and 'Known bugs in the authors' code'); skal
    follows the paper by default:

    - **coefficient of the labelled critic term**: paper ``C0`` (default ``coef="paper"``); code
      ``L / U`` with the weight ``mu`` itself (``coef="code"``); or any float.
    - **mu**: paper ``1e-2`` (default); code ``alpha = 2e-3`` (``mu=2e-3``).
    - **gradient-penalty sign**: the code minimises ``-W - 2*GP`` in the critic step, which drives
      the critic's gradient norm *away* from 1 (a bug); skal adds ``+ gp_weight * GP`` (standard
      WGAN-GP, the paper's stated intent). ``gp_weight=-2, gp_endpoints=True`` reproduces the code.
      The paper gives no weight; the default 2 is the code's, relative to W.
    - **generator-side GP**: the code adds ``alpha*5*GP`` to the feature extractor's loss, but
      computes it on ``no_grad`` features with the critic frozen, so it carries no gradient (a
      no-op); skal leaves it out.
    - **GP points**: interpolates only (WGAN-GP, default); the code also penalises both endpoints
      (``gp_endpoints=True``).
    - **labelled half of a batch**: drawn with replacement (paper, default); cycled ``perm % L``
      (code, ``labeled_sampling="cyclic"``).
    - **LR schedule**: the paper decays the lr x0.1 at 50 % and again at 75 % of ``max_epochs``,
      for both optimizers (default ``lr_milestones=(0.5, 0.75)``); the code keeps it constant
      (``lr_milestones=None``).
    - **selection coefficient** (query): paper 5 for Fashion-MNIST/SVHN, 10 for CIFAR-10 (default
      5); code 10 everywhere (``selection=10``).
    - **uncertainty bound** (query): paper ``mixture * l_inf + (1 - mixture) * l1`` of ``-log p``
      (``kind="paper"``); code ``l2 + l1`` (``kind="code"``). Computed from ``log_softmax`` (finite)
      rather than the code's ``log(softmax)``, which can give ``inf``.
    - **augmentation**: none (the paper); the code adds random crops and flips for SVHN/CIFAR-10.
      skal never augments.
    - **momentum**: 0.5 (paper and code for Fashion-MNIST/SVHN; 0.3 for CIFAR-10).
    - **early stopping**: the paper uses it but does not say on what; skal trains ``max_epochs``
      unless a skorch ``EarlyStopping`` callback (with ``train_split``) is given.
    - **critic update**: with features detached from step 1 rather than recomputed after the
      feature extractor's step (the code's six forwards per step become two); this changes only
      BatchNorm running statistics and dropout masks.

    Parameters
    ----------
    features : None, str, torch module class or instance, default=None
        The feature extractor. ``None`` picks from the image shape: :class:`~skal.nets.
        VGG16BNFeatures` for 3-channel images of at least 32x32, :class:`~skal.nets.LeNetFeatures`
        for other images of at least 16x16 (e.g. 1x28x28), and a one-layer MLP (``"mlp"``,
        flatten -> Linear(d, 128) -> ReLU) for flat or smaller inputs. Strings: ``"lenet"``,
        ``"vgg16bn"``, ``"resnet18"`` (the trunk of :class:`skal.nets.ResNet18`, 512-d), ``"mlp"``.
        A class is instantiated with ``in_channels`` and ``image_shape`` if it takes them; an
        instance is deep-copied at every fit (each fit starts from its weights). The feature size is
        read from ``out_features`` or measured.
    hidden : int, default=50
        Hidden width of the classifier head (and of the critic unless ``critic__hidden``).
    dropout : float, default=0.5
        Dropout of the head, of the critic (unless ``critic__dropout``) and of LeNet's Dropout2d.
    mu : float, default=1e-2
        Weight of the Wasserstein term (the paper's mu; the step uses ``mu' = mu U / (L + U)``).
    selection : float, default=5.0
        Weight of the critic's diversity score at query time.
    mixture : float, default=0.5
        Mixture coefficient of the query's uncertainty bound.
    kind : {"paper", "code"}, default="paper"
        Uncertainty bound at query time: l_inf + l1 (paper) or l2 + l1 (code).
    coef : {"paper", "code"} or float, default="paper"
        Weight of the labelled critic term (C0, L / U, or the given number).
    query_size : int or None, default=None
        B in C0: how many samples the next round queries. ``None`` uses ``min(L, U)`` (a query
        that doubles the labelled set, as in the first round of the paper's SVHN and CIFAR-10
        protocols); ``B`` is capped at ``U`` so that C0 >= 0. :class:`skal.ActiveLearner` does
        not know the next query size either: set it when you know it.
    gp_weight : float, default=2.0
        Weight of the gradient penalty relative to the Wasserstein estimate in the critic's loss.
    gp_endpoints : bool, default=False
        Also penalise the gradient at z_u and z_l themselves (the code's choice).
    labeled_sampling : {"replacement", "cyclic"}, default="replacement"
        How the labelled half of each batch is drawn when an epoch runs over the unlabelled set.
    epoch_over : {"unlabeled", "labeled"}, default="unlabeled"
        What one epoch is a pass over. ``"unlabeled"`` (paper and code): ceil(U / S) steps, so
        with few labels WAAL takes many times the steps of a labelled-only classifier with the
        same ``max_epochs`` (48,800 against 1,280 at 1K labels and a 40K pool, 80 epochs).
        ``"labeled"`` (not in the paper): ceil(L / S) steps, each labelled sample once per epoch
        and the unlabelled half drawn with replacement, so that WAAL and a labelled-only baseline
        can be compared at equal training length.
    lr_milestones : tuple of float or None, default=(0.5, 0.75)
        Fractions of ``max_epochs`` at which both learning rates are multiplied by ``lr_decay``
        (epoch ``ceil(fraction * max_epochs)``, 0-based). ``None`` or ``()``: constant lr.
    lr_decay : float, default=0.1
        The factor of each ``lr_milestones`` step (the paper's x0.1).
    momentum : float, default=0.5
        Momentum of both optimizers when they take one (SGD); ``optimizer__momentum`` /
        ``critic_optimizer__momentum`` override it.
    unlabeled_marker : scalar or None, default=-1
        The label that marks unlabelled rows of ``y``. If -1 is a real class, pick another marker
        or ``None`` (no marker; pass ``X_unlabeled=`` instead).
    image_shape : tuple (C, H, W) or None, default=None
        For flat ``(n, C*H*W)`` input.
    optimizer : torch optimizer class, default=torch.optim.SGD
        Used for both the main and the critic optimizer.
    lr : float, default=0.01
        Learning rate of both optimizers (before the ``lr_milestones`` steps).
    max_epochs : int, default=80
        Epochs per ``fit`` (the paper's 80 for Fashion-MNIST); see ``epoch_over``.
    batch_size : int, default=64
        S: the number of unlabelled (and of labelled) samples per step.
    predict_nonlinearity : callable, default=skal.waal.softmax
        Maps the head's logits to the probabilities of ``predict_proba`` (skorch's parameter).
    random_state : None, int, RandomState or Generator, default=None
        Seeds initialisation, batch sampling, dropout and the gradient penalty: a fit is
        reproducible on CPU.
    **kwargs
        Other skorch parameters, ``critic__*``, ``critic_optimizer__*``, ``optimizer__*``,
        ``callbacks``, ``device``, ..., and :class:`skal.MCDropoutClassifier`'s
        ``mixed_precision`` (bf16 / fp16 autocast of the forward passes, training and scoring) and
        ``memory_format`` (``"channels_last"``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit`` (the unlabelled marker excluded).
    module_ : skal.nets.WAALNet
        Feature extractor (``module_.features``) and head (``module_.head``).
    critic_ : skal.nets.WAALCritic
        The critic g.
    optimizer_, critic_optimizer_ : torch optimizers
        The optimizers of ``module_`` and of ``critic_``.
    coef_ : float
        The coefficient of the labelled critic term used in the last fit.
    adv_weight_ : float
        The weight of the Wasserstein term (mu') used in the last fit (0 without unlabelled data).
    n_labeled_, n_unlabeled_ : int
        L and U of the last fit (L counts all labelled rows given, before any ``train_split``).

    See Also
    --------
    skal.waal_uncertainty_diversity : WAAL's query strategy.
    skal.MCDropoutClassifier : The base class (``sample_proba``, ``embed``, validation).

    References
    ----------
    C. Shui, F. Zhou, C. Gagné, B. Wang. "Deep Active Learning: Unified and Principled Method for
    Query and Training." AISTATS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skal import WAALClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((40, 1, 28, 28), dtype=np.float32)
    >>> y = np.array([0, 1] * 10 + [-1] * 20)  # the last 20 rows are unlabelled
    >>> clf = WAALClassifier(max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape, clf.critic_score(X[:2]).shape
    ((2, 2), (2,))
    """

    _fixed_module = True

    def __init__(
        self,
        features: Any = None,
        hidden: int = 50,
        dropout: float = 0.5,
        *,
        mu: float = 1e-2,
        selection: float = 5.0,
        mixture: float = 0.5,
        kind: str = "paper",
        coef: str | float = "paper",
        query_size: int | None = None,
        gp_weight: float = 2.0,
        gp_endpoints: bool = False,
        labeled_sampling: str = "replacement",
        epoch_over: str = "unlabeled",
        lr_milestones: tuple[float, ...] | None = (0.5, 0.75),
        lr_decay: float = 0.1,
        momentum: float = 0.5,
        unlabeled_marker: Any = -1,
        image_shape: tuple[int, ...] | None = None,
        optimizer: type[torch.optim.Optimizer] = torch.optim.SGD,
        lr: float = 0.01,
        max_epochs: int = 80,
        batch_size: int = 64,
        predict_nonlinearity: Any = softmax,
        random_state: RandomStateLike = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            WAALNet,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            image_shape=image_shape,
            random_state=random_state,
            predict_nonlinearity=predict_nonlinearity,
            **kwargs,
        )
        self.features = features
        self.hidden = hidden
        self.dropout = dropout
        self.mu = mu
        self.selection = selection
        self.mixture = mixture
        self.kind = kind
        self.coef = coef
        self.query_size = query_size
        self.gp_weight = gp_weight
        self.gp_endpoints = gp_endpoints
        self.labeled_sampling = labeled_sampling
        self.epoch_over = epoch_over
        self.lr_milestones = lr_milestones
        self.lr_decay = lr_decay
        self.momentum = momentum
        self.unlabeled_marker = unlabeled_marker

    _train_data = None  # (X_u,) as a tensor (or lazily read rows), only while fitting
    _epochs_done = 0  # epochs run by the current fit (drives the lr schedule)

    def set_params(self, **params: Any) -> "WAALClassifier":
        """Set parameters, keeping ``optimizer__*`` ones as parameters of a fitted net too.

        Parameters
        ----------
        **params : dict
            Estimator parameters, including skorch's ``critic__*`` and ``*optimizer__*``.

        Returns
        -------
        self : WAALClassifier
            This estimator.
        """
        super().set_params(**params)
        # skorch applies optimizer__* / critic_optimizer__* to a fitted net's optimizers without
        # storing them; keep them as parameters so get_params and clone see them.
        for key, value in params.items():
            if "optimizer__" in key:
                vars(self)[key] = value
        return self

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        extra = [
            (name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
            for name in ("ce_loss", "critic_loss", "wasserstein", "gradient_penalty")
        ]
        return callbacks[:-1] + extra + callbacks[-1:]  # print_log stays last

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()  # lr, max_epochs, batch_size, device, train_split
        name = type(self).__name__

        def bad(param, expected):
            raise ValueError(
                f"The '{param}' parameter of {name} must be {expected}. "
                f"Got {getattr(self, param)!r} instead."
            )

        def real(value):
            return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(
                value
            )

        def pos_int(value):
            return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0

        if not (real(self.mu) and self.mu >= 0):
            bad("mu", "a float >= 0")
        if not real(self.selection):
            bad("selection", "a finite float")
        if not (real(self.mixture) and 0 <= self.mixture <= 1):
            bad("mixture", "a float in [0, 1]")
        if self.kind not in ("paper", "code"):
            bad("kind", "'paper' or 'code'")
        if not (self.coef in ("paper", "code") or (real(self.coef) and not isinstance(
                self.coef, str))):
            bad("coef", "'paper', 'code' or a finite float")
        if not (self.query_size is None or pos_int(self.query_size)):
            bad("query_size", "None or an int >= 1")
        if not real(self.gp_weight):
            bad("gp_weight", "a finite float")
        if self.labeled_sampling not in ("replacement", "cyclic"):
            bad("labeled_sampling", "'replacement' or 'cyclic'")
        if self.epoch_over not in ("unlabeled", "labeled"):
            bad("epoch_over", "'unlabeled' or 'labeled'")
        milestones = () if self.lr_milestones is None else self.lr_milestones
        try:
            ok = all(real(m) and 0 < m <= 1 for m in milestones)
        except TypeError:
            ok = False
        if not ok:
            bad("lr_milestones", "None or a sequence of floats in (0, 1]")
        if not (real(self.lr_decay) and self.lr_decay > 0):
            bad("lr_decay", "a float > 0")
        if not (real(self.momentum) and self.momentum >= 0):
            bad("momentum", "a float >= 0")
        if not pos_int(self.hidden):
            bad("hidden", "an int >= 1")
        if not (real(self.dropout) and 0 <= self.dropout < 1):
            bad("dropout", "a float in [0, 1)")
        if not pos_int(self.max_epochs):
            bad("max_epochs", "an int >= 1")
        if not pos_int(self.batch_size):
            bad("batch_size", "an int >= 1")
        if isinstance(self.features, str) and self.features not in _NAMED_FEATURES:
            bad("features", f"None, one of {_NAMED_FEATURES}, a torch module class or instance")
        if not (self.features is None or isinstance(self.features, (str, nn.Module)) or (
                isinstance(self.features, type) and issubclass(self.features, nn.Module))):
            bad("features", f"None, one of {_NAMED_FEATURES}, a torch module class or instance")

    # ------------------------------------------------------------------ networks
    def _feature_extractor(self, shape):
        spec = self.features
        is_image = len(shape) == 3
        if spec is None:
            if not is_image:
                spec = "mlp"
            elif shape[0] == 3 and min(shape[1:]) >= 32:
                spec = "vgg16bn"
            elif min(shape[1:]) >= 16:
                spec = "lenet"
            else:
                spec = "mlp"
        if isinstance(spec, nn.Module):
            return copy.deepcopy(spec)
        if isinstance(spec, str):
            if spec == "mlp":
                return MLPFeatures(int(np.prod(shape)))
            if not is_image:
                raise ValueError(
                    f"features={spec!r} needs images: the input has per-sample shape {shape}. "
                    "Pass (n, C, H, W) images or set image_shape=(C, H, W)."
                )
            if spec == "lenet":
                return LeNetFeatures(shape[0], image_shape=shape, dropout=self.dropout)
            if spec == "vgg16bn":
                return VGG16BNFeatures(shape[0], image_shape=shape)
            return ResNet18Features(shape[0])
        kwargs = {}
        accepted = inspect.signature(spec).parameters
        if is_image and "in_channels" in accepted:
            kwargs["in_channels"] = shape[0]
        if "image_shape" in accepted:
            kwargs["image_shape"] = shape
        return spec(**kwargs)

    def initialize_module(self) -> "WAALClassifier":
        """Build ``module_`` (feature extractor + head) and ``critic_`` from the fitted data.

        Returns
        -------
        self : WAALClassifier
            This estimator, with ``module_`` and ``critic_`` set.
        """
        if self.get_params_for("module"):
            raise ValueError(
                "WAALClassifier builds its module itself: use features=, hidden= and dropout= "
                "(and critic__* for the critic) instead of module__* parameters."
            )
        shape = getattr(self, "input_shape_", None)
        if shape is None:
            raise AttributeError(
                "WAALClassifier sizes its networks from the data: call fit(X, y) instead of "
                "initialize()."
            )
        features = self._feature_extractor(tuple(shape))
        try:
            n_features = infer_out_features(features, tuple(shape))
        except RuntimeError as exc:  # the probe on one zero image of the input's shape failed
            raise ValueError(
                f"The 'features' module of {type(self).__name__} ({type(features).__name__}) "
                f"cannot take the input: a forward pass on one sample of shape "
                f"{(1,) + tuple(shape)} failed with: {exc}"
            ) from None
        head = WAALHead(n_features, len(self.classes_), hidden=self.hidden, dropout=self.dropout)
        self.module_ = WAALNet(features, head)
        critic_kwargs = {"hidden": self.hidden, "dropout": self.dropout}
        critic_kwargs.update(self.get_params_for("critic"))
        self.critic_ = WAALCritic(n_features, **critic_kwargs)
        return self

    def _check_features_io(self, X):
        """One forward pass of the feature extractor on one sample: it must take the input and
        return flat features of the size the head was built for (torch's errors otherwise come
        from deep inside the first training step)."""
        features = self.module_.features
        name, features_name = type(self).__name__, type(features).__name__
        x = torch.as_tensor(X[:1], device=self._compute_device())  # (1,) + input_shape_
        n_features = self.module_.head.in_features
        was_training = features.training
        features.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                z = features(x)
        except RuntimeError as exc:
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) cannot take the input: a "
                f"forward pass on one sample of shape {tuple(x.shape)} failed with: {exc}"
            ) from None
        finally:
            features.train(was_training)
        if not isinstance(z, torch.Tensor) or tuple(z.shape) != (1, n_features):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) returns {shape} for one "
                f"sample of shape {tuple(x.shape)}; expected flat features of shape "
                f"(1, {n_features}) ({n_features} from its out_features or a probe). End it with "
                "nn.Flatten(), or set out_features to the feature size."
            )

    def _optimizer_kwargs(self, kwargs):
        try:
            accepted = inspect.signature(self.optimizer).parameters
        except (TypeError, ValueError):
            accepted = {}
        if "momentum" in accepted and "momentum" not in kwargs:
            kwargs["momentum"] = self.momentum
        return kwargs

    def initialize_optimizer(self, triggered_directly: Any = None) -> "WAALClassifier":
        """Build one optimizer for feature extractor + head and another for the critic.

        ``optimizer_`` and ``critic_optimizer_``: skorch's default would put every parameter,
        the critic's too, in one optimizer.

        Parameters
        ----------
        triggered_directly : None, default=None
            Deprecated in skorch and unused; kept for skorch's signature.

        Returns
        -------
        self : WAALClassifier
            This estimator, with both optimizers set.
        """
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        args, kwargs = self.get_params_for_optimizer(
            "critic_optimizer", self.critic_.named_parameters()
        )
        self.critic_optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        return self

    # ------------------------------------------------------------------ data
    def _unlabeled_mask(self, y):
        marker = self.unlabeled_marker
        if marker is None:
            return np.zeros(len(y), dtype=bool)
        if isinstance(marker, float) and np.isnan(marker):
            if y.dtype.kind == "f":
                return np.isnan(y)
            return np.array([isinstance(v, float) and np.isnan(v) for v in y], dtype=bool)
        if y.dtype.kind in "biuf" and not isinstance(marker, (numbers.Number, np.number)):
            return np.zeros(len(y), dtype=bool)
        if y.dtype.kind in "US" and not isinstance(marker, (str, bytes)):
            return np.zeros(len(y), dtype=bool)
        mask = y == marker
        if not isinstance(mask, np.ndarray) or mask.shape != y.shape:
            mask = np.array([v == marker for v in y], dtype=bool)
        return mask.astype(bool)

    def _marker_collision(self, where):
        return ValueError(
            f"The unlabeled marker {self.unlabeled_marker!r} {where}. If "
            f"{self.unlabeled_marker!r} is a real class, set unlabeled_marker to a value that is "
            "not a class (or None, and pass the unlabelled rows as X_unlabeled=)."
        )

    def _split(self, X, y, X_unlabeled, reset):
        """Validate and split the input into labelled (X_l, y_l) and unlabelled X_u."""
        X = self._validate_X(X, reset=reset)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        mask = self._unlabeled_mask(y) if y.ndim == 1 else np.zeros(len(y), dtype=bool)
        classes = self.classes if reset else getattr(self, "classes_", None)
        if classes is not None and self.unlabeled_marker is not None and np.any(
                self._unlabeled_mask(np.asarray(classes))):
            raise self._marker_collision("is one of the classes")
        if X_unlabeled is not None and len(X_unlabeled) == 0:  # e.g. an exhausted pool
            X_unlabeled = None
            if mask.any():
                raise self._marker_collision(
                    "appears in y although X_unlabeled was given, so it would be read as "
                    "'unlabelled' rather than as a class"
                )
        if X_unlabeled is not None:
            if mask.any():
                raise self._marker_collision(
                    "appears in y although X_unlabeled was given, so it would be read as "
                    "'unlabelled' rather than as a class"
                )
            try:
                if is_lazy_pool(X_unlabeled):  # check one row; the rest is read per batch
                    pool = as_pool(X_unlabeled)
                    self._validate_X_unlabeled(pool.take([0]))
                    X_u = _LazyRows(pool, self._validate_X_unlabeled)
                else:
                    X_u = self._validate_X_unlabeled(X_unlabeled)
            except ValueError as exc:
                raise ValueError(
                    f"X_unlabeled must have the same per-sample shape as X "
                    f"{tuple(self.input_shape_)}: {exc}"
                ) from None
        else:
            X_u = X[mask]
        if mask.all():
            raise ValueError(
                f"y has no labelled sample: all {len(y)} entries are the unlabeled marker "
                f"{self.unlabeled_marker!r}. WAAL needs labelled samples of at least 2 classes."
            )
        return X[~mask], y[~mask], X_u

    def _validate_X_unlabeled(self, X_unlabeled):
        return validate_images(
            self, X_unlabeled, reset=False, image_shape=self.image_shape, flat_ok=self._flat_ok,
            input_name="X_unlabeled",
        )

    def _set_adversarial_weights(self, n_labeled, n_unlabeled):
        self.n_labeled_, self.n_unlabeled_ = int(n_labeled), int(n_unlabeled)
        if n_unlabeled == 0:
            self.coef_, self.adv_weight_ = 0.0, 0.0
            return
        share = n_unlabeled / (n_labeled + n_unlabeled)  # gamma / (1 + gamma)
        if self.coef == "code":
            self.coef_, self.adv_weight_ = n_labeled / n_unlabeled, float(self.mu)
            return
        if self.coef == "paper":
            n_query = min(n_labeled, n_unlabeled) if self.query_size is None else self.query_size
            n_query = min(int(n_query), n_unlabeled)
            self.coef_ = float(waal_bias_coefficient(n_labeled, n_unlabeled, n_query))
        else:
            self.coef_ = float(self.coef)
        self.adv_weight_ = float(self.mu) * share

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        X_unlabeled: ArrayLike | None = None,
        **fit_params: Any,
    ) -> "WAALClassifier":
        """Train from scratch (unless ``warm_start``) on labelled and unlabelled data.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), Dataset or PIL list
            Training samples, labelled and (rows marked in ``y``) unlabelled; a torch
            ``Dataset`` or a list of PIL images works too.
        y : array-like of shape (n,), or None
            Labels; rows equal to ``unlabeled_marker`` (-1) are unlabelled. None takes a
            ``Dataset``'s labels.
        X_unlabeled : array-like, memmap, torch Dataset, list of PIL images or None, default=None
            Unlabelled samples (same per-sample shape as X). Then y must not contain the marker.
            A memmap or Dataset (a pool larger than memory) is read batch by batch, never whole.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : WAALClassifier
            This estimator, fitted.
        """
        return self._fit(X, y, X_unlabeled, reset=not (self.warm_start and self.initialized_),
                         classes=None, fit_params=fit_params)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        classes: ArrayLike | None = None,
        X_unlabeled: ArrayLike | None = None,
        **fit_params: Any,
    ) -> "WAALClassifier":
        """Continue training (``max_epochs`` more epochs) without re-initialising the networks.

        The lr schedule runs again over these epochs, starting from the learning rates the
        optimizers were created with.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), Dataset or PIL list
            Training samples, as in :meth:`fit`.
        y : array-like of shape (n,), or None
            Labels; rows equal to ``unlabeled_marker`` are unlabelled.
        classes : array-like of shape (n_classes,), default=None
            All classes, needed on the first call when ``y`` does not contain every class.
        X_unlabeled : array-like, memmap, torch Dataset, list of PIL images or None, default=None
            Unlabelled samples, as in :meth:`fit`.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : WAALClassifier
            This estimator, trained for ``max_epochs`` more epochs.
        """
        return self._fit(X, y, X_unlabeled, reset=not self.initialized_, classes=classes,
                         fit_params=fit_params)

    def _fit(self, X, y, X_unlabeled, reset, classes, fit_params):
        self._check_params()
        X, y = images_and_labels(X, y)
        X_l, y_l, X_u = self._split(X, y, X_unlabeled, reset)
        if reset and classes is not None:
            if np.any(self._unlabeled_mask(np.asarray(classes))):
                raise self._marker_collision("is one of the classes")
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
            y_l = self._encode(X_l, y_l, reset=False)
        else:
            y_l = validate_labels(self, X_l, y_l, min_classes=2 if reset else 1)
            y_l = self._encode(X_l, y_l, reset=reset)
        if len(X_u) == 0:
            warnings.warn(
                f"{type(self).__name__} got no unlabelled data (no y == "
                f"{self.unlabeled_marker!r} rows and no X_unlabeled): it is trained as a plain "
                "classifier, without the adversarial term, and its critic stays untrained.",
                UserWarning,
                stacklevel=3,
            )
        seed = self._fit_seed(continued=not reset)
        with self._fit_context(seed):
            if reset:
                self.initialize()
                self._check_features_io(X_l)
            self._set_adversarial_weights(len(X_l), len(X_u))
            if not isinstance(X_u, _LazyRows):
                X_u = torch.from_numpy(np.ascontiguousarray(X_u))
            self._train_data = (X_u,)
            try:
                super(MCDropoutClassifier, self).partial_fit(X_l, y_l, **fit_params)
            finally:
                self._train_data = None
        return self

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return WAAL's paired sampler for training, the parent's loader otherwise.

        skorch's DataLoader iterates the labelled data only, whereas a WAAL epoch runs over the
        unlabelled set with labelled samples drawn alongside: one iterable that yields
        ``(x_l, y_l, x_u)`` batches slots into skorch's fit loop, so callbacks, history and
        ``train_split`` keep working (the labelled rows a split holds out are used for
        validation only). Of the ``iterator_train__*`` parameters only ``batch_size`` and
        ``shuffle`` apply.

        Parameters
        ----------
        dataset : torch Dataset
            The labelled data (skorch's ``Dataset``).
        training : bool, default=False
            Training batches (paired with unlabelled ones) or prediction batches.

        Returns
        -------
        iterator : iterable of batches
            ``(x_l, y_l, x_u)`` training batches while fitting with unlabelled data, otherwise
            the parent's ``DataLoader``.
        """
        if not training or self._train_data is None:
            return super().get_iterator(dataset, training=training)
        X_l, y_l = _dataset_arrays(dataset)
        (X_u,) = self._train_data
        params = self.get_params_for("iterator_train")
        batch_size = params.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(len(X_l), len(X_u))
        return _PairedBatches(X_l, y_l, X_u, batch_size, self.labeled_sampling, self.epoch_over,
                              shuffle=bool(params.get("shuffle", True)))

    # ------------------------------------------------------------------ lr schedule
    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Start the lr schedule from the optimizers' current learning rates.

        Parameters
        ----------
        net : WAALClassifier
            This estimator (skorch's callback protocol).
        X : array-like, default=None
            The training samples.
        y : array-like, default=None
            The training labels.
        **kwargs
            Other arguments of skorch's ``on_train_begin``.
        """
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._epochs_done = 0
        for opt in (self.optimizer_, self.critic_optimizer_):
            for group in opt.param_groups:
                # a fresh optimizer, or an lr changed since the schedule last set it
                if group.get("scheduled_lr") != group["lr"]:
                    group["initial_lr"] = group["lr"]

    def on_epoch_begin(
        self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any
    ) -> None:
        """Set this epoch's learning rates (``lr_milestones``) and record ``lr`` in the history.

        Parameters
        ----------
        net : WAALClassifier
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
        epoch = self._epochs_done
        milestones = [int(np.ceil(m * self.max_epochs - 1e-9)) for m in self.lr_milestones or ()]
        factor = float(self.lr_decay) ** sum(epoch >= m for m in milestones)
        for opt in (self.optimizer_, self.critic_optimizer_):
            for group in opt.param_groups:
                group["lr"] = group["scheduled_lr"] = group["initial_lr"] * factor
        self.history.record("lr", self.optimizer_.param_groups[0]["lr"])
        self._epochs_done = epoch + 1

    # ------------------------------------------------------------------ training step
    def _divergence_hint(self):
        return f"Lower lr (now {self.lr!r}) or mu (now {self.mu!r})"

    def _check_finite(self, value, what):
        if not torch.isfinite(value).all():
            epoch = len(self.history) if self.history_ is not None else 0
            raise DivergenceError(
                f"{type(self).__name__} training diverged: the {what} is {value.item()} (epoch "
                f"{epoch}). {self._divergence_hint()}, or check the input for extreme values."
            )

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run one WAAL step (feature extractor + head, then critic) on a mini-batch.

        A labelled-only batch gets one plain cross-entropy step. Each optimizer is stepped on
        its own loss.

        Parameters
        ----------
        batch : tuple of tensors
            ``(x_l, y_l, x_u)``, or ``(x_l, y_l)`` without unlabelled data.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The classifier's ``loss`` and ``y_pred`` of the batch, as skorch expects.

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss is not finite.
        """
        self._set_training(True)
        if len(batch) == 2:  # no unlabelled data: a plain classifier step
            X_l, y_l = (to_tensor(b, self._compute_device()) for b in batch)
            X_l = self._augment(X_l)
            self.optimizer_.zero_grad()
            logits = self.infer(X_l, **fit_params)
            loss = self.get_loss(logits, y_l, X=X_l, training=True)
            self._check_finite(loss, "classification loss")
            scaler = self._grad_scaler()
            scaler.scale(loss).backward()
            self._sync_gradients(self.module_)
            self.notify("on_grad_computed", named_parameters=TeeGenerator(
                self.module_.named_parameters()), batch=batch, training=True)
            scaler.step(self.optimizer_)
            scaler.update()
            self.history.record_batch("ce_loss", loss.item())
            return {"loss": loss.detach(), "y_pred": logits.detach()}

        device = self._compute_device()
        X_l, y_l, X_u = (to_tensor(b, device) for b in batch)
        X_l, X_u = self._augment(X_l), self._augment(X_u)  # both, or the critic sees the transform
        X_l, X_u = (to_memory_format(x, self.memory_format) for x in (X_l, X_u))
        features, head, critic = self.module_.features, self.module_.head, self.critic_
        scaler = self._grad_scaler()  # loss scaling for fp16 (a pass-through otherwise)
        weight, coef = self.adv_weight_, self.coef_

        # (1) feature extractor + head: CE + mu' * W, with the critic frozen
        self.optimizer_.zero_grad()
        critic.requires_grad_(False)
        try:
            with self._autocast():  # float32 outputs, losses in float32
                z_l, z_u = features(X_l), features(X_u)  # (S, d) each, separate BN statistics
                logits = head(z_l)  # (S, K)
                g_u, g_l = critic(z_u), critic(z_l)
            z_l, z_u, logits, g_u, g_l = as_float32((z_l, z_u, logits, g_u, g_l))
            ce = self.get_loss(logits, y_l, X=X_l, training=True)
            w_gen = waal_adversarial_loss(g_u, g_l, coef)
            loss = ce + weight * w_gen
        finally:
            critic.requires_grad_(True)
        self._check_finite(loss, "classifier's loss (cross-entropy + mu' * Wasserstein term)")
        scaler.scale(loss).backward()
        self._sync_gradients(self.module_)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.module_.named_parameters()), batch=batch, training=True)
        scaler.step(self.optimizer_)

        # (2) critic: maximise mu' * W, minus the gradient penalty, on detached features (float32)
        self.critic_optimizer_.zero_grad()
        z_l, z_u = z_l.detach(), z_u.detach()
        w_critic = waal_adversarial_loss(critic(z_u), critic(z_l), coef)
        if self.gp_weight != 0:
            gp = gradient_penalty(critic, z_u, z_l, include_endpoints=self.gp_endpoints)
        else:
            gp = torch.zeros((), device=z_u.device)
        critic_loss = weight * (self.gp_weight * gp - w_critic)
        self._check_finite(critic_loss, "critic's loss (Wasserstein estimate + gradient penalty)")
        scaler.scale(critic_loss).backward()
        self._sync_gradients(self.critic_)
        scaler.step(self.critic_optimizer_)
        scaler.update()

        record = self.history.record_batch
        record("ce_loss", ce.item())
        record("critic_loss", critic_loss.item())
        record("wasserstein", w_critic.item())
        record("gradient_penalty", gp.item())
        return {"loss": loss.detach(), "y_pred": logits.detach()}

    def _sync_gradients(self, module):
        """Called after each backward pass; data-parallel subclasses average the gradients."""

    # ------------------------------------------------------------------ scoring
    def _pool_batches(self, X):
        batch_size = self.get_params_for("iterator_valid").get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(len(X), 1)
        for start in range(0, len(X), batch_size):
            xb = torch.as_tensor(X[start:start + batch_size], device=self._compute_device())
            yield to_memory_format(xb, self.memory_format)

    def _scoring_chunks(self, X):
        """``(start, validated rows)``: the whole array, or a lazy pool chunk by chunk."""
        if is_lazy_pool(X):
            check_is_fitted(self, ["module_", "label_encoder_"])
            return self._pool_chunks(X)
        return [(0, self._check_fitted_X(X))]

    def _eval_forward(self, chunks, fn):
        """Run ``fn(xb)`` per batch of every chunk, every network in eval mode, no gradients."""
        modes = [(m, m.training) for m in (self.module_, self.critic_)]
        for m, _ in modes:
            m.eval()
        try:
            with torch.no_grad():
                out = []
                for _, X in chunks:
                    for xb in self._pool_batches(X):
                        with self._autocast():
                            scores = fn(xb)
                        out.append(scores.float().cpu())  # (b,): n floats in all
        finally:
            for m, mode in modes:
                m.train(mode)
        return torch.cat(out).numpy() if out else np.empty(0, dtype=np.float32)

    def _check_scores(self, scores, what):
        if not np.all(np.isfinite(scores)):
            bad = int(np.sum(~np.isfinite(scores)))
            raise DivergenceError(
                f"The {what} of {type(self).__name__} is not finite for {bad} of {len(scores)} "
                "samples: training diverged (refit with a lower lr or mu)."
            )
        return scores

    def critic_score(self, X: ArrayLike) -> np.ndarray:
        """Return the critic's output ``g(x)`` per row (eval mode): near 1 = "looks unlabelled".

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            Samples, in the layout of the training data. A memmap or Dataset is read one chunk
            at a time; only the n scores are kept.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
            The critic's g(x), in [0, 1].
        """
        chunks = self._scoring_chunks(X)
        features, critic = self.module_.features, self.critic_
        scores = self._eval_forward(chunks, lambda xb: critic(features(xb)))
        return self._check_scores(scores, "critic score g(x)")

    def waal_score(
        self,
        X: ArrayLike,
        *,
        selection: float | None = None,
        mixture: float | None = None,
        kind: str | None = None,
    ) -> np.ndarray:
        """Return WAAL's query score ``U(x) - selection * g(x)`` per row; smaller is better.

        One forward pass: the features of each batch are computed once and fed to both the head
        (for ``U``, from ``log_softmax``) and the critic (eval mode).

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            Samples, in the layout of the training data. A memmap or Dataset is read one chunk
            at a time; only the n scores are kept.
        selection : float or None, default=None
            Weight of the critic's score; None uses the estimator's ``selection``.
        mixture : float or None, default=None
            Mixture coefficient of the uncertainty bound; None uses the estimator's.
        kind : {"paper", "code"} or None, default=None
            The uncertainty bound; None uses the estimator's ``kind``.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
            ``U(x) - selection * g(x)``; the query takes the smallest.
        """
        chunks = self._scoring_chunks(X)
        if selection is not None and not (
            isinstance(selection, numbers.Real) and not isinstance(selection, bool)
            and np.isfinite(selection)
        ):
            raise ValueError(
                "The 'selection' parameter of waal_score must be None or a finite float. "
                f"Got {selection!r} instead."
            )
        selection = self.selection if selection is None else selection
        mixture = self.mixture if mixture is None else mixture
        kind = self.kind if kind is None else kind
        features, head, critic = self.module_.features, self.module_.head, self.critic_

        def score(xb):
            z = features(xb)  # (b, d), shared by head and critic
            log_proba = F.log_softmax(head(z).float(), dim=1)  # (b, K)
            return waal_query_score(log_proba, critic(z).float(), selection, mixture, kind)

        return self._check_scores(self._eval_forward(chunks, score), "WAAL query score")
