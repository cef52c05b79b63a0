"""``Prodigy``, as ``prodigyopt.Prodigy``."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import _core
from ._beyond import BeyondOptimizer

__all__ = ["Prodigy"]


class Prodigy(BeyondOptimizer):
    r"""Prodigy ("Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
    Mishchenko & Defazio 2023, arXiv:2306.06101), as ``prodigyopt.Prodigy`` (kernel:
    ``ferroptim::kernels::prodigy``): Adam with the step size d·lr estimated on the fly,
    from a reduction over every parameter of every group (one Rust pass)::

        m ← β₁·m + d(1 − β₁)·g;   v ← β₂·v + d²(1 − β₂)·g²;   s ← β₃·s + (d/d₀)·dlr·g
        d_num ← β₃·d_num + (d/d₀)·dlr·⟨g, θ₀ − θ⟩;   d̂ = d_coef·d_num / Σ|s|
        d ← min(max(d_max, d̂), d·growth_rate)        (d grows from d₀ to d̂ at first)
        θ ← θ − dlr·m / (√v + d·eps)                  dlr = d·lr (bias-corrected if asked)

    Args (prodigyopt's): lr (1.0), betas ((0.9, 0.999)), beta3 (None: √β₂), eps (1e-8),
    weight_decay (0), decouple (True), use_bias_correction (False), safeguard_warmup
    (False), d0 (1e-6), d_coef (1.0), growth_rate (inf), fsdp_in_use (False; kept, no
    effect in one process), slice_p (1: every element enters the estimate).

    State per parameter: ``step`` (0-d float64 array), ``s`` and ``p0`` (flat, every
    slice_p-th element; ``p0`` is a 0-d zero for an all-zero parameter), ``exp_avg``
    (β₁ > 0), ``exp_avg_sq``. Param groups hold ``d``, ``d0``, ``d_max``,
    ``d_numerator``, ``k`` and, after a step, ``d_denom`` and ``d_hat``.
    """

    _kernel = _core.prodigy_step
    _keeps_step = True
    _passes_fresh = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        betas: Tuple[float, float] = (0.9, 0.999),
        beta3: Optional[float] = None,
        eps: float = 1e-8,
        weight_decay: float = 0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = float("inf"),
        fsdp_in_use: bool = False,
        slice_p: int = 1,
    ) -> None:
        if not 0.0 < d0:
            raise ValueError(f"Invalid d0 value: {d0}")
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        defaults = dict(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay, d=d0, d0=d0, d_max=d0,
                        d_numerator=0.0, d_coef=d_coef, k=0, growth_rate=growth_rate,
                        use_bias_correction=use_bias_correction, decouple=decouple,
                        safeguard_warmup=safeguard_warmup, fsdp_in_use=fsdp_in_use, slice_p=slice_p)
        self.d0 = d0
        super().__init__(params, defaults)

    def _new_state(self, p: Any) -> Dict[str, Any]:
        group = self._group_of(p)
        flat = p.data.reshape(-1)[:: group["slice_p"]]
        state: Dict[str, Any] = {"step": np.zeros((), dtype=np.float64), "s": np.zeros_like(flat)}
        state["p0"] = flat.copy() if p.data.any() else np.zeros((), dtype=p.data.dtype)
        if group["betas"][0] > 0:
            state["exp_avg"] = self._zeros(p)
        state["exp_avg_sq"] = self._zeros(p)
        return state

    def _state_keys(self, p: Any) -> Tuple[str, ...]:
        return ("s", "p0", "exp_avg_sq", "exp_avg")

    def _state_arrays(self, p: Any, state: Dict[str, Any], where: Tuple[int, int, Any]) -> List[Tuple[str, Any]]:
        try:
            p0 = state["p0"]
            out = [("s", state["s"]), ("p0:scalar", p0.reshape(1)) if p0.ndim == 0 else ("p0", p0),
                   ("exp_avg_sq", state["exp_avg_sq"])]
            if "exp_avg" in state:
                out.append(("exp_avg", state["exp_avg"]))
            return out
        except (KeyError, AttributeError):
            return super()._state_arrays(p, state, where)
