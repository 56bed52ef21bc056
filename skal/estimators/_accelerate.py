"""The data-parallel estimators: skal's classifiers and WAAL trained under ``torchrun`` /
``accelerate launch``.

How to run them, and how the strategies shard the pool, is described in :mod:`skal.distributed`
(the process-group helpers these estimators and the strategies use).
"""

import torch
from skorch.callbacks import LRScheduler
from skorch.hf import AccelerateMixin

from ..distributed import (
    average_gradients,
    broadcast_module,
    broadcast_seeds,
    rank,
    world_size,
)
from ._classifier import MCDropoutClassifier, ResNet18Classifier
from .waal._classifier import WAALClassifier

__all__ = [
    "AcceleratedMCDropoutClassifier",
    "AcceleratedResNet18Classifier",
    "AcceleratedWAALClassifier",
]


# ---------------------------------------------------------------------------- estimators
class _SkalAccelerateMixin(AccelerateMixin):
    """skorch's ``AccelerateMixin`` with what skal's estimators and strategies need on top.

    - Only *training* loaders are prepared (sharded across processes): prediction stays local to
      the process, because the strategies shard the pool themselves and skorch's
      ``gather_for_metrics`` would mix the processes' different chunks.
    - The fit seed is rank 0's, so ``random_state=None`` still gives every process the same
      initial weights and the same epoch order to shard.
    - After training every module gets rank 0's *buffers*: gradient averaging keeps the
      parameters in step, but BatchNorm's running statistics are each process's own, and every
      process must score its shard with the same model.
    """

    def _compute_device(self):
        return self.accelerator.device if self.device is None else self.device

    def initialize(self):
        """Initialise as skal does (data description, checks), then ``accelerator.prepare``.

        Returns
        -------
        self
            The initialised estimator.
        """
        MCDropoutClassifier.initialize(self)
        self._initialize_accelerator()
        return self

    def _fit_seed(self, continued):
        (seed,) = broadcast_seeds(super()._fit_seed(continued))
        return seed

    def _initialize_accelerator(self):
        """``accelerator.prepare`` the modules with trainable parameters, the optimizers and the
        LR schedulers. skorch's version also prepares the criterion, which DDP refuses on more
        than one process when it has no parameters (``nn.CrossEntropyLoss``)."""
        if self._wrapped_with_accelerator:
            return self
        prepare = self.accelerator.prepare
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module) and any(
                    p.requires_grad for p in module.parameters()):
                setattr(self, name + "_", prepare(module))
        for name in self._optimizers:
            optimizer = getattr(self, name + "_", None)
            if isinstance(optimizer, torch.optim.Optimizer):
                setattr(self, name + "_", prepare(optimizer))
        for _, callback in self.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.policy_ = prepare(callback.policy_)
        self._wrapped_with_accelerator = True
        return self

    def get_iterator(self, dataset, training=False):
        """Return skorch's loader; a training loader is prepared, so this process gets its share.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            The data.
        training : bool, default=False
            Whether it is the training loader (prediction stays local to the process).

        Returns
        -------
        iterable
            The batches.
        """
        iterator = super(AccelerateMixin, self).get_iterator(dataset, training=training)
        if training and isinstance(iterator, torch.utils.data.DataLoader):
            iterator = self.accelerator.prepare(iterator)  # this process's share of each epoch
        return iterator

    def evaluation_step(self, batch, training=False):
        """Run skorch's evaluation step on this process only (no ``gather_for_metrics``).

        Parameters
        ----------
        batch : tuple
            The batch ``(X, y)``.
        training : bool, default=False
            Whether the module runs in training mode.

        Returns
        -------
        torch.Tensor
            The module's output for the batch.
        """
        return super(AccelerateMixin, self).evaluation_step(batch, training=training)

    _accelerator_scales_losses = True  # False where skal's train_step scales them itself

    def _validate_params(self):
        super()._validate_params()
        if self.unwrap_after_train is not True:
            raise ValueError(
                f"The 'unwrap_after_train' parameter of {type(self).__name__} must be True: skal "
                "scores with the unwrapped network (MC dropout samples its head, and each process "
                f"scores its own chunks). Got {self.unwrap_after_train!r} instead."
            )
        if self._accelerator_scales_losses and self.mixed_precision == "fp16" and (
                self.accelerator.mixed_precision != "fp16"):
            raise ValueError(
                f"{type(self).__name__}(mixed_precision='fp16') trains under Accelerate, which "
                "scales fp16 losses itself: pass accelerate.Accelerator(mixed_precision='fp16') "
                "instead (bf16 needs no loss scaling)."
            )

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Give every module rank 0's buffers after training (BatchNorm's running statistics).

        Parameters
        ----------
        net : skorch.NeuralNet
            The net (this estimator).
        X : array-like or None, default=None
            The training data.
        y : array-like or None, default=None
            The training targets.
        **kwargs : dict
            Other arguments skorch passes to the hook.
        """
        super().on_train_end(net, X=X, y=y, **kwargs)
        for name in self._modules:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module):
                broadcast_module(module, parameters=False)


class AcceleratedMCDropoutClassifier(_SkalAccelerateMixin, MCDropoutClassifier):
    """:class:`skal.MCDropoutClassifier` trained data-parallel with Hugging Face Accelerate.

    Training loaders are sharded across the processes and gradients averaged; the fit seed is
    rank 0's, and after training every module gets rank 0's buffers, so every process scores its
    shard of the pool with the same model.

    Parameters
    ----------
    *args
        Positional parameters of the MCDropoutClassifier (its ``module`` first, where it takes one).
    accelerator : accelerate.Accelerator
        The accelerator of this process (``Accelerator()`` under ``torchrun`` or
        ``accelerate launch``).
    device : str, torch.device or None, default=None
        None: the accelerator's device.
    unwrap_after_train : True, default=True
        Must be True: skal scores with the unwrapped network.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        The default prints the training log on the main process only (skorch's).
    **kwargs
        Every other parameter of the MCDropoutClassifier.

    See Also
    --------
    AcceleratedResNet18Classifier : The same for a ResNet18.
    skal.query : The strategies, which shard the pool across processes themselves.

    Notes
    -----
    ``batch_size`` is per process: each step trains on ``world_size * batch_size`` samples, and
    an epoch takes ``1 / world_size`` of the steps. Gradients are averaged by DDP. Prediction
    (``predict_proba``, ``sample_proba``) runs on the calling process only. Unlike the other
    skal estimators, an accelerated one cannot be pickled while wrapped (a skorch limitation).

    Examples
    --------
    Run with ``torchrun --nproc_per_node 2 loop.py`` (or ``accelerate launch loop.py``)::

        from accelerate import Accelerator
        from skal import bald
        from skal.estimators import AcceleratedMCDropoutClassifier

        clf = AcceleratedMCDropoutClassifier(my_module, accelerator=Accelerator(), random_state=0)
        clf.fit(X_labelled, y_labelled)  # data-parallel
        idx, _ = bald(clf, X_pool_memmap, n_instances=100, random_state=0)  # same on all ranks
    """


class AcceleratedResNet18Classifier(_SkalAccelerateMixin, ResNet18Classifier):
    """:class:`skal.ResNet18Classifier` trained data-parallel with Hugging Face Accelerate.

    As :class:`AcceleratedMCDropoutClassifier`, with the ResNet18 built from the data.

    Parameters
    ----------
    *args
        Positional parameters of the ResNet18Classifier (its ``module`` first, where it takes one).
    accelerator : accelerate.Accelerator
        The accelerator of this process (``Accelerator()`` under ``torchrun`` or
        ``accelerate launch``).
    device : str, torch.device or None, default=None
        None: the accelerator's device.
    unwrap_after_train : True, default=True
        Must be True: skal scores with the unwrapped network.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        The default prints the training log on the main process only (skorch's).
    **kwargs
        Every other parameter of the ResNet18Classifier.

    See Also
    --------
    AcceleratedMCDropoutClassifier : The same for any network.
    skal.query : The strategies, which shard the pool across processes themselves.

    Notes
    -----
    ``batch_size`` is per process: each step trains on ``world_size * batch_size`` samples, and
    an epoch takes ``1 / world_size`` of the steps. Gradients are averaged by DDP. Prediction
    (``predict_proba``, ``sample_proba``) runs on the calling process only. Unlike the other
    skal estimators, an accelerated one cannot be pickled while wrapped (a skorch limitation).

    Examples
    --------
    Run with ``torchrun --nproc_per_node 2 loop.py`` (or ``accelerate launch loop.py``)::

        from accelerate import Accelerator
        from skal import bald
        from skal.estimators import AcceleratedResNet18Classifier

        clf = AcceleratedResNet18Classifier(accelerator=Accelerator(), random_state=0)
        clf.fit(X_labelled, y_labelled)  # data-parallel
        idx, _ = bald(clf, X_pool_memmap, n_instances=100, random_state=0)  # same on all ranks
    """


class AcceleratedWAALClassifier(_SkalAccelerateMixin, WAALClassifier):
    """:class:`skal.WAALClassifier` whose min-max training runs data-parallel.

    WAAL's step calls the feature extractor, the head and the critic separately and steps two
    optimizers on two losses, which DDP's one-forward-one-backward contract does not cover. So
    the networks are not DDP-wrapped: they start from rank 0's weights, every process steps on
    its own ``batch_size`` labelled and unlabelled rows of each global batch, and the gradients of
    both players are all-reduced (averaged) after each backward pass, before each optimizer step
    -- what DDP would do. Mixed precision comes from ``mixed_precision`` (the accelerator's
    must be ``"no"``).

    Parameters
    ----------
    *args
        Positional parameters of the WAALClassifier (its ``module`` first, where it takes one).
    accelerator : accelerate.Accelerator
        The accelerator of this process (``Accelerator()`` under ``torchrun`` or
        ``accelerate launch``).
    device : str, torch.device or None, default=None
        None: the accelerator's device.
    unwrap_after_train : True, default=True
        Must be True: skal scores with the unwrapped network.
    callbacks__print_log__sink : "auto" or callable, default="auto"
        The default prints the training log on the main process only (skorch's).
    **kwargs
        Every other parameter of the WAALClassifier.

    See Also
    --------
    AcceleratedResNet18Classifier : The same for a ResNet18 trained on labels.
    skal.query : The strategies, which shard the pool across processes themselves.

    Examples
    --------
    Run with ``torchrun --nproc_per_node 2 loop.py`` (or ``accelerate launch loop.py``)::

        from accelerate import Accelerator
        from skal import waal_uncertainty_diversity
        from skal.estimators import AcceleratedWAALClassifier

        clf = AcceleratedWAALClassifier(accelerator=Accelerator(), random_state=0)
        clf.fit(X_labelled, y_labelled, X_unlabeled=X_pool_memmap)  # data-parallel
        idx, _ = waal_uncertainty_diversity(clf, X_pool_memmap, n_instances=100, random_state=0)  # same on all ranks
    """

    _accelerator_scales_losses = False

    def _initialize_accelerator(self):
        for name in self._modules:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module):
                module.to(self._compute_device())
                broadcast_module(module)
        return self

    def _validate_params(self):
        super()._validate_params()
        if self.accelerator.mixed_precision not in (None, "no"):
            raise ValueError(
                f"{type(self).__name__} does not use the accelerator's mixed precision "
                f"({self.accelerator.mixed_precision!r}): pass mixed_precision='bf16' or 'fp16' "
                "to the classifier and leave the Accelerator's at 'no'."
            )

    def get_iterator(self, dataset, training=False):
        """Return WAAL's loader; each process draws its own rows of every global batch.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            The data.
        training : bool, default=False
            Whether it is the training loader (WAAL's paired labelled/unlabelled batches).

        Returns
        -------
        iterable
            The batches.
        """
        iterator = super().get_iterator(dataset, training=training)
        if training and hasattr(iterator, "world_size"):  # WAAL's paired batches
            iterator.rank, iterator.world_size = rank(), world_size()
        return iterator

    def _sync_gradients(self, module):
        average_gradients(module)
