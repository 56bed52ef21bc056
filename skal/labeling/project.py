"""A labelling project: a folder of images, a person as the oracle, and rounds of train + query.

:class:`Project` is the Python API (for notebooks) and what the web page and ``skal label`` use;
all of them read and write the same rows of ``PROJECT/skal.db`` (see :mod:`.store`).
"""

import csv
import dataclasses
import getpass
import hashlib
import inspect
import os
import pickle
import shutil
import warnings

import numpy as np

from .store import DB_NAME, LabelStore

__all__ = ["BatchItem", "Project", "available_strategies", "DEFAULT_CONFIG"]

#: Settings of a new project; every one can be given to :meth:`Project.init`.
DEFAULT_CONFIG = {
    "batch_size": 20,         # images per query batch
    "strategy": "bald",       # a query strategy of skal.query, by name
    "model": "auto",          # "resnet18", "waal", or "auto" (WAAL for waal_* strategies)
    "width": 16,              # ResNet18 channels of the first stage
    "epochs": 10,             # training epochs per round (at least)
    "min_steps": 100,         # ... and at least this many gradient steps (more epochs when few)
    "train_batch_size": 32,
    "lr": 1e-3,
    "mc_samples": 20,         # MC-dropout passes for BALD
    "subsample": None,        # BALD scores a random subset of this many pool images
    "holdout": 0.2,           # fraction of the labels kept out of training for the curve
    "seed": 0,
    "device": "cpu",
}

MODELS_DIR = "models"
_MAX_NAME = 100


def available_strategies():
    """Names of the query strategies in :mod:`skal.query` (modAL convention:
    ``strategy(learner, X_pool, n_instances, ...)``), sorted."""
    from .. import query

    names = []
    for name in getattr(query, "__all__", dir(query)):
        func = getattr(query, name, None)
        if not callable(func):
            continue
        try:
            params = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            continue
        if params[:2] == ["learner", "X_pool"] and "n_instances" in params:
            names.append(name)
    return sorted(names)


def _check_strategy(name):
    names = available_strategies()
    if name not in names:
        raise ValueError(
            f"The 'strategy' parameter must be one of {names}. Got {name!r} instead."
        )
    return name


def _model_for(config):
    model = config["model"]
    if model not in ("auto", "resnet18", "waal"):
        raise ValueError(
            f"The 'model' parameter must be 'auto', 'resnet18' or 'waal'. Got {model!r} instead."
        )
    if model == "auto":
        model = "waal" if config["strategy"].startswith("waal") else "resnet18"
    if config["strategy"].startswith("waal") and model != "waal":
        raise ValueError(
            f"The strategy {config['strategy']!r} needs model='waal' (or 'auto'); got "
            f"model={config['model']!r}."
        )
    return model


def check_name(name, what):
    """Validate a class or annotator name: 1-100 printable characters, no path separators."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(
            f"A {what} name must be a non-empty string without leading or trailing spaces. Got "
            f"{name!r} instead."
        )
    if len(name) > _MAX_NAME or not name.isprintable() or name in (".", "..") or any(
        ch in name for ch in "/\\"
    ):
        raise ValueError(
            f"A {what} name must be at most {_MAX_NAME} printable characters, not '.' or '..', "
            f"without '/' or '\\'. Got {name!r} instead."
        )
    return name


def _check_config(config):
    unknown = set(config) - set(DEFAULT_CONFIG) - {"image_size", "channels", "image_root"}
    if unknown:
        raise ValueError(
            f"Unknown project settings {sorted(unknown)}; expected some of "
            f"{sorted(DEFAULT_CONFIG)}."
        )
    _check_strategy(config["strategy"])
    _model_for(config)
    for key in ("batch_size", "width", "epochs", "train_batch_size", "mc_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"The '{key}' parameter must be an int >= 1. Got {value!r} instead.")
    steps = config["min_steps"]
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"The 'min_steps' parameter must be an int >= 0. Got {steps!r} instead.")
    if config["subsample"] is not None and (
        isinstance(config["subsample"], bool) or int(config["subsample"]) < 1
    ):
        raise ValueError(
            f"The 'subsample' parameter must be None or an int >= 1. Got "
            f"{config['subsample']!r} instead."
        )
    if not 0 <= float(config["holdout"]) < 1:
        raise ValueError(
            f"The 'holdout' parameter must be a fraction in [0, 1). Got {config['holdout']!r} "
            "instead."
        )
    if not float(config["lr"]) > 0:
        raise ValueError(f"The 'lr' parameter must be > 0. Got {config['lr']!r} instead.")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def in_holdout(sha256, fraction):
    """Whether an image (by content hash) belongs to the held-out part: a fixed ``fraction`` of
    the content-hash space, so an image keeps its side from round to round."""
    return int(sha256[:8], 16) < fraction * 2**32


def _inside(path, root):
    """Whether the real path of ``path`` lies inside the real folder ``root``."""
    real = os.path.realpath(path)
    return os.path.commonpath([real, root]) == root


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One image of a query batch.

    Attributes
    ----------
    image_id : int
    path : str
        Relative to the project's image folder (``/`` separators).
    position : int
        0 = the image the strategy found most informative.
    score : float or None
        The strategy's score (None for the first, random batch).
    guess : str or None
        The model's predicted class (None before any model).
    confidence : float or None
        The model's probability for ``guess``.
    answer : {"label", "skip"} or None
        The image's standing answer, if any.
    label : str or None
        The standing label.
    """

    image_id: int
    path: str
    position: int
    score: object
    guess: object
    confidence: object
    answer: object
    label: object


class Project:
    """Open a labelling project made by :meth:`Project.init` (or ``skal label init``).

    Parameters
    ----------
    path : str or path-like
        The project folder (it holds ``skal.db`` and ``models/``).

    Examples
    --------
    >>> from skal.labeling import Project
    >>> project = Project.init("pets", images="photos/", classes=["cat", "dog"],
    ...                        image_size=64)  # doctest: +SKIP
    >>> for item in project.next_batch():  # doctest: +SKIP
    ...     project.label(item.image_id, "cat")
    >>> project.train_and_query()  # doctest: +SKIP
    >>> project.learning_curve()  # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        db = os.path.join(self.path, DB_NAME)
        if not os.path.isfile(db):
            raise FileNotFoundError(
                f"{self.path!r} is not a skal labelling project (it has no {DB_NAME}); create "
                "one with 'skal label init'."
            )
        self.store = LabelStore(db)
        self.store.mark_interrupted()  # rounds of a killed process: 'interrupted'
        self._pixels = None
        self._rows = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def init(cls, path, images, classes=None, *, image_size=None, color=None, **settings):
        """Create a project from a folder of images and return it, with a first random batch.

        Images directly in ``images`` are unlabelled; images in sub-folders are labelled with
        the sub-folder's name (a partially labelled ``ImageFolder``), recorded as answers of the
        annotator ``"import"``. Files that cannot be read are left out with a warning naming
        them; symbolic links that lead out of the folder are left out too.

        Parameters
        ----------
        path : str or path-like
            The project folder to create (it must not hold a project yet).
        images : str or path-like
            The image folder. Its files are read, never modified or moved.
        classes : list of str or None
            The class names; the sub-folder names are added after them.
        image_size : int, (height, width) or None
            The size the model sees; None when every image has one size.
        color : {"gray", "rgb"} or None
            None: gray when every image is gray.
        **settings
            Any of :data:`DEFAULT_CONFIG` (``batch_size``, ``strategy``, ``width``, ``epochs``,
            ...).

        Returns
        -------
        project : Project
        """
        from .._sources import _check_color, _check_image_size, read_images, scan_image_folder

        config = dict(DEFAULT_CONFIG, **settings)
        _check_config(config)
        path = os.path.abspath(os.fspath(path))
        if os.path.exists(os.path.join(path, DB_NAME)):
            raise FileExistsError(f"{path!r} already holds a labelling project; open it instead.")
        root = os.path.realpath(os.fspath(images))
        size = _check_image_size(image_size, "Project.init")
        channels = _check_color(color, "Project.init")
        paths, folder_labels = scan_image_folder(root)
        outside = [p for p in paths if not _inside(p, root)]
        if outside:
            warnings.warn(
                f"{len(outside)} file(s) are links that lead out of {root} and were left out: "
                + ", ".join(outside[:5]), stacklevel=2)
            keep = [i for i, p in enumerate(paths) if _inside(p, root)]
            paths, folder_labels = [paths[i] for i in keep], [folder_labels[i] for i in keep]
        if not paths:
            raise ValueError(f"The folder {root!r} holds no PNG, JPEG or WebP image.")
        names = list(classes or [])
        for name in folder_labels:
            if name is not None and name not in names:
                names.append(name)
        for name in names:
            check_name(name, "class")
        if len(set(names)) != len(names):
            raise ValueError(f"The class names must be unique; got {names}.")
        if len(names) < 2:
            raise ValueError(
                f"A project needs at least 2 classes (--classes a,b,... or class sub-folders); "
                f"got {names}."
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X, kept = read_images(paths, image_size=size, color={1: "gray", 3: "rgb"}.get(
                channels), on_error="skip")
        for w in caught:
            warnings.warn(str(w.message), stacklevel=2)
        if not len(kept):
            raise ValueError(f"None of the images in {root!r} could be read.")
        paths = [paths[i] for i in kept]
        folder_labels = [folder_labels[i] for i in kept]
        config.update(image_root=root, image_size=list(X.shape[2:]), channels=int(X.shape[1]))

        os.makedirs(os.path.join(path, MODELS_DIR), exist_ok=True)
        store = LabelStore.create(os.path.join(path, DB_NAME), names, config)
        rows = []
        for p in paths:
            from PIL import Image

            with Image.open(p) as im:
                rows.append((os.path.relpath(p, root).replace(os.sep, "/"), _sha256(p),
                             im.height, im.width))
        ids = store.add_images(rows)
        for image_id, label in zip(ids, folder_labels):
            if label is not None:
                store.add_answer(image_id, "label", label, annotator="import", source="import")
        store.close()
        project = cls(path)
        project._first_batch()
        return project

    def _first_batch(self):
        """Round 1: a random batch of unlabelled images (there is no model yet)."""
        config = self.config
        pool = self._pool_ids()
        round_id = self.store.begin_round("random_sampling", None, {"seed": config["seed"]})
        rng = np.random.default_rng(config["seed"])
        picked = rng.choice(pool, min(config["batch_size"], len(pool)), replace=False) if len(
            pool) else []
        self.store.finish_round(
            round_id, [(int(i), None, None, None) for i in picked],
            n_labeled=self._n_labeled(), n_train=0, n_holdout=0, accuracy=None,
        )

    # ------------------------------------------------------------------ reading
    @property
    def config(self):
        """The project settings (a dict; change them with :meth:`configure`)."""
        return self.store.config()

    @property
    def classes(self):
        """The class names, in order."""
        return self.store.classes()

    @property
    def image_root(self):
        return self.config["image_root"]

    def configure(self, **settings):
        """Change settings of :data:`DEFAULT_CONFIG` (e.g. ``strategy="entropy_sampling"``,
        ``epochs=20``); the next round uses them."""
        config = dict(self.config, **settings)
        _check_config(config)
        self.store.set_config(config)
        return config

    def image_path(self, image_id=None, path=None):
        """The file of a registered image (by id or registered relative path), or None when it is
        not registered or its real path has left the image folder (e.g. a swapped symlink)."""
        row = self.store.image(image_id=image_id, path=path)
        if row is None:
            return None
        root = self.image_root
        full = os.path.join(root, *row["path"].split("/"))
        if not _inside(full, root) or not os.path.isfile(full):
            return None
        return full

    def next_batch(self):
        """The current query batch (the latest finished round's), best first.

        Returns
        -------
        items : list of BatchItem
        """
        latest = self.store.latest_done_round()
        if latest is None:
            return []
        return [BatchItem(r["image_id"], r["path"], r["position"], r["score"], r["guess"],
                          r["confidence"], r["kind"], r["label"])
                for r in self.store.batch(latest["id"])]

    def labels(self):
        """``{relative path: label}`` for every labelled image."""
        return {r["path"]: r["label"] for r in self.store.current() if r["kind"] == "label"}

    def label_counts(self):
        """``{class: number of labelled images}`` (zeros included)."""
        return self.store.label_counts()

    def rounds(self):
        """Every round as a dict (status, strategy, labels seen, accuracy, checkpoint, ...)."""
        return [dict(r) for r in self.store.rounds()]

    def learning_curve(self):
        """Held-out accuracy per finished round that trained a model.

        Returns
        -------
        curve : list of dict
            ``round``, ``n_labeled`` (all labels the round saw), ``n_train``, ``n_holdout``,
            ``accuracy`` (None when nothing was held out).
        """
        return [
            {"round": r["id"], "n_labeled": r["n_labeled"], "n_train": r["n_train"],
             "n_holdout": r["n_holdout"], "accuracy": r["accuracy"]}
            for r in self.store.rounds() if r["status"] == "done" and r["model"] is not None
        ]

    # ------------------------------------------------------------------ answering
    def _image_id(self, image):
        if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
            row = self.store.image(image_id=int(image))
        elif isinstance(image, str):
            row = self.store.image(path=image)
        else:
            row = None
        if row is None:
            raise KeyError(f"{image!r} is not an image of this project (give an id or a path).")
        return row["id"]

    def label(self, image, label, *, annotator=None, source="api"):
        """Record ``label`` for an image (id or relative path); committed before returning.

        Returns
        -------
        answer_id : int
        """
        return self.store.add_answer(self._image_id(image), "label", label,
                                     annotator=annotator or _default_annotator(), source=source)

    def skip(self, image, *, annotator=None, source="api"):
        """Skip an image: it leaves the pool (it is not queried again) until the skip is undone."""
        return self.store.add_answer(self._image_id(image), "skip", None,
                                     annotator=annotator or _default_annotator(), source=source)

    def undo(self, *, annotator=None, image=None, source="api"):
        """Take back the latest answer of ``annotator`` (on ``image`` if given); returns the
        undone answer's image id, or None when there was nothing to undo."""
        image_id = None if image is None else self._image_id(image)
        row = self.store.undo(annotator=annotator or _default_annotator(), source=source,
                              image_id=image_id)
        return None if row is None else row["image_id"]

    # ------------------------------------------------------------------ training
    def _pool_ids(self):
        answered = {r["image_id"] for r in self.store.current()}
        return np.asarray([r["id"] for r in self.store.images() if r["id"] not in answered],
                          dtype=np.int64)

    def _n_labeled(self):
        return sum(r["kind"] == "label" for r in self.store.current())

    def _load_pixels(self):
        """All registered images as one uint8 array, in id order (read once, then cached)."""
        from .._sources import read_images

        images = self.store.images()
        if self._pixels is None or len(self._rows) != len(images):
            config = self.config
            paths = [os.path.join(config["image_root"], *r["path"].split("/")) for r in images]
            X, _ = read_images(paths, image_size=tuple(config["image_size"]),
                               color="gray" if config["channels"] == 1 else "rgb")
            self._pixels = X
            self._rows = {r["id"]: i for i, r in enumerate(images)}
        return self._pixels, self._rows

    def train_and_query(self, strategy=None, *, progress=None):
        """Train a model on the labels given so far and query the next batch (blocking).

        The round is recorded as ``running`` first; when the model is trained, evaluated on the
        held-out labels and has picked its batch, its checkpoint is written to
        ``PROJECT/models/`` and the batch and results are committed in one transaction. A round
        that fails is marked ``failed`` (the error is kept); one whose process is killed is
        marked ``interrupted`` when the project is next opened. Labels are never touched.

        Parameters
        ----------
        strategy : str or None
            A strategy of :mod:`skal.query` by name; None uses the project's (``bald``).
        progress : callable or None
            Called as ``progress(phase, done, total)`` while the round runs.

        Returns
        -------
        round : dict
            The finished round (see :meth:`rounds`).
        """
        config, model, train, held, pool, current = self.check_ready(strategy)
        report = progress or (lambda *a: None)
        round_id = self.store.begin_round(config["strategy"], model, _round_params(config))
        try:
            result = self._run_round(round_id, config, model, train, held, pool, current, report)
        except BaseException as exc:
            self.store.fail_round(round_id, f"{type(exc).__name__}: {exc}")
            raise
        return result

    def check_ready(self, strategy=None):
        """Check that a round can run now (a known strategy, labels of 2 classes in the training
        part, a non-empty pool); raises ``ValueError`` saying what is missing.

        Returns
        -------
        config, model, train, held, pool, current
            What :meth:`train_and_query` works with.
        """
        config = self.config
        if strategy is not None:
            config["strategy"] = strategy
        _check_config(config)
        model = _model_for(config)
        current = [r for r in self.store.current() if r["kind"] == "label"]
        train = [r for r in current if not in_holdout(r["sha256"], config["holdout"])]
        held = [r for r in current if in_holdout(r["sha256"], config["holdout"])]
        train_classes = sorted({r["label"] for r in train})
        if len(train_classes) < 2:
            raise ValueError(
                f"Training needs labelled images of at least 2 classes; the training part has "
                f"{len(train)} label(s) of {train_classes or 'no class'} ({len(held)} more are "
                "held out for the learning curve). Label more images first."
            )
        pool = self._pool_ids()
        if not len(pool):
            raise ValueError("Every image is labelled or skipped: there is nothing to query.")
        return config, model, train, held, pool, current

    def _run_round(self, round_id, config, model, train, held, pool, current, report):
        from .. import query
        from .service import build_estimator

        report("loading images", 0, 1)
        X_all, rows = self._load_pixels()
        X_train = X_all[[rows[r["image_id"]] for r in train]]
        y_train = np.asarray([r["label"] for r in train])
        X_pool = X_all[[rows[int(i)] for i in pool]]
        seed = (int(config["seed"]) + round_id) % (2**31 - 1)
        # an epoch is a pass over the labels (over the pool for WAAL); few labels -> more epochs
        per_epoch = -(-(len(pool) if model == "waal" else len(train))
                      // int(config["train_batch_size"]))
        epochs = max(int(config["epochs"]), -(-int(config["min_steps"]) // per_epoch))
        estimator = build_estimator(dict(config, epochs=epochs), model, self.classes, seed,
                                    report)
        report("training", 0, epochs)
        if model == "waal":
            estimator.fit(X_train, y_train, X_unlabeled=X_pool)
        else:
            estimator.fit(X_train, y_train)
        accuracy = None
        if held:
            report("evaluating", 0, 1)
            X_held = X_all[[rows[r["image_id"]] for r in held]]
            y_held = np.asarray([r["label"] for r in held])
            accuracy = float(np.mean(estimator.predict(X_held) == y_held))
        report("querying", 0, 1)
        func = getattr(query, config["strategy"])
        accepted = inspect.signature(func).parameters
        # what a strategy may take beyond the pool: MC passes, a subset, the labelled images
        extra = {"n_samples": config["mc_samples"], "subsample": config["subsample"],
                 "X_labeled": X_train}
        kwargs = {k: v for k, v in extra.items() if k in accepted}
        n = min(int(config["batch_size"]), len(pool))
        idx, scores = func(estimator, X_pool, n_instances=n, random_state=seed, **kwargs)
        proba = estimator.predict_proba(X_pool[idx])  # (n, n_classes)
        classes = list(estimator.classes_)
        queries = [
            (int(pool[i]), float(s), str(classes[int(np.argmax(p))]), float(np.max(p)))
            for i, s, p in zip(idx, scores, proba)
        ]
        report("saving the model", 0, 1)
        checkpoint, digest = self._save_model(round_id, estimator)
        self.store.finish_round(
            round_id, queries, n_labeled=len(current), n_train=len(train), n_holdout=len(held),
            accuracy=accuracy, checkpoint=checkpoint, checkpoint_sha256=digest,
        )
        report("done", 1, 1)
        return dict(self.store.round(round_id))

    def _save_model(self, round_id, estimator):
        """Pickle the estimator to ``models/round_NNNN.pkl``: written to a temporary file,
        flushed to disk, then renamed (a kill leaves either no file or a whole one)."""
        name = f"round_{round_id:04d}.pkl"
        folder = os.path.join(self.path, MODELS_DIR)
        os.makedirs(folder, exist_ok=True)
        final = os.path.join(folder, name)
        tmp = final + f".tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return f"{MODELS_DIR}/{name}", _sha256(final)

    def load_model(self, round_id=None):
        """The trained estimator of a round (the latest one with a model when None).

        The checkpoint's SHA-256 is checked against the database before it is unpickled. Only
        load projects you trust: a pickle can run code.
        """
        rounds = [r for r in self.store.rounds() if r["status"] == "done" and r["checkpoint"]]
        if round_id is not None:
            rounds = [r for r in rounds if r["id"] == round_id]
        if not rounds:
            raise ValueError("No finished round with a model" + (
                f" has id {round_id}." if round_id is not None else " yet: train one first."))
        row = rounds[-1]
        path = os.path.join(self.path, *row["checkpoint"].split("/"))
        if _sha256(path) != row["checkpoint_sha256"]:
            raise ValueError(f"{path} does not match the checksum recorded for round {row['id']}.")
        with open(path, "rb") as f:
            return pickle.load(f)

    # ------------------------------------------------------------------ export
    def export_csv(self, out):
        """Write ``path,label,annotator,answered_at,sha256`` for every labelled image; returns
        the number of rows (``path`` is relative to the image folder)."""
        import datetime

        rows = [r for r in self.store.current() if r["kind"] == "label"]
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "annotator", "answered_at", "sha256"])
            for r in rows:
                when = datetime.datetime.fromtimestamp(r["created_at"], datetime.timezone.utc)
                writer.writerow([r["path"], r["label"], r["annotator"],
                                 when.isoformat(timespec="seconds"), r["sha256"]])
        return len(rows)

    def export_imagefolder(self, out):
        """Copy every labelled image to ``out/CLASS/`` (torchvision's ``ImageFolder`` layout; a
        file from a sub-folder is named ``sub__name.png``); returns the number of files.
        ``out`` must not exist or be empty."""
        out = os.fspath(out)
        if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
            raise FileExistsError(f"{out!r} exists and is not an empty folder.")
        n = 0
        for r in self.store.current():
            if r["kind"] != "label":
                continue
            source = self.image_path(image_id=r["image_id"])
            if source is None:
                warnings.warn(f"{r['path']} is missing from the image folder; not exported.",
                              stacklevel=2)
                continue
            folder = os.path.join(out, r["label"])
            os.makedirs(folder, exist_ok=True)
            shutil.copy2(source, os.path.join(folder, r["path"].replace("/", "__")))
            n += 1
        return n

    def close(self):
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _round_params(config):
    keys = ("width", "epochs", "min_steps", "train_batch_size", "lr", "mc_samples", "subsample", "holdout",
            "seed", "device", "batch_size")
    return {k: config[k] for k in keys}


def _default_annotator():
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (e.g. some containers)
        return "python"
