"""Tests of skal.callbacks.MilestoneLR on plain skorch nets (tiny, CPU)."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from skal.callbacks import MilestoneLR


class TwoOptimizerNet(NeuralNetClassifier):
    """A skorch net with a second optimizer on a second module, as WAAL has for its critic."""

    def initialize_module(self):
        super().initialize_module()
        self.extra_ = nn.Linear(2, 2)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        super().initialize_optimizer()
        args, kwargs = self.get_params_for_optimizer("extra_optimizer",
                                                     self.extra_.named_parameters())
        self.extra_optimizer_ = torch.optim.SGD(*args, **{**kwargs, "lr": 0.5})
        return self


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((16, 4), dtype=np.float32), np.arange(16) % 2


def make(callback, max_epochs=4, **kwargs):
    torch.manual_seed(0)
    return TwoOptimizerNet(nn.Sequential(nn.Linear(4, 2)), lr=0.1, max_epochs=max_epochs,
                           batch_size=8, train_split=None, verbose=0,
                           callbacks=[("schedule", callback)], **kwargs)


def test_factor_counts_reached_milestones():
    assert [MilestoneLR.factor(e, 4, (0.5, 0.75), 0.1) for e in range(4)] == [
        1.0, 1.0, 0.1, pytest.approx(0.01)]
    assert [MilestoneLR.factor(e, 3, (0.5,), 0.5) for e in range(3)] == [1.0, 1.0, 0.5]
    assert MilestoneLR.factor(5, 10, None, 0.1) == MilestoneLR.factor(5, 10, (), 0.1) == 1.0


def test_schedules_every_named_optimizer_and_records_the_first(data):
    net = make(MilestoneLR((0.5, 0.75), 0.1, optimizers=("optimizer", "extra_optimizer")))
    net.fit(*data)
    np.testing.assert_allclose(net.history[:, "lr"], [0.1, 0.1, 0.01, 0.001])
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.001)
    assert net.extra_optimizer_.param_groups[0]["lr"] == pytest.approx(0.5e-2)
    for opt in (net.optimizer_, net.extra_optimizer_):  # no schedule state in the optimizers
        assert not {"initial_lr", "scheduled_lr"} & set(opt.param_groups[0])
    schedule = dict(net.callbacks_)["schedule"]
    assert schedule.base_lrs_ == {"optimizer": [0.1], "extra_optimizer": [0.5]}


def test_partial_fit_restarts_from_the_base_unless_the_lr_was_changed(data):
    net = make(MilestoneLR((0.5,), 0.1), max_epochs=2, warm_start=True)
    net.fit(*data)
    net.partial_fit(*data)
    np.testing.assert_allclose(net.history[:, "lr"], [0.1, 0.01, 0.1, 0.01])
    net.set_params(lr=0.3)  # changed since the schedule set it: the new base
    net.partial_fit(*data)
    np.testing.assert_allclose(net.history[-2:, "lr"], [0.3, 0.03])


def test_no_milestones_and_no_event(data):
    net = make(MilestoneLR(None, 0.1, event_name=None))
    net.fit(*data)
    assert "lr" not in net.history[-1]
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1)


# ---------------------------------------------------------------------------- RecalibrateBatchNorm
def _images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(40, 1, 28, 28)).astype(np.uint8), np.arange(40) % 4


def _batchnorms(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_recalibrate_batchnorm_averages_the_batch_statistics_and_keeps_the_weights():
    from skal import ResNet18Classifier
    from skal.callbacks import RecalibrateBatchNorm

    X, y = _images()
    common = dict(width=2, max_epochs=2, batch_size=16, random_state=0)
    plain = ResNet18Classifier(**common).fit(X, y)
    recal = ResNet18Classifier(**common, callbacks=[("rbn", RecalibrateBatchNorm())]).fit(X, y)
    for name, p in plain.module_.named_parameters():
        assert torch.equal(p, dict(recal.module_.named_parameters())[name]), name
    # the first BatchNorm follows the first conv: its statistics are those of conv1's output,
    # averaged over the 3 batches (16, 16, 8) of the training images in order
    bn = recal.module_.bn1
    assert int(bn.num_batches_tracked) == 3 and bn.momentum == 0.1 and not recal.module_.training
    x = torch.as_tensor(X.astype(np.float32) / 255.0)
    with torch.no_grad():
        out = [recal.module_.conv1(x[i:i + 16]) for i in range(0, 40, 16)]  # (b, C, H, W)
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in out]).mean(0)
    var = torch.stack([o.transpose(0, 1).flatten(1).var(1) for o in out]).mean(0)  # (C, b*H*W)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(plain.module_.bn1.running_mean, mean, atol=1e-3)


def test_recalibrate_batchnorm_leaves_the_random_state_and_a_net_without_batchnorm():
    from skal.callbacks import recalibrate_batchnorm

    net = NeuralNetClassifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), max_epochs=1,
                              train_split=None, verbose=0).initialize()
    assert recalibrate_batchnorm(net, np.zeros((4, 4), dtype=np.float32)) == 0
    net = NeuralNetClassifier(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)),
                              max_epochs=1, batch_size=2, train_split=None, verbose=0)
    net.initialize()
    state = torch.get_rng_state()
    assert recalibrate_batchnorm(net, np.ones((5, 4), dtype=np.float32)) == 1
    assert torch.equal(torch.get_rng_state(), state)
    assert int(net.module_[1].num_batches_tracked) == 2  # batches of 2, 2 (the 1 is left out)
    assert torch.allclose(net.module_[1].running_var, torch.zeros(3), atol=1e-6)  # same rows


def test_bgadl_recalibrate_bn_only_changes_the_batchnorm_statistics():
    from skal import BGADLClassifier

    X, y = _images()
    common = dict(width=2, max_epochs=2, batch_size=16, random_state=0, gen_weight=1.0,
                  gan_width=8, gan_hidden=16, latent_dim=4)
    off = BGADLClassifier(**common, recalibrate_bn=False).fit(X, y)
    on = BGADLClassifier(**common, recalibrate_bn=True).fit(X, y)
    a, b = off.module_.state_dict(), on.module_.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                           for k in changed)
    assert {k.rsplit(".", 1)[0] for k in changed} == {
        name for name, m in on.module_.named_modules() if m in _batchnorms(on.module_)}
    for name in ("generator_", "encoder_", "discriminator_"):  # E/G/D untouched
        ga, gb = getattr(off, name).state_dict(), getattr(on, name).state_dict()
        assert all(torch.equal(ga[k], gb[k]) for k in ga), name
    assert int(on.module_.bn1.num_batches_tracked) == 3


def test_recalibrate_batchnorm_names_a_module_the_net_lacks():
    from skal.callbacks import recalibrate_batchnorm

    net = NeuralNetClassifier(nn.Sequential(nn.Linear(4, 2)), train_split=None,
                              verbose=0).initialize()
    with pytest.raises(ValueError, match=r"module='critic' is not a module of "
                                         r"NeuralNetClassifier: expected one of \['module'\]"):
        recalibrate_batchnorm(net, np.zeros((4, 4), dtype=np.float32), module="critic")


def test_bgadl_recalibrate_bn_must_be_a_bool_or_auto():
    from skal import BGADLClassifier, BGADLMCDropoutClassifier
    from skal.nets import AuxiliaryClassifier

    X, y = _images()
    for value in ("yes", "Auto", None, 1):
        with pytest.raises(ValueError, match=r"The 'recalibrate_bn' parameter of BGADLClassifier "
                                             r"must be an instance of 'bool' or an instance of "
                                             r"'numpy.bool' or a str among "
                                             r"\{'auto'\}\. Got .* instead\."):
            BGADLClassifier(width=2, max_epochs=1, recalibrate_bn=value).fit(X, y)
    with pytest.raises(ValueError, match="'recalibrate_bn' parameter of BGADLMCDropoutClassifier"):
        BGADLMCDropoutClassifier(AuxiliaryClassifier, max_epochs=1,
                                 recalibrate_bn="always").fit(X, y)


@pytest.mark.parametrize("cls", ["BGADLClassifier", "BGADLMCDropoutClassifier"])
def test_bgadl_recalibrate_bn_defaults_to_auto_and_clone_keeps_it(cls):
    import skal
    from sklearn.base import clone

    from skal.nets import AuxiliaryClassifier

    args = (AuxiliaryClassifier,) if cls == "BGADLMCDropoutClassifier" else ()
    clf = getattr(skal, cls)(*args, gen_weight=1.0)
    assert clf.get_params()["recalibrate_bn"] == "auto"
    assert clone(clf).get_params()["recalibrate_bn"] == "auto"
    assert clone(clf.set_params(recalibrate_bn=False)).recalibrate_bn is False


@pytest.mark.parametrize("params, resolved", [
    ({"gen_weight": 1.0}, True), ({"gen_weight": 0.1, "gen_warmup": 0.5}, True),
    ({"gen_weight": 0.0}, False), ({"generative": False, "gen_weight": 1.0}, False),
    ({"gen_weight": 1.0, "recalibrate_bn": False}, False),
    ({"gen_weight": 0.0, "recalibrate_bn": True}, True),
])
def test_bgadl_recalibrate_bn_auto_is_on_when_generated_terms_are_in_the_loss(params, resolved):
    from skal import BGADLClassifier

    X, y = _images()
    common = dict(width=2, max_epochs=2, batch_size=16, random_state=0, gan_width=8,
                  gan_hidden=16, latent_dim=4)
    clf = BGADLClassifier(**common, **params).fit(X, y)
    explicit = {**params, "recalibrate_bn": resolved}
    same = BGADLClassifier(**common, **explicit).fit(X, y)  # what "auto" should resolve to
    a, b = clf.module_.state_dict(), same.module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # 2 epochs of 3 batches, or the 3 batches of one pass with the statistics re-estimated
    assert int(clf.module_.bn1.num_batches_tracked) == (3 if resolved else 6)
    assert clf.get_params()["recalibrate_bn"] == params.get("recalibrate_bn", "auto")
