"""Semi-supervised training on the pool: FixMatch and pseudo-labelling as skorch training steps.

A classifier trained with FixMatch (Sohn et al., NeurIPS 2020) learns from the unlabelled pool
too: each step draws ``unlabeled_ratio * B`` unlabelled images beside the B labelled ones,
predicts a *weakly* augmented view of each, keeps the predictions whose confidence is at least
``threshold`` as hard pseudo-labels, and adds ``unlabeled_weight`` times the cross-entropy of
a *strongly* augmented view against them. ``consistency="pseudo_label"`` is plain
pseudo-labelling (Lee, 2013): the same confident hard labels, learnt on the weak view itself.

It plugs into skorch the way WAAL does: :meth:`FixMatchMixin.get_iterator` pairs every
labelled batch with unlabelled rows, :meth:`FixMatchMixin.train_step` makes the update; skorch's
fit loop, callbacks, history and ``train_split`` stay. The unlabelled rows come as ``y == -1``
rows (scikit-learn's semi-supervised convention) or as ``fit(X, y, X_unlabeled=...)``, so
:class:`skal.ActiveLearner` hands the rest of the pool over by itself. MC dropout
(``sample_proba``) is unchanged, so every strategy works.

References
----------
.. [1] K. Sohn, D. Berthelot, C.-L. Li, Z. Zhang, N. Carlini, E. D. Cubuk, A. Kurakin, H. Zhang,
   C. Raffel, "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence",
   NeurIPS 2020.
.. [2] D.-H. Lee, "Pseudo-Label: The Simple and Efficient Semi-Supervised Learning Method for
   Deep Neural Networks", ICML 2013 Workshop on Challenges in Representation Learning.
"""

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from skorch.callbacks import PassthroughScoring
from skorch.utils import TeeGenerator, to_tensor
from torch.nn import functional as F

from ..data.transforms import strong_augment, weak_augment
from ..exceptions import DivergenceError
from ..utils.params import Choice, Float, Int, Satisfies
from ..utils.skorch_compat import add_default_callbacks, dataset_arrays, set_training
from ..utils.typing import ArrayLike
from ..utils.validation import validate_labels
from ._classifier import MCDropoutClassifier, ResNet18Classifier
from ._precision import as_float32, to_memory_format
from ._semi_supervised import (
    UnlabeledRowsMixin,
    marker_collision,
    split_labeled,
    unlabeled_mask,
)
from ._training import batch_bounds

__all__ = ["FixMatchClassifier", "FixMatchMCDropoutClassifier", "FixMatchMixin"]

#: the semi-supervised parameters and their defaults (FixMatch's, with mu = 1 for the CPU)
FIXMATCH_DEFAULTS = {
    "consistency": "fixmatch",
    "threshold": 0.95,
    "unlabeled_weight": 1.0,
    "unlabeled_ratio": 1,
    "weak_transform": None,
    "strong_transform": None,
    "flip": True,
    "unlabeled_marker": -1,
}


class _Batches:
    """FixMatch's mini-batches; each ``iter()`` is one epoch (a pass over the labelled rows).

    Each labelled batch of B rows comes with ``ratio * B`` unlabelled rows drawn uniformly with
    replacement, from torch's default generator (which ``fit`` seeds). Without unlabelled rows
    the batches are the labelled ones alone. A last batch of one row joins the one before it.
    """

    def __init__(self, X_l, y_l, X_u, batch_size, ratio, shuffle=True):
        self.X_l, self.y_l, self.X_u = X_l, y_l, X_u
        self.batch_size, self.ratio, self.shuffle = int(batch_size), int(ratio), shuffle

    def __len__(self):
        return len(batch_bounds(len(self.X_l), self.batch_size))

    def __iter__(self):
        n_l, n_u = len(self.X_l), len(self.X_u)
        perm = torch.randperm(n_l) if self.shuffle else torch.arange(n_l)
        for start, stop in batch_bounds(n_l, self.batch_size):
            rows = perm[start:stop]
            if n_u == 0:
                yield self.X_l[rows], self.y_l[rows]
                continue
            unl = torch.randint(n_u, (self.ratio * len(rows),))
            yield self.X_l[rows], self.y_l[rows], self.X_u[unl]


def _is_batch_transform(value):
    return callable(value)


class FixMatchMixin(UnlabeledRowsMixin):
    """Semi-supervised training (FixMatch or pseudo-labelling) for a skal classifier.

    Mixed in before a skal classifier (:class:`FixMatchClassifier` is it on
    :class:`skal.ResNet18Classifier`), it adds the parameters below to the classifier's own and
    trains on labelled and unlabelled rows together.

    Parameters
    ----------
    *args
        Positional parameters of the classifier it is mixed into.
    **kwargs
        Keyword parameters of that classifier, and the mixin's own:

        consistency : {"fixmatch", "pseudo_label"}, default="fixmatch"
            ``"fixmatch"``: pseudo-labels from the weak view, learnt on the strong view;
            ``"pseudo_label"``: learnt on the weak view itself.
        threshold : float in (0, 1], default=0.95
            An unlabelled image counts only if its weak view's top probability is at least
            this.
        unlabeled_weight : float >= 0, default=1.0
            The weight lambda_u of the unlabelled loss (0: the plain supervised classifier).
        unlabeled_ratio : int >= 1, default=1
            Unlabelled images per labelled image in a step, mu (FixMatch uses 7 on a GPU).
        weak_transform, strong_transform : callable or None, default=None
            Batch augmentations ``(B, C, H, W) tensor -> same shape``; None uses
            :func:`skal.data.transforms.weak_augment` and :func:`skal.data.transforms.strong_augment`.
            The labelled batch gets the weak one.
        flip : bool, default=True
            Whether the default augmentations mirror images left-right (False for digits).
        unlabeled_marker : default=-1
            The label of unlabelled rows in ``y`` (None: every row is labelled).

    See Also
    --------
    FixMatchClassifier : The mixin on a ResNet18.
    FixMatchMCDropoutClassifier : The mixin on any MC-dropout network.

    Notes
    -----
    One forward pass takes the labelled, weak and strong batches together, so BatchNorm sees
    them as one batch (as in the FixMatch code); the weak view's predictions are detached. The
    history records per batch ``ce_loss``, ``unlabeled_loss`` and ``mask_rate`` (the share of
    unlabelled images above the threshold), and per epoch their means.

    Examples
    --------
    >>> from skal import MCDropoutClassifier
    >>> from skal.estimators import FixMatchMixin
    >>> class FixMatchMLP(FixMatchMixin, MCDropoutClassifier):
    ...     pass
    >>> FixMatchMLP(module=None, threshold=0.9).threshold
    0.9
    """

    _flat_ok = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        semi = {name: kwargs.pop(name, default) for name, default in FIXMATCH_DEFAULTS.items()}
        super().__init__(*args, **kwargs)
        for name, value in semi.items():
            setattr(self, name, value)

    _parameter_constraints: ClassVar[dict] = {
        "consistency": [Choice("fixmatch", "pseudo_label")],
        "threshold": [Float(0, 1, closed="right")],
        "unlabeled_weight": [Float(0, None, closed="left")],
        "unlabeled_ratio": [Int(1)],
        "weak_transform": [None, Satisfies(_is_batch_transform, "a callable on image batches")],
        "strong_transform": [None, Satisfies(_is_batch_transform, "a callable on image batches")],
        "flip": ["boolean"],
        "unlabeled_marker": "no_validation",
    }

    _train_data = None

    @property
    def _default_callbacks(self):
        extra = [(name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
                 for name in ("ce_loss", "unlabeled_loss", "mask_rate")]
        return add_default_callbacks(super()._default_callbacks, extra)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_train_data", None)
        return state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, X_unlabeled: ArrayLike | None = None,
            **fit_params: Any) -> "FixMatchMixin":
        """Train from scratch (unless ``warm_start``) on labelled and unlabelled images.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W), Dataset or PIL list
            Training images, labelled and (rows marked in ``y``) unlabelled.
        y : array-like of shape (n,)
            Labels; rows equal to ``unlabeled_marker`` are unlabelled.
        X_unlabeled : array-like, memmap, torch Dataset or None, default=None
            More unlabelled images (e.g. the pool). A memmap or Dataset is read per batch.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : estimator
            This estimator, fitted.
        """
        reset = not (self.warm_start and self.initialized_)
        return self._fit(X, y, reset=reset, classes=None, partial=False, fit_params=fit_params,
                         X_unlabeled=X_unlabeled)

    def partial_fit(self, X: ArrayLike, y: ArrayLike | None = None,
                    classes: ArrayLike | None = None, X_unlabeled: ArrayLike | None = None,
                    **fit_params: Any) -> "FixMatchMixin":
        """Continue training on labelled and unlabelled images without re-initialising.

        Parameters
        ----------
        X, y : array-like
            As in :meth:`fit`.
        classes : array-like of shape (n_classes,), default=None
            All classes, needed on the first call when ``y`` does not contain every class.
        X_unlabeled : array-like, memmap, torch Dataset or None, default=None
            As in :meth:`fit`.
        **fit_params
            Passed on to skorch.

        Returns
        -------
        self : estimator
            This estimator, trained for ``max_epochs`` more epochs.
        """
        return self._fit(X, y, reset=not self.initialized_, classes=classes, partial=True,
                         fit_params=fit_params, X_unlabeled=X_unlabeled)

    def _prepare_fit_data(self, X, y, *, reset, classes, partial, X_unlabeled=None):
        """Split the input into labelled ``(X_l, y_l)`` and unlabelled ``X_u`` (the context)."""
        marker = self.unlabeled_marker
        seen = not reset or (partial and hasattr(self, "input_shape_"))
        X_l, y_l, X_u = split_labeled(
            self, X, y, X_unlabeled, marker=marker,
            classes=self.classes if reset else getattr(self, "classes_", None),
            validate_X=lambda X: self._validate_X(X, reset=not seen),
            validate_X_unlabeled=self._unlabeled_rows,
        )
        if classes is not None and not hasattr(self, "label_encoder_"):
            if np.any(unlabeled_mask(np.asarray(classes), marker)):
                raise marker_collision(marker, "is one of the classes")
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
            y_l = self._encode(X_l, y_l, reset=False)
        else:
            encoded = hasattr(self, "label_encoder_") and (not reset or partial)
            y_l = validate_labels(self, X_l, y_l, min_classes=1 if encoded else 2)
            y_l = self._encode(X_l, y_l, reset=not encoded)
        if len(X_u) == 0 and self.unlabeled_weight > 0:
            warnings.warn(
                f"{type(self).__name__} got no unlabelled data (no y == {marker!r} rows and no "
                "X_unlabeled): it is trained as a plain supervised classifier.",
                UserWarning, stacklevel=4,
            )
        return X_l, y_l, {"X_unlabeled": X_u}

    def _train(self, X, y, fit_params, X_unlabeled):
        """skorch's fit loop, with the unlabelled rows at hand for :meth:`get_iterator`."""
        self.n_unlabeled_ = int(len(X_unlabeled))
        self._train_data = (self._unlabeled_tensor(X_unlabeled),)
        try:
            return super()._train(X, y, fit_params)
        finally:
            self._train_data = None

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return paired labelled / unlabelled training batches, else the parent's loader.

        Parameters
        ----------
        dataset : torch Dataset
            The labelled data (skorch's ``Dataset``).
        training : bool, default=False
            Training batches (paired with unlabelled ones) or prediction batches.

        Returns
        -------
        iterator : iterable of batches
            ``(x_l, y_l, x_u)`` training batches while fitting with unlabelled data and
            ``unlabeled_weight > 0``, otherwise the parent's ``DataLoader``.
        """
        if not training or self._train_data is None or self.unlabeled_weight == 0:
            return super().get_iterator(dataset, training=training)
        (X_u,) = self._train_data
        if len(X_u) == 0:
            return super().get_iterator(dataset, training=training)
        X_l, y_l, _ = dataset_arrays(dataset, type(self).__name__)
        X_l, y_l = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X_l, y_l))
        params = self.get_params_for("iterator_train")
        batch_size = params.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(X_l)
        return _Batches(X_l, y_l, X_u, batch_size, self.unlabeled_ratio,
                        shuffle=bool(params.get("shuffle", True)))

    def _weak(self, x):
        if self.weak_transform is not None:
            return self._checked(self.weak_transform(x), x, "weak_transform")
        return weak_augment(x, flip=self.flip)

    def _strong(self, x):
        if self.strong_transform is not None:
            return self._checked(self.strong_transform(x), x, "strong_transform")
        return strong_augment(x, flip=self.flip)

    def _checked(self, out, x, name):
        out = torch.as_tensor(out)
        if out.shape != x.shape:
            raise ValueError(
                f"The {name!r} parameter of {type(self).__name__} changed the shape of a batch "
                f"from {tuple(x.shape)} to {tuple(out.shape)}; it must keep the shape."
            )
        return out.to(dtype=x.dtype, device=x.device)

    def _check_finite(self, value, what):
        if not torch.isfinite(value).all():
            epoch = len(self.history) if self.history_ is not None else 0
            raise DivergenceError(
                f"{type(self).__name__} training diverged: the {what} is {value.item()} (epoch "
                f"{epoch}). {self._divergence_hint()}, or check the input for extreme values."
            )

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run one FixMatch (or pseudo-labelling) step on a labelled and an unlabelled batch.

        A labelled-only batch gets the parent's step (with ``train_transform``, if any).

        Parameters
        ----------
        batch : tuple of tensors
            ``(x_l, y_l, x_u)``, or ``(x_l, y_l)`` without unlabelled data.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The step's total ``loss`` and the labelled batch's ``y_pred``, as skorch expects.

        Raises
        ------
        skal.exceptions.DivergenceError
            If the loss is not finite.
        """
        if len(batch) == 2:
            return super().train_step(batch, **fit_params)
        set_training(self, True)
        device = self._compute_device()
        X_l, y_l, X_u = (to_tensor(b, device) for b in batch)
        n_l, n_u = len(X_l), len(X_u)
        weak_u = self._weak(X_u)
        views = [self._weak(X_l), weak_u]
        if self.consistency == "fixmatch":
            views.append(self._strong(X_u))
        X_all = to_memory_format(torch.cat(views), self.memory_format)  # (n_l + 2 n_u, C, H, W)
        self.optimizer_.zero_grad()
        with self._autocast():
            logits = as_float32(self.infer(X_all, **fit_params))
        if isinstance(logits, tuple):
            logits = logits[0]
        logits_l, logits_w = logits[:n_l], logits[n_l:n_l + n_u]  # (n_l, K), (n_u, K)
        logits_s = logits[n_l + n_u:] if self.consistency == "fixmatch" else logits_w
        ce = self.get_loss(logits_l, y_l, X=X_l, training=True)
        with torch.no_grad():
            confidence, pseudo = torch.softmax(logits_w.detach(), dim=1).max(dim=1)  # (n_u,)
            mask = (confidence >= self.threshold).float()  # (n_u,)
        unl = (F.cross_entropy(logits_s, pseudo, reduction="none") * mask).mean()
        loss = ce + self.unlabeled_weight * unl
        self._check_finite(loss, "loss (cross-entropy + unlabeled_weight * unlabelled loss)")
        scaler = self._grad_scaler()
        scaler.scale(loss).backward()
        self.notify("on_grad_computed", named_parameters=TeeGenerator(
            self.module_.named_parameters()), batch=batch, training=True)
        scaler.step(self.optimizer_)
        scaler.update()
        record = self.history.record_batch
        record("ce_loss", ce.item())
        record("unlabeled_loss", unl.item())
        record("mask_rate", mask.mean().item())
        return {"loss": loss.detach(), "y_pred": logits_l.detach()}


class FixMatchClassifier(FixMatchMixin, ResNet18Classifier):
    """ResNet18 with MC dropout, trained with FixMatch on the labelled rows and the pool.

    A :class:`skal.ResNet18Classifier` (same parameters, ``predict``, ``predict_proba``,
    ``sample_proba`` and ``embed``) whose ``fit`` also learns from unlabelled images (see
    :class:`FixMatchMixin` for the parameters and :mod:`skal.estimators` for the method).

    Parameters
    ----------
    *args
        ``preact``, ``dropout`` and ``width``, as in :class:`skal.ResNet18Classifier`.
    **kwargs
        The other :class:`skal.ResNet18Classifier` parameters, the semi-supervised parameters
        of :class:`FixMatchMixin` (``consistency``, ``threshold``, ``unlabeled_weight``,
        ``unlabeled_ratio``, ``weak_transform``, ``strong_transform``, ``flip``,
        ``unlabeled_marker``) and any skorch parameter.

    See Also
    --------
    FixMatchMCDropoutClassifier : The same for any MC-dropout network.
    skal.WAALClassifier : Another classifier that trains on the pool (adversarially).

    References
    ----------
    .. [1] K. Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and
       Confidence", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skal import FixMatchClassifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> y_semi = np.where(np.arange(200) < 50, y[:200], -1)  # 50 labelled, 150 unlabelled
    >>> clf = FixMatchClassifier(width=4, max_epochs=1, flip=False, threshold=0.5,
    ...                          random_state=0).fit(X[:200], y_semi)
    >>> clf.predict(X[:3]).shape, clf.n_unlabeled_
    ((3,), 150)
    """


class FixMatchMCDropoutClassifier(FixMatchMixin, MCDropoutClassifier):
    """Any MC-dropout image network (``module``), trained with FixMatch on the pool too.

    :class:`skal.MCDropoutClassifier` with the semi-supervised training of
    :class:`FixMatchMixin`.

    Parameters
    ----------
    *args
        ``module``, the network: a torch module class or instance taking images
        ``(n, C, H, W)`` and returning logits.
    **kwargs
        :class:`skal.MCDropoutClassifier` / skorch parameters and those of
        :class:`FixMatchMixin`.

    See Also
    --------
    FixMatchClassifier : The same with skal's ResNet18.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from skal import FixMatchMCDropoutClassifier
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5),
    ...                     nn.Linear(32, 10))
    >>> clf = FixMatchMCDropoutClassifier(net, max_epochs=2, flip=False, random_state=0)
    >>> clf.fit(X[:50], y[:50], X_unlabeled=X[50:300]).sample_proba(X[:4], n_samples=3).shape
    (3, 4, 10)
    """
