"""The exceptions and warnings skal raises (one place, so users can catch them by type)."""

__all__ = [
    "ChanceAccuracyWarning", "ConfigError", "DivergenceError", "DeviceError", "RunFolderError",
]


class DivergenceError(FloatingPointError, RuntimeError):
    """Training diverged: a loss became non-finite or exploded.

    Raised by every skal estimator (and by ``skal run``) instead of returning a model that
    predicts chance. The message names the estimator and the parameter to lower (usually ``lr``).
    It subclasses ``FloatingPointError`` (what torch users catch for NaN) and ``RuntimeError``.

    See Also
    --------
    skal.callbacks.DivergenceCheck : The callback that raises it for skal's classifiers.

    Examples
    --------
    >>> from skal.exceptions import DivergenceError
    >>> issubclass(DivergenceError, FloatingPointError), issubclass(DivergenceError, RuntimeError)
    (True, True)
    """


class DeviceError(ValueError):
    """The requested torch device does not exist on this machine (e.g. ``"cuda"`` without a GPU).

    Raised by ``fit`` (and by ``skal run``) before anything is built or written; the message says
    what this machine has instead. It is a ``ValueError``.

    See Also
    --------
    DivergenceError : The other error an estimator's ``fit`` raises by type.

    Examples
    --------
    >>> from skal.exceptions import DeviceError
    >>> issubclass(DeviceError, ValueError)
    True
    """


class ConfigError(ValueError):
    """An experiment's configuration is invalid.

    For example a parameter out of range or an option that does not apply to the method. The
    ``skal`` command reports it as a usage error (one line, exit status 2); every other exception
    raised while an experiment runs keeps its traceback.

    See Also
    --------
    RunFolderError : The run folder cannot be used.
    skal.experiment.ExperimentConfig : The configuration it is raised for.

    Examples
    --------
    >>> from skal.exceptions import ConfigError
    >>> from skal.experiment import ExperimentConfig
    >>> try:
    ...     ExperimentConfig(repeats=0)
    ... except ConfigError as exc:
    ...     print(type(exc).__name__)
    ConfigError
    """


class RunFolderError(ConfigError):
    """A run folder cannot be used as asked.

    It holds another experiment, its checkpoint is damaged, another ``skal run`` is using it, or
    it is not a writable folder. The message names the file and says what to do. Nothing in the
    folder has been changed.

    See Also
    --------
    ConfigError : Its base class: the ``skal`` command reports both as usage errors.
    skal.experiment.run_experiment : What checks the folder.

    Examples
    --------
    >>> from skal.exceptions import ConfigError, RunFolderError
    >>> issubclass(RunFolderError, ConfigError)
    True
    """


class ChanceAccuracyWarning(UserWarning):
    """A round's test accuracy is at chance level: the model learned nothing from its labels.

    Warned by :func:`skal.experiment.run_experiment` (and ``skal run``) for a round after the
    first whose test accuracy is within three standard deviations of what a constant or random
    guess scores. The usual cause is too few gradient steps; the message names the option to
    raise (``max_epochs``, or ``min_steps`` for WAAL, whose epochs follow the unlabelled pool).

    See Also
    --------
    DivergenceError : The error for a training that exploded.

    Examples
    --------
    >>> from skal.exceptions import ChanceAccuracyWarning
    >>> issubclass(ChanceAccuracyWarning, UserWarning)
    True
    """
