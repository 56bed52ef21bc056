"""Data: what a pool is and how images reach skal.

- :class:`Pool` is a read-only, chunked view of a pool that may be larger than memory (a numpy
  array, a ``np.memmap``, a torch ``Dataset``, ...); :func:`as_pool` is the one place that decides
  what a pool is (with :func:`is_lazy_pool`, :func:`is_dataset_pool`, and for the strategies
  :func:`pool_rows`, :func:`n_pool_rows` and :func:`pool_view`).
- The loaders bring image folders, ``.npy`` / ``.npz`` files, torch ``Dataset`` objects and lists
  of PIL images to skal's ``(n, C, H, W)`` layout.
- :mod:`skal.data.transforms` holds the augmentations of the training steps.

The bundled example data sets (Fashion-MNIST, digits) are in :mod:`skal.datasets`.
"""

from ._pool import (
    DEFAULT_CHUNK_BYTES,
    Pool,
    as_pool,
    is_dataset_pool,
    is_lazy_pool,
    n_pool_rows,
    pool_rows,
    pool_view,
)
from ._sources import (
    IMAGE_EXTENSIONS,
    RESIZE_HINT,
    as_image_array,
    check_color,
    check_image_size,
    images_and_labels,
    is_image_source,
    load_array,
    load_image_folder,
    load_images,
    read_images,
    scan_image_folder,
)

__all__ = [
    "Pool",
    "as_pool",
    "is_lazy_pool",
    "is_dataset_pool",
    "pool_rows",
    "n_pool_rows",
    "pool_view",
    "DEFAULT_CHUNK_BYTES",
    "IMAGE_EXTENSIONS",
    "RESIZE_HINT",
    "as_image_array",
    "check_color",
    "check_image_size",
    "images_and_labels",
    "is_image_source",
    "load_array",
    "load_image_folder",
    "load_images",
    "read_images",
    "scan_image_folder",
]
