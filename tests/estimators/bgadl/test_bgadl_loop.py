"""BGADL in the active-learning loop: ActiveLearner(joint=True) and the bgadl / random_gen methods.

Tiny settings on 8x8 digits (width-2 ResNet18, one or two epochs): these tests check who trains
what and which rows count as labels, not accuracy.
"""

import json
import os
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from skal import ActiveLearner, GenerativeAugmenter, ResNet18Classifier, bald, random_sampling
from skal.cli import main
from skal.experiment import METHODS, load_run

AUG = dict(latent_dim=8, batch_size=20, max_epochs=2, random_state=0)
N_INIT, N_QUERY = 40, 5


def _clf():
    return ResNet18Classifier(width=2, max_epochs=1, random_state=0)


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return X[:N_INIT], y[:N_INIT], X[N_INIT:200], y[N_INIT:200], X[1500:], y[1500:]


def _loop(learner, X_pool, y_pool, rounds=2):
    """Query and teach ``rounds`` times; return the pool positions labelled, in order."""
    remaining = np.arange(len(X_pool))
    labelled = []
    kwargs = {"n_samples": 3} if learner.query_strategy is bald else {}
    for _ in range(rounds):
        idx, X_query = learner.query(X_pool[remaining], n_instances=N_QUERY, random_state=0,
                                     **kwargs)
        assert idx.min() >= 0 and idx.max() < len(remaining)  # queries index the real pool
        np.testing.assert_array_equal(X_query, X_pool[remaining][idx])
        learner.teach(X_query, y_pool[remaining][idx])
        labelled.extend(remaining[idx].tolist())
        remaining = np.delete(remaining, idx)
    return np.asarray(labelled)


def test_joint_learner_trains_its_estimator_as_the_auxiliary_classifier(split):
    X0, y0, X_pool, y_pool, X_test, y_test = split
    pool_before = X_pool.copy()
    user_clf = _clf()
    learner = ActiveLearner(user_clf, query_strategy=bald, X_training=X0, y_training=y0,
                            augmenter=GenerativeAugmenter(**AUG), joint=True)
    # a clone of the estimator (estimator_; the parameter stays unfitted, issue 15) is fitted
    # by the joint training: it is the auxiliary classifier
    fitted = learner.estimator_
    assert learner.estimator is fitted is learner.augmenter_.classifier_
    assert not hasattr(user_clf, "module_")
    first_module = fitted.module_
    assert learner.augmenter_.auxiliary_classifier_ is first_module
    assert len(fitted.history_) == AUG["max_epochs"]  # trained by the augmenter's epochs
    assert fitted.width == 2 and fitted.max_epochs == 1

    labelled = _loop(learner, X_pool, y_pool)
    assert len(np.unique(labelled)) == 2 * N_QUERY
    # labels are the oracle's only: no generated row is ever counted as labelled
    np.testing.assert_array_equal(learner.y_training_, np.concatenate([y0, y_pool[labelled]]))
    np.testing.assert_array_equal(learner.X_training_, np.concatenate([X0, X_pool[labelled]]))
    assert learner.X_generated_ is None and learner.y_generated_ is None
    np.testing.assert_array_equal(X_pool, pool_before)  # the pool is never touched
    # every teach retrains jointly from scratch, into the same estimator_ object
    assert learner.estimator is fitted is learner.augmenter_.classifier_
    assert fitted.module_ is not first_module
    assert learner.augmenter_.auxiliary_classifier_ is fitted.module_
    assert len(fitted.history_) == AUG["max_epochs"]
    # the jointly trained classifier answers predictions and MC-dropout queries
    assert learner.predict(X_test[:4]).shape == (4,)
    assert learner.sample_proba(X_test[:3], n_samples=4).shape == (4, 3, 10)
    assert 0 <= learner.score(X_test, y_test) <= 1
    # and the augmenter it was trained with still generates
    X_gen, y_gen = learner.augmenter_.sample(X_pool[labelled[:3]], y_pool[labelled[:3]])
    assert X_gen.shape == (3, 1, 8, 8)

    module = fitted.module_
    fresh = clone(learner)  # refits on X_training, as the constructor does
    assert fresh.joint is True and len(fresh.y_training_) == N_INIT
    assert fresh.estimator is not fitted and fresh.estimator is fresh.augmenter_.classifier_
    assert fitted.module_ is module  # the clone did not touch the original
    restored = pickle.loads(pickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict(X_test[:10]), learner.predict(X_test[:10]))


def test_default_augmenter_path_trains_on_real_plus_generated(split):
    X0, y0, X_pool, y_pool, _, _ = split
    clf = _clf()
    learner = ActiveLearner(clf, query_strategy=random_sampling, X_training=X0, y_training=y0,
                            augmenter=GenerativeAugmenter(**AUG))
    labelled = _loop(learner, X_pool, y_pool)
    assert learner.estimator is learner.estimator_  # a fitted clone; clf stays unfitted
    assert not hasattr(clf, "module_")
    assert not hasattr(learner.augmenter_, "classifier_")  # the augmenter has its own C
    np.testing.assert_array_equal(learner.y_training_, np.concatenate([y0, y_pool[labelled]]))
    # one generated sample per initial row and per newly labelled pick, labelled like them
    assert len(learner.X_generated_) == N_INIT + 2 * N_QUERY
    np.testing.assert_array_equal(learner.y_generated_, learner.y_training_)
    # the last fit saw the real rows plus all generated ones
    seen = sum(b["train_batch_size"] for b in learner.estimator_.history_[-1]["batches"])
    assert seen == len(learner.y_training_) + len(learner.y_generated_)


def test_joint_mode_errors(split):
    X0, y0 = split[:2]
    with pytest.raises(ValueError, match="joint=True\\) needs an augmenter"):
        ActiveLearner(_clf(), X_training=X0, y_training=y0, joint=True)
    learner = ActiveLearner(_clf(), augmenter=GenerativeAugmenter(**AUG), joint=True)
    with pytest.raises(TypeError, match="takes no fit arguments"):
        learner.teach(X0, y0, sample_weight=np.ones(len(y0)))


# ---------------------------------------------------------------------------- skal run
TINY = [
    "--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
    "--repeats", "1", "--pool-size", "100", "--test-size", "50", "--width", "2",
    "--epochs", "1", "--batch-size", "16", "--mc-samples", "3", "--quiet",
]


def test_methods_are_registered():
    assert METHODS["bgadl"].query_strategy is bald
    assert METHODS["random_gen"].query_strategy is random_sampling


@pytest.mark.parametrize("method", ["bgadl", "random_gen"])
def test_skal_run_method(method, tmp_path, capsys):
    out = tmp_path / method
    # --mc-samples is BALD's: `skal run --method random_gen` refuses it
    i = TINY.index("--mc-samples")
    args = TINY if method == "bgadl" else TINY[:i] + TINY[i + 2:]
    assert main(["run", "--method", method, *args, "--out", str(out)]) == 0
    assert f"{method}: results in {out}" in capsys.readouterr().out
    result = load_run(out)
    assert [r["n_labeled"] for r in result.rows] == [20, 30]
    assert all(0 <= r["accuracy"] <= 1 for r in result.rows)
    labeled = result.labeled[0]
    assert len(np.unique(labeled)) == 30 and labeled.max() < 100  # pool indices only
    with open(out / "state.json") as f:
        assert len(json.load(f)["repeats"][0]["labels"]) == 30  # oracle labels only
    assert os.path.getsize(out / "learning_curve.png") > 0


class _NormFirst(__import__("torch").nn.Module):
    """BatchNorm straight on the input: its running statistics depend on the images only."""

    def __init__(self):
        from torch import nn

        super().__init__()
        self.norm = nn.BatchNorm2d(1)
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(self.norm(x).flatten(1))


@pytest.mark.parametrize("gen_batchnorm", ["running", "batch"])
def test_joint_classifier_batchnorm_statistics_come_from_real_images_only(digits, gen_batchnorm):
    """Generated batches must not shift the running BatchNorm statistics used at prediction,
    whichever statistics normalise them."""
    import torch

    from skal import BGADLMCDropoutClassifier, MCDropoutClassifier

    X, y = digits
    n = 40
    ref = torch.nn.BatchNorm2d(1).train()  # one pass over the real batch (one step: batch n)
    ref(torch.as_tensor(X[:n]))
    # weight 1 without the re-estimation after training (recalibrate_bn="auto" would hide it)
    clf = BGADLMCDropoutClassifier(_NormFirst, optimizer=torch.optim.Adam, lr=1e-3,
                                   gen_weight=1.0, recalibrate_bn=False)
    aug = GenerativeAugmenter(latent_dim=8, batch_size=n, max_epochs=1, classifier=clf,
                              gen_batchnorm=gen_batchnorm, random_state=0).fit(X[:n], y[:n])
    norm = aug.classifier_.module_.norm
    torch.testing.assert_close(norm.running_mean, ref.running_mean)
    torch.testing.assert_close(norm.running_var, ref.running_var)
    assert int(norm.num_batches_tracked) == 1
    # a plain classifier gets weight 1 and recalibrate_bn="auto": the statistics are then
    # re-estimated on the real images after training (a cumulative average of their one batch)
    clf = MCDropoutClassifier(_NormFirst, optimizer=torch.optim.Adam, lr=1e-3)
    aug = GenerativeAugmenter(latent_dim=8, batch_size=n, max_epochs=1, classifier=clf,
                              gen_batchnorm=gen_batchnorm, random_state=0).fit(X[:n], y[:n])
    norm = aug.classifier_.module_.norm
    assert aug.classifier_.recalibrate_bn == "auto" and aug.classifier_.gen_weight == 1.0
    real = torch.as_tensor(X[:n])
    torch.testing.assert_close(norm.running_mean, real.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(norm.running_var, real.transpose(0, 1).flatten(1).var(dim=1))


def test_generated_batches_with_their_own_statistics_train_another_classifier(digits):
    import torch

    from skal import MCDropoutClassifier

    X, y = digits
    weights = {}
    for mode in ("running", "batch"):
        clf = MCDropoutClassifier(_NormFirst, optimizer=torch.optim.Adam, lr=1e-3)
        aug = GenerativeAugmenter(latent_dim=8, batch_size=40, max_epochs=1, classifier=clf,
                                  gen_batchnorm=mode, random_state=0).fit(X[:40], y[:40])
        assert aug.classifier_.gen_batchnorm == mode
        weights[mode] = aug.classifier_.module_.linear.weight.detach().clone()
    assert not torch.allclose(weights["running"], weights["batch"])


def test_generated_batches_are_normalised_with_real_image_statistics():
    """Inside the joint step, C's BatchNorm judges generated images by the running statistics
    of real images (no batch statistics, no update); dropout stays on."""
    import torch
    from torch import nn

    from skal.utils.modes import RealDataStats

    net = nn.Sequential(nn.BatchNorm1d(3), nn.Dropout(0.5)).train()
    norm = net[0]
    norm.running_mean.fill_(2.0)
    norm.running_var.fill_(4.0)
    x = torch.randn(8, 3) * 10
    with RealDataStats(net):
        out = norm(x)
        assert net[1].training
    torch.testing.assert_close(out, (x - 2.0) / torch.sqrt(torch.tensor(4.0 + norm.eps)))
    assert torch.all(norm.running_mean == 2.0) and torch.all(norm.running_var == 4.0)
    assert norm.training
