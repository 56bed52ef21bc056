"""BGADL's networks and optimizers: the classifier C and the VAE-ACGAN's E, G and D.

:class:`BGADLNetworksMixin` overrides skorch's initialisation hooks for
:class:`skal.estimators.bgadl.BGADLMixin` (skorch's "Initialization and custom modules" pattern): ``module_``
is the classifier (built by the host estimator), ``encoder_``, ``generator_`` and
``discriminator_`` the VAE-ACGAN (:mod:`skal.nets.vae_acgan`), initialised from a
``torch.Generator`` of their own so that the classifier's random stream is left alone; each
network gets its own optimizer. With
``gan_warm_start`` the VAE-ACGAN and its optimizers are kept from the previous fit when the data
keep their shape and classes.
"""

from typing import Any

import torch

from ...nets.vae_acgan import Discriminator, Encoder, Generator, init_normal_
from ...utils.validation import accepts

__all__ = ["GAN_NETS", "BGADLNetworksMixin"]

#: The VAE-ACGAN's networks, as the names of their ``<name>_`` modules and ``<name>_optimizer_``s.
GAN_NETS = ("encoder", "generator", "discriminator")


class BGADLNetworksMixin:
    """skorch's ``initialize_module`` / ``initialize_optimizer`` for BGADL's four networks.

    The host class provides the BGADL parameters (``generative``, ``joint``, ``gan_warm_start``,
    ``latent_dim``, ``gan_width``, ``gan_hidden``, ``gan_lr``, ``gan_betas``, ``gan_optimizer``),
    ``input_shape_``, ``classes_`` and ``_gan_seed_now()``, the seed of the VAE-ACGAN's stream.

    Attributes
    ----------
    gan_signature_ : tuple
        ``(input shape, n_classes, latent_dim, gan_width, gan_hidden)`` of the VAE-ACGAN built
        last; ``gan_warm_start`` keeps the networks only while it is unchanged.
    """

    def _gan_signature(self):
        return (tuple(self.input_shape_), len(self.classes_), int(self.latent_dim),
                int(self.gan_width), int(self.gan_hidden))

    def initialize_module(self) -> "BGADLNetworksMixin":
        """Build the classifier ``module_`` and, in joint mode, the VAE-ACGAN networks.

        ``encoder_``, ``generator_`` and ``discriminator_`` are kept from the previous fit with
        ``gan_warm_start``.

        Returns
        -------
        self : BGADLMixin
            This estimator, with its modules set.
        """
        super().initialize_module()
        self._gan_kept = False
        if not (self.generative and self.joint):
            return self
        signature = self._gan_signature()
        if self.gan_warm_start and getattr(self, "gan_signature_", None) == signature and all(
                hasattr(self, f"{net}_") for net in GAN_NETS):
            self._gan_kept = True
            return self
        shape, n_classes = signature[0], signature[1]
        width, hidden = int(self.gan_width), int(self.gan_hidden)
        init = torch.Generator().manual_seed(self._gan_seed_now())
        with torch.random.fork_rng(devices=[]):  # torch's default init must not use up the
            # classifier's random stream; init_normal_ then draws every weight from ``init``
            encoder = Encoder(shape, int(self.latent_dim), width=width, hidden=hidden)
            generator = Generator(shape, n_classes, int(self.latent_dim), width=width,
                                  hidden=hidden)
            discriminator = Discriminator(shape, width=width, hidden=hidden)
        self.encoder_ = init_normal_(encoder, generator=init)
        self.generator_ = init_normal_(generator, generator=init)
        self.discriminator_ = init_normal_(discriminator, generator=init)
        self.gan_signature_ = signature
        return self

    def initialize_optimizer(self, triggered_directly: Any = None) -> "BGADLNetworksMixin":
        """Build ``optimizer_`` for the classifier only, and one optimizer per VAE-ACGAN net.

        skorch's default would put every module's parameters in ``optimizer_``; here
        ``encoder_optimizer_``, ``generator_optimizer_`` and ``discriminator_optimizer_`` are
        ``gan_optimizer`` instances of their own.

        Parameters
        ----------
        triggered_directly : None, default=None
            Deprecated in skorch and unused; kept for skorch's signature.

        Returns
        -------
        self : BGADLMixin
            This estimator, with its optimizers set.
        """
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kwargs)
        if not (self.generative and self.joint):
            return self
        for net in GAN_NETS:
            name = f"{net}_optimizer"
            if getattr(self, "_gan_kept", False) and hasattr(self, name + "_"):
                continue
            module = getattr(self, net + "_")
            args, kwargs = self.get_params_for_optimizer(name, module.named_parameters())
            given = self.get_params_for(name)
            if "lr" not in given:
                kwargs["lr"] = float(self.gan_lr)
            if "betas" not in given and accepts(self.gan_optimizer, "betas"):
                kwargs["betas"] = tuple(float(b) for b in self.gan_betas)
            setattr(self, name + "_", self.gan_optimizer(*args, **kwargs))
        return self
