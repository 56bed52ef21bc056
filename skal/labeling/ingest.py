"""Registering the images of a folder: creating a project from it, and rescanning it later.

Images directly in the folder are unlabelled; images in sub-folders are labelled with the
sub-folder's name (a partially labelled ``ImageFolder``), recorded as answers of the annotator
``"import"``. An image is its content (SHA-256): a link to a registered file, or a copy of one, is
not registered again. The image files are read, never modified or moved.

:func:`rescan_project` brings a project up to date with its folder: new files are registered,
images whose file left the folder are retired (their answers kept, the image out of the pool, the
batches and training), a registered content found under another name moves there, and a retired
image whose file is back is in use again. Answers are never touched.
"""

import contextlib
import dataclasses
import os
import unicodedata
import warnings

from .export import looks_like_formula
from .files import MODELS_DIR, inside, sha256
from .settings import DEFAULT_CONFIG, check_config, check_name
from .store import DB_NAME, STORE_FILE, LabelStore, is_url

__all__ = ["RescanReport", "create_project", "rescan_project"]


def create_project(path, images, classes=None, *, image_size=None, color=None, settings=None,
                   stacklevel=2, store=None):
    """Write a new project's database for the images of ``images``.

    See :meth:`skal.labeling.Project.init`, which calls it, for what is registered and how.

    Parameters
    ----------
    path : str or path-like
        The project folder to create (it must not hold a project yet).
    images : str or path-like
        The image folder. Its files are read, never modified or moved.
    classes : list of str or None, default=None
        The class names; the sub-folder names are added after them.
    image_size : int, (height, width) or None, default=None
        The size the model sees; None when every image has one size.
    color : {"gray", "rgb"} or None, default=None
        None: gray when every image is gray.
    settings : dict or None, default=None
        Any of :data:`~skal.labeling.DEFAULT_CONFIG`.
    stacklevel : int, default=2
        Of the warnings about files left out, counted from the caller of this function.
    store : str or None, default=None
        A ``postgresql://`` URL of an empty database to hold the project (its folder gets a
        ``skal.store`` file naming it); None: ``PROJECT/skal.db``.

    Returns
    -------
    str
        The project folder.
    """
    from ..data import check_color, check_image_size

    config = dict(DEFAULT_CONFIG, **(settings or {}))
    check_config(config)
    if store is not None and not is_url(store):
        raise ValueError(f"store must be None (PROJECT/{DB_NAME}) or a postgresql:// URL, got "
                         f"{store!r}.")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(os.path.join(path, DB_NAME)) or os.path.exists(
            os.path.join(path, STORE_FILE)):
        raise FileExistsError(f"{path!r} already holds a labelling project; open it instead.")
    root = os.path.realpath(os.fspath(images))
    size = check_image_size(image_size, "Project.init")
    channels = check_color(color, "Project.init")
    scan = _scan(root, stacklevel + 1)
    if not scan.paths:
        raise ValueError(f"The folder {root!r} holds no PNG, JPEG or WebP image.")
    paths, folder_labels, hashes = _once_per_content(root, scan.paths, scan.labels,
                                                     stacklevel + 1)
    names = _class_names(classes, folder_labels)
    X, kept = _read(root, paths, size, channels, stacklevel + 1)
    if not len(kept):
        raise ValueError(f"None of the images in {root!r} could be read.")
    config.update(image_root=root, image_size=list(X.shape[2:]), channels=int(X.shape[1]))

    made = [p for p in (path, os.path.join(path, MODELS_DIR)) if not os.path.exists(p)]
    os.makedirs(os.path.join(path, MODELS_DIR), exist_ok=True)
    try:
        store = LabelStore.create(store or os.path.join(path, DB_NAME), names, config,
                                  lock_dir=path)
    except BaseException:  # (e.g. the database already holds a project): leave no folder behind
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
    if store.backend != "sqlite":  # the URL may hold a password: readable by the owner only
        fd = os.open(os.path.join(path, STORE_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(store.location + "\n")
    try:
        store.update_images(add=[_row(root, paths[i], hashes[i], folder_labels[i])
                                 for i in kept])
    finally:
        store.close()
    return path


def _rel(path, root):
    return os.path.relpath(path, root).replace(os.sep, "/")


def _servable(rel):
    """Whether a relative path can be a registered name: no control characters (a newline has
    no URL route, and breaks logs and shells), no bytes undecodable in the file system's
    encoding (surrogate escapes, which SQLite cannot store)."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in rel)


@dataclasses.dataclass
class _Scan:
    paths: list     # image files kept, in scan order
    labels: list    # their sub-folder names (None for loose files)
    outside: list   # relative paths of links that lead out of the folder (left out)
    unservable: list  # relative paths whose names cannot be registered (left out)


def _scan(root, stacklevel):
    """The image files below ``root`` and their sub-folder labels; links out of it and names
    that cannot be served are left out with a warning naming them."""
    from ..data import scan_image_folder

    paths, folder_labels = scan_image_folder(root)
    outside = [p for p in paths if not inside(p, root)]
    if outside:
        warnings.warn(
            f"{len(outside)} file(s) are links that lead out of {root} and were left out: "
            + ", ".join(outside[:5]), stacklevel=stacklevel)
    unservable = [p for p in paths if p not in outside and not _servable(_rel(p, root))]
    if unservable:
        warnings.warn(
            f"{len(unservable)} file(s) have names that cannot be served (control characters "
            "such as a newline, or bytes that are not text in the file system's encoding) and "
            "were left out; rename them: " + ", ".join(ascii(_rel(p, root))
                                                        for p in unservable[:5]),
            stacklevel=stacklevel)
    dropped = set(outside) | set(unservable)
    keep = [i for i, p in enumerate(paths) if p not in dropped]
    return _Scan([paths[i] for i in keep], [folder_labels[i] for i in keep],
                 [_rel(p, root) for p in outside], [_rel(p, root) for p in unservable])


def _links_last(paths):
    """Positions in ``paths``, files before symbolic links (a link's target is the image)."""
    return sorted(range(len(paths)), key=lambda i: (os.path.islink(paths[i]), i))


def _once_per_content(root, paths, folder_labels, stacklevel):
    """Hash the files; of files with one content (links, copies) only one is kept: a file
    rather than a link, else the first."""
    hashes = [sha256(p) for p in paths]
    first, twins = {}, []
    for i in _links_last(paths):
        if hashes[i] in first:
            twins.append(f"{_rel(paths[i], root)} (= {_rel(paths[first[hashes[i]]], root)})")
        else:
            first[hashes[i]] = i
    if twins:
        warnings.warn(
            f"{len(twins)} file(s) have the same content as another one (a link or a copy) and "
            "were registered once: " + ", ".join(twins[:5]), stacklevel=stacklevel)
    keep = sorted(first.values())
    return ([paths[i] for i in keep], [folder_labels[i] for i in keep],
            [hashes[i] for i in keep])


def _row(root, path, digest, label):
    """``(relative path, sha256, height, width, label)`` for :meth:`LabelStore.update_images`."""
    from PIL import Image

    with Image.open(path) as im:
        return _rel(path, root), digest, im.height, im.width, label


def _class_names(classes, folder_labels):
    """The given class names, then the sub-folder names; checked and unique, at least two."""
    names = list(classes or [])
    for name in folder_labels:
        if name is not None and name not in names:
            names.append(name)
    for name in names:
        check_name(name, "class")
        if looks_like_formula(name):
            raise ValueError(
                f"A class name must not start like a spreadsheet formula (=, +, -, @, |, after "
                f"any blanks; numbers are fine): the CSV export would have to change it. Got "
                f"{name!r} instead."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"The class names must be unique; got {names}.")
    if len(names) < 2:
        raise ValueError(
            f"A project needs at least 2 classes (--classes a,b,... or class sub-folders); "
            f"got {names}."
        )
    return names


def _read(root, paths, size, channels, stacklevel):
    """Read the images (the unreadable are left out, with a warning naming them); returns the
    pixels and the positions in ``paths`` of the images read."""
    from ..data import read_images

    if not paths:
        return None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, kept = read_images(paths, image_size=size, color={1: "gray", 3: "rgb"}.get(
            channels), on_error="skip")
    for w in caught:
        warnings.warn(str(w.message), stacklevel=stacklevel)
    return X, [int(i) for i in kept]


# ---------------------------------------------------------------------------- rescan
@dataclasses.dataclass
class RescanReport:
    """What :meth:`Project.rescan` found; paths are relative to the image folder.

    :func:`rescan_project` returns it; with ``dry_run`` it says what a rescan would do.

    Parameters
    ----------
    added : list of str
        New files, registered (labelled with their sub-folder's name when it is a class).
    moved : list of (str, str)
        ``(old path, new path)``: a registered content found under another name (its answers
        follow it).
    restored : list of str
        Retired images whose file is back: in use again, with their answers.
    retired : list of str
        Images whose file left the folder (deleted, a link out of it, a name that cannot be
        served, or a second copy of a registered content): their answers are kept, the image
        is out of the pool, the batches and training.
    changed : list of str
        Registered paths whose file now holds other content: the image is retired (its answers
        are about the old content) and the new content is registered under that path (it is
        in ``added`` too).
    duplicates : list of str
        Files with the content of an image in use: not registered again.
    refused : list of str
        Files left out: unreadable, links out of the folder, names that cannot be served.
    dry_run : bool
        True when nothing was written.

    See Also
    --------
    skal.labeling.Project.rescan : Runs a rescan of a project.

    Examples
    --------
    >>> from skal.labeling import RescanReport
    >>> RescanReport(added=["new.png"], dry_run=True).added
    ['new.png']
    """

    added: list = dataclasses.field(default_factory=list)
    moved: list = dataclasses.field(default_factory=list)
    restored: list = dataclasses.field(default_factory=list)
    retired: list = dataclasses.field(default_factory=list)
    changed: list = dataclasses.field(default_factory=list)
    duplicates: list = dataclasses.field(default_factory=list)
    refused: list = dataclasses.field(default_factory=list)
    dry_run: bool = False


def rescan_project(store, *, dry_run=False, stacklevel=2):
    """Bring ``store`` up to date with its image folder (see :class:`RescanReport`).

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store.
    dry_run : bool, default=False
        Report only: nothing is written.
    stacklevel : int, default=2
        Of the warnings about files left out, counted from the caller of this function.

    Returns
    -------
    RescanReport
        What was found (and, unless ``dry_run``, done).
    """
    config = store.config()
    root = config["image_root"]
    classes = set(store.classes())
    scan = _scan(root, stacklevel + 1)
    files = {}  # relative path -> (full path, sub-folder label, sha256); files before links
    for i in _links_last(scan.paths):
        full = scan.paths[i]
        files[_rel(full, root)] = (full, scan.labels[i], sha256(full))
    rows = store.images(include_retired=True)
    answered = {r["image_id"] for r in store.current(include_retired=True)}
    # who keeps a content when several rows have it: an image in use, then an answered one,
    # then the oldest
    rows.sort(key=lambda r: (r["retired_at"] is not None, r["id"] not in answered, r["id"]))
    place, taken, kept_sha = {}, set(), set()  # row id -> path; paths taken; contents kept
    for r in rows:  # a content still at its own path stays there
        f = files.get(r["path"])
        if f and f[2] == r["sha256"] and r["path"] not in taken and r["sha256"] not in kept_sha:
            place[r["id"]] = r["path"]
            taken.add(r["path"])
            kept_sha.add(r["sha256"])
    by_sha = {}
    for rel, (_, _, digest) in files.items():
        by_sha.setdefault(digest, []).append(rel)
    for r in rows:  # ... else it moves to a free file with that content
        if r["id"] in place or r["sha256"] in kept_sha:
            continue
        free = [rel for rel in by_sha.get(r["sha256"], []) if rel not in taken]
        if free:
            place[r["id"]] = free[0]
            taken.add(free[0])
            kept_sha.add(r["sha256"])

    report = RescanReport(dry_run=dry_run, refused=scan.outside + scan.unservable)
    move, retire = [], []
    for r in sorted(rows, key=lambda r: r["id"]):
        new_path = place.get(r["id"])
        if new_path is not None:
            if r["retired_at"] is not None or new_path != r["path"]:
                move.append((r["id"], new_path))
                if new_path != r["path"]:
                    report.moved.append((r["path"], new_path))
                else:
                    report.restored.append(new_path)
        elif r["retired_at"] is None:
            f = files.get(r["path"])
            if f is not None and f[2] != r["sha256"]:
                reason = "changed"
                report.changed.append(r["path"])
            else:
                reason = ("duplicate" if f is not None else "name" if r["path"] in
                          scan.unservable else "outside" if r["path"] in scan.outside
                          else "missing")
                report.retired.append(r["path"])
            retire.append((r["id"], reason))

    new = []  # files with a content no image keeps
    for rel, (full, label, digest) in files.items():
        if rel in taken:
            continue
        if digest in kept_sha:
            report.duplicates.append(rel)
        else:
            kept_sha.add(digest)
            new.append((rel, full, label, digest))
    _, kept = _read(root, [f[1] for f in new], tuple(config["image_size"]), config["channels"],
                    stacklevel + 1)
    unreadable = sorted(set(range(len(new))) - set(kept))
    report.refused += [new[i][0] for i in unreadable]
    new = [new[i] for i in kept]
    others = sorted({label for _, _, label, _ in new if label is not None} - classes)
    if others:
        warnings.warn(
            f"The sub-folder(s) {others} are not classes of this project: their new images are "
            "registered unlabelled.", stacklevel=stacklevel + 1)
    add = [_row(root, full, digest, label if label in classes else None)
           for _, full, label, digest in new]
    report.added = [a[0] for a in add]
    if not dry_run:
        store.update_images(add=add, move=move, retire=retire)
    return report
