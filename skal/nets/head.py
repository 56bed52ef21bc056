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
        d, the embedding's dimension.
    n_classes : int
        Output logits.
    hidden : int, default=128
        Width of the hidden layer; 0 gives a linear head (dropout on the normalised features).
    dropout : float, default=0.5
        Dropout probability before the last Linear layer (the MC-dropout layer).
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
        """``(n, d) -> (n, hidden)`` (or ``(n, d)`` normalised for a linear head)."""
        return self.trunk(x)

    def head(self, z):
        """Features to class logits ``(n, n_classes)`` (dropout, then linear)."""
        return self.linear(self.dropout(z))

    def forward(self, x):
        return self.head(self.features(x))
