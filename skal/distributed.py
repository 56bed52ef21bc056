"""Data-parallel active learning on torch.distributed / Hugging Face Accelerate.

This is the one module of skal that knows about torch.distributed and Accelerate. Under
``torchrun`` or ``accelerate launch`` (one process per GPU, or several CPU processes with the gloo
backend; one code path for one machine or many):

- every query strategy of :mod:`skal.query` scores only this process's *shard* of the pool (whole
  chunks of a :class:`skal._pool.Pool`, dealt out round-robin), keeps its local top k, and the
  processes all-gather those candidates (``k`` per process, not the pool's ``n`` scores) and merge
  them. Every process returns the same global indices, equal to those of a one-process run: the
  chunk grid, the MC-dropout masks (one seed for the whole pool, so pass t is one weight draw on
  every process) and the tie-breaking keys (per position, see :mod:`skal._topk`) do not depend
  on how the pool is split;
- the ``Accelerated*`` estimators below train data-parallel: each process takes its share of every
  epoch and gradients are averaged across processes (DDP through skorch's ``AccelerateMixin`` for
  the classifiers; an explicit all-reduce for WAAL's two-player step).

Seeds are agreed on (rank 0 draws, everyone uses its values), so ``random_state=None`` is safe too.
Nothing here starts processes or opens sockets: launching is ``torchrun``'s / ``accelerate``'s job::

    torchrun --nproc_per_node 8 my_loop.py          # or: accelerate launch my_loop.py

End such a script with :func:`shutdown`: a process that exits with its process group alive can
abort in torch's C++ teardown (gloo: "terminate called without an active exception").

Outside such a launch every function here is a no-op for one process.
"""

import os

import numpy as np
import torch
import torch.distributed as dist
from skorch.callbacks import LRScheduler
from skorch.hf import AccelerateMixin

from ._topk import TopK
from .classifier import MCDropoutClassifier, ResNet18Classifier
from .waal import WAALClassifier

__all__ = [
    "init",
    "is_distributed",
    "rank",
    "world_size",
    "barrier",
    "shutdown",
    "shard_chunks",
    "broadcast_ints",
    "broadcast_seeds",
    "broadcast_array",
    "all_gather_variable",
    "gather_scores",
    "merge_topk",
    "average_gradients",
    "broadcast_module",
    "AcceleratedMCDropoutClassifier",
    "AcceleratedResNet18Classifier",
    "AcceleratedWAALClassifier",
]


# ---------------------------------------------------------------------------- process group
def _launched_world_size():
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init():
    """Join the process group of a ``torchrun`` / ``accelerate launch`` run, once.

    Accelerate's ``PartialState`` does it when accelerate is installed (it picks nccl on GPUs,
    gloo on CPUs and sets this process's GPU); otherwise torch's ``init_process_group`` with the
    launcher's environment. Called by the strategies when needed; creating an
    ``accelerate.Accelerator`` first is equivalent.

    Returns
    -------
    bool
        Whether this process is part of a group of more than one.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if _launched_world_size() <= 1 or not dist.is_available():
        return False
    try:
        from accelerate import PartialState
    except ImportError:  # pragma: no cover - accelerate is the documented way
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    else:
        PartialState(cpu=not torch.cuda.is_available())
    return dist.get_world_size() > 1


def is_distributed():
    """Whether this process runs in a group of more than one (joining it if launched so)."""
    return init()


def rank():
    """This process's rank (0 outside a distributed run)."""
    return dist.get_rank() if is_distributed() else 0


def world_size():
    """The number of processes (1 outside a distributed run)."""
    return dist.get_world_size() if is_distributed() else 1


def _device():
    """The device collectives run on: this process's GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier():
    """Wait until every process gets here (a no-op for one process)."""
    if is_distributed():
        dist.barrier()


def shutdown():
    """Leave the process group at the end of a distributed script (a barrier, then destroy it).

    Call it once per process after the last collective (the last query or fit). Without it the
    group is torn down while the interpreter exits, and with gloo a process can then abort
    ("terminate called without an active exception"): its C++ threads outlive the interpreter.
    The barrier comes first, so that no process leaves while another is still in a collective.
    A no-op when no group was joined; no distributed query or fit works after it.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------------------- sharding
def shard_chunks(n_chunks, mode="strided", *, rank_=None, world_size_=None):
    """The chunks of a pool that this process scores.

    Parameters
    ----------
    n_chunks : int
    mode : {"strided", "contiguous"}, default="strided"
        ``"strided"``: chunks r, r + W, r + 2W, ... (balanced even when the last chunk is short);
        ``"contiguous"``: one block of consecutive chunks per process.
    rank_, world_size_ : int or None
        Override this process's rank and the world size (for tests and planning).

    Returns
    -------
    range
    """
    r = rank() if rank_ is None else int(rank_)
    w = world_size() if world_size_ is None else int(world_size_)
    if mode == "strided":
        return range(r, n_chunks, w)
    if mode == "contiguous":
        per, extra = divmod(n_chunks, w)
        start = r * per + min(r, extra)
        return range(start, start + per + (r < extra))
    raise ValueError(
        f"The 'mode' parameter must be 'strided' or 'contiguous'. Got {mode!r} instead."
    )


# ---------------------------------------------------------------------------- collectives
def broadcast_ints(values):
    """Rank 0's ``values`` (a list of ints, uint64 allowed) on every process."""
    values = [int(v) for v in values]
    if not is_distributed() or not values:
        return values
    # uint64 seeds travel as their int64 bit pattern
    as_int64 = np.array([v & (2**64 - 1) for v in values], dtype=np.uint64).view(np.int64)
    t = torch.from_numpy(as_int64.copy()).to(_device())
    dist.broadcast(t, src=0)
    back = t.cpu().numpy().view(np.uint64)
    return [int(b) if v >= 0 else int(b.view(np.int64)) for b, v in zip(back, values)]


def broadcast_seeds(*seeds):
    """Rank 0's seeds (ints, uint64 or None) on every process, as a tuple."""
    if not is_distributed():
        return seeds
    flat = broadcast_ints([v for s in seeds for v in ((0, 0) if s is None else (1, s))])
    out = tuple(None if flag == 0 else value for flag, value in zip(flat[::2], flat[1::2]))
    return tuple(np.uint64(v) if isinstance(s, np.uint64) and v is not None else v
                 for s, v in zip(seeds, out))


def broadcast_array(array):
    """Rank 0's 1-D numeric ``array`` on every process (the others' may differ in length)."""
    array = np.asarray(array)
    if not is_distributed():
        return array
    t = torch.as_tensor(array.copy()).to(_device())
    n = torch.tensor([len(t)], device=_device())
    dist.broadcast(n, src=0)
    buf = t if len(t) == int(n) else torch.empty(int(n), dtype=t.dtype, device=_device())
    dist.broadcast(buf, src=0)
    return buf.cpu().numpy()


def all_gather_variable(tensor):
    """Concatenate every process's ``tensor`` (sizes may differ along dim 0), in rank order."""
    tensor = torch.as_tensor(tensor)
    if not is_distributed():
        return tensor
    device = _device()
    tensor = tensor.to(device)
    size = torch.tensor([tensor.shape[0]], device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    padded = torch.zeros((max(sizes),) + tuple(tensor.shape[1:]), dtype=tensor.dtype,
                         device=device)
    padded[: tensor.shape[0]] = tensor
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[:s] for o, s in zip(out, sizes)]).cpu()


def gather_scores(scores, positions, n):
    """Assemble per-sample scores computed on shards into the full ``(n,)`` array on every process.

    Parameters
    ----------
    scores : array of shape (m,)
        This process's scores.
    positions : array of int, shape (m,)
        Their global positions in the pool.
    n : int
        Pool size.

    Returns
    -------
    ndarray of float64, shape (n,)
        NaN where no process gave a score.
    """
    scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    positions = torch.as_tensor(np.asarray(positions, dtype=np.int64))
    all_scores = all_gather_variable(scores).numpy()
    all_positions = all_gather_variable(positions).numpy()
    full = np.full(int(n), np.nan)
    full[all_positions] = all_scores
    return full


def merge_topk(top):
    """Merge every process's :class:`~skal._topk.TopK` into the global best, on every process.

    Each process contributes at most ``k`` candidates; the global top k is among them, and the
    merge uses the same (score, key) order, so the result is that of one process over the pool.

    Returns
    -------
    positions : ndarray of int64, shape (k,)
    scores : ndarray of float64, shape (k,)
    """
    if not is_distributed():
        return top.result()
    positions, scores = top.result()
    all_positions = all_gather_variable(torch.from_numpy(positions)).numpy()
    all_scores = all_gather_variable(torch.from_numpy(scores)).numpy()
    merged = TopK(top.k, top.seed)
    merged.push(all_scores, all_positions)
    return merged.result()


def average_gradients(module):
    """All-reduce (mean) the gradients of ``module``'s parameters across processes."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def broadcast_module(module, parameters=True):
    """Give every process rank 0's parameters (unless ``parameters=False``) and buffers (e.g.
    BatchNorm's running statistics)."""
    if not is_distributed():
        return
    tensors = (list(module.parameters()) if parameters else []) + list(module.buffers())
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


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
        """skal's initialisation (data description, checks), then Accelerate's ``prepare``."""
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
        iterator = super(AccelerateMixin, self).get_iterator(dataset, training=training)
        if training and isinstance(iterator, torch.utils.data.DataLoader):
            iterator = self.accelerator.prepare(iterator)  # this process's share of each epoch
        return iterator

    def evaluation_step(self, batch, training=False):
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
        super().on_train_end(net, X=X, y=y, **kwargs)
        for name in self._modules:
            module = getattr(self, name + "_", None)
            if isinstance(module, torch.nn.Module):
                broadcast_module(module, parameters=False)


class AcceleratedMCDropoutClassifier(_SkalAccelerateMixin, MCDropoutClassifier):
    """:class:`skal.MCDropoutClassifier` trained data-parallel with Hugging Face Accelerate.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        E.g. ``Accelerator()`` under ``accelerate launch`` / ``torchrun`` (``cpu=True`` for CPU
        processes, ``mixed_precision="bf16"`` for autocast in training). Leave ``device`` at None:
        the accelerator places the network.
    unwrap_after_train : True
        Unwrap the DDP module after training: skal's scoring needs the plain network (MC
        dropout samples its head; each process scores its own chunks), so it must stay True.
    **kwargs
        Every :class:`skal.MCDropoutClassifier` parameter.

    Notes
    -----
    ``batch_size`` is per process: each step trains on ``world_size * batch_size`` samples, and
    an epoch takes ``1 / world_size`` of the steps. Gradients are averaged by DDP. Prediction
    (``predict_proba``, ``sample_proba``) runs on the calling process only. Unlike the other
    skal estimators, an accelerated one cannot be pickled while wrapped (a skorch limitation).
    """


class AcceleratedResNet18Classifier(_SkalAccelerateMixin, ResNet18Classifier):
    """:class:`skal.ResNet18Classifier` trained data-parallel with Hugging Face Accelerate.

    Parameters as :class:`AcceleratedMCDropoutClassifier` (``accelerator=``) plus every
    :class:`skal.ResNet18Classifier` parameter.

    Examples
    --------
    Run with ``torchrun --nproc_per_node 2 loop.py`` (or ``accelerate launch loop.py``)::

        from accelerate import Accelerator
        from skal import bald
        from skal.distributed import AcceleratedResNet18Classifier

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

    Parameters as :class:`AcceleratedMCDropoutClassifier` (``accelerator=``) plus every
    :class:`skal.WAALClassifier` parameter.
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
        iterator = super().get_iterator(dataset, training=training)
        if training and hasattr(iterator, "world_size"):  # WAAL's paired batches
            iterator.rank, iterator.world_size = rank(), world_size()
        return iterator

    def _sync_gradients(self, module):
        average_gradients(module)
