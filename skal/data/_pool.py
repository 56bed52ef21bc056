"""A read-only, chunked view of a pool of samples that may be larger than memory.

:class:`Pool` wraps a numpy array (a ``np.memmap`` too), a torch tensor, a torch ``Dataset`` or any
other sized, indexable collection of samples (e.g. a lazily loaded image folder), and reads it one
contiguous chunk of rows at a time. It never materialises the whole pool: a memmap is sliced (only
the chunk's pages are read), a ``Dataset`` is asked for the chunk's items one by one. Rows come back
as they are stored (dtype and layout); the estimators convert each chunk (uint8 -> [0, 1] float32,
``(n, H, W)`` -> ``(n, 1, H, W)``, ...) with their usual validation.

A memmap that maps a whole file (``np.load(path, mmap_mode="r")``, ``np.memmap(path, ...)``) is
read with ``os.pread`` from its file rather than through the mapping: pages touched through a
mapping stay resident in the process and count in its RSS (up to the whole file), whereas pages
read with ``pread`` stay in the kernel's page cache only, so the process's memory stays one chunk
however large the pool. Other memmaps (views, copy-on-write) are sliced.

The chunk grid (rows ``[k * chunk_size, (k + 1) * chunk_size)``) is also the unit that
:mod:`skal.distributed` deals out to processes and that seeds MC-dropout masks, so a pool gives the
same scores whether it is read by one process or by several.

This module is the one place that decides what a pool is: :func:`is_lazy_pool` (read in chunks,
never as a whole: a memmap, a :class:`Pool`, a torch ``Dataset`` of the user's), and, for the
query strategies, :func:`pool_rows` (the pool as rows they index), :func:`n_pool_rows` and
:func:`pool_view` (the chunked view they scan).
"""

import mmap
import numbers
import os

import numpy as np
import torch

from ._sources import as_image_array, is_image_source, is_map_dataset

__all__ = ["Pool", "as_pool", "is_dataset_pool", "is_lazy_pool", "n_pool_rows", "pool_rows",
           "pool_view", "DEFAULT_CHUNK_BYTES"]

#: Default chunk: at most this many bytes of float32 samples, at least ``_MIN_DEFAULT_CHUNK`` rows
#: (large images would otherwise give tiny chunks) and at most ``_MAX_DEFAULT_CHUNK`` rows (2,048
#: images of 1x28x28 are 6.4 MiB): chunks are also the unit dealt out to processes, so a pool of
#: 10K images still makes 5 of them.
DEFAULT_CHUNK_BYTES = 64 * 2**20
_MIN_DEFAULT_CHUNK = 256
_MAX_DEFAULT_CHUNK = 2048


def is_dataset_pool(X):
    """Whether ``X`` is a torch ``Dataset`` pool of the user's.

    Parameters
    ----------
    X : object
        The pool, or anything else.

    Returns
    -------
    dataset : bool
        True for a sized, map-style torch ``Dataset``; skorch's own datasets (which its scoring
        callbacks pass around) do not count.

    See Also
    --------
    is_lazy_pool : Whether a pool must be read in chunks.
    """
    return is_map_dataset(X)


def is_lazy_pool(X):
    """Whether ``X`` is a pool that must not be converted as a whole.

    Parameters
    ----------
    X : object
        The pool, or anything else.

    Returns
    -------
    lazy : bool
        True for a :class:`Pool`, a ``np.memmap`` and a torch ``Dataset`` pool
        (:func:`is_dataset_pool`); False otherwise.

    See Also
    --------
    as_pool : The chunked view of a pool.
    """
    return isinstance(X, (Pool, np.memmap)) or is_dataset_pool(X)


def pool_rows(X_pool):
    """The pool as the strategies index it.

    Lists, tuples, torch ``Dataset`` objects and lists of PIL images become arrays, once; arrays
    and memmaps are returned as they are.

    Parameters
    ----------
    X_pool : array-like, torch Dataset or list of PIL images
        The pool.

    Returns
    -------
    rows : array-like
        Something with ``len`` that numpy-style indexing (``rows[idx]``) reads.

    Raises
    ------
    TypeError
        If ``X_pool`` has no length.

    See Also
    --------
    pool_view : The chunked view the strategies scan.
    """
    if is_image_source(X_pool):
        return as_image_array(X_pool, "X_pool")
    if isinstance(X_pool, (list, tuple)):
        X_pool = np.asarray(X_pool)
    try:
        len(X_pool)
    except TypeError:
        raise TypeError(
            f"X_pool must be an array-like of samples; got {type(X_pool).__name__}."
        ) from None
    return X_pool


def n_pool_rows(X_pool):
    """The number of samples in the pool.

    Parameters
    ----------
    X_pool : array-like, torch Dataset or list of PIL images
        The pool.

    Returns
    -------
    n : int
        Its length; a torch ``Dataset`` is counted, not loaded.

    See Also
    --------
    pool_rows : The pool as the strategies index it.
    """
    if is_dataset_pool(X_pool):
        return len(X_pool)
    return len(pool_rows(X_pool))


def pool_view(X_pool):
    """The pool as a chunked :class:`Pool` view.

    Memmaps and torch ``Dataset`` objects are read one chunk at a time; lists of PIL images are
    converted once.

    Parameters
    ----------
    X_pool : array-like, torch Dataset or list of PIL images
        The pool.

    Returns
    -------
    pool : Pool
        The view the strategies scan chunk by chunk.

    See Also
    --------
    as_pool : The same for a pool that is already rows.
    """
    if is_dataset_pool(X_pool):
        return as_pool(X_pool)
    return as_pool(pool_rows(X_pool))


def _item_array(item, unpack=True):
    """One sample of a Dataset / sequence as a numpy array (with ``unpack``, an ``(x, y)`` item
    of a Dataset gives x)."""
    if unpack and isinstance(item, (tuple, list)) and len(item) >= 1:
        item = item[0]
    if isinstance(item, torch.Tensor):
        return item.detach().cpu().numpy()
    if hasattr(item, "getdata") and hasattr(item, "mode"):  # a PIL image: (H, W[, C])
        arr = np.asarray(item)
        return np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr  # (H, W, C) -> (C, H, W)
    if isinstance(item, dict):
        raise TypeError(
            "A pool Dataset must return a sample (an array, a tensor, a PIL image) or an "
            f"(x, y) tuple; got a dict with keys {sorted(item)}."
        )
    return np.asarray(item)


def _stack(items, where, unpack):
    """Stack samples into one ``(m, ...)`` array; say which rows differ in shape."""
    if not items:
        return np.empty((0,))
    arrays = [_item_array(item, unpack) for item in items]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"The samples of the pool must all have the same shape; rows {where[0]}..{where[-1]} "
            f"have shapes {sorted(shapes)}. Resize the images (e.g. in the Dataset's transform)."
        )
    return np.stack(arrays)


class _FileRows:
    """Rows of a C-ordered ``np.memmap`` of a whole file, read with ``os.pread``."""

    def __init__(self, memmap_):
        self.path, self.offset = memmap_.filename, int(memmap_.offset)
        self.dtype, self.row_shape = memmap_.dtype, tuple(memmap_.shape[1:])
        self.n_rows = int(memmap_.shape[0])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * memmap_.dtype.itemsize

    @classmethod
    def of(cls, data):
        """A reader for ``data`` if it is a whole-file, C-ordered, shared memmap; else None."""
        ok = (
            hasattr(os, "preadv") and isinstance(data, np.memmap) and data.ndim >= 1
            and isinstance(data.base, mmap.mmap) and data.flags.c_contiguous
            and getattr(data, "mode", "c") in ("r", "r+", "w+") and data.filename is not None
        )
        return cls(data) if ok else None

    def _pread_into(self, fd, out, first):
        view, pos = memoryview(out).cast("B"), self.offset + first * self.row_bytes
        while len(view):  # large reads may come back in parts
            got = os.preadv(fd, [view], pos)
            if got <= 0:
                raise OSError(f"{self.path} ended before row {first + len(out)}.")
            view, pos = view[got:], pos + got

    def read(self, where):
        """Rows ``where`` (a slice with step 1, or an int array) as a new in-memory array."""
        if isinstance(where, slice):
            start, stop = max(where.start, 0), min(where.stop, self.n_rows)
            rows = [(0, start, max(stop - start, 0))]
        else:
            rows = [(j, int(i), 1) for j, i in enumerate(where)]  # one read per row
        out = np.empty((sum(n for _, _, n in rows),) + self.row_shape, dtype=self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for j, first, count in rows:
                if count:
                    self._pread_into(fd, out[j:j + count], first)
        finally:
            os.close(fd)
        return out


class Pool:
    """A chunked, read-only view of a pool of samples.

    The view is read one contiguous chunk of rows at a time (rows ``[k * chunk_size,
    (k + 1) * chunk_size)``), never as a whole: a whole-file memmap is read with ``os.pread``,
    other arrays and tensors are sliced, and a ``Dataset`` (or any other sized, indexable
    collection) is asked for the chunk's items one by one. Rows come back as stored: a numpy array
    of the stored dtype (a pandas ``DataFrame`` stays one, a scipy sparse matrix is read as CSR).

    Parameters
    ----------
    data : array-like, np.memmap, torch.Tensor, torch Dataset or Pool
        The samples. A ``Dataset`` may return ``(x, y)`` items (x is used).
    chunk_size : int or None, default=None
        Rows per chunk. None: 2,048, or fewer if they would take more than 64 MiB as float32 (at
        least 256), or the chunk size of a given ``Pool``.
    indices : array-like of int or None, default=None
        Restrict the view to these rows of ``data`` (in this order). When ``data`` is a
        ``Pool``, they are positions in that view.

    Attributes
    ----------
    data : object
        The samples (for a ``Pool`` given as ``data``, its own ``data``: views are not nested).
    indices : ndarray of int64, shape (n_rows,), or None
        The rows of ``data`` in the view, in order; None for all of them.

    Raises
    ------
    TypeError
        If ``data`` is a dict, a scalar, None, or has no ``len()``.
    ValueError
        If ``indices`` is not a 1-D array of ints, or ``chunk_size`` is not None or an int of at
        least 1.
    IndexError
        If an entry of ``indices`` is outside ``[0, len(data))``.

    See Also
    --------
    as_pool : A pool as a ``Pool`` (a ``Pool`` as it is).
    is_lazy_pool : Whether a pool must be read through a ``Pool``.

    Examples
    --------
    >>> import numpy as np
    >>> pool = Pool(np.arange(10).reshape(10, 1), chunk_size=4)
    >>> len(pool), pool.n_chunks, [len(rows) for _, rows in pool.chunks()]
    (10, 3, [4, 4, 2])
    """

    def __init__(self, data, chunk_size=None, indices=None):
        if isinstance(data, Pool):
            if chunk_size is None:
                chunk_size = data.chunk_size
            if data.indices is not None:
                indices = data.indices if indices is None else data.indices[np.asarray(indices)]
            data = data.data
        if isinstance(data, dict) or np.isscalar(data) or data is None:
            raise TypeError(
                "X_pool must be an array-like of samples (an array, a memmap, a tensor or a torch "
                f"Dataset); got {type(data).__name__}."
            )
        try:
            n_data = len(data)
        except TypeError:
            raise TypeError(
                "X_pool must be an array-like of samples (an array, a memmap, a tensor or a torch "
                f"Dataset); got {type(data).__name__}, which has no len()."
            ) from None
        self.data = data
        self._file = _FileRows.of(data)
        if indices is not None:
            indices = np.asarray(indices)
            if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
                raise ValueError(
                    f"indices must be a 1-D array of ints; got shape {indices.shape}, dtype "
                    f"{indices.dtype}."
                )
            indices = indices.astype(np.int64)
            if indices.size and (indices.min() < 0 or indices.max() >= n_data):
                raise IndexError(
                    f"indices must lie in [0, {n_data}) (the pool size); got "
                    f"[{indices.min()}, {indices.max()}]."
                )
        self.indices = indices
        self._len = n_data if indices is None else len(indices)
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
            or chunk_size < 1
        ):
            raise ValueError(
                f"The 'chunk_size' parameter must be None or an int in the range [1, inf). Got "
                f"{chunk_size!r} instead."
            )
        self._chunk_size = None if chunk_size is None else int(chunk_size)

    # ------------------------------------------------------------------ shape
    def __len__(self):
        return self._len

    def __repr__(self):
        return f"Pool({type(self.data).__name__}, n={len(self)}, chunk_size={self.chunk_size})"

    @property
    def sample_shape(self):
        """Per-sample shape as stored (e.g. ``(1, 28, 28)``), from the data or its first item."""
        shape = getattr(self.data, "shape", None)
        if shape is not None and not callable(shape):
            return tuple(shape[1:])
        if len(self) == 0:
            return ()
        first = self._rows(0, 1)
        first = first.start if isinstance(first, slice) else int(first[0])
        unpack = isinstance(self.data, torch.utils.data.Dataset)
        return _item_array(self.data[first], unpack).shape

    @property
    def chunk_size(self):
        """Rows per chunk: the ``chunk_size`` given, or the default described above."""
        if self._chunk_size is not None:
            return self._chunk_size
        per_row = 4 * max(int(np.prod(self.sample_shape)), 1)  # float32 bytes per sample
        return min(_MAX_DEFAULT_CHUNK, max(_MIN_DEFAULT_CHUNK, DEFAULT_CHUNK_BYTES // per_row))

    @property
    def n_chunks(self):
        """The number of chunks, ``ceil(len(self) / chunk_size)`` (the last may be shorter)."""
        return -(-len(self) // self.chunk_size)

    def chunk_bounds(self, k):
        """The ``(start, stop)`` positions of chunk ``k`` in this view.

        Parameters
        ----------
        k : int
            The chunk, in ``[0, n_chunks)``.

        Returns
        -------
        start : int
            The position of the chunk's first row, ``k * chunk_size``.
        stop : int
            One past its last row: ``start + chunk_size``, or ``len(self)`` for the last chunk.
        """
        start = k * self.chunk_size
        return start, min(start + self.chunk_size, len(self))

    # ------------------------------------------------------------------ reading
    def _rows(self, start, stop):
        """Positions in ``data`` of view rows ``[start, stop)``: a slice or an index array."""
        if self.indices is None:
            return slice(start, stop)
        return self.indices[start:stop]

    def _read(self, where):
        data = self.data
        if self._file is not None:  # a whole-file memmap: read from the file, not the mapping
            if isinstance(where, np.ndarray):
                where = where.astype(np.int64)
                if where.size and (where.min() < 0 or where.max() >= len(data)):
                    raise IndexError(f"pool positions must lie in [0, {len(data)}).")
            return self._file.read(where)
        if isinstance(data, np.ndarray):  # other memmaps: slicing reads only these rows
            return np.asarray(data[where])
        if isinstance(data, torch.Tensor):
            if isinstance(where, np.ndarray):
                where = torch.from_numpy(where)
            return data[where].detach().cpu().numpy()
        if hasattr(data, "iloc"):  # pandas: keep the frame (and its column names)
            return data.iloc[where]
        if hasattr(data, "tocsr"):  # scipy sparse: row slicing
            return data.tocsr()[where]
        if isinstance(where, slice):
            where = range(*where.indices(len(data)))
        items = [data[int(i)] for i in where]
        if isinstance(data, torch.utils.data.Dataset):
            return _stack(items, where, unpack=True)
        return _stack(items, where, unpack=False)

    def read(self, start, stop):
        """Read the view's rows ``[start, stop)``, as stored.

        Parameters
        ----------
        start : int
            The first position (in this view) to read.
        stop : int
            One past the last position; positions past the end are not read.

        Returns
        -------
        rows : ndarray of shape (n_read, ...)
            An array of the stored dtype (for pandas data, a ``DataFrame``; for scipy sparse
            data, a CSR matrix).
        """
        return self._read(self._rows(start, stop))

    def take(self, positions):
        """Read the view's rows at ``positions``, in that order.

        Parameters
        ----------
        positions : array-like of int, shape (m,)
            Positions in this view (repeats allowed).

        Returns
        -------
        rows : ndarray of shape (m, ...)
            The rows, as :meth:`read` returns them.
        """
        positions = np.asarray(positions, dtype=np.int64)
        return self._read(positions if self.indices is None else self.indices[positions])

    def chunks(self, which=None):
        """Read the chunks ``which`` one at a time.

        Parameters
        ----------
        which : iterable of int or None, default=None
            The chunks to read, in the order given; None reads every chunk, in order.

        Yields
        ------
        start : int
            The position of the chunk's first row in this view.
        rows : ndarray of shape (n_rows, ...)
            The chunk's rows, as :meth:`read` returns them.
        """
        for k in range(self.n_chunks) if which is None else which:
            start, stop = self.chunk_bounds(k)
            yield start, self.read(start, stop)

    def subset(self, positions):
        """A view of the rows at ``positions`` of this view, with the same chunk size.

        The new ``Pool`` shares this one's ``data`` (no copy).

        Parameters
        ----------
        positions : array-like of int, shape (m,)
            Positions in this view, in the order the new view has them.

        Returns
        -------
        pool : Pool
            The view of those ``m`` rows.
        """
        return Pool(self, indices=np.asarray(positions, dtype=np.int64))


def as_pool(X, chunk_size=None):
    """Wrap ``X`` in a :class:`Pool` (a ``Pool`` as it is, unless ``chunk_size`` is given).

    Parameters
    ----------
    X : array-like, np.memmap, torch.Tensor, torch Dataset or Pool
        The pool.
    chunk_size : int or None, default=None
        Rows per chunk (see :class:`Pool`). With a ``Pool``, a new view of its data with this
        chunk size.

    Returns
    -------
    pool : Pool
        ``X`` itself, or a new view of it.
    """
    if isinstance(X, Pool) and chunk_size is None:
        return X
    return Pool(X, chunk_size=chunk_size)
