"""The exceptions and warnings skal raises (one place, so users can catch them by type)."""

__all__ = ["DivergenceError", "DeviceError"]


class DivergenceError(FloatingPointError, RuntimeError):
    """Training diverged: a loss became non-finite or exploded.

    Raised by every skal estimator (and by ``skal run``) instead of returning a model that
    predicts chance. The message names the estimator and the parameter to lower (usually ``lr``).
    It subclasses ``FloatingPointError`` (what torch users catch for NaN) and ``RuntimeError``.
    """


class DeviceError(ValueError):
    """The requested torch device does not exist on this machine (e.g. ``"cuda"`` without a GPU)."""
