"""A run folder on disk: atomic files, the lock, and reading and checking the checkpoint.

Files of a run folder:

- ``config.json``: the configuration (:meth:`ExperimentConfig.to_dict`);
- ``state.json``: the checkpoint (labelled pool indices and labels per repeat, rounds done,
  result rows, the torch thread count, the machines that ran it), replaced atomically after
  every round;
- ``results.jsonl`` / ``results.csv``: one row per repeat and round;
- ``learning_curve.png``;
- ``.lock``: held (``fcntl.flock``) by the ``skal run`` using the folder; the kernel releases it
  when that process ends, even by ``kill -9``, so a stale lock never blocks.

Every file is written to a ``.tmp-*`` file in the same folder and renamed over the old one, so a
reader (or a crash) sees the old or the new file, never half of one; files left by a process
killed mid-write are removed when the folder is next opened. Files get the mode the user's umask
allows, as with ``open()``.
"""

import csv
import io
import json
import os
import platform
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import RunFolderError
from ..utils.atomic import TMP_PREFIX as _TMP_PREFIX
from ..utils.atomic import write_atomic
from .config import ExperimentConfig, option_name, option_setting

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not on Windows; a pid file is used there
    _fcntl = None

__all__ = ["ExperimentResult", "load_run", "machine_info"]

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
CURVE_PNG = "learning_curve.png"
LOCK_FILE = ".lock"

_STATE_FORMAT = 1
# "epochs": the round's planned epochs; "epochs_trained": the epochs in the fitted model's skorch
# history (fewer after early stopping, cumulative with warm_start; empty without a history);
# "device": where the round ran (a run may move between CPU and GPU)
RESULT_COLUMNS = (
    "method", "dataset", "repeat", "round", "n_labeled", "accuracy", "epochs", "fit_seconds",
    "query_seconds", "epochs_trained", "device",
)


class _NoRunError(RunFolderError, FileNotFoundError):
    """A folder holds no skal experiment (a ``FileNotFoundError`` too)."""


# ---------------------------------------------------------------------------- files
def write_results(out_dir, rows):
    """``results.jsonl`` and ``results.csv`` from the result rows."""
    write_atomic(os.path.join(out_dir, RESULTS_JSONL),
                 "".join(json.dumps(row) + "\n" for row in rows))
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(os.path.join(out_dir, RESULTS_CSV), buffer.getvalue())


def _clean_tmp_files(out_dir):
    """Remove the ``.tmp-*`` files of a writer killed mid-write (call with the lock held)."""
    for name in os.listdir(out_dir):
        if name.startswith(_TMP_PREFIX):
            try:
                os.unlink(os.path.join(out_dir, name))
            except FileNotFoundError:  # pragma: no cover - gone meanwhile
                pass


def check_out_dir(out_dir):
    """Refuse an empty path, a file, or a folder that cannot be created or written to."""
    if not isinstance(out_dir, str) or not out_dir.strip():
        raise RunFolderError(f"The output folder must be a non-empty path. Got {out_dir!r}.")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise RunFolderError(f"The output folder {out_dir} is a file, not a folder. Pass a "
                             "folder (it is created if missing).")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(
            f"Cannot create the output folder {out_dir}: {exc.strerror or exc}."
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"Cannot write to the output folder {out_dir}: permission denied.")


# ---------------------------------------------------------------------------- the lock
class RunLock:
    """Exclusive use of a run folder by one process, as a context manager.

    On POSIX an ``fcntl.flock`` on ``OUT/.lock`` (released by the kernel when the process dies,
    however it dies); elsewhere a pid file, taken over when its process no longer exists.
    The lock file holds the owner's pid, for the message.
    """

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, LOCK_FILE)
        self._fd = None

    def _busy(self, pid):
        owner = f" (pid {pid})" if pid else ""
        return RunFolderError(
            f"{self.out_dir} is in use by another skal run{owner}: two runs in one folder would "
            "mix their rounds. Wait for it to end (or stop it), or pass another output folder."
        )

    def _read_pid(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def __enter__(self):
        try:
            if _fcntl is not None:
                self._acquire_flock()
            else:
                self._acquire_pid_file()
        except PermissionError as exc:
            raise RunFolderError(f"Cannot write to the output folder {self.out_dir}: "
                                 f"{exc.strerror}.") from None
        return self

    def _acquire_flock(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held by a live process
            os.close(fd)
            raise self._busy(self._read_pid()) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _acquire_pid_file(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                pid = self._read_pid()
                if pid and _alive(pid):
                    raise self._busy(pid) from None
                os.unlink(self.path)  # stale: its process is gone
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            self._fd = -1
            return
        raise self._busy(self._read_pid())  # pragma: no cover - lost a race twice

    def __exit__(self, *exc_info):
        if self._fd is None:
            return
        if self._fd >= 0:
            _fcntl.flock(self._fd, _fcntl.LOCK_UN)
            os.close(self._fd)
        else:
            os.unlink(self.path)
        self._fd = None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


# ---------------------------------------------------------------------------- reading
def read_json(path, out_dir, what_to_do=None):
    """Read a run file; a damaged one raises :class:`RunFolderError` naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "msg", None) or str(exc)
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise RunFolderError(
            f"{path} is damaged: not valid JSON ({detail}{where}). skal replaces it atomically, "
            f"so it was changed from outside. "
            + (what_to_do or f"Restore it, or delete {out_dir} to start the run over.")
        ) from None


def _damaged(path, out_dir, problem):
    return RunFolderError(
        f"{path} is damaged: {problem}. Restore it, or delete {out_dir} to start the run over."
    )


def _is_int(value, low=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_state_layout(state, path, out_dir):
    """The checkpoint has the keys and types skal writes (checked before anything reads it)."""
    if not isinstance(state, dict):
        raise _damaged(path, out_dir, f"expected a JSON object, got {type(state).__name__}")
    missing = [k for k in ("format", "config", "repeats", "results") if k not in state]
    if missing:
        raise _damaged(path, out_dir, f"the key(s) {missing} are missing")
    if not _is_int(state["format"], 1) or state["format"] > _STATE_FORMAT:
        raise _damaged(path, out_dir, f"unknown checkpoint format {state['format']!r} (this "
                                      f"skal reads format {_STATE_FORMAT})")
    if not isinstance(state["config"], dict):
        raise _damaged(path, out_dir, "'config' must be a JSON object")
    if not isinstance(state["repeats"], list) or not isinstance(state["results"], list):
        raise _damaged(path, out_dir, "'repeats' and 'results' must be lists")
    for i, record in enumerate(state["repeats"]):
        keys = ("repeat", "rounds_done", "n_pool", "labeled", "labels")
        if not isinstance(record, dict) or any(k not in record for k in keys):
            raise _damaged(path, out_dir, f"repeat entry {i} lacks one of {list(keys)}")
        if record["repeat"] != i:
            raise _damaged(path, out_dir, f"repeat entry {i} is numbered {record['repeat']!r}")
        if not (_is_int(record["rounds_done"]) and _is_int(record["n_pool"], 1)
                and isinstance(record["labeled"], list) and isinstance(record["labels"], list)
                and all(_is_int(j) for j in record["labeled"])):
            raise _damaged(path, out_dir, f"repeat {i} has a value of the wrong type")
    for row in state["results"]:
        if not isinstance(row, dict) or not _is_int(row.get("repeat")) \
                or not _is_int(row.get("round")):
            raise _damaged(path, out_dir, f"a result row lacks 'repeat' or 'round': {row!r}")
        if row["repeat"] >= len(state["repeats"]):
            raise _damaged(path, out_dir, f"a result row belongs to repeat {row['repeat']}, "
                                          f"but only {len(state['repeats'])} are recorded")


def check_repeat_state(record, y_pool, config, rows, path, out_dir):
    """Check one repeat of the checkpoint against the data and the configuration.

    Returns
    -------
    labeled : ndarray of int64
        The labelled pool indices in acquisition order.
    pending_query : bool
        The last finished round queried nothing (it was the last round of a shorter run), so
        the run must query after it before the next round (the run was extended).
    """
    r = record["repeat"]
    labeled = np.asarray(record["labeled"], dtype=np.int64)
    values, counts = np.unique(labeled, return_counts=True)
    if (counts > 1).any():
        raise _damaged(path, out_dir, f"repeat {r} lists pool index {int(values[counts > 1][0])} "
                                      "twice")
    if len(labeled) and labeled.max() >= len(y_pool):
        raise _damaged(path, out_dir, f"repeat {r} lists pool index {int(labeled.max())}, "
                                      f"beyond the pool of {len(y_pool)}")
    if (record["n_pool"] != len(y_pool) or len(record["labels"]) != len(labeled)
            or not np.array_equal(y_pool[labeled], np.asarray(record["labels"]))):
        raise RunFolderError(
            f"{path} does not match the data set {config.dataset!r} (pool size or labels "
            "differ): the data files changed since the run started. Start a new run."
        )
    done = record["rounds_done"]
    rounds = [row["round"] for row in rows]
    if rounds != list(range(done)):
        raise _damaged(path, out_dir, f"repeat {r} says {done} rounds are done but holds "
                                      f"result rows for rounds {rounds}")
    queried = config.n_initial + done * config.query_size  # every finished round queried
    if done and len(labeled) == queried - config.query_size:
        pending = True  # the last finished round was the final round of a shorter run
    elif len(labeled) == queried:
        pending = False
    else:
        raise _damaged(path, out_dir, f"repeat {r} holds {len(labeled)} labels after {done} "
                                      f"rounds; expected {queried}")
    if done > config.n_rounds + 1 or (done == config.n_rounds + 1 and not pending):
        last = done - 1 if pending else done
        raise RunFolderError(
            f"{out_dir} holds {done} rounds of repeat {r + 1} (labels of rounds up to {last}), "
            f"more than {option_setting('n_rounds', config.n_rounds)} asks for: that would "
            f"change finished rounds. Use {option_name('n_rounds')} >= {last} or another output "
            "folder."
        )
    return labeled, pending and done <= config.n_rounds


def _config_diff(old, new):
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _saved_config(saved, path, out_dir):
    from .methods import METHODS

    if saved.get("method") not in METHODS:
        raise RunFolderError(
            f"{out_dir} holds a run of method {saved.get('method')!r}, which is not registered "
            "in this process: register it first (skal.experiment.register_method)."
        )
    try:
        return ExperimentConfig.from_dict(saved)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RunFolderError):
            raise
        raise _damaged(path, out_dir, f"its configuration is invalid ({exc})") from None


def machine_info() -> dict[str, str]:
    """What makes a CPU run's numbers machine-specific: torch's version and CPU kernels.

    On the CPU, torch picks its kernels by the instruction set (``AVX2``, ``AVX512``...), and
    kernels of different widths round differently: the same seed and thread count give other
    weights on another processor (a seeded ResNet18 round of the BGADL ablation scored 0.646 with
    AVX512 kernels and 0.6285 with AVX2 ones on the same machine).

    Returns
    -------
    info : dict
        ``torch`` (version), ``cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``)
        and ``processor`` (the model name).

    Examples
    --------
    >>> from skal.experiment import machine_info
    >>> sorted(machine_info())
    ['cpu_capability', 'processor', 'torch']
    """
    import torch

    return {"torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "processor": _processor_name()}


def _processor_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _record_machine(state, machine, out_dir):
    """Add ``machine`` to the run's machines; warn when it differs from those before it."""
    machines = state.setdefault("machines", [])  # runs saved before skal recorded it: []
    if machine in machines:
        return
    if machines:
        before = "; ".join(f"{m.get('processor')} ({m.get('cpu_capability')} kernels, torch "
                           f"{m.get('torch')})" for m in machines)
        warnings.warn(
            f"{out_dir} was started on {before}; this is {machine['processor']} "
            f"({machine['cpu_capability']} kernels, torch {machine['torch']}). The finished "
            "rounds are kept, but the rounds run here will not be bit-identical to an "
            "uninterrupted run (torch's CPU kernels round differently); state.json records "
            "both machines.",
            RuntimeWarning,
            stacklevel=3,
        )
    machines.append(dict(machine))


def open_run(config, out_dir, threads, machine):
    """Check that ``out_dir`` (locked, existing) holds this experiment; return the saved state.

    A new folder gets a ``config.json`` and an empty state. Changes that keep every finished
    round (more rounds or repeats, another device) are accepted and recorded; others raise
    :class:`RunFolderError`, as do a damaged checkpoint and a thread count other than the one
    the run started with (``threads``: ``torch.get_num_threads()`` of this process).
    ``machine`` (:func:`machine_info`) is recorded in ``state["machines"]``; another machine than
    the ones before warns but resumes.
    """
    _clean_tmp_files(out_dir)
    config_path = os.path.join(out_dir, CONFIG_FILE)
    state_path = os.path.join(out_dir, STATE_FILE)
    wanted = config.to_dict()
    state = None
    if os.path.exists(state_path):
        state = read_json(state_path, out_dir)
        check_state_layout(state, state_path, out_dir)
    elif _has_results(out_dir):
        raise RunFolderError(
            f"{out_dir} has results but no {STATE_FILE} (the checkpoint was deleted): starting "
            f"over would overwrite them. Restore {state_path}, or delete {out_dir} to start over."
        )
    for path in (config_path, state_path):
        if not os.path.exists(path):
            continue
        if path == state_path:
            saved = state["config"]
        else:
            hint = (f"Delete {path}: it is rewritten from {STATE_FILE}." if state is not None
                    else None)
            saved = read_json(path, out_dir, what_to_do=hint)
        if not isinstance(saved, dict):
            raise _damaged(path, out_dir, "its configuration is not a JSON object")
        saved = _saved_config(saved, path, out_dir)
        if saved.identity() != config.identity():
            raise RunFolderError(
                f"{out_dir} holds a run with a different configuration ("
                + "; ".join(_config_diff(saved.identity(), config.identity()))
                + "). Use another output folder, or delete this one to start over."
            )
    if state is None:
        state = {"format": _STATE_FORMAT, "config": wanted, "repeats": [], "results": [],
                 "torch_threads": threads}
    if len(state["repeats"]) > config.repeats:
        raise RunFolderError(
            f"{out_dir} holds {len(state['repeats'])} repeats, more than "
            f"{option_setting('repeats', config.repeats)} asks for. Use "
            f"{option_name('repeats')} >= {len(state['repeats'])} or another output folder."
        )
    started = state.setdefault("torch_threads", threads)  # runs saved before skal recorded it
    if started != threads:
        raise RunFolderError(
            f"{out_dir} was run with {started} torch thread(s); this process has {threads}. On "
            "the CPU the results depend on the thread count, so resuming would mix two "
            f"experiments. Resume with OMP_NUM_THREADS={started} (or torch.set_num_threads("
            f"{started})), or use another output folder."
        )
    _record_machine(state, machine, out_dir)
    grown = {k: wanted[k] for k in ("n_rounds", "repeats") if state["config"].get(k) != wanted[k]}
    if grown or not os.path.exists(config_path):
        state["config"] = {**state["config"], **grown}  # the device it started on stays
        write_atomic(config_path, json.dumps({**wanted, "device": state["config"].get(
            "device", wanted["device"])}, indent=2) + "\n")
    return state


def _has_results(out_dir):
    path = os.path.join(out_dir, RESULTS_JSONL)
    return os.path.exists(path) and os.path.getsize(path) > 0


def save_state(out_dir, state):
    """Replace the checkpoint, then the result tables."""
    write_atomic(os.path.join(out_dir, STATE_FILE), json.dumps(state) + "\n")
    write_results(out_dir, state["results"])


# ---------------------------------------------------------------------------- results
@dataclass
class ExperimentResult:
    """A finished (or partly finished) experiment, as saved in its folder.

    :func:`run_experiment` returns one and :func:`load_run` reads one back; the fields are
    plain data (no model is kept).

    Parameters
    ----------
    config : ExperimentConfig
        The experiment.
    rows : list of dict
        One per (repeat, round), with the keys of ``RESULT_COLUMNS``
        (``repeat``, ``round``, ``n_labeled``, ``accuracy``, ...).
    labeled : list of ndarray
        Per repeat, the labelled pool indices in acquisition order.
    labels : list of ndarray
        Their oracle labels.
    out_dir : str
        The run folder.
    machines : list of dict, default=[]
        The machines that ran it (:func:`machine_info`: torch version, CPU kernels, processor),
        in the order they first did; empty for runs saved before skal recorded them. CPU results
        are bit-identical only on the same kind of machine.

    See Also
    --------
    load_run : Reads one from a run folder.
    compare_runs : Plots several.

    Examples
    --------
    >>> from skal.experiment import ExperimentConfig, ExperimentResult
    >>> rows = [{"repeat": r, "n_labeled": n, "accuracy": a}
    ...         for r, n, a in [(0, 20, 0.5), (0, 30, 0.6), (1, 20, 0.7), (1, 30, 0.8)]]
    >>> result = ExperimentResult(ExperimentConfig(dataset="digits"), rows, [], [], "runs/x")
    >>> {n: round(a, 2) for n, a in result.mean_accuracy().items()}
    {20: 0.6, 30: 0.7}
    """

    config: ExperimentConfig
    rows: list
    labeled: list
    labels: list
    out_dir: str
    machines: list = field(default_factory=list)

    def mean_accuracy(self) -> dict[int, float]:
        """Return the mean test accuracy over repeats per number of labels.

        Returns
        -------
        accuracy : dict
            ``{n_labeled: mean accuracy}``, by increasing ``n_labeled``.
        """
        return {n: float(np.mean(a)) for n, a in accuracies_by_size(self.rows).items()}


def accuracies_by_size(rows):
    """``{n_labeled: [accuracy per repeat]}``, sorted by size."""
    by_size = {}
    for row in rows:
        by_size.setdefault(row["n_labeled"], []).append(row["accuracy"])
    return dict(sorted(by_size.items()))


def load_run(out_dir: str | os.PathLike[str]) -> ExperimentResult:
    """Read the experiment saved in ``out_dir`` (by :func:`run_experiment`).

    Parameters
    ----------
    out_dir : str or path-like
        A run folder.

    Returns
    -------
    result : ExperimentResult
        Its configuration, result rows and labelled sets.

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` holds no experiment (a :class:`~skal.exceptions.RunFolderError` too).
    skal.exceptions.RunFolderError
        If its checkpoint is damaged.
    """
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, STATE_FILE)
    if not os.path.exists(path):
        raise _NoRunError(f"{out_dir} holds no skal experiment (no {STATE_FILE}).")
    state = read_json(path, out_dir)
    check_state_layout(state, path, out_dir)
    return ExperimentResult(
        config=_saved_config(state["config"], path, out_dir),
        rows=state["results"],
        labeled=[np.asarray(r["labeled"], dtype=np.int64) for r in state["repeats"]],
        labels=[np.asarray(r["labels"]) for r in state["repeats"]],
        out_dir=out_dir,
        machines=[dict(m) for m in state.get("machines", []) if isinstance(m, dict)],
    )
