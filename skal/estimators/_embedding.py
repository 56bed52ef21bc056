"""Penultimate features of any torch module: the input of its last ``nn.Linear``, in one pass.

One definition for every skal estimator (``embed(X)``): the features are whatever enters the
last ``nn.Linear`` layer that runs in ``forward``, captured by a forward pre-hook, with the module
in eval mode (dropout off). For :class:`skal.nets.ResNet18` that is ``features(x)``; for WAAL's
head ``Linear -> ReLU -> Dropout -> Linear`` it is the hidden layer's activation; for an MLP the
last hidden activation. The logits of the same pass give the probabilities, so feature-space
strategies that need both (BADGE) pay for one forward pass.
"""

import numpy as np
import torch
from torch import nn

from ..utils.modes import EvalMode


def penultimate_pass(module, X, *, batch_size, device, nonlinearity, return_proba, owner):
    """``(features, proba)`` of ``X`` (``proba`` None unless asked), batch by batch.

    Parameters
    ----------
    module : torch.nn.Module
    X : ndarray
        Validated input (what the module receives).
    batch_size : int
    device : str or torch.device
    nonlinearity : callable
        Logits -> probabilities (the estimator's predict nonlinearity).
    return_proba : bool
    owner : str
        Name of the estimator, for error messages.

    Returns
    -------
    features : ndarray of float32, shape (n, d)
    proba : ndarray of float32, shape (n, n_classes) or None
    """
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError(
            f"{owner}.embed returns the input of the module's last nn.Linear layer, but "
            f"{type(module).__name__} has no nn.Linear. Give the network a Linear output layer, "
            "or pass your own features to the strategy (embedding=callable)."
        )
    captured = []

    def hook(layer, inputs):
        captured.append(inputs[0])  # the last one recorded in a pass is the last Linear run

    handles = [m.register_forward_pre_hook(hook) for m in linears]
    features, probas = [], []
    try:
        with EvalMode(module), torch.no_grad():
            for start in range(0, len(X), batch_size):
                xb = torch.as_tensor(X[start:start + batch_size], device=device)
                captured.clear()
                logits = module(xb)
                if isinstance(logits, tuple):
                    logits = logits[0]
                z = captured[-1]
                if z.shape[0] != len(xb):
                    raise TypeError(
                        f"{owner}.embed: the input of the last nn.Linear of "
                        f"{type(module).__name__} has shape {tuple(z.shape)}, not one row per "
                        f"sample of the batch ({len(xb)}); pass your own features instead."
                    )
                features.append(z.flatten(1).float().cpu().numpy())  # (b, ...) -> (b, d)
                if return_proba:
                    probas.append(nonlinearity(logits).float().cpu().numpy())
    finally:
        for h in handles:
            h.remove()
    if not features:  # empty X
        return np.empty((0, 0), np.float32), (np.empty((0, 0), np.float32) if return_proba
                                              else None)
    proba = np.concatenate(probas) if return_proba else None
    return np.concatenate(features), proba
