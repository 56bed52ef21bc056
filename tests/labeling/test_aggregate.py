"""skal.labeling.aggregate: majority vote, Dawid-Skene and agreement, on hand-computed cases."""

import math

import numpy as np
import pytest

from skal.labeling.aggregate import (
    agreement,
    cohen_kappa,
    dawid_skene,
    fleiss_kappa,
    item_agreement,
    majority_vote,
)


def test_majority_vote_counts_one_vote_per_annotator_and_ties_go_to_the_first_label():
    answers = [(1, "a", "cat"), (1, "b", "dog"),           # a tie: cat came first
               (2, "a", "dog"), (2, "b", "cat"), (2, "c", "cat"),
               (3, "a", "cat"), (3, "a", "dog"), (3, "b", "cat")]  # a's later answer counts
    # a's re-answer on item 3 makes it 1 dog : 1 cat, and a's dog was given before b's cat
    assert majority_vote(answers) == {1: "cat", 2: "cat", 3: "dog"}
    assert item_agreement(answers) == {1: (0.5, 2), 2: (2 / 3, 3), 3: (0.5, 2)}
    with pytest.raises(ValueError, match=r"Every label must be one of classes=\['cat'\]"):
        majority_vote(answers, classes=["cat"])
    with pytest.raises(ValueError, match=r"answers must be \(item, annotator, label\) triples"):
        majority_vote([(1, "a")])


def test_cohen_kappa_by_hand_and_against_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    # p_o = 3/4; a: x 1/2, y 1/2; b: x 1/4, y 3/4; p_e = 1/8 + 3/8 = 1/2; kappa = 1/2
    answers = [(1, "a", "x"), (1, "b", "x"), (2, "a", "x"), (2, "b", "y"),
               (3, "a", "y"), (3, "b", "y"), (4, "a", "y"), (4, "b", "y"),
               (5, "a", "x")]  # only a: not shared, left out
    assert cohen_kappa(answers, "a", "b") == pytest.approx(0.5)
    assert cohen_kappa(answers, "a", "b") == pytest.approx(
        cohen_kappa_score(list("xxyy"), list("xyyy")))
    assert math.isnan(cohen_kappa(answers, "a", "nobody"))
    assert math.isnan(cohen_kappa([(1, "a", "x"), (1, "b", "x")], "a", "b"))  # p_e = 1


def test_fleiss_kappa_by_hand():
    # P_i = 1, 1/3, 1 -> P = 7/9; p_x = 5/9, p_y = 4/9 -> P_e = 41/81; kappa = 22/40
    answers = [(1, r, "x") for r in "abc"] + [(2, "a", "x"), (2, "b", "x"), (2, "c", "y")] + [
        (3, r, "y") for r in "abc"] + [(4, "a", "x")]  # one answer: left out
    assert fleiss_kappa(answers) == pytest.approx(22 / 40)
    # varying numbers of annotators: item 1 (2 of x), item 2 (x, y, y): P = (1 + 1/3) / 2
    uneven = [(1, "a", "x"), (1, "b", "x"), (2, "a", "x"), (2, "b", "y"), (2, "c", "y")]
    p_e = (3 / 5) ** 2 + (2 / 5) ** 2
    assert fleiss_kappa(uneven) == pytest.approx(((1 + 1 / 3) / 2 - p_e) / (1 - p_e))
    assert math.isnan(fleiss_kappa([(1, "a", "x")]))


def test_agreement_report():
    answers = [(1, "a", "x"), (1, "b", "x"), (2, "a", "x"), (2, "b", "y"),
               (3, "a", "y"), (3, "b", "y"), (4, "a", "y"), (4, "b", "y"), (5, "c", "x")]
    report = agreement(answers)
    assert report["n_items"] == 5 and report["n_overlap"] == 4
    assert report["mean_item_agreement"] == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert report["cohen_kappa"] == pytest.approx(0.5)
    assert report["pairs"] == [{"annotators": ["a", "b"], "n_items": 4, "kappa": 0.5}]
    assert agreement([]) == {"n_items": 0, "n_overlap": 0, "mean_item_agreement": None,
                             "fleiss_kappa": None, "cohen_kappa": None, "pairs": []}


def test_dawid_skene_reads_an_annotator_who_always_flips():
    # p and q are right on items 0-5, r always answers the other class; on items 6 and 7 only r
    # answered: the majority takes r's word, Dawid-Skene inverts it (r's confusion is learnt on
    # the items p and q also answered)
    truth = {i: "x" if i % 2 else "y" for i in range(8)}
    flip = {"x": "y", "y": "x"}
    answers = [(i, a, truth[i]) for i in range(6) for a in "pq"]
    answers += [(i, "r", flip[truth[i]]) for i in range(8)]
    assert majority_vote(answers)[6] == flip[truth[6]]
    result = dawid_skene(answers, classes=["x", "y"])
    assert result.labels == truth
    assert result.confusion["r"][0, 1] > 0.9 and result.confusion["r"][1, 0] > 0.9
    assert result.confusion["p"][0, 0] > 0.9 and result.confusion["p"][1, 1] > 0.9
    assert result.classes == ["x", "y"]
    for proba in result.proba.values():
        assert proba.shape == (2,) and proba.sum() == pytest.approx(1.0)
    assert result.priors.sum() == pytest.approx(1.0)
    assert 1 <= result.n_iter < 100


def test_dawid_skene_beats_the_majority_against_careless_annotators():
    rng = np.random.default_rng(0)
    n_items, classes = 300, ["a", "b", "c"]
    truth = rng.integers(0, 3, n_items)
    accuracy = {"good": 0.9, "fair": 0.7, "care1": 0.4, "care2": 0.4}  # else a random other
    answers = []
    for i in range(n_items):
        for who, acc in accuracy.items():
            if rng.random() < acc:
                label = truth[i]
            else:
                label = (truth[i] + rng.integers(1, 3)) % 3
            answers.append((i, who, classes[label]))
    mv = majority_vote(answers)
    ds = dawid_skene(answers, classes=classes)
    acc_mv = np.mean([mv[i] == classes[truth[i]] for i in range(n_items)])
    acc_ds = np.mean([ds.labels[i] == classes[truth[i]] for i in range(n_items)])
    assert acc_ds > acc_mv + 0.05, (acc_ds, acc_mv)
    # the learnt diagonals are close to the annotators' accuracies
    for who, acc in accuracy.items():
        assert np.diag(ds.confusion[who]).mean() == pytest.approx(acc, abs=0.08), who


def test_dawid_skene_on_unanimous_answers_and_bad_parameters():
    answers = [(i, a, "x" if i < 2 else "y") for i in range(4) for a in "ab"]
    assert dawid_skene(answers).labels == majority_vote(answers)
    assert dawid_skene([]).labels == {}
    for kwargs, message in (({"max_iter": 0}, "max_iter must be an int in the range"),
                            ({"tol": -1.0}, "tol must be a float in the range"),
                            ({"smoothing": 0}, "smoothing must be a float in the range")):
        with pytest.raises(ValueError, match=message):
            dawid_skene(answers, **kwargs)
