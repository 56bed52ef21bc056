"""BGADL's training step, as skorch hooks of the BGADL classifiers (:mod:`skal.estimators.bgadl`).

:class:`BGADLStepMixin` makes one BGADL update per mini-batch of skorch's fit loop (the authors'
scheme, see :class:`skal.estimators.bgadl.BGADLMixin`): the E step, the G step, then D and the classifier C
on real, reconstructed and generated images; it checks every loss (a NaN or an exploding epoch
mean raises :class:`skal.exceptions.DivergenceError`) and ramps the generated-term weight per
epoch (:func:`warmup_weight`).
"""

from typing import Any

import numpy as np
import torch
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_tensor
from torch.nn import functional as F

from ...data.transforms import random_crop_flip
from ...exceptions import DivergenceError
from ...losses import (
    discriminator_loss,
    encoder_loss,
    generator_loss,
    masked_cross_entropy,
)
from ...nets.vae_acgan import reparameterize
from ...utils.modes import GENERATED_BATCHNORM, EvalMode, Frozen
from ...utils.skorch_compat import set_training

__all__ = ["BGADLStepMixin", "warmup_weight"]

_LOSS_LABELS = {
    "loss_E": "encoder loss L_E",
    "loss_G": "generator loss L_G",
    "loss_D": "discriminator loss L_D",
    "loss_C": "classifier loss L_C",
}
# An epoch whose mean loss exceeds this many times max(the loss's first batch value, 1) has
# diverged (the threshold GenerativeAugmenter used before it became a sampler over this class).
_EXPLOSION_FACTOR = 100.0


def _logits(output):
    """Some skorch modules return ``(logits, ...)``; keep the logits."""
    return output[0] if isinstance(output, tuple) else output


def warmup_weight(epoch, max_epochs, gen_weight, gen_warmup):
    """The weight of the generated terms in epoch ``epoch`` (0-based) of a fit.

    ``gen_weight * min(1, epoch / (gen_warmup * max_epochs))``: 0 in the first epoch, rising
    linearly to ``gen_weight`` after ``gen_warmup * max_epochs`` epochs; ``gen_warmup=0`` gives
    ``gen_weight`` throughout.

    Examples
    --------
    >>> [warmup_weight(e, 10, 1.0, 0.5) for e in range(7)]
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """
    ramp = float(gen_warmup) * int(max_epochs)
    if ramp <= 0:
        return float(gen_weight)
    return float(gen_weight) * min(1.0, epoch / ramp)


class BGADLStepMixin:
    """The BGADL update of a mini-batch and the per-epoch checks (see the module docstring)."""

    def on_epoch_begin(
        self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any
    ) -> None:
        """Set this epoch's weight of the generated terms (``gen_warmup``) and record it.

        Parameters
        ----------
        net : BGADLMixin
            This estimator (skorch's callback protocol).
        dataset_train : torch Dataset, default=None
            The training data.
        dataset_valid : torch Dataset, default=None
            The validation data, if any.
        **kwargs
            Other arguments of skorch's ``on_epoch_begin``.
        """
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        state = self._fit_state
        if state is None:  # generative=False
            return
        weight = warmup_weight(state["epoch"], self.max_epochs, self.gen_weight, self.gen_warmup)
        state["weight"] = weight
        state["epoch"] += 1
        self.history.record("gen_weight", weight)

    def on_epoch_end(
        self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any
    ) -> None:
        """Refuse an epoch whose mean VAE-ACGAN or classifier loss exploded.

        Exploded means more than 100 times the larger of the loss's first batch value and 1
        (skal's ``DivergenceCheck`` callback checks NaN batch losses and the weights of every
        module).

        Parameters
        ----------
        net : BGADLMixin
            This estimator (skorch's callback protocol).
        dataset_train : torch Dataset, default=None
            The training data.
        dataset_valid : torch Dataset, default=None
            The validation data, if any.
        **kwargs
            Other arguments of skorch's ``on_epoch_end``.

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss exploded.
        """
        super().on_epoch_end(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        state = self._fit_state
        if state is None:
            return
        batches = self.history[-1, "batches"]
        for key, ref in state["first"].items():
            values = [b[key] for b in batches if key in b]
            if not values:
                continue
            mean = float(np.mean(values))
            limit = _EXPLOSION_FACTOR * max(ref, 1.0)
            if not mean <= limit:
                self._diverged(key, f"averaged {mean:.4g} over epoch {len(self.history)}/"
                               f"{self.max_epochs}, more than {_EXPLOSION_FACTOR:g} times "
                               f"max(its first batch value {ref:.4g}, 1)")

    def _augment_batch(self, x):
        """The ``augment`` parameter on a batch of real images (the base ``_augment`` applies
        ``train_transform`` to each image; C's real images get both, in that order)."""
        if self.augment is None:
            return x
        if self.augment == "crop_flip":
            return random_crop_flip(x)
        return self.augment(x)

    def _diverged(self, key, detail):
        """Raise DivergenceError for loss ``key``; ``loss_name`` and ``detail`` ride along so
        that a wrapper (GenerativeAugmenter) can word the error for its own parameters."""
        lr_hint = (f"try a lower learning rate (e.g. lr={self.lr / 10:g})" if key == "loss_C"
                   else f"GAN training is unstable at gan_lr={self.gan_lr!r}; try a lower "
                        f"learning rate (e.g. gan_lr={self.gan_lr / 10:g}) or a smaller "
                        "kl_weight")
        summary = f"{type(self).__name__} training diverged: the {_LOSS_LABELS[key]} {detail}"
        exc = DivergenceError(f"{summary}. {lr_hint[0].upper()}{lr_hint[1:]}.")
        exc.loss_name, exc.detail, exc.summary = key, detail, summary
        raise exc

    def _where(self):
        """``"epoch 2/5, batch 1/3"``: the place of the current training batch."""
        return (f"epoch {len(self.history)}/{self.max_epochs}, batch "
                f"{len(self.history[-1, 'batches'])}/{self._fit_state['n_batches']}")

    def _check_finite(self, losses):
        state = self._fit_state
        for key, value in losses.items():
            if value is None:
                continue
            value = float(value.detach())
            if not np.isfinite(value):
                self._diverged(key, f"is {value} at {self._where()}")
            state["first"].setdefault(key, value)

    def _onehot(self, y, dtype):
        return F.one_hot(y, len(self.classes_)).to(dtype)

    def _draw(self, X, y, n):
        """n rows drawn at random (with replacement) from the CPU tensors X, y, on the device."""
        idx = torch.randint(len(X), (n,), generator=self._fit_state["draw"])
        return X[idx].to(self.device), y[idx].to(self.device)

    def _take_gan_updates(self):
        state = self._fit_state
        state["credit"] += float(self.gan_steps)
        n = int(state["credit"] + 1e-9)
        state["credit"] -= n
        return n

    def _vae_acgan_update(self, x, y, last):
        """The E step and the G step; then L_D on images of the updated G. D is stepped here
        unless ``last`` (then with C, as in the authors' code). Returns the losses and the
        detached images and D logits for the classifier."""
        encoder, generator, discriminator = self.encoder_, self.generator_, self.discriminator_
        noise = self._fit_state["noise"]
        y_onehot = self._onehot(y, x.dtype)

        # 1. E step: reconstruct x through the VAE; only E is updated.
        with Frozen(generator):
            mu, log_var = encoder(x)
            z_rec = reparameterize(mu, log_var, generator=noise)
            loss_e = encoder_loss(generator(z_rec, y_onehot), x, mu, log_var,
                                  kl_reduction=self.kl_reduction, kl_weight=self.kl_weight)
            self._check_finite({"loss_E": loss_e})
            self.encoder_optimizer_.zero_grad(set_to_none=True)
            loss_e.backward()
        self.encoder_optimizer_.step()

        # 2. G step: fool D, be recognised by C (in eval mode), reconstruct x; only G learns.
        z_rec = z_rec.detach()
        z = torch.randn(z_rec.shape, generator=noise, device=x.device, dtype=x.dtype)
        with Frozen(discriminator, self.module_), EvalMode(self.module_):
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
            c_logits = _logits(self.module_(x_fake))
            if not bool(torch.isfinite(c_logits.detach()).all()):  # C diverged, not G
                self._diverged("loss_C", f"is not finite at {self._where()}: the classifier's "
                                         "outputs on generated images are NaN or infinite")
            loss_g = generator_loss(
                discriminator(x_fake), c_logits, y, x_rec, x,
                rec_weight=self.rec_weight, rec_reduction=self.rec_reduction,
            )
            self._check_finite({"loss_G": loss_g})
            self.generator_optimizer_.zero_grad(set_to_none=True)
            loss_g.backward()
        self.generator_optimizer_.step()

        # 3. L_D on images from the updated G, without gradients to G or E.
        with torch.no_grad():
            x_fake = generator(z, y_onehot)
            x_rec = generator(z_rec, y_onehot)
        d_fake, d_rec = discriminator(x_fake), discriminator(x_rec)
        loss_d = discriminator_loss(discriminator(x), d_fake, d_rec)
        self._check_finite({"loss_D": loss_d})
        if not last:
            self.discriminator_optimizer_.zero_grad(set_to_none=True)
            loss_d.backward()
            self.discriminator_optimizer_.step()
        generated = (x_fake, x_rec, y, d_fake.detach(), d_rec.detach())
        return loss_e, loss_g, loss_d, generated

    @torch.no_grad()
    def _generate_for_classifier(self, x, y):
        """x_fake = G(z, y) and x_rec = G(E(x), y) from the current networks (no update)."""
        noise = self._fit_state["noise"]
        y_onehot = self._onehot(y, x.dtype)
        mu, log_var = self.encoder_(x)
        z_rec = reparameterize(mu, log_var, generator=noise)
        z = torch.randn(z_rec.shape, generator=noise, device=x.device, dtype=x.dtype)
        x_fake, x_rec = self.generator_(z, y_onehot), self.generator_(z_rec, y_onehot)
        d_fake = d_rec = None
        if self.gen_filter == "discriminator":
            d_fake, d_rec = self.discriminator_(x_fake), self.discriminator_(x_rec)
        return x_fake, x_rec, y, d_fake, d_rec

    def _keep(self, logits, d_logits, y):
        """Mask of the generated images the classifier's loss keeps (None: all)."""
        if self.gen_filter is None:
            return None
        if self.gen_filter == "classifier":
            confidence = torch.softmax(logits.detach(), dim=1).gather(1, y[:, None])[:, 0]
        else:
            confidence = torch.sigmoid(d_logits.detach())
        return confidence >= float(self.gen_threshold)

    def _generated_loss(self, images, y, d_logits):
        """Sum over the generated batches of the masked CE of C, and the fraction kept."""
        loss, kept, total = 0.0, 0.0, 0
        # BatchNorm on generated batches: the running statistics of real images by default;
        # only real batches update them either way
        with GENERATED_BATCHNORM[self.gen_batchnorm](self.module_):
            for x_gen, d_gen in zip(images, d_logits):
                logits = _logits(self.module_(x_gen))
                keep = self._keep(logits, d_gen, y)
                loss = loss + masked_cross_entropy(logits, y, keep)
                kept += len(y) if keep is None else float(keep.sum())
                total += len(y)
        return loss, kept / max(total, 1)

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run one BGADL step on a mini-batch: the VAE-ACGAN updates, then the classifier's.

        Parameters
        ----------
        batch : tuple of (X, y) tensors
            One training mini-batch.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The classifier's ``loss`` (L_C) and ``y_pred`` of the batch, as skorch expects.
        """
        if not self.generative:
            return self._plain_step(batch, **fit_params)
        set_training(self, True)
        x, y = (to_tensor(b, self.device) for b in unpack_data(batch))
        state = self._fit_state
        losses = {"loss_E": None, "loss_G": None, "loss_D": None}
        generated = loss_d = None
        if self.joint:
            n_updates = self._take_gan_updates()
            for k in range(n_updates):  # extra updates on random batches first, then on (x, y)
                last = k == n_updates - 1
                xb, yb = (x, y) if last else self._draw(state["X"], state["y"], len(x))
                loss_e, loss_g, loss_d, generated = self._vae_acgan_update(xb, yb, last)
                losses.update(loss_E=loss_e, loss_G=loss_g, loss_D=loss_d)

        # the classifier: real images (augmented) + weight * generated images
        self.optimizer_.zero_grad()
        x_real = self._augment(self._augment_batch(x))  # augment, then train_transform
        y_pred = self.infer(x_real, **fit_params)
        loss_c = self.get_loss(_logits(y_pred), y, X=x_real, training=True)
        weight, kept = state["weight"], None
        if weight > 0:
            if not self.joint:
                x_gen, y_gen = self._draw(state["X_gen"], state["y_gen"], len(x))
                loss_gen, kept = self._generated_loss(
                    [x_gen], y_gen, [self._draw_d_logits(x_gen)])
            else:
                if self.rec_source == "new" or generated is None:
                    xs, ys = (self._draw(state["X_new"], state["y_new"], len(x))
                              if self.rec_source == "new" else (x, y))
                    generated = self._generate_for_classifier(xs, ys)
                x_fake, x_rec, y_gen, d_fake, d_rec = generated
                loss_gen, kept = self._generated_loss([x_fake, x_rec], y_gen, [d_fake, d_rec])
            loss_c = loss_c + weight * loss_gen
        self._check_finite({"loss_C": loss_c})
        if loss_d is not None:
            self.discriminator_optimizer_.zero_grad(set_to_none=True)
            (loss_d + loss_c).backward()  # D and C share no parameters
        else:
            loss_c.backward()
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.module_.named_parameters()), batch=batch, training=True)
        if loss_d is not None:
            self.discriminator_optimizer_.step()
        self.optimizer_.step()

        record = self.history.record_batch
        for key, value in {**losses, "loss_C": loss_c}.items():
            if value is not None:
                record(key, float(value.detach()))
        if kept is not None and self.gen_filter is not None:
            record("gen_kept", kept)
        return {"loss": loss_c.detach(), "y_pred": y_pred}

    def _draw_d_logits(self, x_gen):
        """joint=False: the separate discriminator's logits of x' (for gen_filter)."""
        if self.gen_filter != "discriminator":
            return None
        with torch.no_grad(), EvalMode(self.vae_acgan_.discriminator_):
            return self.vae_acgan_.discriminator_(x_gen)

    def _plain_step(self, batch, **fit_params):
        """generative=False: skorch's own step, on augmented images when ``augment`` is set."""
        if self.augment is not None:  # train_transform follows in the base step
            x, y = unpack_data(batch)
            batch = (self._augment_batch(to_tensor(x, self.device)), y)
        return super().train_step(batch, **fit_params)
