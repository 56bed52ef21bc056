"""WAAL's training on labelled and unlabelled data, as skorch hooks of :class:`skal.WAALClassifier`.

* :meth:`~WAALTrainingMixin._prepare_fit_data` splits ``fit``'s input into labelled rows and
  unlabelled ones (``skal.estimators._semi_supervised``) and sets the adversarial weights (Eq. 3.8);
* :meth:`~WAALTrainingMixin.get_iterator` replaces skorch's loader by :class:`PairedBatches`
  (S labelled and S unlabelled samples per step), so skorch's fit loop, callbacks and history stay;
* :meth:`~WAALTrainingMixin.train_step` makes Alg. 2's two updates (feature extractor + head,
  then the critic on the detached features), each on its own optimizer.

References
----------
.. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled Method
   for Query and Training", AISTATS 2020, arXiv:1911.09162 (thesis chapter 3, Alg. 2).
"""

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from skorch.utils import TeeGenerator, to_tensor

from ...exceptions import DivergenceError
from ...losses import gradient_penalty, waal_adversarial_loss, waal_bias_coefficient
from ...utils.skorch_compat import dataset_arrays, set_training
from ...utils.validation import validate_labels
from .._precision import as_float32, to_memory_format
from .._semi_supervised import (
    UnlabeledRowsMixin,
    marker_collision,
    split_labeled,
    unlabeled_mask,
)
from .._training import batch_bounds

__all__ = ["COEF_ALIASES", "PairedBatches", "WAALTrainingMixin"]

COEF_ALIASES = {"paper": "bias_bound", "code": "ratio"}  # ``coef``'s names before 0.1


class PairedBatches:
    """WAAL's mini-batches; each ``iter()`` is one epoch (skorch's fit loop iterates it per epoch).

    With unlabelled data and ``epoch_over="unlabeled"`` (paper and code) an epoch is one shuffled
    pass over the unlabelled set in batches of S, each paired with S labelled samples ("redundancy
    trick"): drawn uniformly *with replacement* (``sampling="replacement"``, the paper) or cycled as
    ``perm % L`` over the same shuffled range (``sampling="cyclic"``, the authors' loader
    ``dataset_WA.py``). If the labelled set is the larger one, the epoch runs over it instead and
    the unlabelled samples are cycled (as in the code, whose loader has length ``max(L, U)``).
    With ``epoch_over="labeled"`` an epoch is one shuffled pass over the labelled set (as for a
    labelled-only classifier, so both take the same number of steps), each batch paired with S
    unlabelled samples drawn uniformly with replacement. Without unlabelled data an epoch is one
    shuffled pass over the labelled set. ``shuffle=False`` (``iterator_train__shuffle=False``)
    makes the pass go in row order; the with-replacement draws stay random (they are the
    algorithm's). A last batch of one row joins the batch before it (see
    :func:`skal.estimators._training.batch_bounds`): BatchNorm cannot train on one sample. Randomness comes
    from torch's default generator, which ``fit`` seeds.

    Data-parallel (``rank``, ``world_size`` > 1, set by
    :class:`skal.estimators.AcceleratedWAALClassifier`): every process draws the same global
    batches of ``world_size * batch_size`` rows (same seed) and takes every ``world_size``-th row
    from ``rank`` on, so each process steps on ``batch_size`` rows of its own, as Accelerate's
    sharded loaders do (a last global batch too small to give every process 2 rows joins the one
    before). ``X_u`` may be a lazy pool (rows read per batch).
    """

    rank, world_size = 0, 1

    def __init__(self, X_l, y_l, X_u, batch_size, sampling, epoch_over="unlabeled", shuffle=True):
        self.X_l, self.y_l, self.X_u = X_l, y_l, X_u
        self.batch_size = int(batch_size)
        self.sampling = sampling
        self.epoch_over = epoch_over
        self.shuffle = shuffle

    def _n_rows(self):
        n_l, n_u = len(self.X_l), len(self.X_u)
        return n_l if n_u == 0 or self.epoch_over == "labeled" else max(n_l, n_u)

    def __len__(self):
        return len(self._bounds(self._n_rows()))

    def _bounds(self, n):
        """Global batches: ``batch_bounds`` over ``world_size * batch_size`` rows."""
        bounds = batch_bounds(n, self.batch_size * self.world_size)
        if self.world_size > 1 and len(bounds) > 1 and (
                bounds[-1][1] - bounds[-1][0] < 2 * self.world_size):
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def __iter__(self):
        n_l, n_u = len(self.X_l), len(self.X_u)
        n = self._n_rows()
        perm = torch.randperm(n) if self.shuffle else torch.arange(n)

        def mine(idx):  # this process's rows of a global batch
            return idx[self.rank::self.world_size]

        for start, stop in self._bounds(n):
            rows = perm[start:stop]
            if n_u == 0:
                yield self.X_l[mine(rows)], self.y_l[mine(rows)]
                continue
            if self.epoch_over == "labeled":
                unl = torch.randint(n_u, (len(rows),))
                yield self.X_l[mine(rows)], self.y_l[mine(rows)], self.X_u[mine(unl)]
                continue
            if self.sampling == "cyclic":
                lab = rows % n_l
            else:
                lab = torch.randint(n_l, (len(rows),))
            yield self.X_l[mine(lab)], self.y_l[mine(lab)], self.X_u[mine(rows % n_u)]


class WAALTrainingMixin(UnlabeledRowsMixin):
    """Training hooks of :class:`skal.WAALClassifier` (see the module docstring)."""

    def _prepare_fit_data(self, X, y, *, reset, classes, partial, X_unlabeled=None):
        """Split the input into labelled ``(X_l, y_l)`` and unlabelled ``X_u`` (the context)."""
        marker = self.unlabeled_marker
        X_l, y_l, X_u = split_labeled(
            self, X, y, X_unlabeled, marker=marker,
            classes=self.classes if reset else getattr(self, "classes_", None),
            validate_X=lambda X: self._validate_X(X, reset=reset),
            validate_X_unlabeled=self._unlabeled_rows,
        )
        if reset and classes is not None:
            if np.any(unlabeled_mask(np.asarray(classes), marker)):
                raise marker_collision(marker, "is one of the classes")
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
            y_l = self._encode(X_l, y_l, reset=False)
        else:
            y_l = validate_labels(self, X_l, y_l, min_classes=2 if reset else 1)
            y_l = self._encode(X_l, y_l, reset=reset)
        if len(X_u) == 0:
            warnings.warn(
                f"{type(self).__name__} got no unlabelled data (no y == {marker!r} rows and no "
                "X_unlabeled): it is trained as a plain classifier, without the adversarial "
                "term, and its critic stays untrained.",
                UserWarning,
                stacklevel=4,
            )
        return X_l, y_l, {"X_unlabeled": X_u}

    def _set_adversarial_weights(self, n_labeled, n_unlabeled):
        self.n_labeled_, self.n_unlabeled_ = int(n_labeled), int(n_unlabeled)
        if n_unlabeled == 0:
            self.coef_, self.adv_weight_ = 0.0, 0.0
            return
        share = n_unlabeled / (n_labeled + n_unlabeled)  # gamma / (1 + gamma)
        coef = COEF_ALIASES.get(self.coef, self.coef) if isinstance(self.coef, str) else self.coef
        if coef == "ratio":
            self.coef_, self.adv_weight_ = n_labeled / n_unlabeled, float(self.mu)
            return
        if coef == "bias_bound":
            n_query = min(n_labeled, n_unlabeled) if self.query_size is None else self.query_size
            n_query = min(int(n_query), n_unlabeled)
            self.coef_ = float(waal_bias_coefficient(n_labeled, n_unlabeled, n_query))
        else:
            self.coef_ = float(coef)
        self.adv_weight_ = float(self.mu) * share

    def _train(self, X, y, fit_params, X_unlabeled):
        """skorch's fit loop, with the unlabelled rows at hand for :meth:`get_iterator`."""
        self._set_adversarial_weights(len(X), len(X_unlabeled))
        self._train_data = (self._unlabeled_tensor(X_unlabeled),)
        try:
            return super()._train(X, y, fit_params)
        finally:
            self._train_data = None

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return WAAL's paired sampler for training, the parent's loader otherwise.

        skorch's DataLoader iterates the labelled data only, whereas a WAAL epoch runs over the
        unlabelled set with labelled samples drawn alongside: one iterable that yields
        ``(x_l, y_l, x_u)`` batches slots into skorch's fit loop, so callbacks, history and
        ``train_split`` keep working (the labelled rows a split holds out are used for
        validation only). Of the ``iterator_train__*`` parameters only ``batch_size`` and
        ``shuffle`` apply.

        Parameters
        ----------
        dataset : torch Dataset
            The labelled data (skorch's ``Dataset``).
        training : bool, default=False
            Training batches (paired with unlabelled ones) or prediction batches.

        Returns
        -------
        iterator : iterable of batches
            ``(x_l, y_l, x_u)`` training batches while fitting with unlabelled data, otherwise
            the parent's ``DataLoader``.
        """
        if not training or self._train_data is None:
            return super().get_iterator(dataset, training=training)
        X_l, y_l, _ = dataset_arrays(dataset, type(self).__name__)
        X_l, y_l = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X_l, y_l))
        (X_u,) = self._train_data
        params = self.get_params_for("iterator_train")
        batch_size = params.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(len(X_l), len(X_u))
        return PairedBatches(X_l, y_l, X_u, batch_size, self.labeled_sampling, self.epoch_over,
                              shuffle=bool(params.get("shuffle", True)))

    def _check_finite(self, value, what):
        if not torch.isfinite(value).all():
            epoch = len(self.history) if self.history_ is not None else 0
            summary = (f"{type(self).__name__} training diverged: the {what} is "
                       f"{value.item()} (epoch {epoch})")
            exc = DivergenceError(f"{summary}. {self._divergence_hint()}, or check the input "
                                  "for extreme values.")
            exc.summary = summary
            raise exc

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run one WAAL step (feature extractor + head, then critic) on a mini-batch.

        A labelled-only batch gets one plain cross-entropy step. Each optimizer is stepped on
        its own loss.

        Parameters
        ----------
        batch : tuple of tensors
            ``(x_l, y_l, x_u)``, or ``(x_l, y_l)`` without unlabelled data.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The classifier's ``loss`` and ``y_pred`` of the batch, as skorch expects.

        Raises
        ------
        skal.exceptions.DivergenceError
            If a loss is not finite.
        """
        set_training(self, True)
        if len(batch) == 2:  # no unlabelled data: a plain classifier step
            X_l, y_l = (to_tensor(b, self._compute_device()) for b in batch)
            X_l = self._augment(X_l)
            self.optimizer_.zero_grad()
            logits = self.infer(X_l, **fit_params)
            loss = self.get_loss(logits, y_l, X=X_l, training=True)
            self._check_finite(loss, "classification loss")
            scaler = self._grad_scaler()
            scaler.scale(loss).backward()
            self._sync_gradients(self.module_)
            self.notify("on_grad_computed", named_parameters=TeeGenerator(
                self.module_.named_parameters()), batch=batch, training=True)
            scaler.step(self.optimizer_)
            scaler.update()
            self.history.record_batch("ce_loss", loss.item())
            return {"loss": loss.detach(), "y_pred": logits.detach()}

        device = self._compute_device()
        X_l, y_l, X_u = (to_tensor(b, device) for b in batch)
        X_l, X_u = self._augment(X_l), self._augment(X_u)  # both, or the critic sees the transform
        X_l, X_u = (to_memory_format(x, self.memory_format) for x in (X_l, X_u))
        features, head, critic = self.module_.features, self.module_.head, self.critic_
        scaler = self._grad_scaler()  # loss scaling for fp16 (a pass-through otherwise)
        weight, coef = self.adv_weight_, self.coef_

        # (1) feature extractor + head: CE + mu' * W, with the critic frozen
        self.optimizer_.zero_grad()
        critic.requires_grad_(False)
        try:
            with self._autocast():  # float32 outputs, losses in float32
                z_l, z_u = features(X_l), features(X_u)  # (S, d) each, separate BN statistics
                logits = head(z_l)  # (S, K)
                g_u, g_l = critic(z_u), critic(z_l)
            z_l, z_u, logits, g_u, g_l = as_float32((z_l, z_u, logits, g_u, g_l))
            ce = self.get_loss(logits, y_l, X=X_l, training=True)
            w_gen = waal_adversarial_loss(g_u, g_l, coef)
            loss = ce + weight * w_gen
        finally:
            critic.requires_grad_(True)
        self._check_finite(loss, "classifier's loss (cross-entropy + mu' * Wasserstein term)")
        scaler.scale(loss).backward()
        self._sync_gradients(self.module_)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.module_.named_parameters()), batch=batch, training=True)
        scaler.step(self.optimizer_)

        # (2) critic: maximise mu' * W, minus the gradient penalty, on detached features (float32)
        self.critic_optimizer_.zero_grad()
        z_l, z_u = z_l.detach(), z_u.detach()
        w_critic = waal_adversarial_loss(critic(z_u), critic(z_l), coef)
        if self.gp_weight != 0:
            gp = gradient_penalty(critic, z_u, z_l, include_endpoints=self.gp_endpoints)
        else:
            gp = torch.zeros((), device=z_u.device)
        critic_loss = weight * (self.gp_weight * gp - w_critic)
        self._check_finite(critic_loss, "critic's loss (Wasserstein estimate + gradient penalty)")
        scaler.scale(critic_loss).backward()
        self._sync_gradients(self.critic_)
        scaler.step(self.critic_optimizer_)
        scaler.update()

        record = self.history.record_batch
        record("ce_loss", ce.item())
        record("critic_loss", critic_loss.item())
        record("wasserstein", w_critic.item())
        record("gradient_penalty", gp.item())
        return {"loss": loss.detach(), "y_pred": logits.detach()}

    def _sync_gradients(self, module):
        """Called after each backward pass; data-parallel subclasses average the gradients."""
