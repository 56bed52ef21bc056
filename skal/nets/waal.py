"""The networks of WAAL: feature extractors, classifier head, critic.

WAAL (Shui et al., 2020) splits a network into a feature extractor ``z = f(x)``, a classifier
head ``h(z)`` and a critic ``g(z) in [0, 1]`` that estimates the Wasserstein distance between
labelled and unlabelled features. The modules below follow the authors' released code
(``model.py``): a LeNet-style extractor for 28x28 grey images (320-d features), a VGG16-BN
extractor for 32x32 colour images (512-d), and two-layer MLP heads ``in-50-relu-dropout-out``.

Every feature extractor exposes ``out_features`` (the length of the flat feature vector) so heads
and critics can be sized from it; :func:`infer_out_features` measures it for any other extractor.

References
----------
.. [1] C. Shui, F. Zhou, C. Gagné, B. Wang, "Deep Active Learning: Unified and Principled Method
   for Query and Training", AISTATS 2020, arXiv:1911.09162.
"""

import copy
import inspect

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..utils.modes import EvalMode
from ..utils.shapes import check_image_shape
from .resnet import ResNet18

__all__ = [
    "LeNetFeatures",
    "MLPFeatures",
    "ResNet18Features",
    "VGG16BNFeatures",
    "WAALHead",
    "WAALCritic",
    "WAALNet",
    "infer_out_features",
    "make_features",
]

# VGG16 layer configuration: an int is a 3x3 conv with that many output channels, "M" a 2x2
# max-pool.
VGG16_CONFIG = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"
)


class LeNetFeatures(nn.Module):
    """LeNet-style feature extractor of WAAL for small grey images.

    ``conv(5x5, 10) -> maxpool(2) -> relu -> conv(5x5, 20) -> dropout2d -> maxpool(2) -> relu ->
    flatten``; no BatchNorm. A 1x28x28 image gives 20 x 4 x 4 = 320 features.

    Parameters
    ----------
    in_channels : int, default=1
        Number of input channels C.
    image_shape : tuple of int (C, H, W), default=None
        Input image shape used to compute :attr:`out_features`; ``None`` means
        ``(in_channels, 28, 28)``.
        H and W must be at least 16.
    dropout : float, default=0.5
        Probability of :class:`torch.nn.Dropout2d` after the second convolution.

    Attributes
    ----------
    out_features : int
        Length of the flat feature vector, ``20 * H' * W'`` with
        ``H' = ((H - 4) // 2 - 4) // 2`` and ``W'`` alike.

    See Also
    --------
    VGG16BNFeatures : WAAL's extractor for colour images.
    WAALNet : Puts an extractor and a head together.

    Examples
    --------
    >>> import torch
    >>> features = LeNetFeatures()
    >>> features(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 320])
    """

    def __init__(self, in_channels=1, image_shape=None, dropout=0.5):
        super().__init__()
        if image_shape is None:
            image_shape = (in_channels, 28, 28)
        channels, height, width = check_image_shape(
            image_shape, owner="LeNetFeatures", optional=False, in_channels=in_channels)
        # each 5x5 conv trims 4 pixels, each pool halves (rounding down)
        out_height = ((height - 4) // 2 - 4) // 2
        out_width = ((width - 4) // 2 - 4) // 2
        if out_height < 1 or out_width < 1:
            raise ValueError(
                "The 'image_shape' parameter of LeNetFeatures must be a tuple (C, H, W) with H "
                f"and W each an int in the range [16, inf). Got {image_shape!r} instead."
            )
        self.conv1 = nn.Conv2d(channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.dropout = nn.Dropout2d(dropout)
        self.out_features = 20 * out_height * out_width

    def forward(self, x):
        """Map images to flat features.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, out_features)
            Features.
        """
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (n, 10, (H-4)//2, (W-4)//2)
        x = F.relu(F.max_pool2d(self.dropout(self.conv2(x)), 2))  # (n, 20, H', W'), 4x4 for 28x28
        return x.flatten(1)  # (n, 20 * H' * W'), 320 for 28x28


class VGG16BNFeatures(nn.Module):
    """VGG16 with BatchNorm, the feature extractor of WAAL for 32x32 colour images.

    Thirteen ``conv(3x3, pad 1) -> BatchNorm -> ReLU`` blocks with five 2x2 max-pools
    (configuration :data:`VGG16_CONFIG`), then flatten. A 3x32x32 image gives 512 features. The
    authors' trailing ``AvgPool2d(1, 1)`` is an identity and is left out.

    Parameters
    ----------
    in_channels : int, default=3
        Number of input channels C.
    image_shape : tuple of int (C, H, W), default=None
        Input image shape used to compute :attr:`out_features`; ``None`` means
        ``(in_channels, 32, 32)``.
        H and W must be at least 32.

    Attributes
    ----------
    out_features : int
        Length of the flat feature vector, ``512 * (H // 32) * (W // 32)``.

    See Also
    --------
    LeNetFeatures : WAAL's extractor for small grey images.
    WAALNet : Puts an extractor and a head together.

    Examples
    --------
    >>> import torch
    >>> features = VGG16BNFeatures().eval()
    >>> features(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 512])
    """

    def __init__(self, in_channels=3, image_shape=None):
        super().__init__()
        if image_shape is None:
            image_shape = (in_channels, 32, 32)
        channels, height, width = check_image_shape(
            image_shape, owner="VGG16BNFeatures", optional=False, in_channels=in_channels)
        layers = []
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                height, width = height // 2, width // 2
            else:
                layers += [
                    nn.Conv2d(channels, item, kernel_size=3, padding=1),
                    nn.BatchNorm2d(item),
                    nn.ReLU(inplace=True),
                ]
                channels = item
        if height < 1 or width < 1:
            raise ValueError(
                "The 'image_shape' parameter of VGG16BNFeatures must be a tuple (C, H, W) with H "
                f"and W each an int in the range [32, inf). Got {image_shape!r} instead."
            )
        self.layers = nn.Sequential(*layers)
        self.out_features = channels * height * width

    def forward(self, x):
        """Map images to flat features.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, out_features)
            Features.
        """
        x = self.layers(x)  # (n, 512, H // 32, W // 32), 1x1 for 32x32
        return x.flatten(1)  # (n, 512 * (H // 32) * (W // 32))


class WAALHead(nn.Module):
    """Classifier head of WAAL: ``Linear -> ReLU -> Dropout -> Linear``, returns logits.

    The dropout before the last layer is the layer MC dropout samples.

    Parameters
    ----------
    in_features : int
        Length of the feature vector (the extractor's ``out_features``).
    n_classes : int
        Number of classes K.
    hidden : int, default=50
        Width of the hidden layer.
    dropout : float, default=0.5
        Dropout probability before the last layer.

    See Also
    --------
    WAALCritic : The critic that scores the same features.
    WAALNet : Puts an extractor and a head together.

    Examples
    --------
    >>> import torch
    >>> WAALHead(320, 10)(torch.zeros(4, 320)).shape
    torch.Size([4, 10])
    """

    def __init__(self, in_features, n_classes, hidden=50, dropout=0.5):
        super().__init__()
        self.in_features = in_features
        self.hidden = nn.Linear(in_features, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_classes)

    def forward(self, z):
        """Map features to logits.

        Parameters
        ----------
        z : torch.Tensor of shape (n, in_features)
            Features.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.output(self.dropout(F.relu(self.hidden(z))))


class WAALCritic(nn.Module):
    """Critic g of WAAL: ``Linear -> ReLU -> Dropout -> Linear -> Sigmoid``, one score per row.

    ``g(z)`` close to 1 means "looks unlabelled", close to 0 "looks labelled".

    Parameters
    ----------
    in_features : int
        Length of the feature vector (the extractor's ``out_features``).
    hidden : int, default=50
        Width of the hidden layer.
    dropout : float, default=0.5
        Dropout probability before the last layer.

    See Also
    --------
    WAALHead : The classifier head on the same features.
    skal.WAALClassifier : Trains the critic against the feature extractor.

    Examples
    --------
    >>> import torch
    >>> WAALCritic(320)(torch.zeros(4, 320)).shape
    torch.Size([4])
    """

    def __init__(self, in_features, hidden=50, dropout=0.5):
        super().__init__()
        self.in_features = in_features
        self.hidden = nn.Linear(in_features, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, 1)

    def forward(self, z):
        """Map features to critic scores.

        Parameters
        ----------
        z : torch.Tensor of shape (n, in_features)
            Features.

        Returns
        -------
        torch.Tensor of shape (n,)
            Scores in (0, 1): near 1 "looks unlabelled", near 0 "looks labelled".
        """
        score = torch.sigmoid(self.output(self.dropout(F.relu(self.hidden(z)))))  # (n, 1)
        return score.squeeze(-1)  # (n,)


def infer_out_features(features, image_shape=None):
    """Return the length of the flat feature vector a feature extractor produces.

    Parameters
    ----------
    features : torch.nn.Module
        Feature extractor mapping ``(n, C, H, W)`` images to ``(n, d)`` features.
    image_shape : tuple of int (C, H, W), default=None
        Used when ``features`` has no ``out_features`` attribute: one zero image of this shape is
        passed through ``features`` (in eval mode, without gradients) and its output is measured.

    Returns
    -------
    out_features : int
        ``features.out_features`` if it is set, otherwise the measured ``d``.

    Examples
    --------
    >>> import torch
    >>> infer_out_features(torch.nn.Flatten(), image_shape=(1, 8, 8))
    64
    """
    out_features = getattr(features, "out_features", None)
    if out_features is not None:
        return int(out_features)
    if image_shape is None:
        raise ValueError(
            f"Cannot tell the feature size of {type(features).__name__}: it has no 'out_features' "
            "attribute. Pass image_shape=(C, H, W) or set features.out_features."
        )
    parameter = next(features.parameters(), None)
    device = parameter.device if parameter is not None else None
    with EvalMode(features), torch.no_grad():
        z = features(torch.zeros(1, *image_shape, device=device))  # (1, ...)
    return int(z[0].numel())


class WAALNet(nn.Module):
    """A feature extractor followed by a classifier head: ``forward(x) = head(features(x))``.

    The split lets WAAL's critic see the features: ``net.features(x)`` gives ``z``,
    ``net.head(z)`` the logits.

    Parameters
    ----------
    features : torch.nn.Module
        Feature extractor mapping ``(n, C, H, W)`` images to ``(n, d)`` features, for instance
        :class:`LeNetFeatures` or :class:`VGG16BNFeatures`. Any module works.
    head : torch.nn.Module
        Classifier mapping ``(n, d)`` features to ``(n, n_classes)`` logits, for instance
        :class:`WAALHead`.

    Raises
    ------
    ValueError
        If ``features.out_features`` and ``head.in_features`` are both set and differ.

    See Also
    --------
    make_features : Builds a feature extractor for an input shape.
    skal.WAALClassifier : The estimator that trains such a network.

    Examples
    --------
    >>> import torch
    >>> features = LeNetFeatures()
    >>> net = WAALNet(features, WAALHead(features.out_features, n_classes=10))
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, features, head):
        super().__init__()
        out_features = getattr(features, "out_features", None)
        in_features = getattr(head, "in_features", None)
        if out_features is not None and in_features is not None and out_features != in_features:
            raise ValueError(
                f"The head of WAALNet must take the features' size: features.out_features is "
                f"{out_features} but head.in_features is {in_features}. Build the head with "
                f"in_features={out_features}."
            )
        self.features = features
        self.head = head

    def forward(self, x):
        """Map images to logits, ``head(features(x))``.

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


class MLPFeatures(nn.Module):
    """``flatten -> Linear -> ReLU``: the fallback feature extractor for flat or tiny inputs.

    :func:`make_features` picks it for flat rows and images smaller than 16x16.

    Parameters
    ----------
    in_features : int
        Length of a flattened input row.
    out_features : int, default=128
        Length of the feature vector.

    See Also
    --------
    LeNetFeatures : The extractor for small grey images.

    Examples
    --------
    >>> import torch
    >>> MLPFeatures(64)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 128])
    """

    def __init__(self, in_features, out_features=128):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.out_features = out_features

    def forward(self, x):
        """Map inputs to features.

        Parameters
        ----------
        x : torch.Tensor of shape (n, ...)
            Inputs, flattened per row.

        Returns
        -------
        torch.Tensor of shape (n, out_features)
            ``ReLU(Linear(x.flatten(1)))``.
        """
        return F.relu(self.linear(x.flatten(1)))  # (n, out_features)


class ResNet18Features(nn.Module):
    """The trunk of :class:`skal.nets.ResNet18` (``ResNet18.features``) as a feature extractor.

    The network's dropout and last layer are replaced by identities: WAAL brings its own head.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    width : int, default=64
        Channels of the first stage (the features have ``8 * width``).

    See Also
    --------
    skal.nets.ResNet18 : The full network.
    WAALNet : Puts an extractor and a head together.

    Examples
    --------
    >>> import torch
    >>> ResNet18Features(1, width=4).eval()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 32])
    """

    def __init__(self, in_channels=1, width=64):
        super().__init__()
        net = ResNet18(in_channels=in_channels, n_classes=1, width=width, dropout=0.0)
        net.dropout, net.linear = nn.Identity(), nn.Identity()  # WAAL brings its own head
        self.net = net
        self.out_features = net.out_features

    def forward(self, x):
        """Map images to the trunk's features.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, 8 * width)
            Features.
        """
        return self.net.features(x)  # (n, 8 * width)


#: The feature extractors :func:`make_features` knows by name.
NAMED_FEATURES = ("lenet", "vgg16bn", "resnet18", "mlp")


def make_features(spec, shape, dropout=0.5):
    """Build a feature extractor for inputs of per-sample shape ``shape``.

    Parameters
    ----------
    spec : None, str, torch module class or instance
        ``None`` picks from the shape: :class:`VGG16BNFeatures` for 3-channel images of at least
        32x32, :class:`LeNetFeatures` for other images of at least 16x16, :class:`MLPFeatures`
        otherwise. A name from :data:`NAMED_FEATURES`; a class (instantiated with
        ``in_channels`` and ``image_shape`` if it takes them); an instance (deep-copied).
    shape : tuple
        ``(C, H, W)`` for images, ``(d,)`` for flat rows.
    dropout : float, default=0.5
        LeNet's Dropout2d.

    Returns
    -------
    features : torch.nn.Module
        A new module (an instance given as ``spec`` is deep-copied) with ``out_features`` when
        its class sets it.

    Examples
    --------
    >>> type(make_features(None, (1, 28, 28))).__name__, type(make_features(None, (64,))).__name__
    ('LeNetFeatures', 'MLPFeatures')
    """
    is_image = len(shape) == 3
    if spec is None:
        if not is_image:
            spec = "mlp"
        elif shape[0] == 3 and min(shape[1:]) >= 32:
            spec = "vgg16bn"
        elif min(shape[1:]) >= 16:
            spec = "lenet"
        else:
            spec = "mlp"
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    if isinstance(spec, str):
        if spec == "mlp":
            return MLPFeatures(int(np.prod(shape)))
        if not is_image:
            raise ValueError(
                f"features={spec!r} needs images: the input has per-sample shape {shape}. "
                "Pass (n, C, H, W) images or set image_shape=(C, H, W)."
            )
        if spec == "lenet":
            return LeNetFeatures(shape[0], image_shape=shape, dropout=dropout)
        if spec == "vgg16bn":
            return VGG16BNFeatures(shape[0], image_shape=shape)
        return ResNet18Features(shape[0])
    kwargs = {}
    accepted = inspect.signature(spec).parameters
    if is_image and "in_channels" in accepted:
        kwargs["in_channels"] = shape[0]
    if "image_shape" in accepted:
        kwargs["image_shape"] = shape
    return spec(**kwargs)
