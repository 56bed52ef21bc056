"""The labels of a labelling project, read back and exported.

:class:`ExportMixin` is mixed into :class:`skal.labeling.Project`; the files are written by
:mod:`skal.labeling.export` (CSV with formula-like cells made inert, torchvision's
``ImageFolder`` layout).
"""

from . import export as _export

__all__ = ["ExportMixin"]


class ExportMixin:
    """The labels of :class:`~skal.labeling.Project`: as a dict, counted, or exported.

    Only images in use count; the answers of retired images stay in the store's log.

    See Also
    --------
    skal.labeling.export.export_csv : Writes the labels' CSV.
    skal.labeling.export.export_imagefolder : Copies the labelled images by class.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skal.labeling import Project
    >>> photos = os.path.join(tempfile.mkdtemp(), "photos")
    >>> os.makedirs(photos)
    >>> for i in range(4):
    ...     Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(f"{photos}/{i}.png")
    >>> project = Project.init(photos + "-project", photos, ["cat", "dog"], batch_size=2)
    >>> _ = project.label("1.png", "dog", annotator="ann")
    >>> project.labels(), project.label_counts()
    ({'1.png': 'dog'}, {'cat': 0, 'dog': 1})
    >>> project.export_csv(os.path.join(photos + "-project", "labels.csv"))
    1
    >>> project.close()
    """

    def labels(self):
        """Return the label of every labelled image in use.

        Returns
        -------
        dict of str to str
            ``{relative path: label}``; the labels of retired images stay in the store's answer log.
        """
        return {r["path"]: r["label"] for r in self.store.current() if r["kind"] == "label"}

    def label_counts(self):
        """Count the labelled images of each class.

        Returns
        -------
        dict of str to int
            ``{class: number of labelled images}``, zeros included.
        """
        return self.store.label_counts()

    def export_csv(self, out, escape_formulas=True):
        """Write ``path,label,annotator,answered_at,sha256`` for every labelled image in use.

        ``path`` is relative to the image folder. Unless ``escape_formulas=False``, a cell a
        spreadsheet could read as a formula (it starts, maybe after blanks, with ``=``, ``+``, ``-``,
        ``@``, ``|``, tab, CR or LF; numbers excepted) is made inert: a path gets a leading ``./`` (it
        still names the same file), an annotator a leading ``'``; class names never look like
        formulas.

        Parameters
        ----------
        out : str or path-like
            The CSV file to write.
        escape_formulas : bool, default=True
            Make formula-like cells inert, as above.

        Returns
        -------
        int
            The number of rows written.
        """
        return _export.export_csv(self.store, out, escape_formulas=escape_formulas)

    def export_answers(self, out, escape_formulas=True):
        """Write every annotator's answer on every image in use as CSV.

        Columns ``path,annotator,answer,label,answered_at,view_ms,sha256`` (see
        :func:`skal.labeling.export.export_answers_csv`).

        Parameters
        ----------
        out : str or path-like
            The CSV file to write.
        escape_formulas : bool, default=True
            Make cells a spreadsheet could run as a formula inert (as :meth:`export_csv`).

        Returns
        -------
        int
            The number of rows.
        """
        return _export.export_answers_csv(self.store, out, escape_formulas=escape_formulas)

    def export_imagefolder(self, out):
        """Copy every labelled image to ``out/CLASS/`` (torchvision's ``ImageFolder`` layout).

        A file from a sub-folder is named ``sub__name.png``.

        Parameters
        ----------
        out : str or path-like
            The folder to fill; it must not exist or be empty.

        Returns
        -------
        int
            The number of files copied.
        """
        return _export.export_imagefolder(
            self.store, lambda image_id: self.image_path(image_id=image_id), out, stacklevel=3)

