"""The files of a labelling project: content hashes, the image-folder boundary, checkpoints."""

import hashlib
import os
import pickle

__all__ = ["MODELS_DIR", "inside", "load_checkpoint", "save_checkpoint", "sha256"]

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
    tmp = final + f".tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
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
