"""SimCLR's augmentations for small grey and colour images, as batched torchvision v2 transforms.

Each transform here is a ``torchvision.transforms.v2.Transform`` that takes a whole batch
``(B, C, H, W)`` of float images and draws its random parameters *per image* (torchvision's own
transforms draw one set of parameters per call, so a batch would get one crop for every image):
one ``affine_grid`` / ``grid_sample`` call crops, resizes and flips the whole batch, and the colour
changes are per-image factors broadcast over it. On a 2-core CPU this costs about 10 us per
28x28 image and view, against about 200 us for torchvision's per-image ``RandomResizedCrop`` +
``RandomHorizontalFlip`` + ``ColorJitter``.

The parameters come from torch's default generator, which :class:`skal.ContrastiveEncoder` seeds
(and restores) around every epoch. Values are not clipped, so images need not lie in [0, 1].

This module imports torchvision, so it is imported only when an encoder builds its augmentation
(``import skal`` never loads torchvision: see ``tests/test_import.py``).
"""

import math

import torch
from torch.nn import functional as F
from torchvision.transforms import v2

__all__ = ["BatchRandomResizedCrop", "BatchColorJitter", "BatchRandomGrayscale",
           "BatchGaussianBlur", "simclr_augment"]


class _BatchTransform(v2.Transform):
    """A v2 transform of a ``(B, C, H, W)`` tensor whose parameters are drawn per image."""

    def make_params(self, flat_inputs):
        batch = flat_inputs[0]
        if batch.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} transforms a batch of images (B, C, H, W); got a tensor "
                f"of shape {tuple(batch.shape)}."
            )
        return self._draw(batch.shape[0], batch.device)

    def _draw(self, n, device):
        raise NotImplementedError

    def _apply_where(self, x, out, apply):
        """``out`` for the images where ``apply`` (a bool tensor ``(B,)``), ``x`` elsewhere."""
        return torch.where(apply[:, None, None, None], out, x)  # (B, C, H, W)


class BatchRandomResizedCrop(_BatchTransform):
    """Crop a random area and aspect ratio of each image, resize it back, maybe mirror it.

    torchvision's ``RandomResizedCrop`` (area fraction ``scale``, aspect ratio ``ratio``, the
    output the input's size) and ``RandomHorizontalFlip`` in one bilinear resampling per batch.
    A crop side that would exceed the image is cut to the image (torchvision retries instead).

    Parameters
    ----------
    scale : tuple of float, default=(0.2, 1.0)
        Range of the cropped area, as a fraction of the image.
    ratio : tuple of float, default=(3/4, 4/3)
        Range of the crop's aspect ratio (width / height), drawn log-uniformly.
    flip : bool, default=True
        Mirror left-right with probability 1/2.
    """

    def __init__(self, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), flip=True):
        super().__init__()
        self.scale, self.ratio, self.flip = tuple(scale), tuple(ratio), bool(flip)

    def _draw(self, n, device):
        area = torch.empty(n, device=device).uniform_(*self.scale)  # (n,) area fractions
        log_r = torch.empty(n, device=device).uniform_(*map(math.log, self.ratio))  # (n,)
        width = torch.sqrt(area * log_r.exp()).clamp(max=1.0)  # (n,) fraction of the image width
        height = torch.sqrt(area / log_r.exp()).clamp(max=1.0)  # (n,) fraction of its height
        # the crop's centre in [-1, 1] coordinates, so that the crop stays inside the image
        cx = (torch.rand(n, device=device) * 2 - 1) * (1 - width)  # (n,)
        cy = (torch.rand(n, device=device) * 2 - 1) * (1 - height)  # (n,)
        sign = torch.ones(n, device=device)
        if self.flip:
            sign = torch.where(torch.rand(n, device=device) < 0.5, -sign, sign)  # (n,) mirror
        return {"width": width, "height": height, "cx": cx, "cy": cy, "sign": sign}

    def transform(self, inpt, params):
        n = inpt.shape[0]
        theta = inpt.new_zeros((n, 2, 3))  # (n, 2, 3): output grid -> input coordinates
        theta[:, 0, 0] = params["width"] * params["sign"]
        theta[:, 0, 2] = params["cx"]
        theta[:, 1, 1] = params["height"]
        theta[:, 1, 2] = params["cy"]
        grid = F.affine_grid(theta, list(inpt.shape), align_corners=False)  # (n, H, W, 2)
        return F.grid_sample(inpt, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)  # (n, C, H, W)


class BatchColorJitter(_BatchTransform):
    """Random brightness, contrast and (colour images) saturation per image.

    torchvision's ``ColorJitter(brightness, contrast, saturation)`` formulas (brightness scales
    the image; contrast blends it with its mean grey level; saturation with its grey version) with
    factors drawn uniformly from ``[1 - s, 1 + s]`` per image, applied with probability ``p``.
    For grey images this is the grey-level jitter (brightness and contrast).

    Parameters
    ----------
    brightness, contrast, saturation : float, default=0.4
        Strengths ``s``; 0 leaves that property alone.
    p : float, default=0.8
        Probability that an image is jittered at all (SimCLR's ``RandomApply``).
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, p=0.8):
        super().__init__()
        self.brightness, self.contrast, self.saturation, self.p = (
            float(brightness), float(contrast), float(saturation), float(p))

    def _factor(self, strength, n, device):
        return 1 + (torch.rand(n, 1, 1, 1, device=device) * 2 - 1) * strength  # (n, 1, 1, 1)

    def _draw(self, n, device):
        return {
            "apply": torch.rand(n, device=device) < self.p,  # (n,)
            "brightness": self._factor(self.brightness, n, device),
            "contrast": self._factor(self.contrast, n, device),
            "saturation": self._factor(self.saturation, n, device),
        }

    def transform(self, inpt, params):
        out = inpt * params["brightness"]
        grey = _grey(out)  # (n, 1, H, W)
        out = params["contrast"] * out + (1 - params["contrast"]) * grey.mean((1, 2, 3), True)
        if out.shape[1] == 3 and self.saturation:
            out = params["saturation"] * out + (1 - params["saturation"]) * _grey(out)
        return self._apply_where(inpt, out, params["apply"])


class BatchRandomGrayscale(_BatchTransform):
    """Turn each colour image grey with probability ``p`` (grey images are left alone).

    Parameters
    ----------
    p : float, default=0.2
        Probability per image.
    """

    def __init__(self, p=0.2):
        super().__init__()
        self.p = float(p)

    def _draw(self, n, device):
        return {"apply": torch.rand(n, device=device) < self.p}  # (n,)

    def transform(self, inpt, params):
        if inpt.shape[1] != 3:
            return inpt
        return self._apply_where(inpt, _grey(inpt).expand_as(inpt), params["apply"])


class BatchGaussianBlur(_BatchTransform):
    """Gaussian blur with a random standard deviation per image, with probability ``p``.

    The kernel is about a tenth of the image side (SimCLR's rule; at least 3 pixels, odd), the
    standard deviation uniform in ``sigma`` pixels; reflection at the borders.

    Parameters
    ----------
    p : float, default=0.5
        Probability per image.
    sigma : tuple of float, default=(0.1, 2.0)
        Range of the standard deviation, in pixels.
    """

    def __init__(self, p=0.5, sigma=(0.1, 2.0)):
        super().__init__()
        self.p, self.sigma = float(p), tuple(sigma)

    def _draw(self, n, device):
        return {"apply": torch.rand(n, device=device) < self.p,  # (n,)
                "sigma": torch.empty(n, device=device).uniform_(*self.sigma)}  # (n,)

    def transform(self, inpt, params):
        n, channels, height, width = inpt.shape
        size = max(3, int(round(0.1 * min(height, width))) | 1)  # odd
        half = size // 2
        if half >= min(height, width):  # reflection padding needs a wider image
            return inpt
        offsets = torch.arange(size, device=inpt.device, dtype=inpt.dtype) - half  # (k,)
        kernel = torch.exp(-0.5 * (offsets[None] / params["sigma"][:, None]) ** 2)  # (n, k)
        kernel = kernel / kernel.sum(1, keepdim=True)
        kernel = kernel.repeat_interleave(channels, 0)  # (n*C, k): one kernel per image channel
        x = inpt.reshape(1, n * channels, height, width)  # (n, C, H, W) -> (1, n*C, H, W)
        x = F.pad(x, (half, half, half, half), mode="reflect")
        x = F.conv2d(x, kernel[:, None, :, None], groups=n * channels)  # vertical pass
        x = F.conv2d(x, kernel[:, None, None, :], groups=n * channels)  # horizontal pass
        out = x.reshape(n, channels, height, width)  # (1, n*C, H, W) -> (n, C, H, W)
        return self._apply_where(inpt, out, params["apply"])


def _grey(x):
    """Luma ``(n, 1, H, W)`` of ``(n, C, H, W)`` images (ITU-R 601, as torchvision; grey: x)."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    weights = x.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]  # (1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def simclr_augment(channels, *, crop_scale=(0.2, 1.0), flip=True, jitter=0.4, grayscale=0.2,
                   blur=0.0):
    """SimCLR's augmentation for ``channels``-channel images, as one ``v2.Compose``.

    Random resized crop (and flip), colour jitter (brightness, contrast, and saturation for
    colour images) with probability 0.8, random greyscale (colour images), Gaussian blur.

    Parameters
    ----------
    channels : int
    crop_scale : tuple of float
    flip : bool
    jitter : float
        Strength of brightness, contrast and saturation jitter (0: none).
    grayscale : float
        Probability of turning a colour image grey.
    blur : float
        Probability of a Gaussian blur (0: none).

    Returns
    -------
    torchvision.transforms.v2.Compose
        Takes and returns batches ``(B, C, H, W)``.
    """
    steps = [BatchRandomResizedCrop(scale=crop_scale, flip=flip)]
    if jitter:
        steps.append(BatchColorJitter(jitter, jitter, jitter if channels == 3 else 0.0))
    if grayscale and channels == 3:
        steps.append(BatchRandomGrayscale(grayscale))
    if blur:
        steps.append(BatchGaussianBlur(blur))
    return v2.Compose(steps)
