"""The rounds of a labelling project: train + query, the learning curve, the trained models.

:class:`TrainingMixin` is mixed into :class:`skal.labeling.Project`; the work is done by
:mod:`skal.labeling.rounds` (checks, training, querying) and :mod:`skal.labeling.files`
(checkpoints), the records kept by the store
(:class:`~skal.labeling.store_rounds.RoundsMixin`).
"""

from . import rounds as _rounds
from .files import load_checkpoint

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """Rounds of :class:`~skal.labeling.Project`: check, run, read back, load their models.

    A round trains a model on the labels given so far, scores it on the held-out labels and
    queries the next batch; the first batch of a project is a random one, without a model.

    See Also
    --------
    skal.labeling.rounds.train_and_query : What a round does.
    skal.labeling.service.TrainingService : Runs rounds in the background for the web page.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skal.labeling import Project
    >>> photos = os.path.join(tempfile.mkdtemp(), "photos")
    >>> os.makedirs(photos)
    >>> for i in range(4):
    ...     Image.fromarray(np.full((8, 8), 60 * i, np.uint8)).save(f"{photos}/{i}.png")
    >>> project = Project.init(photos + "-project", photos, ["cat", "dog"], batch_size=2)
    >>> [(r["id"], r["status"], r["strategy"]) for r in project.rounds()]
    [(1, 'done', 'random_sampling')]
    >>> project.learning_curve()
    []
    >>> project.close()
    """

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
