"""Data-parallel training's two collectives on parameters: ``broadcast_parameters``
(every rank starts from root's values) and ``allreduce_gradients`` (every rank steps
with the sum, or the average, of all ranks' gradients), as Horovod's
``broadcast_parameters`` and DistributedDataParallel's gradient all-reduce.

Arrays travel packed into flat buffers of one dtype, at most ``bucket_cap_mb`` each
(DDP's default, 25 MB): a step makes a few large MPI calls, not one per parameter.
Before anything moves, the ranks compare their parameters' shapes and dtypes; ranks
that disagree all raise the same ValueError, rather than wait for one another.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._params import is_single_param
from ..flat import FlatParameter, FlatParameters
from ._mpi import MPI, agree, collectively, world

__all__ = ["broadcast_parameters", "allreduce_gradients", "parameters_of"]

#: DDP's default bucket size (``bucket_cap_mb``).
BUCKET_CAP_MB = 25.0
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def parameters_of(params: Any) -> List[Any]:
    """The parameters in ``params``: an optimizer (its param groups), param group
    dicts, ``(name, parameter)`` pairs, parameters or ndarrays, in order."""
    if hasattr(params, "param_groups"):
        params = params.param_groups
    if is_single_param(params):
        raise TypeError("params must be an iterable of parameters (or an optimizer), got a single parameter")
    out: List[Any] = []
    for item in params:
        if isinstance(item, dict):
            out.extend(item["params"])
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item[1])
        else:
            out.append(item)
    return out


def _data(p: Any, i: int) -> np.ndarray:
    data = p if isinstance(p, np.ndarray) else getattr(p, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"parameter {i} must be an ndarray or have an ndarray .data, got {type(p).__name__}")
    if data.dtype not in _DTYPES:
        raise TypeError(f"parameter {i} has dtype {data.dtype}; float32 and float64 travel over MPI")
    return data


def _layout(arrays: Sequence[Optional[np.ndarray]]) -> List[Tuple[Tuple[int, ...], str]]:
    return [(a.shape, a.dtype.str) for a in arrays if a is not None]


def _describe(layout: Sequence[Tuple[Tuple[int, ...], str]]) -> str:
    shown = ", ".join(f"{s} {np.dtype(d).name}" for s, d in layout[:4])
    more = f", ... ({len(layout)} in all)" if len(layout) > 4 else ""
    return f"{len(layout)} arrays [{shown}{more}]"


def _buckets(arrays: Sequence[np.ndarray], cap_bytes: int) -> Iterator[List[int]]:
    """Indices of ``arrays`` cut into runs of one dtype of at most ``cap_bytes`` each
    (an array larger than that alone), each dtype's runs in the arrays' order."""
    for dtype in dict.fromkeys(a.dtype for a in arrays):
        run: List[int] = []
        size = 0
        for i, a in enumerate(arrays):
            if a.dtype != dtype:
                continue
            if run and size + a.nbytes > cap_bytes:
                yield run
                run, size = [], 0
            run.append(i)
            size += a.nbytes
        if run:
            yield run


#: Flat buffers kept from one call to the next, by (dtype, length): a fresh 16 MB
#: buffer costs its first touch of every page (page faults) on each call.
_BUFFERS: "OrderedDict[Tuple[str, int], np.ndarray]" = OrderedDict()
_KEPT = 8
_LOCK = threading.Lock()


def _buffer(dtype: np.dtype, size: int) -> np.ndarray:
    """A flat buffer of ``size`` elements, reused between calls (the caller is done
    with the previous one of that size: the collectives run one at a time)."""
    key = (dtype.str, size)
    with _LOCK:
        buffer = _BUFFERS.pop(key, None)
        if buffer is None:
            buffer = np.empty(size, dtype)
        _BUFFERS[key] = buffer
        while len(_BUFFERS) > _KEPT:
            _BUFFERS.popitem(last=False)
    return buffer


def _pack(arrays: Sequence[np.ndarray], idx: Sequence[int]) -> np.ndarray:
    """A flat buffer holding ``arrays[i]`` for ``i`` in ``idx``, one after the other
    (one Rust call)."""
    parts = [arrays[i] for i in idx]
    buffer = _buffer(parts[0].dtype, sum(a.size for a in parts))
    _core.bucket_pack(parts, buffer)
    return buffer


def _unpack(buffer: np.ndarray, arrays: Sequence[np.ndarray], idx: Sequence[int], divisor: float = 1.0) -> None:
    """``buffer`` back into ``arrays[i]`` for ``i`` in ``idx``, divided by ``divisor``
    (one Rust call)."""
    _core.bucket_unpack_(buffer, [arrays[i] for i in idx], float(divisor))


def _cap_bytes(bucket_cap_mb: float) -> int:
    if not (isinstance(bucket_cap_mb, (int, float)) and bucket_cap_mb > 0):
        raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
    return max(1, int(bucket_cap_mb * 1024 * 1024))


def broadcast_parameters(params: Any, root: int = 0, comm: Any = None, bucket_cap_mb: float = BUCKET_CAP_MB) -> None:
    """Every rank's parameters become ``root``'s, in place (Horovod's
    ``broadcast_parameters``): call it once after building the model, so that every
    rank starts from the same values.

    Args:
        params: the parameters (ndarrays, ``Parameter`` objects, ``(name, p)`` pairs,
            param group dicts, or an optimizer), in the same order on every rank.
        root (int): the rank whose values everyone takes.
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
    """
    comm = world(comm)

    def check() -> Tuple[List[np.ndarray], int]:
        if not (isinstance(root, int) and 0 <= root < comm.size):
            raise ValueError(f"root must be a rank in [0, {comm.size}), got {root!r}")
        arrays = [_data(p, i) for i, p in enumerate(parameters_of(params))]
        if comm.rank != root:
            for i, a in enumerate(arrays):
                if not a.flags.writeable:
                    raise ValueError(f"parameter {i} is read-only; broadcast_parameters writes into it")
        return arrays, _cap_bytes(bucket_cap_mb)

    arrays, cap = collectively(comm, check)
    agree(comm, "the parameters (count, shapes, dtypes)", _layout(arrays), _describe)
    bcast_arrays(comm, arrays, root, cap)


def bcast_arrays(comm: Any, arrays: Sequence[np.ndarray], root: int, cap_bytes: int) -> None:
    """``root``'s ``arrays`` into every other rank's, in place, bucket by bucket (the
    ranks have checked that their arrays agree)."""
    for idx in _buckets(arrays, cap_bytes):
        if comm.rank == root:
            buffer = _pack(arrays, idx)
        else:
            buffer = _buffer(arrays[idx[0]].dtype, sum(arrays[i].size for i in idx))
        comm.Bcast(buffer, root=root)
        if comm.rank != root:
            _unpack(buffer, arrays, idx)


def allreduce_gradients(
    params: Any, comm: Any = None, average: bool = True, bucket_cap_mb: float = BUCKET_CAP_MB
) -> None:
    """Sums every parameter's gradient over the ranks (and divides by their number,
    ``average=True``), in place, as DistributedDataParallel does in ``backward``.

    A gradient that is None on every rank stays None; one that is None on some ranks
    only is taken as zeros there and, like every other, ends up holding the sum (or
    average) on every rank. A writable ndarray gradient is updated in place; any other
    (read-only, not an ndarray) is replaced by a new array.

    Args:
        params: the parameters, in the same order on every rank (as for
            ``broadcast_parameters``).
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        average (bool): divide the sum by the number of ranks (default).
        bucket_cap_mb (float): the largest buffer one ``Allreduce`` carries.
    """
    comm = world(comm)

    def check() -> Tuple[List[Any], Optional[FlatParameters], List[np.ndarray], List[Optional[np.ndarray]], int]:
        ps = parameters_of(params)
        flat = _whole_flat(ps)
        if flat is not None:  # its views: the shapes and dtypes hold by construction
            datas = [p.data for p in ps]
            return ps, flat, datas, [p.grad for p in ps], _cap_bytes(bucket_cap_mb)
        datas = [_data(p, i) for i, p in enumerate(ps)]
        grads: List[Optional[np.ndarray]] = []
        for i, (p, d) in enumerate(zip(ps, datas)):
            if isinstance(p, np.ndarray):
                raise TypeError(
                    f"parameter {i} is a bare ndarray, which has no gradient: pass the Parameter objects "
                    "(or the optimizer) instead"
                )
            g = p.grad
            if g is not None:
                if type(g) is not np.ndarray:
                    g = np.asarray(g)
                if g.shape != d.shape or g.dtype != d.dtype:
                    raise ValueError(
                        f"the gradient of parameter {i} has shape {g.shape} and dtype {g.dtype}; "
                        f"the parameter has {d.shape} and {d.dtype}"
                    )
            grads.append(g)
        return ps, None, datas, grads, _cap_bytes(bucket_cap_mb)

    ps, flat, datas, grads, cap = collectively(comm, check)
    agree(comm, "the parameters (count, shapes, dtypes)", _layout(datas), _describe)
    have = np.array([g is not None for g in grads], np.uint8)
    if comm.size > 1:
        comm.Allreduce(MPI.IN_PLACE, have, op=MPI.MAX)
    live = [i for i in range(len(grads)) if have[i]]
    # a gradient missing here but present on another rank counts as zeros (one None
    # on every rank stays None: it takes no part)
    arrays: List[Any] = [
        g if g is not None or not have[i] else np.zeros_like(datas[i]) for i, g in enumerate(grads)
    ]
    divisor = comm.size if average and comm.size > 1 else 1
    for idx in _buckets([arrays[i] for i in live], cap):
        chosen = [live[k] for k in idx]
        if flat is not None:  # a FlatParameters' gradients, every one in order: no copies
            start = flat.offsets[chosen[0]]
            span = flat.grad[start : start + sum(arrays[i].size for i in chosen)]
            if comm.size > 1:
                comm.Allreduce(MPI.IN_PLACE, span, op=MPI.SUM)
            if divisor != 1:
                np.divide(span, divisor, out=span)
            continue
        buffer = _pack(arrays, chosen)
        if comm.size > 1:
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        _write_back(buffer, divisor, ps, grads, arrays, chosen)


def _whole_flat(ps: Sequence[Any]) -> Optional[FlatParameters]:
    """The ``FlatParameters`` whose parameters ``ps`` are, all of them in order, when
    every one's ``.data`` and ``.grad`` are its views (``in_layout``)."""
    first = ps[0] if ps else None
    if not isinstance(first, FlatParameter):
        return None
    flat = first._flat
    same = len(ps) == len(flat.params) and all(p is q for p, q in zip(ps, flat.params))
    return flat if same and flat.in_layout and flat.grad.flags.writeable else None


def _write_back(
    buffer: np.ndarray,
    divisor: int,
    ps: Sequence[Any],
    grads: Sequence[Optional[np.ndarray]],
    arrays: List[np.ndarray],
    idx: Sequence[int],
) -> None:
    """Each parameter's slice of ``buffer``, divided by ``divisor``, into its
    gradient: in place where the gradient is a writable ndarray the parameter holds,
    else into a new array it is given (all in one Rust call)."""
    targets: List[np.ndarray] = []
    fresh: List[Tuple[int, np.ndarray]] = []
    for i in idx:
        g = grads[i]
        if g is not None and g.flags.writeable and ps[i].grad is g:
            targets.append(g)
        else:
            new = np.empty_like(arrays[i])
            fresh.append((i, new))
            targets.append(new)
    _core.bucket_unpack_(buffer, targets, float(divisor))
    for i, new in fresh:
        ps[i].grad = new
