"""Data-parallel active learning on torch.distributed / Hugging Face Accelerate.

This module (the process group: joining it, sharding a pool's chunks, the collectives) and the
``Accelerated*`` estimators of :mod:`skal.estimators` are the only parts of skal that know about
torch.distributed and Accelerate. The strategies import this module, and it imports no
estimator. Under ``torchrun`` or ``accelerate launch`` (one process per
GPU, or several CPU processes with the gloo backend; one code path for one machine or many):

- every query strategy of :mod:`skal.query` scores only this process's *shard* of the pool (whole
  chunks of a :class:`skal.data.Pool`, dealt out round-robin), keeps its local top k, and the
  processes all-gather those candidates (``k`` per process, not the pool's ``n`` scores) and merge
  them. Every process returns the same global indices, equal to those of a one-process run: the
  chunk grid, the MC-dropout masks (one seed for the whole pool, so pass t is one weight draw on
  every process) and the tie-breaking keys (per position, see :mod:`skal.utils.topk`) do not depend
  on how the pool is split;
- the ``Accelerated*`` estimators of :mod:`skal.estimators` train data-parallel: each process takes its share of every
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

from .utils.topk import TopK

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
    """Tell whether this process runs in a group of more than one (joining it if launched so).

    Returns
    -------
    bool
        True under ``torchrun`` / ``accelerate launch`` with more than one process.
    """
    return init()


def rank():
    """Return this process's rank.

    Returns
    -------
    int
        The rank, 0 outside a distributed run.
    """
    return dist.get_rank() if is_distributed() else 0


def world_size():
    """Return the number of processes.

    Returns
    -------
    int
        The world size, 1 outside a distributed run.
    """
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
    """Return the chunks of a pool that this process scores.

    Parameters
    ----------
    n_chunks : int
        The number of chunks the pool is read in.
    mode : {"strided", "contiguous"}, default="strided"
        ``"strided"``: chunks r, r + W, r + 2W, ... (balanced even when the last chunk is short);
        ``"contiguous"``: one block of consecutive chunks per process.
    rank_, world_size_ : int or None
        Override this process's rank and the world size (for tests and planning).

    Returns
    -------
    range
        The indices of this process's chunks.
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
    """Give every process rank 0's ``values``.

    Parameters
    ----------
    values : list of int
        The values (uint64 allowed); those of the other ranks are replaced.

    Returns
    -------
    list of int
        Rank 0's values, on every process.
    """
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
    """Give every process rank 0's seeds.

    Parameters
    ----------
    *seeds : int, numpy.uint64 or None
        The seeds; those of the other ranks are replaced.

    Returns
    -------
    tuple
        Rank 0's seeds, on every process.
    """
    if not is_distributed():
        return seeds
    flat = broadcast_ints([v for s in seeds for v in ((0, 0) if s is None else (1, s))])
    out = tuple(None if flag == 0 else value for flag, value in zip(flat[::2], flat[1::2]))
    return tuple(np.uint64(v) if isinstance(s, np.uint64) and v is not None else v
                 for s, v in zip(seeds, out))


def broadcast_array(array):
    """Give every process rank 0's 1-D numeric ``array``.

    Parameters
    ----------
    array : ndarray of shape (m,)
        The array; the other ranks' may differ in length.

    Returns
    -------
    ndarray
        Rank 0's array, on every process.
    """
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
    """Concatenate every process's ``tensor``, in rank order.

    Parameters
    ----------
    tensor : torch.Tensor
        This process's part; sizes may differ along dim 0.

    Returns
    -------
    torch.Tensor
        The parts of every rank concatenated along dim 0, on the CPU.
    """
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
    """Assemble per-sample scores computed on shards into the full array on every process.

    Parameters
    ----------
    scores : array of shape (m,)
        This process's scores.
    positions : array of int, shape (m,)
        Their positions in the pool.
    n : int
        The size of the pool.

    Returns
    -------
    ndarray of float64, shape (n,)
        Every process's scores at their positions.
    """
    scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    positions = torch.as_tensor(np.asarray(positions, dtype=np.int64))
    all_scores = all_gather_variable(scores).numpy()
    all_positions = all_gather_variable(positions).numpy()
    full = np.full(int(n), np.nan)
    full[all_positions] = all_scores
    return full


def merge_topk(top):
    """Merge every process's streaming top-k into the global best, on every process.

    Each process contributes at most ``k`` candidates; the global top k is among them, and the
    merge uses the same (score, key) order, so the result is that of one process over the pool.

    Parameters
    ----------
    top : TopK
        This process's streaming top-k of its shard.

    Returns
    -------
    positions : ndarray of int64, shape (k,)
        Positions in the pool of the k best, best first.
    scores : ndarray of float64, shape (k,)
        Their scores.
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
    """All-reduce (mean) the gradients of ``module``'s parameters across processes.

    Parameters
    ----------
    module : torch.nn.Module
        The module whose ``.grad`` tensors are averaged in place.
    """
    if not is_distributed():
        return
    world = dist.get_world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def broadcast_module(module, parameters=True):
    """Give every process rank 0's parameters and buffers.

    Parameters
    ----------
    module : torch.nn.Module
        The module, changed in place.
    parameters : bool, default=True
        Also the parameters; False broadcasts only the buffers (e.g. BatchNorm's running
        statistics).
    """
    if not is_distributed():
        return
    tensors = (list(module.parameters()) if parameters else []) + list(module.buffers())
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)
