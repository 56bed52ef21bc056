"""Bad input to the estimators: every case gets a clear error (what was wrong, what was expected),
never a torch traceback from deep inside nor a silently wrong result (issue 10)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

import skal.estimators.bgadl._augmenter
import skal.estimators.bgadl._step  # the losses the BGADL step calls (patched below)
import skal.estimators.bgadl._classifier
from skal import GenerativeAugmenter, MCDropoutClassifier, ResNet18Classifier, WAALClassifier
from skal.estimators.bgadl import ConvergenceError
from skal.exceptions import DeviceError, DivergenceError


def _mlp(in_features, n_classes):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, 8), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(8, n_classes),
    )


@pytest.fixture(scope="module")
def data(digits_small):
    X, y = digits_small
    return X[:60], y[:60]


# ------------------------------------------------------------------ parameters, at fit
# scikit-learn's wording (skal.utils.params wraps sklearn.utils._param_validation)
@pytest.mark.parametrize("param, value, expected", [
    ("max_epochs", 0, r"an int in the range \[1, inf\)"),  # used to return an untrained net
    ("max_epochs", -1, r"an int in the range \[1, inf\)"),
    ("max_epochs", 1.5, r"an int in the range \[1, inf\)"),
    ("max_epochs", True, r"an int in the range \[1, inf\)"),
    ("batch_size", 0, r"an int in the range \[1, inf\) or -1 \(one batch\)"),
    ("batch_size", -2, r"an int in the range \[1, inf\) or -1 \(one batch\)"),
    ("batch_size", 2.5, r"an int in the range \[1, inf\) or -1 \(one batch\)"),
    ("lr", 0, r"a float in the range \(0.0, inf\)"),
    ("lr", -0.1, r"a float in the range \(0.0, inf\)"),
    ("lr", float("nan"), r"a float in the range \(0.0, inf\)"),
    ("lr", float("inf"), r"a float in the range \(0.0, inf\)"),
    ("lr", "0.1", r"a float in the range \(0.0, inf\)"),
    ("train_split", "yes", r"None or a callable such as skorch.dataset.ValidSplit\(5\)"),
])
def test_mc_dropout_classifier_bad_parameter(data, param, value, expected):
    clf = MCDropoutClassifier(_mlp, **{param: value})
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of MCDropoutClassifier must "
                       rf"be {expected}\. Got "):
        clf.fit(*data)
    assert not hasattr(clf, "module_")  # refused before anything is built


@pytest.mark.parametrize("param, value, expected", [
    ("dropout", 1.0, r"a float in the range \[0.0, 1.0\)"),
    ("dropout", -0.1, r"a float in the range \[0.0, 1.0\)"),
    ("dropout", "0.5", r"a float in the range \[0.0, 1.0\)"),
    ("width", 0, r"an int in the range \[1, inf\)"),
    ("width", 2.5, r"an int in the range \[1, inf\)"),
    ("preact", "yes", r"an instance of 'bool' or an instance of 'numpy.bool_?'"),
    ("batch_size", 1, (r"an int in the range \[2, inf\) or -1 \(one batch\): ResNet18 has "
                       "BatchNorm layers")),
    ("max_epochs", 0, r"an int in the range \[1, inf\)"),
])
def test_resnet18_classifier_bad_parameter(data, param, value, expected):
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of ResNet18Classifier must "
                       rf"be {expected}"):
        ResNet18Classifier(**{param: value}).fit(*data)


@pytest.mark.parametrize("module", [3, "mlp", None])
def test_module_that_is_not_a_module(data, module):
    with pytest.raises(ValueError, match=r"The 'module' parameter of MCDropoutClassifier must be "
                       r"a torch.nn.Module instance or a class \(or factory\) that builds one"):
        MCDropoutClassifier(module).fit(*data)


def test_module_factory_that_builds_something_else(data):
    with pytest.raises(TypeError, match=r"'module' parameter of MCDropoutClassifier must be a "
                       r"torch.nn.Module .* built a dict"):
        MCDropoutClassifier(lambda: {"not": "a module"}).fit(*data)


@pytest.mark.parametrize("module, match", [
    # output size != number of classes
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 3)),
     r"The module of MCDropoutClassifier \(Sequential\) returns output of shape \(1, 3\) for one "
     r"sample of shape \(1, 1, 8, 8\); expected logits of shape \(1, 10\)"),
    # input size mismatch: Linear(10) on 64 values
    (nn.Sequential(nn.Flatten(), nn.Linear(10, 10)),
     r"The module of MCDropoutClassifier \(Sequential\) cannot take the training data: a forward "
     r"pass on one sample of shape \(1, 1, 8, 8\) failed with: mat1 and mat2 .* must take input "
     r"of shape \(n, 1, 8, 8\) and return logits of shape \(n, 10\)"),
    # 3-channel convolution on 1-channel images
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10)),
     r"cannot take the training data: .*expected input\[1, 1, 8, 8\] to have 3 channels"),
    # no flatten: (1, 1, 8, 10) output
    (nn.Linear(8, 10),
     r"returns output of shape \(1, 1, 8, 10\) for one sample .* expected logits of shape"),
])
def test_module_with_wrong_shapes(data, module, match):
    with pytest.raises(ValueError, match=match):
        MCDropoutClassifier(module).fit(*data)


def test_module_checked_after_initialize_before_data(data):
    # modAL's DeepActiveLearner calls initialize() before any data, then partial_fit
    X, y = data
    clf = MCDropoutClassifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), classes=np.arange(10),
                              image_shape=(1, 8, 8)).initialize()
    with pytest.raises(ValueError, match=r"returns output of shape \(1, 3\)"):
        clf.partial_fit(X, y)


def test_batchnorm_module_with_batch_size_one(data):
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    with pytest.raises(ValueError, match=r"The 'batch_size' parameter of MCDropoutClassifier "
                       r"must be an int in the range \[2, inf\) for a module with BatchNorm layers"):
        MCDropoutClassifier(module, batch_size=1).fit(*data)


def test_training_batch_of_one_sample_is_explained(data):
    X, y = data
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="ResNet18Classifier cannot train on a batch of one "
                       "sample: its module has BatchNorm layers"):
        clf.partial_fit(X[:1], y[:1], classes=np.arange(10))


@pytest.mark.parametrize("make, owner", [
    (lambda: ResNet18Classifier(width=2, max_epochs=1, random_state="x"), "ResNet18Classifier"),
    (lambda: MCDropoutClassifier(_mlp, max_epochs=1, random_state=[1]), "MCDropoutClassifier"),
    (lambda: WAALClassifier(max_epochs=1, random_state="x"), "WAALClassifier"),
    (lambda: GenerativeAugmenter(max_epochs=1, random_state="x"), "GenerativeAugmenter"),
])
def test_bad_random_state_names_the_estimator(data, make, owner):
    X, y = data
    with pytest.raises(ValueError, match=rf"The 'random_state' parameter of {owner} must be None, "
                       r"an int, a numpy RandomState or a numpy Generator\. Got "):
        make().fit(X, y, X_unlabeled=X) if owner == "WAALClassifier" else make().fit(X, y)


def test_bad_random_state_of_sample_proba(tiny_resnet, data):
    with pytest.raises(ValueError, match=r"'random_state' parameter of "
                       r"ResNet18Classifier.sample_proba must be None"):
        tiny_resnet.sample_proba(data[0][:4], n_samples=2, random_state="x")


# ------------------------------------------------------------------ devices
@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("make, owner", [
    (lambda: ResNet18Classifier(width=2, device="cuda"), "ResNet18Classifier"),
    (lambda: MCDropoutClassifier(_mlp, device="cuda"), "MCDropoutClassifier"),
    (lambda: WAALClassifier(device="cuda"), "WAALClassifier"),
    (lambda: GenerativeAugmenter(device="cuda"), "GenerativeAugmenter"),
])
def test_cuda_without_a_gpu(no_cuda, data, make, owner):
    X, y = data
    est = make()
    with pytest.raises(DeviceError, match=rf"{owner} was asked for device='cuda', but torch sees "
                       r"no CUDA GPU on this machine\. Use device='cpu'"):
        est.fit(X, y)
    assert not any(hasattr(est, a) for a in ("module_", "encoder_", "critic_"))  # nothing built


def test_unknown_device(data):
    with pytest.raises(DeviceError, match=r"The 'device' parameter of ResNet18Classifier must be "
                       r"a torch device such as 'cpu'"):
        ResNet18Classifier(width=2, device="gpu0").fit(*data)


# ------------------------------------------------------------------ divergence
def test_exploding_loss_raises_divergence_error(data):
    # lr=1e3 used to train without complaint: loss ~1e7, weights ~1e19, chance accuracy
    clf = ResNet18Classifier(width=2, lr=1e3, max_epochs=2, random_state=0)
    with pytest.raises(DivergenceError, match=r"ResNet18Classifier training diverged: the mean "
                       r"training loss of epoch \d is .*more than 100 times the reference .* "
                       r"Lower lr \(now 1000.0\)"):
        clf.fit(*data)


def test_divergence_check_can_be_turned_off(data):
    clf = ResNet18Classifier(width=2, lr=1e3, max_epochs=2, random_state=0,
                             callbacks__divergence=None).fit(*data)
    assert max(clf.history[:, "train_loss"]) > 1e3  # diverged, unchecked, as asked


def test_nan_loss_raises_divergence_error(data):
    module = _mlp(64, 10)
    with torch.no_grad():
        module[1].weight[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match=r"MCDropoutClassifier training diverged: the loss "
                       r"of a training batch is nan\. Lower lr \(now 0.01\)"):
        MCDropoutClassifier(module, max_epochs=1).fit(*data)


class _BreakWeights(Callback):
    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            with torch.no_grad():
                net.module_[1].weight[0, 0] = float("inf")


def test_non_finite_weights_raise_divergence_error(data):
    clf = MCDropoutClassifier(_mlp, max_epochs=1, batch_size=-1, callbacks=[_BreakWeights()])
    with pytest.raises(DivergenceError, match=r"the weights of module_ became NaN or infinite "
                       r"\(epoch 1\)"):
        clf.fit(*data)


def test_healthy_training_is_not_flagged(data):
    X, y = data
    for lr in (1e-3, 1e-2, 0.1):
        ResNet18Classifier(width=2, lr=lr, max_epochs=3, random_state=0).fit(X, y)
    MCDropoutClassifier(_mlp, lr=1.0, max_epochs=5, random_state=0).fit(X, y)


def test_divergence_error_types():
    assert ConvergenceError is DivergenceError  # the augmenter's old name still works
    assert issubclass(DivergenceError, FloatingPointError) and issubclass(DivergenceError,
                                                                          RuntimeError)


def test_augmenter_exploding_loss(data, monkeypatch):
    # the losses are called from skal.estimators.bgadl._classifier, whose skorch train_step trains the augmenter's net
    original = skal.estimators.bgadl._step.encoder_loss
    calls = []

    def exploding(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs) * (1.0 if len(calls) == 1 else 1e6)

    monkeypatch.setattr(skal.estimators.bgadl._step, "encoder_loss", exploding)
    aug = GenerativeAugmenter(latent_dim=4, max_epochs=2, batch_size=20, random_state=0)
    with pytest.raises(DivergenceError, match=r"GenerativeAugmenter training diverged: the encoder "
                       r"loss L_E averaged .* over epoch 1/2, more than 100 times .* lower "
                       r"learning rate"):
        aug.fit(*data)


def test_augmenter_diverging_joint_classifier_names_its_lr(data, monkeypatch):
    def nan_loss(logits, *args, **kwargs):  # the generated terms of L_C
        return logits.sum() * float("nan")

    monkeypatch.setattr(skal.estimators.bgadl._step, "masked_cross_entropy", nan_loss)
    aug = GenerativeAugmenter(latent_dim=4, max_epochs=1, batch_size=30, random_state=0,
                              classifier=ResNet18Classifier(width=2, lr=0.05))
    with pytest.raises(DivergenceError, match=r"auxiliary classifier loss L_C is nan .* the "
                       r"ResNet18Classifier given as classifier=.*lower its lr \(now 0.05"):
        aug.fit(*data)


def test_augmenter_takes_channels_last_images(data):
    X, y = data
    aug = GenerativeAugmenter(latent_dim=4, max_epochs=1, batch_size=30, random_state=0)
    aug.fit(X.transpose(0, 2, 3, 1), y)  # (n, 8, 8, 1)
    assert aug.input_shape_ == (1, 8, 8)
    X_new, _ = aug.sample(X[:3].transpose(0, 2, 3, 1), y[:3])
    assert X_new.shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="could hold the colour channels"):
        GenerativeAugmenter(max_epochs=1).fit(np.zeros((4, 3, 3, 3)), [0, 1, 0, 1])


@pytest.mark.parametrize("param, value, expected", [
    ("optimizer", "sgd", "a torch optimizer class such as torch.optim.SGD"),
    ("criterion", 3, "a torch loss class or instance such as torch.nn.CrossEntropyLoss"),
])
def test_optimizer_and_criterion_must_be_callable(data, param, value, expected):
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of MCDropoutClassifier must "
                       rf"be {expected}\. Got {value!r} instead"):
        MCDropoutClassifier(_mlp, **{param: value}).fit(*data)


# ------------------------------------------------------------------ WAAL feature extractors
@pytest.fixture(scope="module")
def waal_images():
    rng = np.random.default_rng(0)
    X = rng.random((16, 1, 28, 28), dtype=np.float32)
    return X, np.array([0, 1] * 4 + [-1] * 8)


@pytest.mark.parametrize("features, match", [
    (nn.Linear(3, 4), r"The 'features' module of WAALClassifier \(Linear\) cannot take the input: "
                      r"a forward pass on one sample of shape \(1, 1, 28, 28\) failed with: mat1"),
    (nn.Conv2d(3, 4, 3), r"The 'features' module of WAALClassifier \(Conv2d\) cannot take the "
                         r"input: .* to have 3 channels"),
    (nn.Conv2d(1, 4, 3), r"The 'features' module of WAALClassifier \(Conv2d\) returns "
                         r"\(1, 4, 26, 26\) for one sample .* expected flat features of shape "
                         r"\(1, 2704\).*nn.Flatten\(\)"),
])
def test_waal_features_with_wrong_shapes(waal_images, features, match):
    with pytest.raises(ValueError, match=match):
        WAALClassifier(features=features, max_epochs=1, batch_size=8).fit(*waal_images)


def test_waal_score_bad_selection(waal_images):
    clf = WAALClassifier(max_epochs=1, batch_size=8, random_state=0).fit(*waal_images)
    with pytest.raises(ValueError, match=r"The 'selection' parameter of waal_score must be None "
                       r"or a float in the range \(-inf, inf\)\. Got 'a' instead"):
        clf.waal_score(waal_images[0], selection="a")
