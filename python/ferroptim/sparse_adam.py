"""``SparseAdam``, as ``torch.optim.SparseAdam``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import numpy as np

from . import _core
from ._tensorwise import TensorwiseOptimizer
from .sparse_grad import SparseGrad

__all__ = ["SparseAdam"]


class SparseAdam(TensorwiseOptimizer):
    r"""The lazy Adam of ``torch.optim.SparseAdam``, for sparse gradients: only the rows
    a gradient lists get their moments and values updated.

    Gradients are ``SparseGrad(indices, values)`` (rows of the parameter's first
    axis, as an embedding lookup produces). Update rule, per parameter, with ``t`` its
    step count after this step (kernel: ``ferroptim::kernels::sparse_adam``)::

        g ← the gradient, duplicate rows summed; negated if maximize
        for each listed row r (elementwise), m = exp_avg[r], v = exp_avg_sq[r]:
            Δm ← (g − m)·(1 − β₁);   m ← m + Δm
            Δv ← (g² − v)·(1 − β₂);  v ← v + Δv
            θ[r] ← θ[r] − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + eps)

    A gradient that lists no rows still counts a step, as in torch.

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): learning rate (default: 1e-3).
        betas (Tuple[float, float], optional): running-average coefficients of the
            gradient and its square (default: (0.9, 0.999)).
        eps (float, optional): added to the denominator (default: 1e-8).
        maximize (bool, optional): maximize the objective instead (default: False).

    State per parameter: ``step``, ``exp_avg`` and ``exp_avg_sq`` (torch keeps
    ``step`` as a Python int; ferroptim as a 0-d float64 array, updated in place,
    and it loads either).
    """

    _kernel = _core.sparse_adam_step

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        _core.check_hyper("SparseAdam", defaults)  # torch's checks, in the Rust crate
        super().__init__(params, defaults)

    def _new_state(self, p: Any) -> Dict[str, Any]:
        return {
            "step": np.zeros((), dtype=np.float64),
            "exp_avg": np.zeros(p.data.shape, dtype=p.data.dtype),
            "exp_avg_sq": np.zeros(p.data.shape, dtype=p.data.dtype),
        }

    def _state_keys(self, p: Any) -> Tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _grad_of(self, p: Any, grad: Any) -> Any:
        if not isinstance(grad, SparseGrad):
            raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        return grad
