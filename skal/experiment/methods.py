"""The query methods of the experiment runner: how each one builds, trains and queries its model.

A :class:`Method` also declares which :class:`~skal.experiment.ExperimentConfig` options it does
not use (they are refused when set), its own defaults (WAAL's learning rate), how many gradient
steps one of its epochs takes (for ``min_steps``) and how to name its estimator.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR

from ..estimators.bgadl import PAPER_GEN_WEIGHT, BGADLClassifier
from ..estimators.waal import WAALClassifier
from ..query import (
    badge,
    bald,
    batch_bald,
    coreset,
    entropy_sampling,
    margin_sampling,
    power_bald,
    random_sampling,
    typiclust,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)

__all__ = [
    "METHODS",
    "Method",
    "make_bgadl",
    "make_random_gen",
    "make_resnet18",
    "make_resnet18_learner",
    "make_waal",
    "register_method",
]


def _resnet18_params(config, random_state, classes):
    """The ResNet18Classifier parameters every ResNet18 method shares."""
    callbacks = None
    if config.lr_schedule == "cosine":
        scheduler = LRScheduler(CosineAnnealingLR, T_max=config.max_epochs)
        callbacks = [("lr_scheduler", scheduler)]
    return dict(
        preact=config.preact,
        dropout=config.dropout,
        width=config.width,
        lr=config.lr,
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        random_state=random_state,
        device=config.device,
        warm_start=bool(config.warm_start),
        classes=classes,
        callbacks=callbacks,
    )


def make_resnet18(config: Any, random_state: int, classes: np.ndarray,
                  encoder: Any = None) -> Any:
    """The default estimator of every method: what the configuration's recipe trains.

    A :class:`skal.ResNet18Classifier` for the ``"scratch"`` recipe, built, like every recipe's
    estimator, by :func:`skal.recipe.make_estimator`.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's (see :meth:`ExperimentConfig.epochs_for`).
    random_state : int
        Seed of this round's (or, with ``warm_start``, this repeat's) model.
    classes : ndarray
        All classes of the data set, so the output layer never depends on the labelled set.
    encoder : ContrastiveEncoder, EncodedFeatures or None, default=None
        The repeat's fitted encoder, for a recipe that uses one (the runner passes it).

    Returns
    -------
    estimator : ResNet18Classifier or Pipeline
        Unfitted, with the configuration's ``width``, ``preact``, ``dropout``, ``lr``,
        ``max_epochs``, ``batch_size``, ``device``, ``warm_start`` and ``lr_schedule``: a
        ``ResNet18Classifier`` for the ``"scratch"`` recipe (a ``FixMatchClassifier`` with
        ``semi_supervised``), a ``Pipeline`` of the frozen encoder and an
        ``EmbeddingHeadClassifier`` for ``"ssl-head"``.
    """
    from ..recipe import make_estimator

    params = _resnet18_params(config, random_state, classes)
    params["preact"] = bool(params["preact"])  # None (not used) for recipes with an encoder
    return make_estimator(config.recipe_spec(), encoder=encoder, **params)


def make_resnet18_learner(config: Any, random_state: int, classes: np.ndarray,
                          encoder: Any = None) -> Any:
    """:func:`make_resnet18` in a :class:`skal.ActiveLearner`.

    No built-in method needs it any more: the runner queries every method through its own
    learner, whose ``X_training_`` the labelled-set strategies (``"coreset"``,
    ``"typiclust"``) read. A method that returns a learner has its parameters taken over by the
    runner's.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's.
    random_state : int
        Seed of this round's model.
    classes : ndarray
        All classes of the data set.
    encoder : ContrastiveEncoder, EncodedFeatures or None, default=None
        The repeat's fitted encoder, for a recipe that uses one.

    Returns
    -------
    learner : ActiveLearner
        Holding the unfitted estimator of :func:`make_resnet18`.
    """
    from ..learner import ActiveLearner

    return ActiveLearner(make_resnet18(config, random_state, classes, encoder=encoder))


def make_waal(config: Any, random_state: int, classes: np.ndarray) -> WAALClassifier:
    """The estimator of the ``"waal"`` method: a :class:`skal.WAALClassifier`.

    The feature extractor follows the images (LeNet for Fashion-MNIST, VGG16-BN for 32x32 colour,
    an MLP for 8x8 digits); the paper's optimiser (SGD, momentum 0.5, lr x0.1 at 50 % and 75 % of
    the epochs) is kept, with ``config.lr`` (0.01 by default). ``width``, ``preact`` and
    ``lr_schedule`` do not apply (the method refuses them). ``query_size`` is the B of the bias
    coefficient C0. The runner passes the unlabelled rest of the pool to ``fit`` every round.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's.
    random_state : int
        Seed of this round's (or, with ``warm_start``, this repeat's) model.
    classes : ndarray
        All classes of the data set.

    Returns
    -------
    estimator : WAALClassifier
        Unfitted, built by :func:`skal.recipe.make_estimator` (``model="waal"``).
    """
    from ..recipe import make_estimator

    return make_estimator(
        model="waal", dropout=config.dropout, lr=config.lr, max_epochs=config.max_epochs,
        batch_size=config.batch_size, random_state=random_state, device=config.device,
        warm_start=bool(config.warm_start), classes=classes, query_size=config.query_size,
    )


def make_bgadl(
    config: Any, random_state: int, classes: np.ndarray, **bgadl_params: Any
) -> BGADLClassifier:
    """The model of the ``"bgadl"`` method: a :class:`skal.BGADLClassifier`, queried with BALD.

    The ResNet18 of :func:`make_resnet18` trained jointly with a VAE-ACGAN (its auxiliary
    classifier), from scratch every round, on the labelled images plus their reconstructions
    G(E(x), y) and class-conditional samples G(z, y) made in every mini-batch, for the round's
    ``max_epochs``, as in the authors' code. Generated images are never labels. It is a skorch
    net, so ``lr_schedule`` applies to the classifier as in the other ResNet18 methods.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's.
    random_state : int
        Seed of this round's model.
    classes : ndarray
        All classes of the data set.
    **bgadl_params
        BGADL parameters of :class:`skal.estimators.bgadl.BGADLMixin` (e.g. ``gen_weight=0.3``); bind them
        with ``functools.partial`` to register a variant as a method. ``gen_weight`` is 1.0
        (the paper's scheme, which this method measures) unless given here, whereas
        ``BGADLClassifier`` itself defaults to 0.

    Returns
    -------
    estimator : BGADLClassifier
        Unfitted, with the ResNet18 parameters of :func:`make_resnet18`, built by
        :func:`skal.recipe.make_estimator` (``model="bgadl"``).
    """
    from ..recipe import make_estimator

    bgadl_params.setdefault("gen_weight", PAPER_GEN_WEIGHT)
    return make_estimator(model="bgadl", **_resnet18_params(config, random_state, classes),
                          **bgadl_params)


def make_random_gen(config: Any, random_state: int, classes: np.ndarray) -> BGADLClassifier:
    """The model of the ``"random_gen"`` method: the BGADL training of :func:`make_bgadl`.

    Queried with random sampling instead of BALD (the paper's "BDA on randomly chosen labels"
    control arm), so that it differs from ``"bgadl"`` in the acquisition only.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's.
    random_state : int
        Seed of this round's model.
    classes : ndarray
        All classes of the data set.

    Returns
    -------
    estimator : BGADLClassifier
        Unfitted, as :func:`make_bgadl` makes it.
    """
    return make_bgadl(config, random_state, classes)


def _no_query_kwargs(config):
    return {}


def _bald_kwargs(config):
    return {"n_samples": config.n_mc_samples, "subsample": config.subsample}


def labeled_steps(config, n_labeled, n_unlabeled):
    """Gradient steps of one epoch over the labelled set: ``ceil(n_labeled / batch_size)``."""
    return -(-n_labeled // config.batch_size)


def unlabeled_steps(config, n_labeled, n_unlabeled):
    """Steps of one WAAL epoch, a pass over the unlabelled pool (the labelled set without one)."""
    return -(-(n_unlabeled or n_labeled) // config.batch_size)


def describe_resnet18(config):
    """``"ResNet18Classifier(width=16)"``: the estimator of the ResNet18 methods, in words."""
    preact = ", preact=True" if config.preact else ""
    return f"ResNet18Classifier(width={config.width}{preact})"


def _describe_joint(config):
    return f"BGADL{describe_resnet18(config)} (trained jointly with a VAE-ACGAN)"


def _describe_waal(config):
    return f"WAALClassifier(lr={config.lr:g}, features from the image shape)"


_BALD_ONLY = ("n_mc_samples", "subsample")
_RESNET18_ONLY = ("width", "preact")
_REASONS = {
    "n_mc_samples": "does not draw MC-dropout samples (only bald, bgadl, batch_bald and power_bald do)",
    "subsample": "scores the whole pool (only bald, bgadl, batch_bald and power_bald subsample it)",
    "width": "trains a WAALClassifier, whose feature extractor follows the images",
    "preact": "trains a WAALClassifier, whose feature extractor follows the images",
    "lr_schedule": "keeps its own learning-rate schedule",
    "warm_start": "retrains its classifier with the VAE-ACGAN from scratch every round",
}


@dataclass(frozen=True)
class Method:
    """How the experiment runner trains and queries for one method.

    A method pairs a query strategy with the model it queries, and declares what the runner and
    the ``skal`` command need to know about it: the configuration fields it ignores, its own
    defaults, how long one of its epochs is and how to name its estimator.

    Parameters
    ----------
    query_strategy : callable
        ``strategy(learner, X_pool, n_instances=k, *, random_state, **kwargs) -> (indices,
        scores)``, as in :mod:`skal.query`. The runner queries through its
        :class:`skal.ActiveLearner` (``learner.query``), so the strategy receives that learner:
        its ``estimator`` is the round's fitted model and its ``X_training_`` the labelled set.
    make_estimator : callable, default=make_resnet18
        ``make_estimator(config, random_state, classes)`` returns an unfitted model with ``fit``
        and ``score`` (an estimator, or a :class:`skal.ActiveLearner` whose estimator,
        augmenter and fit arguments the runner's learner takes). ``config.max_epochs`` is
        already the round's number of epochs (see :meth:`ExperimentConfig.epochs_for`). The
        runner trains the object it returns (not a clone).
    query_kwargs : callable, default=no extra arguments
        ``query_kwargs(config) -> dict`` of extra arguments for ``query_strategy``.
    pass_unlabeled : bool, default=False
        Train on the unlabelled rest of the pool too (WAAL): the runner's learner hands it to a
        ``fit`` that takes ``X_unlabeled`` (a parameter of that name).
    ignores : tuple of str, default=()
        :class:`ExperimentConfig` fields the method does not use: they are stored as None, and
        the ``skal`` command refuses them with :meth:`ignore_reason`.
    defaults : mapping, default={}
        The method's own defaults for fields left None (``{"lr": 0.01}`` for WAAL).
    steps_per_epoch : callable, default=labeled_steps
        ``steps_per_epoch(config, n_labeled, n_unlabeled) -> int``, for ``min_steps``.
    describe : callable, default=describe_resnet18
        ``describe(config) -> str`` names the estimator (plot titles, ``config.json``).
    reasons : mapping, default={}
        Why an ignored field does not apply (``{"width": "trains a ..."}``), for the message.

    See Also
    --------
    register_method : Makes a method available by name.
    ExperimentConfig : Names the method in ``method``.

    Examples
    --------
    A variant of BALD that scores a random fifth of the pool, registered under a name of its own:

    >>> from skal import bald
    >>> from skal.experiment import METHODS, Method, register_method
    >>> method = register_method(
    ...     "bald_subsample", Method(bald, query_kwargs=lambda config: {"subsample": 200}))
    >>> METHODS["bald_subsample"].query_kwargs(None)
    {'subsample': 200}
    >>> del METHODS["bald_subsample"]
    """

    query_strategy: Callable
    make_estimator: Callable = make_resnet18
    query_kwargs: Callable = _no_query_kwargs
    pass_unlabeled: bool = False
    ignores: tuple = ()
    defaults: Mapping = field(default_factory=dict)
    steps_per_epoch: Callable = labeled_steps
    describe: Callable = describe_resnet18
    reasons: Mapping = field(default_factory=dict)

    def ignore_reason(self, name: str) -> str:
        """Say why this method does not use a configuration field (for error messages).

        Parameters
        ----------
        name : str
            An :class:`ExperimentConfig` field in ``ignores``.

        Returns
        -------
        reason : str
            A phrase such as ``"scores the whole pool (...)"``.
        """
        return self.reasons.get(name) or _REASONS.get(name, "does not use it")


#: Query methods by name. Other modules add theirs with :func:`register_method`, e.g.
#: ``register_method("waal", Method(waal_uncertainty_diversity, make_estimator=_make_waal,
#: pass_unlabeled=True))``. ``"bgadl"`` is BALD with BGADL's joint VAE-ACGAN training
#: (:func:`make_bgadl`), ``"random_gen"`` the same training with random sampling.
METHODS = {
    "random": Method(random_sampling, ignores=_BALD_ONLY),
    "uncertainty": Method(uncertainty_sampling, ignores=_BALD_ONLY),
    "margin": Method(margin_sampling, ignores=_BALD_ONLY),
    "entropy": Method(entropy_sampling, ignores=_BALD_ONLY),
    "bald": Method(bald, query_kwargs=_bald_kwargs),
    "waal": Method(
        waal_uncertainty_diversity, make_estimator=make_waal, pass_unlabeled=True,
        ignores=_RESNET18_ONLY + ("lr_schedule",) + _BALD_ONLY, defaults={"lr": 0.01},
        steps_per_epoch=unlabeled_steps, describe=_describe_waal,
        reasons={"lr_schedule": "decays its learning rate x0.1 at 50 % and 75 % of the epochs "
                                "(the paper's schedule)"},
    ),
    "bgadl": Method(bald, make_estimator=make_bgadl, query_kwargs=_bald_kwargs,
                    ignores=("warm_start",), describe=_describe_joint,
                    reasons={"warm_start": "retrains its classifier and VAE-ACGAN from scratch "
                                           "every round"}),
    "random_gen": Method(random_sampling, make_estimator=make_random_gen,
                         ignores=("warm_start",) + _BALD_ONLY, describe=_describe_joint,
                         reasons={"warm_start": "retrains its classifier and VAE-ACGAN from "
                                                "scratch every round"}),
    "batch_bald": Method(batch_bald, query_kwargs=_bald_kwargs),
    "power_bald": Method(power_bald, query_kwargs=_bald_kwargs),
    "badge": Method(badge, ignores=_BALD_ONLY),
    # the runner queries through its ActiveLearner, whose X_training_ these strategies read
    "coreset": Method(coreset, ignores=_BALD_ONLY),
    "typiclust": Method(typiclust, ignores=_BALD_ONLY),
}


def register_method(name: str, method: Method, *, overwrite: bool = False) -> Method:
    """Make a query method available to :func:`run_experiment` and the ``skal`` command.

    Parameters
    ----------
    name : str
        The name used in :class:`ExperimentConfig` and on the command line.
    method : Method
        How to train and query.
    overwrite : bool, default=False
        Replace an existing method of that name instead of raising.

    Returns
    -------
    method : Method
        The ``method`` given.

    Raises
    ------
    ValueError
        If ``name`` exists already and ``overwrite`` is False.
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a skal.experiment.Method; got {type(method).__name__}.")
    if name in METHODS and not overwrite:
        raise ValueError(f"A method named {name!r} exists already; pass overwrite=True.")
    METHODS[name] = method
    return method
