"""The answers of a labelling project's store: the log, each annotator's vote, the standing answers.

``answers`` is an append-only log (every label, skip and undo with its annotator, time and
source); ``votes`` holds each annotator's standing answer on each image (several annotators'
answers on one image are kept side by side, none replaces another's); ``current`` holds each
image's standing answer, the majority of its votes: the label most annotators gave, a tie going
to the label given first, a skip when all of them skipped. Labels imported from class
sub-folders count only until a person answers the image. The three tables change together,
inside the transaction of the answer (or undo) that changes them.

:class:`AnswersMixin` writes answers and undos, :class:`VotesMixin` reads what the votes add up
to; both are mixed into :class:`skal.labeling.store.LabelStore`, whose transactions they use.
"""

import time

from .schema import valid_id

__all__ = ["MAX_CLIENT_ID", "MAX_VIEW_MS", "AnnotatorError", "AnswersMixin", "ImageRetiredError",
           "NotYourAnswerError", "VotesMixin"]

#: Longest ``client_id`` of an answer.
MAX_CLIENT_ID = 100
#: Largest ``view_ms`` of an answer (24.8 days).
MAX_VIEW_MS = 2**31 - 1

_ANSWER_KINDS = ("label", "skip")


class ImageRetiredError(ValueError):
    """The image was retired (its file left the image folder): it takes no new answers.

    Raised by :meth:`LabelStore.add_answer`; a rescan that finds the file again puts the image
    back in use.

    See Also
    --------
    LabelStore.update_images : Retires and restores images.

    Examples
    --------
    >>> issubclass(ImageRetiredError, ValueError)
    True
    """


class NotYourAnswerError(PermissionError):
    """An undo of an image that only other annotators answered: one undoes only one's own.

    Raised by :meth:`LabelStore.undo`; the web page answers 409 with its message.

    See Also
    --------
    LabelStore.undo : Takes back an annotator's latest answer.

    Examples
    --------
    >>> issubclass(NotYourAnswerError, PermissionError)
    True
    """


class AnnotatorError(PermissionError):
    """An answer in the name of an annotator who was removed from the project.

    Raised by :meth:`LabelStore.add_answer`; the web page answers 403 with its message.

    See Also
    --------
    LabelStore.remove_annotator : Removes an annotator.

    Examples
    --------
    >>> issubclass(AnnotatorError, PermissionError)
    True
    """


def _check_view_ms(view_ms):
    if view_ms is None:
        return None
    if isinstance(view_ms, bool) or not isinstance(view_ms, int) or not (
            0 <= view_ms <= MAX_VIEW_MS):
        raise ValueError(f"view_ms must be None or an int in the range [0, {MAX_VIEW_MS}] "
                         f"(milliseconds), got {view_ms!r}.")
    return view_ms


def _check_client_id(client_id):
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID or not (
            client_id.isprintable()) or client_id != client_id.strip():
        raise ValueError(f"client_id must be None or a string of 1 to {MAX_CLIENT_ID} printable "
                         f"characters without leading or trailing spaces, got {client_id!r}.")
    return client_id


class AnswersMixin:
    """Answers and undos of :class:`~skal.labeling.store.LabelStore`, each one transaction.

    An answer goes to the append-only log, becomes its annotator's vote on the image (replacing
    only their own earlier vote), and the image's standing answer becomes the majority of the
    votes (see the module's notes); an undo points at the answer it takes back.

    See Also
    --------
    VotesMixin : What the votes add up to.
    skal.labeling.store.LabelStore : The store it is mixed into.

    Notes
    -----
    It uses the store's ``_tx()`` (one write transaction, serialised with every writer) and
    ``_query(sql, params)`` (a read).

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> [image] = store.update_images(add=[("a.png", "0" * 64, 8, 8, None)])
    >>> first = store.add_answer(image, "label", "cat", annotator="ann", source="api")
    >>> second = store.add_answer(image, "label", "dog", annotator="ann", source="api")
    >>> store.undo(annotator="ann", source="api")["label"]
    'dog'
    >>> [(r["kind"], r["label"]) for r in store.answers()]
    [('label', 'cat'), ('label', 'dog'), ('undo', None)]
    >>> store.close()
    """

    def add_answer(self, image_id, kind, label=None, *, annotator, source, round_id=None,
                   view_ms=None, client_id=None):
        """Record a label (``kind="label"``) or a skip of ``annotator`` on an image.

        The answer becomes the annotator's vote on the image (replacing only their own earlier
        vote) and the image's standing answer is the majority of the votes (see the module's
        notes).

        Parameters
        ----------
        image_id : int
            The image.
        kind : {"label", "skip"}
            What the answer is.
        label : str or None
            A class of the project (for ``kind="label"``).
        annotator : str
            Who answered.
        source : str
            Where it came from (``"web"``, ``"api"``, ``"import"``, ...).
        round_id : int or None
            The round whose batch it answers; None: the latest finished round.
        view_ms : int or None
            Milliseconds from the image being shown to the answer.
        client_id : str or None
            The sender's id of this answer: an answer re-sent with the same ``annotator`` and
            ``client_id`` is stored once (its first id is returned); the same id with another
            image, kind or label raises ``ValueError``.

        Returns
        -------
        int
            The answer's id, once it is committed.

        Raises
        ------
        ValueError
            An unknown image, kind or label, a bad ``view_ms`` or ``client_id``.
        ImageRetiredError
            The image was retired.
        """
        if kind not in _ANSWER_KINDS:
            raise ValueError(f"kind must be 'label' or 'skip'; got {kind!r}.")
        if kind == "skip":
            label = None
        if not valid_id(image_id):
            raise ValueError(f"There is no image with id {image_id!r} in this project.")
        view_ms = _check_view_ms(view_ms)
        client_id = _check_client_id(client_id)
        with self._tx() as c:
            if client_id is not None:
                sent = c.one("SELECT id, image_id, kind, label FROM answers WHERE annotator = ? "
                             "AND client_id = ?", (annotator, client_id))
                if sent is not None:
                    if (sent["image_id"], sent["kind"], sent["label"]) != (image_id, kind, label):
                        raise ValueError(
                            f"client_id {client_id!r} of {annotator!r} already names answer "
                            f"{sent['id']} ({sent['kind']} {sent['label']!r} on image "
                            f"{sent['image_id']}); a new answer needs a new client_id.")
                    return sent["id"]  # a re-send: stored once
            row = c.one("SELECT retired_at, path FROM images WHERE id = ?", (image_id,))
            if row is None:
                raise ValueError(f"There is no image with id {image_id!r} in this project.")
            if row["retired_at"] is not None:
                raise ImageRetiredError(
                    f"Image {image_id} ({row['path']}) is retired: its file left the image "
                    "folder (its answers are kept). Put it back and rescan to answer it again."
                )
            if kind == "label" and c.one(
                "SELECT 1 FROM classes WHERE name = ?", (label,)
            ) is None:
                raise ValueError(
                    f"{label!r} is not one of the project's classes: {self.classes()}."
                )
            gone = c.one("SELECT removed_at FROM annotators WHERE name = ?", (annotator,))
            if gone is not None and gone["removed_at"] is not None:
                raise AnnotatorError(f"The annotator {annotator!r} was removed from this "
                                     "project; their answers are kept, they take no new ones.")
            answer_id = self._insert_answer(c, image_id, kind, label, annotator, source,
                                            round_id, view_ms, client_id)
            c.execute("UPDATE assignments SET touched_at = ? WHERE annotator = ?",
                      (time.time(), annotator))
            return answer_id

    @classmethod
    def _insert_answer(cls, c, image_id, kind, label, annotator, source, round_id,
                       view_ms=None, client_id=None):
        """Append an answer, make it the annotator's vote and update the image's standing
        answer (inside a transaction)."""
        if round_id is None:
            row = c.one("SELECT max(id) FROM rounds WHERE status = 'done'")
            round_id = row[0] if row else None
        answer_id = c.execute(
            "INSERT INTO answers (image_id, kind, label, round_id, annotator, source, "
            "created_at, view_ms, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (image_id, kind, label, round_id, annotator, source, time.time(), view_ms,
             client_id),
        ).fetchone()[0]
        cls._set_vote(c, image_id, annotator, (answer_id, kind, label))
        return answer_id

    @staticmethod
    def _set_vote(c, image_id, annotator, vote):
        """Set (or, with ``vote=None``, drop) an annotator's vote on an image, then the image's
        standing answer: the majority label of the votes (a tie goes to the label given first),
        else a skip; votes imported from sub-folders count only while no person voted."""
        if vote is None:
            c.execute("DELETE FROM votes WHERE image_id = ? AND annotator = ?",
                      (image_id, annotator))
        else:
            c.execute(
                "INSERT INTO votes (image_id, annotator, answer_id, kind, label) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (image_id, annotator) DO UPDATE SET "
                "answer_id = excluded.answer_id, kind = excluded.kind, label = excluded.label",
                (image_id, annotator, *vote))
        votes = c.execute(
            "SELECT v.answer_id, v.kind, v.label, a.source FROM votes v JOIN answers a "
            "ON a.id = v.answer_id WHERE v.image_id = ? ORDER BY v.answer_id",
            (image_id,)).fetchall()
        people = [v for v in votes if v["source"] != "import"]
        votes = people or votes
        labels = {}
        for v in votes:
            if v["kind"] == "label":
                labels.setdefault(v["label"], []).append(v["answer_id"])
        if labels:  # most votes, then the earliest first vote
            label, ids = min(labels.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
            standing = (ids[0], "label", label)
        elif votes:
            standing = (votes[-1]["answer_id"], "skip", None)
        else:
            c.execute("DELETE FROM current WHERE image_id = ?", (image_id,))
            return
        c.execute(
            "INSERT INTO current (image_id, answer_id, kind, label) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (image_id) DO UPDATE SET answer_id = excluded.answer_id, "
            "kind = excluded.kind, label = excluded.label", (image_id, *standing))

    def undo(self, *, annotator, source, image_id=None):
        """Take back the latest label or skip of ``annotator`` (on ``image_id`` if given).

        The answer stays in the log; an ``undo`` row points at it, the annotator's vote falls
        back to their answer before (or to none), and the image's standing answer follows.
        Other annotators' answers are never undone.

        Parameters
        ----------
        annotator : str
            Whose answer to take back.
        source : str
            Recorded as the source of the ``undo`` row.
        image_id : int or None, default=None
            Only an answer on this image.

        Returns
        -------
        sqlite3.Row or dict or None
            The undone answer, or None when there is nothing to undo.

        Raises
        ------
        NotYourAnswerError
            ``image_id`` is given, ``annotator`` has nothing to undo on it and someone else has.
        """
        with self._tx() as c:
            sql = (
                "SELECT a.* FROM answers a WHERE a.kind IN ('label', 'skip') AND a.annotator = ?"
                " AND NOT EXISTS (SELECT 1 FROM answers u WHERE u.undoes = a.id)"
            )
            params = [annotator]
            if image_id is not None:
                sql += " AND a.image_id = ?"
                params.append(image_id)
            target = c.one(sql + " ORDER BY a.id DESC LIMIT 1", params)
            if target is None:
                if image_id is not None:
                    others = c.execute("SELECT annotator FROM votes WHERE image_id = ? ORDER BY "
                                       "annotator", (image_id,)).fetchall()
                    if others:
                        names = ", ".join(repr(r[0]) for r in others)
                        raise NotYourAnswerError(
                            f"Image {image_id} has no answer of {annotator!r} to undo; its "
                            f"answers are {names}'s: an annotator can undo only their own "
                            "answers.")
                return None
            c.execute(
                "INSERT INTO answers (image_id, kind, undoes, round_id, annotator, source, "
                "created_at) VALUES (?, 'undo', ?, ?, ?, ?, ?)",
                (target["image_id"], target["id"], target["round_id"], annotator, source,
                 time.time()),
            )
            previous = c.one(
                "SELECT a.id, a.kind, a.label FROM answers a WHERE a.image_id = ? AND "
                "a.annotator = ? AND a.kind IN ('label', 'skip') AND NOT EXISTS "
                "(SELECT 1 FROM answers u WHERE u.undoes = a.id) ORDER BY a.id DESC LIMIT 1",
                (target["image_id"], annotator),
            )
            self._set_vote(c, target["image_id"], annotator, None if previous is None else (
                previous["id"], previous["kind"], previous["label"]))
        return target

    def answers(self):
        """Read the whole answer log.

        Returns
        -------
        list of sqlite3.Row
            Every answer (labels, skips, undos), oldest first.
        """
        return self._query("SELECT * FROM answers ORDER BY id")

    def last_answer_id(self):
        """Read the id of the latest answer.

        Returns
        -------
        int
            The largest answer id, 0 when there is none.
        """
        return self._query("SELECT coalesce(max(id), 0) FROM answers")[0][0]


class VotesMixin:
    """What the votes of :class:`~skal.labeling.store.LabelStore` add up to (reads only).

    Every annotator's vote, the label votes as the aggregation sees them, the standing answers
    and the labels a round trains on, and the count of labels per class.

    See Also
    --------
    AnswersMixin : Writes the answers the votes come from.
    skal.labeling.aggregate : Aggregates the votes (majority, Dawid-Skene).

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> [image] = store.update_images(add=[("a.png", "0" * 64, 8, 8, None)])
    >>> for who, label in [("ann", "cat"), ("bob", "dog"), ("cy", "dog")]:
    ...     _ = store.add_answer(image, "label", label, annotator=who, source="api")
    >>> store.vote_triples()
    [(1, 'ann', 'cat'), (1, 'bob', 'dog'), (1, 'cy', 'dog')]
    >>> store.label_counts()
    {'cat': 0, 'dog': 1}
    >>> store.close()
    """

    def votes(self, include_retired=False):
        """List every annotator's standing answer on every image in use.

        Parameters
        ----------
        include_retired : bool, default=False
            Also the votes on retired images.

        Returns
        -------
        list of sqlite3.Row or dict
            Rows (image_id, annotator, kind, label, answer_id, source, view_ms, created_at), by
            image then answer.
        """
        sql = ("SELECT v.image_id, v.annotator, v.kind, v.label, v.answer_id, a.source, "
               "a.view_ms, a.created_at FROM votes v JOIN answers a ON a.id = v.answer_id "
               "JOIN images i ON i.id = v.image_id"
               + ("" if include_retired else " WHERE i.retired_at IS NULL")
               + " ORDER BY v.image_id, v.answer_id")
        return self._query(sql)

    def vote_triples(self):
        """List the label votes on the images in use, as the standing answers count them.

        Imported labels count only where no person answered; the triples are the input of
        :mod:`skal.labeling.aggregate`.

        Returns
        -------
        list of (int, str, str)
            ``(image_id, annotator, label)``, oldest first.
        """
        rows = self.votes()
        by_people = {r["image_id"] for r in rows if r["source"] != "import"}
        return [(r["image_id"], r["annotator"], r["label"]) for r in rows
                if r["kind"] == "label" and (r["source"] != "import"
                                             or r["image_id"] not in by_people)]

    def training_labels(self, aggregation="majority"):
        """The labelled images in use with the label a round trains on.

        Parameters
        ----------
        aggregation : {"majority", "dawid_skene"}, default="majority"
            ``"majority"``: the standing answers (:meth:`current`); ``"dawid_skene"``: the
            labels of :func:`skal.labeling.aggregate.dawid_skene` fitted on every vote.

        Returns
        -------
        rows : list of dict
            Those of :meth:`current` whose kind is ``"label"``, with ``label`` aggregated.
        """
        rows = [dict(r) for r in self.current() if r["kind"] == "label"]
        if aggregation == "majority":
            return rows
        if aggregation != "dawid_skene":
            raise ValueError(f"aggregation must be 'majority' or 'dawid_skene', got "
                             f"{aggregation!r}.")
        from .aggregate import dawid_skene

        labels = dawid_skene(self.vote_triples(), classes=self.classes()).labels
        for r in rows:
            r["label"] = labels.get(r["image_id"], r["label"])
        return rows

    def current(self, include_retired=False):
        """List the standing answer of every answered image in use.

        Parameters
        ----------
        include_retired : bool, default=False
            Also list the retired images.

        Returns
        -------
        list of sqlite3.Row
            Rows (image_id, path, sha256, kind, label, annotator, created_at, answer_id),
            by image id.
        """
        sql = ("SELECT i.id AS image_id, i.path, i.sha256, c.kind, c.label, a.annotator, "
               "a.created_at, c.answer_id FROM current c JOIN images i ON i.id = c.image_id "
               "JOIN answers a ON a.id = c.answer_id"
               + ("" if include_retired else " WHERE i.retired_at IS NULL") + " ORDER BY i.id")
        return self._query(sql)

    def label_counts(self):
        """Count the images in use labelled with each class.

        Returns
        -------
        dict of str to int
            ``{class: count}`` for every class, zeros included, in class order.
        """
        rows = self._query(
            "SELECT k.name, count(i.id) FROM classes k LEFT JOIN current c "
            "ON c.label = k.name AND c.kind = 'label' LEFT JOIN images i "
            "ON i.id = c.image_id AND i.retired_at IS NULL GROUP BY k.name ORDER BY k.position"
        )
        return {name: n for name, n in rows}
