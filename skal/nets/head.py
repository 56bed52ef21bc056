"""A small MC-dropout head for frozen embeddings (rows of ``d`` features)."""

from torch import nn

__all__ = ["EmbeddingHead"]


class EmbeddingHead(nn.Module):
    """``LayerNorm -> [Linear -> ReLU] -> Dropout -> Linear``: a head on frozen features.

    The row-wise normalisation (no learnt scale) makes the head indifferent to the scale of the
    embedding; ``features`` holds everything before the dropout, so MC dropout computes it once
    and samples only :meth:`head`.

    Parameters
    ----------
    in_features : int
        The embedding's dimension d.
    n_classes : int
        Output logits.
    hidden : int, default=128
        Width of the hidden layer; 0 gives a linear head (dropout on the normalised features).
    dropout : float, default=0.5
        Dropout probability before the last Linear layer (the MC-dropout layer).

    See Also
    --------
    skal.EmbeddingHeadClassifier : The estimator around this head.

    Examples
    --------
    >>> import torch
    >>> EmbeddingHead(16, n_classes=3)(torch.zeros(4, 16)).shape
    torch.Size([4, 3])
    """

    def __init__(self, in_features, n_classes, hidden=128, dropout=0.5):
        super().__init__()
        layers = [nn.LayerNorm(in_features, elementwise_affine=False)]
        if hidden:
            layers += [nn.Linear(in_features, hidden), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden or in_features, n_classes)

    def features(self, x):
        """Compute the deterministic part, everything before the dropout.

        Parameters
        ----------
        x : torch.Tensor of shape (n, d)
            Embeddings.

        Returns
        -------
        torch.Tensor of shape (n, hidden)
            Hidden features (for ``hidden=0`` the normalised embeddings, ``(n, d)``).
        """
        return self.trunk(x)

    def head(self, z):
        """Map features to class logits (dropout, then linear).

        Parameters
        ----------
        z : torch.Tensor of shape (n, hidden)
            Output of :meth:`features`.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.linear(self.dropout(z))

    def forward(self, x):
        """Compute the logits, ``head(features(x))``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, d)
            Embeddings.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.head(self.features(x))
