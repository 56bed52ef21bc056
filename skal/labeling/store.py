"""The state of a labelling project in one SQLite file (``PROJECT/skal.db``).

Tables: ``meta`` (schema version, configuration), ``classes``, ``images`` (path relative to the
image folder, content hash, size), ``answers`` (an append-only log: every label, skip and undo with
its annotator, time and source), ``current`` (the standing answer per image, kept in step with
``answers`` inside the same transaction), ``rounds`` (train + query runs: status, strategy, the
labels they saw, held-out accuracy, the checkpoint file they wrote) and ``queries`` (the batch each
round picked, with the model's guess and confidence).

The database is in WAL mode with ``synchronous=FULL``; every write is one ``BEGIN IMMEDIATE`` ...
``COMMIT`` transaction, and a method returns only after its commit, so an answer that was
acknowledged survives a ``kill -9`` of the process (or a power cut) at any later moment. Several
processes may write at once: SQLite serialises them (``busy_timeout``). All SQL takes user values
as parameters, never as text.
"""

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time

__all__ = ["LabelStore", "SCHEMA_VERSION", "DB_NAME"]

DB_NAME = "skal.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    height INTEGER,
    width INTEGER,
    added_at REAL NOT NULL
);
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

_ANSWER_KINDS = ("label", "skip")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class LabelStore:
    """Open (or create, with :meth:`create`) the SQLite store of a labelling project.

    Parameters
    ----------
    path : str or path-like
        The database file.

    Notes
    -----
    One object may be shared by threads (calls are serialised by a lock); other processes may
    open the same file at the same time.
    """

    def __init__(self, path, *, _create=False):
        self.path = os.fspath(path)
        if not _create and not os.path.isfile(self.path):
            raise FileNotFoundError(f"There is no labelling project database at {self.path!r}.")
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 30000")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover (e.g. a network file system)
            raise OSError(f"SQLite could not put {self.path!r} in WAL mode (got {mode!r}).")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        if not _create:
            version = self.meta("schema_version")
            if version is None or int(version) != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path!r} is not a skal labelling project of schema version "
                    f"{SCHEMA_VERSION} (found {version!r})."
                )

    # ------------------------------------------------------------------ plumbing
    @classmethod
    def create(cls, path, classes, config):
        """Create a new store with its classes and configuration (fails if the file exists)."""
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
        """Close the connection (a checkpoint folds the WAL back into the database file)."""
        with self._lock:
            self._conn.close()

    def integrity_check(self):
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return self._query("PRAGMA integrity_check")[0][0]

    # ------------------------------------------------------------------ meta, classes, images
    def meta(self, key):
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def config(self):
        """The project configuration (a dict)."""
        return json.loads(self.meta("config"))

    def set_config(self, config):
        with self._tx() as c:
            c.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))

    def classes(self):
        """The class names, in their order."""
        return [r[0] for r in self._query("SELECT name FROM classes ORDER BY position")]

    def add_images(self, rows):
        """Register images: an iterable of ``(path, sha256, height, width)``; returns their ids.
        Paths already registered are left as they are."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO images (path, sha256, height, width, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(p, h, ht, w, now) for p, h, ht, w in rows],
            )
        return [r[0] for r in self._query("SELECT id FROM images ORDER BY id")]

    def images(self):
        """All registered images as rows (id, path, sha256, height, width), by id."""
        return self._query("SELECT id, path, sha256, height, width FROM images ORDER BY id")

    def image(self, image_id=None, path=None):
        """One image row by id or by registered path, or None."""
        if image_id is not None:
            rows = self._query("SELECT * FROM images WHERE id = ?", (image_id,))
        else:
            rows = self._query("SELECT * FROM images WHERE path = ?", (path,))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ answers
    def add_answer(self, image_id, kind, label=None, *, annotator, source, round_id=None):
        """Record a label (``kind="label"``) or a skip and make it the image's standing answer.

        Returns the answer's id once it is committed. Raises ``ValueError`` for an unknown image,
        kind or label.
        """
        if kind not in _ANSWER_KINDS:
            raise ValueError(f"kind must be 'label' or 'skip'; got {kind!r}.")
        if kind == "skip":
            label = None
        with self._tx() as c:
            if c.one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is None:
                raise ValueError(f"There is no image with id {image_id!r} in this project.")
            if kind == "label" and c.one(
                "SELECT 1 FROM classes WHERE name = ?", (label,)
            ) is None:
                raise ValueError(
                    f"{label!r} is not one of the project's classes: {self.classes()}."
                )
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
        answer falls back to the one before (or to none). Returns the undone answer as a row, or
        None when there is nothing to undo.
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
        """The whole answer log, oldest first."""
        return self._query("SELECT * FROM answers ORDER BY id")

    def current(self):
        """The standing answer of every answered image: rows (image_id, path, sha256, kind, label,
        annotator, created_at, answer_id), by image id."""
        return self._query(
            "SELECT i.id AS image_id, i.path, i.sha256, c.kind, c.label, a.annotator, "
            "a.created_at, c.answer_id FROM current c JOIN images i ON i.id = c.image_id "
            "JOIN answers a ON a.id = c.answer_id ORDER BY i.id"
        )

    def label_counts(self):
        """``{class: number of images labelled so}`` for every class (zeros included)."""
        rows = self._query(
            "SELECT k.name, count(c.image_id) FROM classes k LEFT JOIN current c "
            "ON c.label = k.name AND c.kind = 'label' GROUP BY k.name ORDER BY k.position"
        )
        return {name: n for name, n in rows}

    def last_answer_id(self):
        return self._query("SELECT coalesce(max(id), 0) FROM answers")[0][0]

    # ------------------------------------------------------------------ rounds and queries
    def mark_interrupted(self):
        """Rounds left ``running`` by a process of this host that no longer exists become
        ``interrupted``; returns their ids."""
        host = socket.gethostname()
        stale = [
            r["id"] for r in self._query(
                "SELECT id, pid, host FROM rounds WHERE status = 'running'"
            )
            if r["host"] == host and r["pid"] is not None and not _pid_alive(r["pid"])
        ]
        if stale:
            with self._tx() as c:
                c.executemany(
                    "UPDATE rounds SET status = 'interrupted', finished_at = ? "
                    "WHERE id = ? AND status = 'running'",
                    [(time.time(), i) for i in stale],
                )
        return stale

    def begin_round(self, strategy, model, params):
        """Insert a ``running`` round (committed at once) and return its id. Raises
        ``RuntimeError`` if a live process is already running a round of this project."""
        self.mark_interrupted()
        with self._tx() as c:
            running = c.one("SELECT id, pid FROM rounds WHERE status = 'running'")
            if running is not None:
                raise RuntimeError(
                    f"Round {running['id']} of this project is already running (process "
                    f"{running['pid']}); wait for it to finish."
                )
            return c.execute(
                "INSERT INTO rounds (status, strategy, model, params, pid, host, started_at, "
                "last_answer_id) VALUES ('running', ?, ?, ?, ?, ?, ?, "
                "(SELECT coalesce(max(id), 0) FROM answers))",
                (strategy, model, json.dumps(params), os.getpid(), socket.gethostname(),
                 time.time()),
            ).lastrowid

    def finish_round(self, round_id, queries, *, n_labeled, n_train, n_holdout, accuracy,
                     checkpoint=None, checkpoint_sha256=None):
        """Store a round's batch and results and mark it ``done``, in one transaction.

        ``queries`` is a list of ``(image_id, score, guess, confidence)``, best first.
        """
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
        with self._tx() as c:
            c.execute(
                "UPDATE rounds SET status = 'failed', finished_at = ?, error = ? "
                "WHERE id = ? AND status = 'running'",
                (time.time(), str(error)[:2000], round_id),
            )

    def rounds(self):
        """All rounds, oldest first."""
        return self._query("SELECT * FROM rounds ORDER BY id")

    def round(self, round_id):
        rows = self._query("SELECT * FROM rounds WHERE id = ?", (round_id,))
        return rows[0] if rows else None

    def latest_done_round(self):
        rows = self._query("SELECT * FROM rounds WHERE status = 'done' ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def batch(self, round_id):
        """The batch of a round with each image's standing answer: rows (image_id, path,
        position, score, guess, confidence, kind, label), best first."""
        return self._query(
            "SELECT q.image_id, i.path, q.position, q.score, q.guess, q.confidence, c.kind, "
            "c.label FROM queries q JOIN images i ON i.id = q.image_id LEFT JOIN current c "
            "ON c.image_id = q.image_id WHERE q.round_id = ? ORDER BY q.position",
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
