"""A labelling project: a folder of images, a person as the oracle, and rounds of train + query.

:class:`Project` is the Python API (for notebooks) and what the web page and ``skal label`` use;
all of them read and write the same rows of ``PROJECT/skal.db`` (see :mod:`.store`). The work is
done by one module a job: :mod:`.settings` (the settings and their checks), :mod:`.ingest`
(creating a project from an image folder), :mod:`.rounds` (training and querying),
:mod:`.export` (CSV and ``ImageFolder`` exports) and :mod:`.files` (hashes, checkpoints).
:class:`Project` itself holds the store, the settings and the image folder; its other methods
come in one mixin per concern: :mod:`.project_answers` (the batch and the answers),
:mod:`.project_team` (annotators, agreement), :mod:`.project_rounds` (rounds, models) and
:mod:`.project_export` (labels, exports).
"""

import os

from . import rounds as _rounds
from .files import inside
from .ingest import RescanReport, create_project, rescan_project
from .project_answers import AnsweringMixin, BatchItem, BatchMixin
from .project_export import ExportMixin
from .project_rounds import TrainingMixin
from .project_team import TeamMixin
from .settings import DEFAULT_CONFIG, available_strategies, check_config
from .store import DB_NAME, LabelStore, is_url, project_store

__all__ = ["BatchItem", "Project", "RescanReport", "available_strategies", "DEFAULT_CONFIG"]


class Project(BatchMixin, AnsweringMixin, TeamMixin, TrainingMixin, ExportMixin):
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

    Notes
    -----
    This class opens and creates projects and holds their settings and image folder; the rest
    comes from one mixin per concern: the current batch
    (:class:`~skal.labeling.project_answers.BatchMixin`), the answers
    (:class:`~skal.labeling.project_answers.AnsweringMixin`), the team
    (:class:`~skal.labeling.project_team.TeamMixin`), the rounds and their models
    (:class:`~skal.labeling.project_rounds.TrainingMixin`) and the labels and exports
    (:class:`~skal.labeling.project_export.ExportMixin`).

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

    def close(self):
        """Close the project's store (also at the end of a ``with`` block)."""
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

