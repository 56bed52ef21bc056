"""Aggregating several annotators' labels: majority vote, Dawid-Skene, and their agreement.

Every function takes ``answers``, an iterable of ``(item, annotator, label)`` triples (any
hashable item and annotator; one label per annotator and item: a later triple of the same pair
replaces the earlier one). Only labels count here: skips are not answers about the class.

Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm", Applied Statistics 28(1): each annotator has a confusion matrix (the probability of
each answer given the true class), fitted by EM together with the class priors and each item's
posterior over the true class; it is initialised from the majority vote.
"""

import itertools
import math
from typing import NamedTuple

import numpy as np

__all__ = ["DawidSkeneResult", "agreement", "cohen_kappa", "dawid_skene", "fleiss_kappa",
           "item_agreement", "majority_vote"]


def _votes(answers, classes=None):
    """``(items, annotators, classes, triples)``: orders of first appearance (``classes`` as
    given, then unknown labels in order) and one ``(item, annotator, label)`` per pair."""
    last = {}
    for triple in answers:
        if not isinstance(triple, (tuple, list)) or len(triple) != 3:
            raise ValueError(f"answers must be (item, annotator, label) triples, got {triple!r}.")
        item, annotator, label = triple
        last.pop((item, annotator), None)  # a later answer of the pair: moved to the end
        last[(item, annotator)] = label
    if classes is not None:
        classes = list(classes)
        unknown = sorted({str(label) for label in last.values()} - {str(c) for c in classes})
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes!r}.")
        if any(label not in classes for label in last.values()):
            raise ValueError(f"Every label must be one of classes={classes!r}; got {unknown}.")
    else:
        classes = list(dict.fromkeys(last.values()))
    items = list(dict.fromkeys(item for item, _ in last))
    annotators = list(dict.fromkeys(a for _, a in last))
    return items, annotators, classes, [(i, a, label) for (i, a), label in last.items()]


def majority_vote(answers, classes=None):
    """The label most annotators gave to each item; a tie goes to the label given first.

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        A later answer of the same annotator on the same item replaces the earlier one.
    classes : sequence or None, default=None
        The allowed labels (others raise ``ValueError``); None: any.

    Returns
    -------
    labels : dict
        ``{item: label}`` for every answered item.

    Examples
    --------
    >>> majority_vote([(1, "ann", "cat"), (1, "bob", "dog"), (1, "eve", "dog"),
    ...                (2, "ann", "cat"), (2, "bob", "dog")])
    {1: 'dog', 2: 'cat'}
    """
    _, _, _, triples = _votes(answers, classes)
    counts = {}
    for item, _, label in triples:
        per_item = counts.setdefault(item, {})
        per_item[label] = per_item.get(label, 0) + 1  # (dict order: the label given first)
    return {item: max(c.items(), key=lambda kv: kv[1])[0] for item, c in counts.items()}


def item_agreement(answers, classes=None):
    """The share of each item's annotators who gave its majority label.

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        The answers; a later answer of an annotator on an item replaces the earlier one.
    classes : sequence or None, default=None
        The allowed labels (others raise ``ValueError``); None: any.

    Returns
    -------
    agreement : dict
        ``{item: (n_majority / n_annotators, n_annotators)}`` for every answered item (1.0 for
        an item with a single answer).

    Examples
    --------
    >>> item_agreement([(1, "ann", "cat"), (1, "bob", "dog"), (1, "eve", "dog")])
    {1: (0.6666666666666666, 3)}
    """
    _, _, _, triples = _votes(answers, classes)
    counts = {}
    for item, _, label in triples:
        counts.setdefault(item, []).append(label)
    return {item: (max(labels.count(x) for x in set(labels)) / len(labels), len(labels))
            for item, labels in counts.items()}


def cohen_kappa(answers, first, second, classes=None):
    """Compute Cohen's kappa of two annotators on the items both labelled.

    ``(p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of those items on which they agree and
    ``p_e = sum_k p1(k) p2(k)`` the agreement expected from each one's label frequencies.

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        The answers; a later answer of an annotator on an item replaces the earlier one.
    first, second : hashable
        The two annotators.
    classes : sequence or None, default=None
        The allowed labels (others raise ``ValueError``); None: any.

    Returns
    -------
    kappa : float
        NaN when they share no item, or when ``p_e`` is 1 (both always gave the one same label).

    Examples
    --------
    >>> answers = [(1, "a", "x"), (1, "b", "x"), (2, "a", "x"), (2, "b", "y"),
    ...            (3, "a", "y"), (3, "b", "y"), (4, "a", "y"), (4, "b", "y")]
    >>> cohen_kappa(answers, "a", "b")
    0.5
    """
    _, _, _, triples = _votes(answers, classes)
    one = {i: label for i, a, label in triples if a == first}
    two = {i: label for i, a, label in triples if a == second}
    return _kappa(one, two)


def _kappa(one, two):
    """Cohen's kappa of two ``{item: label}`` on their shared items (NaN when undefined)."""
    shared = [i for i in one if i in two]
    if not shared:
        return math.nan
    n = len(shared)
    p_o = sum(one[i] == two[i] for i in shared) / n
    labels = {one[i] for i in shared} | {two[i] for i in shared}
    p_e = sum((sum(one[i] == k for i in shared) / n) * (sum(two[i] == k for i in shared) / n)
              for k in labels)
    return math.nan if p_e == 1 else (p_o - p_e) / (1 - p_e)


def fleiss_kappa(answers, classes=None):
    """Fleiss' kappa of the items labelled by 2 or more annotators.

    With ``n_i`` annotators on item ``i``, ``n_ik`` of them answering ``k``:
    ``P_i = (sum_k n_ik^2 - n_i) / (n_i (n_i - 1))``, ``P = mean_i P_i``,
    ``p_k = sum_i n_ik / sum_i n_i``, ``P_e = sum_k p_k^2`` and kappa ``(P - P_e) / (1 - P_e)``
    (Fleiss 1971; items may have different numbers of annotators).

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        The answers; a later answer of an annotator on an item replaces the earlier one.
    classes : sequence or None, default=None
        The allowed labels (others raise ``ValueError``); None: any.

    Returns
    -------
    kappa : float
        NaN when no item has 2 answers, or when ``P_e`` is 1.

    Examples
    --------
    >>> fleiss_kappa([(1, "a", "x"), (1, "b", "x"), (2, "a", "y"), (2, "b", "y")])
    1.0
    """
    _, _, _, triples = _votes(answers, classes)
    per_item = {}
    for item, _, label in triples:
        per_item.setdefault(item, []).append(label)
    rated = [labels for labels in per_item.values() if len(labels) >= 2]
    if not rated:
        return math.nan
    totals, n_all, p_items = {}, 0, []
    for labels in rated:
        n = len(labels)
        counts = [labels.count(k) for k in set(labels)]
        p_items.append((sum(c * c for c in counts) - n) / (n * (n - 1)))
        for k in labels:
            totals[k] = totals.get(k, 0) + 1
        n_all += n
    p_bar = sum(p_items) / len(p_items)
    p_e = sum((t / n_all) ** 2 for t in totals.values())
    return math.nan if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def agreement(answers, classes=None):
    """Agreement of several annotators: what the labelling page's status shows.

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        The answers; a later answer of an annotator on an item replaces the earlier one.
    classes : sequence or None, default=None
        The allowed labels (others raise ``ValueError``); None: any.

    Returns
    -------
    report : dict
        ``n_items`` (answered items), ``n_overlap`` (items with 2 or more answers),
        ``mean_item_agreement`` (over those items; None without any), ``fleiss_kappa``,
        ``cohen_kappa`` (the mean over the pairs; None without a pair) and ``pairs``
        (``{"annotators": [a, b], "n_items", "kappa"}`` for each pair sharing an item); kappas
        that are undefined are None.
    """
    answers = list(answers)
    _, annotators, _, triples = _votes(answers, classes)
    per_item = item_agreement(triples)
    overlap = [share for share, n in per_item.values() if n >= 2]
    labels_of = {}
    for item, annotator, label in triples:
        labels_of.setdefault(annotator, {})[item] = label
    pairs = []
    for a, b in itertools.combinations(annotators, 2):
        n = len(labels_of[a].keys() & labels_of[b].keys())
        if n:
            kappa = _kappa(labels_of[a], labels_of[b])
            pairs.append({"annotators": [a, b], "n_items": n,
                          "kappa": None if math.isnan(kappa) else kappa})
    kappas = [p["kappa"] for p in pairs if p["kappa"] is not None]
    fleiss = fleiss_kappa(triples)
    return {
        "n_items": len(per_item), "n_overlap": len(overlap),
        "mean_item_agreement": sum(overlap) / len(overlap) if overlap else None,
        "fleiss_kappa": None if math.isnan(fleiss) else fleiss,
        "cohen_kappa": sum(kappas) / len(kappas) if kappas else None,
        "pairs": pairs,
    }


class DawidSkeneResult(NamedTuple):
    """What :func:`dawid_skene` found.

    The estimated true labels and their posteriors, each annotator's confusion matrix and the
    class priors, after EM converged (or stopped).

    Parameters
    ----------
    labels : dict
        ``{item: most probable true label}``.
    proba : dict
        ``{item: ndarray of shape (n_classes,)}``, the posterior over ``classes``.
    classes : list
        The order of ``proba``'s and ``confusion``'s entries.
    confusion : dict
        ``{annotator: ndarray of shape (n_classes, n_classes)}``: row = true class, column =
        the annotator's answer; rows sum to 1.
    priors : ndarray of shape (n_classes,)
        The class priors.
    n_iter : int
        EM iterations run.

    See Also
    --------
    dawid_skene : Returns it.
    majority_vote : The simpler aggregation.

    Examples
    --------
    >>> answers = [(1, "ann", "cat"), (1, "bob", "cat"), (2, "ann", "dog"), (2, "bob", "dog")]
    >>> dawid_skene(answers).labels
    {1: 'cat', 2: 'dog'}
    """

    labels: dict
    proba: dict
    classes: list
    confusion: dict
    priors: np.ndarray
    n_iter: int


def dawid_skene(answers, classes=None, *, max_iter=100, tol=1e-6, smoothing=0.01):
    """Aggregate labels with the Dawid-Skene model, fitted by EM.

    Each annotator ``a`` has a confusion matrix ``pi_a[j, l]`` (probability of answering ``l``
    when the truth is ``j``) and the classes have priors ``rho``; the posterior of item ``i``
    being ``j`` is proportional to ``rho[j] * prod_a pi_a[j, l_ai]``. EM starts from the
    majority vote's label shares per item, then alternates the M-step (``rho`` and ``pi`` from
    the posteriors, each count plus ``smoothing``) and the E-step, until no posterior moves by
    more than ``tol``. Annotators who are often right weigh more than those who are not, which
    settles ties and outvotes careless majorities.

    Parameters
    ----------
    answers : iterable of (item, annotator, label)
        The answers; a later answer of an annotator on an item replaces the earlier one.
    classes : sequence or None, default=None
        The label set (its order is that of ``proba``); None: the labels seen, in order of
        first appearance.
    max_iter : int, default=100
        At most this many EM iterations (an int >= 1).
    tol : float, default=1e-6
        Stop when the largest change of a posterior is below this (a float >= 0).
    smoothing : float, default=0.01
        Added to every confusion and prior count (a float > 0): keeps an unseen answer from
        having probability 0.

    Returns
    -------
    result : DawidSkeneResult
        ``labels``, ``proba``, ``classes``, ``confusion``, ``priors``, ``n_iter``; a posterior
        tie goes to the class first in ``classes``.

    Examples
    --------
    >>> answers = [(i, a, "x" if i < 3 else "y") for i in range(6) for a in ("p", "q")]
    >>> answers += [(i, "r", "y" if i < 3 else "x") for i in range(6)]  # always wrong
    >>> result = dawid_skene(answers)
    >>> [result.labels[i] for i in range(6)]
    ['x', 'x', 'x', 'y', 'y', 'y']
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be an int in the range [1, inf), got {max_iter!r}.")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a float in the range [0.0, inf), got {tol!r}.")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not (
            0 < smoothing < math.inf):
        raise ValueError(f"smoothing must be a float in the range (0.0, inf), got "
                         f"{smoothing!r}.")
    items, annotators, classes, triples = _votes(answers, classes)
    n_classes = len(classes)
    if not triples:
        return DawidSkeneResult({}, {}, classes, {}, np.full(n_classes, 1 / max(n_classes, 1)),
                                0)
    item_at = {item: i for i, item in enumerate(items)}
    annotator_at = {a: i for i, a in enumerate(annotators)}
    class_at = {c: i for i, c in enumerate(classes)}
    it = np.asarray([item_at[i] for i, _, _ in triples])            # (n_answers,)
    an = np.asarray([annotator_at[a] for _, a, _ in triples])       # (n_answers,)
    lab = np.asarray([class_at[label] for _, _, label in triples])  # (n_answers,)

    posterior = np.zeros((len(items), n_classes))  # (n_items, n_classes): majority shares
    np.add.at(posterior, (it, lab), 1.0)
    posterior /= posterior.sum(axis=1, keepdims=True)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        # M-step: priors and confusion matrices from the posteriors
        priors = posterior.sum(axis=0) + smoothing
        priors /= priors.sum()
        confusion = np.full((len(annotators), n_classes, n_classes), float(smoothing))
        np.add.at(confusion, (an, slice(None), lab), posterior[it])  # [a, true, answer]
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: the posteriors from the priors and the confusion matrices
        log_post = np.tile(np.log(priors), (len(items), 1))
        np.add.at(log_post, it, np.log(confusion[an, :, lab]))  # (n_answers, n_classes)
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = float(np.abs(updated - posterior).max())
        posterior = updated
        if change < tol:
            break
    best = posterior.argmax(axis=1)
    return DawidSkeneResult(
        labels={item: classes[int(best[i])] for i, item in enumerate(items)},
        proba={item: posterior[i] for i, item in enumerate(items)},
        classes=classes,
        confusion={a: confusion[j] for j, a in enumerate(annotators)},
        priors=priors, n_iter=n_iter,
    )
