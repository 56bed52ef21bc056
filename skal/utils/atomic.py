"""Files that readers see whole: the old version or the new one, never half of either.

One writer for every file skal replaces in place (run folders, checkpoints' side files, the
recipe's encoder cache, labelling reports and exports).
"""

import os
import secrets

__all__ = ["TMP_PREFIX", "write_atomic"]

#: the name prefix of the temporary files (a writer killed mid-write leaves one behind)
TMP_PREFIX = ".tmp-"


def write_atomic(path, data):
    """Write ``data`` (str or bytes) to ``path`` so that readers see the old or the new file.

    The data goes to a temporary file in the same folder (named ``TMP_PREFIX`` + random + the
    file's name), is flushed to disk, then replaces ``path``. The temporary file is created with
    mode 0o666 minus the umask, as ``open()`` would, and removed if writing fails.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    data : str or bytes
        The new contents (a str is written as UTF-8).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f"{TMP_PREFIX}{secrets.token_hex(4)}-{os.path.basename(path)}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
