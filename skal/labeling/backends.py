"""Which backend holds a labelling project's store: SQLite for a file, PostgreSQL for a URL.

The one place that chooses: :class:`~skal.labeling.store.LabelStore` asks
:func:`open_backend` for the connection it works through, and never names a backend itself.
Both backends take the same SQL (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``) and run
every write as one transaction (:mod:`skal.labeling.store_sqlite`,
:mod:`skal.labeling.store_pg`).
"""

from .store_pg import PostgresBackend
from .store_sqlite import SQLiteBackend

__all__ = ["is_url", "open_backend"]


def is_url(location):
    """Tell whether a store location is a PostgreSQL URL (else it is an SQLite file's path).

    Parameters
    ----------
    location : str or path-like
        A store's location.

    Returns
    -------
    bool
        True for a ``postgresql://`` (or ``postgres://``) URL.
    """
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_backend(location, create=False):
    """Open the connection to a store: the SQLite file at ``location``, or its PostgreSQL URL.

    Parameters
    ----------
    location : str or path-like
        The SQLite database file, or a ``postgresql://`` URL (psycopg 3 is needed then).
    create : bool, default=False
        Whether the store is being created (the file may be missing, the database empty).

    Returns
    -------
    backend : SQLiteBackend or PostgresBackend
        The connection, with ``tx()`` (one write transaction), ``query(sql, params)``,
        ``exists()``, ``schema()``, ``migrate(store)``, ``integrity_check()`` and ``close()``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``location`` and ``create`` is False.
    ValueError
        If the file is no SQLite database, or the PostgreSQL server cannot be reached.
    """
    if is_url(location):
        return PostgresBackend(location, create)
    return SQLiteBackend(location, create)
