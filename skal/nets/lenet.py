"""The LeNet of the BGADL authors' MNIST demo, with dropout before its last layer for MC dropout."""

from torch import nn

__all__ = ["BGADLLeNet"]


def _conv_side(side, kernel, padding=0):
    """Output side of a stride-1 convolution followed by a 2x2 max pool."""
    return (side + 2 * padding - kernel + 1) // 2


class BGADLLeNet(nn.Module):
    """LeNet-5 as in the BGADL authors' ``demo_mnist.py`` (``lenet``), plus MC dropout.

    Conv(C, 6, 5x5, padding 2)-ReLU-MaxPool 2 -> Conv(6, 16, 5x5)-ReLU-MaxPool 2 -> FC 120-ReLU
    -> FC 84-ReLU -> Dropout -> FC n_classes. On 28x28 images the feature map before the first
    FC layer is 16x5x5, as in the authors' net [1]_. The authors' ``lenet`` has no dropout, so their
    MC-dropout passes are all identical; the dropout before the last layer (0.5, as in the Gal et
    al. net the authors define beside it) makes BALD meaningful. ``features`` and ``head`` split
    the network there, so MC dropout reuses one feature computation.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    n_classes : int, default=10
        Number of output logits.
    image_shape : tuple (C, H, W), default=(1, 28, 28)
        Sizes the first FC layer; H and W must be at least 12.
    dropout : float, default=0.5
        Dropout probability before the last linear layer.

    See Also
    --------
    skal.nets.ResNet18 : The classifier skal's BGADL uses by default.
    skal.BGADLMCDropoutClassifier : BGADL's estimator for any network, such as this one.

    References
    ----------
    .. [1] T. Tran et al., "Bayesian Generative Active Deep Learning", ICML 2019; code
       https://github.com/toantm/BGADL (``demo_mnist.py``).

    Examples
    --------
    >>> import torch
    >>> BGADLLeNet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels=1, n_classes=10, image_shape=(1, 28, 28), dropout=0.5):
        super().__init__()
        height, width = (int(s) for s in image_shape[-2:])
        if min(height, width) < 12:
            raise ValueError(
                "The 'image_shape' parameter of BGADLLeNet must be a tuple (C, H, W) with H and W "
                f"each an int in the range [12, inf). Got {tuple(image_shape)!r} instead."
            )
        out_h = _conv_side(_conv_side(height, 5, 2), 5)
        out_w = _conv_side(_conv_side(width, 5, 2), 5)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(
            nn.Linear(16 * out_h * out_w, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(84, n_classes)

    def features(self, x):
        """Map images to the 84 features before the dropout.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, 84)
            Features.
        """
        h = self.conv(x)  # (n, 16, H', W')
        h = h.flatten(1)  # (n, 16 * H' * W')
        return self.fc(h)  # (n, 84)

    def head(self, features):
        """Map features to class logits (dropout, then linear).

        Parameters
        ----------
        features : torch.Tensor of shape (n, 84)
            Output of :meth:`features`.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.linear(self.dropout(features))

    def forward(self, x):
        """Classify images, ``head(features(x))``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.head(self.features(x))
