"""Classifiers that start from a fitted skal.ContrastiveEncoder: init_trunk / InitTrunk into every
skal estimator's ResNet18, and the frozen-embedding Pipeline with every skal strategy."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback
from torch import nn

pytest.importorskip("lightly.loss", reason="lightly is in setup.cfg's ssl extra (--no-deps)")

import skal  # noqa: E402
from skal import (  # noqa: E402
    ActiveLearner,
    BGADLClassifier,
    ContrastiveEncoder,
    InitTrunk,
    MCDropoutClassifier,
    ResNet18Classifier,
    WAALClassifier,
    init_trunk,
)
from skal.nets import ResNet18, ResNet18Features  # noqa: E402


pytestmark = pytest.mark.filterwarnings("ignore:WAALClassifier got no unlabelled data")


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def encoder(data):
    X, _ = data
    return ContrastiveEncoder(width=2, max_epochs=1, batch_size=64, flip=False,
                              random_state=0).fit(X[:128])


class _RecordTrunk(Callback):
    """The trunk's first conv weights when training begins (after InitTrunk)."""

    def on_train_begin(self, net, **kwargs):
        trunk = [m for m in net.module_.modules() if type(m) is ResNet18][0]
        self.conv1_ = trunk.conv1.weight.detach().clone()
        self.bn_mean_ = trunk.layer4[1].bn2.running_mean.clone()


ESTIMATORS = {
    "ResNet18Classifier": lambda: ResNet18Classifier(width=2),
    "MCDropoutClassifier": lambda: MCDropoutClassifier(ResNet18, module__width=2,
                                                       optimizer=torch.optim.Adam),
    "WAALClassifier": lambda: WAALClassifier(features=ResNet18Features(1, width=2)),
    "BGADLClassifier": lambda: BGADLClassifier(width=2, latent_dim=4),
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_starts_its_trunk_from_the_encoder(name, data, encoder):
    X, y = data
    est = ESTIMATORS[name]().set_params(max_epochs=1, random_state=0, batch_size=32)
    record = _RecordTrunk()
    init_trunk(est, encoder)
    est.set_params(callbacks=[*est.callbacks, ("record", record)])
    est.fit(X[:64], y[:64])
    source = encoder.trunk_
    torch.testing.assert_close(record.conv1_, source.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(record.bn_mean_, source.layer4[1].bn2.running_mean, rtol=0, atol=0)
    assert est.predict(X[:3]).shape == (3,)


def test_a_torch_module_gets_the_weights_now(encoder):
    net = ResNet18(in_channels=1, n_classes=10, width=2)
    linear = net.linear.weight.detach().clone()
    assert init_trunk(net, encoder) is net
    torch.testing.assert_close(net.conv1.weight, encoder.trunk_.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(net.linear.weight, linear)  # the head is left alone


def test_refits_start_again_from_the_encoder_and_clone_keeps_it(data, encoder):
    X, y = data
    clf = init_trunk(ResNet18Classifier(width=2, max_epochs=1, random_state=0), encoder)
    cloned = clone(clf)
    callback = dict(cloned.callbacks)["init_trunk"]
    assert isinstance(callback, InitTrunk) and callback.encoder is encoder  # not an unfitted copy
    learner = ActiveLearner(clf.set_params(callbacks=[*clf.callbacks, ("record", _RecordTrunk())]),
                            query_strategy=skal.bald, X_training=X[:40], y_training=y[:40])
    for _ in range(2):  # every teach refits from scratch: from the encoder's trunk each time
        idx, _ = learner.query(X[100:200], n_instances=4, random_state=0)
        learner.teach(X[100:200][idx], y[100:200][idx])
        record = dict(learner.estimator_.callbacks_)["record"]  # the learner fits a clone
        torch.testing.assert_close(record.conv1_, encoder.trunk_.conv1.weight, rtol=0, atol=0)
    # partial_fit continues from the trained weights: the trunk is not reset to the encoder's
    trained = learner.estimator_.module_.conv1.weight.detach().clone()
    assert not torch.equal(trained, encoder.trunk_.conv1.weight)
    learner.estimator_.partial_fit(X[:40], y[:40])
    torch.testing.assert_close(record.conv1_, trained, rtol=0, atol=0)
    restored = pickle.loads(pickle.dumps(learner.estimator_))
    np.testing.assert_array_equal(restored.predict(X[:5]), learner.estimator_.predict(X[:5]))


def test_mismatched_trunks_get_one_clear_error(data, encoder):
    X, y = data
    with pytest.raises(ValueError, match="has width=4, but the encoder's backbone has width=2 .*"
                                         "set width=2 on ResNet18Classifier"):
        init_trunk(ResNet18Classifier(width=4), encoder)
    with pytest.raises(ValueError, match="preact=True, but the encoder's backbone is a ResNet18: "
                                         "set preact=False"):
        init_trunk(ResNet18Classifier(width=2, preact=True), encoder)
    rgb = np.repeat(X[:40], 3, axis=1)  # the classifier sees 3 channels, the encoder 1
    clf = init_trunk(ResNet18Classifier(width=2, max_epochs=1), encoder)
    with pytest.raises(ValueError, match="in_channels=3, but the encoder's backbone has "
                                         "in_channels=1"):
        clf.fit(rgb, y[:40])
    waal = init_trunk(WAALClassifier(features=ResNet18Features(1, width=4), max_epochs=1),
                      encoder)
    with pytest.raises(ValueError, match="width=4, but the encoder's backbone has width=2"):
        waal.fit(X[:40], y[:40])
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    mlp = init_trunk(MCDropoutClassifier(flat, max_epochs=1), encoder)
    with pytest.raises(ValueError, match=r"has no ResNet18 trunk .*expected a network that "
                                         "contains one"):
        mlp.fit(X[:40], y[:40])
    with pytest.raises(ValueError, match="has a ResNet18 trunk, but the encoder's backbone is a "
                                         "PreActResNet18"):
        pre = ContrastiveEncoder(backbone="preact_resnet18", width=2, max_epochs=1,
                                 batch_size=64, random_state=0).fit(X[:64])
        init_trunk(ResNet18(1, 10, width=2), pre)
    with pytest.raises(NotFittedError, match="This ContrastiveEncoder instance is not fitted"):
        init_trunk(ResNet18Classifier(width=2), ContrastiveEncoder(width=2))
    with pytest.raises(TypeError, match="must be a fitted skal.ContrastiveEncoder"):
        init_trunk(ResNet18Classifier(width=2), ResNet18Classifier(width=2))


# ------------------------------------------------------------------ frozen features + a head
def _mlp(in_features, n_classes):
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(16, n_classes))


@pytest.fixture(scope="module")
def pipe(data, encoder):
    X, y = data
    return Pipeline([
        ("enc", FrozenEstimator(encoder)),
        ("head", MCDropoutClassifier(_mlp, max_epochs=2, random_state=0)),
    ]).fit(X[:60], y[:60])


STRATEGIES = ["bald", "entropy_sampling", "margin_sampling", "random_sampling",
              "uncertainty_sampling", "batch_bald", "stochastic_batch", "power_bald", "badge",
              "coreset", "typiclust"]  # waal_uncertainty_diversity needs a WAALClassifier


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_on_the_frozen_embedding_pipeline(name, pipe, data, encoder):
    X, _ = data
    pool = X[100:180]
    idx, _ = getattr(skal, name)(pipe, pool, n_instances=3, random_state=0)
    assert len(set(np.asarray(idx).tolist())) == 3
    if name == "bald":  # the strategy scored the head on encoder.transform(pool)
        direct = skal.bald(pipe[-1], encoder.transform(pool), n_instances=3, random_state=0)
        np.testing.assert_array_equal(idx, direct[0])


def test_frozen_encoder_is_not_refitted_by_the_learner(pipe, data, encoder):
    X, y = data
    before = encoder.transform(X[:8])
    n_epochs = len(encoder.history_)
    assert clone(pipe)[0] is pipe[0]  # FrozenEstimator: clone keeps the fitted encoder
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict_proba(X[:5]), pipe.predict_proba(X[:5]))
    learner = ActiveLearner(pipe, query_strategy=skal.bald, X_training=X[:40],
                            y_training=y[:40])
    idx, _ = learner.query(X[100:200], n_instances=5, random_state=0)
    learner.teach(X[100:200][idx], y[100:200][idx])
    assert learner.estimator_[0].estimator is encoder
    assert len(encoder.history_) == n_epochs
    np.testing.assert_array_equal(encoder.transform(X[:8]), before)
    np.testing.assert_array_equal(learner.transform_without_estimating(X[:8]), before)


def test_an_unfrozen_encoder_is_refitted_by_pipeline_fit(data, encoder):
    # why FrozenEstimator: Pipeline.fit refits every step, and clone unfits the encoder
    X, y = data
    pipe = Pipeline([("enc", clone(encoder)), ("head", MCDropoutClassifier(_mlp, max_epochs=1))])
    pipe.fit(X[:64], y[:64])
    assert len(pipe[0].history_) == 1 and pipe[0] is not encoder


def test_a_head_of_another_embedding_size_is_refused(pipe, data):
    X, _ = data
    wide = ContrastiveEncoder(width=4, max_epochs=1, batch_size=64, flip=False,
                              random_state=0).fit(X[:64])
    swapped = Pipeline([("enc", FrozenEstimator(wide)), ("head", pipe[-1])])
    with pytest.raises(ValueError, match="X has 32 features, but MCDropoutClassifier is "
                                         "expecting 16 features"):
        skal.bald(swapped, X[100:120], n_instances=2)


# ---------------------------------------------------------------------------- stem_stride
@pytest.fixture(scope="module")
def encoder_s2(data):
    X, _ = data
    return ContrastiveEncoder(width=4, stem_stride=2, max_epochs=1, batch_size=64, flip=False,
                              random_state=0).fit(X[:128])


def test_a_stride_2_stem_halves_the_resolution_and_keeps_the_features():
    x = torch.zeros(2, 1, 28, 28)
    one, two = ResNet18(width=4), ResNet18(width=4, stem_stride=2)
    assert one.conv1(x).shape == (2, 4, 28, 28)
    assert two.conv1(x).shape == (2, 4, 14, 14)  # the stem strides, the rest is the same
    assert one.features(x).shape == two.features(x).shape == (2, 32)
    assert [p.shape for p in one.parameters()] == [p.shape for p in two.parameters()]


def test_the_encoder_builds_its_trunk_with_the_stride(data, encoder_s2):
    X, _ = data
    assert encoder_s2.trunk_.conv1.stride == (2, 2)
    assert encoder_s2.transform(X[:5]).shape == (5, 32)


def test_a_classifier_with_the_encoders_stride_starts_from_it(data, encoder_s2):
    X, y = data
    record = _RecordTrunk()
    clf = init_trunk(ResNet18Classifier(width=4, stem_stride=2, max_epochs=1, random_state=0),
                     encoder_s2)
    clf.set_params(callbacks=[*clf.callbacks, ("record", record)])  # after InitTrunk's
    clf.fit(X[:64], y[:64])
    assert torch.equal(record.conv1_, encoder_s2.trunk_.conv1.weight.detach())
    assert clf.module_.conv1.stride == (2, 2)


def test_another_stride_is_refused_by_parameter_and_by_module(encoder_s2):
    with pytest.raises(ValueError, match=r"stem_stride=1, but the encoder's backbone has "
                                         r"stem_stride=2 .*set stem_stride=2"):
        init_trunk(ResNet18Classifier(width=4), encoder_s2)
    # a module of another stride (the same parameter shapes): refused when the weights load
    with pytest.raises(ValueError, match=r"stem_stride=1, but the encoder's backbone has "
                                         r"stem_stride=2"):
        init_trunk(ResNet18(width=4), encoder_s2)


@pytest.mark.parametrize("bad", [0, 3, True, 1.0, "2"])
def test_a_bad_stem_stride_gets_one_clear_error(data, bad):
    X, y = data
    with pytest.raises(ValueError, match=r"'stem_stride' parameter of ResNet18Classifier must "
                                         r"be an int in the range \[1, 2\]"):
        ResNet18Classifier(width=2, stem_stride=bad, max_epochs=1).fit(X[:8], y[:8])
    with pytest.raises(ValueError, match=r"'stem_stride' parameter of ContrastiveEncoder must "
                                         r"be an int in the range \[1, 2\]"):
        ContrastiveEncoder(width=2, stem_stride=bad, max_epochs=1).fit(X[:8])
    with pytest.raises(ValueError, match="'stem_stride' parameter of ResNet18 must be 1 or 2"):
        ResNet18(width=2, stem_stride=bad)
    with pytest.raises(ValueError, match="'encoder_stem_stride' parameter of Recipe must be "
                                         "1 or 2"):
        skal.Recipe("r", "head", encoder_stem_stride=bad)


def test_a_classifier_pickled_before_stem_stride_still_builds(data):
    X, y = data
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0)
    del clf.stem_stride  # what unpickling a model saved before the parameter existed gives
    clf.fit(X[:16], y[:16])
    assert clf.module_.conv1.stride == (1, 1)
