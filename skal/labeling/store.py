"""The state of a labelling project in one SQLite file (``PROJECT/skal.db``), or on PostgreSQL.

A ``postgresql://`` URL (``PROJECT/skal.store`` names it) opens the same tables on a PostgreSQL
server with the same guarantees (:mod:`skal.labeling.store_pg`); the rest of this page describes
SQLite's side (:mod:`skal.labeling.store_sqlite`).

Tables (:mod:`skal.labeling.schema`): ``meta`` (schema version, configuration), ``classes``,
``images`` (path relative to the image folder, content hash, size; ``retired_at`` is set when the
file left the folder, which keeps the image's answers but takes it out of the pool, the batches
and training), ``answers`` (an append-only log: every label, skip and undo with its annotator,
time and source), ``current`` (the standing answer per image, kept in step with ``answers``
inside the same transaction), ``rounds`` (train + query runs: status, strategy, the labels they
saw, held-out accuracy, the checkpoint file they wrote) and ``queries`` (the batch each round
picked, with the model's guess and confidence).

The database is in WAL mode with ``synchronous=FULL``; every write is one ``BEGIN IMMEDIATE`` ...
``COMMIT`` transaction, and a method returns only after its commit, so an answer that was
acknowledged survives a ``kill -9`` of the process (or a power cut) at any later moment. Several
processes may write at once: SQLite serialises them (``busy_timeout``). All SQL takes user values
as parameters, never as text (and is written to run on both backends: ``ON CONFLICT`` and
``RETURNING`` rather than SQLite's ``INSERT OR ...`` and ``lastrowid``).

The process running a round holds an ``fcntl.flock`` on ``round.lock`` beside the database (as
``skal run`` does with its run folder): the kernel releases it when that process ends, however it
ends, so a round left ``running`` by a process that is gone (or whose pid was reused, or on another
host) is recognised as stale and never blocks the next one. Where there is no ``fcntl`` (Windows)
a round is stale when its pid is not alive on this host.

Schema version 2 added ``images.retired_at`` and ``images.retired_reason``; version 3 added
``answers.view_ms`` (milliseconds from the page's view of the image to the answer),
``answers.client_id`` (the sender's id of an answer: a re-sent answer is stored once),
``votes`` (the standing answer of each annotator on each image: several annotators' answers on
one image are kept side by side, none replaces another's), ``annotators`` (names with a token)
and ``assignments`` (which annotator holds which item of a batch). An older database is migrated
when it is opened, every answer kept.

The standing answer of an image (``current``) is the majority of its annotators' votes: the
label most of them gave, a tie going to the label given first; a skip when all of them skipped.
Labels imported from class sub-folders count only until a person answers the image.

:class:`LabelStore` holds the connection (:func:`skal.labeling.backends.open_backend` chooses
the backend) and its transactions; its methods come in one mixin per concern:
:class:`~skal.labeling.store_images.ImagesMixin`,
:class:`~skal.labeling.store_answers.AnswersMixin` and
:class:`~skal.labeling.store_answers.VotesMixin`,
:class:`~skal.labeling.store_annotators.AnnotatorsMixin` and
:class:`~skal.labeling.store_annotators.AssignmentsMixin`,
:class:`~skal.labeling.store_rounds.RoundsMixin`.
"""

import json
import os
import time

# Absolute imports: the tests load this file on its own (a writer process that starts without
# numpy or torch), and there a relative import has no package to start from. Every module below
# imports only the standard library.
from skal.labeling.backends import is_url, open_backend
from skal.labeling.schema import SCHEMA_VERSION
from skal.labeling.store_annotators import AnnotatorsMixin, AssignmentsMixin
from skal.labeling.store_answers import (
    AnnotatorError,
    AnswersMixin,
    ImageRetiredError,
    NotYourAnswerError,
    VotesMixin,
)
from skal.labeling.store_images import ImagesMixin
from skal.labeling.store_rounds import ROUND_LOCK, RoundRunningError, RoundsMixin

__all__ = ["DB_NAME", "STORE_FILE", "AnnotatorError", "ImageRetiredError", "LabelStore",
           "NotYourAnswerError", "ROUND_LOCK", "RoundRunningError", "SCHEMA_VERSION",
           "project_store"]

DB_NAME = "skal.db"
#: The file (in the project folder) naming a project's store when it is not ``skal.db``: one line,
#: a ``postgresql://`` URL.
STORE_FILE = "skal.store"


def project_store(project_dir):
    """Where the store of the project in ``project_dir`` is.

    Parameters
    ----------
    project_dir : str or path-like
        The project folder.

    Returns
    -------
    location : str or None
        The path of its ``skal.db``, else the ``postgresql://`` URL written in its
        ``skal.store``, else None.
    """
    db = os.path.join(os.fspath(project_dir), DB_NAME)
    if os.path.isfile(db):
        return db
    marker = os.path.join(os.fspath(project_dir), STORE_FILE)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            url = f.read().strip()
        return url or None
    return None


class LabelStore(ImagesMixin, AnswersMixin, VotesMixin, AnnotatorsMixin, AssignmentsMixin,
                 RoundsMixin):
    """Open (or create, with :meth:`create`) the store of a labelling project.

    The store holds the images (by path and SHA-256), the append-only log of answers, every
    annotator's vote and each image's standing answer, the annotators, and the rounds with their
    batches. Every write is one committed transaction.

    Parameters
    ----------
    path : str or path-like
        The SQLite database file, or a ``postgresql://`` URL (psycopg 3 is needed then; see
        :mod:`skal.labeling.store_pg`).
    lock_dir : str or None, default=None
        The folder of the round lock file; None: the SQLite file's folder (required for a URL).
    _create : bool, default=False
        Internal: :meth:`create` opens a store that does not exist yet.

    See Also
    --------
    skal.labeling.Project : The labelling project built on this store.

    Notes
    -----
    One object may be shared by threads (calls are serialised by a lock); other processes may
    open the same store at the same time.

    This class holds the connection and its transactions, the schema's creation and migration,
    the configuration and the classes; the rest comes from one mixin per concern: the images
    (:class:`~skal.labeling.store_images.ImagesMixin`), the answers and undos
    (:class:`~skal.labeling.store_answers.AnswersMixin`), what the votes add up to
    (:class:`~skal.labeling.store_answers.VotesMixin`), the annotators and their tokens
    (:class:`~skal.labeling.store_annotators.AnnotatorsMixin`), who holds which batch item
    (:class:`~skal.labeling.store_annotators.AssignmentsMixin`) and the rounds
    (:class:`~skal.labeling.store_rounds.RoundsMixin`).

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> path = os.path.join(tempfile.mkdtemp(), "skal.db")
    >>> store = LabelStore.create(path, ["cat", "dog"], {"strategy": "bald"})
    >>> store.classes(), store.config()
    (['cat', 'dog'], {'strategy': 'bald'})
    >>> store.close()
    """

    def __init__(self, path, *, lock_dir=None, _create=False):
        location = path if is_url(path) else os.fspath(path)
        if lock_dir is None:
            if is_url(location):
                raise ValueError("lock_dir must be the project folder for a PostgreSQL store, "
                                 "got None.")
            lock_dir = os.path.dirname(os.path.abspath(location))
        self._db = open_backend(location, _create)
        self.location = location  # the file's path, or the URL as given
        self.path = self._db.name  # the file, or the URL without its password
        self.backend = self._db.kind
        self._lock = self._db.lock
        self._lock_path = os.path.join(os.fspath(lock_dir), ROUND_LOCK)
        self._held = None  # (round id, _RoundLock or None) while this object runs a round
        try:
            if not _create:
                self._check_version()
        except self._db.database_errors as exc:
            self._db.close()
            raise ValueError(f"{self.path!r} is not a skal labelling project database "
                             f"({exc}).") from None
        except BaseException:
            self._db.close()
            raise

    @property
    def _conn(self):
        """The SQLite connection (the tests' window on the PRAGMAs)."""
        return self._db.conn

    def _check_version(self):
        """Accept the current schema; migrate an older one (one transaction); refuse others."""
        try:
            version = self.meta("schema_version") if self._db.exists() else None
            version = int(version) if version is not None else None
        except (*self._db.database_errors, ValueError):
            version = None
        if version is not None and version > SCHEMA_VERSION:
            raise ValueError(
                f"{self.path!r} was made by a newer version of skal (schema version {version}; "
                f"this one reads up to {SCHEMA_VERSION}): upgrade skal to open it."
            )
        if version is None or version < 1:
            raise ValueError(
                f"{self.path!r} is not a skal labelling project database (expected schema "
                f"version {SCHEMA_VERSION}, found {version!r})."
            )
        if version < SCHEMA_VERSION:
            self._db.migrate(self)

    # ------------------------------------------------------------------ plumbing
    @classmethod
    def create(cls, path, classes, config, *, lock_dir=None):
        """Create a new store with its classes and configuration.

        Parameters
        ----------
        path : str or path-like
            The SQLite file to create, or a ``postgresql://`` URL of an empty database.
        classes : sequence of str
            The class names, in their order.
        config : dict
            The project configuration (JSON-serialisable).
        lock_dir : str or None, default=None
            The folder of the round lock file (see :class:`LabelStore`).

        Returns
        -------
        LabelStore
            The open store.

        Raises
        ------
        FileExistsError
            If the file exists (or the PostgreSQL database already holds a project).
        """
        if not is_url(path):
            path = os.fspath(path)
            if os.path.exists(path):
                raise FileExistsError(f"{path!r} already exists; open it instead of creating it.")
        store = cls(path, lock_dir=lock_dir, _create=True)
        try:
            with store._tx() as c:
                if store._db.exists():
                    raise FileExistsError(f"{store.path!r} already holds a labelling project; "
                                          "open it instead of creating it.")
                for statement in store._db.schema():
                    c.execute(statement)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                c.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config),))
                c.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(time.time()),))
                c.executemany(
                    "INSERT INTO classes (name, position) VALUES (?, ?)",
                    [(name, i) for i, name in enumerate(classes)],
                )
        except BaseException:
            store.close()
            raise
        return store

    def _tx(self):
        """One write transaction, serialised with every other writer of the store, committed
        when the block ends and rolled back on any error."""
        return self._db.tx()

    def _query(self, sql, params=()):
        return self._db.query(sql, params)

    def close(self):
        """Close the connection and release a round lock this object holds.

        On SQLite, closing runs a checkpoint that folds the WAL back into the database file.
        """
        with self._lock:
            if self._held is not None and self._held[1] is not None:
                self._held[1].release()
            self._held = None
            self._db.close()

    def integrity_check(self):
        """Check that the store is sound.

        Returns
        -------
        str
            ``"ok"`` for a sound store (SQLite's ``PRAGMA integrity_check``; on PostgreSQL the
            agreement of ``votes`` and ``current`` with the answer log), else the first finding.
        """
        return self._db.integrity_check()

    # ------------------------------------------------------------------ meta, classes
    def meta(self, key):
        """Read a value of the ``meta`` table.

        Parameters
        ----------
        key : str
            For instance ``"schema_version"`` or ``"config"``.

        Returns
        -------
        str or None
            The stored text, or None when the key is absent.
        """
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def config(self):
        """Read the project configuration.

        Returns
        -------
        dict
            The configuration stored by :meth:`create` or :meth:`set_config`.
        """
        return json.loads(self.meta("config"))

    def set_config(self, config):
        """Replace the project configuration (one transaction).

        Parameters
        ----------
        config : dict
            The new configuration (JSON-serialisable).
        """
        with self._tx() as c:
            c.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))

    def classes(self):
        """Read the class names.

        Returns
        -------
        list of str
            The class names, in their order.
        """
        return [r[0] for r in self._query("SELECT name FROM classes ORDER BY position")]
