"""ActiveLearner: modAL's pool-based learner interface as a well-behaved scikit-learn estimator.

The learner's parameter rules (an ``estimator`` that is never fitted, yet read fitted by modAL)
are ``skal.learner._params.LearnerParamsMixin``; the BGADL augmenter paths
``skal.learner._augment.LearnerAugmentMixin``; modAL's private protocol (the labelled set a
Committee grows and refits) ``skal.learner._protocol.ModALProtocolMixin``; prediction through the
estimator ``skal.learner._predict.LearnerPredictionMixin``. This module holds the parameters,
``fit`` / ``teach``, the pool handed to ``fit(X_unlabeled=)`` and querying.
"""

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import _safe_indexing, check_consistent_length

from ..query import bald
from ..utils.typing import ArrayLike, RandomStateLike
from ..utils.validation import accepts
from ._augment import LearnerAugmentMixin
from ._params import LearnerParamsMixin
from ._predict import LearnerPredictionMixin
from ._protocol import ModALProtocolMixin
from ._rows import as_rows, n_rows

__all__ = ["ActiveLearner"]


def _weak(X):
    """A weak reference to the pool (None for lists, which cannot have one)."""
    try:
        return weakref.ref(X)
    except TypeError:
        return None


class ActiveLearner(LearnerParamsMixin, LearnerAugmentMixin, ModALProtocolMixin,
                    LearnerPredictionMixin, MetaEstimatorMixin, BaseEstimator):
    """Pool-based active learner with modAL's interface (``query`` / ``teach``).

    A drop-in for ``modAL.models.ActiveLearner`` that is also a proper scikit-learn estimator:
    every constructor argument is stored as given (so ``clone``, ``get_params`` and pickling work),
    the ``estimator`` parameter is never fitted (a clone of it is, as ``estimator_``), and the
    labelled data seen so far accumulates in ``X_training_`` / ``y_training_``. It speaks
    modAL's learner protocol too (``_add_training_data``, ``_fit_to_known``, ``_fit_on_new``,
    ``transform_without_estimating``), so skal learners can form a modAL ``Committee`` (with
    ``vote_entropy_sampling``, ``max_disagreement_sampling``, ``rebag``, ...) or a
    ``CommitteeRegressor``. One difference: ``X_training`` / ``y_training`` stay the
    constructor's arguments (scikit-learn's rule); the labelled data is ``X_training_`` /
    ``y_training_``, which modAL strategies that read ``learner.X_training`` (ranked batch
    sampling, expected error reduction) do not see.

    **Where modAL's contract differs from scikit-learn's** (and modAL wins, so that skal learners
    work in modAL's committees and strategies):

    * *Fitting at construction.* modAL's learners fit when ``X_training`` and ``y_training`` are
      given to the constructor, so this one does too; with neither, ``__init__`` stores the
      parameters and nothing else. (scikit-learn's ``check_do_not_raise_errors_in_init_or_set_params``
      fails for that reason; see ``tests/learner/test_learner.py``.)
    * *Reading ``learner.estimator``.* modAL's ``Committee`` reads
      ``learner.estimator.classes_`` and its MC-dropout strategies
      ``learner.estimator.module_``, i.e. the *fitted* estimator. So the attribute
      ``learner.estimator`` is ``estimator_`` once the learner is fitted (the parameter before);
      the parameter itself, unfitted, is what ``get_params()["estimator"]``, ``set_params``
      and ``clone`` see.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Never fitted itself (unless ``clone_estimator=False``): :meth:`fit` fits a clone of it,
        ``estimator_``, which every ``teach`` refits on all labelled data (skorch nets restart
        from scratch unless ``warm_start=True``, as in both papers). After
        ``set_params(estimator=...)`` the next ``teach`` fits (a clone of) the new estimator.
        With ``joint=True`` ``estimator_`` receives the jointly trained classifier's fitted
        state after every fit (see ``joint``).
    query_strategy : callable, default=skal.bald
        ``strategy(learner, X_pool, n_instances, **kwargs) -> (indices, scores)``; strategies that
        return indices only are accepted too (and, unlike modAL, never called twice).
    X_training, y_training : array-like, default=None
        Initial labelled data; when given, the estimator is fitted right away (as in modAL).
    augmenter : object with ``fit(X, y)`` and ``sample(X, y)``, default=None
        A generative augmenter such as :class:`skal.GenerativeAugmenter`. With one, every
        ``teach`` refits the augmenter on the labelled data, generates samples from the newly
        labelled rows and trains the estimator on real plus generated samples (BGADL). Generated
        samples never count as labels.
    joint : bool, default=False
        BGADL's joint scheme (the paper's "co-evolving" learner and generator, as in the
        authors' code): the estimator *is* the ACGAN auxiliary classifier. Every fit clones
        ``augmenter`` with ``classifier=clone(estimator)`` and fits it on the labelled data, so
        the classifier trains together with the encoder, generator and discriminator on real,
        reconstructed G(E(x), y) and generated G(z, y) images made afresh in every mini-batch;
        then ``estimator_`` (a clone of ``estimator``, the same object across teaches) takes over
        the fitted classifier's state and is ``augmenter_.classifier_``, so queries and
        predictions use the jointly trained network. Needs an augmenter with a ``classifier``
        parameter (:class:`skal.GenerativeAugmenter`) and a skal ``MCDropoutClassifier``. The
        augmenter's ``max_epochs``, ``batch_size``, ``device`` and ``random_state`` drive that
        training (the estimator's own are ignored; its ``device`` becomes the augmenter's), it
        restarts from scratch every fit, and no generated sample is stored (``X_generated_``
        stays None).
    pass_pool : bool, default=True
        If the estimator's ``fit`` takes ``X_unlabeled`` (e.g. :class:`skal.WAALClassifier`,
        :class:`skal.FixMatchClassifier`), ``teach`` hands it the last queried pool minus the
        rows just labelled, and ``fit(X, y, unlabeled=X_rest)`` the pool it is given: the
        learner is the one place that decides what the estimator trains on. The learner keeps
        only a weak reference to that pool, never the pool itself (so a pickled learner does
        not grow with the pool and no memory is held): the pool must still exist when ``teach``
        runs, as it does in ``idx, X_q = learner.query(X_pool); learner.teach(X_q, y)``. Pools
        that cannot be referenced weakly (lists) or no longer exist get a warning: pass
        ``X_unlabeled=`` to ``teach`` then.
    clone_estimator : bool, default=True
        Fit a clone of ``estimator`` (scikit-learn's rule). False fits the ``estimator`` object
        itself, as modAL does: for a loop that builds a fresh estimator for each round and
        hands it over with ``set_params(estimator=...)`` (``skal run`` and ``skal label`` do),
        so that the object it built is the one trained, with its callbacks as they are.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the bootstrap resampling of ``fit`` / ``teach(bootstrap=True)`` and of a modAL
        ``Committee``'s ``rebag``. An int gives the same resample every time: give each member
        of a committee its own seed (or None, for fresh randomness).
    **fit_kwargs
        Passed to ``estimator.fit`` on every fit.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator`` (also ``learner.estimator`` once fitted, for modAL).
    n_features_in_ : int
        ``estimator_.n_features_in_`` (values per sample; ``C*H*W`` for skal's image classifiers).
    X_training_, y_training_ : ndarray
        All labelled data taught so far.
    X_generated_, y_generated_ : ndarray or None
        Samples generated by the augmenter (kept apart from the labels).
    augmenter_ : object
        The fitted augmenter (only with ``augmenter``).

    See Also
    --------
    skal.BGADLClassifier : BGADL's joint training as one estimator (instead of ``joint=True``).
    skal.query : The query strategies.

    Examples
    --------
    >>> from skal import ActiveLearner, ResNet18Classifier, bald
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> learner = ActiveLearner(ResNet18Classifier(width=4, max_epochs=1, random_state=0),
    ...                         query_strategy=bald, X_training=X[:30], y_training=y[:30])
    >>> idx, X_query = learner.query(X[30:], n_instances=5)
    >>> learner.teach(X[30:][idx], y[30:][idx])
    >>> learner.X_training_.shape, learner.n_features_in_
    ((35, 1, 8, 8), 64)
    """

    def __init__(
        self,
        estimator: Any,
        query_strategy: Callable[..., Any] = bald,
        X_training: ArrayLike | None = None,
        y_training: ArrayLike | None = None,
        *,
        augmenter: Any = None,
        joint: bool = False,
        pass_pool: bool = True,
        clone_estimator: bool = True,
        random_state: RandomStateLike = None,
        **fit_kwargs: Any,
    ) -> None:
        self.estimator = estimator
        self.query_strategy = query_strategy
        self.X_training = X_training
        self.y_training = y_training
        self.augmenter = augmenter
        self.joint = joint
        self.pass_pool = pass_pool
        self.clone_estimator = clone_estimator
        self.random_state = random_state
        self._fit_kwargs = fit_kwargs  # parameters too (get_params lists them), kept private
        if X_training is not None or y_training is not None:
            # modAL's contract: its learners fit on construction (the one exception to
            # scikit-learn's "__init__ stores parameters only"); the arguments stay untouched
            self.fit(X_training, y_training)

    def __getstate__(self):
        # the weak reference to the last queried pool is neither picklable nor worth keeping
        state = dict(super().__getstate__())
        state.pop("_last_query", None)
        return state

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        bootstrap: bool = False,
        *,
        unlabeled: ArrayLike | None = None,
        n_new: int | None = None,
        **fit_kwargs: Any,
    ) -> "ActiveLearner":
        """Forget previous labels and fit the estimator on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            The labelled samples, in the layout the estimator takes.
        y : array-like of shape (n,)
            Their labels.
        bootstrap : bool, default=False
            Fit on a bootstrap resample of ``(X, y)`` (modAL's option, for committees by
            bagging), drawn from ``random_state``.
        unlabeled : array-like of shape (n_unlabeled, ...), default=None
            The unlabelled pool (the samples without a label). With ``pass_pool``, an
            estimator whose ``fit`` takes ``X_unlabeled`` gets it (WAAL, FixMatch); others never
            see it.
        n_new : int or None, default=None
            How many of the last rows of ``X`` are the newest labels (as after a ``teach``; a
            loop that refits after a restart knows them): the augmenter generates from them and
            an estimator whose ``fit`` takes ``new_rows`` gets the number (BGADL's
            ``rec_source="new"``). None: every row is new.
        **fit_kwargs
            Extra arguments for ``estimator.fit``.

        Returns
        -------
        self : ActiveLearner
            This learner, fitted.
        """
        if y is None:
            raise ValueError(
                "ActiveLearner requires y to be passed, but the target y is None (X_training "
                "and y_training must be given together, or neither)."
            )
        if X is None:
            raise ValueError("X_training and y_training must be given together (or neither).")
        check_consistent_length(X, y)
        X = as_rows(X)
        self.X_training_ = X
        self.y_training_ = np.asarray(y)
        self.X_generated_ = self.y_generated_ = None
        self._n_new = n_rows(X) if n_new is None else min(int(n_new), n_rows(X))
        self._last_query = None
        self._new_estimator()
        fit_kwargs = self._loop_kwargs(fit_kwargs, unlabeled, None if n_new is None else
                                       self._n_new)
        return self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)

    def teach(
        self,
        X: ArrayLike,
        y: ArrayLike,
        bootstrap: bool = False,
        only_new: bool = False,
        **fit_kwargs: Any,
    ) -> None:
        """Add newly labelled samples and refit.

        Parameters
        ----------
        X : array-like
            The newly labelled samples (usually ``X_pool[idx]`` from :meth:`query`), with the
            per-sample shape of the samples taught so far.
        y : array-like of shape (n,)
            Their labels, from the oracle (the shape of the labels taught so far).
        bootstrap : bool, default=False
            Fit on a bootstrap resample of the labelled data (modAL's option).
        only_new : bool, default=False
            Fit on the new samples only (modAL's option); they are still recorded.
        **fit_kwargs
            Extra arguments for ``estimator.fit`` (e.g. ``X_unlabeled=`` for WAAL).
        """
        check_consistent_length(X, y)
        if getattr(self, "X_training_", None) is not None:
            self._check_like_taught(X, np.asarray(y))  # before anything is compared or stored
        unlabeled = None
        if "X_unlabeled" not in fit_kwargs and self._takes("X_unlabeled"):
            unlabeled = self._remaining_pool(X)
        fit_kwargs = self._loop_kwargs(fit_kwargs, unlabeled, None if only_new else len(y))
        self._last_query = None
        self._add_training_data(X, y)
        if only_new:
            self._fit_on_new(X, y, bootstrap=bootstrap, **fit_kwargs)
        else:
            self._fit_to_known(bootstrap=bootstrap, **fit_kwargs)

    def _takes(self, name):
        """Whether the estimator's ``fit`` takes ``name`` (``X_unlabeled`` only with
        ``pass_pool``)."""
        if name == "X_unlabeled" and not self.pass_pool:
            return False
        return accepts(self._estimator.fit, name)

    def _loop_kwargs(self, fit_kwargs, unlabeled, n_new):
        """``fit_kwargs`` plus what the loop knows and the estimator takes: the unlabelled pool
        as ``X_unlabeled`` and the number of new rows as ``new_rows`` (the caller's own win)."""
        fit_kwargs = dict(fit_kwargs)
        if unlabeled is not None and "X_unlabeled" not in fit_kwargs and self._takes(
                "X_unlabeled"):
            fit_kwargs["X_unlabeled"] = unlabeled
        if n_new is not None and "new_rows" not in fit_kwargs and self._takes("new_rows"):
            fit_kwargs["new_rows"] = n_new  # e.g. BGADLClassifier(rec_source="new")
        return fit_kwargs

    def _new_estimator(self):
        """``estimator_`` becomes a clone of the ``estimator`` parameter (the parameter itself
        with ``clone_estimator=False``)."""
        source = self._estimator
        self.estimator_ = clone(source, safe=False) if self.clone_estimator else source
        self._estimator_source = source

    def _remaining_pool(self, X_new):
        """The last queried pool without the rows just taught.

        The learner keeps only a weak reference to that pool (and its query's indices), so it
        never holds a pool in memory or in a pickle; the caller's pool must still exist.
        """
        last = getattr(self, "_last_query", None)
        if last is None:
            return None
        ref, idx = last
        X_pool = ref() if ref is not None else None
        if X_pool is None:
            warnings.warn(
                "teach() cannot hand the rest of the pool to the estimator as X_unlabeled: "
                "ActiveLearner keeps only a weak reference to the pool of the last query() (so "
                "that it never holds a copy), and that pool no longer exists or is a list. Keep "
                "the pool alive until teach(), or pass X_unlabeled= explicitly.",
                UserWarning,
            )
            return None
        if len(idx) == n_rows(X_new) and np.array_equal(
            np.asarray(_safe_indexing(X_pool, idx)), np.asarray(X_new)
        ):
            keep = np.ones(n_rows(X_pool), dtype=bool)
            keep[idx] = False
            return _safe_indexing(X_pool, np.flatnonzero(keep))
        warnings.warn(
            "teach() was not given the rows of the last query, so the remaining pool is unknown; "
            "pass X_unlabeled= explicitly.",
            UserWarning,
        )
        return None

    def _fit_estimator(self, X, y, new=None, **fit_kwargs):
        kwargs = {**self._fit_kwargs, **fit_kwargs}
        # the first teach of an unfitted learner, or the first after set_params(estimator=...)
        if vars(self).get("estimator_") is None or vars(self).get(
                "_estimator_source", self._estimator) is not self._estimator:
            self._new_estimator()
        if self.joint:
            self._fit_joint(X, y, kwargs)
            return
        if self.augmenter is not None:
            X, y = self._augment(X, y, new)
        self.estimator_.fit(X, y, **kwargs)

    # ---------------------------------------------------------------- querying
    def query(
        self,
        X_pool: ArrayLike,
        n_instances: int = 1,
        *,
        return_metrics: bool = False,
        **query_kwargs: Any,
    ) -> tuple[Any, ...]:
        """Ask the query strategy which pool samples to label next.

        Parameters
        ----------
        X_pool : array-like of shape (n_pool, ...)
            Samples as rows: an array, a torch tensor, a DataFrame (rows by position) or a list.
        n_instances : int, default=1
            How many samples to choose.
        return_metrics : bool, default=False
            Also return the strategy's scores for the chosen samples (modAL 0.4.2).
        **query_kwargs
            Passed to the strategy (e.g. ``n_samples=`` for :func:`skal.bald`).

        Returns
        -------
        indices : ndarray of int64, shape (n_instances,)
            Positions in ``X_pool`` of the chosen samples, best first.
        X_query : array-like of shape (n_instances, ...)
            The rows ``X_pool[indices]``, of the same type as ``X_pool``; for a torch
            ``Dataset`` pool (or a memmap), the chosen images as an ndarray, read from it
            row by row (a Dataset of ``(image, label)`` pairs gives the images), ready for
            ``teach``.
        scores : ndarray of shape (n_instances,)
            The strategy's scores of the chosen samples; only with ``return_metrics=True``.
        """
        self._check_fitted()
        if not callable(self.query_strategy):
            raise TypeError(
                "The 'query_strategy' parameter of ActiveLearner must be a callable "
                f"strategy(learner, X_pool, n_instances, ...). Got {self.query_strategy!r} "
                "instead."
            )
        result = self.query_strategy(self, X_pool, n_instances=n_instances, **query_kwargs)
        if isinstance(result, tuple) and len(result) == 2:
            idx, scores = result
        else:  # an index-only strategy
            idx, scores = result, None
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        self._last_query = (_weak(X_pool), idx)  # no pool kept: see pass_pool
        X_query = _query_rows(X_pool, idx)
        if return_metrics:
            return idx, X_query, scores
        return idx, X_query

    # ---------------------------------------------------------------- scikit-learn
    def __sklearn_is_fitted__(self):
        return hasattr(self, "X_training_")


def _query_rows(X_pool, idx):
    """The rows ``idx`` of the pool: indexed as the container allows (a DataFrame, a list, an
    array), or read from a lazy pool (a torch Dataset, a memmap, a Pool) into an ndarray."""
    from ..data import Pool, is_lazy_pool  # torch: only for lazy pools

    if is_lazy_pool(X_pool):
        return Pool(X_pool).take(idx)
    return _safe_indexing(X_pool, idx)
