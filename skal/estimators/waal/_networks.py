"""WAAL's three networks and their two optimizers, built from the data at ``fit``.

:class:`WAALNetworksMixin` overrides skorch's initialisation hooks for
:class:`skal.WAALClassifier` (skorch's "Initialization and custom modules" pattern): ``module_``
is the feature extractor ``f`` with the classifier head ``h`` (:class:`skal.nets.waal.WAALNet`),
``critic_`` the critic ``g`` on the same features, and ``optimizer_`` / ``critic_optimizer_`` keep
their parameters apart. The sizes come from the fitted input shape and classes; the feature
extractor is checked on one sample before training.
"""

from typing import Any

import torch

from ...nets.waal import (
    WAALCritic,
    WAALHead,
    WAALNet,
    infer_out_features,
    make_features,
)
from ...utils.modes import EvalMode
from ...utils.validation import accepts

__all__ = ["WAALNetworksMixin"]


class WAALNetworksMixin:
    """skorch's ``initialize_module`` / ``initialize_optimizer`` for WAAL's ``f``, ``h`` and ``g``.

    The host class provides the ``features``, ``hidden``, ``dropout``, ``momentum`` and
    ``optimizer`` parameters, ``critic__*`` and ``critic_optimizer__*`` parameters
    (``critic_`` is a skorch virtual module), ``input_shape_`` and ``classes_``.
    """

    def initialize_module(self) -> "WAALNetworksMixin":
        """Build ``module_`` (feature extractor + head) and ``critic_`` from the fitted data.

        Returns
        -------
        self : WAALClassifier
            This estimator, with ``module_`` and ``critic_`` set.
        """
        if self.get_params_for("module"):
            raise ValueError(
                "WAALClassifier builds its module itself: use features=, hidden= and dropout= "
                "(and critic__* for the critic) instead of module__* parameters."
            )
        shape = getattr(self, "input_shape_", None)
        if shape is None:
            raise AttributeError(
                "WAALClassifier sizes its networks from the data: call fit(X, y) instead of "
                "initialize()."
            )
        features = make_features(self.features, tuple(shape), dropout=self.dropout)
        try:
            n_features = infer_out_features(features, tuple(shape))
        except RuntimeError as exc:  # the probe on one zero image of the input's shape failed
            raise ValueError(
                f"The 'features' module of {type(self).__name__} ({type(features).__name__}) "
                f"cannot take the input: a forward pass on one sample of shape "
                f"{(1,) + tuple(shape)} failed with: {exc}"
            ) from None
        head = WAALHead(n_features, len(self.classes_), hidden=self.hidden, dropout=self.dropout)
        self.module_ = WAALNet(features, head)
        critic_kwargs = {"hidden": self.hidden, "dropout": self.dropout}
        critic_kwargs.update(self.get_params_for("critic"))
        self.critic_ = WAALCritic(n_features, **critic_kwargs)
        return self

    def _check_module_io(self, X):
        """One forward pass of the feature extractor on one sample: it must take the input and
        return flat features of the size the head was built for (torch's errors otherwise come
        from deep inside the first training step)."""
        features = self.module_.features
        name, features_name = type(self).__name__, type(features).__name__
        x = torch.as_tensor(X[:1], device=self._compute_device())  # (1,) + input_shape_
        n_features = self.module_.head.in_features
        try:
            with EvalMode(features), torch.no_grad(), torch.random.fork_rng(devices=[]):
                z = features(x)
        except RuntimeError as exc:
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) cannot take the input: a "
                f"forward pass on one sample of shape {tuple(x.shape)} failed with: {exc}"
            ) from None
        if not isinstance(z, torch.Tensor) or tuple(z.shape) != (1, n_features):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(
                f"The 'features' module of {name} ({features_name}) returns {shape} for one "
                f"sample of shape {tuple(x.shape)}; expected flat features of shape "
                f"(1, {n_features}) ({n_features} from its out_features or a probe). End it with "
                "nn.Flatten(), or set out_features to the feature size."
            )

    def _optimizer_kwargs(self, kwargs):
        if accepts(self.optimizer, "momentum") and "momentum" not in kwargs:
            kwargs["momentum"] = self.momentum
        return kwargs

    def initialize_optimizer(self, triggered_directly: Any = None) -> "WAALNetworksMixin":
        """Build one optimizer for feature extractor + head and another for the critic.

        ``optimizer_`` and ``critic_optimizer_``: skorch's default would put every parameter,
        the critic's too, in one optimizer.

        Parameters
        ----------
        triggered_directly : None, default=None
            Deprecated in skorch and unused; kept for skorch's signature.

        Returns
        -------
        self : WAALClassifier
            This estimator, with both optimizers set.
        """
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        args, kwargs = self.get_params_for_optimizer(
            "critic_optimizer", self.critic_.named_parameters()
        )
        self.critic_optimizer_ = self.optimizer(*args, **self._optimizer_kwargs(kwargs))
        return self
