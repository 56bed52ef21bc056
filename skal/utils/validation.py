"""Input validation shared by skal's estimators: images, labels and random states.

Everything a user passes is checked here, once, at the boundary (fit / predict / query), and bad
input gets one ``ValueError`` / ``TypeError`` that names the argument, what was expected and what
was given, in scikit-learn's wording where scikit-learn has one.
"""

import contextlib
import inspect
import numbers

import numpy as np
import torch
from sklearn.utils import check_array, check_consistent_length, column_or_1d
from sklearn.utils.multiclass import check_classification_targets

from ..data import as_image_array, is_image_source
from .seeds import MAX_SEED, wrap_seed
from .shapes import check_image_shape

try:  # private, but the only way to get scikit-learn's exact feature-name checks
    from sklearn.utils.validation import _check_feature_names
except ImportError:  # pragma: no cover
    _check_feature_names = None

__all__ = [
    "accepted",
    "accepts",
    "as_float_images",
    "check_image_shape",
    "validate_images",
    "validate_labels",
    "check_n_instances",
    "as_generator",
    "resolve_seed",
    "torch_rng",
    "check_device",
]


def _name(estimator):
    return type(estimator).__name__


def accepts(fn, name):
    """Whether the callable ``fn`` takes an argument called ``name`` (False if unknowable).

    The one test of skal's loops and factories for an optional argument: ``X_unlabeled`` /
    ``new_rows`` of a ``fit``, the options of a query strategy, ``in_channels`` of a module
    factory.

    Parameters
    ----------
    fn : callable
        The function, method or class.
    name : str
        The argument's name.

    Returns
    -------
    accepted : bool
        True if ``name`` is a parameter of ``fn``'s signature; False if it is not, or if
        ``inspect.signature`` cannot read the signature. A ``**kwargs`` parameter does not
        count.

    See Also
    --------
    accepted : The items of a mapping that a callable takes.
    """
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def accepted(fn, candidates):
    """The items of the mapping ``candidates`` that ``fn`` takes as arguments, by name.

    Parameters
    ----------
    fn : callable
        The function, method or class.
    candidates : mapping
        Keyword arguments ``fn`` may take.

    Returns
    -------
    kwargs : dict
        The items of ``candidates`` whose key :func:`accepts` says ``fn`` takes.

    See Also
    --------
    accepts : Whether a callable takes one argument.
    """
    return {key: value for key, value in candidates.items() if accepts(fn, key)}


def _to_array(X, input_name):
    """Turn tensors, DataFrames, lists, torch Datasets and PIL lists into a numpy array (no copy
    when possible)."""
    if is_image_source(X):  # a torch Dataset or a list of PIL images (ragged: a clear error)
        return as_image_array(X, input_name)
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    if hasattr(X, "to_numpy") and not hasattr(X, "toarray"):
        return X.to_numpy()
    return X


def as_float_images(X):
    """Convert images to float32 numpy, scaling uint8 to [0, 1] (the rule of every estimator).

    Tensors, DataFrames, torch ``Dataset`` objects and lists of PIL images are turned into numpy
    arrays first; other dtypes are cast to float32 without scaling.

    Parameters
    ----------
    X : array-like, torch.Tensor, torch Dataset or list of PIL images
        The images, in any shape.

    Returns
    -------
    X : ndarray of float32
        The images, in the same shape (a ``Dataset`` or a list of PIL images as
        ``(n, C, H, W)``).
    """
    X = np.asarray(_to_array(X, "X"))
    return X.astype(np.float32) / 255.0 if X.dtype == np.uint8 else X.astype(np.float32)


_CHANNEL_COUNTS = (1, 3, 4)  # grey, RGB, RGBA: the channel axes a channels-last array can have


def _shape_matches(expected, dims):
    return len(expected) == len(dims) and all(e in (-1, d) for e, d in zip(expected, dims))


def _channels_first(X, expected, estimator, input_name):
    """A 4-D array in channels-first ``(n, C, H, W)`` or channels-last ``(n, H, W, C)`` layout,
    returned as ``(n, C, H, W)``.

    With an ``expected`` per-sample shape ``(C, H, W)`` (``image_shape``, or the shape seen in
    ``fit``) the layout that matches it is used, channels-first when both do. Without one, the
    array is channels-last when its last axis is 1, 3 or 4 (grey, RGB, RGBA: PIL's and OpenCV's
    layout) and its second axis is not, channels-first when the second axis is, and an error when
    both are: the layout is never guessed.
    """
    dims = X.shape[1:]
    last_as_first = (dims[2], dims[0], dims[1])  # (H, W, C) read as (C, H, W)
    if expected is not None and len(expected) == 3:
        if _shape_matches(expected, dims) or not _shape_matches(expected, last_as_first):
            return X  # channels-first, or a mismatch that the caller reports
        channels_last = True
    else:
        first_like, last_like = dims[0] in _CHANNEL_COUNTS, dims[2] in _CHANNEL_COUNTS
        if first_like and last_like:
            raise ValueError(
                f"{input_name} has shape {X.shape}: both its second and its last axis could hold "
                f"the colour channels, so it may be channels-first (n, C, H, W) or channels-last "
                f"(n, H, W, C). Pass image_shape=(C, H, W) to {_name(estimator)} to say which, or "
                f"transpose {input_name} to (n, C, H, W)."
            )
        channels_last = last_like
    if not channels_last:
        return X
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2))  # (n, H, W, C) -> (n, C, H, W)


def validate_images(estimator, X, *, reset, image_shape=None, flat_ok=True, input_name="X"):
    """Validate images and bring them to the layout the estimator's network takes.

    Accepted layouts: ``(n, C, H, W)``; channels-last ``(n, H, W, C)`` (PIL, OpenCV) when the
    layout is unambiguous (see below); ``(n, H, W)`` (one channel); flat ``(n, C*H*W)`` when
    ``image_shape`` is given (reshaped to it), or, when ``flat_ok``, passed on flat to the network.
    uint8 images are scaled to [0, 1]; every other dtype is cast to float32.

    A 4-D array is read as channels-last when its per-sample shape matches ``image_shape`` (or,
    after ``fit``, the fitted shape) only as ``(H, W, C)``; without either, when its last axis is
    1, 3 or 4 and its second axis is not. An array whose second and last axes both are 1, 3 or 4
    (e.g. ``(n, 3, 4, 4)``) needs ``image_shape``: it raises a ``ValueError`` rather than being
    guessed. A shape that matches both ways (e.g. ``(n, 3, 3, 3)`` with ``image_shape=(3, 3, 3)``)
    is channels-first.

    Parameters
    ----------
    estimator : estimator
        Used for messages and, with ``reset=True``, receives ``n_features_in_`` and
        ``input_shape_`` (the per-sample shape the network sees). With ``reset=False`` X is
        checked against those.
    X : array-like
        The images: an array, a tensor, a DataFrame, a torch ``Dataset`` or a list of PIL
        images.
    reset : bool
        True in ``fit``: record the input's shape on ``estimator``. False afterwards: check ``X``
        against the recorded shape.
    image_shape : tuple (C, H, W) or None, default=None
        The estimator's ``image_shape`` parameter (one entry may be -1).
    flat_ok : bool, default=True
        Whether a flat 2-D X without ``image_shape`` is acceptable.
    input_name : str, default="X"
        The name of ``X`` in messages.

    Returns
    -------
    X : ndarray of float32, shape (n,) + input_shape
        The images in the network's layout: ``(n, C, H, W)``, or ``(n, n_features)`` for flat
        input the network takes flat.

    Raises
    ------
    ValueError
        If ``X`` is not finite real-valued images of an accepted layout, is ambiguous about its
        channels, or does not match ``image_shape`` or the fitted shape.
    TypeError
        If ``X`` is a sparse matrix.
    """
    name = _name(estimator)
    if _check_feature_names is not None:
        _check_feature_names(estimator, X, reset=reset)  # feature_names_in_ for DataFrames
    X = _to_array(X, input_name)
    X = check_array(
        X, accept_sparse=False, dtype="numeric", allow_nd=True, ensure_all_finite=True,
        input_name=input_name, estimator=estimator,
    )
    if X.dtype.kind not in "biuf":  # e.g. complex
        raise TypeError(
            f"{input_name} must hold real numbers (images); got an array of dtype {X.dtype}."
        )
    X = as_float_images(X)
    if X.ndim > 4:
        raise ValueError(
            f"{input_name} must be 2D (n, C*H*W), 3D (n, H, W) or 4D (n, C, H, W); got a "
            f"{X.ndim}D array of shape {X.shape}."
        )
    n_features = int(np.prod(X.shape[1:]))
    if X.ndim == 3:  # (n, H, W) -> (n, 1, H, W)
        X = X[:, None]
    shape = check_image_shape(image_shape)
    if X.ndim == 4:
        expected = shape if reset else getattr(estimator, "input_shape_", shape)
        X = _channels_first(X, expected, estimator, input_name)
    if not reset:
        _check_fitted_layout(estimator, X, n_features, input_name)
    if X.ndim == 2 and shape is not None:
        try:
            X = X.reshape((len(X),) + shape)  # (n, C*H*W) -> (n, C, H, W)
        except ValueError:
            raise ValueError(
                f"{input_name} has {X.shape[1]} features per row, which cannot be reshaped to "
                f"image_shape={image_shape}."
            ) from None
    elif X.ndim == 2 and not flat_ok:
        raise ValueError(
            f"{name} takes images: {input_name} has shape {X.shape}. Pass images as "
            f"(n, C, H, W) or (n, H, W), or set image_shape=(C, H, W) to use flat rows "
            f"(e.g. behind a MinMaxScaler in a Pipeline)."
        )
    elif X.ndim == 4 and shape is not None:
        if any(s != -1 and s != d for s, d in zip(shape, X.shape[1:])):
            raise ValueError(
                f"{input_name} has image shape {X.shape[1:]}, but {name} was given "
                f"image_shape={shape}."
            )
    if reset:
        estimator.n_features_in_ = n_features
        estimator.input_shape_ = tuple(X.shape[1:])
    elif tuple(X.shape[1:]) != tuple(estimator.input_shape_):
        raise ValueError(
            f"{input_name} has per-sample shape {tuple(X.shape[1:])}, but {name} was fitted on "
            f"shape {tuple(estimator.input_shape_)}."
        )
    return X


def _check_fitted_layout(estimator, X, n_features, input_name):
    """Compare new input with what the estimator was fitted on; say what differs."""
    name = _name(estimator)
    fitted = tuple(estimator.input_shape_)
    if X.ndim == 4 and len(fitted) == 3 and X.shape[1:] != fitted:
        if X.shape[1] != fitted[0]:
            raise ValueError(
                f"{input_name} has {X.shape[1]} channel(s), but {name} was fitted on images "
                f"with {fitted[0]} channel(s) (image shape {fitted})."
            )
        raise ValueError(
            f"{input_name} has image shape {tuple(X.shape[1:])}, but {name} was fitted on "
            f"images of shape {fitted}."
        )
    if n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {name} is expecting {estimator.n_features_in_} "
            f"features as input (shape {fitted} per sample)."
        )


def validate_labels(estimator, X, y, *, min_classes=2):
    """Validate classification targets against X (length, type, number of classes).

    Parameters
    ----------
    estimator : estimator
        Named in the messages.
    X : array-like
        The samples; only their number is compared with that of ``y``.
    y : array-like
        The labels: a 1-D array-like or a column vector (with a warning), a tensor or a
        DataFrame column.
    min_classes : int, default=2
        The least number of distinct classes ``y`` must hold.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        The labels as a 1-D numpy array.

    Raises
    ------
    ValueError
        If ``y`` is None, differs from ``X`` in length, holds NaN or infinity, is not
        classification targets (e.g. continuous), or has fewer than ``min_classes`` classes.
    """
    name = _name(estimator)
    if y is None:
        raise ValueError(
            f"{name} requires y to be passed, but the target y is None."
        )
    y = _to_array(y, "y")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("Input y contains NaN or infinity.")
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < min_classes:
        raise ValueError(
            f"{name} needs samples of at least {min_classes} classes in y, but y contains only "
            f"one class: {classes[0]!r}."
        )
    return y


def check_n_instances(n_instances, n_pool):
    """Validate the ``n_instances`` argument of a query strategy against the pool size.

    Parameters
    ----------
    n_instances : int
        How many samples the strategy is asked for.
    n_pool : int
        The number of samples in the pool.

    Returns
    -------
    n_instances : int
        The value as a Python int.

    Raises
    ------
    ValueError
        If the pool is empty, or ``n_instances`` is not an int (a bool is not) in
        ``[1, n_pool]``.
    """
    if n_pool == 0:
        raise ValueError("X_pool is empty: there is nothing left to query.")
    if (
        isinstance(n_instances, (bool, np.bool_))
        or not isinstance(n_instances, numbers.Integral)
        or not 1 <= n_instances <= n_pool
    ):
        raise ValueError(
            f"The 'n_instances' parameter must be an int in the range [1, {n_pool}] (the pool "
            f"size). Got {n_instances!r} instead."
        )
    return int(n_instances)


def as_generator(random_state):
    """A numpy Generator from a strategy's ``random_state`` (checked by :data:`skal.utils.params.SEED`).

    A ``RandomState`` seeds a new Generator from one draw; None, an int or a Generator are what
    ``np.random.default_rng`` takes.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        The strategy's ``random_state``.

    Returns
    -------
    rng : numpy.random.Generator
        A new Generator (fresh entropy for None, seeded by an int), or the Generator given.
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(MAX_SEED))
    return np.random.default_rng(random_state)


def resolve_seed(random_state, owner=None):
    """Turn a ``random_state`` (None, int, RandomState or Generator) into an int seed.

    ``None`` draws fresh OS entropy, so results differ from call to call, as in scikit-learn.
    ``owner`` (an estimator's or a function's name) is named in the error for anything else.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        An int is taken modulo ``2**31 - 1``; a ``RandomState`` or ``Generator`` has one draw
        taken.
    owner : str or None, default=None
        Named in the error message.

    Returns
    -------
    seed : int
        A seed in ``[0, 2**31 - 1)``.

    Raises
    ------
    ValueError
        If ``random_state`` is none of those (a bool is not an int here).
    """
    if random_state is None:
        return int(np.random.default_rng().integers(MAX_SEED))
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
        random_state, bool
    ):
        return wrap_seed(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(MAX_SEED))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(MAX_SEED))
    of = f" of {owner}" if owner else ""
    raise ValueError(
        f"The 'random_state' parameter{of} must be None, an int, a numpy RandomState or a numpy "
        f"Generator. Got {random_state!r} instead."
    )


@contextlib.contextmanager
def torch_rng(seed, device="cpu"):
    """Run a block with torch's RNGs seeded, restoring the global RNG state afterwards.

    Module initialisation, dropout masks and DataLoader shuffling all draw from torch's default
    generators; forking them makes a seeded fit reproducible without touching the caller's RNG.
    The CPU generator is restored on exit, and so is the generator of ``device`` when it is a
    CUDA device and CUDA is available. ``torch.manual_seed`` also seeds every other device's
    generator, which is not restored.

    Parameters
    ----------
    seed : int
        The seed of the block.
    device : str or torch.device, default="cpu"
        The device the block computes on.

    Yields
    ------
    None
        The block runs with the seeded generators.
    """
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def check_device(device, owner="device", flag=None):
    """Check that a torch device string names a device this machine has; return it.

    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"`` are understood. A device that is not there
    (``"cuda"`` without a GPU, ``"cuda:3"`` on a one-GPU machine) raises
    :class:`skal.exceptions.DeviceError` before anything is built or written.

    Parameters
    ----------
    device : str, torch.device or None
        None means "leave it to skorch" (its default, ``"cpu"``).
    owner : str, default="device"
        Who asked (an estimator's name), for the message.
    flag : str or None, default=None
        The command-line flag that gave the device (``"--device"``): the message names it
        instead of ``owner`` and the parameter.

    Returns
    -------
    device : str, torch.device or None
        The value given, unchanged.

    Raises
    ------
    skal.exceptions.DeviceError
        If ``device`` is not a torch device, or names one this machine does not have.
    """
    from ..exceptions import DeviceError

    if device is None:
        return device
    subject = f"The {flag} option" if flag else f"The 'device' parameter of {owner}"
    asked = (f"{flag} {device} was asked for" if flag
             else f"{owner} was asked for device={device!r}")
    use_cpu = f"Use {flag} cpu." if flag else "Use device='cpu'."
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"{subject} must be a torch device such as 'cpu', 'cuda' or 'cuda:1'. Got "
            f"{device!r} instead."
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{asked}, but torch sees no CUDA GPU on this machine. {use_cpu}"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{asked}, but this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                f"{asked}, but MPS is not available here. {use_cpu}"
            )
    elif dev.type != "cpu":
        raise DeviceError(f"{asked}; skal supports 'cpu', 'cuda[:N]' and 'mps'.")
    return device
