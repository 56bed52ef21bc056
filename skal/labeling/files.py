"""The files of a labelling project: content hashes, the image-folder boundary, checkpoints."""

import hashlib
import json
import os
import pickle

from ..utils.atomic import write_atomic

__all__ = ["MODELS_DIR", "inside", "load_checkpoint", "read_round_json", "round_json_path",
           "save_checkpoint", "sha256", "write_round_json"]

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


def save_checkpoint(project_path, round_id, estimator):
    """Pickle the estimator to ``models/round_NNNN.pkl``, atomically.

    The pickle is written to a temporary file, flushed to disk, then renamed: a kill leaves either
    no file or a whole one.

    Parameters
    ----------
    project_path : str or path-like
        The project folder.
    round_id : int
        The round whose model it is (the file's number).
    estimator : object
        The fitted estimator.

    Returns
    -------
    checkpoint, digest : str, str
        The path relative to the project (``/`` separators) and the file's SHA-256.
    """
    name = f"round_{round_id:04d}.pkl"
    folder = os.path.join(project_path, MODELS_DIR)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, name)
    write_atomic(final, pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL))
    return f"{MODELS_DIR}/{name}", sha256(final)


def load_checkpoint(project_path, row):
    """Unpickle the checkpoint of a round after checking its SHA-256.

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
        If the file's SHA-256 is not the one recorded for the round.
    """
    path = os.path.join(project_path, *row["checkpoint"].split("/"))
    if sha256(path) != row["checkpoint_sha256"]:
        raise ValueError(f"{path} does not match the checksum recorded for round {row['id']}.")
    with open(path, "rb") as f:
        return pickle.load(f)


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
