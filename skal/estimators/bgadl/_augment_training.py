"""Training a :class:`skal.GenerativeAugmenter`: the skorch net that holds E, G, D and C, its
fit, and divergence messages worded in the augmenter's parameters."""

import torch
from sklearn.preprocessing import LabelEncoder

from ...exceptions import DivergenceError
from ...nets.vae_acgan import AuxiliaryClassifier
from ...utils.skorch_compat import set_training
from ...utils.validation import validate_labels
from ._augment_params import check_augmenter_params, unit_images
from ._classifier import (
    PAPER_GEN_WEIGHT,
    BGADLMCDropoutClassifier,
    BGADLMixin,
    bgadl_counterpart,
)

__all__ = ["fit_augmenter", "make_net"]

_HISTORY_KEYS = ("epoch", "loss_E", "loss_G", "loss_D", "loss_C", "dur")
_LOSS_LABELS = {
    "loss_E": "encoder loss L_E",
    "loss_G": "generator loss L_G",
    "loss_D": "discriminator loss L_D",
    "loss_C": "auxiliary classifier loss L_C",
}


def make_net(augmenter, seed):
    """The skorch net that trains E, G, D and C (the BGADL counterpart of ``classifier``)."""
    aug = augmenter
    params = dict(
        latent_dim=aug.latent_dim, gan_lr=float(aug.lr),
        gan_betas=tuple(float(b) for b in aug.betas), rec_weight=aug.rec_weight,
        rec_reduction=aug.rec_reduction, kl_weight=aug.kl_weight,
        kl_reduction=aug.kl_reduction, gen_batchnorm=aug.gen_batchnorm,
        max_epochs=aug.max_epochs,
        batch_size=aug.batch_size, device=aug.device, random_state=seed,
        generative=True, joint=True,
    )
    if not isinstance(aug.classifier, BGADLMixin):
        # the ACGAN's auxiliary classifier learns from generated images too (the authors'
        # scheme); a BGADL classifier given as classifier= keeps its own gen_weight
        params["gen_weight"] = PAPER_GEN_WEIGHT
    if aug.classifier is None:
        return BGADLMCDropoutClassifier(
            AuxiliaryClassifier, optimizer=torch.optim.Adam,
            optimizer__betas=params["gan_betas"], lr=params["gan_lr"],
            image_shape=aug.image_shape, verbose=aug.verbose, **params,
        )
    net = bgadl_counterpart(aug.classifier).set_params(**params)
    if aug.image_shape is not None and getattr(net, "image_shape", None) is None:
        net.set_params(image_shape=aug.image_shape)
    return net


def fit_augmenter(augmenter, X, y, seed):
    """Fit ``augmenter`` on ``(X, y)`` with ``seed``; returns the validated ``(X, y)``.

    Sets ``net_``, ``label_encoder_``, ``history_`` (and ``classifier_`` in joint mode) only
    when training succeeds: a failed refit leaves none of the previous fit behind.
    """
    aug = augmenter
    for attr in ("classifier_", "net_", "history_", "label_encoder_"):
        vars(aug).pop(attr, None)
    check_augmenter_params(aug)
    X = unit_images(aug, X, reset=True)
    y = validate_labels(aug, X, y, min_classes=2)
    net = make_net(aug, seed)
    try:
        net.fit(X, y)
    except DivergenceError as exc:
        raise _divergence(aug, net, exc) from exc
    set_training(net, False)  # C, E, G and D in eval mode (as fit leaves them)
    aug.label_encoder_ = LabelEncoder().fit(y)
    aug.net_ = net
    aug.history_ = [{k: row[k] for k in _HISTORY_KEYS if k in row} for row in net.history_]
    if aug.classifier is not None:
        aug.classifier_ = net
    return X, y


def _lower_lr_hint(augmenter, name):
    """Which learning rate to lower for a diverging loss (joint mode: C is the classifier's)."""
    if name == "loss_C" and augmenter.classifier is not None:
        clf = type(augmenter.classifier).__name__
        lr = augmenter.classifier.lr
        return (f"The auxiliary classifier is the {clf} given as classifier=, trained with "
                f"its own optimizer: lower its lr (now {lr!r}, e.g. {clf}(lr={lr / 10:g})).")
    return (f"GAN training is unstable at lr={augmenter.lr!r}; try a lower learning rate "
            f"(e.g. lr={augmenter.lr / 10:g}) or a smaller kl_weight.")


def _divergence(augmenter, net, exc):
    """The net's DivergenceError, worded for the augmenter and its parameters."""
    loss = getattr(exc, "loss_name", None)
    if loss is None:  # skal's DivergenceCheck (C's batch loss, any module's weights)
        return DivergenceError(str(exc).replace(
            f"{type(net).__name__} training diverged", "GenerativeAugmenter training diverged",
            1).replace("gan_lr", "lr (GenerativeAugmenter)"))
    return DivergenceError(
        f"GenerativeAugmenter training diverged: the {_LOSS_LABELS[loss]} {exc.detail}. "
        + _lower_lr_hint(augmenter, loss)
    )
