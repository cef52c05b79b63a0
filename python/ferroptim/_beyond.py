"""The base of the optimizers beyond torch.optim (Lion, LAMB, LARS, Adan, ADOPT,
AdEMAMix, Schedule-Free, Prodigy): a tensor-wise step, one Rust call with every param
group, whose kernel also advances the counters the implementation keeps in its param
groups (``step``, ``k``, ...)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._tensorwise import TensorwiseOptimizer


class BeyondOptimizer(TensorwiseOptimizer):
    """A subclass declares its hyperparameters (the implementation's names, defaults
    and checks), ``_kernel``, ``_new_state`` and ``_state_keys``."""

    _keeps_step = False
    _steps_groups = True
    #: whether the kernel takes the list of fresh-state flags
    _passes_fresh = True

    def _leading_args(self) -> Tuple[Any, ...]:
        return ()

    def _trailing_args(self) -> Tuple[Any, ...]:
        return ()

    def _run_kernel(self, indices: List[Any], data: List[Any], grads: List[Any], states: List[Any],
                    steps: Optional[List[Any]], fresh: List[bool]) -> None:
        args: Tuple[Any, ...] = (*self._leading_args(), self.param_groups, indices, data, grads, states)
        if self._passes_fresh:
            args += (fresh,)
        if steps is not None:
            args += (steps,)
        type(self)._kernel(*args, *self._trailing_args())

    def _group_of(self, p: Any) -> Dict[str, Any]:
        """The param group holding ``p`` (for state whose layout depends on the group)."""
        for group in self.param_groups:
            if any(q is p for q in group["params"]):
                return group
        return self.defaults

    @staticmethod
    def _zeros(p: Any) -> np.ndarray:
        return np.zeros(p.data.shape, dtype=p.data.dtype)


def max_lr_snapshot(lr: Any, corrected_weight_decay: bool = False) -> float:
    """timm's ``_max_lr_snapshot``: the constructor's lr, the peak of corrected weight decay."""
    max_lr = float(lr)
    if corrected_weight_decay and max_lr <= 0:
        raise ValueError(
            f"Corrected weight decay requires a positive max lr, got {max_lr}. Construct the optimizer with the peak lr."
        )
    return max_lr


def validate_scalar(name: str, value: Any, min_value: float = 0.0) -> None:
    """timm's ``_validate_scalar``."""
    if float(value) < min_value:
        raise ValueError(f"Invalid {name}: {value}")
