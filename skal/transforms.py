"""Ordinary data augmentation on image batches (tensors), for the classifiers' training steps."""

import torch
from torch.nn import functional as F

__all__ = ["random_crop_flip"]


def random_crop_flip(x, padding=None, generator=None):
    """Random crop after zero padding, then a random horizontal flip, per image.

    The standard "crop + flip" augmentation (as torchvision's ``RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip()``), on a whole batch at once: every image is padded with zeros by
    ``padding`` pixels on each side, cropped back to its size at a uniformly random offset and
    mirrored left-right with probability 1/2.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
    padding : int or None, default=None
        Pixels of zero padding per side; ``None`` uses ``ceil(min(H, W) / 8)`` (4 for 28x28 and
        32x32 images, 1 for 8x8).
    generator : torch.Generator or None, default=None
        Source of the offsets and flips (on the device of ``x``); ``None`` uses torch's default
        generator, which skal's ``fit`` seeds from ``random_state``.

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)

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
    flip = torch.rand(n, **kwargs) < 0.5  # (n,)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x  # (n, C, H + 2p, W + 2p)
    rows = top[:, None] + torch.arange(height, device=device)[None]  # (n, H)
    cols = left[:, None] + torch.arange(width, device=device)[None]  # (n, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # mirrored columns for flipped images
    batch = torch.arange(n, device=device)[:, None, None, None]  # (n, 1, 1, 1)
    chan = torch.arange(channels, device=device)[None, :, None, None]  # (1, C, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # (n, C, H, W)
