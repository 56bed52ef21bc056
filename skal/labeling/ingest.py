"""Creating a project from a folder of images: scan, check, read, and register them.

Images directly in the folder are unlabelled; images in sub-folders are labelled with the
sub-folder's name (a partially labelled ``ImageFolder``), recorded as answers of the annotator
``"import"``. The image files are read, never modified or moved.
"""

import os
import warnings

from .files import MODELS_DIR, inside, sha256
from .settings import DEFAULT_CONFIG, check_config, check_name
from .store import DB_NAME, LabelStore

__all__ = ["create_project"]


def create_project(path, images, classes=None, *, image_size=None, color=None, settings=None,
                   stacklevel=2):
    """Write a new project's database for the images of ``images``; returns its folder.

    See :meth:`skal.labeling.Project.init` for the parameters; ``stacklevel`` is that of the
    warnings about files left out, counted from the caller of this function.
    """
    from .._sources import _check_color, _check_image_size

    config = dict(DEFAULT_CONFIG, **(settings or {}))
    check_config(config)
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(os.path.join(path, DB_NAME)):
        raise FileExistsError(f"{path!r} already holds a labelling project; open it instead.")
    root = os.path.realpath(os.fspath(images))
    size = _check_image_size(image_size, "Project.init")
    channels = _check_color(color, "Project.init")
    paths, folder_labels = _scan(root, stacklevel + 1)
    names = _class_names(classes, folder_labels)
    X, paths, folder_labels = _read(root, paths, folder_labels, size, channels, stacklevel + 1)
    config.update(image_root=root, image_size=list(X.shape[2:]), channels=int(X.shape[1]))

    os.makedirs(os.path.join(path, MODELS_DIR), exist_ok=True)
    store = LabelStore.create(os.path.join(path, DB_NAME), names, config)
    try:
        _register(store, root, paths, folder_labels)
    finally:
        store.close()
    return path


def _scan(root, stacklevel):
    """The image files below ``root`` and their sub-folder labels; links out of it left out."""
    from .._sources import scan_image_folder

    paths, folder_labels = scan_image_folder(root)
    outside = [p for p in paths if not inside(p, root)]
    if outside:
        warnings.warn(
            f"{len(outside)} file(s) are links that lead out of {root} and were left out: "
            + ", ".join(outside[:5]), stacklevel=stacklevel)
        keep = [i for i, p in enumerate(paths) if inside(p, root)]
        paths, folder_labels = [paths[i] for i in keep], [folder_labels[i] for i in keep]
    if not paths:
        raise ValueError(f"The folder {root!r} holds no PNG, JPEG or WebP image.")
    return paths, folder_labels


def _class_names(classes, folder_labels):
    """The given class names, then the sub-folder names; checked and unique, at least two."""
    names = list(classes or [])
    for name in folder_labels:
        if name is not None and name not in names:
            names.append(name)
    for name in names:
        check_name(name, "class")
    if len(set(names)) != len(names):
        raise ValueError(f"The class names must be unique; got {names}.")
    if len(names) < 2:
        raise ValueError(
            f"A project needs at least 2 classes (--classes a,b,... or class sub-folders); "
            f"got {names}."
        )
    return names


def _read(root, paths, folder_labels, size, channels, stacklevel):
    """Read every image once (the unreadable are left out, with a warning naming them)."""
    from .._sources import read_images

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, kept = read_images(paths, image_size=size, color={1: "gray", 3: "rgb"}.get(
            channels), on_error="skip")
    for w in caught:
        warnings.warn(str(w.message), stacklevel=stacklevel)
    if not len(kept):
        raise ValueError(f"None of the images in {root!r} could be read.")
    return X, [paths[i] for i in kept], [folder_labels[i] for i in kept]


def _register(store, root, paths, folder_labels):
    """Add the images (relative path, content hash, size) and the sub-folder labels."""
    from PIL import Image

    rows = []
    for p in paths:
        with Image.open(p) as im:
            rows.append((os.path.relpath(p, root).replace(os.sep, "/"), sha256(p),
                         im.height, im.width))
    ids = store.add_images(rows)
    for image_id, label in zip(ids, folder_labels):
        if label is not None:
            store.add_answer(image_id, "label", label, annotator="import", source="import")
