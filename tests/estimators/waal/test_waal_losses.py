"""Tests of WAAL's losses and query scores in skal.losses, on hand-computed tiny cases."""

import math

import numpy as np
import pytest
import torch

from skal.losses import (
    gradient_penalty,
    waal_adversarial_loss,
    waal_bias_coefficient,
    waal_query_score,
    waal_uncertainty,
)
from skal.nets import WAALCritic


def linear_critic(weight):
    """A critic g(z) = w . z returning shape (n,), with w a trainable parameter."""
    w = torch.nn.Parameter(torch.tensor(weight))
    return (lambda z: z @ w), w


# --- bias coefficient C0 (Eq. 3.8) ----------------------------------------------------------------


def test_bias_coefficient_thesis_example():
    # gamma = 9, alpha = 1: (9 - 1) / (81 * 2)
    assert waal_bias_coefficient(1000, 9000, 1000) == pytest.approx(8 / 162)
    assert waal_bias_coefficient(1000, 9000, 1000) == pytest.approx(0.04938, abs=1e-5)


def test_bias_coefficient_other_values():
    # L=2, U=4, B=1: gamma = 2, alpha = 0.5 -> 1.5 / (4 * 1.5) = 0.25
    assert waal_bias_coefficient(2, 4, 1) == pytest.approx(0.25)
    # B = U: gamma = alpha, the labelled term vanishes
    assert waal_bias_coefficient(10, 30, 30) == 0.0
    assert waal_bias_coefficient(np.int64(2), np.int64(4), np.int64(1)) == pytest.approx(0.25)


@pytest.mark.parametrize("name", ["n_labeled", "n_unlabeled", "n_query"])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bias_coefficient_rejects_non_positive_ints(name, bad):
    kwargs = {"n_labeled": 10, "n_unlabeled": 90, "n_query": 10, name: bad}
    message = rf"The '{name}' parameter of waal_bias_coefficient must be an int in the range \[1, inf\)"
    with pytest.raises(ValueError, match=message):
        waal_bias_coefficient(**kwargs)


# --- adversarial loss (Eqs. 3.7-3.8) -------------------------------------------------------------


def test_adversarial_loss_hand_computed():
    critic_unlabeled = torch.tensor([0.9, 0.7, 0.5])  # mean 0.7
    critic_labeled = torch.tensor([0.1, 0.3])  # mean 0.2
    loss = waal_adversarial_loss(critic_unlabeled, critic_labeled, coef=0.5)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(0.7 - 0.5 * 0.2)
    loss = waal_adversarial_loss(critic_unlabeled, critic_labeled, coef=0.0)
    assert loss.item() == pytest.approx(0.7)


def test_adversarial_loss_gradient_signs():
    critic_unlabeled = torch.tensor([0.5, 0.5], requires_grad=True)
    critic_labeled = torch.tensor([0.5, 0.5, 0.5, 0.5], requires_grad=True)
    waal_adversarial_loss(critic_unlabeled, critic_labeled, coef=2.0).backward()
    torch.testing.assert_close(critic_unlabeled.grad, torch.full((2,), 0.5))
    torch.testing.assert_close(critic_labeled.grad, torch.full((4,), -0.5))


# --- gradient penalty (WGAN-GP) -------------------------------------------------------------------


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    critic, _ = linear_critic([0.6, 0.8])
    z_a = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    z_b = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))
    for include_endpoints in (False, True):
        penalty = gradient_penalty(critic, z_a, z_b, include_endpoints=include_endpoints)
        assert penalty.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("weight, norm", [([3.0, 4.0], 5.0), ([0.3, 0.4], 0.5), ([0.0, 0.0], 0.0)])
def test_gradient_penalty_linear_critic(weight, norm):
    critic, w = linear_critic(weight)
    z_a, z_b = torch.zeros(4, 2), torch.ones(4, 2)
    penalty = gradient_penalty(critic, z_a, z_b, generator=torch.Generator().manual_seed(0))
    assert penalty.item() == pytest.approx((norm - 1.0) ** 2)
    # create_graph=True: the penalty reaches the critic's parameters
    penalty.backward()
    expected = 2 * (norm - 1.0) * w.detach() / norm if norm > 0 else torch.zeros(2)
    torch.testing.assert_close(w.grad, expected)


def test_gradient_penalty_interpolates_and_endpoints():
    # g(z) = ||z||^2 / 2 has gradient z: z_a = (0, 1), z_b = (0, 3) give norms 1, 3 and 1 + 2r
    critic = lambda z: 0.5 * (z**2).sum(dim=1)  # noqa: E731
    z_a, z_b = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 3.0]])
    r = torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    penalty = gradient_penalty(critic, z_a, z_b, generator=torch.Generator().manual_seed(7))
    assert penalty.item() == pytest.approx((2 * r) ** 2, rel=1e-5)
    penalty = gradient_penalty(
        critic, z_a, z_b, generator=torch.Generator().manual_seed(7), include_endpoints=True
    )
    assert penalty.item() == pytest.approx((0.0 + 4.0 + (2 * r) ** 2) / 3, rel=1e-5)


def test_gradient_penalty_is_reproducible_and_leaves_global_rng_alone():
    critic = lambda z: 0.5 * (z**2).sum(dim=1)  # noqa: E731
    z_a, z_b = torch.zeros(6, 3), torch.ones(6, 3)
    state = torch.get_rng_state()
    first = gradient_penalty(critic, z_a, z_b, generator=torch.Generator().manual_seed(3))
    second = gradient_penalty(critic, z_a, z_b, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert first.item() == second.item()


def test_gradient_penalty_flows_into_features_that_require_grad():
    critic = lambda z: 0.5 * (z**2).sum(dim=1)  # noqa: E731
    z_a = torch.ones(2, 2, requires_grad=True)
    gradient_penalty(critic, z_a, z_a.detach()).backward()
    assert z_a.grad is not None and torch.isfinite(z_a.grad).all()


def test_gradient_penalty_rejects_mismatched_shapes():
    critic, _ = linear_critic([1.0, 0.0])
    message = "'z_a' and 'z_b' parameters of gradient_penalty must have the same shape"
    with pytest.raises(ValueError, match=message):
        gradient_penalty(critic, torch.zeros(3, 2), torch.zeros(4, 2))


def _mean_distance_of_gradient_norm_to_one(critic, z):
    z = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(z).sum(), z)
    return (grad.norm(dim=1) - 1.0).abs().mean().item()


def _train_critic(gp_sign):
    """A few SGD steps on the critic loss -W + gp_sign * 10 * gp, on fixed seeded data."""
    generator = torch.Generator().manual_seed(0)
    z_unlabeled = torch.randn(32, 2, generator=generator) + 1.0
    z_labeled = torch.randn(32, 2, generator=generator)
    critic = WAALCritic(2, hidden=8, dropout=0.0)
    for parameter in critic.parameters():
        parameter.data = torch.randn(parameter.shape, generator=generator)
    z_eval = torch.cat([z_unlabeled, z_labeled])
    before = _mean_distance_of_gradient_norm_to_one(critic, z_eval)
    optimizer = torch.optim.SGD(critic.parameters(), lr=0.05)
    for _ in range(20):
        w = waal_adversarial_loss(critic(z_unlabeled), critic(z_labeled), coef=1.0)
        penalty = gradient_penalty(critic, z_unlabeled, z_labeled, generator=generator)
        loss = -w + gp_sign * 10.0 * penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, _mean_distance_of_gradient_norm_to_one(critic, z_eval)


def test_correct_gp_sign_pushes_gradient_norm_towards_one():
    before, after = _train_critic(gp_sign=+1.0)
    assert after < before - 0.1


def test_authors_gp_sign_pushes_gradient_norm_away_from_one():
    before, after = _train_critic(gp_sign=-1.0)
    assert after > before + 0.1


# --- uncertainty bound and query score (Eqs. 3.9-3.11) -------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4, 10])
def test_uncertainty_uniform_prediction(n_classes):
    log_k = math.log(n_classes)
    log_proba = torch.full((3, n_classes), -log_k)
    paper = waal_uncertainty(log_proba, mixture=0.5, kind="linf_l1")
    code = waal_uncertainty(log_proba, mixture=0.5, kind="l2_l1")
    assert paper.shape == code.shape == (3,)
    max_part, l2_part, l1_part = log_k, math.sqrt(n_classes) * log_k, n_classes * log_k
    torch.testing.assert_close(paper, torch.full((3,), 0.5 * max_part + 0.5 * l1_part))
    torch.testing.assert_close(code, torch.full((3,), 0.5 * l2_part + 0.5 * l1_part))
    # mixture picks the parts: 1 -> max (paper) or l2 (code), 0 -> l1
    torch.testing.assert_close(waal_uncertainty(log_proba, mixture=1.0), torch.full((3,), max_part))
    torch.testing.assert_close(waal_uncertainty(log_proba, mixture=0.0), torch.full((3,), l1_part))


def test_uncertainty_ten_classes_matches_brief_scale():
    # docs/waal.md, 'Query rule': the code's bound is 15.15 at the uniform output for K = 10
    log_proba = torch.full((1, 10), -math.log(10))
    assert waal_uncertainty(log_proba, kind="l2_l1").item() == pytest.approx(15.15, abs=5e-3)


def test_uncertainty_hand_computed_probabilities():
    proba = torch.tensor([[0.5, 0.25, 0.25], [0.8, 0.1, 0.1]])
    neg_log = -proba.log()
    paper = waal_uncertainty(proba.log(), mixture=0.25, kind="linf_l1")
    code = waal_uncertainty(proba.log(), mixture=0.25, kind="l2_l1")
    # row 0: -log p = (log 2, log 4, log 4): max = log 4, l1 = 5 log 2, l2 = sqrt(1 + 4 + 4) log 2
    log2 = math.log(2)
    assert paper[0].item() == pytest.approx(0.25 * 2 * log2 + 0.75 * 5 * log2, rel=1e-6)
    assert code[0].item() == pytest.approx(0.25 * 3 * log2 + 0.75 * 5 * log2, rel=1e-6)
    # row 1: max = log 10, l1 = log 1.25 + 2 log 10
    log10 = math.log(10)
    assert paper[1].item() == pytest.approx(0.25 * log10 + 0.75 * (math.log(1.25) + 2 * log10))
    expected = 0.25 * neg_log[1].norm().item() + 0.75 * neg_log[1].sum().item()
    assert code[1].item() == pytest.approx(expected, rel=1e-6)
    # the confident row has the larger bound: its worst class is less likely (0.1 < 0.25)
    assert paper[1] > paper[0]


def test_uncertainty_is_smallest_at_uniform():
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [5.0, 0.0, -5.0]])
    log_proba = torch.log_softmax(logits, dim=1)
    for kind in ("linf_l1", "l2_l1"):
        scores = waal_uncertainty(log_proba, kind=kind)
        assert scores.argmin().item() == 0
        assert bool((scores[1:] > scores[0]).all())


def test_query_score_hand_computed_and_smallest_wins():
    log_proba = torch.full((3, 2), math.log(0.5))  # same uncertainty 0.5 log 2 + 0.5 * 2 log 2
    critic_score = torch.tensor([0.2, 0.9, 0.5])
    score = waal_query_score(log_proba, critic_score, selection=5.0)
    base = 1.5 * math.log(2)
    torch.testing.assert_close(score, torch.tensor([base - 1.0, base - 4.5, base - 2.5]))
    # the sample that looks least like the labelled set (highest g) is queried first
    assert score.argsort().tolist() == [1, 2, 0]


def test_query_score_trades_uncertainty_against_diversity():
    log_proba = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    critic_score = torch.tensor([0.0, 1.0])
    uncertainty = waal_uncertainty(log_proba)
    gap = (uncertainty[1] - uncertainty[0]).item()  # the uniform row has the smaller bound
    assert gap > 0
    low = waal_query_score(log_proba, critic_score, selection=0.5 * gap)
    high = waal_query_score(log_proba, critic_score, selection=2.0 * gap)
    assert low.argmin().item() == 0
    assert high.argmin().item() == 1
    code = waal_query_score(log_proba, critic_score, selection=3.0, mixture=0.3, kind="l2_l1")
    torch.testing.assert_close(code, waal_uncertainty(log_proba, 0.3, "l2_l1") - 3.0 * critic_score)


@pytest.mark.parametrize("function", [waal_uncertainty, waal_query_score])
def test_query_functions_validate_arguments(function):
    name = function.__name__
    args = (torch.zeros(2, 3),)
    if function is waal_query_score:
        args += (torch.zeros(2),)
    with pytest.raises(ValueError, match=f"The 'kind' parameter of {name} must be 'linf_l1' or"):
        function(*args, kind="l2")
    with pytest.raises(ValueError, match=rf"The 'mixture' parameter of {name} must be a float in "
                                         r"the range \[0\.0, 1\.0\]\. Got 1\.5"):
        function(*args, mixture=1.5)
    bad_args = (torch.zeros(3),) + args[1:]
    with pytest.raises(ValueError, match=f"The 'log_proba' parameter of {name} must be a 2-D"):
        function(*bad_args)


@pytest.mark.parametrize("old, new", [("paper", "linf_l1"), ("code", "l2_l1")])
def test_old_kind_names_still_work_with_a_deprecation_warning(old, new):
    log_proba = torch.log_softmax(torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]]), dim=1)
    critic_score = torch.tensor([0.3, 0.7])
    with pytest.warns(DeprecationWarning, match=f"kind='{old}' of waal_uncertainty is deprecated"):
        torch.testing.assert_close(waal_uncertainty(log_proba, kind=old),
                                   waal_uncertainty(log_proba, kind=new))
    with pytest.warns(DeprecationWarning, match=f"use kind='{new}'"):
        torch.testing.assert_close(waal_query_score(log_proba, critic_score, kind=old),
                                   waal_query_score(log_proba, critic_score, kind=new))


def test_query_score_rejects_wrong_critic_shape():
    message = "The 'critic_score' parameter of waal_query_score must have shape"
    with pytest.raises(ValueError, match=message):
        waal_query_score(torch.zeros(2, 3), torch.zeros(2, 1))
