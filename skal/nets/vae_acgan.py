"""VAE-ACGAN networks for BGADL: encoder, generator (= VAE decoder), discriminator, classifier.

Every network is sized from the image shape ``(C, H, W)``, so the same classes serve MNIST
(1, 28, 28), CIFAR/SVHN (3, 32, 32) and tiny test images (1, 8, 8). Images live in [0, 1].

The generator and discriminator follow the infoGAN-style ACGAN used by the BGADL code
(docs/bgadl.md, 'Networks'). The encoder replaces the authors' one-scalar bottleneck with sigmoid
heads
by a real Gaussian latent: a conv stack, an FC layer and two *linear* heads for the mean and
the log-variance (docs/bgadl.md, 'Departures from the authors' code', item 1).

References
----------
Tran, T., Do, T.-T., Reid, I., Carneiro, G. "Bayesian Generative Active Deep Learning."
ICML 2019. arXiv:1904.11643.
"""

import math

import torch
from torch import nn

from ..utils.shapes import check_image_shape

__all__ = [
    "Encoder",
    "Generator",
    "Discriminator",
    "AuxiliaryClassifier",
    "init_normal_",
    "reparameterize",
]

_MIN_SIDE = 4  # two stride-2 layers must leave at least a 1x1 map


def _halve(side):
    """Output side of a Conv2d(kernel_size=4, stride=2, padding=1): floor(side / 2)."""
    return (side + 2 * 1 - 4) // 2 + 1


class Encoder(nn.Module):
    """Gaussian encoder q(z | x): image -> (mu, log_var).

    Conv(4x4, stride 2, padding 1)-BN-ReLU blocks halve the image until its smaller side is at
    most 4 (28 -> 14 -> 7 -> 3, 32 -> 16 -> 8 -> 4, 8 -> 4); channels are ``width``, 2 *
    ``width``, 4 * ``width``, ... (capped at 8 * ``width``: 64, 128, 256, ..., 512 by default).
    Then FC ``hidden``-BN-ReLU and two linear heads. The heads have no activation, so ``mu`` and
    ``log_var`` range over all reals.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images, with ``H, W >= 4``.
    latent_dim : int, default=100
        Dimension of z.
    width : int, default=64
        Channels of the first conv block.
    hidden : int, default=1024
        Units of the fully connected layer.

    See Also
    --------
    Generator : The decoder, ``G(z, y)``.
    reparameterize : Draws z from ``(mu, log_var)``.

    Notes
    -----
    The 1024-unit layer uses BatchNorm1d, so in training mode a batch needs at least two images.

    Examples
    --------
    >>> import torch
    >>> encoder = Encoder((1, 28, 28), latent_dim=8, width=8, hidden=32)
    >>> mu, log_var = encoder(torch.zeros(2, 1, 28, 28))
    >>> mu.shape, log_var.shape
    (torch.Size([2, 8]), torch.Size([2, 8]))
    """

    def __init__(self, image_shape, latent_dim=100, width=64, hidden=1024):
        super().__init__()
        channels, height, side = check_image_shape(
            image_shape, owner="Encoder", optional=False, min_side=_MIN_SIDE)
        self.image_shape = (channels, height, side)
        self.latent_dim = latent_dim

        blocks = []
        in_channels, out_channels = channels, width
        while min(height, side) > 4:
            blocks += [
                nn.Conv2d(in_channels, out_channels, 4, 2, 1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            height, side = _halve(height), _halve(side)
            in_channels, out_channels = out_channels, min(2 * out_channels, 8 * width)
        self.conv = nn.Sequential(*blocks)
        self.fc = nn.Sequential(
            nn.Linear(in_channels * height * side, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
        )
        self.mu = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x):
        """Encode images.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        mu, log_var : torch.Tensor of shape (n, latent_dim)
            Mean and log-variance of the diagonal Gaussian q(z | x).
        """
        h = self.conv(x)  # (n, C', H', W')
        h = h.flatten(1)  # (n, C' * H' * W')
        h = self.fc(h)  # (n, 1024)
        return self.mu(h), self.log_var(h)


class Generator(nn.Module):
    """Class-conditional generator p(x | z, y), also the VAE decoder.

    concat[z, one_hot(y)] -> FC 1024-BN-ReLU -> FC 128*h0*w0-BN-ReLU
    -> ConvT(128, 64, 4, 2, 1)-BN-ReLU -> ConvT(64, C, 4, 2, 1) -> Sigmoid, with ``h0 = ceil(H / 4)``
    and ``w0 = ceil(W / 4)`` (the sizes of the default ``width=64, hidden=1024``: 1024 is
    ``hidden``, 128 and 64 are ``2 * width`` and ``width``).
    The two transposed convolutions double the side twice, to ``4 * h0 >= H``; when ``H`` or ``W``
    is not a multiple of 4 the surplus (at most 3 pixels) is center-cropped away, so the output is
    always exactly ``(C, H, W)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the generated images, with ``H, W >= 4``.
    n_classes : int
        Number of classes, the length of the one-hot label.
    latent_dim : int, default=100
        Dimension of z.
    width : int, default=64
        Channels of the last hidden feature map (the first one has ``2 * width``).
    hidden : int, default=1024
        Units of the first fully connected layer.

    See Also
    --------
    Encoder : The encoder whose latent codes the generator decodes.
    Discriminator : The real/fake critic of the generated images.

    Notes
    -----
    The FC layers use BatchNorm1d, so in training mode a batch needs at least two samples.

    Examples
    --------
    >>> import torch
    >>> generator = Generator((1, 28, 28), n_classes=10, latent_dim=8, width=8, hidden=32)
    >>> generator(torch.zeros(2, 8), torch.eye(10)[:2]).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, image_shape, n_classes, latent_dim=100, width=64, hidden=1024):
        super().__init__()
        channels, height, side = check_image_shape(
            image_shape, owner="Generator", optional=False, min_side=_MIN_SIDE)
        self.image_shape = (channels, height, side)
        self.n_classes = n_classes
        self.latent_dim = latent_dim
        self.start_size = (math.ceil(height / 4), math.ceil(side / 4))
        self.start_channels = 2 * width

        start_height, start_width = self.start_size
        start = self.start_channels * start_height * start_width
        self.fc = nn.Sequential(
            nn.Linear(latent_dim + n_classes, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, start),
            nn.BatchNorm1d(start),
            nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z, y_onehot):
        """Generate images.

        Parameters
        ----------
        z : torch.Tensor of shape (n, latent_dim)
            Latent codes: N(0, I) noise, or an encoding from ``reparameterize``.
        y_onehot : torch.Tensor of shape (n, n_classes)
            One-hot labels (float).

        Returns
        -------
        torch.Tensor of shape (n, C, H, W)
            Images with values in [0, 1].
        """
        h = torch.cat([z, y_onehot.to(z.dtype)], dim=1)  # (n, latent_dim + n_classes)
        h = self.fc(h)  # (n, 2 * width * h0 * w0)
        h = h.view(-1, self.start_channels, *self.start_size)  # (n, 2 * width, h0, w0)
        x = self.deconv(h)  # (n, C, 4 * h0, 4 * w0)
        _, height, width = self.image_shape
        top = (x.shape[2] - height) // 2
        left = (x.shape[3] - width) // 2
        return x[:, :, top : top + height, left : left + width]  # (n, C, H, W)


class Discriminator(nn.Module):
    """Real/fake discriminator returning one logit per image.

    Conv(C, 64, 4, 2, 1)-LReLU(0.2) -> Conv(64, 128, 4, 2, 1)-BN-LReLU -> FC 1024-BN-LReLU -> FC 1.
    The authors end with a Sigmoid; here it is folded into the loss (binary cross-entropy with
    logits, see ``skal.losses.discriminator_loss``), which is the same function but numerically
    stable. ``torch.sigmoid(D(x))`` is the probability that ``x`` is real.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images, with ``H, W >= 4``.
    width : int, default=64
        Channels of the first conv layer (the second has ``2 * width``).
    hidden : int, default=1024
        Units of the fully connected hidden layer.

    See Also
    --------
    Generator : The network whose images it judges.
    skal.losses.discriminator_loss : Its loss.

    Notes
    -----
    The FC layer uses BatchNorm1d, so in training mode a batch needs at least two images.

    Examples
    --------
    >>> import torch
    >>> Discriminator((1, 28, 28), width=8, hidden=32)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2])
    """

    def __init__(self, image_shape, width=64, hidden=1024):
        super().__init__()
        channels, height, side = check_image_shape(
            image_shape, owner="Discriminator", optional=False, min_side=_MIN_SIDE)
        self.image_shape = (channels, height, side)

        feature_height, feature_width = _halve(_halve(height)), _halve(_halve(side))
        self.conv = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
        )
        self.fc = nn.Sequential(
            nn.Linear(2 * width * feature_height * feature_width, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        """Score images.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images, real or generated.

        Returns
        -------
        torch.Tensor of shape (n,)
            Logits of "x is real" (apply a sigmoid for probabilities).
        """
        h = self.conv(x)  # (n, 2 * width, H // 4, W // 4)
        h = h.flatten(1)  # (n, 2 * width * (H // 4) * (W // 4))
        return self.fc(h).squeeze(1)  # (n, 1) -> (n,)


class AuxiliaryClassifier(nn.Module):
    """Small conv net, the ACGAN auxiliary classifier used when no external classifier is given.

    [Conv 3x3 (padding 1)-ReLU-MaxPool 2] x 2 with 32 and 64 channels -> FC 128-ReLU -> Dropout
    -> FC n_classes. In BGADL the auxiliary classifier *is* the active learner (docs/bgadl.md,
    'The authors' code'),
    so the dropout before the last layer also serves MC-dropout BALD; ``features`` and ``head``
    split the network there, so T stochastic passes can reuse one feature computation.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images, with ``H, W >= 4``.
    n_classes : int
        Number of classes.
    dropout : float, default=0.5
        Dropout probability before the last linear layer.

    See Also
    --------
    skal.nets.ResNet18 : The classifier skal's BGADL uses as the auxiliary classifier.

    Examples
    --------
    >>> import torch
    >>> AuxiliaryClassifier((1, 28, 28), n_classes=10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, image_shape, n_classes, dropout=0.5):
        super().__init__()
        channels, height, width = check_image_shape(
            image_shape, owner="AuxiliaryClassifier", optional=False, min_side=_MIN_SIDE)
        self.image_shape = (channels, height, width)
        self.n_classes = n_classes

        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(
            nn.Linear(64 * (height // 4) * (width // 4), 128),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(128, n_classes)

    def features(self, x):
        """Map images to the 128 features before the dropout.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, 128)
            Features.
        """
        h = self.conv(x)  # (n, 64, H // 4, W // 4)
        h = h.flatten(1)  # (n, 64 * (H // 4) * (W // 4))
        return self.fc(h)  # (n, 128)

    def head(self, features):
        """Map features to class logits (dropout, then linear).

        Parameters
        ----------
        features : torch.Tensor of shape (n, 128)
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


def init_normal_(module, std=0.02, generator=None):
    """Initialise a network in place as the BGADL/ACGAN code does, and return it.

    Conv2d, ConvTranspose2d and Linear weights ~ N(0, std), their biases = 0; BatchNorm weights
    ~ N(1, std), their biases = 0 (docs/bgadl.md, 'Networks'). Other layers are left
    as they are.

    Parameters
    ----------
    module : torch.nn.Module
        The network; all its submodules are visited.
    std : float, default=0.02
        Standard deviation of the normal weights.
    generator : torch.Generator, optional
        Source of randomness, on the device of the parameters. Default: torch's global generator.

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                layer.weight.normal_(0.0, std, generator=generator)
            elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                layer.weight.normal_(1.0, std, generator=generator)
            else:
                continue
            if layer.bias is not None:
                layer.bias.zero_()
    return module


def reparameterize(mu, log_var, generator=None):
    """Draw z = mu + exp(log_var / 2) * eps with eps ~ N(0, I) (the VAE reparameterisation trick).

    Gradients flow to ``mu`` and ``log_var``.

    Parameters
    ----------
    mu, log_var : torch.Tensor of shape (n, latent_dim)
        Encoder outputs.
    generator : torch.Generator, optional
        Source of eps, on the device of ``mu``. Default: torch's global generator.

    Returns
    -------
    torch.Tensor of shape (n, latent_dim)
        The sample z, differentiable in ``mu`` and ``log_var``.
    """
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * log_var) * eps
