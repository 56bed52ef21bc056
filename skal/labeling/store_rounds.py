"""The rounds of a labelling project's store: train + query runs, their batches, and the lock that
says a round is running.

``rounds`` holds each run (status, strategy, the labels it saw, held-out accuracy, the
checkpoint file it wrote) and ``queries`` the batch each round picked, with the model's guess
and confidence. A round is inserted as ``running`` at once, and its batch and results are
committed, with its ``done``, in one transaction.

The process running a round holds an ``fcntl.flock`` on ``round.lock`` beside the database (as
``skal run`` does with its run folder): the kernel releases it when that process ends, however it
ends, so a round left ``running`` by a process that is gone (or whose pid was reused, or on another
host) is recognised as stale and never blocks the next one. Where there is no ``fcntl`` (Windows)
a round is stale when its pid is not alive on this host.
"""

import json
import os
import socket
import time

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not on Windows: the pid check is used there
    _fcntl = None

__all__ = ["ROUND_LOCK", "RoundRunningError", "RoundsMixin"]

#: The lock file (beside the database) held by the process running a round.
ROUND_LOCK = "round.lock"


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


class RoundsMixin:
    """The rounds of :class:`~skal.labeling.store.LabelStore`: begin, finish or fail, read back.

    :meth:`begin_round` takes the round lock (``round.lock`` in the store's ``lock_dir``) and
    keeps it until :meth:`finish_round` or :meth:`fail_round`; a round left ``running`` by a
    process that is gone is marked ``interrupted`` (:meth:`mark_interrupted`, :meth:`unlock`).

    See Also
    --------
    skal.labeling.rounds.train_and_query : Runs a round on a project.
    skal.labeling.store.LabelStore : The store it is mixed into.

    Notes
    -----
    It uses the store's ``_tx()``, ``_query(sql, params)``, ``_lock`` (the object's lock),
    ``_lock_path`` (the round lock file) and ``_held`` (the round this object runs, with its
    lock, or None).

    Examples
    --------
    >>> import os, tempfile
    >>> from skal.labeling.store import LabelStore
    >>> store = LabelStore.create(os.path.join(tempfile.mkdtemp(), "skal.db"), ["cat", "dog"],
    ...                           {})
    >>> [image] = store.update_images(add=[("a.png", "0" * 64, 8, 8, None)])
    >>> round_id = store.begin_round("random_sampling", None, {"seed": 0})
    >>> store.running_round()["id"] == round_id
    True
    >>> store.finish_round(round_id, [(image, None, None, None)], n_labeled=0, n_train=0,
    ...                    n_holdout=0, accuracy=None)
    >>> store.latest_done_round()["status"], [r["path"] for r in store.batch(round_id)]
    ('done', ['a.png'])
    >>> store.close()
    """

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
