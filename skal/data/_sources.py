"""Image data from disk and from other libraries: image folders, ``.npy`` / ``.npz`` arrays, torch
``Dataset`` objects and lists of PIL images, all brought to skal's ``(n, C, H, W)`` layout.

The public loaders are exported by :mod:`skal.data`; :func:`as_image_array` is what skal's
input validation calls on a ``Dataset`` or a list of PIL images.
"""

import os
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "as_image_array",
    "check_color",
    "check_image_size",
    "images_and_labels",
    "is_image_source",
    "is_map_dataset",
    "load_array",
    "load_image_folder",
    "load_images",
    "read_images",
    "scan_image_folder",
]

#: File name endings (lower case) that :func:`load_image_folder` reads; the rest are ignored.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")

_COLOR_CHANNELS = {"gray": 1, "grey": 1, "l": 1, "rgb": 3}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_MAX_LISTED_ERRORS = 10
#: How the loaders advise resizing (the experiment runner words it for its own option).
RESIZE_HINT = "Pass image_size=(height, width) (or an int)"


# ---------------------------------------------------------------------------- scanning
def _is_image_name(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _walk_images(top):
    """Image files under ``top`` (recursively, hidden entries skipped), sorted, as paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if _is_image_name(f))
    return found


def scan_image_folder(path):
    """List the images of a folder and the class each one is filed under.

    Images directly in ``path`` are unlabelled; images in a sub-folder (at any depth below it)
    belong to the class named by that sub-folder, as in torchvision's ``ImageFolder``. Hidden
    files and folders (a leading ``.``) and files that are not PNG / JPEG / WebP are skipped.

    Parameters
    ----------
    path : str or path-like
        The folder.

    Returns
    -------
    paths : list of str
        The image files, sorted: the unlabelled ones first, then class by class.
    labels : list of str or None
        The class (sub-folder name) of each file, None for the unlabelled ones.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"The image folder {root!r} does not exist or is not a folder.")
    with os.scandir(root) as entries:
        entries = sorted(entries, key=lambda e: e.name)
    paths, labels = [], []
    for entry in entries:
        if entry.is_file() and _is_image_name(entry.name):
            paths.append(entry.path)
            labels.append(None)
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            for file in _walk_images(entry.path):
                paths.append(file)
                labels.append(entry.name)
    return paths, labels


# ---------------------------------------------------------------------------- decoding
def check_color(color, func_name):
    """Check a loader's ``color`` parameter and return the number of channels it asks for.

    Parameters
    ----------
    color : {"gray", "rgb"} or None
        The value given. Case is ignored, and ``"grey"`` and ``"L"`` (Pillow's name) mean gray.
    func_name : str
        The loader named in the error message.

    Returns
    -------
    channels : {1, 3} or None
        1 for gray, 3 for RGB, None for None (the images decide).

    Raises
    ------
    ValueError
        If ``color`` is anything else, in scikit-learn's wording.
    """
    if color is None:
        return None
    key = color.lower() if isinstance(color, str) else None
    if key not in _COLOR_CHANNELS:
        raise ValueError(
            f"The 'color' parameter of {func_name} must be None, 'gray' or 'rgb'. Got {color!r} "
            "instead."
        )
    return _COLOR_CHANNELS[key]


def check_image_size(image_size, func_name):
    """Check a loader's ``image_size`` parameter and return it as ``(height, width)``.

    Parameters
    ----------
    image_size : int, (height, width) or None
        The value given: an int for a square, a pair of ints, each at least 1, or None (no
        resizing). A bool is refused.
    func_name : str
        The loader named in the error message.

    Returns
    -------
    size : tuple of int (height, width) or None
        The size as a pair of ints, or None for None.

    Raises
    ------
    ValueError
        If ``image_size`` is anything else, in scikit-learn's wording.
    """
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    else:
        try:
            size = tuple(int(s) for s in image_size)
        except (TypeError, ValueError):
            size = ()
    if len(size) != 2 or min(size) < 1 or isinstance(image_size, bool):
        raise ValueError(
            f"The 'image_size' parameter of {func_name} must be None, an int in the range [1, inf) "
            f"or a pair (height, width) of such ints. Got {image_size!r} instead."
        )
    return size


def _check_on_error(on_error, func_name):
    if on_error not in ("raise", "skip"):
        raise ValueError(
            f"The 'on_error' parameter of {func_name} must be 'raise' or 'skip'. Got "
            f"{on_error!r} instead."
        )


def _open_header(path):
    """(size (H, W), is_gray) from the file header, without decoding the pixels."""
    from PIL import Image

    with Image.open(path) as image:
        return (image.height, image.width), image.mode in _GRAY_MODES


def _decode(path, channels, size):
    """Decode one file to a uint8 array (C, H, W), converted to ``channels`` and resized."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decode now: a truncated file fails here, not later
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F") and channels == 1:
            array = np.asarray(image, dtype=np.float64)
            top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
            image = Image.fromarray(np.clip(array * (255.0 / top), 0, 255).astype(np.uint8))
        image = image.convert("L" if channels == 1 else "RGB")
        if (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # PIL: (W, H)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _report(errors, what):
    listed = "\n".join(f"  - {path}: {msg}" for path, msg in errors[:_MAX_LISTED_ERRORS])
    more = len(errors) - _MAX_LISTED_ERRORS
    if more > 0:
        listed += f"\n  ... and {more} more"
    return f"{len(errors)} of the {what} could not be read as images:\n{listed}"


def read_images(paths, image_size=None, color=None, on_error="raise", *,
                _func="read_images"):
    """Decode image files into one uint8 array ``(n, C, H, W)``.

    Every file is checked before any pixel is decoded, and all the files that cannot be read are
    reported together, by name.

    Parameters
    ----------
    paths : sequence of str or path-like
        The image files, in the order of the rows of ``X``.
    image_size : int, (height, width) or None, default=None
        Resize every image to this size. None: all images must already have one size.
    color : {"gray", "rgb"} or None, default=None
        Convert to one or three channels. None: gray when every image is gray, RGB otherwise.
    on_error : {"raise", "skip"}, default="raise"
        What to do with unreadable files: raise one ``ValueError`` naming them all, or leave them
        out with a warning naming them.
    _func : str, default="read_images"
        The function named in error messages (skal's loaders pass their own name).

    Returns
    -------
    X : ndarray of uint8, shape (n_read, C, H, W)
        The decoded images, in the order of ``paths``.
    kept : ndarray of int64, shape (n_read,)
        Positions in ``paths`` of the images in ``X`` (all of them unless ``on_error="skip"``).

    Raises
    ------
    ValueError
        If a parameter is invalid, a file cannot be read (with ``on_error="raise"``), or the
        images have different sizes and ``image_size`` is None.
    """
    func = _func
    size = check_image_size(image_size, func)
    channels = check_color(color, func)
    _check_on_error(on_error, func)
    paths = [os.fspath(p) for p in paths]
    headers, errors = {}, []
    for i, path in enumerate(paths):
        try:
            headers[i] = _open_header(path)
        except Exception as exc:  # PIL raises many types for a bad file; all mean "unreadable"
            errors.append((path, f"{type(exc).__name__}: {exc}"))
    if errors and on_error == "raise":
        raise ValueError(_report(errors, f"{len(paths)} files"))
    if size is None and headers:
        sizes = {}
        for i, (hw, _) in headers.items():
            sizes.setdefault(hw, paths[i])
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise ValueError(
                f"The images have {len(sizes)} different sizes, e.g. {a[0]}x{a[1]} ({pa}) and "
                f"{b[0]}x{b[1]} ({pb}) (height x width). {RESIZE_HINT} to resize them to one "
                "size."
            )
        size = next(iter(sizes))
    if channels is None:
        channels = 1 if all(gray for _, gray in headers.values()) else 3
    kept = sorted(headers)
    X = np.empty((len(kept), channels) + (size if size else (1, 1)), dtype=np.uint8)
    ok = []
    for row, i in enumerate(kept):
        try:
            X[len(ok)] = _decode(paths[i], channels, size)
            ok.append(i)
        except Exception as exc:  # truncated or corrupt pixel data
            errors.append((paths[i], f"{type(exc).__name__}: {exc}"))
    if errors:
        if on_error == "raise":
            raise ValueError(_report(errors, f"{len(paths)} files"))
        warnings.warn(_report(errors, f"{len(paths)} files") + "\nThey were left out.",
                      stacklevel=2)
    return X[: len(ok)], np.asarray(ok, dtype=np.int64)


def load_image_folder(
    path: str | os.PathLike[str],
    image_size: int | tuple[int, int] | None = None,
    color: str | None = None,
    on_error: str = "raise",
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Load a folder of images: one sub-folder per class, or a flat folder of unlabelled images.

    The layout is torchvision's ``ImageFolder``: ``path/cat/1.png``, ``path/dog/x.jpg``, ... give
    the labels ``"cat"``, ``"dog"``; a folder holding only image files gives unlabelled images.
    PNG, JPEG and WebP files are read through Pillow; hidden files and other files are skipped.

    Parameters
    ----------
    path : str or path-like
        The folder.
    image_size : int, (height, width) or None, default=None
        Resize every image to this size. None: the images must all have one size already.
    color : {"gray", "rgb"} or None, default=None
        One or three channels. None: gray when every image is gray, RGB otherwise.
    on_error : {"raise", "skip"}, default="raise"
        Unreadable or corrupt files are reported together by name: raise (default), or skip them
        with a warning.

    Returns
    -------
    X : ndarray of uint8, shape (n_samples, C, H, W)
        The images (skal's estimators scale uint8 to [0, 1]).
    y : ndarray of str, shape (n_samples,), or None
        The class (sub-folder name) of each image; None for a flat folder.
    paths : list of str
        The file of each image.

    Raises
    ------
    ValueError
        If the folder holds no image, holds both loose images and class sub-folders, has images
        of different sizes without ``image_size``, or has unreadable files.
    FileNotFoundError
        If ``path`` is not a folder.

    Examples
    --------
    >>> from skal.data import load_image_folder
    >>> X, y, paths = load_image_folder("photos/", image_size=64)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (120, 3, 64, 64)
    """
    func = "load_image_folder"
    check_image_size(image_size, func)  # parameters first, then the disk
    check_color(color, func)
    _check_on_error(on_error, func)
    paths, labels = scan_image_folder(path)
    if not paths:
        raise ValueError(
            f"The folder {os.fspath(path)!r} holds no PNG, JPEG or WebP image (directly or in "
            "class sub-folders)."
        )
    n_loose = sum(label is None for label in labels)
    if 0 < n_loose < len(labels):
        raise ValueError(
            f"The folder {os.fspath(path)!r} holds both {n_loose} image(s) at its top level and "
            "class sub-folders. Put every image in a class sub-folder, or only loose images for "
            "unlabelled data (a partially labelled folder is what 'skal label init' takes)."
        )
    X, kept = read_images(paths, image_size=image_size, color=color, on_error=on_error,
                          _func=func)
    paths = [paths[i] for i in kept]
    y = None if n_loose else np.asarray([labels[i] for i in kept], dtype=str)
    return X, y, paths


# ---------------------------------------------------------------------------- arrays
_X_KEYS = ("X", "x", "images", "data", "arr_0")
_Y_KEYS = ("y", "labels", "targets", "arr_1")


def _check_channels(channels, func_name):
    if channels not in ("auto", "first", "last"):
        raise ValueError(
            f"The 'channels' parameter of {func_name} must be 'auto', 'first' or 'last'. Got "
            f"{channels!r} instead."
        )


def _channels_first(X, channels, source):
    """A view of ``X`` in (n, C, H, W): adds the channel axis to (n, H, W), moves a last one."""
    if X.ndim == 3:  # (n, H, W) -> (n, 1, H, W)
        return X[:, None]
    if X.ndim != 4:
        raise ValueError(
            f"{source} holds an array of shape {X.shape}; expected images (n, H, W), "
            "(n, C, H, W) or (n, H, W, C)."
        )
    last = X.shape[3] in (1, 3, 4) and X.shape[1] not in (1, 3, 4)
    if channels == "last" or (channels == "auto" and last):
        return X.transpose(0, 3, 1, 2)  # (n, H, W, C) -> (n, C, H, W)
    return X


def load_array(
    path: str | os.PathLike[str], channels: str = "auto", mmap: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load images (and labels) from a ``.npy`` or ``.npz`` file, memory-mapped where possible.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file (images only) or a ``.npz`` file with the images under ``X`` (or ``x``,
        ``images``, ``data``, ``arr_0``) and, optionally, labels under ``y`` (or ``labels``,
        ``targets``, ``arr_1``).
    channels : {"auto", "first", "last"}, default="auto"
        Where the channel axis of 4-D images is. ``"auto"`` takes ``(n, H, W, C)`` when the last
        axis has 1, 3 or 4 entries and the second does not.
    mmap : bool, default=True
        Memory-map a ``.npy`` file instead of reading it (``.npz`` members are always read: a zip
        member cannot be mapped).

    Returns
    -------
    X : ndarray of shape (n_samples, C, H, W)
        A view of the file's array (no copy, even when the channels are moved).
    y : ndarray of shape (n_samples,) or None
        The labels, if the file holds any.

    Raises
    ------
    ValueError
        If the file is not a ``.npy`` / ``.npz`` file, holds no image array, or its labels do not
        match the number of images.
    """
    func = "load_array"
    _check_channels(channels, func)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The array file {path!r} does not exist.")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{path} is not a .npy or .npz file (its name ends in {suffix!r}).")
    _check_magic(path, suffix)
    try:
        if suffix == ".npy":
            X, y = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as archive:
                x_key = next((k for k in _X_KEYS if k in archive.files), None)
                y_key = next((k for k in _Y_KEYS if k in archive.files), None)
                X = archive[x_key] if x_key is not None else None
                y = archive[y_key] if y_key is not None else None
                files = archive.files
    except zipfile.BadZipFile as exc:  # starts like a zip archive but is none
        raise ValueError(f"{path} is not a .npz file: {_NPZ}, and this one is damaged "
                         f"({exc}).") from exc
    except (OSError, EOFError, ValueError, KeyError, zlib.error) as exc:
        # numpy: bad header, truncated; zipfile: a damaged member
        raise ValueError(f"{path} could not be read as a numpy file: {exc}") from exc
    if X is None:
        raise ValueError(
            f"{path} holds the arrays {files}, none of them named like images (one of "
            f"{list(_X_KEYS)})."
        )
    X = _channels_first(X, channels, path)
    if y is not None and (y.ndim != 1 or len(y) != len(X)):
        raise ValueError(
            f"{path} holds {len(X)} images but labels of shape {y.shape}; expected ({len(X)},)."
        )
    return X, y


_NPZ = "a .npz file is a zip archive of .npy arrays (numpy.savez writes one)"


def _check_magic(path, suffix):
    """Refuse a file that does not start like its suffix says (numpy would try to unpickle it)."""
    with open(path, "rb") as f:
        head = f.read(6)
    if suffix == ".npy" and head != b"\x93NUMPY":
        raise ValueError(f"{path} is not a .npy file (as numpy.save writes): it does not start "
                         "with the .npy magic bytes.")
    if suffix == ".npz" and head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path} is not a .npz file: {_NPZ}, and this one does not start "
                         "like one.")


def load_images(
    path: str | os.PathLike[str],
    image_size: int | tuple[int, int] | None = None,
    color: str | None = None,
    channels: str = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load images and labels from an image folder or a ``.npy`` / ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        A folder (see :func:`load_image_folder`) or an array file (see :func:`load_array`).
    image_size : int, (height, width) or None, default=None
        Passed to :func:`load_image_folder`.
    color : {"gray", "rgb"} or None, default=None
        Passed to :func:`load_image_folder`.
    channels : {"auto", "first", "last"}, default="auto"
        Passed to :func:`load_array`.

    Returns
    -------
    X : ndarray of shape (n_samples, C, H, W)
        The images.
    y : ndarray of shape (n_samples,) or None
        The labels (class folder names, or the file's labels), if any.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        X, y, _ = load_image_folder(path, image_size=image_size, color=color)
        return X, y
    if os.path.splitext(path)[1].lower() in (".npy", ".npz"):
        return load_array(path, channels=channels)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} is neither an image folder nor a .npy / .npz file.")
    raise ValueError(f"{path!r} is neither an image folder nor a .npy / .npz file.")


# ---------------------------------------------------------------------------- in memory
def _is_pil(obj):
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Image.Image)


def is_map_dataset(obj):
    """Whether ``obj`` is a sized, map-style torch ``Dataset`` of the user's (not an
    ``IterableDataset``, not one of skorch's internal ones); False without torch imported."""
    import sys

    if "torch" not in sys.modules:  # a torch Dataset cannot exist without torch imported
        return False
    import torch.utils.data

    return isinstance(obj, torch.utils.data.Dataset) and not isinstance(
        obj, torch.utils.data.IterableDataset
    ) and hasattr(obj, "__len__") and not _is_skorch_dataset(obj)


def _is_skorch_dataset(obj):
    """skorch's own datasets (and subsets of them), which skorch passes to predict internally:
    they hold validated arrays and are not the user's images."""
    import torch.utils.data

    try:
        from skorch.dataset import Dataset as SkorchDataset
    except ImportError:  # pragma: no cover
        return False
    while isinstance(obj, torch.utils.data.Subset):
        obj = obj.dataset
    return isinstance(obj, SkorchDataset)


def is_image_source(X):
    """Whether ``X`` is an input that :func:`as_image_array` converts to an array.

    Those are the torch map-style ``Dataset`` objects that have a ``len()`` (not skorch's own
    datasets, which skorch passes to ``predict`` internally, nor ``Subset`` objects of them) and
    the non-empty lists and tuples whose first item is a PIL image. It never imports torch
    (without torch imported, ``X`` cannot be a ``Dataset``).

    Parameters
    ----------
    X : object
        The input.

    Returns
    -------
    convertible : bool
        True for such a ``Dataset`` or list of PIL images.
    """
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and _is_pil(X[0])
    return is_map_dataset(X)


def _item_array(item, position):
    """One image (PIL, tensor or array) -> (C, H, W) array; uint8 stays uint8."""
    if _is_pil(item):
        array = np.asarray(item)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # HWC -> CHW
    tensor = hasattr(item, "detach") and hasattr(item, "cpu")
    array = item.detach().cpu().numpy() if tensor else np.asarray(item)
    if array.dtype.kind in "biuf" and array.ndim == 2:  # (H, W) -> (1, H, W)
        return array[None]
    if array.dtype.kind in "biuf" and array.ndim == 3:
        if not tensor and array.shape[0] not in (1, 3, 4) and array.shape[2] in (1, 3, 4):
            return array.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        return array  # tensors are (C, H, W), as torchvision makes them
    raise ValueError(
        f"Item {position} is not an image: got {type(item).__name__} of shape "
        f"{getattr(array, 'shape', None)}; expected a PIL image, a (C, H, W) tensor or an "
        "(H, W) / (C, H, W) / (H, W, C) array."
    )


def as_image_array(X: Any, input_name: str = "X", return_labels: bool = False) -> Any:
    """Turn a torch ``Dataset`` or a list of PIL images into one array ``(n, C, H, W)``.

    A ``Dataset`` may yield images or ``(image, label)`` pairs (torchvision's ``ImageFolder``,
    ``FakeData``, ...). Images may be PIL images, tensors ``(C, H, W)`` (e.g. after ``ToTensor``)
    or arrays. Gray PIL images are converted to RGB when the others are in color. Anything else is
    returned unchanged.

    Parameters
    ----------
    X : Dataset, list of PIL images, or anything else
        The images; anything that is neither is returned as it is.
    input_name : str, default="X"
        Used in messages.
    return_labels : bool, default=False
        Also return the labels of a ``Dataset`` of ``(image, label)`` pairs (None otherwise).

    Returns
    -------
    X : ndarray of shape (n, C, H, W)
        The images: uint8 when all are uint8 (PIL), float32 otherwise (uint8 ones scaled to
        [0, 1]).
    y : ndarray of shape (n,) or None
        Only with ``return_labels=True``.

    Raises
    ------
    ValueError
        If the images do not all have one size and number of channels (ragged input), or an
        item is not an image.
    """
    if not is_image_source(X):
        return (X, None) if return_labels else X
    if len(X) == 0:
        raise ValueError(f"{input_name} is an empty {type(X).__name__}: it holds no image.")
    items = [X[i] for i in range(len(X))]
    pairs = all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items)
    labels = [it[1] for it in items] if pairs else None
    if pairs or all(isinstance(it, (tuple, list)) and len(it) == 1 for it in items):
        images = [it[0] for it in items]  # (image, label) pairs or 1-tuples (TensorDataset)
    else:
        images = items
    if images and all(_is_pil(im) for im in images):
        if any(im.mode not in _GRAY_MODES for im in images):
            images = [im.convert("RGB") if im.mode != "RGB" else im for im in images]
        else:
            images = [im.convert("L") if im.mode != "L" else im for im in images]
    arrays = [_item_array(im, i) for i, im in enumerate(images)]
    shapes = {}
    for i, a in enumerate(arrays):
        shapes.setdefault(a.shape, i)
    if len(shapes) > 1:
        (s1, i1), (s2, i2) = list(shapes.items())[:2]
        raise ValueError(
            f"{input_name} holds images of {len(shapes)} different shapes: item {i1} is "
            f"{'x'.join(map(str, s1))} and item {i2} is {'x'.join(map(str, s2))} (C x H x W). "
            "skal needs images of one size: resize them (e.g. torchvision.transforms.v2.Resize "
            "in the Dataset's transform, or skal.data.load_image_folder(path, "
            "image_size=...))."
        )
    if all(a.dtype == np.uint8 for a in arrays):
        out = np.stack(arrays)  # (n, C, H, W)
    else:
        out = np.stack([
            a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
            for a in arrays
        ])
    if not return_labels:
        return out
    if labels is not None:
        # 0-d tensors / numpy scalars -> Python scalars
        labels = np.asarray([v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v
                             for v in labels])
    return out, labels


def images_and_labels(X, y=None, input_name="X"):
    """Turn ``fit``'s ``(X, y)`` into arrays when ``X`` is a ``Dataset`` or a list of PIL images.

    ``X`` is converted by :func:`as_image_array`; when ``y`` is None, the labels of a ``Dataset``
    of ``(image, label)`` pairs are used (None for other inputs). Any other ``X`` is returned
    unchanged, with ``y``.

    Parameters
    ----------
    X : Dataset, list of PIL images, or anything else
        The training images.
    y : array-like or None, default=None
        The labels; when given, they are returned as they are, even for a ``Dataset`` of pairs.
    input_name : str, default="X"
        The name of ``X`` in messages.

    Returns
    -------
    X : ndarray of shape (n, C, H, W), or the input
        The images as one array, or ``X`` unchanged.
    y : array-like or None
        ``y``, or the ``Dataset``'s labels when ``y`` is None.

    Raises
    ------
    ValueError
        If ``X`` is an empty ``Dataset``, its images do not all have one shape, or an item is
        not an image.
    """
    if not is_image_source(X):
        return X, y
    X, labels = as_image_array(X, input_name, return_labels=True)
    return X, labels if y is None else y
