"""The exceptions and warnings skal raises (one place, so users can catch them by type)."""

__all__ = ["ConfigError", "DivergenceError", "DeviceError", "RunFolderError"]


class DivergenceError(FloatingPointError, RuntimeError):
    """Training diverged: a loss became non-finite or exploded.

    Raised by every skal estimator (and by ``skal run``) instead of returning a model that
    predicts chance. The message names the estimator and the parameter to lower (usually ``lr``).
    It subclasses ``FloatingPointError`` (what torch users catch for NaN) and ``RuntimeError``.
    """


class DeviceError(ValueError):
    """The requested torch device does not exist on this machine (e.g. ``"cuda"`` without a GPU)."""


class ConfigError(ValueError):
    """An experiment's configuration is invalid (a parameter out of range, an option that does not
    apply to the method, ...).

    The ``skal`` command reports it as a usage error (one line, exit status 2); every other
    exception raised while an experiment runs keeps its traceback.
    """


class RunFolderError(ConfigError):
    """A run folder cannot be used as asked: it holds another experiment, its checkpoint is
    damaged, another ``skal run`` is using it, or it is not a writable folder.

    The message names the file and says what to do. Nothing in the folder has been changed.
    """
