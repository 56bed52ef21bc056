"""A labelling project: a folder of images, a person as the oracle, and rounds of train + query.

:class:`Project` is the Python API (for notebooks) and what the web page and ``skal label`` use;
all of them read and write the same rows of ``PROJECT/skal.db`` (see :mod:`.store`). The work is
done by one module a job: :mod:`.settings` (the settings and their checks), :mod:`.ingest`
(creating a project from an image folder), :mod:`.rounds` (training and querying),
:mod:`.export` (CSV and ``ImageFolder`` exports) and :mod:`.files` (hashes, checkpoints).
"""

import dataclasses
import getpass
import os

import numpy as np

from . import export as _export
from . import rounds as _rounds
from .batch_report import load_report as load_batch_report
from .batch_report import with_details
from .files import inside, load_checkpoint
from .ingest import RescanReport, create_project, rescan_project
from .rounds import in_holdout  # noqa: F401 (importable from here, as before the split)
from .settings import DEFAULT_CONFIG, available_strategies, check_config
from .store import DB_NAME, LabelStore, is_url, project_store

__all__ = ["BatchItem", "Project", "RescanReport", "available_strategies", "DEFAULT_CONFIG"]


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One image of a query batch.

    :meth:`Project.next_batch` returns them, best first, with the model's guess and the image's
    standing answer; the labelling page shows the same fields.

    Parameters
    ----------
    image_id : int
        The image's id in the project's store.
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
    calibrated_confidence : float or None, default=None
        The probability for ``guess`` after the round's temperature scaling (fitted on held-out
        labels); None when the round could fit no temperature (uncalibrated).
    calibrated : bool, default=False
        Whether ``calibrated_confidence`` is there.
    expected_seconds : float or None, default=None
        The expected annotation time from the round's time model (None without one).

    See Also
    --------
    Project.next_batch : The current batch as a list of items.

    Examples
    --------
    >>> from skal.labeling import BatchItem
    >>> item = BatchItem(3, "img/cat1.png", 0, 0.9, "cat", 0.6, None, None)
    >>> item.path, item.guess
    ('img/cat1.png', 'cat')
    """

    image_id: int
    path: str
    position: int
    score: object
    guess: object
    confidence: object
    answer: object
    label: object
    calibrated_confidence: object = None
    calibrated: bool = False
    expected_seconds: object = None


class Project:
    """Open a labelling project made by :meth:`Project.init` (or ``skal label init``).

    A project is a folder holding the SQLite store (``skal.db``: images, the answer log, rounds)
    and the checkpoints of the models it trained (``models/``); it points at an image folder it
    never modifies. The labelling page and this class work on the same store at the same time.

    Parameters
    ----------
    path : str or path-like
        The project folder (it holds ``skal.db`` and ``models/``).
    store : str or None, default=None
        The project's store: None: ``PROJECT/skal.db``, or the ``postgresql://`` URL written in
        ``PROJECT/skal.store``; a URL here overrides that one (e.g. with another user name).

    See Also
    --------
    skal.labeling.store.LabelStore : The store underneath.
    skal.labeling.start_server : The labelling page on the same project.

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

    def __init__(self, path, *, store=None):
        self.path = os.path.abspath(os.fspath(path))
        if store is not None and not is_url(store):
            raise ValueError(f"store must be None or a postgresql:// URL, got {store!r}.")
        db = store or project_store(self.path)
        if db is None:
            raise FileNotFoundError(
                f"{self.path!r} is not a skal labelling project (it has no {DB_NAME}); create "
                "one with 'skal label init'."
            )
        self.store = LabelStore(db, lock_dir=self.path)
        self.store.mark_interrupted()  # rounds of a killed process: 'interrupted'
        self._pixels = _rounds.PixelCache()

    # ------------------------------------------------------------------ creation
    @classmethod
    def init(cls, path, images, classes=None, *, image_size=None, color=None, store=None,
             **settings):
        """Create a project from a folder of images and return it, with a first random batch.

        Images directly in ``images`` are unlabelled; images in sub-folders are labelled with
        the sub-folder's name (a partially labelled ``ImageFolder``), recorded as answers of the
        annotator ``"import"``. Files that cannot be read are left out with a warning naming
        them, and so are symbolic links that lead out of the folder and names with control
        characters (a newline). An image is its content: of a file and its links or copies,
        only the first is registered (with a warning). Files added to the folder later are
        registered by :meth:`rescan`.

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
        store : str or None, default=None
            A ``postgresql://`` URL of an empty database for the project's store (a team
            server); None: ``PROJECT/skal.db`` (SQLite).
        **settings
            Any of :data:`DEFAULT_CONFIG` (``batch_size``, ``strategy``, ``width``, ``epochs``,
            ``overlap``, ``aggregation``, ...).

        Returns
        -------
        project : Project
        """
        path = create_project(path, images, classes, image_size=image_size, color=color,
                              settings=settings, stacklevel=3, store=store)
        project = cls(path, store=store)
        _rounds.first_batch(project.store)
        return project

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
        """Change settings of :data:`DEFAULT_CONFIG`; the next round uses them.

        Parameters
        ----------
        **settings : dict
            For instance ``strategy="entropy_sampling"`` or ``epochs=20``; checked before anything is
            written.

        Returns
        -------
        dict
            The project's new settings.
        """
        config = dict(self.config, **settings)
        check_config(config)
        self.store.set_config(config)
        return config

    def image_path(self, image_id=None, path=None):
        """Find the file of a registered image in use.

        Parameters
        ----------
        image_id : int or None, default=None
            The image's id.
        path : str or None, default=None
            Its registered path, relative to the image folder.

        Returns
        -------
        str or None
            The file's path, or None when the image is not registered, is retired, or its real path
            has left the image folder (e.g. a swapped symlink).
        """
        row = self.store.image(image_id=image_id, path=path)
        if row is None or row["retired_at"] is not None:
            return None
        root = self.image_root
        full = os.path.join(root, *row["path"].split("/"))
        if not inside(full, root) or not os.path.isfile(full):
            return None
        return full

    def next_batch(self):
        """Return the current query batch (the latest finished round's), best first.

        Returns
        -------
        items : list of BatchItem
            The batch's images with the model's guesses and their standing answers (empty before
            the first round).
        """
        latest = self.store.latest_done_round()
        if latest is None:
            return []
        return with_details([BatchItem(r["image_id"], r["path"], r["position"], r["score"],
                                       r["guess"], r["confidence"], r["kind"], r["label"])
                             for r in self.store.batch(latest["id"])],
                            load_batch_report(self.path, latest["id"]))

    def my_items(self, annotator=None):
        """The items of the current batch assigned to ``annotator``, assigning more.

        Each annotator holds up to ``assign_size`` unanswered items; each item goes to
        ``overlap`` annotators (those who answered it or hold it); the unanswered items of an
        annotator not seen for ``assign_timeout`` seconds go to others. Calling it keeps the
        annotator's items theirs.

        Parameters
        ----------
        annotator : str or None, default=None
            None: the user name of this process.

        Returns
        -------
        items : list of BatchItem
            Best first; ``answer`` and ``label`` are the annotator's own answer.
        """
        from .settings import check_name, team_settings

        annotator = check_name(annotator or _default_annotator(), "annotator")
        latest = self.store.latest_done_round()
        if latest is None:
            return []
        overlap, _, size, timeout = team_settings(self.config)
        ids = set(self.store.assign(latest["id"], annotator, size=size, overlap=overlap,
                                    timeout=timeout))
        own = {r["image_id"]: r for r in self.store.votes() if r["annotator"] == annotator}
        items = []
        for r in self.store.batch(latest["id"]):
            if r["image_id"] in ids:
                mine = own.get(r["image_id"])
                items.append(BatchItem(r["image_id"], r["path"], r["position"], r["score"],
                                       r["guess"], r["confidence"],
                                       mine["kind"] if mine else None,
                                       mine["label"] if mine else None))
        return with_details(items, load_batch_report(self.path, latest["id"]))

    def agreement(self):
        """How far the annotators agree, and how the project aggregates their labels.

        Returns
        -------
        report : dict
            :func:`skal.labeling.aggregate.agreement`'s report on every label vote, with
            ``items`` (``{image_id: agreement}`` of the items answered by 2 or more
            annotators), ``n_annotators`` and ``aggregation`` (the project's setting).
        """
        from .aggregate import agreement, item_agreement
        from .settings import team_settings

        triples = self.store.vote_triples()
        report = agreement(triples)
        report["items"] = {i: share for i, (share, n) in item_agreement(triples).items()
                           if n >= 2}
        report["n_annotators"] = len({a for _, a, _ in triples})
        report["aggregation"] = team_settings(self.config)[1]
        return report

    def add_annotator(self, name, *, replace=False):
        """Register an annotator and return their token (shown once; only its hash is kept).

        A registered name answers only with its token (on the page: open
        ``/?annotator_token=TOKEN`` once); a token also opens a server that needs its own.

        Parameters
        ----------
        name : str
            A valid annotator name.
        replace : bool, default=False
            Give a registered (or removed) annotator a new token.

        Returns
        -------
        token : str
            The annotator's new token.
        """
        return self.store.add_annotator(name, replace=replace)

    def remove_annotator(self, name):
        """Revoke an annotator's token; their answers are kept, the name answers no more.

        Parameters
        ----------
        name : str
            A registered annotator.
        """
        self.store.remove_annotator(name)

    def annotators(self):
        """The registered annotators.

        Returns
        -------
        list of dict
            ``name``, ``created_at``, ``removed_at`` (None unless removed).
        """
        return [dict(r) for r in self.store.annotators()]

    def labels(self):
        """Return the label of every labelled image in use.

        Returns
        -------
        dict of str to str
            ``{relative path: label}``; the labels of retired images stay in the store's answer log.
        """
        return {r["path"]: r["label"] for r in self.store.current() if r["kind"] == "label"}

    def label_counts(self):
        """Count the labelled images of each class.

        Returns
        -------
        dict of str to int
            ``{class: number of labelled images}``, zeros included.
        """
        return self.store.label_counts()

    def rounds(self):
        """Return every round of the project.

        Returns
        -------
        list of dict
            One dict per round (status, strategy, labels seen, accuracy, checkpoint, ...), oldest
            first.
        """
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

    def label(self, image, label, *, annotator=None, source="api", view_ms=None,
              client_id=None):
        """Record ``label`` for an image; committed before returning.

        Parameters
        ----------
        image : int or str
            The image's id or its path relative to the image folder.
        label : str
            One of :attr:`classes`.
        annotator : str or None, default=None
            Who answered; None: the user name of this process.
        source : str, default="api"
            Where the answer came from (recorded in the log).
        view_ms : int or None, default=None
            Milliseconds from the image being shown to the answer (recorded, exported).
        client_id : str or None, default=None
            The sender's id of this answer: re-sent with the same ``annotator`` and
            ``client_id`` it is stored once (the first answer's id is returned).

        Returns
        -------
        answer_id : int
            The id of the recorded answer.

        Raises
        ------
        KeyError
            If ``image`` is not an image of this project.
        skal.labeling.store.ImageRetiredError
            If the image was retired: it takes no answers.

        Notes
        -----
        Each annotator has one vote per image: a second annotator's answer is stored beside the
        first one's, never in its place; the image's label is the majority of the votes (see
        :mod:`skal.labeling.store`).
        """
        return self.store.add_answer(self._image_id(image), "label", label,
                                     annotator=annotator or _default_annotator(), source=source,
                                     view_ms=view_ms, client_id=client_id)

    def skip(self, image, *, annotator=None, source="api", view_ms=None, client_id=None):
        """Skip an image: it leaves the pool (it is not queried again) until the skip is undone.

        Parameters
        ----------
        image : int or str
            The image's id or its path relative to the image folder.
        annotator : str or None, default=None
            Who skipped it; None: the user name of this process.
        source : str, default="api"
            Where the answer came from (recorded in the log).
        view_ms : int or None, default=None
            Milliseconds from the image being shown to the answer (recorded, exported).
        client_id : str or None, default=None
            The sender's id of this answer: re-sent with the same ``annotator`` and
            ``client_id`` it is stored once (the first answer's id is returned).

        Returns
        -------
        int
            The id of the recorded skip.
        """
        return self.store.add_answer(self._image_id(image), "skip", None,
                                     annotator=annotator or _default_annotator(), source=source,
                                     view_ms=view_ms, client_id=client_id)

    def undo(self, *, annotator=None, image=None, source="api"):
        """Take back the latest answer of ``annotator`` (on ``image`` if given).

        Parameters
        ----------
        annotator : str or None, default=None
            Whose answer; None: the user name of this process.
        image : int, str or None, default=None
            Only an answer on this image (id or relative path).
        source : str, default="api"
            Recorded as the source of the undo.

        Returns
        -------
        int or None
            The undone answer's image id, or None when there was nothing to undo.

        Raises
        ------
        skal.labeling.store.NotYourAnswerError
            If ``image`` is given and only other annotators answered it.
        """
        image_id = None if image is None else self._image_id(image)
        row = self.store.undo(annotator=annotator or _default_annotator(), source=source,
                              image_id=image_id)
        return None if row is None else row["image_id"]

    # ------------------------------------------------------------------ the image folder
    def rescan(self, dry_run=False):
        """Bring the project up to date with its image folder; answers are never touched.

        New files are registered (labelled with their sub-folder's name when it is a class, as
        by :meth:`init`); images whose file left the folder are retired: their answers are kept,
        but they leave the pool, the batches, training and the exports. A registered content
        found under another name moves there (its answers follow it); a retired image whose
        file is back is in use again. A file whose content is already registered is not
        registered again. Files that cannot be read or served are left out with a warning.

        Parameters
        ----------
        dry_run : bool, default=False
            Report what would change, write nothing.

        Returns
        -------
        report : RescanReport
            ``added``, ``moved``, ``restored``, ``retired``, ``changed``, ``duplicates`` and
            ``refused`` paths.
        """
        return rescan_project(self.store, dry_run=dry_run, stacklevel=3)

    def unlock(self):
        """Mark the rounds left ``running`` by processes that are gone as ``interrupted``.

        Rounds are recognised as stale anyway (the process running a round holds a lock the
        kernel releases when it ends); this says so explicitly. Raises
        :class:`~skal.labeling.store.RoundRunningError` when a live process is running a round.

        Returns
        -------
        round_ids : list of int
            The rounds marked ``interrupted``.
        """
        return self.store.unlock()

    # ------------------------------------------------------------------ training
    def _pool_ids(self):
        return _rounds.pool_ids(self.store)

    def train_and_query(self, strategy=None, *, progress=None, cost_aware=None):
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
        cost_aware : bool or None, default=None
            Rank by information per expected second (:mod:`.batch_report`); None: the
            project's ``cost_aware`` setting.

        Returns
        -------
        round : dict
            The finished round (see :meth:`rounds`).
        """
        ready = self.check_ready(strategy, cost_aware=cost_aware)
        return _rounds.train_and_query(self.store, self.path, self._pixels, self.classes, ready,
                                       progress)

    def check_ready(self, strategy=None, *, cost_aware=None):
        """Check that a round can run now.

        A round needs a known strategy, every registered image's file in the folder, labels of two
        classes in the training part and a non-empty pool.

        Parameters
        ----------
        strategy : str or None, default=None
            The strategy the round would use; None: the project's.
        cost_aware : bool or None, default=None
            Whether it would be cost-aware; None: the project's setting.

        Returns
        -------
        config, model, train, held, pool, current
            What :meth:`train_and_query` works with.

        Raises
        ------
        ValueError
            Saying what is missing.
        """
        return _rounds.check_ready(self.store, strategy, cost_aware)

    def load_model(self, round_id=None):
        """Load the trained estimator of a round.

        The checkpoint's SHA-256 is checked against the database before it is unpickled. Only
        load projects you trust: a pickle can run code.

        Parameters
        ----------
        round_id : int or None, default=None
            The round; None: the latest finished round with a model.

        Returns
        -------
        estimator
            The fitted estimator (by default a :class:`skal.ResNet18Classifier`).

        Raises
        ------
        ValueError
            If no finished round with a model has that id (or none exists yet).
        """
        rounds = [r for r in self.store.rounds() if r["status"] == "done" and r["checkpoint"]]
        if round_id is not None:
            rounds = [r for r in rounds if r["id"] == round_id]
        if not rounds:
            raise ValueError("No finished round with a model" + (
                f" has id {round_id}." if round_id is not None else " yet: train one first."))
        return load_checkpoint(self.path, rounds[-1])

    # ------------------------------------------------------------------ export
    def export_csv(self, out, escape_formulas=True):
        """Write ``path,label,annotator,answered_at,sha256`` for every labelled image in use.

        ``path`` is relative to the image folder. Unless ``escape_formulas=False``, a cell a
        spreadsheet could read as a formula (it starts, maybe after blanks, with ``=``, ``+``, ``-``,
        ``@``, ``|``, tab, CR or LF; numbers excepted) is made inert: a path gets a leading ``./`` (it
        still names the same file), an annotator a leading ``'``; class names never look like
        formulas.

        Parameters
        ----------
        out : str or path-like
            The CSV file to write.
        escape_formulas : bool, default=True
            Make formula-like cells inert, as above.

        Returns
        -------
        int
            The number of rows written.
        """
        return _export.export_csv(self.store, out, escape_formulas=escape_formulas)

    def export_answers(self, out, escape_formulas=True):
        """Write every annotator's answer on every image in use as CSV.

        Columns ``path,annotator,answer,label,answered_at,view_ms,sha256`` (see
        :func:`skal.labeling.export.export_answers_csv`).

        Parameters
        ----------
        out : str or path-like
            The CSV file to write.
        escape_formulas : bool, default=True
            Make cells a spreadsheet could run as a formula inert (as :meth:`export_csv`).

        Returns
        -------
        int
            The number of rows.
        """
        return _export.export_answers_csv(self.store, out, escape_formulas=escape_formulas)

    def export_imagefolder(self, out):
        """Copy every labelled image to ``out/CLASS/`` (torchvision's ``ImageFolder`` layout).

        A file from a sub-folder is named ``sub__name.png``.

        Parameters
        ----------
        out : str or path-like
            The folder to fill; it must not exist or be empty.

        Returns
        -------
        int
            The number of files copied.
        """
        return _export.export_imagefolder(
            self.store, lambda image_id: self.image_path(image_id=image_id), out, stacklevel=3)

    def close(self):
        """Close the project's store (also at the end of a ``with`` block)."""
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _default_annotator():
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (e.g. some containers)
        return "python"
