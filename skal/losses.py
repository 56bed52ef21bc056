"""The papers' losses and scores as pure tensor functions. Each function cites its equation."""

import warnings

import torch
from torch.nn import functional as F

from .utils.params import Float, Int, validates

_POSITIVE = Int(1)  # a count of samples


# ---------------------------------------------------------------------------------------------
# BGADL: the VAE-ACGAN losses (Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses').
# Notation: E encoder, G generator (= VAE decoder), D discriminator, C auxiliary classifier;
# x real images, y their labels, x_rec = G(reparameterize(E(x)), y) the reconstructions (the
# paper's x'), x_fake = G(z, y) with z ~ N(0, I) the class-conditional samples.
# D returns logits: its sigmoid is folded into binary_cross_entropy_with_logits.
# ---------------------------------------------------------------------------------------------


def _bce_with_logits_to(logits, target):
    """Mean binary cross-entropy of ``sigmoid(logits)`` against the constant label ``target``."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


def vae_kl(mu, log_var, reduction="sum"):
    """KL(N(mu, sigma^2) || N(0, I)) of a diagonal Gaussian encoder, averaged over the batch.

    KL = 0.5 * sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1), with log sigma^2 = ``log_var``
    (Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses', item 1).

    Parameters
    ----------
    mu, log_var : torch.Tensor of shape (n, latent_dim)
        Encoder outputs.
    reduction : {"sum", "mean"}, default="sum"
        ``"sum"``: sum over latent dimensions, mean over the batch (the standard per-sample KL).
        ``"mean"``: mean over latent dimensions too, as in the authors' code; this is
        ``1 / latent_dim`` times the standard value.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    kl_per_dim = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1.0)  # (n, latent_dim)
    if reduction == "sum":
        return kl_per_dim.flatten(1).sum(dim=1).mean()
    if reduction == "mean":
        return kl_per_dim.mean()
    raise ValueError(
        f"The 'reduction' parameter of vae_kl must be 'sum' or 'mean'. Got {reduction!r} instead."
    )


def vae_reconstruction(x_rec, x, reduction="mean"):
    """Squared reconstruction error of x_rec against x.

    Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses' (``nn.MSELoss`` in the authors' code).

    Parameters
    ----------
    x_rec, x : torch.Tensor of shape (n, C, H, W)
        Reconstructions G(E(x), y) and the real images.
    reduction : {"mean", "sum"}, default="mean"
        ``"mean"``: the mean over all pixels and images (MSE, the authors' ``nn.MSELoss``).
        ``"sum"``: the sum over each image's pixels, averaged over images (``C * H * W`` times the
        MSE; the per-image scale of the authors' commented-out BCE alternative and of a VAE's
        Gaussian log-likelihood).

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    if reduction == "mean":
        return F.mse_loss(x_rec, x)
    if reduction == "sum":
        return F.mse_loss(x_rec, x, reduction="sum") / len(x)
    raise ValueError(
        "The 'reduction' parameter of vae_reconstruction must be 'mean' or 'sum'. "
        f"Got {reduction!r} instead."
    )


def encoder_loss(x_rec, x, mu, log_var, kl_reduction="sum", kl_weight=1.0):
    """Encoder loss L_E = MSE(x_rec, x) + kl_weight * KL(q(z | x) || N(0, I)).

    Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses', item 1. Only the encoder is updated with
    this loss in the authors' scheme.

    Parameters
    ----------
    x_rec, x : torch.Tensor of shape (n, C, H, W)
        Reconstructions and real images.
    mu, log_var : torch.Tensor of shape (n, latent_dim)
        Encoder outputs for ``x``.
    kl_reduction : {"sum", "mean"}, default="sum"
        Passed to ``vae_kl`` as ``reduction``; ``"mean"`` reproduces the authors' code.
    kl_weight : float, default=1.0
        Weight of the KL term (1 in the authors' code).

    Returns
    -------
    torch.Tensor
        Scalar.

    Notes
    -----
    The reconstruction term is a per-pixel mean while the ``"sum"`` KL is a per-sample sum, so
    relative to a summed squared error the KL is weighted by ``C * H * W``; lower ``kl_weight`` (or
    use ``kl_reduction="mean"``) if reconstructions lose their inputs' details.
    """
    return vae_reconstruction(x_rec, x) + kl_weight * vae_kl(mu, log_var, reduction=kl_reduction)


def generator_loss(d_fake_logits, c_fake_logits, y, x_rec, x, rec_weight=0.75,
                   rec_reduction="mean"):
    """Generator loss L_G = BCE(D(x_fake), 1) + CE(C(x_fake), y) + rec_weight * rec(x_rec, x).

    Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses', item 2: fool D, make C recognise the
    intended class, and reconstruct the real images (weight 0.75 in the authors' code). There is no
    adversarial or classification term on ``x_rec``.

    Parameters
    ----------
    d_fake_logits : torch.Tensor of shape (n,)
        Discriminator logits D(x_fake) for the samples G(z, y).
    c_fake_logits : torch.Tensor of shape (n, n_classes)
        Classifier logits C(x_fake).
    y : torch.Tensor of shape (n,)
        Class indices (int64) the samples were generated for.
    x_rec, x : torch.Tensor of shape (n, C, H, W)
        Reconstructions and real images.
    rec_weight : float, default=0.75
        Weight of the reconstruction term.
    rec_reduction : {"mean", "sum"}, default="mean"
        Passed to :func:`vae_reconstruction`: per-pixel mean (the authors' code) or per-image sum.
        Unlike in :func:`encoder_loss`, where only the ratio of the two terms matters to Adam, here
        the scale decides how much the reconstruction weighs against the two adversarial terms.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    adversarial = _bce_with_logits_to(d_fake_logits, 1.0)
    classification = F.cross_entropy(c_fake_logits, y)
    reconstruction = vae_reconstruction(x_rec, x, reduction=rec_reduction)
    return adversarial + classification + rec_weight * reconstruction


def discriminator_loss(d_real_logits, d_fake_logits, d_rec_logits):
    """Discriminator loss L_D = BCE(D(x), 1) + BCE(D(x_fake), 0) + BCE(D(x_rec), 0).

    Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses', item 3: both generated samples and
    reconstructions count as fake. Pass logits of *detached* ``x_fake`` and ``x_rec`` so that no
    gradient reaches G or E (the authors' code does not detach; the gradients are wasted).

    Parameters
    ----------
    d_real_logits, d_fake_logits, d_rec_logits : torch.Tensor of shape (n,)
        Discriminator logits for real images, samples G(z, y) and reconstructions.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return (
        _bce_with_logits_to(d_real_logits, 1.0)
        + _bce_with_logits_to(d_fake_logits, 0.0)
        + _bce_with_logits_to(d_rec_logits, 0.0)
    )


def auxiliary_classifier_loss(c_real_logits, c_fake_logits, c_rec_logits, y):
    """Classifier loss L_C = CE(C(x), y) + CE(C(x_fake), y) + CE(C(x_rec), y).

    Tran et al. 2019, VAE-ACGAN; docs/bgadl.md, 'Losses', item 3: the classifier (the learner, which
    doubles as the ACGAN auxiliary classifier) trains on real, generated and reconstructed images,
    all with the real batch's labels and weight 1. The caller must compute ``c_fake_logits`` and
    ``c_rec_logits`` on *detached* generated and reconstructed images, so that this loss updates C
    only.

    Parameters
    ----------
    c_real_logits, c_fake_logits, c_rec_logits : torch.Tensor of shape (n, n_classes)
        Classifier logits for real images, samples G(z, y) and reconstructions G(E(x), y).
    y : torch.Tensor of shape (n,)
        Class indices (int64) of the real batch.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return (
        F.cross_entropy(c_real_logits, y)
        + F.cross_entropy(c_fake_logits, y)
        + F.cross_entropy(c_rec_logits, y)
    )


def masked_cross_entropy(logits, y, keep=None):
    """Cross-entropy averaged over the batch, counting only the rows in ``keep``.

    ``sum_i keep_i * CE(logits_i, y_i) / n``: dropped rows contribute 0 and the divisor stays the
    batch size n, so filtering generated samples lowers their total weight instead of raising the
    weight of the ones kept. With ``keep=None`` it is ``F.cross_entropy(logits, y)``, so
    ``CE(C(x), y) + masked_cross_entropy(C(x_fake), y) + masked_cross_entropy(C(x_rec), y)`` is
    :func:`auxiliary_classifier_loss`. BGADL's classifier loss weighs the two generated terms
    (``BGADLMixin``'s ``gen_weight``) and may drop generated samples that the classifier or the
    discriminator is not confident about (``gen_filter``).

    Parameters
    ----------
    logits : torch.Tensor of shape (n, n_classes)
        Class logits.
    y : torch.Tensor of shape (n,)
        Class indices (int64).
    keep : torch.Tensor of shape (n,) or None, default=None
        Boolean (or 0/1 float) mask of the rows that count.

    Returns
    -------
    torch.Tensor
        Scalar (0 when no row is kept).

    Examples
    --------
    >>> import torch
    >>> logits, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    >>> masked_cross_entropy(logits, y, keep=torch.tensor([True, True, False, False]))
    tensor(0.3466)
    """
    if keep is None:
        return F.cross_entropy(logits, y)
    per_row = F.cross_entropy(logits, y, reduction="none")  # (n,)
    return (per_row * keep.to(per_row.dtype)).sum() / max(len(per_row), 1)


# ---------------------------------------------------------------------------------------------
# WAAL: Wasserstein adversarial active learning (Shui et al. 2020, AISTATS; docs/waal.md,
# 'Training step' and 'Query rule').
# Equation numbers are those of C. Shui's PhD thesis, chapter 3 (the paper). Notation: L, U, B the
# numbers of labelled, unlabelled and queried samples; z = f(x) the features; g the critic with
# g(z) in [0, 1], g -> 1 meaning "looks unlabelled"; h the classifier.
# ---------------------------------------------------------------------------------------------


@validates({name: [_POSITIVE] for name in ("n_labeled", "n_unlabeled", "n_query")})
def waal_bias_coefficient(n_labeled, n_unlabeled, n_query):
    """Weight C0 of the labelled critic term in the WAAL mini-batch loss (Eq. 3.8 of [1]_).

    With gamma = U / L (imbalance ratio) and alpha = B / L (query ratio),

        C0 = (gamma - alpha) / (gamma^2 (1 + alpha)).

    It weights mean_L g against mean_U g when every mini-batch holds as many labelled samples (drawn
    with replacement) as unlabelled ones (the "redundancy trick", thesis p. 51 and App. B.5). The
    authors' released code uses L / U instead; that choice belongs to the estimator.

    Parameters
    ----------
    n_labeled : int
        Number of labelled samples L.
    n_unlabeled : int
        Number of unlabelled samples U.
    n_query : int
        Number of samples B queried next round.

    Returns
    -------
    float
        C0. It is negative when B > U.

    Raises
    ------
    ValueError
        If an argument is not an int in the range [1, inf).

    References
    ----------
    .. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled
       Method for Query and Training", AISTATS 2020; Shui's thesis, Eq. 3.8.

    Examples
    --------
    >>> round(waal_bias_coefficient(n_labeled=1000, n_unlabeled=9000, n_query=1000), 5)
    0.04938
    """
    gamma = n_unlabeled / n_labeled
    alpha = n_query / n_labeled
    return (gamma - alpha) / (gamma**2 * (1.0 + alpha))


def waal_adversarial_loss(critic_unlabeled, critic_labeled, coef):
    """Estimate WAAL's Wasserstein term, mean_U g - coef * mean_L g (Eqs. 3.7-3.8).

    The feature extractor minimises this quantity (times mu') and the critic maximises it: a high
    value means the critic tells unlabelled from labelled features apart.

    Parameters
    ----------
    critic_unlabeled : torch.Tensor of shape (n_u,)
        Critic outputs g(z) on a batch of unlabelled features.
    critic_labeled : torch.Tensor of shape (n_l,)
        Critic outputs g(z) on a batch of labelled features.
    coef : float or torch.Tensor
        Weight of the labelled term: C0 from :func:`waal_bias_coefficient` (paper) or L / U (the
        authors' code).

    Returns
    -------
    torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> waal_adversarial_loss(torch.tensor([0.8, 0.6]), torch.tensor([0.2, 0.4]), coef=0.5)
    tensor(0.5500)
    """
    return critic_unlabeled.mean() - coef * critic_labeled.mean()


def gradient_penalty(critic, z_a, z_b, generator=None, include_endpoints=False):
    """WGAN-GP gradient penalty mean((||grad_z g(z)||_2 - 1)^2) (Gulrajani et al. 2017; Alg. 2).

    The penalised points are random interpolates z = z_a + r (z_b - z_a), with one r ~ U(0, 1) per
    row drawn (first thing, as ``torch.rand(n)``) from ``generator``. WAAL adds this penalty to keep
    the critic close to 1-Lipschitz (thesis, Alg. 2; the weight is not given in the paper).

    The penalty is returned as a positive number: the *caller* adds ``+ weight * penalty`` to the
    critic's loss ``-W`` (the loss it minimises), the standard WGAN-GP sign. The authors' released
    code minimises ``-W - weight * penalty`` instead, which drives the critic's gradient norm *away*
    from 1 (docs/waal.md, 'Known bugs in the authors' code', item 1); to copy that, subtract it.

    The gradient is taken with ``create_graph=True``, so the penalty can be backpropagated into the
    critic's parameters. It also flows into ``z_a`` and ``z_b`` when they require grad: pass
    detached features to penalise the critic alone. Dropout in ``critic`` is active if it is in
    train mode (as in the authors' code).

    Parameters
    ----------
    critic : callable
        Maps features ``(m, ...)`` to scores ``(m,)``, for instance :class:`skal.nets.WAALCritic`.
    z_a, z_b : torch.Tensor of shape (n, ...)
        Two batches of features of the same shape (the authors use unlabelled and labelled).
    generator : torch.Generator, default=None
        Source of the interpolation coefficients r; ``None`` uses torch's default generator.
    include_endpoints : bool, default=False
        Also penalise ``z_a`` and ``z_b`` themselves: the mean is then taken over the 3n points
        ``cat([interpolates, z_a, z_b])``, as in the authors' code.

    Returns
    -------
    torch.Tensor
        Scalar, >= 0.

    Raises
    ------
    ValueError
        If ``z_a`` and ``z_b`` differ in shape.

    Examples
    --------
    >>> import torch
    >>> linear = torch.nn.Linear(2, 1, bias=False)
    >>> _ = linear.weight.data.copy_(torch.tensor([[3.0, 4.0]]))
    >>> critic = lambda z: linear(z).squeeze(-1)  # gradient norm ||w|| = 5 everywhere
    >>> penalty = gradient_penalty(critic, torch.zeros(4, 2), torch.ones(4, 2))
    >>> penalty  # (5 - 1)^2
    tensor(16., grad_fn=<MeanBackward0>)
    >>> penalty.backward()  # reaches the critic's weights
    >>> linear.weight.grad  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    tensor([[4.8000, 6.4000]])
    """
    if z_a.shape != z_b.shape:
        raise ValueError(
            "The 'z_a' and 'z_b' parameters of gradient_penalty must have the same shape. "
            f"Got {tuple(z_a.shape)} and {tuple(z_b.shape)} instead."
        )
    n_rows = z_a.shape[0]
    generator_device = generator.device if generator is not None else z_a.device
    r = torch.rand(n_rows, generator=generator, device=generator_device, dtype=z_a.dtype)  # (n,)
    r = r.to(z_a.device).view(n_rows, *([1] * (z_a.dim() - 1)))  # (n, 1, ..., 1)
    points = z_a + r * (z_b - z_a)  # (n, ...)
    if include_endpoints:
        points = torch.cat([points, z_a, z_b])  # (3n, ...)
    if not points.requires_grad:
        points = points.requires_grad_(True)
    scores = critic(points)  # (m,)
    (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)  # (m, ...)
    grad_norm = grad.flatten(1).norm(2, dim=1)  # (m,)
    return ((grad_norm - 1.0) ** 2).mean()


#: Old names of the uncertainty bounds (before 0.1): "paper" is "linf_l1", "code" is "l2_l1".
UNCERTAINTY_ALIASES = {"paper": "linf_l1", "code": "l2_l1"}


def _check_waal_query_args(log_proba, mixture, kind, owner):
    """Validate the arguments shared by :func:`waal_uncertainty` and :func:`waal_query_score`;
    return ``kind`` under its current name."""
    if log_proba.dim() != 2:
        raise ValueError(
            f"The 'log_proba' parameter of {owner} must be a 2-D tensor (n_samples, n_classes). "
            f"Got shape {tuple(log_proba.shape)} instead."
        )
    if not 0.0 <= mixture <= 1.0:
        raise ValueError(
            f"The 'mixture' parameter of {owner} must be {Float(0, 1)}. Got {mixture!r} instead."
        )
    if kind in UNCERTAINTY_ALIASES:
        warnings.warn(
            f"kind={kind!r} of {owner} is deprecated: use kind={UNCERTAINTY_ALIASES[kind]!r} "
            "(the same bound) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        kind = UNCERTAINTY_ALIASES[kind]
    if kind not in ("linf_l1", "l2_l1"):
        raise ValueError(
            f"The 'kind' parameter of {owner} must be 'linf_l1' or 'l2_l1'. Got {kind!r} instead."
        )
    return kind


def waal_uncertainty(log_proba, mixture=0.5, kind="linf_l1"):
    """Upper bound on the unknown loss -log h(x, y?) of an unlabelled sample (Eqs. 3.10-3.11).

    ``kind="linf_l1"`` (the paper): the convex combination of the single-worst bound (Eq. 3.10)
    and the l1 bound (Eq. 3.11),

        mixture * max_y (-log p_y) + (1 - mixture) * sum_y (-log p_y).

    ``kind="l2_l1"`` (the authors' released code), which mixes the l2 and l1 norms instead,

        mixture * ||log p||_2 + (1 - mixture) * ||log p||_1.

    Both are smallest at the uniform prediction (for K classes: log K and K log K for the max and l1
    parts, sqrt(K) log K for the l2 part) and grow as the prediction gets confident.

    Parameters
    ----------
    log_proba : torch.Tensor of shape (n_samples, n_classes)
        Log-probabilities, e.g. ``log_softmax(logits, dim=1)`` (finite, unlike ``log(softmax)``).
    mixture : float, default=0.5
        Weight in [0, 1] of the first part (the paper's "mixture coefficient").
    kind : {"linf_l1", "l2_l1"}, default="linf_l1"
        Which pair of norms to mix. The old names ``"paper"`` and ``"code"`` still work, with a
        ``DeprecationWarning``.

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        The bound of each sample (smallest for a uniform prediction).

    Raises
    ------
    ValueError
        If ``log_proba`` is not 2-D, ``mixture`` is outside [0, 1] or ``kind`` is unknown.

    Examples
    --------
    >>> import math, torch
    >>> uniform = torch.full((1, 4), math.log(0.25))
    >>> waal_uncertainty(uniform)  # 0.5 * log 4 + 0.5 * 4 log 4
    tensor([3.4657])
    """
    kind = _check_waal_query_args(log_proba, mixture, kind, "waal_uncertainty")
    neg_log_proba = -log_proba  # (n, K), >= 0
    if kind == "linf_l1":
        first = neg_log_proba.max(dim=1).values  # (n,) single-worst, Eq. 3.10
    else:
        first = neg_log_proba.norm(2, dim=1)  # (n,) l2
    l1 = neg_log_proba.sum(dim=1)  # (n,) Eq. 3.11
    return mixture * first + (1.0 - mixture) * l1


def waal_query_score(log_proba, critic_score, selection=5.0, mixture=0.5, kind="linf_l1"):
    """WAAL query score uncertainty - selection * g(x); the *smallest* scores are queried (Eq. 3.9).

    The query step minimises the loss the batch would add, the bound of :func:`waal_uncertainty`,
    minus its diversity g(x) (a high critic score means the sample looks unlike the labelled set).
    The objective is additive, so taking the B samples with the smallest scores is exact (thesis
    §3.3.4, Alg. 2 line 9).

    Parameters
    ----------
    log_proba : torch.Tensor of shape (n_samples, n_classes)
        Log-probabilities of the classifier on the pool.
    critic_score : torch.Tensor of shape (n_samples,)
        Critic outputs g(z) on the same samples.
    selection : float, default=5.0
        Weight of the diversity term (the paper's "selection coefficient": 5 for Fashion-MNIST and
        SVHN, 10 for CIFAR-10; the authors' code uses 10 everywhere).
    mixture : float, default=0.5
        See :func:`waal_uncertainty`.
    kind : {"linf_l1", "l2_l1"}, default="linf_l1"
        See :func:`waal_uncertainty`.

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        Lower is better: query ``score.argsort()[:n_instances]``.

    Raises
    ------
    ValueError
        As :func:`waal_uncertainty`, or if ``critic_score`` is not of shape (n_samples,).

    Examples
    --------
    >>> import math, torch
    >>> log_proba = torch.full((2, 2), math.log(0.5))
    >>> waal_query_score(log_proba, torch.tensor([0.1, 0.9]), selection=1.0).argsort()
    tensor([1, 0])
    """
    kind = _check_waal_query_args(log_proba, mixture, kind, "waal_query_score")
    if critic_score.shape != log_proba.shape[:1]:
        raise ValueError(
            "The 'critic_score' parameter of waal_query_score must have shape (n_samples,) = "
            f"({log_proba.shape[0]},). Got {tuple(critic_score.shape)} instead."
        )
    return waal_uncertainty(log_proba, mixture, kind) - selection * critic_score
