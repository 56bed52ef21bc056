"""The images of a labelling project's store: registered by path and content hash, retired when
their file leaves the image folder.

``images`` holds every image a project ever had (path relative to the image folder, SHA-256 of
its content, size). A retired image (``retired_at`` set) keeps its answers but is out of the
pool, the batches and training; a path is unique among the images in use only. A rescan of the
folder (:meth:`ImagesMixin.update_images`) adds, moves, restores and retires images in one
transaction and never touches an answer.
"""

import time

from .schema import valid_id

__all__ = ["ImagesMixin"]


class ImagesMixin:
    """The images of :class:`~skal.labeling.store.LabelStore`: register, rescan, look up.

    The labels that come with new images (their class sub-folder) are recorded as answers,
    through the store's :class:`~skal.labeling.store_answers.AnswersMixin`, in the same
    transaction as the images.

    See Also
    --------
    skal.labeling.ingest.rescan_project : Works out what a rescan changes.
    skal.labeling.store.LabelStore : The store it is mixed into.

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> store.update_images(add=[("a.png", "0" * 64, 8, 8, None), ("dog/b.png", "1" * 64, 8, 8,
    ...                                                             "dog")])
    [1, 2]
    >>> store.update_images(retire=[(1, "missing")])
    []
    >>> [r["path"] for r in store.images()], store.image(path="a.png")["retired_reason"]
    (['dog/b.png'], 'missing')
    >>> store.close()
    """

    def add_images(self, rows):
        """Register images; paths already registered are left as they are.

        Parameters
        ----------
        rows : iterable of (path, sha256, height, width)
            The images.

        Returns
        -------
        list of int
            The ids of every registered image, in order.
        """
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO images (path, sha256, height, width, added_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(p, h, ht, w, now) for p, h, ht, w in rows],
            )
        return [r[0] for r in self._query("SELECT id FROM images ORDER BY id")]

    def update_images(self, add=(), move=(), retire=(), *, annotator="import"):
        """Apply a rescan of the image folder in one transaction; answers are never touched.

        Parameters
        ----------
        add : iterable of (path, sha256, height, width, label or None)
            New images; a label is recorded as an answer of ``annotator`` (a class sub-folder).
        move : iterable of (image_id, path)
            Images found at another path (not in use by another image), or back at their own:
            their path is set and they are in use again.
        retire : iterable of (image_id, reason)
            Images whose file left the folder: out of the pool, the batches and training, their
            answers kept.
        annotator : str, default="import"
            Recorded as the annotator of the labels that ``add`` brings.

        Returns
        -------
        ids : list of int
            The ids of the added images, in order.
        """
        now = time.time()
        ids = []
        with self._tx() as c:
            c.executemany(
                "UPDATE images SET retired_at = ?, retired_reason = ? WHERE id = ? AND "
                "retired_at IS NULL", [(now, reason, i) for i, reason in retire])
            # out of use first, so that images may trade paths (a path is unique among those in use)
            c.executemany("UPDATE images SET retired_at = ? WHERE id = ? AND retired_at IS NULL",
                          [(now, i) for i, _ in move])
            c.executemany(
                "UPDATE images SET path = ?, retired_at = NULL, retired_reason = NULL "
                "WHERE id = ?", [(path, i) for i, path in move])
            for path, sha, height, width, label in add:
                image_id = c.execute(
                    "INSERT INTO images (path, sha256, height, width, added_at) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (path, sha, height, width, now)).fetchone()[0]
                ids.append(image_id)
                if label is not None:
                    self._insert_answer(c, image_id, "label", label, annotator, "import", None)
        return ids

    def images(self, include_retired=False):
        """List the registered images in use.

        Parameters
        ----------
        include_retired : bool, default=False
            Also list the retired images.

        Returns
        -------
        list of sqlite3.Row
            Rows (id, path, sha256, height, width, retired_at, retired_reason), by id.
        """
        sql = ("SELECT id, path, sha256, height, width, retired_at, retired_reason FROM images"
               + ("" if include_retired else " WHERE retired_at IS NULL") + " ORDER BY id")
        return self._query(sql)

    def image(self, image_id=None, path=None):
        """Find one image by id or by path.

        Parameters
        ----------
        image_id : int or None, default=None
            The image's id.
        path : str or None, default=None
            Its path: the image in use there, else the latest retired one
            that had it.

        Returns
        -------
        sqlite3.Row or None
            The image's row (a retired image has ``retired_at`` set), or None.
        """
        if image_id is not None:
            if not valid_id(image_id):
                return None
            rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        else:
            rows = self._query("SELECT * FROM images WHERE path = ? ORDER BY "
                               "retired_at IS NOT NULL, retired_at DESC LIMIT 1", (path,))
        return rows[0] if rows else None
