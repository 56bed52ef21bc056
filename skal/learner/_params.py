"""scikit-learn's parameter rules for :class:`skal.ActiveLearner`, within modAL's contract.

modAL's ``Committee`` and MC-dropout strategies read the *fitted* estimator as
``learner.estimator``, while scikit-learn never fits a parameter. :class:`LearnerParamsMixin`
keeps both: the parameter ``estimator`` (what ``get_params``, ``set_params`` and ``clone`` see)
is never fitted, a clone of it is (``estimator_``), and the attribute ``learner.estimator`` is that
clone once the learner is fitted. It also keeps modAL's extra ``fit`` arguments (``**fit_kwargs``)
as parameters, and takes the estimator's input and prediction tags.
"""

import copy
import inspect
from typing import Any

from sklearn.utils import get_tags

__all__ = ["LearnerParamsMixin"]


class LearnerParamsMixin:
    """Parameters of :class:`skal.ActiveLearner` (see the module docstring)."""

    @property
    def estimator(self) -> Any:
        """The fitted ``estimator_`` once fitted (what modAL reads), else the parameter."""
        fitted = vars(self).get("estimator_")
        return self._estimator if fitted is None else fitted

    @estimator.setter
    def estimator(self, value: Any) -> None:
        self._estimator = value

    @property
    def fit_kwargs(self) -> dict[str, Any]:
        """The extra ``fit`` arguments given to the constructor (``**fit_kwargs``)."""
        return self._fit_kwargs

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted estimator takes (AttributeError before fit)."""
        fitted = vars(self).get("estimator_")
        if fitted is None:
            raise AttributeError(f"This {type(self).__name__} is not fitted: no n_features_in_.")
        return fitted.n_features_in_

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this learner, the ``**fit_kwargs`` among them.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of ``estimator`` (as ``estimator__*``) and of the other
            sub-estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values; ``estimator`` is the unfitted parameter, and
            each key of ``fit_kwargs`` is a parameter of its own, as ``clone`` needs.
        """
        params = super().get_params(deep=False)
        params["estimator"] = self._estimator
        if deep:
            for key, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update((f"{key}__{k}", v) for k, v in value.get_params().items())
        params.update(self._fit_kwargs)
        return params

    def set_params(self, **params: Any) -> "LearnerParamsMixin":
        """Set the parameters of this learner.

        Parameters
        ----------
        **params : dict
            Constructor parameters, nested ``estimator__*`` parameters, or anything else, which
            becomes a fit argument (as in the constructor's ``**fit_kwargs``).

        Returns
        -------
        self : ActiveLearner
            This learner.
        """
        own = set(inspect.signature(type(self).__init__).parameters) - {"self", "fit_kwargs"}
        for key in list(params):
            if key.split("__")[0] not in own:
                self._fit_kwargs[key] = params.pop(key)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self._estimator)
        except (AttributeError, TypeError, ValueError):  # not a scikit-learn estimator
            return tags
        # the learner takes what its estimator takes and predicts what it predicts; it is no
        # classifier itself (modAL's learners are not: no classes_, no fit(X) without y ...)
        tags.classifier_tags, tags.regressor_tags = inner.classifier_tags, inner.regressor_tags
        tags.target_tags = copy.deepcopy(inner.target_tags)
        tags.input_tags = copy.deepcopy(inner.input_tags)
        return tags
