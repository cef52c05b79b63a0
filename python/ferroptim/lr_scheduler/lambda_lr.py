"""``LambdaLR`` and ``MultiplicativeLR``: schedules given as functions of the epoch."""

from __future__ import annotations

import types
from typing import Any, Callable, Dict, List, Sequence, Union, cast

from .. import _core
from ..optimizer import Optimizer
from ._base import RuleScheduler

__all__ = ["LambdaLR", "MultiplicativeLR"]

Lambda = Callable[[int], float]


def _lambdas(kind: str, optimizer: Optimizer, lr_lambda: Union[Lambda, Sequence[Lambda]]) -> List[Lambda]:
    """One function per group (torch's checks of scheduler ``kind``, in Rust, first)."""
    _core.check_scheduler(kind, {"lr_lambda": lr_lambda}, optimizer)
    if not isinstance(lr_lambda, (list, tuple)):
        return [cast(Lambda, lr_lambda)] * len(optimizer.param_groups)
    return list(lr_lambda)


class _LambdaState(RuleScheduler):
    """The ``state_dict`` of a scheduler holding functions: a plain function or lambda
    is left out (None), a callable object keeps its ``__dict__``, as torch does — so
    the state dict always pickles."""

    lr_lambdas: List[Lambda]

    def state_dict(self) -> Dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy() for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state = {k: v for k, v in state_dict.items() if k != "lr_lambdas"}
        self.__dict__.update(state)
        for fn, saved in zip(self.lr_lambdas, state_dict.get("lr_lambdas", [])):
            if saved is not None:
                fn.__dict__.update(saved)


class LambdaLR(_LambdaState):
    r"""Sets each group's LR to its initial LR times a function of the epoch:
    ``lr = initial_lr · lr_lambda(epoch)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        lr_lambda (function or list): ``epoch -> factor``, or one per param group.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "LambdaLR"

    def __init__(self, optimizer: Optimizer, lr_lambda: Union[Lambda, Sequence[Lambda]], last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas(self._rule, optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"lr_lambdas": self.lr_lambdas}


class MultiplicativeLR(_LambdaState):
    r"""Multiplies each group's LR by a function of the epoch at every step after the
    first: ``lr ← lr · lr_lambda(epoch)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        lr_lambda (function or list): ``epoch -> factor``, or one per param group.
        last_epoch (int): the index of the last epoch. Default: -1.
    """

    _rule = "MultiplicativeLR"

    def __init__(self, optimizer: Optimizer, lr_lambda: Union[Lambda, Sequence[Lambda]], last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas(self._rule, optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _hyper(self) -> Dict[str, Any]:
        return {"lr_lambdas": self.lr_lambdas}
