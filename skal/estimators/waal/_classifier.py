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
:class:`skal.callbacks.MilestoneLR`, the labelled / unlabelled split in ``skal.estimators._semi_supervised``,
the networks' and optimizers' initialisation in ``skal.estimators.waal._networks``, the training hooks (paired
batches, Alg. 2's step) in ``skal.estimators.waal._training`` and the pool scores in ``skal.estimators.waal._scoring``;
this module holds the parameters, the presets and the fit flow.

References
----------
.. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled Method
   for Query and Training", AISTATS 2020, arXiv:1911.09162 (thesis chapter 3, Alg. 2).
"""

import warnings
from typing import Any, ClassVar

import torch
from skorch.callbacks import PassthroughScoring
from torch import nn

from ...callbacks import MilestoneLR
from ...losses import (
    UNCERTAINTY_ALIASES,
)
from ...nets.waal import NAMED_FEATURES, WAALNet
from ...utils.params import (
    Choice,
    Float,
    Hidden,
    Int,
    Satisfies,
    deprecated_value,
)
from ...utils.skorch_compat import add_default_callbacks
from ...utils.typing import ArrayLike, RandomStateLike
from .._classifier import MCDropoutClassifier
from ._networks import WAALNetworksMixin
from ._scoring import WAALScoringMixin
from ._training import COEF_ALIASES, WAALTrainingMixin

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


class WAALClassifier(WAALNetworksMixin, WAALTrainingMixin, WAALScoringMixin,
                     MCDropoutClassifier):
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
    callback (:class:`skal.callbacks.DivergenceCheck`) also stops a loss that explodes while
    staying finite, or weights that become non-finite. The learning-rate schedule is the default
    callback ``lr_schedule`` (:class:`skal.callbacks.MilestoneLR` on both optimizers).

    **Paper or authors' code.** The defaults are the paper's (the Fashion-MNIST / SVHN settings);
    ``WAALClassifier.authors_code(**overrides)`` builds one with every choice of the authors'
    released code (``cjshui/WAAL``, :data:`AUTHORS_CODE`), each documented with its reason in
    docs/waal.md ('Departures from the authors' code', 'Known bugs in the authors' code'):

    - ``coef``: ``"bias_bound"``, C0 of Eq. 3.8 with weight mu' (paper); ``"ratio"``, L / U with
      weight mu (code);
    - ``mu``: 1e-2 (paper); 2e-3 (code);
    - ``gp_weight``: 2, + GP as in WGAN-GP (paper); -2, the code's sign (a bug);
    - ``gp_endpoints``: False, interpolates only (paper); True, also z_u and z_l (code);
    - ``labeled_sampling``: ``"replacement"`` (paper); ``"cyclic"``, perm % L (code);
    - ``lr_milestones``: (0.5, 0.75), x0.1 at 50 % and at 75 % (paper); None, constant (code);
    - ``selection``: 5, 10 for CIFAR-10 (paper); 10 (code);
    - ``uncertainty``: ``"linf_l1"``, l_inf + l1 of -log p (paper); ``"l2_l1"``, l2 + l1 (code).

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
    predict_nonlinearity : callable, default=skal.estimators.waal._classifier.softmax
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
        "coef": [Choice("bias_bound", "ratio", deprecated=tuple(COEF_ALIASES)), Float()],
        "query_size": [None, Int(1)],
        "gp_weight": [Float()],
        "labeled_sampling": [Choice("replacement", "cyclic")],
        "epoch_over": [Choice("unlabeled", "labeled")],
        "lr_milestones": [None, Satisfies(_milestones_ok, "a sequence of floats, each in the "
                                                 "range (0.0, 1.0]")],
        "lr_decay": [Float(0, None, closed="neither")],
        "momentum": [Float(0, None, closed="left")],
        "max_epochs": [Int(1)],
        "batch_size": [Int(1)],
    }

    def __init__(
        self,
        features: Any = None,
        hidden: int = 50,
        dropout: float = 0.5,
        *,
        mu: float = 1e-2,
        selection: float = 5.0,
        mixture: float = 0.5,
        uncertainty: str = "linf_l1",
        coef: str | float = "bias_bound",
        kind: str = "deprecated",
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
    def authors_code(cls, **overrides: Any) -> "WAALClassifier":
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
        deprecated_value(self.coef, COEF_ALIASES, "coef", name, stacklevel=4)

    def _uncertainty_kind(self):
        return self.uncertainty if self.kind == "deprecated" else UNCERTAINTY_ALIASES[self.kind]

    def _divergence_hint(self):
        return f"Lower lr (now {self.lr!r}) or mu (now {self.mu!r})"

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
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, reset=reset, classes=None, partial=False, fit_params=fit_params,
                         X_unlabeled=X_unlabeled)

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
        return self._fit(X, y, reset=not self.initialized_, classes=classes, partial=True,
                         fit_params=fit_params, X_unlabeled=X_unlabeled)

    # ------------------------------------------------------------------ scoring
