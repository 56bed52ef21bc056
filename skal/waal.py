"""WAALClassifier: Wasserstein Adversarial Active Learning (Shui et al., AISTATS 2020) for skorch.

WAAL trains a feature extractor ``f``, a classifier head ``h`` and a critic ``g`` on labelled *and*
unlabelled data: ``f`` and ``h`` minimise the cross-entropy on labelled samples plus mu' times an
estimate of the Wasserstein distance between the unlabelled and labelled feature distributions,
while ``g`` (a sigmoid MLP with a gradient penalty) maximises that estimate. The query rule of
:func:`skal.query.waal_uncertainty_diversity` then ranks the pool by ``U(x) - selection * g(x)``
(an upper bound on the unknown loss minus the critic's diversity score) and takes the *smallest*.

The paper's settings are the defaults; :meth:`WAALClassifier.authors_code` gives every choice of
the authors' released code at once (:data:`AUTHORS_CODE`; ``docs/waal.md``, 'Departures from the
authors' code').

The pieces live where they belong: the networks and the choice of feature extractor in
:mod:`skal.nets.waal`, the losses and scores in :mod:`skal.losses`, the learning-rate schedule in
:class:`skal.callbacks.MilestoneLR`, the labelled / unlabelled split in ``skal._semi_supervised``;
this module wires them into skorch's hooks.

References
----------
.. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled Method
   for Query and Training", AISTATS 2020, arXiv:1911.09162 (thesis chapter 3, Alg. 2).
"""

import warnings
from typing import ClassVar
import numpy as np
import torch
from skorch.callbacks import PassthroughScoring
from skorch.utils import TeeGenerator, to_tensor
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from ._modes import _EvalMode
from ._params import Choice, Float, Hidden, Int, Satisfies, check_params, deprecated_value
from ._pool import as_pool, is_lazy_pool
from ._precision import as_float32, to_memory_format
from ._semi_supervised import marker_collision, split_labeled, unlabeled_mask
from ._skorch_compat import add_default_callbacks, dataset_arrays, set_training
from ._validation import accepts, validate_images, validate_labels
from .callbacks import MilestoneLR
from .classifier import MCDropoutClassifier, batch_bounds
from .exceptions import DivergenceError
from .losses import (
    UNCERTAINTY_ALIASES,
    gradient_penalty,
    waal_adversarial_loss,
    waal_bias_coefficient,
    waal_query_score,
)
from .nets.waal import (  # noqa: F401  (MLPFeatures, ResNet18Features: their old import path)
    NAMED_FEATURES,
    MLPFeatures,
    ResNet18Features,
    WAALCritic,
    WAALHead,
    WAALNet,
    infer_out_features,
    make_features,
)

__all__ = ["AUTHORS_CODE", "WAALClassifier"]

#: The choices of the authors' released code (``cjshui/WAAL``) where it departs from the paper;
#: :meth:`WAALClassifier.authors_code` applies them (docs/waal.md, 'Departures from the authors'
#: code', items 1-9). The code's generator-side penalty is a no-op there and is left out; skal
#: never augments (item 10) and always reuses the detached features in the critic step (item 11).
AUTHORS_CODE = {
    "coef": "ratio",  # L / U on the labelled critic term, mu itself as the weight (item 1)
    "mu": 2e-3,  # item 2
    "gp_weight": -2.0,  # the code's sign of the gradient penalty (item 3, a bug)
    "gp_endpoints": True,  # penalise z_u and z_l too (item 5)
    "labeled_sampling": "cyclic",  # perm % L (item 6)
    "lr_milestones": None,  # constant learning rate (item 7)
    "selection": 10.0,  # item 8
    "uncertainty": "l2_l1",  # item 9
}

_COEF_ALIASES = {"paper": "bias_bound", "code": "ratio"}  # the names before 0.1


def softmax(logits):
    """Softmax over the last axis: WAALClassifier's ``predict_nonlinearity`` (picklable)."""
    return torch.softmax(logits, dim=-1)


def _is_module_class(value):
    return isinstance(value, type) and issubclass(value, nn.Module)


def _milestones_ok(milestones):
    return all(Float(0, 1, closed="right").is_satisfied_by(m) for m in milestones)


class _WAALSchedule(MilestoneLR):
    """WAAL's schedule: ``lr_milestones`` and ``lr_decay`` of the net, for both optimizers.

    The two parameters are read from the net when training starts, so ``set_params`` on them
    takes effect at the next ``fit`` or ``partial_fit``.
    """

    def __init__(self):
        super().__init__(milestones=None, decay=None,
                         optimizers=("optimizer", "critic_optimizer"))

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.milestones, self.decay = net.lr_milestones, net.lr_decay
        super().on_train_begin(net, X=X, y=y, **kwargs)


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


class WAALClassifier(MCDropoutClassifier):
    """Wasserstein Adversarial Active Learning (WAAL): a classifier trained on labelled and
    unlabelled data, with a critic that scores how unlike the labelled set a sample looks.

    Three networks: a feature extractor and a classifier head, together the skorch ``module_``
    (a :class:`skal.nets.WAALNet`, so ``predict_proba`` and ``sample_proba`` work as for any skal
    classifier), and a critic ``critic_`` (:class:`skal.nets.WAALCritic`, ``g(z)`` in [0, 1], 1 =
    "looks unlabelled"), registered through skorch so ``critic__*`` parameters work, with its own
    optimizer ``critic_optimizer_`` (``critic_optimizer__*`` parameters; by default the same
    optimizer class and ``lr`` as the main one).

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
    staying finite, or weights that become non-finite. The learning-rate schedule is the default
    callback ``lr_schedule`` (:class:`skal.callbacks.MilestoneLR` on both optimizers).

    **Paper or authors' code.** The defaults are the paper's (the Fashion-MNIST / SVHN settings);
    ``WAALClassifier.authors_code(**overrides)`` builds one with every choice of the authors'
    released code (``cjshui/WAAL``, :data:`AUTHORS_CODE`), each documented with its reason in
    docs/waal.md ('Departures from the authors' code', 'Known bugs in the authors' code'):

    ===================  =======================================  ==============================
    parameter            paper (default)                          authors' code
    ===================  =======================================  ==============================
    ``coef``             ``"bias_bound"``: C0 of Eq. 3.8, weight   ``"ratio"``: L / U, weight mu
                         mu'
    ``mu``               1e-2                                     2e-3
    ``gp_weight``        2 (+ GP: WGAN-GP)                        -2 (the code's sign, a bug)
    ``gp_endpoints``     False (interpolates only)                True (also z_u and z_l)
    ``labeled_sampling`` ``"replacement"``                        ``"cyclic"`` (perm % L)
    ``lr_milestones``    (0.5, 0.75): x0.1 at 50 % and 75 %        None (constant)
    ``selection``        5 (10 for CIFAR-10)                      10
    ``uncertainty``      ``"linf_l1"``: l_inf + l1 of -log p      ``"l2_l1"``: l2 + l1
    ===================  =======================================  ==============================

    In both, the uncertainty comes from ``log_softmax`` (finite, unlike the code's
    ``log(softmax)``), the code's generator-side penalty (a no-op there) is left out, nothing is
    augmented (the paper's choice; the code augments SVHN and CIFAR-10), momentum is 0.5 (0.3 for
    CIFAR-10), and training runs ``max_epochs`` unless a skorch ``EarlyStopping`` callback (with
    ``train_split``) is given.

    Parameters
    ----------
    features : None, str, torch module class or instance, default=None
        The feature extractor (see :func:`skal.nets.waal.make_features`). ``None`` picks from the
        image shape: :class:`~skal.nets.VGG16BNFeatures` for 3-channel images of at least 32x32,
        :class:`~skal.nets.LeNetFeatures` for other images of at least 16x16 (e.g. 1x28x28), and
        a one-layer MLP (``"mlp"``, flatten -> Linear(d, 128) -> ReLU) for flat or smaller inputs.
        Strings: ``"lenet"``, ``"vgg16bn"``, ``"resnet18"`` (the trunk of
        :class:`skal.nets.ResNet18`, 512-d), ``"mlp"``. A class is instantiated with
        ``in_channels`` and ``image_shape`` if it takes them; an instance is deep-copied at every
        fit (each fit starts from its weights). The feature size is read from ``out_features`` or
        measured.
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
    uncertainty : {"linf_l1", "l2_l1"}, default="linf_l1"
        Uncertainty bound at query time (:func:`skal.losses.waal_uncertainty`): ``mixture`` times
        the l_inf norm (the single worst class, Eq. 3.10) plus ``1 - mixture`` times the l1 norm
        (Eq. 3.11) of ``-log p`` (the paper), or l2 instead of l_inf (the authors' code).
    coef : {"bias_bound", "ratio"} or float, default="bias_bound"
        Weight of the labelled critic term: ``"bias_bound"`` is C0 of Eq. 3.8 (the paper), with
        mu' as the weight of the whole term; ``"ratio"`` is L / U with mu itself as the weight
        (the authors' code); a float is used as given (with mu').
    kind : {"paper", "code"}, default="deprecated"
        Deprecated alias of ``uncertainty`` (``"paper"`` is ``"linf_l1"``, ``"code"`` is
        ``"l2_l1"``); it overrides ``uncertainty`` when given. ``coef="paper"`` /
        ``coef="code"`` are deprecated aliases too.
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
    max_epochs : int, default=80
    batch_size : int, default=64
        S: the number of unlabelled (and of labelled) samples per step.
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
    module_ : skal.nets.WAALNet
        Feature extractor (``module_.features``) and head (``module_.head``).
    critic_ : skal.nets.WAALCritic
    optimizer_, critic_optimizer_ : torch optimizers
    coef_ : float
        The coefficient of the labelled critic term used in the last fit.
    adv_weight_ : float
        The weight of the Wasserstein term (mu') used in the last fit (0 without unlabelled data).
    n_labeled_, n_unlabeled_ : int
        L and U of the last fit (L counts all labelled rows given, before any ``train_split``).

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
    >>> WAALClassifier.authors_code(max_epochs=1).get_params()["gp_weight"]
    -2.0
    """

    _fixed_module = True

    _parameter_constraints: ClassVar[dict] = {
        "features": [None, Choice(*NAMED_FEATURES), nn.Module,
                     Satisfies(_is_module_class, "a torch module class")],
        "hidden": [Int(1)],
        "dropout": [Float(0, 1, closed="left")],
        "mu": [Float(0, None, closed="left")],
        "selection": [Float()],
        "mixture": [Float(0, 1)],
        "uncertainty": [Choice("linf_l1", "l2_l1")],
        "kind": [Choice("paper", "code"), Hidden(Choice("deprecated"))],
        "coef": [Choice("bias_bound", "ratio", deprecated=tuple(_COEF_ALIASES)), Float()],
        "query_size": [None, Int(1)],
        "gp_weight": [Float()],
        "labeled_sampling": [Choice("replacement", "cyclic")],
        "epoch_over": [Choice("unlabeled", "labeled")],
        "lr_milestones": [None, Satisfies(_milestones_ok, "a sequence of floats in (0, 1]")],
        "lr_decay": [Float(0, None, closed="neither")],
        "momentum": [Float(0, None, closed="left")],
        "max_epochs": [Int(1)],
        "batch_size": [Int(1)],
    }

    def __init__(
        self,
        features=None,
        hidden=50,
        dropout=0.5,
        *,
        mu=1e-2,
        selection=5.0,
        mixture=0.5,
        uncertainty="linf_l1",
        coef="bias_bound",
        kind="deprecated",
        query_size=None,
        gp_weight=2.0,
        gp_endpoints=False,
        labeled_sampling="replacement",
        epoch_over="unlabeled",
        lr_milestones=(0.5, 0.75),
        lr_decay=0.1,
        momentum=0.5,
        unlabeled_marker=-1,
        image_shape=None,
        optimizer=torch.optim.SGD,
        lr=0.01,
        max_epochs=80,
        batch_size=64,
        predict_nonlinearity=softmax,
        random_state=None,
        **kwargs,
    ):
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
        self.uncertainty = uncertainty
        self.coef = coef
        self.kind = kind
        self.query_size = query_size
        self.gp_weight = gp_weight
        self.gp_endpoints = gp_endpoints
        self.labeled_sampling = labeled_sampling
        self.epoch_over = epoch_over
        self.lr_milestones = lr_milestones
        self.lr_decay = lr_decay
        self.momentum = momentum
        self.unlabeled_marker = unlabeled_marker

    @classmethod
    def authors_code(cls, **overrides):
        """A WAALClassifier with every choice of the authors' released code (``cjshui/WAAL``).

        The parameters of :data:`AUTHORS_CODE` (``coef="ratio"``, ``mu=2e-3``,
        ``gp_weight=-2``, ``gp_endpoints=True``, ``labeled_sampling="cyclic"``,
        ``lr_milestones=None``, ``selection=10``, ``uncertainty="l2_l1"``), then ``overrides``.

        Parameters
        ----------
        **overrides
            Any constructor parameter (e.g. ``max_epochs``, ``random_state``).

        Returns
        -------
        WAALClassifier
            Unfitted.
        """
        return cls(**{**AUTHORS_CODE, **overrides})

    _train_data = None  # (X_u,) as a tensor (or lazily read rows), only while fitting

    @property
    def _default_callbacks(self):
        extra = [
            (name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
            for name in ("ce_loss", "critic_loss", "wasserstein", "gradient_penalty")
        ]
        extra.append(("lr_schedule", _WAALSchedule()))
        return add_default_callbacks(super()._default_callbacks, extra)

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()  # the constraints above and the parents', and the device
        name = type(self).__name__
        if self.kind != "deprecated":
            warnings.warn(
                f"The 'kind' parameter of {name} is deprecated: use uncertainty="
                f"{UNCERTAINTY_ALIASES[self.kind]!r} (kind={self.kind!r}) instead.",
                DeprecationWarning, stacklevel=4,
            )
        deprecated_value(self.coef, _COEF_ALIASES, "coef", name, stacklevel=4)

    def _uncertainty_kind(self):
        return self.uncertainty if self.kind == "deprecated" else UNCERTAINTY_ALIASES[self.kind]

    def _divergence_hint(self):
        return f"Lower lr (now {self.lr!r}) or mu (now {self.mu!r})"

    # ------------------------------------------------------------------ networks
    def initialize_module(self):
        """Build ``module_`` (feature extractor + head) and ``critic_`` from the fitted data."""
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
        features = make_features(self.features, tuple(shape), dropout=self.dropout)
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

    def _check_module_io(self, X):
        """One forward pass of the feature extractor on one sample: it must take the input and
        return flat features of the size the head was built for (torch's errors otherwise come
        from deep inside the first training step)."""
        features = self.module_.features
        name, features_name = type(self).__name__, type(features).__name__
        x = torch.as_tensor(X[:1], device=self._compute_device())  # (1,) + input_shape_
        n_features = self.module_.head.in_features
        try:
            with _EvalMode(features), torch.no_grad(), torch.random.fork_rng(devices=[]):
                z = features(x)
        except RuntimeError as exc:
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) cannot take the input: a "
                f"forward pass on one sample of shape {tuple(x.shape)} failed with: {exc}"
            ) from None
        if not isinstance(z, torch.Tensor) or tuple(z.shape) != (1, n_features):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) returns {shape} for one "
                f"sample of shape {tuple(x.shape)}; expected flat features of shape "
                f"(1, {n_features}) ({n_features} from its out_features or a probe). End it with "
                "nn.Flatten(), or set out_features to the feature size."
            )

    def _optimizer_kwargs(self, kwargs):
        if accepts(self.optimizer, "momentum") and "momentum" not in kwargs:
            kwargs["momentum"] = self.momentum
        return kwargs

    def initialize_optimizer(self, triggered_directly=None):
        """One optimizer for feature extractor + head, another (``critic_optimizer_``) for the
        critic; skorch's default would put every parameter, the critic's too, in one optimizer."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        args, kwargs = self.get_params_for_optimizer(
            "critic_optimizer", self.critic_.named_parameters()
        )
        self.critic_optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        return self

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, X_unlabeled=None, **fit_params):
        """Train from scratch (unless ``warm_start``) on labelled and unlabelled data.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), torch Dataset or list
            of PIL images
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
        self
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, reset=reset, classes=None, partial=False, fit_params=fit_params,
                         X_unlabeled=X_unlabeled)

    def partial_fit(self, X, y=None, classes=None, X_unlabeled=None, **fit_params):
        """Continue training (``max_epochs`` more epochs) without re-initialising the networks.

        The lr schedule runs again over these epochs, starting from the learning rates the
        optimizers were created with. Arguments as in :meth:`fit`; ``classes`` lists all classes
        on the first call if y lacks some.

        Returns
        -------
        self
        """
        return self._fit(X, y, reset=not self.initialized_, classes=classes, partial=True,
                         fit_params=fit_params, X_unlabeled=X_unlabeled)

    def _prepare_fit_data(self, X, y, *, reset, classes, partial, X_unlabeled=None):
        """Split the input into labelled ``(X_l, y_l)`` and unlabelled ``X_u`` (the context)."""
        marker = self.unlabeled_marker
        X_l, y_l, X_u = split_labeled(
            self, X, y, X_unlabeled, marker=marker,
            classes=self.classes if reset else getattr(self, "classes_", None),
            validate_X=lambda X: self._validate_X(X, reset=reset),
            validate_X_unlabeled=self._unlabeled_rows,
        )
        if reset and classes is not None:
            if np.any(unlabeled_mask(np.asarray(classes), marker)):
                raise marker_collision(marker, "is one of the classes")
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
            y_l = self._encode(X_l, y_l, reset=False)
        else:
            y_l = validate_labels(self, X_l, y_l, min_classes=2 if reset else 1)
            y_l = self._encode(X_l, y_l, reset=reset)
        if len(X_u) == 0:
            warnings.warn(
                f"{type(self).__name__} got no unlabelled data (no y == {marker!r} rows and no "
                "X_unlabeled): it is trained as a plain classifier, without the adversarial "
                "term, and its critic stays untrained.",
                UserWarning,
                stacklevel=4,
            )
        return X_l, y_l, {"X_unlabeled": X_u}

    def _unlabeled_rows(self, X_unlabeled):
        """Validated unlabelled rows; a lazy pool (memmap, Dataset) is checked on one row and
        read per batch."""
        if is_lazy_pool(X_unlabeled):
            pool = as_pool(X_unlabeled)
            self._validate_X_unlabeled(pool.take([0]))
            return _LazyRows(pool, self._validate_X_unlabeled)
        return self._validate_X_unlabeled(X_unlabeled)

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
        coef = _COEF_ALIASES.get(self.coef, self.coef) if isinstance(self.coef, str) else self.coef
        if coef == "ratio":
            self.coef_, self.adv_weight_ = n_labeled / n_unlabeled, float(self.mu)
            return
        if coef == "bias_bound":
            n_query = min(n_labeled, n_unlabeled) if self.query_size is None else self.query_size
            n_query = min(int(n_query), n_unlabeled)
            self.coef_ = float(waal_bias_coefficient(n_labeled, n_unlabeled, n_query))
        else:
            self.coef_ = float(coef)
        self.adv_weight_ = float(self.mu) * share

    def _train(self, X, y, fit_params, X_unlabeled):
        """skorch's fit loop, with the unlabelled rows at hand for :meth:`get_iterator`."""
        self._set_adversarial_weights(len(X), len(X_unlabeled))
        if not isinstance(X_unlabeled, _LazyRows):
            X_unlabeled = torch.from_numpy(np.ascontiguousarray(X_unlabeled))
        self._train_data = (X_unlabeled,)
        try:
            return super()._train(X, y, fit_params)
        finally:
            self._train_data = None

    def get_iterator(self, dataset, training=False):
        """Training batches come from WAAL's paired sampler (see ``_PairedBatches``).

        skorch's DataLoader iterates the labelled data only, whereas a WAAL epoch runs over the
        unlabelled set with labelled samples drawn alongside: one iterable that yields
        ``(x_l, y_l, x_u)`` batches slots into skorch's fit loop, so callbacks, history and
        ``train_split`` keep working (the labelled rows a split holds out are used for
        validation only). Of the ``iterator_train__*`` parameters only ``batch_size`` and
        ``shuffle`` apply.
        """
        if not training or self._train_data is None:
            return super().get_iterator(dataset, training=training)
        X_l, y_l, _ = dataset_arrays(dataset, type(self).__name__)
        X_l, y_l = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X_l, y_l))
        (X_u,) = self._train_data
        params = self.get_params_for("iterator_train")
        batch_size = params.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(len(X_l), len(X_u))
        return _PairedBatches(X_l, y_l, X_u, batch_size, self.labeled_sampling, self.epoch_over,
                              shuffle=bool(params.get("shuffle", True)))

    # ------------------------------------------------------------------ training step
    def _check_finite(self, value, what):
        if not torch.isfinite(value).all():
            epoch = len(self.history) if self.history_ is not None else 0
            raise DivergenceError(
                f"{type(self).__name__} training diverged: the {what} is {value.item()} (epoch "
                f"{epoch}). {self._divergence_hint()}, or check the input for extreme values."
            )

    def train_step(self, batch, **fit_params):
        """One WAAL step (feature extractor + head, then critic) or, for a labelled-only batch,
        one plain cross-entropy step. Each optimizer is stepped on its own loss."""
        set_training(self, True)
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
        out = []
        with _EvalMode(self.module_, self.critic_), torch.no_grad():
            for _, X in chunks:
                for xb in self._pool_batches(X):
                    with self._autocast():
                        scores = fn(xb)
                    out.append(scores.float().cpu())  # (b,): n floats in all
        return torch.cat(out).numpy() if out else np.empty(0, dtype=np.float32)

    def _check_scores(self, scores, what):
        if not np.all(np.isfinite(scores)):
            bad = int(np.sum(~np.isfinite(scores)))
            raise DivergenceError(
                f"The {what} of {type(self).__name__} is not finite for {bad} of {len(scores)} "
                "samples: training diverged (refit with a lower lr or mu)."
            )
        return scores

    def critic_score(self, X):
        """The critic's output ``g(x)`` per row (eval mode): near 1 = "looks unlabelled".

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            A memmap or Dataset is read one chunk at a time; only the n scores are kept.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
        """
        chunks = self._scoring_chunks(X)
        features, critic = self.module_.features, self.critic_
        scores = self._eval_forward(chunks, lambda xb: critic(features(xb)))
        return self._check_scores(scores, "critic score g(x)")

    def waal_score(self, X, *, selection=None, mixture=None, uncertainty=None, kind=None):
        """WAAL's query score ``U(x) - selection * g(x)`` per row; **smaller is better**.

        One forward pass: the features of each batch are computed once and fed to both the head
        (for ``U``, from ``log_softmax``) and the critic (eval mode).

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            A memmap or Dataset is read one chunk at a time; only the n scores are kept.
        selection, mixture, uncertainty : default=None
            Override the estimator's ``selection``, ``mixture`` and ``uncertainty``.
        kind : {"paper", "code"} or None, default=None
            Deprecated alias of ``uncertainty``.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
        """
        chunks = self._scoring_chunks(X)
        check_params(self, {"selection": [None, Float()]}, {"selection": selection},
                     caller_name="waal_score")
        if kind is not None:
            warnings.warn(
                "The 'kind' parameter of waal_score is deprecated: use uncertainty="
                f"{UNCERTAINTY_ALIASES.get(kind, kind)!r} (kind={kind!r}) instead.",
                DeprecationWarning, stacklevel=2,
            )
            uncertainty = UNCERTAINTY_ALIASES.get(kind, kind)
        selection = self.selection if selection is None else selection
        mixture = self.mixture if mixture is None else mixture
        uncertainty = self._uncertainty_kind() if uncertainty is None else uncertainty
        features, head, critic = self.module_.features, self.module_.head, self.critic_

        def score(xb):
            z = features(xb)  # (b, d), shared by head and critic
            log_proba = F.log_softmax(head(z).float(), dim=1)  # (b, K)
            return waal_query_score(log_proba, critic(z).float(), selection, mixture, uncertainty)

        return self._check_scores(self._eval_forward(chunks, score), "WAAL query score")
