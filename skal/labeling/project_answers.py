"""The batch of a labelling project and the answers given to it.

:class:`BatchMixin` shows the current query batch (everyone's, or the items assigned to one
annotator) and :class:`AnsweringMixin` records labels, skips and undos, each committed before
the call returns; both are mixed into :class:`skal.labeling.Project`, whose ``store``
(:class:`~skal.labeling.store.LabelStore`) and ``config`` they use.
"""

import dataclasses
import getpass

import numpy as np

from .batch_report import load_report as load_batch_report
from .batch_report import with_details

__all__ = ["AnsweringMixin", "BatchItem", "BatchMixin"]


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


class BatchMixin:
    """The current query batch of :class:`~skal.labeling.Project`, whole or per annotator.

    The batch is the latest finished round's; with a team, each annotator holds a few of its
    items at a time (:meth:`my_items`, the project's ``assign_size``, ``overlap`` and
    ``assign_timeout``).

    See Also
    --------
    AnsweringMixin : Answers the batch's items.
    skal.labeling.store_annotators.AssignmentsMixin : Who holds which item.

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
    >>> [(item.path, item.answer) for item in project.next_batch()]
    [('2.png', None), ('3.png', None)]
    >>> [item.path for item in project.my_items("ann")]
    ['2.png', '3.png']
    >>> project.close()
    """

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


class AnsweringMixin:
    """Labels, skips and undos on the images of :class:`~skal.labeling.Project`.

    An image is named by its id or its path relative to the image folder; each answer is its
    annotator's vote, stored beside the other annotators' (see :mod:`skal.labeling.store`).

    See Also
    --------
    BatchMixin : The batch to answer.
    skal.labeling.store_answers.AnswersMixin : The store's side of the answers.

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
    >>> answer = project.label("0.png", "cat", annotator="ann")
    >>> _ = project.skip("1.png", annotator="ann")
    >>> project.undo(annotator="ann")  # the skip of image 2
    2
    >>> project.labels()
    {'0.png': 'cat'}
    >>> project.close()
    """

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


def _default_annotator():
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (e.g. some containers)
        return "python"
