"""Gradient utilities, as ``torch.nn.utils``: ``clip_grad_norm_``, ``clip_grad_value_``,
``get_total_norm``, ``clip_grads_with_norm_``, over NumPy gradients.

The norms, the scaling and the clamping run in Rust over every gradient in one call,
on the kernels' thread pool (``ferroptim::kernels::grad_norm``). Each gradient's norm
is accumulated in float64 and rounded to the gradient's dtype, as torch keeps per-tensor
norms; the total norm is the norm of those norms, in the widest gradient dtype; the
clipping coefficient follows torch's float arithmetic step by step.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union

import numpy as np

from . import _core
from ._params import typename
from .sparse_grad import SparseGrad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]

Params = Union[Any, Iterable[Any]]


def _grads(parameters: Params) -> List[np.ndarray]:
    """The gradients of ``parameters`` (a parameter or an iterable of them) that are set."""
    if hasattr(parameters, "grad") or isinstance(parameters, np.ndarray):
        parameters = [parameters]
    grads = []
    for i, p in enumerate(parameters):
        g = p if isinstance(p, np.ndarray) else getattr(p, "grad", None)
        if g is None:
            continue
        if isinstance(g, SparseGrad):
            raise TypeError(f"parameters[{i}] has a SparseGrad; clip its .values instead")
        if not isinstance(g, np.ndarray):
            raise TypeError(f"parameters[{i}].grad must be a numpy.ndarray, got {typename(g)}")
        grads.append(g)
    return grads


def get_total_norm(
    tensors: Iterable[np.ndarray], norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: Any = None
) -> np.ndarray:
    """The ``norm_type`` norm of the norms of ``tensors`` (arrays), as a 0-d array of the
    widest dtype among them; ``norm_type`` may be ``float("inf")``.

    Raises ``RuntimeError`` if the total is NaN or infinite and ``error_if_nonfinite``.
    ``foreach`` is torch's device flag, accepted and ignored.
    """
    tensors = [t for t in tensors]
    if not tensors:
        return np.array(0.0, dtype=np.float32)
    norm_type = float(norm_type)
    norms = _core.grad_norms(tensors, norm_type)
    dtype = np.result_type(*[t.dtype for t in tensors])
    per_tensor = np.array([t.dtype.type(n) for t, n in zip(tensors, norms)], dtype=dtype)
    total = dtype.type(_core.grad_norms([per_tensor], norm_type)[0])
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return np.array(total)


def clip_grads_with_norm_(parameters: Params, max_norm: float, total_norm: Any, foreach: Any = None) -> None:
    """Scales the gradients by ``min(1, max_norm / (total_norm + 1e-6))``, in
    ``total_norm``'s dtype as torch computes it."""
    grads = _grads(parameters)
    if not grads:
        return
    total = np.asarray(total_norm)
    t = total.dtype.type
    coef = (t(1) / (total + t(1e-6))) * t(float(max_norm))  # torch: max_norm / x is x.reciprocal() * max_norm
    coef = np.minimum(coef, t(1.0))
    _core.grad_scale_(grads, float(coef))


def clip_grad_norm_(
    parameters: Params,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: Optional[bool] = None,
) -> np.ndarray:
    r"""Clips the gradients of ``parameters`` so that their total norm is at most
    ``max_norm`` (``torch.nn.utils.clip_grad_norm_``)::

        total = ‖(‖g₁‖, ‖g₂‖, …)‖        (norms of order norm_type)
        g ← g · min(1, max_norm / (total + 1e-6))

    Args:
        parameters: a parameter or an iterable of parameters (their ``.grad``; None
            gradients are skipped).
        max_norm (float): the largest total norm.
        norm_type (float): the order of the norms; ``float("inf")`` for the largest
            magnitude. Default: 2.
        error_if_nonfinite (bool): raise ``RuntimeError`` instead of scaling by a NaN
            or infinite total. Default: False.
        foreach: torch's device flag, accepted and ignored.

    Returns:
        the total norm before clipping, a 0-d array.
    """
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(grads, max_norm, total)
    return total


def clip_grad_value_(parameters: Params, clip_value: float, foreach: Optional[bool] = None) -> None:
    """Clamps every gradient element into ``[-clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``); NaN stays NaN."""
    clip_value = float(clip_value)
    grads = _grads(parameters)
    if grads:
        _core.grad_clamp_(grads, -clip_value, clip_value)
