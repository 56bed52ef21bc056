"""Tests for the BGADL (VAE-ACGAN) losses in skal.losses, on hand-computed tiny tensors."""

import math

import pytest
import torch

from skal.losses import (
    auxiliary_classifier_loss,
    discriminator_loss,
    encoder_loss,
    generator_loss,
    vae_kl,
    vae_reconstruction,
)

LOG2 = math.log(2.0)


def test_vae_kl_is_zero_at_the_prior():
    zeros = torch.zeros(3, 4)
    assert vae_kl(zeros, zeros).item() == 0.0
    assert vae_kl(zeros, zeros, reduction="mean").item() == 0.0


def test_vae_kl_unit_mean_shift():
    # 0.5 * (1 + 1 - 0 - 1) = 0.5 per dimension; two dimensions -> 1.0 per sample.
    mu, log_var = torch.ones(5, 2), torch.zeros(5, 2)
    assert vae_kl(mu, log_var).item() == pytest.approx(1.0)
    assert vae_kl(mu, log_var, reduction="mean").item() == pytest.approx(0.5)


def test_vae_kl_variance_term_and_batch_mean():
    # Row 0: log_var = log 2 in one dim -> 0.5 * (2 - log 2 - 1); row 1: at the prior.
    log_var = torch.tensor([[LOG2, 0.0], [0.0, 0.0]])
    expected = 0.5 * (1.0 - LOG2) / 2  # mean over the two samples
    assert vae_kl(torch.zeros(2, 2), log_var).item() == pytest.approx(expected)
    assert vae_kl(torch.zeros(2, 2), log_var, reduction="mean").item() == pytest.approx(
        expected / 2
    )


def test_vae_kl_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="The 'reduction' parameter of vae_kl must be"):
        vae_kl(torch.zeros(1, 2), torch.zeros(1, 2), reduction="none")


def test_vae_reconstruction_is_pixel_mean_squared_error():
    x = torch.zeros(2, 1, 2, 2)
    x_rec = x.clone()
    x_rec[0, 0, 0, 0] = 1.0  # one squared error of 1 among 8 pixels
    assert vae_reconstruction(x_rec, x).item() == pytest.approx(1 / 8)


def test_encoder_loss_adds_reconstruction_and_kl():
    x = torch.zeros(2, 1, 2, 2)
    x_rec = torch.full_like(x, 0.5)  # MSE 0.25
    mu, log_var = torch.ones(2, 2), torch.zeros(2, 2)  # KL 1.0 ("sum") or 0.5 ("mean")
    assert encoder_loss(x_rec, x, mu, log_var).item() == pytest.approx(1.25)
    assert encoder_loss(x_rec, x, mu, log_var, kl_reduction="mean").item() == pytest.approx(0.75)
    assert encoder_loss(x_rec, x, mu, log_var, kl_weight=0.1).item() == pytest.approx(0.35)


def test_generator_loss_terms_and_reconstruction_weight():
    n_classes = 4
    d_fake = torch.zeros(3)  # BCE(sigmoid(0), 1) = log 2
    c_fake = torch.zeros(3, n_classes)  # uniform logits: CE = log K
    y = torch.tensor([0, 1, 3])
    x = torch.zeros(3, 1, 2, 2)
    x_rec = torch.ones_like(x)  # MSE 1
    expected = LOG2 + math.log(n_classes) + 0.75
    assert generator_loss(d_fake, c_fake, y, x_rec, x).item() == pytest.approx(expected)
    assert generator_loss(d_fake, c_fake, y, x_rec, x, rec_weight=0.0).item() == pytest.approx(
        LOG2 + math.log(n_classes)
    )


def test_reconstruction_sum_is_per_image_sum_of_squares():
    x = torch.zeros(2, 1, 2, 3)
    x_rec = torch.zeros_like(x)
    x_rec[0, 0, 0, 0] = 2.0  # image 0: squared error 4; image 1: 0
    x_rec[1, 0, 1, 2] = 1.0  # image 1: squared error 1
    assert vae_reconstruction(x_rec, x).item() == pytest.approx(5 / 12)  # mean over 12 pixels
    assert vae_reconstruction(x_rec, x, reduction="sum").item() == pytest.approx(5 / 2)
    with pytest.raises(ValueError, match="'reduction' parameter of vae_reconstruction"):
        vae_reconstruction(x_rec, x, reduction="max")


def test_generator_loss_reconstruction_reduction():
    d_fake, c_fake, y = torch.zeros(3), torch.zeros(3, 4), torch.tensor([0, 1, 3])
    x = torch.zeros(3, 1, 2, 2)
    x_rec = torch.ones_like(x)  # per-pixel squared error 1, per-image sum 4
    base = LOG2 + math.log(4)
    summed = generator_loss(d_fake, c_fake, y, x_rec, x, rec_reduction="sum")
    assert summed.item() == pytest.approx(base + 0.75 * 4)


def test_generator_loss_is_small_when_d_and_c_are_fooled():
    d_fake = torch.full((2,), 30.0)  # D is sure the samples are real
    c_fake = torch.tensor([[30.0, 0.0], [0.0, 30.0]])
    y = torch.tensor([0, 1])
    x = torch.rand(2, 1, 4, 4)
    assert generator_loss(d_fake, c_fake, y, x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_discriminator_loss_values():
    zeros = torch.zeros(4)
    assert discriminator_loss(zeros, zeros, zeros).item() == pytest.approx(3 * LOG2)
    # A confident, correct D: real -> +30, fake and reconstructed -> -30.
    real, fake = torch.full((4,), 30.0), torch.full((4,), -30.0)
    confident = discriminator_loss(real, fake, fake)
    assert confident.item() == pytest.approx(0.0, abs=1e-6)
    # Huge logits on the wrong side stay finite (sigmoid folded into the loss).
    wrong = discriminator_loss(torch.full((1,), -200.0), torch.full((1,), 200.0), torch.zeros(1))
    assert wrong.item() == pytest.approx(400.0 + LOG2)


def test_discriminator_loss_sends_no_gradient_to_a_detached_generator_output():
    weight = torch.tensor(2.0, requires_grad=True)  # stands in for G's parameters
    x_fake = weight * torch.ones(3)
    d_weight = torch.tensor(0.5, requires_grad=True)  # stands in for D's parameters
    d_real = d_weight * torch.ones(3)
    d_fake = d_weight * x_fake.detach()
    d_rec = d_weight * x_fake.detach()
    discriminator_loss(d_real, d_fake, d_rec).backward()
    assert weight.grad is None
    assert d_weight.grad is not None and d_weight.grad != 0


def test_auxiliary_classifier_loss_sums_three_cross_entropies():
    n_classes = 5
    uniform = torch.zeros(2, n_classes)
    y = torch.tensor([1, 4])
    loss = auxiliary_classifier_loss(uniform, uniform, uniform, y)
    assert loss.item() == pytest.approx(3 * math.log(n_classes))
    # A perfect prediction on the real images removes the first term only.
    perfect = torch.tensor([[0.0, 40.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 40.0]])
    loss = auxiliary_classifier_loss(perfect, uniform, uniform, y)
    assert loss.item() == pytest.approx(2 * math.log(n_classes), abs=1e-6)


def test_auxiliary_classifier_loss_gradient_reaches_every_input():
    logits = [torch.zeros(2, 3, requires_grad=True) for _ in range(3)]
    auxiliary_classifier_loss(*logits, torch.tensor([0, 2])).backward()
    for tensor in logits:
        # d CE / d logits = (softmax - one_hot) / n = (1/3 - [1, 0, 0]) / 2 for row 0
        torch.testing.assert_close(tensor.grad[0], torch.tensor([-1 / 3, 1 / 6, 1 / 6]))


def test_encoder_loss_gradient_of_kl_at_the_prior_is_zero():
    mu = torch.zeros(2, 3, requires_grad=True)
    log_var = torch.zeros(2, 3, requires_grad=True)
    x = torch.zeros(2, 1, 2, 2)
    encoder_loss(x, x, mu, log_var).backward()
    torch.testing.assert_close(mu.grad, torch.zeros(2, 3))
    torch.testing.assert_close(log_var.grad, torch.zeros(2, 3))
