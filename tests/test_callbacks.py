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
