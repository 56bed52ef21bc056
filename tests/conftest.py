"""Shared fixtures: tiny data and tiny fitted nets (module-scoped, so each is trained once)."""

import os

import numpy as np
import pytest
import torch

from skal import ResNet18Classifier
from skal.datasets import load_digits_images

# Two CPU cores in CI: one thread per process keeps parallel tools from oversubscribing.
torch.set_num_threads(int(os.environ.get("SKAL_TEST_THREADS", "2")))


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
