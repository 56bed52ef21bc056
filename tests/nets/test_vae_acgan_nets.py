"""Tests for skal.nets.vae_acgan: shapes, ranges, initialisation, reparameterisation."""

import pytest
import torch
from torch import nn

from skal.nets import (
    AuxiliaryClassifier,
    Discriminator,
    Encoder,
    Generator,
    init_normal_,
    reparameterize,
)

IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8), (1, 30, 26)]
N_CLASSES = 3
LATENT_DIM = 5
BATCH = 4


def _images(image_shape, seed=0):
    return torch.rand((BATCH, *image_shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
def test_encoder_shapes_and_unconstrained_outputs(image_shape):
    torch.manual_seed(0)
    encoder = Encoder(image_shape, latent_dim=LATENT_DIM)
    mu, log_var = encoder(_images(image_shape))
    assert mu.shape == (BATCH, LATENT_DIM)
    assert log_var.shape == (BATCH, LATENT_DIM)
    # No sigmoid on the heads: training-mode BatchNorm centres the features, so the linear
    # heads give values of both signs.
    assert (mu < 0).any() and (mu > 0).any()
    assert (log_var < 0).any()


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
def test_generator_shape_and_range(image_shape):
    torch.manual_seed(0)
    generator = Generator(image_shape, n_classes=N_CLASSES, latent_dim=LATENT_DIM)
    z = torch.randn(BATCH, LATENT_DIM)
    y_onehot = nn.functional.one_hot(torch.arange(BATCH) % N_CLASSES, N_CLASSES).float()
    x = generator(z, y_onehot)
    assert x.shape == (BATCH, *image_shape)
    assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
def test_discriminator_returns_one_logit_per_image(image_shape):
    discriminator = Discriminator(image_shape)
    logits = discriminator(_images(image_shape))
    assert logits.shape == (BATCH,)


@pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
def test_auxiliary_classifier_logits_and_feature_split(image_shape):
    classifier = AuxiliaryClassifier(image_shape, n_classes=N_CLASSES).eval()
    x = _images(image_shape)
    logits = classifier(x)
    assert logits.shape == (BATCH, N_CLASSES)
    torch.testing.assert_close(classifier.head(classifier.features(x)), logits)


def test_encoder_generator_discriminator_round_trip_has_gradients():
    image_shape = (1, 8, 8)
    encoder = Encoder(image_shape, latent_dim=LATENT_DIM)
    generator = Generator(image_shape, n_classes=N_CLASSES, latent_dim=LATENT_DIM)
    discriminator = Discriminator(image_shape)
    mu, log_var = encoder(_images(image_shape))
    y_onehot = torch.eye(N_CLASSES)[torch.tensor([0, 1, 2, 0])]
    discriminator(generator(reparameterize(mu, log_var), y_onehot)).sum().backward()
    assert encoder.mu.weight.grad is not None
    assert encoder.conv[0].weight.grad is not None


@pytest.mark.parametrize("net", [Encoder, Discriminator])
def test_too_small_image_shape_raises(net):
    with pytest.raises(ValueError, match=rf"The 'image_shape' parameter of {net.__name__} must be a "
                       r"tuple \(C, H, W\) with C an int in the range \[1, inf\) and H and W each an int in the "
                       r"range \[4, inf\)\. Got"):
        net((1, 3, 28))


def test_init_normal_sets_std_and_zero_biases():
    generator = init_normal_(
        Generator((1, 28, 28), n_classes=10), generator=torch.Generator().manual_seed(0)
    )
    big_linear = generator.fc[3]  # Linear(1024, 128 * 7 * 7): about 6.4 million weights
    assert abs(big_linear.weight.std().item() - 0.02) < 1e-3
    assert abs(big_linear.weight.mean().item()) < 1e-3
    assert torch.all(big_linear.bias == 0)
    batch_norm = generator.fc[1]
    assert abs(batch_norm.weight.mean().item() - 1.0) < 5e-3
    assert torch.all(batch_norm.bias == 0)


def test_init_normal_is_reproducible_with_a_seeded_generator():
    first = init_normal_(Discriminator((1, 8, 8)), generator=torch.Generator().manual_seed(1))
    second = init_normal_(Discriminator((1, 8, 8)), generator=torch.Generator().manual_seed(1))
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b)


def test_reparameterize_is_reproducible_and_differentiable():
    mu = torch.tensor([[0.0, 1.0], [-2.0, 3.0]], requires_grad=True)
    log_var = torch.zeros(2, 2, requires_grad=True)
    first = reparameterize(mu, log_var, generator=torch.Generator().manual_seed(3))
    second = reparameterize(mu, log_var, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    eps = torch.randn((2, 2), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, mu + eps)  # sigma = exp(0 / 2) = 1
    first.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(2, 2))
    torch.testing.assert_close(log_var.grad, 0.5 * eps)


def test_reparameterize_with_very_negative_log_var_returns_mu():
    mu = torch.tensor([[0.5, -0.5]])
    z = reparameterize(mu, torch.full((1, 2), -60.0))
    torch.testing.assert_close(z, mu)
