"""Image data sets for the examples, tests and benchmarks of skal.

Nothing here ever downloads anything or writes to disk. Fashion-MNIST is read
from IDX files that are already present on the machine: Debian's
``dataset-fashion-mnist`` package installs them in
``/usr/share/datasets/fashion-mnist``. You can also put the four files in a
folder of your own and pass it as ``data_home=`` or through the ``SKAL_DATA``
environment variable. scikit-learn's bundled 8x8 digits are available as a
tiny stand-in needing no files at all.

All loaders return images in the ``(n_samples, n_channels, height, width)``
layout that the convolutional networks of :mod:`skal.nets` expect.
"""

import gzip
import os
import zlib

import numpy as np

__all__ = [
    "DATASETS",
    "load_dataset",
    "load_digits_images",
    "load_fashion_mnist",
]

#: Names accepted by :func:`load_dataset` (aliases aside).
DATASETS = ("digits", "fashion_mnist")

_ALIASES = {
    "digits": "digits",
    "fashion_mnist": "fashion_mnist",
    "fashion-mnist": "fashion_mnist",
    "fmnist": "fashion_mnist",
}

# Directory where Debian's ``dataset-fashion-mnist`` package installs the files.
_SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# torchvision keeps the raw files of ``FashionMNIST(root)`` in this sub-folder.
_TORCHVISION_SUBDIR = os.path.join("FashionMNIST", "raw")

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_FASHION_MNIST_SIZES = {"train": 60000, "test": 10000}

_INSTALL_HINT = (
    "To install it, as root: apt-get install dataset-fashion-mnist, "
    "or put the four IDX .gz files in a folder and pass data_home= "
    "or set SKAL_DATA."
)

# IDX element type codes (third byte of the magic number); multi-byte
# types are stored big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_idx(path):
    """Read an IDX file, gzip-compressed or not, into a NumPy array.

    Parameters
    ----------
    path : str or path-like
        The file to read. Compression is detected from the first two bytes
        (``0x1f 0x8b`` for gzip), not from the file name.

    Returns
    -------
    array : ndarray
        A writable array in native byte order whose shape is given by the
        dimensions stored in the file header.

    Raises
    ------
    ValueError
        If the file cannot be decompressed, its magic number is not an IDX
        one, its header is truncated, or its payload does not hold exactly
        as many bytes as the header announces. The message names the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()

    def invalid(reason):
        return ValueError(f"{path} is not a valid IDX file: {reason}")

    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(
                f"{path} could not be decompressed as gzip "
                f"(the file is truncated or corrupt): {exc}"
            ) from exc

    if len(raw) < 4:
        raise invalid(f"expected a 4-byte magic number, found {len(raw)} bytes")
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise invalid(
            f"bad magic number 0x{raw[:4].hex()} (the first two bytes must be zero)"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in sorted(_IDX_DTYPES))
        raise invalid(f"unknown data type code 0x{code:02x} (expected one of {known})")
    if ndim == 0:
        raise invalid("the number of dimensions is zero")

    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise invalid(
            f"expected a {header_len}-byte header for {ndim} dimensions, "
            f"found {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        raise invalid(f"expected {expected} bytes of data, found {found}")

    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    # Copy into native byte order: frombuffer on bytes gives a read-only view.
    return data.astype(dtype.newbyteorder("="), copy=True)


def _check_split(split, func_name):
    if not isinstance(split, str) or split not in _FASHION_MNIST_FILES:
        raise ValueError(
            f"The 'split' parameter of {func_name} must be one of "
            f"{{'train', 'test'}}. Got {split!r} instead."
        )


def _candidate_dirs(data_home):
    """Directories searched for the Fashion-MNIST files, in order.

    An explicit ``data_home`` is the only place searched (it and its torchvision layout): a folder
    the caller named must not be silently replaced by ``$SKAL_DATA`` or the system copy.
    """
    if data_home is not None:
        bases = [data_home]
    else:
        bases = [os.environ.get("SKAL_DATA") or None]
    dirs = []
    for base in bases:
        if base is None:
            continue
        base = os.path.expanduser(os.fspath(base))
        dirs.append(base)
        dirs.append(os.path.join(base, _TORCHVISION_SUBDIR))
    if data_home is None:
        dirs.append(_SYSTEM_FASHION_MNIST_DIR)
    return dirs


def _find_file(directory, stem):
    """Path of ``stem.gz`` or ``stem`` inside directory, or None."""
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_fashion_mnist(
    split: str = "train", data_home: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST from IDX files already on disk.

    Nothing is downloaded and nothing is cached. If ``data_home`` is given,
    only ``data_home`` and its torchvision layout ``data_home/FashionMNIST/raw``
    are searched, and missing files are an error: a folder you name is never
    silently replaced by another copy. Otherwise the directories searched, in
    order, are ``$SKAL_DATA`` and ``$SKAL_DATA/FashionMNIST/raw`` (if the
    variable is set), then ``/usr/share/datasets/fashion-mnist``, where
    Debian's ``dataset-fashion-mnist`` package installs the files. The first
    directory holding both the image and the label file of the split is used. Each
    file may be gzip-compressed (``train-images-idx3-ubyte.gz``) or not
    (``train-images-idx3-ubyte``).

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        Which part to load: the 60000 training images or the 10000 test
        images.
    data_home : str or path-like, default=None
        The folder holding the files (directly or in ``FashionMNIST/raw``).
        When given, nothing else is searched.

    Returns
    -------
    X : ndarray of shape (n_samples, 1, 28, 28), dtype uint8
        Gray-scale images, pixel values 0 to 255.
    y : ndarray of shape (n_samples,), dtype int64
        Class labels, 0 to 9.

    Raises
    ------
    ValueError
        If ``split`` is not valid, a file is not a valid IDX file, the images
        are not 28x28 uint8, or the image and label counts differ.
    FileNotFoundError
        If no searched directory holds the files; the message names the
        files expected, lists the directories searched and, without
        ``data_home``, how to install the data.

    Examples
    --------
    >>> from skal.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test")  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((10000, 1, 28, 28), (10000,))
    """
    _check_split(split, "load_fashion_mnist")
    if data_home is not None and not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(
            "The 'data_home' parameter of load_fashion_mnist must be a str, a path-like "
            f"object or None. Got {data_home!r} instead."
        )
    images_stem, labels_stem = _FASHION_MNIST_FILES[split]

    searched = _candidate_dirs(data_home)
    for directory in searched:
        images_path = _find_file(directory, images_stem)
        labels_path = _find_file(directory, labels_stem)
        if images_path is not None and labels_path is not None:
            break
    else:
        expected = f"{images_stem}[.gz] and {labels_stem}[.gz]"
        listing = "\n".join(f"  - {d}" for d in searched)
        if data_home is not None:
            home = os.path.expanduser(os.fspath(data_home))
            missing = "" if os.path.isdir(home) else " (the folder does not exist)"
            raise FileNotFoundError(
                f"Fashion-MNIST {split!r} files ({expected}) were not found in "
                f"data_home={home!r}{missing}. Searched:\n{listing}\n"
                "Put the files there, or pass data_home=None to search "
                f"$SKAL_DATA and {_SYSTEM_FASHION_MNIST_DIR}."
            )
        raise FileNotFoundError(
            f"Fashion-MNIST {split!r} files ({expected}) were not found in any "
            f"of these directories:\n{listing}\n{_INSTALL_HINT}"
        )

    images = _read_idx(images_path)
    labels = _read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path} does not hold 28x28 uint8 images: found dtype "
            f"{images.dtype} and shape {images.shape}."
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{labels_path} does not hold a 1-d array of labels: found shape "
            f"{labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"The number of images ({images.shape[0]} in {images_path}) does "
            f"not match the number of labels ({labels.shape[0]} in "
            f"{labels_path})."
        )
    return images[:, np.newaxis, :, :], labels.astype(np.int64)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's 8x8 digits as a tiny image data set.

    The data ship with scikit-learn, so this needs no files and no network.

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), dtype float32
        Images scaled to [0, 1] (the raw pixels range from 0 to 16).
    y : ndarray of shape (1797,), dtype int64
        Digit labels, 0 to 9.

    Examples
    --------
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, y.dtype
    ((1797, 1, 8, 8), dtype('float32'), dtype('int64'))
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (np.asarray(X, dtype=np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return X, np.asarray(y, dtype=np.int64)


def load_dataset(
    name: str, split: str = "train", data_home: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load an image data set by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"digits"`` or ``"fashion_mnist"``
        (aliases ``"fashion-mnist"`` and ``"fmnist"``).
    split : {"train", "test"}, default="train"
        Which part to load. The digits have no official test split: ``"train"``
        returns all 1797 images and ``"test"`` raises.
    data_home : str or path-like, default=None
        Passed to :func:`load_fashion_mnist`; ignored for the digits.

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, height, width)
        The images.
    y : ndarray of shape (n_samples,), dtype int64
        The labels.

    Raises
    ------
    ValueError
        If ``name`` or ``split`` is unknown, or ``split="test"`` is asked of
        the digits.
    """
    key = _ALIASES.get(name) if isinstance(name, str) else None
    if key is None:
        expected = ", ".join(repr(d) for d in DATASETS)
        raise ValueError(f"Unknown dataset {name!r}. Expected one of: {expected}.")
    _check_split(split, "load_dataset")
    if key == "fashion_mnist":
        return load_fashion_mnist(split=split, data_home=data_home)
    if split == "test":
        raise ValueError(
            "The digits dataset has no official test split: use split='train' "
            "to get all 1797 images and split them yourself."
        )
    return load_digits_images()
