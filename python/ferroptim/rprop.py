"""``Rprop``, as ``torch.optim.Rprop``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._elementwise import ElementwiseOptimizer

__all__ = ["Rprop"]


class Rprop(ElementwiseOptimizer):
    r"""Rprop (``torch.optim.Rprop``), the resilient backpropagation algorithm.

    Update rule, per element (kernel: ``ferroptim::kernels::rprop``)::

        g ← ∇θ, negated if maximize
        s ← g·prev:  η ← η₊ if s > 0,  η₋ if s < 0,  1 otherwise
        step_size ← clamp(step_size·η, step_size_min, step_size_max)
        if η = η₋:  g ← 0          (the sign flipped: no step for this element)
        θ ← θ − sign(g)·step_size
        prev ← g

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate, the initial step size (default: 1e-2).
        etas (Tuple[float, float], optional): (η₋, η₊), the factors that shrink and
            grow the step size (default: (0.5, 1.2)).
        step_sizes (Tuple[float, float], optional): the smallest and largest step
            sizes (default: (1e-6, 50)).
        maximize (bool, optional): maximize the objective instead (default: False).

    torch's device flags ``capturable``, ``foreach``, ``differentiable``: accepted and
    ignored.

    State per parameter: ``step`` (0-d float64 array), ``prev`` (starts at 0) and
    ``step_size`` (starts at lr).
    """

    _kernel = _core.rprop_step
    _scalar_state = ("step",)
    _buffer_state = ("prev", "step_size")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        etas: Tuple[float, float] = (0.5, 1.2),
        step_sizes: Tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize)
        _core.check_hyper("Rprop", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)
