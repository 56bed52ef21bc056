"""The team of a labelling project: its annotators, their tokens, and how far they agree.

:class:`TeamMixin` is mixed into :class:`skal.labeling.Project`; the annotators live in the
project's store (:class:`~skal.labeling.store_annotators.AnnotatorsMixin`) and the agreement is
:mod:`skal.labeling.aggregate`'s.
"""

__all__ = ["TeamMixin"]


class TeamMixin:
    """The annotators of :class:`~skal.labeling.Project` and their agreement.

    A registered annotator answers only with their token (shown once, only its hash is kept);
    a removed one keeps their answers and answers no more.

    See Also
    --------
    skal.labeling.aggregate.agreement : The agreement report.
    skal.labeling.project_answers.BatchMixin.my_items : The items an annotator holds.

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
    >>> token = project.add_annotator("ann")
    >>> _ = project.label("0.png", "cat", annotator="ann")
    >>> _ = project.label("0.png", "dog", annotator="bob")
    >>> project.agreement()["items"]
    {1: 0.5}
    >>> [a["name"] for a in project.annotators()]
    ['ann']
    >>> project.close()
    """

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
