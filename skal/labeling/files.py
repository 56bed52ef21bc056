"""The files of a labelling project: content hashes, the image-folder boundary, checkpoints."""

import hashlib
import io
import json
import os
import pickle

from ..utils.atomic import write_atomic

__all__ = ["MODELS_DIR", "PROJECT_FILE", "inside", "load_checkpoint", "read_round_json",
           "round_json_path", "save_checkpoint", "sha256", "write_round_json"]

#: The sub-folder of a project that holds the rounds' checkpoints.
MODELS_DIR = "models"


def sha256(path):
    """Compute the SHA-256 of a file's content, read 1 MiB at a time.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
        The digest, as 64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inside(path, root):
    """Tell whether the real path of ``path`` lies inside the real folder ``root``.

    Parameters
    ----------
    path : str or path-like
        The file (symbolic links resolved).
    root : str or path-like
        The folder (symbolic links resolved).

    Returns
    -------
    bool
        True when ``path`` resolves to ``root`` or below it.
    """
    real = os.path.realpath(path)
    return os.path.commonpath([real, root]) == root


#: The tag of a checkpoint's reference to another file of the project (``persistent_id``).
PROJECT_FILE = "skal-project-file"


class _CheckpointPickler(pickle.Pickler):
    """A pickler that writes the ``shared`` objects as references to the files that hold them."""

    def __init__(self, file, shared):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = {id(obj): (obj, ref) for obj, ref in shared}

    def persistent_id(self, obj):
        entry = self._shared.get(id(obj))
        if entry is None or entry[0] is not obj:
            return None
        return (PROJECT_FILE,) + entry[1]  # (tag, relative path, sha256)


class _CheckpointUnpickler(pickle.Unpickler):
    """Resolves a checkpoint's references to project files, each checked against its SHA-256."""

    def __init__(self, file, project_path, where):
        super().__init__(file)
        self._project = os.path.realpath(project_path)
        self._where = where
        self._loaded = {}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] == PROJECT_FILE):
            raise pickle.UnpicklingError(f"{self._where} holds an unknown reference {pid!r}.")
        _, relative, digest = pid
        if relative in self._loaded:
            return self._loaded[relative]
        path = os.path.join(self._project, *str(relative).split("/"))
        if not inside(path, self._project):
            raise ValueError(f"{self._where} refers to {relative!r}, which is outside the "
                             "project folder.")
        if not os.path.isfile(path):
            raise ValueError(f"{self._where} refers to {relative}, which is missing; the model of "
                             "that round needs it (train a new round to get a model without it).")
        if sha256(path) != digest:
            raise ValueError(f"{self._where} refers to {relative}, whose content changed since "
                             "the round was trained (its SHA-256 differs).")
        with open(path, "rb") as f:
            obj = self._loaded[relative] = pickle.load(f)
        return obj


def save_checkpoint(project_path, round_id, estimator, shared=()):
    """Pickle the estimator to ``models/round_NNNN.pkl``, atomically.

    The pickle is written to a temporary file, flushed to disk, then renamed: a kill leaves either
    no file or a whole one. Objects already saved in other files of the project (the recipe's
    encoder, ``PROJECT/encoder/encoder-KEY.pkl``) are given in ``shared`` and written as a
    reference to that file and its SHA-256, not pickled again in every round.

    Parameters
    ----------
    project_path : str or path-like
        The project folder.
    round_id : int
        The round whose model it is (the file's number).
    estimator : object
        The fitted estimator.
    shared : iterable of (object, (str, str)), default=()
        Objects inside ``estimator`` and, for each, the path of the file that holds its pickle
        (relative to the project, ``/`` separators) and that file's SHA-256.

    Returns
    -------
    checkpoint, digest : str, str
        The path relative to the project (``/`` separators) and the file's SHA-256.
    """
    name = f"round_{round_id:04d}.pkl"
    folder = os.path.join(project_path, MODELS_DIR)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, name)
    buffer = io.BytesIO()
    _CheckpointPickler(buffer, shared).dump(estimator)
    write_atomic(final, buffer.getvalue())
    return f"{MODELS_DIR}/{name}", sha256(final)


def load_checkpoint(project_path, row):
    """Unpickle the checkpoint of a round after checking its SHA-256.

    The project files it refers to (:func:`save_checkpoint`'s ``shared``) are loaded after
    checking theirs.

    Parameters
    ----------
    project_path : str or path-like
        The project folder.
    row : sqlite3.Row or dict
        The round, with its ``checkpoint``, ``checkpoint_sha256`` and ``id``.

    Returns
    -------
    estimator
        The unpickled estimator.

    Raises
    ------
    ValueError
        If the file's SHA-256 is not the one recorded for the round, or a file it refers to is
        missing, outside the project or changed.
    """
    path = os.path.join(project_path, *row["checkpoint"].split("/"))
    if sha256(path) != row["checkpoint_sha256"]:
        raise ValueError(f"{path} does not match the checksum recorded for round {row['id']}.")
    with open(path, "rb") as f:
        return _CheckpointUnpickler(f, project_path, f"The checkpoint of round {row['id']}").load()


def round_json_path(project_path, round_id, kind):
    """The JSON file of a round's ``kind`` of report, ``models/round_NNNN.KIND.json``.

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.
    kind : str
        ``"stopping"`` or ``"batch"``.

    Returns
    -------
    path : str
        The path, next to the round's checkpoint.
    """
    return os.path.join(project_path, MODELS_DIR, f"round_{int(round_id):04d}.{kind}.json")


def write_round_json(project_path, round_id, kind, data):
    """Write a round's report atomically (a kill leaves the old file or the new one, whole).

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.
    kind : str
        ``"stopping"`` or ``"batch"``.
    data : dict
        JSON-serialisable.
    """
    path = round_json_path(project_path, round_id, kind)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, json.dumps(data))


def read_round_json(project_path, round_id, kind):
    """Read a round's report.

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.
    kind : str
        ``"stopping"`` or ``"batch"``.

    Returns
    -------
    data : dict or None
        None when the round has no such report, or it does not parse.
    """
    try:
        with open(round_json_path(project_path, round_id, kind), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
