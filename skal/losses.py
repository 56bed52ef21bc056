"""The papers' losses and scores as pure tensor functions. Each function cites its equation."""

import torch
from torch.nn import functional as F


# ---------------------------------------------------------------------------------------------
# BGADL: the VAE-ACGAN losses (Tran et al. 2019, VAE-ACGAN; BGADL.md section 2).
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
    (Tran et al. 2019, VAE-ACGAN; BGADL.md section 2, "KL term").

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


def vae_reconstruction(x_rec, x):
    """Reconstruction error MSE(x_rec, x), the mean over all pixels and images.

    Tran et al. 2019, VAE-ACGAN; BGADL.md section 2 (``nn.MSELoss`` in the authors' code).

    Parameters
    ----------
    x_rec, x : torch.Tensor of shape (n, C, H, W)
        Reconstructions G(E(x), y) and the real images.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return F.mse_loss(x_rec, x)


def encoder_loss(x_rec, x, mu, log_var, kl_reduction="sum", kl_weight=1.0):
    """Encoder loss L_E = MSE(x_rec, x) + kl_weight * KL(q(z | x) || N(0, I)).

    Tran et al. 2019, VAE-ACGAN; BGADL.md section 2, "E step". Only the encoder is updated with
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


def generator_loss(d_fake_logits, c_fake_logits, y, x_rec, x, rec_weight=0.75):
    """Generator loss L_G = BCE(D(x_fake), 1) + CE(C(x_fake), y) + rec_weight * MSE(x_rec, x).

    Tran et al. 2019, VAE-ACGAN; BGADL.md section 2, "G step": fool D, make C recognise the
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

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    adversarial = _bce_with_logits_to(d_fake_logits, 1.0)
    classification = F.cross_entropy(c_fake_logits, y)
    return adversarial + classification + rec_weight * vae_reconstruction(x_rec, x)


def discriminator_loss(d_real_logits, d_fake_logits, d_rec_logits):
    """Discriminator loss L_D = BCE(D(x), 1) + BCE(D(x_fake), 0) + BCE(D(x_rec), 0).

    Tran et al. 2019, VAE-ACGAN; BGADL.md section 2, "D step": both generated samples and
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

    Tran et al. 2019, VAE-ACGAN; BGADL.md section 2, "C step": the classifier (the learner, which
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
