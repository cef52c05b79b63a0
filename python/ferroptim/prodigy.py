"""``Prodigy``, as ``prodigyopt.Prodigy``."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

import numpy as np

from . import _core, _loading
from ._elementwise import ElementwiseOptimizer

__all__ = ["Prodigy"]


class Prodigy(ElementwiseOptimizer):
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
    _flat_merge = False  # p0 sliced per parameter
    _scalar_state = ("step",)
    _buffer_state = ("s", "p0", "exp_avg_sq", "exp_avg")

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
        defaults = dict(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay, d=d0, d0=d0, d_max=d0,
                        d_numerator=0.0, d_coef=d_coef, k=0, growth_rate=growth_rate,
                        use_bias_correction=use_bias_correction, decouple=decouple,
                        safeguard_warmup=safeguard_warmup, fsdp_in_use=fsdp_in_use, slice_p=slice_p)
        _core.check_hyper("Prodigy", defaults)  # the Rust crate's checks, with the messages they follow
        self.d0 = d0
        super().__init__(params, defaults)

    def _load_state_value(self, param: Any, key: Any, value: Any, where: str) -> Any:
        """``s`` and ``p0`` are flat, every ``slice_p``-th element (``p0`` may be 0-d)."""
        if key in ("s", "p0"):
            sps = {g["slice_p"] for g in self.param_groups}
            sp = sps.pop() if len(sps) == 1 else next(
                (g["slice_p"] for g in self.param_groups if any(q is param for q in g["params"])), 1
            )
            shape = () if key == "p0" and np.ndim(value) == 0 else (-(-param.data.size // sp),)
            return _loading.array(value, key, shape, param.data.dtype, where)
        return super()._load_state_value(param, key, value, where)
