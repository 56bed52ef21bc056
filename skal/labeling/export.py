"""Exporting a project's labels: a CSV of the answers, or the images in an ``ImageFolder``."""

import csv
import datetime
import os
import shutil
import warnings

__all__ = ["export_csv", "export_imagefolder"]


# a cell a spreadsheet would run as a formula (OWASP's "CSV injection" list)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text, escape_formulas):
    """``text``, prefixed with ``'`` if a spreadsheet would read it as a formula (a number such
    as ``-1`` is left alone)."""
    text = str(text)
    if not escape_formulas or not text.startswith(_FORMULA_START):
        return text
    try:
        float(text)
        return text
    except ValueError:
        return "'" + text


def export_csv(store, out, escape_formulas=True):
    """Write ``path,label,annotator,answered_at,sha256`` for every labelled image of ``store``;
    returns the number of rows (``path`` is relative to the image folder).

    File, class and annotator names come from people (the annotator from the labelling page):
    with ``escape_formulas`` a cell that starts like a spreadsheet formula (``=``, ``+``, ``-``,
    ``@``, tab, carriage return; numbers excepted) is written with a leading ``'``, so opening
    the file in a spreadsheet runs nothing. ``escape_formulas=False`` writes names verbatim.
    """
    rows = [r for r in store.current() if r["kind"] == "label"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "annotator", "answered_at", "sha256"])
        for r in rows:
            when = datetime.datetime.fromtimestamp(r["created_at"], datetime.timezone.utc)
            writer.writerow([_cell(r["path"], escape_formulas),
                             _cell(r["label"], escape_formulas),
                             _cell(r["annotator"], escape_formulas),
                             when.isoformat(timespec="seconds"), r["sha256"]])
    return len(rows)


def export_imagefolder(store, image_path, out, stacklevel=2):
    """Copy every labelled image to ``out/CLASS/`` (a file from a sub-folder is named
    ``sub__name.png``); returns the number of files. ``out`` must not exist or be empty.

    ``image_path(image_id)`` gives an image's file, or None when it is missing (such images are
    left out with a warning).
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
