"""Shared fixtures: tiny data and tiny fitted nets (module-scoped, so each is trained once)."""

import os

import pytest
import torch

from skal import ResNet18Classifier
from skal.datasets import load_digits_images

# One thread per test process: with more, OpenMP threads that share the 2 CI cores with any other
# process spin and get descheduled (measured here: the suite stalled at 12 % after 30 min with 2
# threads beside two benchmark processes, and ran tests/estimators/test_classifier.py in 10 s with 1).
torch.set_num_threads(int(os.environ.get("SKAL_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits():
    return load_digits_images()


@pytest.fixture(scope="session")
def digits_small(digits):
    X, y = digits
    return X[:400], y[:400]


@pytest.fixture(scope="module")
def tiny_resnet(digits_small):
    X, y = digits_small
    return ResNet18Classifier(width=4, max_epochs=2, random_state=0).fit(X[:100], y[:100])
