"""The state of a labelling project in one SQLite file (``PROJECT/skal.db``).

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
as parameters, never as text.

The process running a round holds an ``fcntl.flock`` on ``round.lock`` beside the database (as
``skal run`` does with its run folder): the kernel releases it when that process ends, however it
ends, so a round left ``running`` by a process that is gone (or whose pid was reused, or on another
host) is recognised as stale and never blocks the next one. Where there is no ``fcntl`` (Windows)
a round is stale when its pid is not alive on this host.

Schema version 2 added ``images.retired_at`` and ``images.retired_reason``; a version 1 database
is migrated when it is opened.
"""

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not on Windows: the pid check is used there
    _fcntl = None

__all__ = ["DB_NAME", "ImageRetiredError", "LabelStore", "ROUND_LOCK", "RoundRunningError",
           "SCHEMA_VERSION"]

DB_NAME = "skal.db"
#: The lock file (beside the database) held by the process running a round.
ROUND_LOCK = "round.lock"
SCHEMA_VERSION = 2
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
    CHECK ((kind = 'label') = (label IS NOT NULL)),
    CHECK ((kind = 'undo') = (undoes IS NOT NULL))
);
CREATE INDEX answers_image ON answers(image_id);
CREATE INDEX answers_annotator ON answers(annotator, id);
CREATE UNIQUE INDEX answers_undone_once ON answers(undoes) WHERE undoes IS NOT NULL;
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
"""

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


class LabelStore:
    """Open (or create, with :meth:`create`) the SQLite store of a labelling project.

    The store holds the images (by path and SHA-256), the append-only log of answers, the
    standing answer of each image, and the rounds with their batches. Every write is one
    committed transaction.

    Parameters
    ----------
    path : str or path-like
        The database file.
    _create : bool, default=False
        Internal: :meth:`create` opens a file that does not exist yet.

    See Also
    --------
    skal.labeling.Project : The labelling project built on this store.

    Notes
    -----
    One object may be shared by threads (calls are serialised by a lock); other processes may
    open the same file at the same time.

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

    def __init__(self, path, *, _create=False):
        self.path = os.fspath(path)
        if not _create and not os.path.isfile(self.path):
            raise FileNotFoundError(f"There is no labelling project database at {self.path!r}.")
        self._lock = threading.RLock()
        self._lock_path = os.path.join(os.path.dirname(os.path.abspath(self.path)), ROUND_LOCK)
        self._held = None  # (round id, _RoundLock or None) while this object runs a round
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":  # pragma: no cover (e.g. a network file system)
                raise OSError(f"SQLite could not put {self.path!r} in WAL mode (got {mode!r}).")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not _create:
                self._check_version()
        except sqlite3.DatabaseError as exc:  # not an SQLite file, or a damaged one
            self._conn.close()
            raise ValueError(f"{self.path!r} is not a skal labelling project database "
                             f"(SQLite: {exc}).") from None
        except BaseException:
            self._conn.close()
            raise

    def _check_version(self):
        """Accept the current schema; migrate an older one (one transaction); refuse others."""
        try:
            version = self.meta("schema_version")
            version = int(version) if version is not None else None
        except (sqlite3.OperationalError, ValueError):
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
            self._migrate()

    def _migrate(self):
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys = OFF")  # (a no-op inside a transaction)
            try:
                with self._tx() as c:
                    # read again inside the write lock: another process may have migrated it
                    current = int(c.one(
                        "SELECT value FROM meta WHERE key = 'schema_version'")[0])
                    for step in range(current, SCHEMA_VERSION):
                        for statement in _MIGRATIONS[step]:
                            c.execute(statement)
                    broken = c.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:  # pragma: no cover - rolled back, the file is left as it was
                        raise ValueError(f"Migrating {self.path!r} would break "
                                         f"{len(broken)} references; it was left unchanged.")
                    c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                              (str(SCHEMA_VERSION),))
            finally:
                self._conn.execute("PRAGMA foreign_keys = ON")

    # ------------------------------------------------------------------ plumbing
    @classmethod
    def create(cls, path, classes, config):
        """Create a new store with its classes and configuration.

        Parameters
        ----------
        path : str or path-like
            The database file to create.
        classes : sequence of str
            The class names, in their order.
        config : dict
            The project configuration (JSON-serialisable).

        Returns
        -------
        LabelStore
            The open store.

        Raises
        ------
        FileExistsError
            If ``path`` exists.
        """
        path = os.fspath(path)
        if os.path.exists(path):
            raise FileExistsError(f"{path!r} already exists; open it instead of creating it.")
        store = cls(path, _create=True)
        with store._tx() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            c.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config),))
            c.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(time.time()),))
            c.executemany(
                "INSERT INTO classes (name, position) VALUES (?, ?)",
                [(name, i) for i, name in enumerate(classes)],
            )
        return store

    @contextlib.contextmanager
    def _tx(self):
        """One write transaction: ``BEGIN IMMEDIATE`` (takes the write lock up front, so two
        writers never deadlock on an upgrade) ... ``COMMIT``; rolled back on any error."""
        with self._lock:
            cursor = _Cursor(self._conn)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql, params=()):
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self):
        """Close the connection and release a round lock this object holds.

        Closing runs a checkpoint that folds the WAL back into the database file.
        """
        with self._lock:
            if self._held is not None and self._held[1] is not None:
                self._held[1].release()
            self._held = None
            self._conn.close()

    def integrity_check(self):
        """Run SQLite's ``PRAGMA integrity_check``.

        Returns
        -------
        str
            ``"ok"`` for a sound file, else SQLite's first finding.
        """
        return self._query("PRAGMA integrity_check")[0][0]

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
                "INSERT OR IGNORE INTO images (path, sha256, height, width, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
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
                    "VALUES (?, ?, ?, ?, ?)", (path, sha, height, width, now)).lastrowid
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
    def add_answer(self, image_id, kind, label=None, *, annotator, source, round_id=None):
        """Record a label or a skip and make it the image's standing answer.

        Parameters
        ----------
        image_id : int
            The image.
        kind : {"label", "skip"}
            What the answer is.
        label : str or None, default=None
            The class name, for ``kind="label"``.
        annotator : str
            Who answered.
        source : str
            Where the answer came from (the page sends ``web:<client id>``).
        round_id : int or None, default=None
            The round whose batch held the image; None: the latest finished round.

        Returns
        -------
        int
            The answer's id, once it is committed.

        Raises
        ------
        ValueError
            For an unknown image, kind or label.
        ImageRetiredError
            If the image was retired.
        """
        if kind not in _ANSWER_KINDS:
            raise ValueError(f"kind must be 'label' or 'skip'; got {kind!r}.")
        if kind == "skip":
            label = None
        if not _valid_id(image_id):
            raise ValueError(f"There is no image with id {image_id!r} in this project.")
        with self._tx() as c:
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
            return self._insert_answer(c, image_id, kind, label, annotator, source, round_id)

    @staticmethod
    def _insert_answer(c, image_id, kind, label, annotator, source, round_id):
        """Append an answer and make it the image's standing one (inside a transaction)."""
        if round_id is None:
            row = c.one("SELECT max(id) FROM rounds WHERE status = 'done'")
            round_id = row[0] if row else None
        answer_id = c.execute(
            "INSERT INTO answers (image_id, kind, label, round_id, annotator, source, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (image_id, kind, label, round_id, annotator, source, time.time()),
        ).lastrowid
        c.execute(
            "INSERT OR REPLACE INTO current (image_id, answer_id, kind, label) "
            "VALUES (?, ?, ?, ?)",
            (image_id, answer_id, kind, label),
        )
        return answer_id

    def undo(self, *, annotator, source, image_id=None):
        """Take back the latest label or skip of ``annotator`` (on ``image_id`` if given).

        The answer stays in the log; an ``undo`` row points at it, and the image's standing
        answer falls back to the one before (or to none).

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
        sqlite3.Row or None
            The undone answer, or None when there is nothing to undo.
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
                return None
            c.execute(
                "INSERT INTO answers (image_id, kind, undoes, round_id, annotator, source, "
                "created_at) VALUES (?, 'undo', ?, ?, ?, ?, ?)",
                (target["image_id"], target["id"], target["round_id"], annotator, source,
                 time.time()),
            )
            previous = c.one(
                "SELECT a.id, a.kind, a.label FROM answers a WHERE a.image_id = ? AND "
                "a.kind IN ('label', 'skip') AND NOT EXISTS "
                "(SELECT 1 FROM answers u WHERE u.undoes = a.id) ORDER BY a.id DESC LIMIT 1",
                (target["image_id"],),
            )
            if previous is None:
                c.execute("DELETE FROM current WHERE image_id = ?", (target["image_id"],))
            else:
                c.execute(
                    "INSERT OR REPLACE INTO current (image_id, answer_id, kind, label) "
                    "VALUES (?, ?, ?, ?)",
                    (target["image_id"], previous["id"], previous["kind"], previous["label"]),
                )
        return target

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

    def answer_from(self, source):
        """Find the latest label or skip recorded with ``source``.

        Parameters
        ----------
        source : str
            The page sends its answers as ``web:<client id>``, so a re-sent answer is found.

        Returns
        -------
        sqlite3.Row or None
            The answer, or None.
        """
        rows = self._query("SELECT * FROM answers WHERE source = ? AND kind IN ('label', 'skip') "
                           "ORDER BY id DESC LIMIT 1", (source,))
        return rows[0] if rows else None

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
                    "(SELECT coalesce(max(id), 0) FROM answers))",
                    (strategy, model, json.dumps(params), os.getpid(), socket.gethostname(),
                     time.time()),
                ).lastrowid
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
