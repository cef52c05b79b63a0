"""``DistributedOptimizer``: Horovod's pattern — all-reduce the gradients, then step."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import numpy as np

from ..lbfgs import LBFGS
from ..optimizer import Optimizer
from ._mpi import MPI, world
from .collectives import BUCKET_CAP_MB, allreduce_gradients

__all__ = ["DistributedOptimizer"]


class DistributedOptimizer:
    """Wraps an optimizer so that ``step()`` first averages the gradients over the
    ranks (``allreduce_gradients``: a few large ``Allreduce`` calls), then steps, as
    Horovod's ``hvd.DistributedOptimizer``. Every rank keeps the whole optimizer state
    and takes the same step; everything else (``zero_grad``, ``param_groups``,
    ``state_dict``, hooks) is the wrapped optimizer's, and schedulers take the wrapped
    one.

    Example (``mpiexec -n 4 python train.py``)::

        from ferroptim.distributed import DistributedOptimizer, broadcast_parameters
        opt = DistributedOptimizer(fo.AdamW(params, lr=1e-3))
        broadcast_parameters(params)          # every rank starts from rank 0's values
        for batch in my_share_of_the_data:
            set_gradients(params, batch)
            opt.step()

    Args:
        optimizer (Optimizer): the optimizer to wrap.
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        average (bool): average the gradients (default), else sum them.
        bucket_cap_mb (float): the largest buffer one ``Allreduce`` carries.
    """

    def __init__(
        self, optimizer: Optimizer, comm: Any = None, average: bool = True, bucket_cap_mb: float = BUCKET_CAP_MB
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        self.comm = world(comm)
        self.average = average
        self.bucket_cap_mb = bucket_cap_mb

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, ranks={self.comm.size})"

    def synchronize(self) -> None:
        """Averages (or sums) the gradients over the ranks now."""
        opt = self.optimizer
        given = opt._step_grad_list()
        if given is None:
            allreduce_gradients(opt, self.comm, self.average, self.bucket_cap_mb)
            return
        # gradients a parameter could not hold (``step(grads=...)`` on read-only ``.grad``)
        holders = [_Holder(p.data, g) for group in opt.param_groups for p, g in zip(group["params"], given)]
        allreduce_gradients(holders, self.comm, self.average, self.bucket_cap_mb)
        given[:] = [h.grad for h in holders]

    def step(self, closure: Optional[Callable[[], Any]] = None, *, grads: Optional[Iterable[Any]] = None) -> Any:
        """Runs ``closure`` (if given) and assigns ``grads`` (if given), averages the
        gradients over the ranks, then steps; returns the closure's loss. L-BFGS,
        which evaluates its closure several times a step, averages the gradients and
        the loss after each evaluation."""
        opt = self.optimizer
        if isinstance(opt, LBFGS) and closure is not None:
            if grads is not None:
                raise ValueError("L-BFGS takes its gradients from the closure, not from grads=")

            def averaged() -> Any:
                # the loss too: L-BFGS decides from it when to stop, and every rank
                # must evaluate its closure (and so all-reduce) as often as the others
                loss = closure()
                self.synchronize()
                if loss is None:
                    return None
                total = self.comm.allreduce(float(loss), op=MPI.SUM)
                return total / self.comm.size if self.average else total

            return opt.step(averaged)
        try:
            loss = opt._prepare_step(closure, grads)
            self.synchronize()
            opt.step()
        finally:
            opt.__dict__.pop("_step_grads", None)
        return loss


class _Holder:
    """A parameter's data with a gradient from a list (what ``allreduce_gradients``
    reads and writes)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray, grad: Any) -> None:
        self.data = data
        self.grad = grad
