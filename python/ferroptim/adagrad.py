"""``Adagrad``, as ``torch.optim.Adagrad``."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

import numpy as np

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adagrad"]


class Adagrad(ElementwiseOptimizer):
    r"""Adagrad (``torch.optim.Adagrad``).

    Update rule, per element, with ``t`` the parameter's step count after this step
    (kernel: ``ferroptim::kernels::adagrad``)::

        g ← ∇θ, negated if maximize
        if weight_decay ≠ 0:  g ← g + weight_decay·θ
        clr ← lr / (1 + (t − 1)·lr_decay)
        s ← s + g²
        θ ← θ − clr · g / (√s + eps)

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-2).
        lr_decay (float, optional): learning rate decay (default: 0).
        weight_decay (float, optional): L2 penalty (default: 0).
        initial_accumulator_value (float, optional): starting value of ``sum``
            (default: 0). As in torch, ``sum`` starts from the constructor's value
            (``self.defaults``) for every parameter, also in a group that sets its
            own ``initial_accumulator_value`` and for state created at a later step.
        eps (float, optional): added to the denominator (default: 1e-10).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``foreach``, ``differentiable``, ``fused``: accepted and ignored.

    State per parameter, created at construction as torch does: ``step`` (0-d
    float64 array) and ``sum``.
    """

    _kernel = _core.adagrad_step
    _scalar_state = ("step",)
    _buffer_state = ("sum",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        _core.check_hyper("Adagrad", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = np.zeros((), dtype=np.float64)
                # np.zeros leaves the pages untouched until the first step writes them
                # (from the kernel's threads), which runs measurably faster than
                # pages filled here; a nonzero start is filled
                state["sum"] = np.zeros(p.data.shape, dtype=p.data.dtype)
                if initial_accumulator_value != 0:  # the constructor's, as in torch
                    state["sum"][...] = initial_accumulator_value

    def _create_state(self, given: Optional[List[Any]]) -> List[Any]:
        """A parameter with a gradient and no state (added by ``add_param_group``, or
        left out of a loaded state dict) gets it before the kernel runs, ``sum`` at
        ``self.defaults["initial_accumulator_value"]`` as torch's ``_init_group``
        makes it (the kernel would start it from the group's value)."""
        created: List[Any] = []
        if len(self.state) >= sum(len(g["params"]) for g in self.param_groups):
            return created
        init = self.defaults["initial_accumulator_value"]
        params = [p for group in self.param_groups for p in group["params"]]
        for k, p in enumerate(params):
            if (p.grad if given is None else given[k]) is not None and not self.state.get(p):
                self.state[p] = {
                    "step": np.zeros((), dtype=np.float64),
                    "sum": np.full(p.data.shape, init, dtype=p.data.dtype),
                }
                created.append(p)
        return created
