"""mixed_precision (bf16 / fp16 autocast) and memory_format="channels_last", tested on the CPU.

The same code path runs with device="cuda"; the CUDA test at the end runs where a GPU is present.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from skal import ResNet18Classifier, WAALClassifier, bald


def _conv_outputs(clf):
    """Record (dtype, channels-last?) of every Conv2d output of the fitted or fitting module."""
    seen = []

    def hook(module, inputs, output):
        seen.append((output.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last)))

    return seen, hook


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:96], y[:96], X[200:260]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_and_scoring_run_under_autocast(precision, data):
    X, y, X_pool = data
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    clf = ResNet18Classifier(width=4, max_epochs=2, batch_size=32, random_state=0,
                             mixed_precision=precision, classes=np.unique(y),
                             image_shape=(1, 8, 8))
    seen, hook = _conv_outputs(clf)
    clf.initialize()  # built before fit, so that the hooks see the training forwards
    handles = [m.register_forward_hook(hook) for m in clf.module_.modules()
               if isinstance(m, nn.Conv2d)]
    clf.partial_fit(X, y)
    assert seen and all(d == dtype for d, _ in seen)  # training forwards in low precision
    assert np.isfinite(clf.history[-1]["train_loss"])
    seen.clear()
    proba = clf.predict_proba(X_pool)
    samples = clf.sample_proba(X_pool, n_samples=3, random_state=0)
    assert seen and all(d == dtype for d, _ in seen)  # and scoring too
    for h in handles:
        h.remove()
    assert proba.dtype == np.float32 and samples.dtype == np.float32  # outputs in float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # the same weights in float32 give nearly, but not exactly, the same probabilities
    full = clf.set_params(mixed_precision=None).predict_proba(X_pool)
    assert 0 < np.abs(full - proba).max() < 0.05
    if precision == "fp16":
        assert clf._grad_scaler().is_enabled()  # fp16 losses are scaled
    idx, _ = bald(clf.set_params(mixed_precision=precision), X_pool, n_instances=3, n_samples=3,
                  random_state=0)
    assert len(np.unique(idx)) == 3


# The backward pass of a 1x1 stride-2 convolution (ResNet18's shortcut) in channels-last, as
# oneDNN runs it on the CPU.
_PROBE = """
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
conv = torch.nn.Conv2d(4, 8, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
for _ in range(20):
    x = torch.randn(32, 4, 28, 28).to(memory_format=torch.channels_last).requires_grad_()
    conv(x).sum().backward()
"""


def _cpu_channels_last_backward_crashes():
    """Whether torch's CPU channels-last convolution backward kills a process on this machine.

    With torch 2.14.1 on an AMD EPYC (AVX2 kernels) it did, nondeterministically: a bus error
    or ``free(): invalid next size`` from oneDNN's 1x1 stride-2 backward (a torch bug; with
    ``torch.backends.mkldnn.enabled = False`` it ran). Probed in a child process, which is all
    it can take down.
    """
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    return proc.returncode != 0


def test_channels_last_weights_and_inputs_same_predictions(data):
    if _cpu_channels_last_backward_crashes():
        pytest.skip("torch's oneDNN channels-last convolution backward crashes the process on "
                    "this CPU (torch bug, seen with torch 2.14.1 on AVX2); memory_format="
                    "'channels_last' is for CUDA here")
    X, y, X_pool = data
    kwargs = dict(width=4, max_epochs=1, batch_size=32, random_state=0)
    ref = ResNet18Classifier(**kwargs).fit(X, y)
    clf = ResNet18Classifier(memory_format="channels_last", **kwargs).fit(X, y)
    def second_conv(net):  # more than one input channel, where the two formats differ
        return [m for m in net.module_.modules() if isinstance(m, nn.Conv2d)][1]

    conv = second_conv(clf)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not second_conv(ref).weight.is_contiguous(memory_format=torch.channels_last)
    seen, hook = _conv_outputs(clf)
    handle = conv.register_forward_hook(hook)
    proba = clf.predict_proba(X_pool)
    clf.sample_proba(X_pool[:5], n_samples=2)
    handle.remove()
    assert seen and all(cl for _, cl in seen)  # inputs arrive channels-last
    # the memory format changes strides, not the model: same training, same predictions
    np.testing.assert_allclose(proba, ref.predict_proba(X_pool), atol=1e-5)


def test_waal_bf16_channels_last(digits):
    X, y = digits
    y = y[:120].copy()
    y[80:] = -1
    kwargs = dict(features="lenet", max_epochs=1, batch_size=16, random_state=0)
    X28 = np.repeat(np.repeat(X[:120], 4, axis=2), 4, axis=3)[:, :, :28, :28]  # (n, 1, 28, 28)
    clf = WAALClassifier(mixed_precision="bf16", memory_format="channels_last", **kwargs)
    seen, hook = _conv_outputs(clf)
    clf.fit(X28, y)
    handles = [m.register_forward_hook(hook) for m in clf.module_.modules()
               if isinstance(m, nn.Conv2d)]
    scores = clf.waal_score(X28[80:])
    for h in handles:
        h.remove()
    assert seen and all(d == torch.bfloat16 and cl for d, cl in seen)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    assert np.isfinite(clf.history[-1]["critic_loss"])
    full = WAALClassifier(**kwargs).fit(X28, y).waal_score(X28[80:])
    assert np.abs(full - scores).max() < 0.5  # same training in float32, within bf16 rounding


@pytest.mark.parametrize("param, value, expected", [
    ("mixed_precision", "fp8", "None, 'bf16' or 'fp16'"),
    ("mixed_precision", True, "None, 'bf16' or 'fp16'"),
    ("memory_format", "nhwc", "'contiguous' or 'channels_last'"),
])
def test_bad_precision_params(param, value, expected, data):
    X, y, _ = data
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of ResNet18Classifier must be "
                                         rf"{expected}\. Got {value!r} instead\."):
        ResNet18Classifier(width=2, max_epochs=1, **{param: value}).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_channels_last(data):  # pragma: no cover - runs only where a GPU is
    X, y, X_pool = data
    clf = ResNet18Classifier(width=8, max_epochs=1, device="cuda", mixed_precision="bf16",
                             memory_format="channels_last", random_state=0).fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    assert clf.sample_proba(X_pool, n_samples=3).dtype == np.float32
    assert len(bald(clf, X_pool, n_instances=3, n_samples=3)[0]) == 3
