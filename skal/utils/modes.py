"""Context managers that set torch modules' modes for a block (one part of a training step, a
forward pass outside training) and restore them afterwards: the one place skal switches modes."""

import torch

__all__ = ["GENERATED_BATCHNORM", "EvalMode", "Frozen", "MCDropoutMode", "OwnBatchStats",
           "RealDataStats"]


class EvalMode:
    """Context manager: put modules in eval mode, restore their previous modes on exit."""

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
    """Context manager: ``module`` in eval mode except its dropout layers (Monte-Carlo dropout);
    the previous mode is restored on exit."""

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
    weight gradients that the next ``zero_grad`` would discard.
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
    """Context manager: the BatchNorm layers of some modules normalise with their running
    statistics, which only real images update, and are left unchanged (eval mode for BatchNorm
    only; dropout and the rest keep their mode).

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
    """

    def __init__(self, *modules):
        super().__init__(*_batch_norms(modules))


class OwnBatchStats:
    """Context manager: the BatchNorm layers of some modules normalise with the batch's own
    statistics (training mode as it is) but leave their running statistics unchanged (momentum
    0, the batch count restored): ``gen_batchnorm="batch"``, skal's behaviour before
    :class:`RealDataStats`."""

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
