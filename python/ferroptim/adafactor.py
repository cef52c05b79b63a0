"""``Adafactor``, as ``torch.optim.Adafactor``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from . import _core, _loading
from ._elementwise import ElementwiseOptimizer

__all__ = ["Adafactor"]


class Adafactor(ElementwiseOptimizer):
    r"""Adafactor (``torch.optim.Adafactor``), with factored second moments.

    Update rule, per parameter, with ``t`` its step count after this step and
    RMS(x) = ‖x‖₂/√numel (kernel: ``ferroptim::kernels::adafactor``)::

        g ← ∇θ, negated if maximize
        β̂ ← t^beta2_decay;   ρ ← min(lr, 1/√t);   α ← max(eps2, RMS(θ))·ρ
        θ ← θ·(1 − lr·weight_decay)
        if θ has ≥ 2 dims (factored over its last two):
            R ← lerp(R, mean of g² over the last dim, β̂)           (row_var)
            C ← lerp(C, mean of g² over the second-to-last dim, β̂) (col_var)
            V̂ ← R·C / max(mean(R), eps1)
        else:
            V ← lerp(V, g², β̂);   V̂ ← V                          (variance)
        U ← g / √max(V̂, eps1²)
        θ ← θ − α / max(1, RMS(U)/d) · U

    Args:
        params (iterable): parameters or param-group dicts (see ``Optimizer``).
        lr (float, optional): the largest relative step size and the weight decay
            factor (default: 1e-2).
        beta2_decay (float, optional): decay rate of β₂ (default: -0.8).
        eps (Tuple[Optional[float], float], optional): (eps1, eps2); eps1 None means
            the machine epsilon of the parameter's dtype (default: (None, 1e-3)).
        d (float, optional): clipping threshold (default: 1.0).
        weight_decay (float, optional): decoupled weight decay (default: 0.0).
        maximize (bool, optional): maximize the objective instead (default: False).
        foreach: torch's device flag, accepted and ignored.

    State per parameter: ``step`` (0-d float64 array) and ``row_var`` (shape …×m×1) and
    ``col_var`` (…×1×n) for parameters of ≥ 2 dims, ``variance`` for vectors.
    """

    _kernel = _core.adafactor_step
    _scalar_state = ("step",)
    #: row_var and col_var for parameters of ≥ 2 dims, variance for the others
    _buffer_state = ("row_var", "col_var", "variance")
    _flat_merge = False  # RMS(θ) and RMS(U) are per tensor

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: Tuple[Optional[float], float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, maximize=maximize)
        _core.check_hyper("Adafactor", defaults)  # the Rust crate's checks, with the messages they follow
        super().__init__(params, defaults)

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """Checks a loaded state entry against the state the parameter's shape gives
        (``row_var`` and ``col_var`` for ≥ 2 dims, else ``variance``), and copies it in
        the form the kernel uses."""
        shape = param.data.shape
        shapes: Dict[str, Tuple[int, ...]] = {}
        if len(shape) > 1:
            shapes["row_var"] = shape[:-1] + (1,)
            shapes["col_var"] = shape[:-2] + (1,) + shape[-1:]
        else:
            shapes["variance"] = shape
        if key == "step":
            return _loading.scalar(value, key, where)
        if key not in shapes:
            raise _loading.unknown_key(key, where, type(self).__name__, ("step",) + tuple(shapes))
        return _loading.array(value, key, shapes[key], param.data.dtype, where)
