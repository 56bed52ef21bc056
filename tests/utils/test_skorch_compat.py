"""Pins of what skal assumes about skorch's internals (skal.utils.skorch_compat uses each one).

Each test states one assumption against a *plain* skorch net, then checks that skal's wrapper
does what skal needs. A skorch release that changes an assumption fails here, by name.
"""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import Dataset, ValidSplit
from skorch.exceptions import SkorchAttributeError
from torch import nn

from skal import MCDropoutClassifier
from skal.utils.skorch_compat import (
    SKORCH_INIT_STATE,
    add_default_callbacks,
    dataset_arrays,
    full_length,
    module_names,
    predict_nonlinearity,
    set_training,
)


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((20, 4), dtype=np.float32), np.arange(20) % 2


def plain(**kwargs):
    return NeuralNetClassifier(_mlp(), max_epochs=1, batch_size=8, train_split=None, verbose=0,
                               **kwargs)


# ------------------------------------------------------------------ __init__ state
def test_skorch_init_sets_state_that_skal_drops():
    net = plain()
    assert set(SKORCH_INIT_STATE) <= set(vars(net))  # skorch's __init__ sets them
    skal_net = MCDropoutClassifier(_mlp())
    assert not set(SKORCH_INIT_STATE) & set(vars(skal_net))  # scikit-learn: parameters only
    assert skal_net.history_ is None and skal_net.initialized_ is False
    with pytest.raises(TypeError):  # the class-level default is read-only
        skal_net.virtual_params_["x"] = 1


def test_initialize_replaces_the_virtual_params_with_an_instance_dict(data):
    # skorch's initialize() assigns virtual_params_ = {} before registering optimizer params,
    # so the read-only class-level default is never written to
    clf = MCDropoutClassifier(_mlp(), max_epochs=1).fit(*data)
    assert isinstance(vars(clf)["virtual_params_"], dict) and clf.virtual_params_
    assert clf.initialized_ is True and "initialized_" in vars(clf)


# ------------------------------------------------------------------ __setattr__
def test_skorch_setattr_registers_torch_modules_once_initialized_exists():
    net = plain()
    with pytest.raises(SkorchAttributeError):  # skorch: a module outside initialize_*
        net.features = nn.Linear(2, 2)
    skal_net = MCDropoutClassifier(_mlp())
    skal_net.features = nn.Linear(2, 2)  # skal: a parameter is a plain attribute
    assert "features" not in skal_net.prefixes_


# ------------------------------------------------------------------ _get_param_names
def test_skorch_lists_private_attributes_as_params():
    net = plain()
    net._bookkeeping = 1
    assert "_bookkeeping" in net._get_param_names()
    assert "_params_to_validate" in net._get_param_names()
    skal_net = MCDropoutClassifier(_mlp())
    skal_net._bookkeeping = 1
    assert not [name for name in skal_net.get_params() if name.startswith("_")]


# ------------------------------------------------------------------ virtual optimizer params
def test_skorch_set_params_on_an_optimizer_stores_nothing(data):
    net = plain().fit(*data)
    assert net._is_virtual_param("optimizer__momentum") and net._is_virtual_param("lr")
    net.set_params(optimizer__momentum=0.7, lr=0.3)
    assert net.optimizer_.param_groups[0]["momentum"] == 0.7
    assert "optimizer__momentum" not in net.get_params()  # skorch loses it ...
    assert net.lr == 0.3  # ... but sets lr on the net itself
    clf = MCDropoutClassifier(_mlp(), max_epochs=1).fit(*data)
    clf.set_params(optimizer__momentum=0.7)
    assert clone(clf).get_params()["optimizer__momentum"] == 0.7  # skal keeps it


# ------------------------------------------------------------------ the training dataset
class _Recording(NeuralNetClassifier):
    def get_iterator(self, dataset, training=False):
        if training:
            self.seen_ = dataset
        return super().get_iterator(dataset, training=training)


@pytest.mark.parametrize("split", [None, ValidSplit(4)])
def test_get_iterator_gets_the_arrays_as_a_dataset_or_a_subset(data, split):
    X, y = data
    net = _Recording(_mlp(), max_epochs=1, batch_size=8, train_split=split, verbose=0)
    net.fit(X, y)
    dataset = net.seen_
    if split is None:
        assert isinstance(dataset, Dataset)
    else:
        assert isinstance(dataset, torch.utils.data.Subset)
        assert isinstance(dataset.dataset, Dataset) and len(dataset.indices) == 15
    X_seen, y_seen, rows = dataset_arrays(dataset, "owner")
    expected = np.arange(20) if rows is None else rows
    np.testing.assert_array_equal(X_seen, X[expected])
    np.testing.assert_array_equal(y_seen, y[expected])
    assert full_length(dataset) == 20


def test_dataset_arrays_refuses_other_datasets():
    dataset = torch.utils.data.TensorDataset(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(TypeError, match="Owner trains from numpy arrays; got a training dataset "
                       "of type TensorDataset"):
        dataset_arrays(dataset, "Owner")


# ------------------------------------------------------------------ modules, modes, callbacks
def test_registered_modules_and_set_training(data):
    net = plain().fit(*data)
    assert module_names(net) == ["module"]
    set_training(net, True)
    assert net.module_.training
    set_training(net, False)
    assert not any(m.training for m in net.module_.modules())


def test_print_log_is_the_last_default_callback():
    names = [name for name, _ in plain()._default_callbacks]
    assert names[-1] == "print_log"
    extra = [("extra", Callback())]
    assert [n for n, _ in add_default_callbacks(plain()._default_callbacks, extra)][-2:] == [
        "extra", "print_log"]


def test_predict_nonlinearity_is_softmax_for_cross_entropy(data):
    net = plain(criterion=nn.CrossEntropyLoss).fit(*data)
    logits = torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(predict_nonlinearity(net)(logits), torch.softmax(logits, dim=1))
