"""The state of a labelling project in one SQLite file (``PROJECT/skal.db``), or on PostgreSQL.

A ``postgresql://`` URL (``PROJECT/skal.store`` names it) opens the same tables on a PostgreSQL
server with the same guarantees (:mod:`skal.labeling.store_pg`); the rest of this page describes
SQLite's side.

Tables: ``meta`` (schema version, configuration), ``classes``, ``images`` (path relative to the
image folder, content hash, size; ``retired_at`` is set when the file left the folder, which keeps
the image's answers but takes it out of the pool, the batches and training), ``answers`` (an
append-only log: every label, skip and undo with its annotator, time and source), ``current``
(the standing answer per image, kept in step with ``answers`` inside the same transaction),
``rounds`` (train + query runs: status, strategy, the labels they saw, held-out accuracy, the
checkpoint file they wrote) and ``queries`` (the batch each round picked, with the model's guess
and confidence).

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
"""

import contextlib
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import threading
import time

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not on Windows: the pid check is used there
    _fcntl = None

__all__ = ["DB_NAME", "STORE_FILE", "AnnotatorError", "ImageRetiredError", "LabelStore",
           "NotYourAnswerError", "ROUND_LOCK", "RoundRunningError", "SCHEMA_VERSION",
           "project_store"]

DB_NAME = "skal.db"
#: The file (in the project folder) naming a project's store when it is not ``skal.db``: one line,
#: a ``postgresql://`` URL.
STORE_FILE = "skal.store"
#: The lock file (beside the database) held by the process running a round.
ROUND_LOCK = "round.lock"
SCHEMA_VERSION = 3
#: Longest ``client_id`` of an answer.
MAX_CLIENT_ID = 100
#: Largest ``view_ms`` of an answer (24.8 days).
MAX_VIEW_MS = 2**31 - 1
# the range of an SQLite INTEGER; a larger Python int is no image's id
_MAX_ID = 2**63 - 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    height INTEGER,
    width INTEGER,
    added_at REAL NOT NULL,
    retired_at REAL,
    retired_reason TEXT
);
CREATE UNIQUE INDEX images_path_in_use ON images(path) WHERE retired_at IS NULL;
CREATE INDEX images_sha256 ON images(sha256);
CREATE TABLE answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'undo')),
    label TEXT REFERENCES classes(name),
    undoes INTEGER REFERENCES answers(id),
    round_id INTEGER REFERENCES rounds(id),
    annotator TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    view_ms INTEGER CHECK (view_ms IS NULL OR view_ms >= 0),
    client_id TEXT,
    CHECK ((kind = 'label') = (label IS NOT NULL)),
    CHECK ((kind = 'undo') = (undoes IS NOT NULL))
);
CREATE INDEX answers_image ON answers(image_id);
CREATE INDEX answers_annotator ON answers(annotator, id);
CREATE UNIQUE INDEX answers_undone_once ON answers(undoes) WHERE undoes IS NOT NULL;
CREATE UNIQUE INDEX answers_client ON answers(annotator, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE votes (
    image_id INTEGER NOT NULL REFERENCES images(id),
    annotator TEXT NOT NULL,
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip')),
    label TEXT REFERENCES classes(name),
    PRIMARY KEY (image_id, annotator)
);
CREATE INDEX votes_annotator ON votes(annotator);
CREATE TABLE annotators (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT UNIQUE,
    created_at REAL NOT NULL,
    removed_at REAL
);
CREATE TABLE current (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip')),
    label TEXT REFERENCES classes(name)
);
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    strategy TEXT NOT NULL,
    model TEXT,
    params TEXT,
    pid INTEGER,
    host TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    last_answer_id INTEGER,
    n_labeled INTEGER,
    n_train INTEGER,
    n_holdout INTEGER,
    accuracy REAL,
    checkpoint TEXT,
    checkpoint_sha256 TEXT,
    error TEXT
);
CREATE TABLE queries (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    position INTEGER NOT NULL,
    score REAL,
    guess TEXT REFERENCES classes(name),
    confidence REAL,
    PRIMARY KEY (round_id, image_id)
);
CREATE TABLE assignments (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    annotator TEXT NOT NULL,
    assigned_at REAL NOT NULL,
    touched_at REAL NOT NULL,
    PRIMARY KEY (round_id, image_id, annotator)
);
"""

# the standing answer of every (image, annotator): their latest label or skip not undone
_STANDING_VOTES = (
    "SELECT a.image_id, a.annotator, a.id, a.kind, a.label FROM answers a "
    "WHERE a.kind IN ('label', 'skip') AND NOT EXISTS (SELECT 1 FROM answers u WHERE u.undoes = a.id) "
    "AND a.id = (SELECT max(b.id) FROM answers b WHERE b.image_id = a.image_id "
    "AND b.annotator = a.annotator AND b.kind IN ('label', 'skip') "
    "AND NOT EXISTS (SELECT 1 FROM answers w WHERE w.undoes = b.id))"
)

# schema version N -> N + 1: statements run in one transaction (foreign keys off, checked after)
# when an older database is opened. 1 -> 2: images gain retired_at / retired_reason, and a path is
# unique among the images in use only (a retired image keeps its last path); SQLite cannot drop
# a UNIQUE constraint, so the table is rebuilt (https://sqlite.org/lang_altertable.html#otheralter)
_MIGRATIONS = {
    1: ("CREATE TABLE images_v2 (id INTEGER PRIMARY KEY, path TEXT NOT NULL, "
        "sha256 TEXT NOT NULL, height INTEGER, width INTEGER, added_at REAL NOT NULL, "
        "retired_at REAL, retired_reason TEXT)",
        "INSERT INTO images_v2 (id, path, sha256, height, width, added_at) "
        "SELECT id, path, sha256, height, width, added_at FROM images",
        "DROP TABLE images",
        "ALTER TABLE images_v2 RENAME TO images",
        "CREATE UNIQUE INDEX images_path_in_use ON images(path) WHERE retired_at IS NULL",
        "CREATE INDEX images_sha256 ON images(sha256)"),
    # 2 -> 3: answers gain view_ms and client_id; votes (filled from the log), annotators and
    # assignments are new. The standing answers (current) are kept as they were.
    2: ("ALTER TABLE answers ADD COLUMN view_ms INTEGER CHECK (view_ms IS NULL OR view_ms >= 0)",
        "ALTER TABLE answers ADD COLUMN client_id TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS answers_client ON answers(annotator, client_id) "
        "WHERE client_id IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS votes (image_id INTEGER NOT NULL REFERENCES images(id), annotator TEXT NOT "
        "NULL, answer_id INTEGER NOT NULL REFERENCES answers(id), kind TEXT NOT NULL CHECK (kind "
        "IN ('label', 'skip')), label TEXT REFERENCES classes(name), "
        "PRIMARY KEY (image_id, annotator))",
        "CREATE INDEX IF NOT EXISTS votes_annotator ON votes(annotator)",
        "INSERT INTO votes (image_id, annotator, answer_id, kind, label) " + _STANDING_VOTES
        + " ON CONFLICT DO NOTHING",
        "CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, token_sha256 TEXT UNIQUE, "
        "created_at REAL NOT NULL, removed_at REAL)",
        "CREATE TABLE IF NOT EXISTS assignments (round_id INTEGER NOT NULL REFERENCES rounds(id), image_id "
        "INTEGER NOT NULL REFERENCES images(id), annotator TEXT NOT NULL, assigned_at REAL NOT "
        "NULL, touched_at REAL NOT NULL, PRIMARY KEY (round_id, image_id, annotator))"),
}

_ANSWER_KINDS = ("label", "skip")


class RoundRunningError(RuntimeError):
    """A round of the project is being run by a live process (it holds the round lock).

    Raised by :meth:`LabelStore.begin_round` and :meth:`LabelStore.unlock`; the message names the
    process and its host.

    See Also
    --------
    LabelStore.unlock : Clears rounds left running by processes that are gone.

    Examples
    --------
    >>> issubclass(RoundRunningError, RuntimeError)
    True
    """


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


def _token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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


def is_url(location):
    """Whether a store location is a PostgreSQL URL (else it is an SQLite file's path).

    Parameters
    ----------
    location : str or path-like

    Returns
    -------
    bool
    """
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def _valid_id(image_id):
    """Whether ``image_id`` is an int that SQLite can hold (bool excluded)."""
    return isinstance(image_id, int) and not isinstance(image_id, bool) and (
        -_MAX_ID - 1 <= image_id <= _MAX_ID)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _RoundLock:
    """An exclusive ``fcntl.flock`` on the round lock file, without waiting.

    The file holds the owner's pid, host and round, for the messages; the lock itself is what
    counts (the kernel drops it when its process ends).
    """

    def __init__(self, path):
        self.path = path
        self._fd = None

    def acquire(self, wait=0.0):
        """Take the lock, retrying for ``wait`` seconds; False when another process (or another
        open file of this one) holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + wait
        while True:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
                continue
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return True

    def write_owner(self, round_id):
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "round": round_id}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(owner).encode(), 0)

    def owner(self):
        """The ``{"pid", "host", "round"}`` written by the holder ({} when unknown)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                owner = json.loads(f.read() or "{}")
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def release(self):
        if self._fd is not None:
            _fcntl.flock(self._fd, _fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _SQLite:
    """The SQLite backend: one connection in WAL mode with ``synchronous=FULL``."""

    kind = "sqlite"

    def __init__(self, path, create):
        self.path = os.fspath(path)
        self.name = self.path
        if not create and not os.path.isfile(self.path):
            raise FileNotFoundError(f"There is no labelling project database at {self.path!r}.")
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                    check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA busy_timeout = 30000")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":  # pragma: no cover (e.g. a network file system)
                raise OSError(f"SQLite could not put {self.path!r} in WAL mode (got {mode!r}).")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:  # not an SQLite file, or a damaged one
            self.conn.close()
            raise ValueError(f"{self.path!r} is not a skal labelling project database "
                             f"(SQLite: {exc}).") from None
        except BaseException:
            self.conn.close()
            raise

    database_errors = (sqlite3.OperationalError, sqlite3.DatabaseError)

    def exists(self):
        return bool(self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone())

    def schema(self):
        return [s for s in _SCHEMA.split(";") if s.strip()]

    @contextlib.contextmanager
    def tx(self):
        """``BEGIN IMMEDIATE`` (takes the write lock up front, so two writers never deadlock on
        an upgrade) ... ``COMMIT``; rolled back on any error."""
        with self.lock:
            cursor = _Cursor(self.conn)
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql, params=()):
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def migrate(self, store):
        with self.lock:
            self.conn.execute("PRAGMA foreign_keys = OFF")  # (a no-op inside a transaction)
            try:
                with self.tx() as c:
                    # read again inside the write lock: another process may have migrated it
                    current = int(c.one(
                        "SELECT value FROM meta WHERE key = 'schema_version'")[0])
                    for step in range(current, SCHEMA_VERSION):
                        for statement in _MIGRATIONS[step]:
                            if statement.startswith("ALTER TABLE answers ADD COLUMN ") and (
                                    statement.split()[5] in {
                                        r[1] for r in c.execute("PRAGMA table_info(answers)")}):
                                continue  # (a database whose version was set back by hand)
                            c.execute(statement)
                    broken = c.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:  # pragma: no cover - rolled back, the file is left as it was
                        raise ValueError(f"Migrating {self.path!r} would break "
                                         f"{len(broken)} references; it was left unchanged.")
                    c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                              (str(SCHEMA_VERSION),))
            finally:
                self.conn.execute("PRAGMA foreign_keys = ON")

    def integrity_check(self):
        return self.query("PRAGMA integrity_check")[0][0]

    def close(self):
        with self.lock:
            self.conn.close()


def _backend(location, create):
    if is_url(location):
        from .store_pg import PostgresBackend

        return PostgresBackend(location, create)
    return _SQLite(location, create)


class LabelStore:
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
        self._db = _backend(location, _create)
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

    # ------------------------------------------------------------------ meta, classes, images
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
            if not _valid_id(image_id):
                return None
            rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        else:
            rows = self._query("SELECT * FROM images WHERE path = ? ORDER BY "
                               "retired_at IS NOT NULL, retired_at DESC LIMIT 1", (path,))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ answers
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
        if not _valid_id(image_id):
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

    # ------------------------------------------------------------------ annotators
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

    # ------------------------------------------------------------------ assignments
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

    def answers(self):
        """Read the whole answer log.

        Returns
        -------
        list of sqlite3.Row
            Every answer (labels, skips, undos), oldest first.
        """
        return self._query("SELECT * FROM answers ORDER BY id")

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

    def last_answer_id(self):
        """Read the id of the latest answer.

        Returns
        -------
        int
            The largest answer id, 0 when there is none.
        """
        return self._query("SELECT coalesce(max(id), 0) FROM answers")[0][0]

    # ------------------------------------------------------------------ rounds and queries
    def _running_rows(self):
        return self._query("SELECT * FROM rounds WHERE status = 'running' ORDER BY id")

    def _lock_is_free(self):
        """Whether no process holds the round lock (taken and dropped at once); None where there
        is no ``fcntl``. This object's own round counts as held."""
        if _fcntl is None:
            return None
        with self._lock:
            if self._held is not None:
                return False
        probe = _RoundLock(self._lock_path)
        try:
            if not probe.acquire():
                return False
        except OSError:  # e.g. a read-only project folder: nothing can start a round here
            return False
        probe.release()
        return True

    def _stale_by_pid(self, rows):
        host = socket.gethostname()
        return [r["id"] for r in rows
                if r["host"] == host and r["pid"] is not None and not _pid_alive(r["pid"])]

    def _interrupt(self, ids):
        if ids:
            with self._tx() as c:
                c.executemany(
                    "UPDATE rounds SET status = 'interrupted', finished_at = ? "
                    "WHERE id = ? AND status = 'running'",
                    [(time.time(), i) for i in ids],
                )
        return list(ids)

    def running_round(self):
        """Find the round a live process is running now.

        Returns
        -------
        sqlite3.Row or None
            The round, or None.
        """
        rows = self._running_rows()
        if not rows:
            return None
        free = self._lock_is_free()
        if free is None:
            stale = set(self._stale_by_pid(rows))
            rows = [r for r in rows if r["id"] not in stale]
            return rows[-1] if rows else None
        return None if free else rows[-1]

    def mark_interrupted(self):
        """Mark the rounds left ``running`` by a process that is gone as ``interrupted``.

        A round is left running when no process holds the round lock; without ``fcntl``, when it
        ran on this host and its pid is not alive.

        Returns
        -------
        list of int
            The ids of the rounds marked.
        """
        rows = self._running_rows()
        if not rows:
            return []
        if _fcntl is None:
            return self._interrupt(self._stale_by_pid(rows))
        with self._lock:
            if self._held is not None:
                return self._interrupt([r["id"] for r in rows if r["id"] != self._held[0]])
        probe = _RoundLock(self._lock_path)
        try:
            if not probe.acquire():
                return []
        except OSError:
            return []
        try:  # holding the lock: no round can start meanwhile
            return self._interrupt([r["id"] for r in self._running_rows()])
        finally:
            probe.release()

    def unlock(self):
        """Mark every round left ``running`` as ``interrupted``, unless a live process runs one.

        Where there is no ``fcntl`` (Windows) every running round is marked: call it only when
        you know that no round is running.

        Returns
        -------
        list of int
            The ids of the rounds marked.

        Raises
        ------
        RoundRunningError
            If a live process holds the round lock.
        """
        if _fcntl is None:
            return self._interrupt([r["id"] for r in self._running_rows()])
        probe = _RoundLock(self._lock_path)
        if self._held is not None or not probe.acquire():
            raise RoundRunningError(self._busy_message(probe.owner(), "is still running"))
        try:
            return self._interrupt([r["id"] for r in self._running_rows()])
        finally:
            probe.release()

    def _busy_message(self, owner, verb="is already running"):
        rows = self._running_rows()
        round_id = owner.get("round") or (rows[-1]["id"] if rows else "?")
        pid = owner.get("pid") or (rows[-1]["pid"] if rows else "?")
        host = owner.get("host") or (rows[-1]["host"] if rows else "?")
        return (f"Round {round_id} of this project {verb} (process {pid} on {host}, which "
                f"holds {self._lock_path}); wait for it to finish, or stop that process.")

    def begin_round(self, strategy, model, params):
        """Start a round: insert it as ``running`` (committed at once) and hold the round lock.

        Rounds left ``running`` by processes that are gone become ``interrupted`` first.

        Parameters
        ----------
        strategy : str
            The query strategy's name.
        model : str or None
            The estimator's description (None for the first, random batch).
        params : dict
            The round's training settings (JSON-serialisable).

        Returns
        -------
        int
            The round's id; the lock is held until :meth:`finish_round` or :meth:`fail_round`.

        Raises
        ------
        RoundRunningError
            If a live process is already running a round of this project.
        """
        with self._lock:
            if self._held is not None:
                raise RoundRunningError(
                    f"Round {self._held[0]} of this project is already running in this process; "
                    "wait for it to finish.")
        lock = None
        if _fcntl is not None:
            lock = _RoundLock(self._lock_path)
            if not lock.acquire(wait=1.0):  # (a probe of another process holds it briefly)
                raise RoundRunningError(self._busy_message(lock.owner()))
        else:
            self.mark_interrupted()
        try:
            with self._tx() as c:
                if lock is not None:  # whoever left a round running holds no lock: stale
                    c.execute("UPDATE rounds SET status = 'interrupted', finished_at = ? "
                              "WHERE status = 'running'", (time.time(),))
                else:
                    running = c.one("SELECT id, pid, host FROM rounds WHERE status = 'running'")
                    if running is not None:
                        raise RoundRunningError(
                            f"Round {running['id']} of this project is already running "
                            f"(process {running['pid']} on {running['host']}); wait for it to "
                            "finish, or run 'skal label unlock' if that process is gone.")
                round_id = c.execute(
                    "INSERT INTO rounds (status, strategy, model, params, pid, host, started_at, "
                    "last_answer_id) VALUES ('running', ?, ?, ?, ?, ?, ?, "
                    "(SELECT coalesce(max(id), 0) FROM answers)) RETURNING id",
                    (strategy, model, json.dumps(params), os.getpid(), socket.gethostname(),
                     time.time()),
                ).fetchone()[0]
            if lock is not None:
                lock.write_owner(round_id)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        with self._lock:
            self._held = (round_id, lock)
        return round_id

    def _release(self, round_id):
        with self._lock:
            if self._held is not None and self._held[0] == round_id:
                if self._held[1] is not None:
                    self._held[1].release()
                self._held = None

    def finish_round(self, round_id, queries, *, n_labeled, n_train, n_holdout, accuracy,
                     checkpoint=None, checkpoint_sha256=None):
        """Store a round's batch and results and mark it ``done``, in one transaction.

        The round lock is released, whatever happens.

        Parameters
        ----------
        round_id : int
            The round, from :meth:`begin_round`.
        queries : list of (image_id, score, guess, confidence)
            The next batch, best first.
        n_labeled : int
            Labelled images when the round started (trained on or held out).
        n_train : int
            Labels it trained on.
        n_holdout : int
            Held-out labels it was scored on.
        accuracy : float or None
            Accuracy on the held-out labels (None without any).
        checkpoint : str or None, default=None
            Path of the model's checkpoint, relative to the project.
        checkpoint_sha256 : str or None, default=None
            SHA-256 of the checkpoint file.
        """
        try:
            self._finish_round(round_id, queries, n_labeled, n_train, n_holdout, accuracy,
                               checkpoint, checkpoint_sha256)
        finally:
            self._release(round_id)

    def _finish_round(self, round_id, queries, n_labeled, n_train, n_holdout, accuracy,
                      checkpoint, checkpoint_sha256):
        with self._tx() as c:
            c.executemany(
                "INSERT INTO queries (round_id, image_id, position, score, guess, confidence) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(round_id, img, pos, score, guess, conf)
                 for pos, (img, score, guess, conf) in enumerate(queries)],
            )
            updated = c.execute(
                "UPDATE rounds SET status = 'done', finished_at = ?, n_labeled = ?, n_train = ?,"
                " n_holdout = ?, accuracy = ?, checkpoint = ?, checkpoint_sha256 = ? "
                "WHERE id = ? AND status = 'running'",
                (time.time(), n_labeled, n_train, n_holdout, accuracy, checkpoint,
                 checkpoint_sha256, round_id),
            ).rowcount
            if updated != 1:
                raise RuntimeError(f"Round {round_id} is not running any more; not finished.")

    def fail_round(self, round_id, error):
        """Mark a running round ``failed`` with its error, and release the round lock.

        Parameters
        ----------
        round_id : int
            The round, from :meth:`begin_round`.
        error : str
            What went wrong.
        """
        try:
            with self._tx() as c:
                c.execute(
                    "UPDATE rounds SET status = 'failed', finished_at = ?, error = ? "
                    "WHERE id = ? AND status = 'running'",
                    (time.time(), str(error)[:2000], round_id),
                )
        finally:
            self._release(round_id)

    def rounds(self):
        """List all rounds.

        Returns
        -------
        list of sqlite3.Row
            The rounds, oldest first.
        """
        return self._query("SELECT * FROM rounds ORDER BY id")

    def round(self, round_id):
        """Find one round.

        Parameters
        ----------
        round_id : int
            The round's id.

        Returns
        -------
        sqlite3.Row or None
            The round, or None.
        """
        rows = self._query("SELECT * FROM rounds WHERE id = ?", (round_id,))
        return rows[0] if rows else None

    def latest_done_round(self):
        """Find the latest finished round.

        Returns
        -------
        sqlite3.Row or None
            The latest round whose status is ``done``, or None.
        """
        rows = self._query("SELECT * FROM rounds WHERE status = 'done' ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def batch(self, round_id):
        """List the batch of a round with each image's standing answer.

        Parameters
        ----------
        round_id : int
            The round.

        Returns
        -------
        list of sqlite3.Row
            Rows (image_id, path, position, score, guess, confidence, kind, label), best
            first; retired images are left out.
        """
        return self._query(
            "SELECT q.image_id, i.path, q.position, q.score, q.guess, q.confidence, c.kind, "
            "c.label FROM queries q JOIN images i ON i.id = q.image_id LEFT JOIN current c "
            "ON c.image_id = q.image_id WHERE q.round_id = ? AND i.retired_at IS NULL "
            "ORDER BY q.position",
            (round_id,),
        )


class _Cursor:
    """The connection, inside a transaction, with a one-row helper."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, params=()):
        return self._conn.execute(sql, params)

    def executemany(self, sql, rows):
        return self._conn.executemany(sql, rows)

    def one(self, sql, params=()):
        return self._conn.execute(sql, params).fetchone()
