"""The query strategies' shared docstring text, written once.

Most strategies take the same ``learner``, ``X_pool``, ``n_instances``, ... parameters. Their
descriptions live here, in :data:`SHARED_PARAMETERS`, as scikit-learn and pandas keep shared
docstring text in one place, and :func:`fill_doc` writes them into each strategy's docstring
at import, so that ``help()``, Sphinx and numpydoc's validation see the finished text.

In a docstring, a line holding only ``{name}`` (indented as the Parameters entries are) is
replaced by the entry ``name``, indented the same way; other braces are left alone.
"""

import re

__all__ = []

SHARED_PARAMETERS = {
    "learner_proba": """\
learner : learner, estimator or Pipeline
    A :class:`skal.ActiveLearner`, a modAL learner, or a fitted estimator or ``Pipeline``
    with ``predict_proba``.""",
    "learner_mc": """\
learner : learner, estimator or Pipeline
    Its (final) estimator must have ``sample_proba(X, n_samples=..., random_state=...)``.""",
    "X_pool": """\
X_pool : array-like of shape (n_pool, ...)
    The unlabelled samples to choose from, one per row (a list is converted once).""",
    "n_instances": """\
n_instances : int, default=1
    How many samples to choose, from 1 to ``n_pool``.""",
    "n_samples": """\
n_samples : int, default=20
    MC passes T.""",
    "subsample": """\
subsample : int or None, default=None
    Score only a random subset of this many pool samples; indices still index ``X_pool``.""",
    "random_state_ties": """\
random_state : None, int, RandomState or Generator, default=None
    Tie-breaking: by position when None, by a seeded random permutation otherwise.""",
    "calibrate": """\
calibrate : None, float or fitted TemperatureScaling, default=None
    Temper the probabilities before scoring (:mod:`skal.calibration`): a temperature
    ``T > 0``, or a :class:`~skal.calibration.TemperatureScaling` fitted on held-out labels;
    None scores them as they are.""",
    "calibrate_mc": """\
calibrate : None, float or fitted TemperatureScaling, default=None
    Temper each MC pass's probabilities before scoring (:mod:`skal.calibration`): a
    temperature ``T > 0``, or a :class:`~skal.calibration.TemperatureScaling` fitted on
    held-out labels; None scores them as they are.""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)\{([A-Za-z_]\w*)\}[ \t]*$", re.M)


def fill_doc(func):
    """Replace the ``{name}`` placeholder lines of ``func.__doc__`` by the shared entries.

    Parameters
    ----------
    func : callable
        A function whose docstring holds placeholder lines.

    Returns
    -------
    callable
        ``func`` itself, its ``__doc__`` filled in.

    Raises
    ------
    KeyError
        If a placeholder names no entry of :data:`SHARED_PARAMETERS` (at import: a typo
        cannot reach the documentation).
    """

    def entry(match):
        indent, name = match.groups()
        if name not in SHARED_PARAMETERS:
            raise KeyError(f"{func.__qualname__}'s docstring names no shared parameter "
                           f"{name!r}; known: {sorted(SHARED_PARAMETERS)}")
        return "\n".join(indent + line for line in SHARED_PARAMETERS[name].splitlines())

    if func.__doc__:
        func.__doc__ = _PLACEHOLDER.sub(entry, func.__doc__)
    return func
