"""Mixed precision (bf16 / fp16 autocast) and the channels-last memory format for skal's nets.

:class:`PrecisionMixin` adds two parameters to a skorch net, ``mixed_precision`` and
``memory_format``, and applies them the skorch way, in its named hooks:

- ``infer`` (every training and prediction forward) runs under ``torch.autocast`` on the
  estimator's device type and returns float32 outputs, so losses, ``predict_proba`` and numpy
  conversions stay in float32; 4-D inputs are converted to ``torch.channels_last``;
- ``torch_compile`` (skorch's hook for preparing each module after it is built and moved to its
  device) converts the modules to ``channels_last``;
- ``train_step_single`` / ``_step_optimizer`` scale the loss with a ``torch.amp.GradScaler`` for
  fp16 (bf16 needs none).

Both work on CPU (bf16 and fp16 autocast, channels-last tensors) as on CUDA, which is where they pay
off: bf16 on Ampere or later, channels-last with cuDNN convolutions.
"""

import contextlib
from typing import Any

import torch
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ..utils.skorch_compat import set_training

__all__ = ["PrecisionMixin", "check_mixed_precision", "check_memory_format", "autocast"]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_MEMORY_FORMATS = ("contiguous", "channels_last")


def check_mixed_precision(value, owner):
    """``None`` / ``"no"`` (float32), ``"bf16"`` or ``"fp16"``; a clear error for anything else."""
    if value in (None, "no"):
        return None
    if isinstance(value, str) and value in _DTYPES:
        return value
    raise ValueError(
        f"The 'mixed_precision' parameter of {owner} must be None, 'bf16' or 'fp16'. Got "
        f"{value!r} instead."
    )


def check_memory_format(value, owner):
    """``"contiguous"`` or ``"channels_last"``; a clear error for anything else."""
    if isinstance(value, str) and value in _MEMORY_FORMATS:
        return value
    raise ValueError(
        f"The 'memory_format' parameter of {owner} must be 'contiguous' or 'channels_last'. Got "
        f"{value!r} instead."
    )


def _device_type(device):
    return torch.device("cpu" if device is None else device).type


def autocast(device, mixed_precision):
    """``torch.autocast`` for ``mixed_precision`` on ``device``'s type, or a no-op for float32."""
    if mixed_precision in (None, "no"):
        return contextlib.nullcontext()
    return torch.autocast(_device_type(device), dtype=_DTYPES[mixed_precision])


def as_float32(out):
    """Floating outputs (a tensor or a tuple of them) back to float32 after autocast."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(as_float32(o) for o in out)
    return out


def to_memory_format(x, memory_format):
    """A 4-D tensor in ``memory_format`` (other tensors as they are)."""
    if memory_format == "channels_last" and isinstance(x, torch.Tensor) and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class PrecisionMixin:
    """skorch hooks for the ``mixed_precision`` and ``memory_format`` parameters (see module)."""

    mixed_precision = None
    memory_format = "contiguous"

    def _compute_device(self):
        """The device the networks run on (skorch's ``device``)."""
        return self.device

    def _autocast(self):
        return autocast(self._compute_device(), self.mixed_precision)

    def _check_precision_params(self):
        name = type(self).__name__
        check_mixed_precision(self.mixed_precision, name)
        check_memory_format(self.memory_format, name)

    def torch_compile(self, module: Any, name: str) -> Any:
        """Convert each module to the ``memory_format`` (then skorch's own ``torch_compile``).

        Parameters
        ----------
        module : torch.nn.Module or object
            A module (or criterion) skorch is initialising.
        name : str
            Its attribute name (``"module"``, ``"criterion"``, ...).

        Returns
        -------
        module : torch.nn.Module or object
            The module in the ``memory_format``, compiled if skorch's ``compile`` is set.
        """
        self._check_precision_params()
        if self.memory_format == "channels_last" and isinstance(module, torch.nn.Module):
            module = module.to(memory_format=torch.channels_last)
        return super().torch_compile(module, name=name)

    def infer(self, x: Any, **fit_params: Any) -> Any:
        """Run a forward pass under autocast (float32 outputs), channels-last input if asked.

        Parameters
        ----------
        x : torch.Tensor or array-like
            A batch of input.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        output : torch.Tensor or tuple of torch.Tensor
            The module's output, in float32.
        """
        x = to_memory_format(to_tensor(x, device=self._compute_device()), self.memory_format)
        with self._autocast():
            out = super().infer(x, **fit_params)
        return as_float32(out)

    # ---------------------------------------------------------------- fp16 loss scaling
    def _grad_scaler(self):
        scaler = getattr(self, "_scaler", None)
        if scaler is None:
            enabled = self.mixed_precision == "fp16"
            scaler = torch.amp.GradScaler(_device_type(self._compute_device()), enabled=enabled)
            self._scaler = scaler
        return scaler

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Run skorch's training step, with the loss scaled for fp16.

        Parameters
        ----------
        batch : tuple of (X, y) tensors
            One training mini-batch.
        **fit_params
            Passed on to the module's ``forward``.

        Returns
        -------
        step : dict
            The ``loss`` and ``y_pred`` of the batch.
        """
        if self.mixed_precision != "fp16":
            return super().train_step_single(batch, **fit_params)
        set_training(self, True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._grad_scaler().scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if self.mixed_precision != "fp16":
            return super()._step_optimizer(step_fn)
        # GradScaler.step takes no closure: compute the gradients, then step each optimizer
        step_fn()
        scaler = self._grad_scaler()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return None
