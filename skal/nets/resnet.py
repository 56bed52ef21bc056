"""CIFAR-style ResNet18 and pre-activation ResNet18, the two classifiers of BGADL.

Both nets use a 3x3 stride-1 stem (no max-pool; ``stem_stride=2`` halves the resolution there,
for the cheap wide trunks of small images), four stages of two residual blocks with widths
``width * (1, 2, 4, 8)``, global average pooling and a head ``Dropout -> Linear``. Global average
pooling (instead of the fixed ``avg_pool2d(4)`` of the CIFAR reference nets) makes them work for any
input size: 8x8 digits, 28x28 Fashion-MNIST, 32x32 CIFAR.

MC dropout: all stochasticity lives in :meth:`head`, so ``features(x)`` can be computed once and the
head sampled T times (see :meth:`skal.MCDropoutClassifier.sample_proba`).

skal has its own :class:`BasicBlock` rather than importing torchvision's: importing
``torchvision.models`` pulls in ``torch._dynamo``, sympy and triton and used to be a third of the
CPU time of ``import skal``. The block has torchvision's layers, names and construction order, so
state dicts load both ways and a seeded net gets bit-identical initial weights
(``tests/nets/test_resnet_block.py``).
"""

import numbers

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BasicBlock", "ResNet18", "PreActResNet18", "PreActBlock"]


def _shortcut(in_planes, planes, stride):
    """1x1 projection shortcut when the shape changes, else ``None`` (identity)."""
    if stride == 1 and in_planes == planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(planes),
    )


class BasicBlock(nn.Module):
    """Post-activation basic block (He et al. 2016), a drop-in for torchvision's ``BasicBlock``.

    ``conv3x3 -> BN -> ReLU -> conv3x3 -> BN``, plus the shortcut, then ReLU. The submodules are
    created and registered in torchvision's order and under its names (``conv1``, ``bn1``,
    ``relu``, ``conv2``, ``bn2``, ``downsample``), so parameter names, their order and the draws
    from the RNG at construction are the same.

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Output channels of both convolutions.
    stride : int, default=1
        Stride of the first convolution.
    downsample : nn.Module or None, default=None
        Applied to the input for the shortcut when the shape changes (identity if None).

    See Also
    --------
    PreActBlock : The pre-activation block of :class:`PreActResNet18`.
    ResNet18 : The network built from this block.

    Examples
    --------
    >>> import torch
    >>> block = BasicBlock(4, 4)
    >>> block(torch.zeros(2, 4, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor of shape (n, inplanes, H, W)
            Input feature maps.

        Returns
        -------
        torch.Tensor of shape (n, planes, H / stride, W / stride)
            ``ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x))``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, "Identity mappings in deep residual networks").

    ``BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3``; the projection shortcut, when there is one,
    is applied to the pre-activated input.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels of both convolutions.
    stride : int, default=1
        Stride of the first convolution (and of the 1x1 projection shortcut).

    See Also
    --------
    BasicBlock : The post-activation block of :class:`ResNet18`.
    PreActResNet18 : The network built from this block.

    Examples
    --------
    >>> import torch
    >>> block = PreActBlock(4, 8, stride=2)
    >>> block(torch.zeros(2, 4, 8, 8)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x):
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_planes, H, W)
            Input feature maps.

        Returns
        -------
        torch.Tensor of shape (n, planes, H / stride, W / stride)
            The residual branch plus the (projected) shortcut, without a final activation.
        """
        out = F.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + identity


class ResNet18Base(nn.Module):
    """Shared skeleton: stem, four stages, pooling and the dropout head."""

    preact = False

    def __init__(self, in_channels=1, n_classes=10, width=64, dropout=0.5, stem_stride=1):
        super().__init__()
        if in_channels < 1 or n_classes < 1 or width < 1:
            raise ValueError(
                f"The 'in_channels', 'n_classes' and 'width' parameters of {type(self).__name__} "
                f"must each be an int in the range [1, inf). Got {in_channels}, {n_classes} and "
                f"{width} instead."
            )
        if not isinstance(stem_stride, numbers.Integral) or isinstance(stem_stride, bool) or (
                stem_stride not in (1, 2)):
            raise ValueError(
                f"The 'stem_stride' parameter of {type(self).__name__} must be 1 or 2. Got "
                f"{stem_stride!r} instead."
            )
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.out_features = 8 * width
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stem_stride, padding=1, bias=False)
        # A pre-activation net normalises inside its blocks; the stem stays a bare conv.
        self.bn1 = nn.Identity() if self.preact else nn.BatchNorm2d(width)
        stages, in_planes = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(nn.Sequential(
                self._block(in_planes, planes, stride), self._block(planes, planes, 1)
            ))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # Pre-activation nets end with BN -> ReLU before pooling (He et al. 2016, Fig. 4e).
        self.final = (
            nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU()) if self.preact else nn.Identity()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(self.out_features, n_classes)

    def _block(self, in_planes, planes, stride):
        raise NotImplementedError

    def _stem(self, x):
        return F.relu(self.bn1(self.conv1(x)))

    def _trunk(self, x, pooled=None):
        """The last stage's feature maps (after ``final``); the pooled outputs of the first
        three stages are appended to the list ``pooled`` on the way, when one is given."""
        out = self._stem(x)
        for stage in (self.layer1, self.layer2, self.layer3):
            out = stage(out)
            if pooled is not None:
                pooled.append(self.pool(out).flatten(1))  # (n, c, 1, 1) -> (n, c)
        return self.final(self.layer4(out))

    def features(self, x):
        """Compute the deterministic trunk's features (no dropout here).

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_channels, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, 8 * width)
            The globally average-pooled output of the last stage.
        """
        return self.pool(self._trunk(x)).flatten(1)  # (n, 8w, 1, 1) -> (n, 8w)

    def stage_features(self, x):
        """Compute the pooled outputs of all four stages, side by side.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_channels, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, 15 * width)
            The globally average-pooled outputs of the stages (``w, 2w, 4w, 8w`` channels), in
            order; the last ``8 * width`` columns are :meth:`features`.
        """
        pooled = []
        last = self._trunk(x, pooled)
        pooled.append(self.pool(last).flatten(1))  # (n, 8w, 1, 1) -> (n, 8w)
        return torch.cat(pooled, dim=1)  # (n, 15w)

    def head(self, z):
        """Apply the stochastic head, ``Dropout -> Linear``.

        Parameters
        ----------
        z : torch.Tensor of shape (n, 8 * width)
            Features from :meth:`features`.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits (a fresh dropout mask in train mode or under MC dropout).
        """
        return self.linear(self.dropout(z))

    def forward(self, x):
        """Compute the logits, ``head(features(x))``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_channels, H, W)
            Images.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            Logits.
        """
        return self.head(self.features(x))


class ResNet18(ResNet18Base):
    """CIFAR-style ResNet18 built from :class:`BasicBlock` (torchvision's block, reimplemented).

    A 3x3 stride-1 stem, four stages of two blocks, global average pooling and a
    ``Dropout -> Linear`` head: any input size works, and :meth:`features` can run once while
    :meth:`head` is sampled T times for MC dropout.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    n_classes : int, default=10
        Number of output logits.
    width : int, default=64
        Channels of the first stage; later stages use 2x, 4x and 8x. 64 is the standard ResNet18;
        smaller widths give cheap nets for CPU experiments and tests.
    dropout : float, default=0.5
        Dropout probability before the last Linear layer (the MC-dropout layer).
    stem_stride : {1, 2}, default=1
        Stride of the stem's convolution. 2 runs the four stages at half the resolution: a
        trunk of twice the width for about the same multiply-adds (cheap encoders of small images).

    See Also
    --------
    PreActResNet18 : The pre-activation variant.
    skal.ResNet18Classifier : The scikit-learn estimator around this network.

    Examples
    --------
    >>> import torch
    >>> net = ResNet18(in_channels=1, n_classes=10, width=8)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def _block(self, in_planes, planes, stride):
        downsample = _shortcut(in_planes, planes, stride)  # built first, as before: same RNG draws
        return BasicBlock(in_planes, planes, stride, downsample=downsample)


class PreActResNet18(ResNet18Base):
    """Pre-activation ResNet18 ("ResNet18pa" in BGADL).

    The skeleton of :class:`ResNet18` built from :class:`PreActBlock`: the stem is a bare
    convolution and the last stage ends with ``BN -> ReLU`` before pooling.

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input images.
    n_classes : int, default=10
        Number of output logits.
    width : int, default=64
        Channels of the first stage; later stages use 2x, 4x and 8x.
    dropout : float, default=0.5
        Dropout probability before the last Linear layer (the MC-dropout layer).
    stem_stride : {1, 2}, default=1
        Stride of the stem's convolution. 2 runs the four stages at half the resolution: a
        trunk of twice the width for about the same multiply-adds (cheap encoders of small images).

    See Also
    --------
    ResNet18 : The post-activation network.
    skal.ResNet18Classifier : Its estimator; ``preact=True`` selects this network.

    Examples
    --------
    >>> import torch
    >>> net = PreActResNet18(in_channels=3, n_classes=10, width=8)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    preact = True

    def _block(self, in_planes, planes, stride):
        return PreActBlock(in_planes, planes, stride)
