"""Ordinary data augmentation on image batches (tensors), for the classifiers' training steps."""

import torch
from torch.nn import functional as F

__all__ = ["random_crop_flip", "strong_augment", "weak_augment"]


def random_crop_flip(x, padding=None, generator=None, flip=True):
    """Random crop after zero padding, then a random horizontal flip, per image.

    The standard "crop + flip" augmentation (as torchvision's ``RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip()``), on a whole batch at once: every image is padded with zeros by
    ``padding`` pixels on each side, cropped back to its size at a uniformly random offset and
    mirrored left-right with probability 1/2.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        The images.
    padding : int or None, default=None
        Pixels of zero padding per side; ``None`` uses ``ceil(min(H, W) / 8)`` (4 for 28x28 and
        32x32 images, 1 for 8x8).
    generator : torch.Generator or None, default=None
        Source of the offsets and flips (on the device of ``x``); ``None`` uses torch's default
        generator, which skal's ``fit`` seeds from ``random_state``.
    flip : bool, default=True
        Mirror left-right with probability 1/2 (False for images where that changes the class,
        such as digits).

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        New augmented images; ``x`` is left unchanged.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> random_crop_flip(x, padding=0, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([1, 1, 4, 4])
    """
    n, channels, height, width = x.shape
    pad = -(-min(height, width) // 8) if padding is None else int(padding)
    device = x.device
    kwargs = {"generator": generator, "device": device}
    top = torch.randint(2 * pad + 1, (n,), **kwargs)  # (n,)
    left = torch.randint(2 * pad + 1, (n,), **kwargs)  # (n,)
    flip = (torch.rand(n, **kwargs) < 0.5) & flip  # (n,)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x  # (n, C, H + 2p, W + 2p)
    rows = top[:, None] + torch.arange(height, device=device)[None]  # (n, H)
    cols = left[:, None] + torch.arange(width, device=device)[None]  # (n, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # mirrored columns for flipped images
    batch = torch.arange(n, device=device)[:, None, None, None]  # (n, 1, 1, 1)
    chan = torch.arange(channels, device=device)[None, :, None, None]  # (1, C, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (n, C, H, W)


def weak_augment(x, generator=None, flip=True):
    """Apply FixMatch's weak augmentation: a random shift of up to 1/8 of the image, and a flip.

    :func:`random_crop_flip` with its default padding (``ceil(min(H, W) / 8)`` pixels).

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        The images.
    generator : torch.Generator or None, default=None
        Source of the randomness; ``None`` uses torch's default generator (seeded by ``fit``).
    flip : bool, default=True
        Also mirror left-right with probability 1/2.

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        New augmented images; ``x`` is left unchanged.
    """
    return random_crop_flip(x, generator=generator, flip=flip)


def strong_augment(x, generator=None, flip=True):
    """Apply FixMatch's strong augmentation for small images: shift, flip, contrast, cut-out.

    Per image, after :func:`weak_augment`: a random contrast and brightness change and a
    cut-out square. A scale-free stand-in for RandAugment + Cutout that works on grey and colour images of any
    size and value range, on the whole batch at once: after :func:`weak_augment`, each image's
    contrast is scaled around its mean by a factor in [0.5, 1.5], its brightness shifted by up to
    0.5 of its standard deviation, and a square of half the image side (at a uniformly random
    centre, clipped at the border) set to its mean.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        The images.
    generator : torch.Generator or None, default=None
        Source of the randomness; ``None`` uses torch's default generator (seeded by ``fit``).
    flip : bool, default=True
        Also mirror left-right with probability 1/2.

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        New augmented images; ``x`` is left unchanged.

    References
    ----------
    Sohn et al. "FixMatch: Simplifying Semi-Supervised Learning with Consistency and
    Confidence." NeurIPS 2020. DeVries and Taylor. "Improved Regularization of Convolutional
    Neural Networks with Cutout." 2017.
    """
    x = weak_augment(x, generator=generator, flip=flip)
    n, _, height, width = x.shape
    kwargs = {"generator": generator, "device": x.device}
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (n, 1, 1, 1)
    std = x.std(dim=(1, 2, 3), keepdim=True)  # (n, 1, 1, 1)
    contrast = 0.5 + torch.rand((n, 1, 1, 1), **kwargs)  # (n, 1, 1, 1) in [0.5, 1.5)
    shift = (torch.rand((n, 1, 1, 1), **kwargs) - 0.5) * std  # up to half a std either way
    x = (x - mean) * contrast + mean + shift
    side = max(1, -(-min(height, width) // 2))
    cy = torch.randint(height, (n,), **kwargs)[:, None, None]  # (n, 1, 1) centre row
    cx = torch.randint(width, (n,), **kwargs)[:, None, None]  # (n, 1, 1) centre column
    rows = torch.arange(height, device=x.device)[None, :, None]  # (1, H, 1)
    cols = torch.arange(width, device=x.device)[None, None, :]  # (1, 1, W)
    half = side // 2
    cut = ((rows - cy).abs() <= half) & ((cols - cx).abs() <= half)  # (n, H, W)
    return torch.where(cut[:, None], mean, x)  # (n, C, H, W): the square set to the mean
