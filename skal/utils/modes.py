"""Context managers that set torch modules' modes for a block (one part of a training step, a
forward pass outside training) and restore them afterwards: the one place skal switches modes."""

import torch

__all__ = ["GENERATED_BATCHNORM", "EvalMode", "Frozen", "MCDropoutMode", "OwnBatchStats",
           "RealDataStats"]


class EvalMode:
    """Context manager: put modules in eval mode, restore their previous modes on exit.

    On entry each module's ``training`` flag is saved and ``module.eval()`` is called; on exit
    ``module.train(flag)`` puts it back, which sets its submodules to that mode too.

    Parameters
    ----------
    *modules : torch.nn.Module
        The modules to put in eval mode.

    See Also
    --------
    MCDropoutMode : Eval mode except for the dropout layers.
    RealDataStats : Eval mode for the BatchNorm layers only.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with EvalMode(net):
    ...     print(net.training, net[1].training)
    False False
    >>> net.training, net[1].training
    (True, True)
    """

    def __init__(self, *modules):
        self.modules = modules

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)
        return False


class MCDropoutMode(EvalMode):
    """Context manager: ``module`` in eval mode except its dropout layers (Monte-Carlo dropout).

    BatchNorm and every other layer behave as at prediction time while the dropout layers keep
    drawing masks, so repeated forward passes sample the network's predictive distribution. On
    exit ``module`` goes back to its previous mode, as with :class:`EvalMode`.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    dropouts : list of torch.nn.Module
        Its dropout layers, put in training mode after ``module`` is put in eval mode.

    See Also
    --------
    EvalMode : Eval mode for the whole network.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with MCDropoutMode(net, [net[1]]):
    ...     print(net[0].training, net[1].training)
    False True
    >>> net[0].training
    True
    """

    def __init__(self, module, dropouts):
        super().__init__(module)
        self.dropouts = dropouts

    def __enter__(self):
        super().__enter__()
        for m in self.dropouts:
            m.train()


class Frozen:
    """Context manager: stop gradients to the parameters of some modules (inputs still get them).

    Used where a loss updates one network but flows through others, so that no time is spent on
    weight gradients that the next ``zero_grad`` would discard. The parameters are those the
    modules have when the context manager is made; on exit each gets its own ``requires_grad``
    back.

    Parameters
    ----------
    *modules : torch.nn.Module
        The modules whose parameters get no gradient inside the block.

    See Also
    --------
    EvalMode : Changes modes, not gradients.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(2, 1)
    >>> with Frozen(layer):
    ...     print(layer.weight.requires_grad)
    False
    >>> layer.weight.requires_grad
    True
    """

    def __init__(self, *modules):
        self.params = [p for m in modules for p in m.parameters()]

    def __enter__(self):
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p, flag in zip(self.params, self.flags):
            p.requires_grad_(flag)
        return False


def _batch_norms(modules):
    return [m for module in modules for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


class RealDataStats(EvalMode):
    """Context manager: BatchNorm layers normalise with their running statistics, unchanged.

    Only the BatchNorm layers are put in eval mode (dropout and the rest keep their mode): they
    normalise with their running statistics, which only real images update, and leave them
    unchanged. This is ``gen_batchnorm="running"``.

    The classifier sees generated and reconstructed batches as well as real ones. A classifier
    with BatchNorm (e.g. ResNet18) should judge them as it judges real images at prediction time:

    * updating the running statistics with generated batches makes the classifier predict real
      images with the statistics of generated ones (test accuracy collapsed to ~10-20 %);
    * with the batch's own statistics, a batch of near-constant images is rescaled to unit
      variance, so faint textures become strong features that generator and classifier can
      agree on. ``benchmarks/bgadl_joint_ablation.py`` measured how much this matters: the
      classifier fitted grey generated images more easily with batch statistics (its loss 0.21 vs
      0.61), but the images were not recognisable either way (a real-data classifier labels 10 % vs
      12 % correctly); with the summed reconstruction of L_G they were, about equally (70 % vs
      72 %).

    Parameters
    ----------
    *modules : torch.nn.Module
        The modules whose BatchNorm layers (at any depth) are put in eval mode.

    See Also
    --------
    OwnBatchStats : Normalise with the batch's statistics instead, still without updating.
    EvalMode : Eval mode for whole modules.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2),
    ...                           torch.nn.Dropout(0.5))
    >>> with RealDataStats(net):
    ...     print(net[1].training, net[2].training)
    False True
    """

    def __init__(self, *modules):
        super().__init__(*_batch_norms(modules))


class OwnBatchStats:
    """Context manager: BatchNorm layers keep their mode but leave their running statistics alone.

    The layers keep their mode, so in training mode they normalise with the batch's own
    statistics, but their running statistics do not change (momentum 0 inside the block; the
    momentum and the batch count are restored on exit). This is ``gen_batchnorm="batch"``,
    skal's behaviour before :class:`RealDataStats`.

    Parameters
    ----------
    *modules : torch.nn.Module
        The modules whose BatchNorm layers (at any depth) keep their running statistics.

    See Also
    --------
    RealDataStats : Normalise with the running statistics instead.

    Examples
    --------
    >>> import torch
    >>> norm = torch.nn.BatchNorm1d(2)
    >>> with OwnBatchStats(norm):
    ...     _ = norm(torch.arange(8.0).reshape(4, 2))  # a training-mode batch of shape (4, 2)
    >>> norm.running_mean.tolist(), int(norm.num_batches_tracked)
    ([0.0, 0.0], 0)
    """

    def __init__(self, *modules):
        self.norms = _batch_norms(modules)

    def __enter__(self):
        self.saved = [(m.momentum, m.num_batches_tracked.clone()) for m in self.norms]
        for m in self.norms:
            m.momentum = 0.0

    def __exit__(self, *exc):
        for m, (momentum, tracked) in zip(self.norms, self.saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
        return False


#: ``gen_batchnorm`` -> how C's BatchNorm layers treat generated batches
GENERATED_BATCHNORM = {"running": RealDataStats, "batch": OwnBatchStats}
