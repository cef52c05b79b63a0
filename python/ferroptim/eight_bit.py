"""bitsandbytes' 8-bit optimizers: ``Adam8bit``, ``AdamW8bit``, ``Lion8bit``, ``SGD8bit``,
``RMSprop8bit``, ``Adagrad8bit``, ``AdEMAMix8bit``, as ``bitsandbytes.optim`` (0.50)
defines them and computes them on CPU.

Each keeps its state in 8 bits per element (about 2 bytes per parameter element for
Adam, against 8 in float32), in blocks of 256 with a float32 absmax each; see
``EightBitOptimizer``. ``is_paged`` and ``args`` are accepted and ignored (paging is a
CUDA feature); what bitsandbytes refuses, these refuse with its message, and options
its CPU path would silently ignore (SGD's ``dampening`` and ``nesterov``, RMSprop's
``momentum``) are refused rather than ignored.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

from . import _core
from ._eight_bit import EightBitOptimizer, check_args

__all__ = ["Adam8bit", "AdamW8bit", "Lion8bit", "SGD8bit", "RMSprop8bit", "Adagrad8bit", "AdEMAMix8bit"]


def _refuse_bits(name: str, optim_bits: int, allowed: int) -> None:
    if optim_bits != allowed:
        raise ValueError(f"{name} only supports optim_bits={allowed} (default value for compatibility)")


class Adam8bit(EightBitOptimizer):
    r"""Adam with 8-bit state, as ``bitsandbytes.optim.Adam8bit``::

        m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
        θ ← θ·(1 − lr·weight_decay)            (decoupled, as bitsandbytes' CPU path)
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    Args (bitsandbytes'): lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (0),
    amsgrad (False; True is refused), optim_bits (32, the only value accepted),
    args, min_8bit_size (4096), is_paged (False).
    """

    _rule = "adam"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        optim_bits: int = 32,
        args: Any = None,
        min_8bit_size: int = 4096,
        is_paged: bool = False,
    ) -> None:
        name = type(self).__name__
        if amsgrad:
            raise ValueError(f"{name} does not support amsgrad=True")
        _refuse_bits(name, optim_bits, 32)
        check_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, alpha=0.0, t_alpha=None, t_beta3=None)
        super().__init__(params, defaults, min_8bit_size)


class AdamW8bit(Adam8bit):
    r"""AdamW with 8-bit state, as ``bitsandbytes.optim.AdamW8bit``: ``Adam8bit`` with
    weight_decay 1e-2 by default (the same decoupled update)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        optim_bits: int = 32,
        args: Any = None,
        min_8bit_size: int = 4096,
        is_paged: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, optim_bits, args, min_8bit_size, is_paged)


class Lion8bit(EightBitOptimizer):
    r"""Lion with 8-bit momentum, as ``bitsandbytes.optim.Lion8bit``::

        θ ← θ·(1 − lr·weight_decay);   θ ← θ − lr·sign(β₁·m + (1 − β₁)·g)
        m ← β₂·m + (1 − β₂)·g

    Args: lr (1e-4), betas ((0.9, 0.99)), weight_decay (0), args, min_8bit_size (4096),
    is_paged (False).
    """

    _rule = "lion"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: Tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0,
        args: Any = None,
        min_8bit_size: int = 4096,
        is_paged: bool = False,
    ) -> None:
        check_args(lr, 0.0, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=0.0, weight_decay=weight_decay), min_8bit_size)


class SGD8bit(EightBitOptimizer):
    r"""SGD with 8-bit momentum, as ``bitsandbytes.optim.SGD8bit``::

        g ← g + weight_decay·θ;   m ← g on the first step, else momentum·m + g
        θ ← θ − lr·m

    Args: lr (required), momentum (must be nonzero, as bitsandbytes requires),
    dampening (0; other values refused: bitsandbytes ignores it), weight_decay (0),
    nesterov (False; True refused likewise), args, min_8bit_size (4096). Param groups
    keep ``betas = (momentum, dampening)``, as bitsandbytes.
    """

    _rule = "momentum"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        args: Any = None,
        min_8bit_size: int = 4096,
    ) -> None:
        if momentum == 0:
            raise NotImplementedError("SGD without momentum is not supported!")
        if dampening != 0:
            raise ValueError("SGD8bit: dampening is not supported (bitsandbytes ignores it)")
        if nesterov:
            raise ValueError("SGD8bit: nesterov=True is not supported (bitsandbytes ignores it)")
        betas = (momentum, dampening)
        check_args(lr, 0.0, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=0.0, weight_decay=weight_decay), min_8bit_size)


class RMSprop8bit(EightBitOptimizer):
    r"""RMSprop with an 8-bit square average, as ``bitsandbytes.optim.RMSprop8bit``::

        g ← g + weight_decay·θ;   s ← α·s + (1 − α)·g²;   θ ← θ − lr·g / (√s + ε)

    Args: lr (1e-2), alpha (0.99; 0 refused), eps (1e-8), weight_decay (0), momentum (0;
    other values refused: bitsandbytes ignores it), centered (False; True refused),
    args, min_8bit_size (4096). Param groups keep ``betas = (alpha, momentum)``.
    """

    _rule = "rmsprop"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        args: Any = None,
        min_8bit_size: int = 4096,
    ) -> None:
        if alpha == 0:
            raise NotImplementedError("RMSprop with alpha==0.0 is not supported!")
        if centered:
            raise NotImplementedError("Centered RMSprop is not supported!")
        if momentum != 0:
            raise ValueError("RMSprop8bit: momentum is not supported (bitsandbytes ignores it)")
        betas = (alpha, momentum)
        check_args(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay), min_8bit_size)


class Adagrad8bit(EightBitOptimizer):
    r"""Adagrad with an 8-bit sum of squares, as ``bitsandbytes.optim.Adagrad8bit``::

        g ← g + weight_decay·θ;   s ← s + g²;   θ ← θ − lr·g / (√s + ε)

    Args: lr (1e-2), lr_decay (0; other values refused, as bitsandbytes),
    weight_decay (0), initial_accumulator_value (0; likewise), eps (1e-10),
    optim_bits (8, the only value accepted), args, min_8bit_size (4096).
    """

    _rule = "adagrad"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        optim_bits: int = 8,
        args: Any = None,
        min_8bit_size: int = 4096,
    ) -> None:
        _core.check_hyper("Adagrad8bit", dict(lr=lr, weight_decay=weight_decay, eps=eps))
        if initial_accumulator_value != 0.0:
            raise ValueError("Initial accumulator value != 0.0 not supported!")
        if lr_decay != 0.0:
            raise ValueError("Lr Decay != 0.0 not supported!")
        _refuse_bits("Adagrad8bit", optim_bits, 8)
        betas = (0.0, 0.0)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay), min_8bit_size)


class AdEMAMix8bit(EightBitOptimizer):
    r"""AdEMAMix ("The AdEMAMix Optimizer: Better, Faster, Older", Pagliardini et al.
    2024, arXiv:2409.03137) with 8-bit state, as ``bitsandbytes.optim.AdEMAMix8bit``::

        m₁ ← β₁·m₁ + (1 − β₁)·g;   m₂ ← β₃·m₂ + (1 − β₃)·g;   v ← β₂·v + (1 − β₂)·g²
        θ ← θ·(1 − lr·weight_decay)
        θ ← θ − lr·(m₁/(1 − β₁ᵗ) + α·m₂) / (√v / √(1 − β₂ᵗ) + ε)

    with α and β₃ warmed up over ``t_alpha`` / ``t_beta3`` steps when given. Args: lr
    (1e-3), betas ((0.9, 0.999, 0.9999)), alpha (5.0), t_alpha (None), t_beta3 (None),
    eps (1e-8), weight_decay (1e-2), min_8bit_size (4096), is_paged (False).
    ``state1`` holds m₁ and m₂, shape ``(2, *shape)``; ``absmax1`` is ``(2, blocks)``.
    """

    _rule = "ademamix"
    _state1_rows = 2

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float, float] = (0.9, 0.999, 0.9999),
        alpha: float = 5.0,
        t_alpha: Optional[int] = None,
        t_beta3: Optional[int] = None,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        min_8bit_size: int = 4096,
        is_paged: bool = False,
    ) -> None:
        if len(betas) != 3:
            raise ValueError(f"AdEMAMix8bit takes three betas, got {len(betas)}")
        check_args(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, alpha=alpha, t_alpha=t_alpha,
                        t_beta3=t_beta3)
        super().__init__(params, defaults, min_8bit_size)
