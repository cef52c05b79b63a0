"""``LBFGS``, as ``torch.optim.LBFGS``."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import numpy as np

from . import _core, _loading
from .optimizer import Optimizer

# The state entries L-BFGS keeps, by kind.
_COUNTS = ("func_evals", "n_iter")
_NUMBERS = ("t", "prev_loss", "H_diag")
_VECTORS = ("d", "prev_flat_grad")
_VECTOR_LISTS = ("old_dirs", "old_stps")
_NUMBER_LISTS = ("ro", "al")

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    r"""L-BFGS (``torch.optim.LBFGS``), with an optional strong-Wolfe line search.

    Each ``step(closure)`` runs up to ``max_iter`` iterations (kernel:
    ``ferroptim::kernels::lbfgs``), with g the flattened gradient::

        d ← −g on the very first iteration, else the two-loop recursion over the
            last history_size pairs (s = t·d, y = g − g_prev, kept when y·s > 1e-10)
        t ← min(1, 1/Σ|g|)·lr on the very first iteration, else lr
        θ ← θ + t·d   (t from a strong-Wolfe line search if line_search_fn is set)

    stopping when max|g| ≤ tolerance_grad, the directional derivative or the change
    in loss or parameters falls below tolerance_change, or after max_iter iterations
    or max_eval closure calls (the line search gets what is left of max_eval, as
    torch's ``max_ls``). With ``maximize``, g and every loss the algorithm compares
    are negated; ``step`` still returns the closure's own value. Only one param group;
    all parameters in one dtype. With no parameters, ``step`` returns ``closure()``
    and keeps no state.

    Args:
        params (iterable): the parameters (see ``Optimizer``).
        lr (float): learning rate (default: 1).
        max_iter (int): iterations per step (default: 20).
        max_eval (int): closure calls per step (default: max_iter * 1.25).
        tolerance_grad (float): first-order optimality tolerance (default: 1e-7).
        tolerance_change (float): tolerance on loss and parameter changes (default: 1e-9).
        history_size (int): update history size (default: 100).
        line_search_fn (str): "strong_wolfe" or None (default: None).
        maximize (bool, keyword-only): maximize the objective instead (default: False).
            A state dict from before torch 2.15, without the key, loads as False.

    State, kept as torch keeps it in the state of the first parameter: ``func_evals``,
    ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``, ``al``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: Optional[int] = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: Optional[str] = None,
        *,
        maximize: bool = False,
    ) -> None:
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
            maximize=maximize,
        )
        _core.check_hyper("LBFGS", defaults)  # the Rust crate's checks, with the messages they follow
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _fix_group(self, group: Any) -> None:
        # torch reads group.get("maximize", False): a group saved without it minimizes.
        group.setdefault("maximize", False)
        super()._fix_group(group)

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """Checks a loaded state entry (vectors as long as all parameters together, in
        their dtype) and copies it."""
        n = sum(p.data.size for p in self._params)
        dtype = param.data.dtype
        if value is None and key in _NUMBERS + _VECTORS + ("al",):
            return None
        if key in _COUNTS:
            try:
                count = float(value)
            except (TypeError, ValueError):
                count = -1.0
            if isinstance(value, bool) or not count.is_integer() or count < 0:
                raise ValueError(f"loaded state of {where}: '{key}' must be a count, got {value!r}")
            return int(count)
        if key in _NUMBERS:
            return _loading.scalar(value, key, where) if isinstance(value, np.ndarray) else float(value)
        if key in _VECTORS:
            return _loading.array(value, key, (n,), dtype, where)
        if key in _VECTOR_LISTS:
            return [_loading.array(v, f"{key}[{i}]", (n,), dtype, where) for i, v in enumerate(value)]
        if key in _NUMBER_LISTS:
            return [None if v is None else np.array(_loading.scalar(v, key, where), dtype=dtype) for v in value]
        raise _loading.unknown_key(key, where, "LBFGS", _COUNTS + _NUMBERS + _VECTORS + _VECTOR_LISTS + _NUMBER_LISTS)

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Performs a single optimization step.

        Args:
            closure (Callable): re-evaluates the model, sets the gradients and returns
                the loss. Required. ``step`` returns what its first call returned.
        """
        if not callable(closure):
            raise TypeError(f"LBFGS.step needs a closure that returns the loss, got {type(closure).__name__}")
        group = self.param_groups[0]
        if not group["params"]:  # nothing to optimize: torch still returns the loss
            return closure()
        first = group["params"][0]
        state = self.state.get(first)
        fresh = state is None
        if fresh:
            state = {}
        loss = _core.lbfgs_step(group, state, closure)
        if fresh:  # kept once the step succeeded
            self.state[first] = state
        return loss
