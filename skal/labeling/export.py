"""Exporting a project's labels: a CSV of the answers, or the images in an ``ImageFolder``."""

import csv
import datetime
import os
import re
import shutil
import warnings

__all__ = ["export_answers_csv", "export_csv", "export_imagefolder", "looks_like_formula"]


# what a spreadsheet may run as a formula (OWASP's "CSV injection" list, the DDE pipe, and the
# full-width forms some locales accept), also after leading blanks, which spreadsheets skip
_FORMULA_START = ("=", "+", "-", "@", "|", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d",
                  "\uff20")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def looks_like_formula(text):
    """Tell whether a spreadsheet could read ``text`` as a formula.

    Parameters
    ----------
    text : object
        The cell's content (converted with ``str``).

    Returns
    -------
    bool
        True when it starts, maybe after blanks, with ``=``, ``+``, ``-``, ``@``, ``|``, a tab,
        CR or LF (or a full-width ``=+-@``); plain numbers such as ``-1`` or ``+2.5e3`` excepted.
    """
    text = str(text)
    stripped = text.lstrip()
    if not (text.startswith(_FORMULA_START) or stripped.startswith(_FORMULA_START)):
        return False
    return _NUMBER.fullmatch(stripped.rstrip()) is None


def _cell(text, escape_formulas):
    """``text``, prefixed with ``'`` if a spreadsheet could read it as a formula."""
    text = str(text)
    return "'" + text if escape_formulas and looks_like_formula(text) else text


def _path_cell(path, escape_formulas):
    """A relative path, prefixed with ``./`` if a spreadsheet could read it as a formula: the
    cell is safe and still names the same file."""
    return "./" + path if escape_formulas and looks_like_formula(path) else path


def export_csv(store, out, escape_formulas=True):
    """Write ``path,label,annotator,answered_at,sha256`` for every labelled image in use.

    File and annotator names come from people (the annotator from the labelling page): with
    ``escape_formulas`` a cell that a spreadsheet could read as a formula (see
    :func:`looks_like_formula`) is made inert, so opening the file in a spreadsheet runs
    nothing: a path gets a leading ``./`` (it still names the same file), an annotator a leading
    ``'``. Class names cannot look like formulas (``init`` refuses them), so the label column
    is the class name exactly (a class of an older project that does is escaped with ``'``).
    ``escape_formulas=False`` writes every name verbatim.

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store.
    out : str or path-like
        The CSV file to write (``path`` is relative to the image folder).
    escape_formulas : bool, default=True
        Make formula-like cells inert, as above.

    Returns
    -------
    int
        The number of rows written.
    """
    rows = [r for r in store.current() if r["kind"] == "label"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "annotator", "answered_at", "sha256"])
        for r in rows:
            when = datetime.datetime.fromtimestamp(r["created_at"], datetime.timezone.utc)
            writer.writerow([_path_cell(r["path"], escape_formulas),
                             _cell(r["label"], escape_formulas),
                             _cell(r["annotator"], escape_formulas),
                             when.isoformat(timespec="seconds"), r["sha256"]])
    return len(rows)


def export_answers_csv(store, out, escape_formulas=True):
    """Write every annotator's answer on every image in use, one row each.

    Columns ``path,annotator,answer,label,answered_at,view_ms,sha256`` (``answer`` is
    ``label`` or ``skip``; ``view_ms`` the milliseconds from the image being shown to the
    answer, empty when the sender gave none): what several annotators said, for agreement or
    aggregation elsewhere. Cells are escaped as by :func:`export_csv`.

    Parameters
    ----------
    store : LabelStore
        The project's store.
    out : str or path-like
        The CSV file to write.
    escape_formulas : bool, default=True
        Make cells a spreadsheet could run as a formula inert.

    Returns
    -------
    int
        The number of rows.

    See Also
    --------
    export_csv : One label per image.

    Examples
    --------
    >>> export_answers_csv(project.store, "answers.csv")  # doctest: +SKIP
    3
    """
    paths = {r["id"]: (r["path"], r["sha256"]) for r in store.images()}
    rows = [r for r in store.votes() if r["image_id"] in paths]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "annotator", "answer", "label", "answered_at", "view_ms",
                         "sha256"])
        for r in rows:
            path, digest = paths[r["image_id"]]
            when = datetime.datetime.fromtimestamp(r["created_at"], datetime.timezone.utc)
            writer.writerow([_path_cell(path, escape_formulas),
                             _cell(r["annotator"], escape_formulas), r["kind"],
                             "" if r["label"] is None else _cell(r["label"], escape_formulas),
                             when.isoformat(timespec="seconds"),
                             "" if r["view_ms"] is None else r["view_ms"], digest])
    return len(rows)


def export_imagefolder(store, image_path, out, stacklevel=2):
    """Copy every labelled image to ``out/CLASS/`` (torchvision's ``ImageFolder`` layout).

    A file from a sub-folder is named ``sub__name.png``. ``image_path(image_id)`` gives an image's
    file, or None when it is missing (such images are left out with a warning).

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store.
    image_path : callable
        ``image_path(image_id) -> str or None``.
    out : str or path-like
        The folder to fill; it must not exist or be empty.
    stacklevel : int, default=2
        Of the warnings about missing files, counted from the caller of this function.

    Returns
    -------
    int
        The number of files copied.
    """
    out = os.fspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FileExistsError(f"{out!r} exists and is not an empty folder.")
    n = 0
    for r in store.current():
        if r["kind"] != "label":
            continue
        source = image_path(r["image_id"])
        if source is None:
            warnings.warn(f"{r['path']} is missing from the image folder; not exported.",
                          stacklevel=stacklevel)
            continue
        folder = os.path.join(out, r["label"])
        os.makedirs(folder, exist_ok=True)
        shutil.copy2(source, os.path.join(folder, r["path"].replace("/", "__")))
        n += 1
    return n
