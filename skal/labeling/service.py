"""Background train + query jobs for the labelling page, and the estimator a project trains.

One job at a time per server: :meth:`TrainingService.start` runs
:meth:`~skal.labeling.Project.train_and_query` in a daemon thread, and :meth:`status` reports its
phase and epoch to the page while the page goes on answering requests.
"""

import contextlib
import hashlib
import io
import os
import threading
import time
import warnings
import zipfile

import numpy as np
from skorch.callbacks import Callback

from ..utils.atomic import write_atomic

__all__ = ["ENCODER_DIR", "FEATURES_PREFIX", "TrainingService", "build_estimator",
           "encoder_file", "needs_unlabeled", "project_encoder", "project_features"]

#: The project sub-folder that holds the recipe's encoder (fitted at the first round).
ENCODER_DIR = "encoder"
#: The name prefix of the features files there: ``features-SHA.npz`` (:func:`project_features`).
FEATURES_PREFIX = "features-"
_FEATURES = {}  # id(encoder) -> its EncodedFeatures: the pool is embedded once per process
_SAVED = {}  # features file -> (EncodedFeatures, digest of the rows it holds) in this process


class _Progress(Callback):
    """Reports the epoch to a function; the function is dropped when the net is pickled."""

    def __init__(self, report=None):
        self.report = report

    def on_epoch_end(self, net, **kwargs):
        if self.report is not None:
            self.report("training", len(net.history), net.max_epochs)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["report"] = None
        return state


def project_encoder(config, project_path, X_images, report=None):
    """The recipe's encoder of a project, or None when its recipe has none.

    Fitted on ``X_images`` (every image of the project, no labels) at the first round that needs
    it and cached in ``PROJECT/encoder/``; later rounds load it (images added since are embedded
    by it, not refitted on). Its key is the recipe's encoder settings and the project's seed.

    Parameters
    ----------
    config : dict
        Project settings (``recipe``, ``encoder_epochs``, ``encoder_width``,
        ``encoder_stem_stride``, ``encoder_feature_stages``, ``seed``, ``device``).
    project_path : str
        The project folder.
    X_images : ndarray
        The project's images.
    report : callable or None
        ``report(phase, done, total)``.

    Returns
    -------
    skal.ContrastiveEncoder or None
        The fitted encoder, or None when the recipe has none.
    """
    from ..recipe import fit_encoder
    from .settings import project_recipe

    recipe = project_recipe(config)
    if not recipe.uses_encoder:
        return None
    key, relative = _encoder_file_name(config)
    cache = os.path.join(project_path, ENCODER_DIR)
    if report is not None and not os.path.isfile(os.path.join(project_path, *relative.split("/"))):
        report("pretraining the encoder", 0, recipe.encoder_epochs)
    return fit_encoder(recipe, X_images, random_state=int(config["seed"]), cache_dir=cache,
                       key=key, device=config["device"])


def _encoder_file_name(config):
    """The cache key of a project's encoder and its file, relative to the project.

    The key is the recipe's encoder settings and the project's seed, not the images: the pool
    grows, the encoder stays (:func:`skal.recipe.fit_encoder` names the file after the key).
    """
    from ..recipe import encoder_key
    from .settings import project_recipe

    key = encoder_key(project_recipe(config), None, int(config["seed"]))
    return key, f"{ENCODER_DIR}/encoder-{key}.pkl"


def encoder_file(config, project_path, encoder):
    """The project file that holds ``encoder``, for checkpoints to refer to instead of a copy.

    Parameters
    ----------
    config : dict
        Project settings (``recipe``, its encoder settings, ``seed``).
    project_path : str
        The project folder.
    encoder : skal.ContrastiveEncoder or None
        The project's encoder (:func:`project_encoder`).

    Returns
    -------
    tuple
        ``((encoder, (path, sha256)),)`` with the path relative to the project, when the file
        ``PROJECT/encoder/encoder-KEY.pkl`` is there and holds this encoder (its SHA-256 is the
        one the encoder was loaded from or saved with); ``()`` otherwise (no encoder, or a file
        changed since: the checkpoint then pickles its own copy). The form
        :func:`skal.labeling.files.save_checkpoint` takes as ``shared``.
    """
    from .files import sha256

    digest = getattr(encoder, "fit_info_", {}).get("sha256") if encoder is not None else None
    if digest is None:
        return ()
    _, relative = _encoder_file_name(config)
    path = os.path.join(project_path, *relative.split("/"))
    if not os.path.isfile(path) or sha256(path) != digest:
        return ()
    return ((encoder, (relative, digest)),)


def _row_digests(X):
    """The SHA-256 of each image's pixels (with their dtype and shape): (n, 32) uint8."""
    X = np.ascontiguousarray(X)
    prefix = f"{X.dtype.str}{X.shape[1:]}".encode()
    rows = X.reshape(len(X), -1)  # (n, C, H, W) -> (n, C*H*W): one key per image
    digests = b"".join(hashlib.sha256(prefix + row.tobytes()).digest() for row in rows)
    return np.frombuffer(digests, dtype=np.uint8).reshape(len(X), 32)  # (n*32,) -> (n, 32)


def _read_features(path, dim):
    """``(keys, Z)`` of a features file, or None when there is none or it is not one."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, Z = data["keys"], data["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        keys = Z = None
        problem = f"{type(exc).__name__}: {exc}"
    else:
        problem = None if (keys.dtype == np.uint8 and keys.ndim == 2 and keys.shape[1] == 32
                           and Z.dtype == np.float32 and Z.shape == (len(keys), dim)) else (
            f"keys {keys.dtype}{keys.shape}, features {Z.dtype}{Z.shape}; expected "
            f"(n, 32) uint8 and (n, {dim}) float32")
    if problem is not None:
        warnings.warn(f"The cached features {path} cannot be used ({problem}); embedding the "
                      "images again.", UserWarning, stacklevel=4)
        return None
    return keys, Z


def project_features(config, encoder, project_path, X_images, report=None):
    """The frozen features of a head recipe's images, embedded once per encoder and image.

    The features live in ``PROJECT/encoder/features-SHA.npz`` (``SHA``: the first 20 hex digits
    of the SHA-256 of the encoder's file, ``fit_info_["sha256"]``), each row with the SHA-256 of
    its image's pixels. A process reads them instead of running the encoder over every image
    again; images the file lacks (added, or with other pixels) are embedded, and the file is
    written again, atomically, with the features of ``X_images``; a features file of another
    encoder is removed then. A file that cannot be read is replaced (with a warning).

    Parameters
    ----------
    config : dict
        Project settings (``recipe``).
    encoder : skal.ContrastiveEncoder or None
        The project's encoder (:func:`project_encoder`).
    project_path : str
        The project folder.
    X_images : ndarray
        Every image of the project in use.
    report : callable or None, default=None
        ``report(phase, done, total)``: ``"embedding the images"`` when the encoder runs.

    Returns
    -------
    skal.recipe.EncodedFeatures or None
        The features step that :func:`build_estimator` puts in front of the head, with every
        image of ``X_images`` remembered; None unless the recipe trains a head on an encoder.
    """
    from .settings import project_recipe

    if encoder is None or project_recipe(config).training != "head":
        return None
    features = _features(encoder)
    digest = (getattr(encoder, "fit_info_", None) or {}).get("sha256")
    if digest is None:  # an encoder without a file: remembered in this process only
        features.transform(X_images)
        return features
    folder = os.path.join(project_path, ENCODER_DIR)
    path = os.path.join(folder, f"{FEATURES_PREFIX}{digest[:20]}.npz")
    keys = _row_digests(X_images)
    held = hashlib.sha256(keys.tobytes()).hexdigest()
    saved = _SAVED.get(path)
    if saved is not None and saved[0] is features and saved[1] == held:  # as the last round's
        return features
    known = np.zeros(len(keys), dtype=bool)
    cached = _read_features(path, encoder.embedding_dim_)
    if cached is not None:
        index = {k.tobytes(): i for i, k in enumerate(cached[0])}
        rows = np.asarray([index.get(k.tobytes(), -1) for k in keys], dtype=np.int64)
        known = rows >= 0
        if known.any():
            features.remember(X_images[known], cached[1][rows[known]])
    if not known.all():
        if report is not None:
            report("embedding the images", 0, int((~known).sum()))
        Z = features.transform(X_images)  # only the images not remembered go through the encoder
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, features=Z)
        write_atomic(path, buffer.getvalue())
        for name in os.listdir(folder):  # the features of an encoder the project no longer has
            if (name.startswith(FEATURES_PREFIX) and name.endswith(".npz")
                    and name != os.path.basename(path)):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
    _SAVED.clear()  # one project's features at a time, as _FEATURES
    _SAVED[path] = (features, held)
    return features


def needs_unlabeled(config):
    """Tell whether a round's ``fit`` takes the pool as ``X_unlabeled`` (WAAL, FixMatch recipes).

    From the settings alone; a round itself leaves it to its :class:`skal.ActiveLearner`, which
    hands the pool to an estimator whose ``fit`` takes ``X_unlabeled``.

    Parameters
    ----------
    config : dict
        Project settings.

    Returns
    -------
    bool
        True for WAAL and the semi-supervised recipes.
    """
    from .settings import model_for, project_recipe

    return model_for(config) == "waal" or project_recipe(config).semi_supervised != "none"


def _features(encoder):
    from ..recipe import EncodedFeatures

    features = _FEATURES.get(id(encoder))
    if features is None or features.encoder is not encoder:
        _FEATURES.clear()  # one project's encoder at a time
        features = _FEATURES[id(encoder)] = EncodedFeatures(encoder)
    return features


def build_estimator(config, model, classes, seed, report=None, encoder=None):
    """The (unfitted) estimator of a round, from the project settings.

    Built by :func:`skal.recipe.make_estimator`, the factory every ``skal run`` method uses too
    (WAAL's included).

    Parameters
    ----------
    config : dict
        Project settings (``recipe``, ``width``, ``epochs``, ``train_batch_size``, ``lr``,
        ``device``).
    model : {"resnet18", "waal"}
        The model the round trains.
    classes : list of str
        All the project's classes, so predictions cover classes not labelled yet.
    seed : int
        The estimator's ``random_state``.
    report : callable or None
        ``report(phase, epoch, epochs)`` after every epoch.
    encoder : ContrastiveEncoder or None
        The project's encoder (:func:`project_encoder`) for a recipe that uses one.

    Returns
    -------
    estimator
        The unfitted estimator.
    """
    from ..recipe import make_estimator
    from .settings import project_recipe

    common = dict(
        max_epochs=int(config["epochs"]), batch_size=int(config["train_batch_size"]),
        lr=float(config["lr"]), device=config["device"], random_state=seed,
        classes=list(classes), callbacks=[("skal_progress", _Progress(report))],
    )
    if model == "waal":  # class names are labels: no -1 marks an unlabelled row
        return make_estimator(model="waal", unlabeled_marker=None,
                              query_size=int(config["batch_size"]), **common)
    recipe = project_recipe(config)
    if recipe.training == "head" and encoder is not None:
        encoder = _features(encoder)
    width = None if recipe.uses_encoder else int(config["width"])  # finetune: the encoder's
    return make_estimator(recipe, width=width, encoder=encoder, **common)


class TrainingService:
    """Runs train + query rounds of one project in the background, one at a time.

    The labelling page starts rounds through it and polls :meth:`status`; labels can be given
    while a round runs (a round ranks more images than its batch, see
    :data:`skal.labeling.rounds.RANKED`).

    Parameters
    ----------
    project : skal.labeling.Project
        The project whose rounds it runs.

    See Also
    --------
    skal.labeling.Project.train_and_query : The same round, blocking.

    Examples
    --------
    >>> from skal.labeling.service import TrainingService
    >>> TrainingService(project=None).status()["state"]
    'idle'
    """

    def __init__(self, project):
        self.project = project
        self._lock = threading.Lock()
        self._thread = None
        self._state = {"state": "idle", "phase": None, "done": 0, "total": 0, "round": None,
                       "error": None, "started_at": None, "finished_at": None,
                       "strategy": None}

    def status(self):
        """Return a copy of the job state.

        Returns
        -------
        dict
            ``state`` (idle, running, done, failed), ``phase``, ``done`` / ``total`` (e.g. epochs),
            ``round``, ``error``, ``strategy``.
        """
        with self._lock:
            return dict(self._state)

    def running(self):
        """Tell whether a round runs in this service's thread now.

        Returns
        -------
        bool
            True while the background round runs.
        """
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, strategy=None, cost_aware=None):
        """Start a round in the background.

        The checks run before starting: a round refused for too few labels or an unknown strategy
        never starts.

        Parameters
        ----------
        strategy : str or None, default=None
            The round's strategy; None: the project's.
        cost_aware : bool or None, default=None
            Whether the round is cost-aware; None: the project's setting.

        Raises
        ------
        RuntimeError
            If a round is running, here or in another process
            (:class:`~skal.labeling.store.RoundRunningError`).
        ValueError
            For an unknown strategy or too few labels.
        """
        from .store import RoundRunningError

        self.project.check_ready(strategy, cost_aware=cost_aware)
        running = self.project.store.running_round()
        if running is not None:
            raise RoundRunningError(
                f"Round {running['id']} of this project is already running (process "
                f"{running['pid']} on {running['host']}); wait for it to finish.")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("A round is already running; wait for it to finish.")
            self._state.update(state="running", phase="starting", done=0, total=0, round=None,
                               error=None, started_at=time.time(), finished_at=None,
                               strategy=strategy or self.project.config["strategy"])
            self._thread = threading.Thread(target=self._run, args=(strategy, cost_aware),
                                            name="skal-train", daemon=True)
            self._thread.start()

    def _report(self, phase, done, total):
        with self._lock:
            self._state.update(phase=phase, done=int(done), total=int(total))

    def _run(self, strategy, cost_aware=None):
        try:
            result = self.project.train_and_query(strategy, progress=self._report,
                                                  cost_aware=cost_aware)
        except Exception as exc:  # shown on the page; the round is marked failed in the store
            with self._lock:
                self._state.update(state="failed", error=f"{type(exc).__name__}: {exc}",
                                   finished_at=time.time())
            return
        with self._lock:
            self._state.update(state="done", phase="done", round=result["id"],
                               finished_at=time.time())

    def wait(self, timeout=None):
        """Wait for the running job (tests and scripts).

        Parameters
        ----------
        timeout : float or None, default=None
            Seconds to wait at most; None: until it ends.

        Returns
        -------
        dict
            Its final status (see :meth:`status`).
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()
