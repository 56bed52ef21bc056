"""The tables of a labelling project's store, written once for both of its backends.

:data:`SCHEMA` is the text SQLite runs to create a store; :mod:`skal.labeling.store_pg`
translates its types for PostgreSQL (``INTEGER`` becomes ``BIGINT``, ``REAL`` ``DOUBLE
PRECISION``, the ids identity columns), so both backends have the same tables, columns and
constraints. :data:`MIGRATIONS` bring an older SQLite store up to :data:`SCHEMA_VERSION` when it
is opened (PostgreSQL stores start at version 3). The tables themselves are described in
:mod:`skal.labeling.store`.

Only the standard library is imported here (as by every module of the store).
"""

__all__ = ["MAX_ID", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "STANDING_VOTES", "valid_id"]

#: The version of the tables below; a store keeps its own in ``meta`` (``schema_version``).
SCHEMA_VERSION = 3
#: The largest id a store holds: the range of an SQLite ``INTEGER`` (PostgreSQL's ``BIGINT``).
MAX_ID = 2**63 - 1

#: The statements (separated by ``;``) that create a new store's tables, in SQLite's types.
SCHEMA = """
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


#: The standing answer of every (image, annotator): their latest label or skip not undone.
STANDING_VOTES = (
    "SELECT a.image_id, a.annotator, a.id, a.kind, a.label FROM answers a "
    "WHERE a.kind IN ('label', 'skip') AND NOT EXISTS (SELECT 1 FROM answers u WHERE u.undoes = a.id) "
    "AND a.id = (SELECT max(b.id) FROM answers b WHERE b.image_id = a.image_id "
    "AND b.annotator = a.annotator AND b.kind IN ('label', 'skip') "
    "AND NOT EXISTS (SELECT 1 FROM answers w WHERE w.undoes = b.id))"
)

#: ``{N: statements}``: schema version N -> N + 1 of an SQLite store, run in one transaction
#: (foreign keys off, checked after) when an older database is opened.
# 1 -> 2: images gain retired_at / retired_reason, and a path is unique among the images in use
# only (a retired image keeps its last path); SQLite cannot drop a UNIQUE constraint, so the
# table is rebuilt (https://sqlite.org/lang_altertable.html#otheralter)
MIGRATIONS = {
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
        "INSERT INTO votes (image_id, annotator, answer_id, kind, label) " + STANDING_VOTES
        + " ON CONFLICT DO NOTHING",
        "CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, token_sha256 TEXT UNIQUE, "
        "created_at REAL NOT NULL, removed_at REAL)",
        "CREATE TABLE IF NOT EXISTS assignments (round_id INTEGER NOT NULL REFERENCES rounds(id), image_id "
        "INTEGER NOT NULL REFERENCES images(id), annotator TEXT NOT NULL, assigned_at REAL NOT "
        "NULL, touched_at REAL NOT NULL, PRIMARY KEY (round_id, image_id, annotator))"),
}


def valid_id(image_id):
    """Tell whether ``image_id`` is an int that a store's id column can hold.

    Parameters
    ----------
    image_id : object
        The value to check.

    Returns
    -------
    bool
        True for an int (not a bool) in ``[-MAX_ID - 1, MAX_ID]``: a larger Python int is no
        image's id.
    """
    return isinstance(image_id, int) and not isinstance(image_id, bool) and (
        -MAX_ID - 1 <= image_id <= MAX_ID)
