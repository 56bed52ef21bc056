"""EmbeddingHeadClassifier: a small MC-dropout classifier on frozen embeddings (seconds a round).

Once a :class:`skal.ContrastiveEncoder` has turned the pool into rows of ``d`` features, the
classifier the active-learning loop retrains every round can be tiny: an MLP on those rows
(:class:`skal.nets.EmbeddingHead`). It trains in seconds at a thousand labels, its MC dropout
samples only the last layer, and it has ``sample_proba`` and ``embed`` like every skal
estimator, so every strategy works on it. Embed the pool once (``Z = encoder.transform(X)``) and
run the loop on ``Z``; or put the frozen encoder in front of it in a ``Pipeline``.
"""

from typing import Any, ClassVar

import torch

from ..nets.head import EmbeddingHead
from ..utils.params import Float, Int
from ..utils.typing import RandomStateLike
from ._classifier import MCDropoutClassifier

__all__ = ["EmbeddingHeadClassifier"]


class EmbeddingHeadClassifier(MCDropoutClassifier):
    """An MC-dropout MLP on embedding rows ``(n, d)``: the fast head of the label-saving recipe.

    :class:`skal.MCDropoutClassifier` with the network fixed to
    :class:`skal.nets.EmbeddingHead` (``LayerNorm -> Linear -> ReLU -> Dropout -> Linear``,
    built from the data's ``d`` and classes).

    Parameters
    ----------
    hidden : int, default=128
        Width of the hidden layer; 0 gives a linear head.
    dropout : float in [0, 1), default=0.5
        Dropout before the last layer (the MC-dropout layer).
    optimizer : torch optimizer class, default=torch.optim.Adam
        Its optimizer.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=100
        Epochs per fit.
    batch_size : int, default=64
        Training batch size.
    random_state : None, int, RandomState or Generator, default=None
        Seeds initialisation, shuffling and dropout.
    **kwargs
        Any other :class:`skal.MCDropoutClassifier` / skorch parameter (``optimizer__*``,
        ``callbacks``, ``device``, ...).

    See Also
    --------
    skal.ContrastiveEncoder : Makes the embeddings.
    MCDropoutClassifier : The same for any network.

    Examples
    --------
    >>> import numpy as np
    >>> from skal import EmbeddingHeadClassifier, bald
    >>> rng = np.random.default_rng(0)
    >>> Z, y = rng.normal(size=(300, 16)).astype(np.float32), rng.integers(0, 3, 300)
    >>> head = EmbeddingHeadClassifier(hidden=32, max_epochs=5, random_state=0).fit(Z[:60], y[:60])
    >>> head.sample_proba(Z[:4], n_samples=5).shape, bald(head, Z[60:], 3, random_state=0)[0].shape
    ((5, 4, 3), (3,))
    """

    _flat_ok = True
    _fixed_module = True

    def __init__(
        self,
        hidden: int = 128,
        dropout: float = 0.5,
        *,
        optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
        lr: float = 1e-3,
        max_epochs: int = 100,
        batch_size: int = 64,
        random_state: RandomStateLike = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(EmbeddingHead, optimizer=optimizer, lr=lr, max_epochs=max_epochs,
                         batch_size=batch_size, random_state=random_state, **kwargs)
        self.hidden = hidden
        self.dropout = dropout

    _parameter_constraints: ClassVar[dict] = {
        "hidden": [Int(0)],
        "dropout": [Float(0, 1, closed="left")],
    }

    def initialize_module(self) -> "EmbeddingHeadClassifier":
        """Build the head from the fitted feature count and classes.

        Returns
        -------
        self : EmbeddingHeadClassifier
            This estimator, with ``module_`` set.
        """
        self._require_data_description()
        if len(self.input_shape_) != 1:
            raise ValueError(
                f"{type(self).__name__} takes embedding rows of shape (n, d); got samples of "
                f"shape {self.input_shape_}. Embed images first (e.g. "
                "skal.ContrastiveEncoder().fit(X_pool).transform(X))."
            )
        self.module_ = EmbeddingHead(self.input_shape_[0], len(self.classes_), hidden=self.hidden,
                                     dropout=self.dropout, **self.get_params_for("module"))
        return self
