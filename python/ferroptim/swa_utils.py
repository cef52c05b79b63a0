"""Stochastic weight averaging (SWA) and exponential moving averages (EMA) of
parameters, as ``torch.optim.swa_utils``, for parameter lists.

``AveragedModel`` keeps averaged copies of a list of parameters (torch keeps them in a
copy of an ``nn.Module``); ``update_parameters`` folds in the current values. The
default average, ``get_swa_multi_avg_fn`` and ``get_ema_multi_avg_fn`` run in Rust over
all the parameters in one call; ``get_swa_avg_fn`` / ``get_ema_avg_fn`` and custom
functions run per parameter in NumPy. ``SWALR`` anneals the LR to a fixed SWA LR.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _core
from ._params import typename
from .lr_scheduler._base import RuleScheduler, format_param
from .optimizer import Optimizer
from .parameter import Parameter

__all__ = [
    "AveragedModel",
    "SWALR",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _data(p: Any) -> np.ndarray:
    """The array of a parameter (``.data``) or the array itself."""
    if isinstance(p, np.ndarray):
        return p
    data = getattr(p, "data", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"expected parameters or numpy arrays, got {typename(p)}")
    return data


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def _average_lists(
    averaged: Sequence[np.ndarray], current: Sequence[Any], how: str, value: float, other: Callable[..., np.ndarray]
) -> None:
    """``_core.average_`` (Rust, one call) over the float32 / float64 pairs;
    ``averaged[i] ← other(averaged[i], current[i])`` (NumPy) for the others."""
    fast = [i for i, a in enumerate(averaged) if a.dtype in _KERNEL_DTYPES]
    _core.average_([averaged[i] for i in fast], [current[i] for i in fast], how, float(value))
    for i, a in enumerate(averaged):
        if a.dtype not in _KERNEL_DTYPES:
            np.copyto(a, other(a, current[i]), casting="unsafe")


def _lerp_lists(averaged: Sequence[Any], current: Sequence[Any], weight: float) -> None:
    """``averaged[i] ← lerp(averaged[i], current[i], weight)``: torch's ``_foreach_lerp_``
    (NumPy with torch's formula for floats other than float32 / float64)."""

    def lerp(a: np.ndarray, c: Any) -> np.ndarray:
        w = a.dtype.type(weight)
        diff = np.asarray(c, dtype=a.dtype) - a
        out: np.ndarray = a + w * diff if abs(weight) < 0.5 else c - diff * (a.dtype.type(1) - w)
        return out

    _average_lists([_data(a) for a in averaged], [_data(c) for c in current], "lerp", weight, lerp)


def _swa_weight(num_averaged: Any) -> float:
    """torch's ``1 / (num_averaged + 1)``: in float32 for a counter array (torch's long
    tensor divides into its default float32), in Python floats for an int."""
    if isinstance(num_averaged, np.ndarray):
        return float(np.float32(1.0) / np.float32(int(num_averaged) + 1))
    return float(1 / (num_averaged + 1))


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[Sequence[Any], Sequence[Any], Any], None]:
    """The EMA over lists, in place: ``ema ← lerp(ema, current, 1 − decay)`` for each
    pair (floating-point arrays; others ``ema·decay + current·(1 − decay)``)."""
    _check_decay(decay)

    def ema_update(ema_param_list: Sequence[Any], current_param_list: Sequence[Any], _: Any) -> None:
        ema = [_data(a) for a in ema_param_list]
        if ema and np.issubdtype(ema[0].dtype, np.floating):
            _lerp_lists(ema, current_param_list, 1 - decay)
        else:
            for a, c in zip(ema, current_param_list):
                a[...] = a * decay + _data(c) * (1 - decay)

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[Sequence[Any], Sequence[Any], Any], None]:
    """The running mean over lists, in place: ``avg ← lerp(avg, current, 1/(n + 1))``
    for each pair, n the number of models averaged so far (floating-point arrays)."""

    def swa_update(averaged_param_list: Sequence[Any], current_param_list: Sequence[Any], num_averaged: Any) -> None:
        avg = [_data(a) for a in averaged_param_list]
        for a in avg:
            if not np.issubdtype(a.dtype, np.floating):
                raise TypeError(f"SWA averages floating-point parameters, got dtype {a.dtype}")
        _lerp_lists(avg, current_param_list, _swa_weight(num_averaged))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[np.ndarray, np.ndarray, Any], np.ndarray]:
    """The EMA of one parameter: returns ``decay·ema + (1 − decay)·current``."""
    _check_decay(decay)

    def ema_update(ema_param: np.ndarray, current_param: np.ndarray, num_averaged: Any) -> np.ndarray:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[np.ndarray, np.ndarray, Any], np.ndarray]:
    """The running mean of one parameter: returns ``avg + (current − avg)/(n + 1)``."""

    def swa_update(averaged_param: np.ndarray, current_param: np.ndarray, num_averaged: Any) -> np.ndarray:
        out: np.ndarray = averaged_param + (current_param - averaged_param) / (int(num_averaged) + 1)
        return out

    return swa_update


def _param_list(params: Any) -> List[Any]:
    """A model's parameters: an object with ``parameters()``, or an iterable of
    parameters / arrays."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if isinstance(params, np.ndarray) or hasattr(params, "data") and isinstance(params.data, np.ndarray):
        raise TypeError(
            "AveragedModel takes an iterable of parameters (or an object with parameters()), "
            f"got a single {typename(params)}"
        )
    return list(params)


class AveragedModel:
    r"""Averaged copies of a model's parameters, for SWA or EMA (``torch.optim.swa_utils.AveragedModel``
    for parameter lists).

    ``update_parameters(params)`` copies the current values on its first call and
    afterwards folds them in: by default the running mean
    ``avg ← avg + (current − avg)/(n + 1)`` (torch's CPU default), or ``avg_fn(avg,
    current, n)`` per parameter (returning the new value), or ``multi_avg_fn(avgs,
    currents, n)`` per dtype, in place — e.g. ``get_ema_multi_avg_fn(0.999)``. ``n`` is
    ``n_averaged``, the number of models averaged so far (a 0-d int64 array).

    Args:
        params: the parameters to average — an iterable of ``Parameter`` objects,
            arrays or objects with ``.data`` — or an object with ``parameters()``.
        device: torch's device argument, accepted and ignored.
        avg_fn (function, optional): ``(averaged, current, n) -> new averaged``.
        multi_avg_fn (function, optional): ``(averaged list, current list, n) -> None``.
        use_buffers (bool): torch averages a module's buffers too; a parameter list has
            none, so this changes nothing. Default: False.

    Example::

        swa = fo.swa_utils.AveragedModel(params)
        ema = fo.swa_utils.AveragedModel(params, multi_avg_fn=fo.swa_utils.get_ema_multi_avg_fn(0.999))
        for epoch in range(epochs):
            train_one_epoch(params, opt)
            swa.update_parameters(params)
        swa.parameters()  # the averaged Parameters
    """

    def __init__(
        self,
        params: Any,
        device: Any = None,
        avg_fn: Optional[Callable[..., np.ndarray]] = None,
        multi_avg_fn: Optional[Callable[..., None]] = None,
        use_buffers: bool = False,
    ) -> None:
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        self.params: List[Parameter] = [Parameter(np.array(_data(p), copy=True)) for p in _param_list(params)]
        self.n_averaged = np.zeros((), dtype=np.int64)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def parameters(self) -> List[Parameter]:
        """The averaged parameters, in the order they were given."""
        return list(self.params)

    def update_parameters(self, params: Any) -> None:
        """Folds the current values of ``params`` (the same list, in the same order)
        into the averages; checks them all before changing anything."""
        current = [_data(p) for p in _param_list(params)]
        averaged = [p.data for p in self.params]
        if len(current) != len(averaged):
            raise ValueError(f"update_parameters got {len(current)} parameters, the averaged model holds {len(averaged)}")
        for i, (a, c) in enumerate(zip(averaged, current)):
            if a.shape != c.shape:
                raise ValueError(f"parameter {i} has shape {c.shape}, its average {a.shape}")
        if self.n_averaged == 0:
            for a, c in zip(averaged, current):
                np.copyto(a, c, casting="unsafe")
        elif self.multi_avg_fn is not None:
            for dtype in dict.fromkeys(a.dtype for a in averaged):
                pick = [i for i, a in enumerate(averaged) if a.dtype == dtype]
                self.multi_avg_fn([averaged[i] for i in pick], [current[i] for i in pick], self.n_averaged)
        elif self.avg_fn is None:
            swa = get_swa_avg_fn()
            count = int(self.n_averaged) + 1
            _average_lists(averaged, current, "mean", count, lambda a, c: swa(a, c, self.n_averaged))
        else:
            for a, c in zip(averaged, current):
                np.copyto(a, self.avg_fn(a, c, self.n_averaged), casting="unsafe")
        self.n_averaged += 1

    def state_dict(self) -> Dict[str, Any]:
        """``n_averaged`` and the averaged arrays (copies)."""
        return {"n_averaged": self.n_averaged.copy(), "params": [p.data.copy() for p in self.params]}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads :meth:`state_dict` output; checks it all before changing anything."""
        arrays = [np.asarray(a) for a in state_dict["params"]]
        if len(arrays) != len(self.params):
            raise ValueError(f"the state holds {len(arrays)} parameters, the averaged model {len(self.params)}")
        for i, (a, p) in enumerate(zip(arrays, self.params)):
            if a.shape != p.data.shape:
                raise ValueError(f"params[{i}] has shape {a.shape}, the averaged parameter {p.data.shape}")
        n = np.asarray(state_dict["n_averaged"])
        if n.shape != () or not np.issubdtype(n.dtype, np.integer) or int(n) < 0:
            raise ValueError(f"n_averaged must be a non-negative integer, got {state_dict['n_averaged']!r}")
        for a, p in zip(arrays, self.params):
            np.copyto(p.data, a, casting="unsafe")
        self.n_averaged = np.array(int(n), dtype=np.int64)


def update_bn(loader: Iterable[Any], model: Any, device: Any = None) -> None:
    """torch's ``update_bn`` recomputes the running statistics of a model's BatchNorm
    layers with one pass over ``loader``. ferroptim averages parameter lists, which
    have no BatchNorm layers, and for a model without them torch's ``update_bn``
    returns without doing anything: so does this one. If your model keeps batch-norm
    statistics, recompute them with your own forward pass over the data after
    copying the averaged parameters in."""
    return None


class SWALR(RuleScheduler):
    r"""Anneals each group's LR to ``swa_lr`` over ``anneal_epochs`` epochs, then keeps
    it there (``torch.optim.swa_utils.SWALR``)::

        t = min(1, step / max(1, anneal_epochs));   α = (1 − cos(π t))/2 ("cos") or t ("linear")
        lr = swa_lr·α + lr₀·(1 − α)

    where ``lr₀`` is the LR the annealing started from (recovered from the current LR).

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        swa_lr (float or list): the SWA LR, for all groups or per group.
        anneal_epochs (int): epochs of annealing. Default: 10.
        anneal_strategy (str): "cos" or "linear". Default: "cos".
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "SWALR"

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: Union[float, List[float]],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        args = dict(swa_lr=swa_lr, anneal_strategy=anneal_strategy, anneal_epochs=anneal_epochs)
        _core.check_scheduler("SWALR", args, optimizer)
        swa_lrs = format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """α(t): the share of ``swa_lr`` in the LR at annealing progress ``t``."""
        return _core.swa_alpha(self._anneal_strategy, t)

    def _hyper(self) -> Dict[str, Any]:
        return {
            "swa_lrs": [g["swa_lr"] for g in self.optimizer.param_groups],
            "anneal_epochs": self.anneal_epochs,
            "anneal_strategy": self._anneal_strategy,
        }
