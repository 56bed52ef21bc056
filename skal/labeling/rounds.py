"""The rounds of a labelling project: train on the labels so far, evaluate, query the next batch.

A round is recorded as ``running`` first; when the model is trained, evaluated on the held-out
labels and has picked its batch, its checkpoint is written to ``PROJECT/models/`` and the batch
and results are committed in one transaction. A round that fails is marked ``failed`` (the error
is kept). Labels are never touched.

The pool is fixed when a round starts; answers go on meanwhile. Images answered while the model
trained leave the pool before the query, and those answered while it queried leave its ranking
(:data:`RANKED` times the batch size), so the next batch holds only images without an answer.

A round trains and queries through a :class:`skal.ActiveLearner`, the loop of the Python API and
of ``skal run``: it fits the round's estimator on the training labels (the learner hands the pool
to WAAL and the FixMatch recipes) and asks the project's strategy for the ranking.
"""

import os
from typing import NamedTuple

import numpy as np

from ..utils.seeds import wrap_seed
from ..utils.validation import accepted
from . import batch_report
from .files import save_checkpoint
from .settings import check_config, model_for, round_params

__all__ = ["RANKED", "PixelCache", "Ready", "check_ready", "first_batch", "in_holdout",
           "pool_ids", "train_and_query", "unanswered_first"]

#: A round ranks ``RANKED`` times its batch size, so that the images answered while it queried
#: (dropped from the ranking) are replaced by the next best ones.
RANKED = 2


def in_holdout(sha256, fraction):
    """Tell whether an image (by content hash) belongs to the held-out part.

    The held-out part is a fixed ``fraction`` of the content-hash space, so an image keeps its
    side from round to round.

    Parameters
    ----------
    sha256 : str
        The image's SHA-256, as hex.
    fraction : float
        The held-out share, in [0, 1].

    Returns
    -------
    bool
        True for a held-out image (never trained on).
    """
    return int(sha256[:8], 16) < fraction * 2**32


def pool_ids(store):
    """Return the ids of the images in use without a standing answer (the pool), in id order.

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store.

    Returns
    -------
    ndarray of int64
        The pool's image ids.
    """
    answered = {r["image_id"] for r in store.current()}
    return np.asarray([r["id"] for r in store.images() if r["id"] not in answered],
                      dtype=np.int64)


def first_batch(store):
    """Run round 1: a random batch of unlabelled images (there is no model yet).

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store; the round is recorded there (``failed`` if anything goes wrong).
    """
    config = store.config()
    pool = pool_ids(store)
    round_id = store.begin_round("random_sampling", None, {"seed": config["seed"]})
    try:
        rng = np.random.default_rng(config["seed"])
        picked = rng.choice(pool, min(config["batch_size"], len(pool)), replace=False) if len(
            pool) else []
        n_labeled = sum(r["kind"] == "label" for r in store.current())
        store.finish_round(
            round_id, [(int(i), None, None, None) for i in picked],
            n_labeled=n_labeled, n_train=0, n_holdout=0, accuracy=None,
        )
    except BaseException as exc:
        store.fail_round(round_id, f"{type(exc).__name__}: {exc}")
        raise


class Ready(NamedTuple):
    """What a round works with (see :func:`check_ready`).

    :func:`check_ready` builds it once every check passed; :func:`train_and_query` consumes it.

    Parameters
    ----------
    config : dict
        The project's settings, with the round's strategy.
    model : str
        The name of the model the round trains.
    train : list
        The label rows it trains on.
    held : list
        The held-out label rows it is scored on.
    pool : ndarray of int64
        The image ids it may query.
    current : list
        Every label row.

    See Also
    --------
    check_ready : Builds it.

    Examples
    --------
    >>> import numpy as np
    >>> Ready({}, "ResNet18Classifier", [], [], np.array([1, 2]), []).pool.tolist()
    [1, 2]
    """

    config: dict
    model: str
    train: list
    held: list
    pool: np.ndarray
    current: list


def check_ready(store, strategy=None, cost_aware=None):
    """Check that a round can run now and return what it works with.

    A round needs a known strategy, every registered image's file in the folder, labels of two
    classes in the training part and a non-empty pool.

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store.
    strategy : str or None, default=None
        The round's strategy; None: the project's.
    cost_aware : bool or None, default=None
        Whether the round ranks by information per expected second; None: the project's
        ``cost_aware`` setting.

    Returns
    -------
    ready : Ready
        ``(config, model, train, held, pool, current)``: the settings (with ``strategy``), the
        model's name, the training and held-out label rows, the pool's image ids and every
        label row.

    Raises
    ------
    ValueError
        Saying what is missing.
    """
    config = store.config()
    if strategy is not None:
        config["strategy"] = strategy
    if cost_aware is not None:
        config["cost_aware"] = cost_aware
    check_config(config)
    model = model_for(config)
    _check_files(store, config["image_root"])
    # several annotators' votes: the aggregated label of each image (the majority by default)
    current = store.training_labels(config.get("aggregation", "majority"))
    train = [r for r in current if not in_holdout(r["sha256"], config["holdout"])]
    held = [r for r in current if in_holdout(r["sha256"], config["holdout"])]
    train_classes = sorted({r["label"] for r in train})
    if len(train_classes) < 2:
        raise ValueError(
            f"Training needs labelled images of at least 2 classes; the training part has "
            f"{len(train)} label(s) of {train_classes or 'no class'} ({len(held)} more are "
            "held out for the learning curve). Label more images first."
        )
    pool = pool_ids(store)
    if not len(pool):
        raise ValueError("Every image is labelled or skipped: there is nothing to query.")
    return Ready(config, model, train, held, pool, current)


def _check_files(store, root):
    """Raise a ``ValueError`` naming the images in use whose file is missing from the folder."""
    missing = [r["path"] for r in store.images()
               if not os.path.isfile(os.path.join(root, *r["path"].split("/")))]
    if missing:
        project = os.path.dirname(os.path.abspath(store.path))
        raise ValueError(
            f"{len(missing)} registered image(s) are missing from the image folder {root} "
            f"(e.g. {', '.join(missing[:3])}): run 'skal label rescan {project}' (or "
            "Project.rescan()) to retire them (their answers are kept) and register new files."
        )


class PixelCache:
    """All images in use of a project as one uint8 array, in id order.

    The images are read once, and again only when the images (their ids, paths or contents)
    changed.

    See Also
    --------
    train_and_query : Reads the pixels through it.

    Examples
    --------
    >>> cache = PixelCache()
    >>> cache.load  # doctest: +ELLIPSIS
    <bound method PixelCache.load of <...PixelCache object at ...>>
    """

    def __init__(self):
        self._pixels = None
        self._rows = None
        self._key = None

    def load(self, store):
        """Return the images in use, reading them only if they changed.

        Parameters
        ----------
        store : skal.labeling.store.LabelStore
            The project's store.

        Returns
        -------
        pixels : ndarray of uint8, shape (n, C, H, W)
            The images, in id order.
        rows : dict of int to int
            ``{image id: row of pixels}``.
        """
        from ..data import read_images

        images = store.images()
        key = tuple((r["id"], r["path"], r["sha256"]) for r in images)
        if self._pixels is None or key != self._key:
            config = store.config()
            paths = [os.path.join(config["image_root"], *r["path"].split("/")) for r in images]
            X, _ = read_images(paths, image_size=tuple(config["image_size"]),
                               color="gray" if config["channels"] == 1 else "rgb")
            self._pixels = X
            self._rows = {r["id"]: i for i, r in enumerate(images)}
            self._key = key
        return self._pixels, self._rows


def train_and_query(store, project_path, pixels, classes, ready, progress=None):
    """Run a round on ``ready`` and return the finished round's row.

    Parameters
    ----------
    store : skal.labeling.store.LabelStore
        The project's store; the round is recorded there (``failed`` if anything goes wrong).
    project_path : str
        The project folder (its ``models/`` gets the checkpoint).
    pixels : PixelCache
        The project's images.
    classes : list of str
        The project's class names.
    ready : Ready
        From :func:`check_ready`.
    progress : callable or None, default=None
        Called as ``progress(phase, done, total)`` while the round runs.

    Returns
    -------
    sqlite3.Row or dict
        The finished round.
    """
    report = progress or (lambda *a: None)
    round_id = store.begin_round(ready.config["strategy"], ready.model,
                                 round_params(ready.config))
    try:
        return _run(store, project_path, pixels, classes, round_id, ready, report)
    except BaseException as exc:
        store.fail_round(round_id, f"{type(exc).__name__}: {exc}")
        raise


def _run(store, project_path, pixels, classes, round_id, ready, report):
    config, model, train, held, pool, current = ready
    report("loading images", 0, 1)
    X_all, rows = pixels.load(store)
    X_train = X_all[[rows[r["image_id"]] for r in train]]
    y_train = np.asarray([r["label"] for r in train])
    X_pool = X_all[[rows[int(i)] for i in pool]]
    seed = wrap_seed(int(config["seed"]) + round_id)
    from . import service

    encoder = service.project_encoder(config, project_path, X_all, report)  # None: no recipe
    service.project_features(config, encoder, project_path, X_all, report)  # head recipes
    learner = _fit(config, model, classes, seed, X_train, y_train, X_pool, report, encoder)
    estimator = learner.estimator_
    accuracy = None
    if held:
        report("evaluating", 0, 1)
        X_held = X_all[[rows[r["image_id"]] for r in held]]
        y_held = np.asarray([r["label"] for r in held])
        accuracy = float(np.mean(learner.predict(X_held) == y_held))
    stopping = _stopping(store, project_path, round_id, estimator, X_all, rows, config, held,
                         len(current), accuracy)
    report("querying", 0, 1)
    plan = batch_report.plan_query(store, config, estimator, X_all, rows, stopping)
    # the pool was fixed before training: images answered meanwhile leave it before the query,
    # and those answered while it queried leave its ranking before the batch is stored
    keep = np.isin(pool, pool_ids(store))
    pool, X_pool = pool[keep], X_pool[keep]
    n = min(int(config["batch_size"]), len(pool))
    ranking = _query(config, learner, X_pool, pool, seed,
                     min(RANKED * n, len(pool)), plan) if n else []
    report("saving the model", 0, 1)
    checkpoint, digest = save_checkpoint(  # the encoder: a reference to its file, not a copy
        project_path, round_id, estimator, service.encoder_file(config, project_path, encoder))
    queries = unanswered_first(ranking, pool_ids(store), n)
    batch_report.store_report(project_path, round_id, plan, queries, estimator,
                              X_all[[rows[q[0]] for q in queries]])
    store.finish_round(
        round_id, queries, n_labeled=len(current), n_train=len(train), n_holdout=len(held),
        accuracy=accuracy, checkpoint=checkpoint, checkpoint_sha256=digest,
    )
    report("done", 1, 1)
    return dict(store.round(round_id))


def _fit(config, model, classes, seed, X_train, y_train, X_pool, report, encoder=None):
    """The round's :class:`skal.ActiveLearner`, fitted on the training labels (its estimator
    also on the pool if its ``fit`` takes ``X_unlabeled``: WAAL, the FixMatch recipes)."""
    from .. import query
    from ..learner import ActiveLearner
    from . import service

    # an epoch is a pass over the labels (over the pool for WAAL); few labels -> more epochs
    per_epoch = -(-(len(X_pool) if model == "waal" else len(X_train))
                  // int(config["train_batch_size"]))
    epochs = max(int(config["epochs"]), -(-int(config["min_steps"]) // per_epoch))
    estimator = service.build_estimator(dict(config, epochs=epochs), model, classes, seed,
                                        report, encoder=encoder)
    # the learner trains the estimator built here (its progress callback as it is)
    learner = ActiveLearner(estimator, query_strategy=getattr(query, config["strategy"]),
                            clone_estimator=False)
    report("training", 0, epochs)
    return learner.fit(X_train, y_train, unlabeled=X_pool)


def unanswered_first(ranking, pool, n):
    """Return the first ``n`` rows of ``ranking`` whose image is still in ``pool``.

    Parameters
    ----------
    ranking : list of tuple
        ``(image id, ...)`` rows, best first.
    pool : array-like of int
        The ids without a standing answer.
    n : int
        How many rows to keep.

    Returns
    -------
    list of tuple
        The rows kept, in ranking order.
    """
    still = set(np.asarray(pool, dtype=np.int64).tolist())
    return [row for row in ranking if row[0] in still][:n]


def _query(config, learner, X_pool, pool, seed, n, plan=None):
    """The ``n`` best images of the pool, best first: ``(image id, score, guess, confidence)``
    rows; per expected second when ``plan`` (:class:`.batch_report.QueryPlan`) is cost-aware."""
    # what a strategy may take beyond the pool: MC passes, a subset (the labelled images are the
    # learner's X_training_)
    extra = {"n_samples": config["mc_samples"], "subsample": config["subsample"]}
    kwargs = accepted(learner.query_strategy, extra)
    if plan is not None and plan.cost_aware:  # the round's learner queries per expected second
        learner.set_params(query_strategy=plan.wrap(learner.query_strategy, kwargs))
        kwargs = {}
    idx, _, scores = learner.query(X_pool, n, random_state=seed, return_metrics=True, **kwargs)
    proba = learner.predict_proba(X_pool[idx])  # (n, n_classes)
    classes = list(learner.estimator_.classes_)
    return [
        (int(pool[i]), float(s), str(classes[int(np.argmax(p))]), float(np.max(p)))
        for i, s, p in zip(idx, scores, proba)
    ]


def _stopping(store, project_path, round_id, estimator, X_all, rows, config, held, n_labeled,
              accuracy):
    """The round's stopping and calibration report (:mod:`skal.labeling.diagnostics`), stored
    next to its checkpoint; an error in it is reported there and does not fail the round."""
    from .diagnostics import compute_report, write_report

    stop = [r for r in store.images() if in_holdout(r["sha256"], config["holdout"])]
    try:
        return compute_report(
            store, project_path, round_id, estimator, X_all[[rows[r["id"]] for r in stop]],
            [r["sha256"] for r in stop], X_all[[rows[r["image_id"]] for r in held]],
            np.asarray([r["label"] for r in held]), n_labeled, accuracy,
            int(config["batch_size"]))
    except Exception as exc:  # noqa: BLE001 - the labels matter more than the diagnostics
        error = {"error": f"{type(exc).__name__}: {exc}"}
        write_report(project_path, round_id, {"report": error})
        return error
