"""The SQLite backend of a labelling project's store: one file, ``PROJECT/skal.db``.

:class:`~skal.labeling.store.LabelStore` opens it for a file's path (through
:func:`skal.labeling.backends.open_backend`), as it opens :mod:`skal.labeling.store_pg` for a
``postgresql://`` URL: the same tables (:mod:`skal.labeling.schema`), every write one
transaction. The database is in WAL mode with ``synchronous=FULL`` and foreign keys on; a write
transaction is ``BEGIN IMMEDIATE`` ... ``COMMIT``, so a commit has reached the disk when the call
returns and several processes may write at once (SQLite serialises them, ``busy_timeout``).
"""

import contextlib
import os
import sqlite3
import threading

from .schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

# no public names: a store on SQLite is LabelStore(path)
__all__ = []


class SQLiteBackend:
    """A store's connection to its SQLite file (see the module's notes).

    :class:`~skal.labeling.store.LabelStore` uses it for a file's path, as it uses
    :class:`~skal.labeling.store_pg.PostgresBackend` for a URL.

    Parameters
    ----------
    path : str or path-like
        The database file.
    create : bool
        Whether the store is being created (the file may then be missing).

    See Also
    --------
    skal.labeling.store.LabelStore : The store that opens it.
    """

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
        """Tell whether the file holds a project (its ``meta`` table).

        Returns
        -------
        bool
            True when a store was created in this file.
        """
        return bool(self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone())

    def schema(self):
        """Return the statements that create the store's tables (:data:`~.schema.SCHEMA`).

        Returns
        -------
        list of str
            The ``CREATE`` statements.
        """
        return [s for s in SCHEMA.split(";") if s.strip()]

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
        """Run a read query.

        Parameters
        ----------
        sql : str
            The query, with ``?`` placeholders.
        params : sequence, default=()
            Its parameters.

        Returns
        -------
        list of sqlite3.Row
            The rows.
        """
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def migrate(self, store):
        """Bring an older store up to :data:`~.schema.SCHEMA_VERSION` in one transaction.

        Every answer is kept; another process may have migrated the file meanwhile (the version
        is read again under the write lock).

        Parameters
        ----------
        store : skal.labeling.store.LabelStore
            The store being opened.
        """
        with self.lock:
            self.conn.execute("PRAGMA foreign_keys = OFF")  # (a no-op inside a transaction)
            try:
                with self.tx() as c:
                    # read again inside the write lock: another process may have migrated it
                    current = int(c.one(
                        "SELECT value FROM meta WHERE key = 'schema_version'")[0])
                    for step in range(current, SCHEMA_VERSION):
                        for statement in MIGRATIONS[step]:
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
        """Run SQLite's ``PRAGMA integrity_check``.

        Returns
        -------
        str
            ``"ok"``, else the first finding.
        """
        return self.query("PRAGMA integrity_check")[0][0]

    def close(self):
        """Close the connection (SQLite folds the WAL back into the file)."""
        with self.lock:
            self.conn.close()


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
