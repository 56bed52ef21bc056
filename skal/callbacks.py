"""skorch callbacks of skal: divergence detection, a learning-rate schedule at fractions of the
training length, and BatchNorm statistics re-estimated after training."""

import math

import torch
from skorch.callbacks import Callback
from torch import nn

from .exceptions import DivergenceError
from .utils.skorch_compat import module_names

__all__ = ["DivergenceCheck", "MilestoneLR", "RecalibrateBatchNorm"]


class DivergenceCheck(Callback):
    """Stop training with :class:`skal.exceptions.DivergenceError` when it diverges.

    Every skal classifier has one as its default callback ``divergence``. Training has diverged
    when a training batch's loss is NaN or infinite, when an epoch's mean training loss exceeds
    ``factor`` times the larger of the fit's first batch loss and ``log(n_classes)`` (the
    cross-entropy of a uniform guess), or when a weight became NaN or infinite. The error names the
    estimator and the parameter to lower. ``callbacks__divergence=None`` turns the check off.

    Parameters
    ----------
    factor : float, default=100
        How many times the reference loss an epoch's mean loss may reach. Measured on 300 digits
        (6 epochs), the epoch means of healthy runs stayed below their first batch loss; a
        ResNet18 with Adam at lr=10 reached 420 times it (epoch mean 1,215, chance accuracy),
        at lr=1e3 3.5 million times.

    See Also
    --------
    skal.exceptions.DivergenceError : The error it raises.
    RecalibrateBatchNorm : Another callback of skal's classifiers.

    Examples
    --------
    >>> from skal import ResNet18Classifier
    >>> from skal.callbacks import DivergenceCheck
    >>> clf = ResNet18Classifier(width=2, classes=list(range(10)), image_shape=(1, 8, 8),
    ...                          callbacks__divergence=DivergenceCheck(factor=10.0))
    >>> dict(clf.initialize().callbacks_)["divergence"].factor
    10.0
    """

    def __init__(self, factor=100.0):
        self.factor = factor

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Forget the previous fit's first batch loss.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        X : array-like or None, default=None
            The training data.
        y : array-like or None, default=None
            The training targets.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).
        """
        self.first_loss_ = None

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        """Refuse a training batch whose loss is not finite; remember the fit's first loss.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        batch : tuple or None, default=None
            The batch (unused).
        training : bool or None, default=None
            Whether it was a training batch; others are not checked.
        loss : torch.Tensor, float or None, default=None
            The batch's loss.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).

        Raises
        ------
        skal.exceptions.DivergenceError
            If the loss is NaN or infinite.
        """
        if not training or loss is None:
            return
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            raise _divergence(net, f"the loss of a training batch is {value}")
        if self.first_loss_ is None:
            self.first_loss_ = value

    def on_epoch_end(self, net, **kwargs):
        """Refuse an epoch whose mean loss exploded or whose weights are not finite.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).

        Raises
        ------
        skal.exceptions.DivergenceError
            If the epoch's mean training loss exceeds ``factor`` times the reference, or a
            weight of one of the net's modules is NaN or infinite.
        """
        row = net.history[-1]
        loss = row.get("train_loss")
        if loss is not None and self.first_loss_ is not None:
            n_classes = len(getattr(net, "classes_", ())) or 2
            reference = max(self.first_loss_, math.log(max(n_classes, 2)))
            if not loss <= self.factor * reference:
                raise _divergence(
                    net,
                    f"the mean training loss of epoch {row['epoch']} is {loss:.4g}, more than "
                    f"{self.factor:g} times the reference {reference:.4g} (the first batch's "
                    f"loss or log(n_classes), whichever is larger)",
                )
        for name in module_names(net):
            module = getattr(net, name + "_", None)
            if not isinstance(module, nn.Module):
                continue
            if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                raise _divergence(
                    net, f"the weights of {name}_ became NaN or infinite (epoch {row['epoch']})"
                )


def _divergence(net, what):
    """The DivergenceError of ``net``; its ``summary`` is the message without the advice."""
    exc = DivergenceError(_diverged(net, what))
    exc.summary = f"{type(net).__name__} training diverged: {what}"
    return exc


def _diverged(net, what):
    hint = getattr(net, "_divergence_hint", None)
    hint = hint() if callable(hint) else f"Lower lr (now {getattr(net, 'lr', None)!r})"
    return f"{type(net).__name__} training diverged: {what}. {hint}, or check the input scale."


class MilestoneLR(Callback):
    """Multiply learning rates by ``decay`` at fractions of ``max_epochs`` (a step schedule).

    At the start of epoch ``e`` (0-based) of a ``fit`` / ``partial_fit`` call, the learning rate of
    every parameter group of the named optimizers is set to ``base * decay ** k``, where ``k`` is
    the number of milestones ``m`` with ``e >= ceil(m * max_epochs)``. ``base`` is the group's
    learning rate when training starts; a ``partial_fit`` restarts the schedule from the same
    ``base`` unless the learning rate was changed (e.g. by ``set_params``) since the schedule last
    set it. All its state lives in this callback (the optimizers' ``param_groups`` hold only the
    learning rate itself).

    It is WAAL's schedule (x0.1 at 50 % and at 75 % of the epochs, for both optimizers; see
    :class:`skal.WAALClassifier`'s ``lr_milestones``), usable with any skorch net. Unlike
    ``skorch.callbacks.LRScheduler(MultiStepLR)``, the milestones follow ``max_epochs`` and one
    callback schedules several optimizers.

    Parameters
    ----------
    milestones : sequence of float in (0, 1] or None, default=(0.5, 0.75)
        Fractions of ``max_epochs``; ``None`` or ``()`` keeps the learning rate constant.
    decay : float, default=0.1
        The factor applied at each milestone.
    optimizers : sequence of str, default=("optimizer",)
        The skorch names of the optimizers to schedule (``"optimizer"`` is ``net.optimizer_``,
        ``"critic_optimizer"`` is ``net.critic_optimizer_``).
    event_name : str or None, default="lr"
        ``history`` key recording, every epoch, the learning rate of the first parameter group
        of the first optimizer; ``None`` records nothing.

    Attributes
    ----------
    base_lrs_ : dict of str to list of float
        The learning rate each parameter group started from.
    epoch_ : int
        Epochs run since training started (the ``e`` above, for the next epoch).

    See Also
    --------
    skal.WAALClassifier : Schedules both its optimizers with it (``lr_milestones``).

    Examples
    --------
    >>> [MilestoneLR.factor(e, 8, (0.5, 0.75), 0.1) for e in range(8)]
    [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]
    """

    def __init__(self, milestones=(0.5, 0.75), decay=0.1, optimizers=("optimizer",),
                 event_name="lr"):
        self.milestones = milestones
        self.decay = decay
        self.optimizers = optimizers
        self.event_name = event_name

    @staticmethod
    def factor(epoch, max_epochs, milestones, decay):
        """Compute the learning-rate factor of an epoch, ``decay ** k``.

        Parameters
        ----------
        epoch : int
            The epoch, 0-based.
        max_epochs : int
            The epochs of the fit.
        milestones : sequence of float or None
            Fractions of ``max_epochs``.
        decay : float
            The factor applied at each milestone.

        Returns
        -------
        float
            ``decay ** k``, with k the number of milestones the epoch has reached.
        """
        # 1e-9: 0.5 * 4 must give epoch 2, not 3 after rounding up a float just above 2
        starts = [math.ceil(m * max_epochs - 1e-9) for m in milestones or ()]
        return float(decay) ** sum(epoch >= start for start in starts)

    def initialize(self):
        """Reset the schedule's state.

        Returns
        -------
        MilestoneLR
            The callback itself.
        """
        self.base_lrs_, self._scheduled = {}, {}
        self.epoch_ = 0
        return self

    def _groups(self, net):
        return {name: getattr(net, name + "_").param_groups for name in self.optimizers}

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Restart the schedule; take the base learning rates unless the schedule set them.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        X : array-like or None, default=None
            The training data.
        y : array-like or None, default=None
            The training targets.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).
        """
        if not hasattr(self, "base_lrs_"):
            self.initialize()
        self.epoch_ = 0
        for name, groups in self._groups(net).items():
            lrs = [group["lr"] for group in groups]
            # a fresh optimizer, or a learning rate changed since the schedule last set it
            if self._scheduled.get(name) != lrs:
                self.base_lrs_[name] = lrs

    def on_epoch_begin(self, net, **kwargs):
        """Set the epoch's learning rates and record the first one in the history.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).
        """
        factor = self.factor(self.epoch_, net.max_epochs, self.milestones, self.decay)
        for name, groups in self._groups(net).items():
            for group, base in zip(groups, self.base_lrs_[name]):
                group["lr"] = base * factor
            self._scheduled[name] = [group["lr"] for group in groups]
        if self.event_name is not None and self.optimizers:
            net.history.record(self.event_name, self._scheduled[self.optimizers[0]][0])
        self.epoch_ += 1


class RecalibrateBatchNorm(Callback):
    """Re-estimate the BatchNorm running statistics of ``module_`` on the training data.

    After training: at the end of ``fit`` / ``partial_fit``, every BatchNorm layer of the net's module forgets
    its running mean and variance and re-estimates them, as an average over the batches of one
    pass over the training data ``X`` (in ``batch_size`` batches, no ``train_transform``, no
    dropout: the module runs in eval mode except BatchNorm; a last batch of one row is left
    out). The weights do not change; the
    random states are left as they were. A module without BatchNorm is left alone.

    Why: the running statistics are an exponential average over the last few training batches
    of *changing* weights. When the weights move fast, or when the loss has terms the running
    statistics never see (:class:`skal.BGADLClassifier`'s generated images are normalised
    with them), they can fall out of step with the weights and the predictions collapse while
    the training loss is low. ``benchmarks/bgadl_trace.py`` shows such a collapse (15 % test
    accuracy after the last epoch, 62 % with the statistics re-estimated) and a plain
    ResNet18 where re-estimating changes nothing (67.00 % and 66.95 %).
    :class:`skal.BGADLClassifier` applies it with ``recalibrate_bn=True``, and by default
    (``"auto"``) whenever the generated terms are in its loss (``gen_weight > 0``).

    Parameters
    ----------
    module : str, default="module"
        The skorch name of the module to re-estimate (``"module"`` is ``net.module_``).

    See Also
    --------
    skal.BGADLClassifier : Uses it with ``recalibrate_bn``.
    DivergenceCheck : Another callback of skal's classifiers.

    Examples
    --------
    >>> from skal import ResNet18Classifier
    >>> from skal.callbacks import RecalibrateBatchNorm
    >>> clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0,
    ...                          callbacks=[("recalibrate_bn", RecalibrateBatchNorm())])
    """

    def __init__(self, module="module"):
        self.module = module

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Re-estimate the statistics on the training data ``X``.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        X : array-like or None, default=None
            The training data.
        y : array-like or None, default=None
            The training targets.
        **kwargs : dict
            Other arguments skorch passes to the hook (ignored).
        """
        if X is not None:
            recalibrate_batchnorm(net, X, module=self.module)


def recalibrate_batchnorm(net, X, module="module"):
    """Re-estimate the BatchNorm running statistics of ``net``'s ``module`` on ``X`` (see
    :class:`RecalibrateBatchNorm`); returns the number of BatchNorm layers re-estimated."""
    torch_module = getattr(net, module + "_", None)
    if not isinstance(torch_module, nn.Module):
        raise ValueError(
            f"RecalibrateBatchNorm's module={module!r} is not a module of "
            f"{type(net).__name__}: expected one of {module_names(net)}."
        )
    layers = [m for m in torch_module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    was_training = torch_module.training
    momenta = [m.momentum for m in layers]
    iterator = net.get_iterator(net.get_dataset(X), training=False)
    try:
        torch_module.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative average over the batches
            m.train()
        # the DataLoader draws its base seed from torch's generator: leave it as it was
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for batch in iterator:
                Xi = batch[0] if isinstance(batch, (tuple, list)) else batch
                if len(Xi) > 1:  # a 1-row batch has no variance (BatchNorm1d refuses it)
                    net.infer(Xi)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        torch_module.train(was_training)
    return len(layers)
