"""``ferroptim.functional``: torch 2.15's ``torch.optim.functional`` over NumPy arrays.

Each function takes the parameters, their gradients and their state as lists of
arrays, with torch's signature (positional arguments, keyword-only markers, device
flags accepted and ignored), and updates them in place with one call into the same
Rust kernel the optimizer class runs — so one call gives, bit for bit, the class's
step. As torch's, the functions increment the ``state_steps`` entries themselves
(0-d float64 arrays, updated in place; ``sparse_adam`` takes them as a list of ints,
already counting this step, and leaves them alone)::

    import ferroptim.functional as F
    F.adam(params, grads, exp_avgs, exp_avg_sqs, [], steps,
           amsgrad=False, beta1=0.9, beta2=0.999, lr=1e-3, weight_decay=0.0, eps=1e-8,
           maximize=False)

Lists of optional state (``max_exp_avg_sqs`` without amsgrad, ``grad_avgs`` of an
uncentered RMSprop, ...) may be empty, as in torch. ``sgd`` creates a missing (None)
momentum buffer as torch does and stores it in ``momentum_buffer_list``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .sparse_grad import SparseGrad

__all__ = [
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "asgd",
    "muon",
    "nadam",
    "radam",
    "rmsprop",
    "rprop",
    "sgd",
    "sparse_adam",
]


class _Slot:
    """One parameter as the kernels see it: its array and its gradient."""

    __slots__ = ("data", "grad")

    def __init__(self, data: Any, grad: Any) -> None:
        self.data = data
        self.grad = grad


def _lists(params: Sequence[Any], **lists: Sequence[Any]) -> int:
    """The number of parameters, after checking every given list has one entry each."""
    n = len(params)
    for name, values in lists.items():
        if values is not None and len(values) != n:
            raise ValueError(f"the {name} list has {len(values)} entries for {n} params")
    return n


# torch's names of the scalar state lists, for messages
_SCALAR_LISTS = {"step": "state_steps", "eta": "etas", "mu": "mus", "mu_product": "mu_products"}


def _scalar_array(value: Any, key: str, i: int) -> np.ndarray:
    """A per-parameter scalar (a step count, ASGD's η and μ, NAdam's μ product): the
    kernels update it in place, so it must be a writeable 0-d float64 array."""
    if not (
        isinstance(value, np.ndarray) and value.shape == () and value.dtype == np.float64 and value.flags.writeable
    ):
        raise TypeError(
            f"{_SCALAR_LISTS[key]}[{i}] must be a writeable 0-d float64 array (updated in place), "
            f"got {type(value).__name__}"
        )
    return value


def _run(
    kernel: Any,
    params: Sequence[Any],
    grads: Sequence[Any],
    hyper: Dict[str, Any],
    scalars: Dict[str, Sequence[Any]],
    buffers: Dict[str, Optional[Sequence[Any]]],
) -> Tuple[List[_Slot], Dict[_Slot, Dict[str, Any]]]:
    """One elementwise step: ``scalars`` and ``buffers`` name the state lists (in the
    kernel's order; a buffer list of None is state the configuration does not use)."""
    n = _lists(params, grads=grads, **scalars, **{k: v for k, v in buffers.items() if v is not None})
    slots = [_Slot(p, g) for p, g in zip(params, grads)]
    state: Dict[_Slot, Dict[str, Any]] = {}
    for i, slot in enumerate(slots):
        entry: Dict[str, Any] = {}
        for key, values in scalars.items():
            entry[key] = _scalar_array(values[i], key, i)
        for key, given in buffers.items():
            if given is not None and given[i] is not None:
                entry[key] = given[i]
        state[slot] = entry
    if n:
        kernel(state, [dict(hyper, params=slots)], tuple(scalars), tuple(buffers))
    return slots, state


def _optional(values: Sequence[Any], used: bool) -> Optional[Sequence[Any]]:
    return values if used else None


def sgd(
    params: List[Any],
    d_p_list: List[Any],
    momentum_buffer_list: List[Optional[Any]],
    has_sparse_grad: bool = False,
    foreach: Optional[bool] = None,
    fused: Optional[bool] = None,
    grad_scale: Any = None,
    found_inf: Any = None,
    *,
    weight_decay: float,
    momentum: float,
    lr: float,
    dampening: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    """``torch.optim.functional.sgd`` (``ferroptim.SGD``'s kernel)."""
    hyper = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                 maximize=maximize)
    slots, state = _run(_core.sgd_step, params, d_p_list, hyper, {},
                        {"momentum_buffer": _optional(momentum_buffer_list, momentum != 0)})
    if momentum != 0:
        for i, slot in enumerate(slots):
            momentum_buffer_list[i] = state[slot].get("momentum_buffer", momentum_buffer_list[i])


def _adam(
    params: Any, grads: Any, exp_avgs: Any, exp_avg_sqs: Any, max_exp_avg_sqs: Any, state_steps: Any, decoupled: bool, **kw: Any
) -> None:
    hyper = dict(lr=kw["lr"], betas=(kw["beta1"], kw["beta2"]), eps=kw["eps"], weight_decay=kw["weight_decay"],
                 amsgrad=kw["amsgrad"], maximize=kw["maximize"], decoupled_weight_decay=decoupled)
    _run(_core.adam_step, params, grads, hyper, {"step": state_steps},
         {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs,
          "max_exp_avg_sq": _optional(max_exp_avg_sqs, kw["amsgrad"])})


def adam(
    params: List[Any],
    grads: List[Any],
    exp_avgs: List[Any],
    exp_avg_sqs: List[Any],
    max_exp_avg_sqs: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: Optional[bool] = None,
    grad_scale: Any = None,
    found_inf: Any = None,
    has_complex: bool = False,
    decoupled_weight_decay: bool = False,
    *,
    amsgrad: bool,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.adam`` (``ferroptim.Adam``'s kernel)."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, decoupled_weight_decay,
          amsgrad=amsgrad, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize)


def adamw(
    params: List[Any],
    grads: List[Any],
    exp_avgs: List[Any],
    exp_avg_sqs: List[Any],
    max_exp_avg_sqs: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: Optional[bool] = None,
    grad_scale: Any = None,
    found_inf: Any = None,
    has_complex: bool = False,
    *,
    amsgrad: bool,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.adamw`` (``ferroptim.AdamW``'s kernel: Adam with
    decoupled weight decay)."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, True,
          amsgrad=amsgrad, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize)


def adagrad(
    params: List[Any],
    grads: List[Any],
    state_sums: List[Any],
    state_steps: List[Any],
    fused: Optional[bool] = None,
    grad_scale: Any = None,
    found_inf: Any = None,
    has_sparse_grad: bool = False,
    foreach: Optional[bool] = None,
    differentiable: bool = False,
    has_complex: bool = False,
    *,
    lr: float,
    weight_decay: float,
    lr_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.adagrad`` (``ferroptim.Adagrad``'s kernel)."""
    hyper = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay, initial_accumulator_value=0.0,
                 maximize=maximize)
    _run(_core.adagrad_step, params, grads, hyper, {"step": state_steps}, {"sum": state_sums})


def adadelta(
    params: List[Any],
    grads: List[Any],
    square_avgs: List[Any],
    acc_deltas: List[Any],
    state_steps: List[Any],
    capturable: bool = False,
    foreach: Optional[bool] = None,
    differentiable: bool = False,
    has_complex: bool = False,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.adadelta`` (``ferroptim.Adadelta``'s kernel)."""
    hyper = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
    _run(_core.adadelta_step, params, grads, hyper, {"step": state_steps},
         {"square_avg": square_avgs, "acc_delta": acc_deltas})


def adamax(
    params: List[Any],
    grads: List[Any],
    exp_avgs: List[Any],
    exp_infs: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    has_complex: bool = False,
    *,
    eps: float,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
) -> None:
    """``torch.optim.functional.adamax`` (``ferroptim.Adamax``'s kernel)."""
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, maximize=maximize)
    _run(_core.adamax_step, params, grads, hyper, {"step": state_steps}, {"exp_avg": exp_avgs, "exp_inf": exp_infs})


def asgd(
    params: List[Any],
    grads: List[Any],
    axs: List[Any],
    mus: List[Any],
    etas: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    has_complex: bool = False,
    *,
    lambd: float,
    lr: float,
    t0: float,
    alpha: float,
    weight_decay: float,
) -> None:
    """``torch.optim.functional.asgd`` (``ferroptim.ASGD``'s kernel); ``mus`` and
    ``etas`` are 0-d float64 arrays, updated in place."""
    hyper = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
    _run(_core.asgd_step, params, grads, hyper, {"step": state_steps, "eta": etas, "mu": mus}, {"ax": axs})


def nadam(
    params: List[Any],
    grads: List[Any],
    exp_avgs: List[Any],
    exp_avg_sqs: List[Any],
    mu_products: List[Any],
    state_steps: List[Any],
    decoupled_weight_decay: bool = False,
    foreach: Optional[bool] = None,
    capturable: bool = False,
    differentiable: bool = False,
    has_complex: bool = False,
    maximize: bool = False,
    *,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    momentum_decay: float,
    eps: float,
) -> None:
    """``torch.optim.functional.nadam`` (``ferroptim.NAdam``'s kernel); ``mu_products``
    are 0-d float64 arrays, updated in place."""
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    _run(_core.nadam_step, params, grads, hyper, {"step": state_steps, "mu_product": mu_products},
         {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs})


def radam(
    params: List[Any],
    grads: List[Any],
    exp_avgs: List[Any],
    exp_avg_sqs: List[Any],
    state_steps: List[Any],
    decoupled_weight_decay: bool = False,
    foreach: Optional[bool] = None,
    differentiable: bool = False,
    capturable: bool = False,
    has_complex: bool = False,
    maximize: bool = False,
    *,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
) -> None:
    """``torch.optim.functional.radam`` (``ferroptim.RAdam``'s kernel)."""
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    _run(_core.radam_step, params, grads, hyper, {"step": state_steps},
         {"exp_avg": exp_avgs, "exp_avg_sq": exp_avg_sqs})


def rmsprop(
    params: List[Any],
    grads: List[Any],
    square_avgs: List[Any],
    grad_avgs: List[Any],
    momentum_buffer_list: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    has_complex: bool = False,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
) -> None:
    """``torch.optim.functional.rmsprop`` (``ferroptim.RMSprop``'s kernel)."""
    hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                 maximize=maximize)
    _run(_core.rmsprop_step, params, grads, hyper, {"step": state_steps},
         {"square_avg": square_avgs, "momentum_buffer": _optional(momentum_buffer_list, momentum > 0),
          "grad_avg": _optional(grad_avgs, centered)})


def rprop(
    params: List[Any],
    grads: List[Any],
    prevs: List[Any],
    step_sizes: List[Any],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
    has_complex: bool = False,
    *,
    step_size_min: float,
    step_size_max: float,
    etaminus: float,
    etaplus: float,
) -> None:
    """``torch.optim.functional.rprop`` (``ferroptim.Rprop``'s kernel)."""
    hyper = dict(lr=0.0, etas=(etaminus, etaplus), step_sizes=(step_size_min, step_size_max), maximize=maximize)
    _run(_core.rprop_step, params, grads, hyper, {"step": state_steps}, {"prev": prevs, "step_size": step_sizes})


def _tensorwise(
    kernel: Any, params: Any, grads: Any, hyper: Any, states: List[List[Tuple[str, Any]]], steps: Any = None
) -> None:
    slots = [_Slot(p, g) for p, g in zip(params, grads)]
    if not slots:
        return
    args = ([dict(hyper, params=slots)], [(0, i) for i in range(len(slots))], list(params), list(grads), states)
    kernel(*args, *((steps,) if steps is not None else ()))


def _whole_tensors(
    kernel: Any, params: Any, grads: Any, hyper: Any, states: List[Dict[str, Any]], scalar_keys: Any, buffer_keys: Any
) -> None:
    """One step of a kernel whose update needs each tensor whole (Adafactor, Muon):
    ``states`` holds each parameter's state entries, None values included (the kernel
    refuses them rather than start a new state nobody would see)."""
    slots = [_Slot(p, g) for p, g in zip(params, grads)]
    if slots:
        kernel(dict(zip(slots, states)), [dict(hyper, params=slots)], scalar_keys, buffer_keys)


def adafactor(
    params: List[Any],
    grads: List[Any],
    row_vars: List[Optional[Any]],
    col_vars: List[Optional[Any]],
    variances: List[Optional[Any]],
    state_steps: List[Any],
    foreach: Optional[bool] = None,
    grad_scale: Any = None,
    found_inf: Any = None,
    has_complex: bool = False,
    *,
    d: float,
    lr: float,
    beta2_decay: float,
    weight_decay: float,
    eps1: Optional[float],
    eps2: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.adafactor`` (``ferroptim.Adafactor``'s kernel):
    ``row_vars`` and ``col_vars`` for parameters of two or more dimensions,
    ``variances`` for the others (None where unused)."""
    n = _lists(params, grads=grads, row_vars=row_vars, col_vars=col_vars, variances=variances,
               state_steps=state_steps)
    states: List[Dict[str, Any]] = []
    for i in range(n):
        state: Dict[str, Any] = {"step": _scalar_array(state_steps[i], "step", i)}
        if np.ndim(params[i]) > 1:
            state.update(row_var=row_vars[i], col_var=col_vars[i])
        else:
            state.update(variance=variances[i])
        states.append(state)
    hyper = dict(lr=lr, beta2_decay=beta2_decay, eps=(eps1, eps2), d=d, weight_decay=weight_decay, maximize=maximize)
    _whole_tensors(_core.adafactor_step, params, grads, hyper, states, ("step",), ("row_var", "col_var", "variance"))


def muon(
    params: List[Any],
    grads: List[Any],
    muon_momentum_bufs: List[Any],
    *,
    foreach: Optional[bool] = None,
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_coefficients: Tuple[float, float, float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: Optional[str],
    has_complex: bool,
) -> None:
    """``torch.optim.functional.muon`` (``ferroptim.Muon``'s kernel)."""
    if foreach:
        raise RuntimeError("Foreach is not supported for Muon yet")
    n = _lists(params, grads=grads, muon_momentum_bufs=muon_momentum_bufs)
    hyper = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                 ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
    states = [{"momentum_buffer": muon_momentum_bufs[i]} for i in range(n)]
    _whole_tensors(_core.muon_step, params, grads, hyper, states, (), ("momentum_buffer",))


def sparse_adam(
    params: List[Any],
    grads: List[SparseGrad],
    exp_avgs: List[Any],
    exp_avg_sqs: List[Any],
    state_steps: List[int],
    *,
    eps: float,
    beta1: float,
    beta2: float,
    lr: float,
    maximize: bool,
) -> None:
    """``torch.optim.functional.sparse_adam`` (``ferroptim.SparseAdam``'s kernel):
    ``grads`` are ``SparseGrad``s; ``state_steps`` are ints that already count this
    step (the class increments them before the call, as torch's does), left as they are."""
    n = _lists(params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs, state_steps=state_steps)
    for i, g in enumerate(grads):
        if not isinstance(g, SparseGrad):
            raise RuntimeError(f"sparse_adam: grads[{i}] must be a SparseGrad, got {type(g).__name__}")
    # the kernel advances a step counter before using it: hand it this step minus one
    steps = [np.array(float(s) - 1.0) for s in state_steps]
    states = [[("exp_avg", exp_avgs[i]), ("exp_avg_sq", exp_avg_sqs[i])] for i in range(n)]
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, maximize=maximize)
    _tensorwise(_core.sparse_adam_step, params, grads, hyper, states, steps)
