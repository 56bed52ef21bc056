"""The annotators of a labelling project's store, with their tokens, and who holds which item.

``annotators`` holds the registered names with the SHA-256 of their token (a token is shown
once, never stored); a removed annotator keeps their answers and takes no new ones.
``assignments`` says which annotator holds which item of a round's batch: each item goes to at
most ``overlap`` annotators, and the unanswered items of an annotator not seen for a while go
to others.
"""

import hashlib
import secrets
import time

__all__ = ["AnnotatorsMixin", "AssignmentsMixin"]


def _token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AnnotatorsMixin:
    """The annotators of :class:`~skal.labeling.store.LabelStore` and their tokens.

    A registered name answers only with its token; removing an annotator revokes the token and
    keeps every answer they gave.

    See Also
    --------
    AssignmentsMixin : Shares a batch among the annotators.
    skal.labeling.store.LabelStore : The store it is mixed into.

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> token = store.add_annotator("ann")
    >>> store.annotator_for_token(token)
    'ann'
    >>> store.remove_annotator("ann")
    >>> store.annotator_for_token(token) is None, store.is_registered("ann")
    (True, True)
    >>> store.close()
    """

    def add_annotator(self, name, *, replace=False):
        """Register an annotator with a new token and return the token.

        The token is shown once: only its SHA-256 is stored. A registered name answers only with its
        token.

        Parameters
        ----------
        name : str
            A valid annotator name.
        replace : bool, default=False
            Give an existing (or removed) annotator a new token; the old one stops working.

        Returns
        -------
        token : str
            The annotator's new token.
        """
        from .settings import check_name

        check_name(name, "annotator")
        token = secrets.token_urlsafe(24)
        with self._tx() as c:
            known = c.one("SELECT name FROM annotators WHERE name = ?", (name,))
            if known is not None and not replace:
                raise ValueError(f"The annotator {name!r} is already registered; give "
                                 "replace=True (--replace) for a new token.")
            c.execute(
                "INSERT INTO annotators (name, token_sha256, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET token_sha256 = excluded.token_sha256, "
                "removed_at = NULL", (name, _token_hash(token), time.time()))
        return token

    def remove_annotator(self, name):
        """Revoke an annotator's token; their answers are kept.

        The name takes no new answers until :meth:`add_annotator` with ``replace=True``.

        Parameters
        ----------
        name : str
            A registered annotator.

        Raises
        ------
        ValueError
            If ``name`` is not a registered annotator.
        """
        with self._tx() as c:
            updated = c.execute("UPDATE annotators SET token_sha256 = NULL, removed_at = ? "
                                "WHERE name = ?", (time.time(), name)).rowcount
        if updated != 1:
            raise ValueError(f"There is no registered annotator {name!r}; registered: "
                             f"{[r['name'] for r in self.annotators()]}.")

    def annotators(self):
        """List the registered annotators.

        Returns
        -------
        list of sqlite3.Row or dict
            Rows (name, created_at, removed_at), by name.
        """
        return self._query("SELECT name, created_at, removed_at FROM annotators ORDER BY name")

    def annotator_for_token(self, token):
        """Find the annotator whose token this is.

        Parameters
        ----------
        token : str
            A token given by :meth:`add_annotator`.

        Returns
        -------
        str or None
            The annotator's name, or None (also for a removed annotator or a malformed token).
        """
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        rows = self._query("SELECT name FROM annotators WHERE token_sha256 = ? AND "
                           "removed_at IS NULL", (_token_hash(token),))
        return rows[0][0] if rows else None

    def is_registered(self, name):
        """Tell whether ``name`` is a registered annotator (removed ones included).

        Parameters
        ----------
        name : str
            The annotator's name.

        Returns
        -------
        bool
            True when the name was registered with :meth:`add_annotator`.
        """
        return bool(self._query("SELECT 1 FROM annotators WHERE name = ?", (name,)))


class AssignmentsMixin:
    """Who holds which item of a round's batch in :class:`~skal.labeling.store.LabelStore`.

    Each annotator holds a few unanswered items at a time, each item goes to at most
    ``overlap`` annotators, and an absent annotator's unanswered items go back to the others
    (:meth:`assign`, one transaction).

    See Also
    --------
    AnnotatorsMixin : The annotators.
    skal.labeling.settings.team_settings : The project's ``overlap``, size and timeout.

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> ids = store.update_images(add=[(f"{i}.png", f"{i:064x}", 8, 8, None) for i in range(4)])
    >>> round_id = store.begin_round("random_sampling", None, {})
    >>> store.finish_round(round_id, [(i, None, None, None) for i in ids], n_labeled=0,
    ...                    n_train=0, n_holdout=0, accuracy=None)
    >>> store.assign(round_id, "ann", size=2), store.assign(round_id, "bob", size=2)
    ([1, 2], [3, 4])
    >>> store.close()
    """

    def assign(self, round_id, annotator, *, size, overlap=1, timeout=900.0, now=None):
        """Return the items of a round's batch that ``annotator`` holds, assigning more.

        In one transaction: up to ``size`` unanswered items each, every item to at most ``overlap``
        annotators (those who answered it and those holding it). Calling it (or answering) keeps an
        annotator's items theirs; the unanswered items of one not seen for ``timeout`` seconds go to
        others.

        Parameters
        ----------
        round_id : int
            The round whose batch is shared.
        annotator : str
            Who asks for items.
        size : int
            Unanswered items each annotator holds at most.
        overlap : int, default=1
            Annotators per item at most.
        timeout : float, default=900.0
            Seconds after which an absent annotator's unanswered items are released.
        now : float or None, default=None
            The current time (``time.time()``); for tests.

        Returns
        -------
        image_ids : list of int
            The annotator's items of the batch (answered ones included), best first.
        """
        now = time.time() if now is None else now
        with self._tx() as c:
            c.execute(
                "DELETE FROM assignments WHERE round_id = ? AND touched_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM votes v WHERE v.image_id = assignments.image_id AND "
                "v.annotator = assignments.annotator)", (round_id, now - timeout))
            c.execute("UPDATE assignments SET touched_at = ? WHERE annotator = ?",
                      (now, annotator))
            batch = [r[0] for r in c.execute(
                "SELECT q.image_id FROM queries q JOIN images i ON i.id = q.image_id WHERE "
                "q.round_id = ? AND i.retired_at IS NULL ORDER BY q.position",
                (round_id,)).fetchall()]
            holders = {}
            for image_id, who in c.execute(
                    "SELECT image_id, annotator FROM assignments WHERE round_id = ? UNION "
                    "SELECT v.image_id, v.annotator FROM votes v JOIN queries q ON "
                    "q.image_id = v.image_id AND q.round_id = ?", (round_id, round_id)):
                holders.setdefault(image_id, set()).add(who)
            voted = {r[0] for r in c.execute("SELECT image_id FROM votes WHERE annotator = ?",
                                             (annotator,)).fetchall()}
            mine = {i for i in batch if annotator in holders.get(i, ())}
            open_ = len(mine - voted)
            for image_id in batch:
                if open_ >= size:
                    break
                if image_id in mine or len(holders.get(image_id, ())) >= overlap:
                    continue
                c.execute("INSERT INTO assignments (round_id, image_id, annotator, assigned_at, "
                          "touched_at) VALUES (?, ?, ?, ?, ?)",
                          (round_id, image_id, annotator, now, now))
                mine.add(image_id)
                open_ += 1
        return [i for i in batch if i in mine]
