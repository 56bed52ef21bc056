"""Parameter validation for skal's estimators: scikit-learn's declarative constraints, in one file.

An estimator declares ``_parameter_constraints`` (a dict ``name -> list of constraints``, as in
scikit-learn) and calls :func:`check_params` at ``fit``; a query strategy or selector declares the
same kind of dict with :func:`validates`, next to its signature, and its keyword arguments are
checked at every call. A bad value raises scikit-learn's ``InvalidParameterError`` (a
``ValueError`` and a ``TypeError``) with scikit-learn's message, "The 'x' parameter of Y must be
... Got ... instead.".

The machinery is scikit-learn's ``sklearn.utils._param_validation``, which is private. Everything
skal takes from it is imported here and nowhere else, and ``tests/utils/test_params.py`` pins what skal
relies on, so a scikit-learn release that changes it breaks this one file, loudly. What skal adds:

* :class:`Int` and :class:`Float`: scikit-learn's ``Interval`` without ``bool`` (``True`` is an
  ``int`` to Python, never a learning rate or an epoch count to skal) and, for floats, without NaN
  and infinities;
* :class:`Choice`: ``StrOptions`` whose message lists the options in the order given;
* :class:`Satisfies`: a predicate with its own description, for the few parameters whose valid
  values no built-in constraint describes (a torch optimizer class, a skorch split, ...);
* one wording for ranges, scikit-learn's ("an int in the range [1, inf)", "a float in the range
  (0.0, 1.0]"): :class:`Int` and :class:`Float` take no other description, and a hand-written
  message about a range uses ``str(Int(...))`` / ``str(Float(...))`` or the same words;
  :class:`Choice` may be described in other words (``description=``); :data:`SEED` is the
  strategies' ``random_state``;
* :func:`validates`: the decorator that checks a function's arguments against such a dict, at
  the cost of a few ``isinstance`` checks per call.
"""

import functools
import inspect
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
)

__all__ = [
    "COUNT",
    "SEED",
    "Choice",
    "Float",
    "Hidden",
    "Int",
    "InvalidParameterError",
    "Satisfies",
    "check_params",
    "class_constraints",
    "deprecated_value",
    "validates",
]


def _not_bool(value):
    return not isinstance(value, (bool, np.bool_))


class Int(Interval):
    """An int (not a bool) in ``[left, right]``; ``right=None`` is unbounded.

    Described in scikit-learn's words only (one wording for ranges across skal).

    Parameters
    ----------
    left : int or None
        The lower bound; None (no lower bound) needs ``closed="right"`` or ``"neither"``.
    right : int or None, default=None
        The upper bound; None: no upper bound.
    closed : {"left", "right", "both", "neither"} or None, default=None
        Which bounds are in the range; None: ``"left"`` when ``right`` is None, else ``"both"``.

    See Also
    --------
    Float : The same for real numbers.
    sklearn.utils._param_validation.Interval : The constraint it restricts.

    Examples
    --------
    >>> str(Int(1))
    'an int in the range [1, inf)'
    >>> Int(1).is_satisfied_by(True)
    False
    """

    def __init__(self, left, right=None, *, closed=None):
        if closed is None:
            closed = "left" if right is None else "both"
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        """Whether ``val`` is an int (a numpy one too), not a bool, in the range.

        Parameters
        ----------
        val : object
            The value to check.

        Returns
        -------
        satisfied : bool
            True if the value meets the constraint.
        """
        return _not_bool(val) and super().is_satisfied_by(val)


class Float(Interval):
    """A finite real number (not a bool) in an interval; a ``None`` bound is unbounded (open).

    Described in scikit-learn's words only (one wording for ranges across skal).

    Parameters
    ----------
    left : float or None, default=None
        The lower bound; None: no lower bound.
    right : float or None, default=None
        The upper bound; None: no upper bound.
    closed : {"left", "right", "both", "neither"}, default="both"
        Which bounds are in the range; a None bound is never in it, whatever ``closed`` says.

    See Also
    --------
    Int : The same for ints.
    sklearn.utils._param_validation.Interval : The constraint it restricts.

    Examples
    --------
    >>> str(Float(0, None, closed="neither"))
    'a float in the range (0.0, inf)'
    >>> Float(0, None, closed="neither").is_satisfied_by(float("inf"))
    False
    """

    def __init__(self, left=None, right=None, *, closed="both"):
        if left is None and closed in ("left", "both"):
            closed = "neither" if closed == "left" else "right"
        if right is None and closed in ("right", "both"):
            closed = "neither" if closed == "right" else "left"
        super().__init__(Real, left, right, closed=closed)

    def is_satisfied_by(self, val):
        """Whether ``val`` is a finite real number, not a bool, in the range.

        Parameters
        ----------
        val : object
            The value to check; an int counts as a real number.

        Returns
        -------
        satisfied : bool
            True if the value meets the constraint.
        """
        return (_not_bool(val) and isinstance(val, Real) and math.isfinite(val)
                and super().is_satisfied_by(val))


class Choice(StrOptions):
    """One of some strings; the message lists them in the given order (``deprecated`` last).

    scikit-learn's ``StrOptions`` lists its options in set order, which changes from run to run;
    this one keeps the order given, so a message reads the same every time.

    Parameters
    ----------
    *options : str
        The valid strings, in the order the message lists them.
    deprecated : iterable of str, default=()
        Strings that are still valid but deprecated: the message marks them "(deprecated)" and
        lists those not among ``options`` after them.
    description : str or None, default=None
        Words that replace the list in the message; None lists the options.

    See Also
    --------
    Satisfies : A constraint described by a predicate.
    sklearn.utils._param_validation.StrOptions : The constraint it orders.

    Examples
    --------
    >>> str(Choice("linf_l1", "l2_l1", deprecated=("paper",)))
    "a str among {'linf_l1', 'l2_l1', 'paper' (deprecated)}"
    >>> str(Choice("power", "softmax", description="one of ('power', 'softmax')"))
    "one of ('power', 'softmax')"
    """

    def __init__(self, *options, deprecated=(), description=None):
        self.order = tuple(options) + tuple(o for o in deprecated if o not in options)
        super().__init__(set(self.order), deprecated=set(deprecated))
        self.description = description

    def __str__(self):
        if self.description:
            return self.description
        return f"a str among {{{', '.join(self._mark_if_deprecated(o) for o in self.order)}}}"


class Satisfies(Options):
    """Any value for which ``predicate(value)`` is true, described as ``description``.

    For the few parameters whose valid values no built-in constraint describes (a torch
    optimizer class, a skorch split, ...). A predicate that raises ``TypeError`` or
    ``ValueError`` counts as false.

    Parameters
    ----------
    predicate : callable
        Takes the value and returns whether it is valid.
    description : str
        What valid values are, for the message ("The 'x' parameter of Y must be <description>.
        Got ... instead.").

    See Also
    --------
    Choice : A constraint for a fixed set of strings.

    Examples
    --------
    >>> str(Satisfies(callable, "a callable such as skorch.dataset.ValidSplit(5)"))
    'a callable such as skorch.dataset.ValidSplit(5)'
    """

    def __init__(self, predicate, description):
        super().__init__(object, set())
        self.predicate, self.description = predicate, description

    def is_satisfied_by(self, val):
        """Whether ``predicate(val)`` is true (False if it raises ``TypeError`` or ``ValueError``).

        Parameters
        ----------
        val : object
            The value to check.

        Returns
        -------
        satisfied : bool
            True if the value meets the constraint.
        """
        try:
            return bool(self.predicate(val))
        except (TypeError, ValueError):
            return False

    def __str__(self):
        return self.description


def class_constraints(cls):
    """The ``_parameter_constraints`` of ``cls`` and of every class it derives from, merged.

    Each class declares the constraints of the parameters it adds (or changes); a subclass's entry
    replaces its parent's, as an overridden method would.

    Returns
    -------
    constraints : dict
        ``name -> list of constraints`` for every parameter any class in ``cls.__mro__``
        declares, as :func:`check_params` takes it.
    """
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("_parameter_constraints", {}))
    return merged


def check_params(owner, constraints=None, params=None, caller_name=None):
    """Validate parameters against scikit-learn style constraints.

    Parameters
    ----------
    owner : object
        The estimator (or the object whose method takes the arguments).
    constraints : dict or None
        ``name -> list of constraints`` (scikit-learn's format: ``None``, a type, ``"boolean"``,
        ``callable``, :class:`Int`, :class:`Float`, :class:`Choice`, :class:`Satisfies`, ...). By
        default :func:`class_constraints` of the owner's class.
    params : dict or None
        ``name -> value``; by default ``owner.get_params(deep=False)``. Only the names that have
        constraints are checked (as in scikit-learn).
    caller_name : str or None
        The name in the message; by default the owner's class name.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` (and ``TypeError``) naming the first invalid parameter.
    """
    if constraints is None:
        constraints = class_constraints(type(owner))
    if params is None:
        params = owner.get_params(deep=False)
    validate_parameter_constraints(constraints, params, caller_name or type(owner).__name__)


def _is_seed(value):
    return value is None or isinstance(value, (np.random.RandomState, np.random.Generator)) or (
        isinstance(value, Integral) and _not_bool(value) and value >= 0
    )


#: A count of the strategies and selectors (``n_samples``, ``subsample``, ``block_elements``,
#: ...): "an int in the range [1, inf)".
COUNT = Int(1)

#: The ``random_state`` of a strategy or selector (anything ``np.random.default_rng`` takes that
#: seeds it reproducibly, and a legacy ``RandomState``).
SEED = Satisfies(_is_seed, f"None, {Int(0)}, a RandomState or a Generator")



def validates(constraints):
    """Decorator: check the arguments of a function against ``constraints`` at every call.

    ``constraints`` is a dict ``name -> list of constraints`` (as ``_parameter_constraints``); a
    value that meets none raises scikit-learn's :class:`InvalidParameterError` naming the
    function: "The 'x' parameter of f must be ... Got ... instead.". The defaults are checked
    once, here (a default that fails is a bug, raised at import), so a call checks only the
    arguments it passes: a few ``isinstance`` checks, with no signature binding.

    Parameters
    ----------
    constraints : dict
        ``name -> list of constraints``; every name must be a parameter of the function.

    Returns
    -------
    decorator : callable
        Takes the function and returns it wrapped (``functools.wraps``: same name, docstring,
        signature and type hints).

    Examples
    --------
    >>> @validates({"n_samples": [COUNT]})
    ... def f(n_samples=20):
    ...     return n_samples
    >>> try:
    ...     f(0)
    ... except ValueError as error:
    ...     print(error)
    The 'n_samples' parameter of f must be an int in the range [1, inf). Got 0 instead.
    """

    def decorate(fn):
        params = inspect.signature(fn).parameters
        unknown = set(constraints) - set(params)
        if unknown:
            raise TypeError(f"{fn.__name__} has no parameter(s) {sorted(unknown)} to constrain.")
        checks = {name: (tuple(make_constraint(c) for c in cs), cs)  # (made, as declared)
                  for name, cs in constraints.items()}
        owner = fn.__name__
        positions = [  # (index in *args, name) of the constrained positional parameters
            (i, name) for i, (name, p) in enumerate(params.items())
            if name in checks and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        for name in checks:
            if params[name].default is not params[name].empty:
                _check_one(checks, name, params[name].default, owner)

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            for i, name in positions:
                if i < len(args):
                    _check_one(checks, name, args[i], owner)
            for name, value in kwargs.items():
                if name in checks:
                    _check_one(checks, name, value, owner)
            return fn(*args, **kwargs)

        return checked

    return decorate


def _check_one(checks, name, value, owner):
    made, declared = checks[name]
    for constraint in made:
        if constraint.is_satisfied_by(value):
            return
    validate_parameter_constraints({name: declared}, {name: value}, owner)  # raises


def deprecated_value(value, aliases, param, owner, stacklevel=3):
    """The new name of a renamed option value, with a ``DeprecationWarning``; others unchanged.

    Parameters
    ----------
    value : object
        The value given; only a str can be an old name.
    aliases : dict
        ``old name -> new name``.
    param : str
        The parameter's name, for the warning.
    owner : str
        The class or function that takes the parameter, for the warning.
    stacklevel : int, default=3
        Passed to ``warnings.warn``; 3 points at the caller of the function that calls this one.

    Returns
    -------
    value : object
        The new name for an old one, else ``value`` itself.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     deprecated_value("code", {"code": "ratio"}, "coef", "WAALClassifier")
    'ratio'
    """
    if isinstance(value, str) and value in aliases:
        warnings.warn(
            f"The value {value!r} of the {param!r} parameter of {owner} is deprecated: use "
            f"{aliases[value]!r} (the same thing) instead.",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return aliases[value]
    return value
